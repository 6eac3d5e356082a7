// What crosses the worker boundary (structured-cloneable plain data): load options, app SLOs,
// text-level requests, and the per-request event stream pushed back over a MessagePort.

import type { EngineStats } from '../engine/stats.js';
import type { ToolCallFormat } from '../openai/tool-calls.js';
import type { ChatCompletionTokenLogprob } from '../openai/types.js';
import type { NormalizedMessage, NormalizedPenalties } from '../openai/validate.js';
import type { SchedulerName } from '../scheduler/names.js';
import type { StageSlo } from '../scheduler/types.js';
import type { DomDirectoryHandle, DomFile } from './dom-types.js';

/** A scheduler of the registry (src/scheduler/registry.ts: what each name means). */
export type { SchedulerName } from '../scheduler/names.js';

/** A model as createEngine takes it: hub id, URL, local folder (Node), or picked files / a directory handle. */
export type ModelSpec = string | readonly DomFile[] | DomDirectoryHandle;

export interface LoadProgress {
  /** 'download' (bytes of files), 'upload' (tensors to the GPU), 'calibrate' (timing step shapes). */
  phase: 'download' | 'upload' | 'calibrate';
  file?: string;
  loaded: number;
  total: number | null;
  fromCache?: boolean;
  model?: 'target' | 'draft';
}

export interface HostLoadOptions {
  model: ModelSpec;
  /** A smaller model with the same vocabulary, proposing tokens for speculative decoding. */
  draftModel?: ModelSpec;
  /** Self-speculation: the model's first N layers draft (no second model). */
  selfSpeculation?: { layers: number };
  /** Longest speculation per step when a draft is configured (default 4). */
  maxSpec?: number;
  scheduler?: SchedulerName;
  /** Bytes for the KV cache (default 256 MiB, capped by the adapter's binding limit). */
  kvCacheBytes?: number;
  /** Most tokens per step (default 512). */
  maxTokensPerStep?: number;
  /**
   * Weight storage on the GPU: 'none' (default) keeps the files' dtype; 'q4' quantizes the
   * decoder-layer linears and an untied LM head at load to 4 bits per weight plus an f16 scale per
   * 32 (about 3.6x smaller than f16 for those matrices; embeddings stay as they are). A draft model
   * gets the same setting; self-speculation shares the model's weights.
   */
  quantize?: 'none' | 'q4';
  /** A performance profile (webslo-perf-profile JSON); default: calibrate at load. */
  profile?: unknown;
  /** Time limit of the startup calibration, ms (default 4000). */
  calibrationBudgetMs?: number;
  /** Refit the planner's performance model from measured steps as the engine runs (default true). */
  onlineRefit?: boolean;
  /**
   * Automatic prefix caching (default on): prompts reuse the KV of cached full pages of earlier
   * prompts of the same app, and a conversation's KV is kept between rounds. `shareAcrossApps`
   * lets apps share cached pages (off by default: a shared prefix would let one app learn, by
   * timing, what another sent); `conversationTtlMs` bounds how long a conversation is kept idle.
   */
  prefixCaching?: boolean | { shareAcrossApps?: boolean; conversationTtlMs?: number };
  /** The hub or a mirror with its URL layout; default: $HF_ENDPOINT in Node, else https://huggingface.co. */
  hubEndpoint?: string;
  revision?: string;
  /** A hub access token (gated and private repos); default: $HF_TOKEN in Node. */
  accessToken?: string;
  /** Use the model cache (Cache API / cache directory); default true. */
  cache?: boolean;
  /** Node: the cache directory (default $WEBSLO_CACHE_DIR or ~/.cache/webslo). */
  cacheDir?: string;
}

