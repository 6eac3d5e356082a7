// What the engine core knows about one request: token ids in, token ids out. Text, chat templates,
// stop strings and the OpenAI shapes live above it (src/api); the sink is how results leave.

import type { Sampling } from '../runner/session.js';
import type { Penalties } from '../sampling/penalties.js';
import type { StageSlo } from '../scheduler/types.js';
import type { TokenLogprob } from './logprobs.js';

export type FinishReason = 'stop' | 'length';

export interface EmittedToken {
  id: number;
  /** Present when the request asked for logprobs. */
  logprob?: TokenLogprob;
}

/** How results leave the core; called on the engine loop, so implementations must not block. */
export interface RequestSink {
  /** The admission decision (best-effort service is flagged in the response). */
  onDecision?(decision: 'admitted' | 'best-effort', atMs: number): void;
  /**
   * Tokens emitted by one step, at `atMs`. Return `{ stopAfter: n }` to end the request after the
   * first n of them (a stop string matched); the rest are discarded.
   */
  onTokens(tokens: readonly EmittedToken[], atMs: number): { stopAfter: number } | void;
  onFinish(reason: FinishReason, atMs: number): void;
  /** The request failed (declined, aborted, device lost); nothing more is called. */
  onError(error: Error): void;
}

export interface CoreRequestSpec {
  id: string;
  app: string;
  prompt: readonly number[];
  /** Output cap (the scheduler plans with it; its output reservation may be smaller). */
  maxTokens: number;
  /** Absolute TTFT budget, ms after arrival. */
  ttftMs: number;
  stages: readonly StageSlo[];
  /** Greedy when null. */
  sampling: Sampling | null;
  /** Penalties and logit bias (absent or null: none), applied on the GPU before argmax or sampling. */
  penalties?: Penalties | null;
  /** Token ids that end the request (EOS); not delivered. Empty with ignore_eos. */
  stopTokenIds: ReadonlySet<number>;
  /** Top alternatives per token when logprobs are asked (0 = the chosen token's only); null = no logprobs. */
  topLogprobs: number | null;
  /** Emitting one of these moves the request to its next stage (e.g. </think>). */
  stageMarkerIds?: ReadonlySet<number>;
  /** Known stage starts (0-based output index of each next stage's first token): trace replay. */
  stageBoundaries?: readonly number[];
  /** What happens when the planner declines it: fail with SloError, or serve best-effort. */
  onDecline: 'error' | 'best-effort';
  /** Admit now or refuse at once (submit throws RequestDeclinedError 'not-admitted'): a router's offer. */
  offer?: boolean;
  /** Arrival on the engine clock (default: now). The trace driver passes the trace's time. */
  arrivalMs?: number;
  /** Prefix-cache namespace (default: the app): only requests of one namespace share cached pages. */
  cacheNamespace?: string;
  /** Keep this request's KV after it ends for the conversation's next round. */
  conversationId?: string;
}