export interface AppSloInput {
  /** TTFT budget, ms after arrival. */
  ttftMs?: number;
  /** Or a factor of the zero-load prefill time of each prompt. */
  ttftSlowdown?: number;
  /** TPOT of a single-stage app. */
  tpotMs?: number;
  /** Decode stages in order (e.g. think, answer) instead of tpotMs. */
  stages?: StageSlo[];
  /** What a declined request does: fail with SloError (default), or run best-effort, flagged. */
  onDecline?: 'error' | 'best-effort';
  /** Ids/strings that switch to the next stage (default: the model's </think> token when present). */
  stageMarkers?: string[];
}

export interface ModelInfo {
  model: string;
  architecture: string;
  vocabSize: number;
  contextLength: number;
  hasTokenizer: boolean;
  hasChatTemplate: boolean;
  /** How the chat template asks the model to write tool calls, which replies are parsed for (null: none known). */
  toolCallFormat: ToolCallFormat | null;
  adapter: string;
  features: { shaderF16: boolean; subgroups: boolean };
  kv: { pages: number; pageSize: number; bytes: number };
  /** Bytes of the model's weight files. */
  weightsBytes: number;
  /** How the decoder's matrices are stored on the GPU (HostLoadOptions.quantize, or 'q4' for a GGUF Q4_0 file), and the weights' bytes there. */
  quantize: 'none' | 'q4';
  gpuWeightsBytes: number;
  scheduler: SchedulerName;
  speculation: 'none' | 'draft-model' | 'self';
  /** The planning model's zero-load decode step (one sequence) and 512-token prefill, ms. */
  decodeStepMs: number;
  prefillMsPer512: number;
  profileOrigin: string;
  /**
   * Where chat templates are rendered and prompts tokenized: 'worker' (a worker of their own, off
   * the step loop), 'engine-thread' (from the repository's sources, or where no worker could
   * start), null without a tokenizer.
   */
  promptEncoding?: 'worker' | 'engine-thread' | null;
}

export interface HostRequest {
  requestId: string;
  app: string;
  prompt: { kind: 'chat'; messages: NormalizedMessage[]; tools: unknown[] | null } | { kind: 'text'; text: string } | { kind: 'tokens'; ids: number[] };
  maxTokens: number | null;
  sampling: { temperature: number; topP: number; topK: number; seed: bigint | null };
  /** Penalties and logit bias; null: none. */
  penalties: NormalizedPenalties | null;
  stop: string[];
  logprobs: boolean;
  topLogprobs: number;
  ignoreEos: boolean;
  /** Start in this stage of the app (e.g. 'answer' when thinking was skipped); null = the first. */
  stage: string | null;
  /** Continue this conversation's kept KV, and keep it for the next round. */
  conversationId: string | null;
  /** Output already produced elsewhere: ids appended to the prompt, or text tokenized on its own (openai/validate.ts). */
  continuation: { tokenIds: number[] } | { text: string } | null;
  /** Admit now or fail at once with RequestDeclinedError (reason 'not-admitted'): never queued to be re-offered (routers). */
  offer: boolean;
}

/** A data field of an error that crosses the worker boundary. */
export type WireValue = string | number | boolean | null | readonly (string | number)[];

/** An error as plain data (host/wire.ts). */
export interface WireError {
  name: string;
  message: string;
  /** The exported class it is rebuilt as (host/wire.ts's list); absent: RemoteEngineError. */
  cls?: string;
  /** Its own data fields (reason, path, promptTokens, ...). */
  fields?: Record<string, WireValue>;
  /** For wire errors written by hand (no `fields`): the parameter or app they name. */
  param?: string;
  app?: string;
}

export type StreamEvent =
  | { type: 'decision'; decision: 'admitted' | 'best-effort'; atMs: number }
  | { type: 'delta'; text: string; tokenIds: number[]; logprobs?: ChatCompletionTokenLogprob[]; atMs: number }
  | {
      type: 'done';
      finishReason: 'stop' | 'length';
      promptTokens: number;
      completionTokens: number;
      bestEffort: boolean;
      arrivalMs: number;
      firstTokenMs: number | null;
      endMs: number;
    }
  | { type: 'error'; error: WireError };

export type { EngineStats };
