// Turning a request's prompt into token ids (rendering the chat template, then tokenizing) off the
// step loop. Both are synchronous library calls that can take seconds (measured on the 2-core test
// machine: a 128 KB prompt, 1.5 s to tokenize under load; a 5,000-message chat, 0.9 s to render),
// and every stream of every app stalls while the thread that runs GPU steps is busy with them. In a
// Web Worker the engine starts a second worker from its own script (the same file: nothing more for
// a bundler to find); the package's Node build starts one on a worker thread
// (prompt-worker-node.ts, node-prompt-spawn.ts); elsewhere the work stays on the engine's thread.
//
// Invariants: results come back in the order the jobs were sent (one worker, FIFO), so requests
// sent together are submitted in the order they came; an error is the typed error the same work
// would throw in-thread (rebuilt from its wire form); a text that is far over the limit is refused
// from a prefix before it is all tokenized (TextTokenizer.encodeWithin).

import { chatTemplateOf, renderChat } from '../openai/chat-template.js';
import type { NormalizedMessage } from '../openai/validate.js';
import { TextTokenizer } from '../tokenizer/tokenizer.js';
import type { WireError } from './protocol.js';
import { fromWire, toWire } from './wire.js';

/** The name a prompt worker is started with (the engine worker's script checks it to know its role). */
export const PROMPT_WORKER_NAME = 'webslo-prompt-encoder';

/** A prompt to encode; `then`: text that continues it (a reply begun elsewhere), tokenized on its own without special tokens. */
export type PromptJob = ({ kind: 'text'; text: string } | { kind: 'chat'; messages: NormalizedMessage[]; tools: unknown[] | null }) & { then?: string };
/** The ids, or (over `limit`) a lower bound on the prompt's length in tokens. */
export type EncodeResult = { ids: number[] } | { atLeast: number };

export interface PromptEncoder {
  /** Where the work runs now: a worker of its own, or the engine's thread (also after a worker failed). */
  readonly where: 'worker' | 'engine-thread';
  /** Settles once the encoder knows where it runs (a worker has built its tokenizer, or failed). */
  readonly ready: Promise<void>;
  encode(job: PromptJob, limit: number): Promise<EncodeResult>;
  /** Stop the worker; jobs still in it never settle. */
  close(): void;
}

/** The tokenizer's files, as a prompt worker rebuilds the tokenizer from them. */
export interface TokenizerFiles {
  tokenizerJson: unknown;
  tokenizerConfig: unknown;
  extraEosTokenIds: number[];
}

/** The work itself, wherever it runs. */
export function encodePrompt(tok: TextTokenizer, job: PromptJob, limit: number): EncodeResult {
  let text: string;
  if (job.kind === 'text') {
    text = job.text;
  } else {
    const { template, bosToken, eosToken } = chatTemplateOf(tok);
    text = renderChat(template, job.messages, { bosToken, eosToken, addGenerationPrompt: true, tools: (job.tools as never) ?? null });
  }
  const r = tok.encodeWithin(text, limit);
  if (job.then === undefined || job.then === '' || 'atLeast' in r) return r;
  const more = tok.encodeWithin(job.then, Math.max(1, limit - r.ids.length), { addSpecialTokens: false });
  return 'atLeast' in more ? { atLeast: r.ids.length + more.atLeast } : { ids: [...r.ids, ...more.ids] };
}

export function engineThreadEncoder(tok: TextTokenizer): PromptEncoder {
  return {
    where: 'engine-thread',
    ready: Promise.resolve(),
    encode: async (job, limit) => encodePrompt(tok, job, limit),
    close: () => {},
  };
}

/** What a prompt worker and its engine say to each other. */
type ToWorker = { type: 'init'; files: TokenizerFiles } | { type: 'encode'; id: number; job: PromptJob; limit: number };
type FromWorker = { type: 'ready' } | { type: 'result'; id: number; result: EncodeResult } | { type: 'error'; id: number | null; error: WireError };

/** The part of a Worker (or a worker's global scope) this uses. */
export interface MessagePortLike {
  postMessage(message: unknown): void;
  addEventListener(type: 'message', listener: (ev: { data: unknown }) => void): void;
}

/** A worker as the engine holds it: it can also fail (its script did not load, it crashed) and be stopped. */
export interface PromptWorkerHandle extends MessagePortLike {
  /** Called once if the worker dies or cannot start. */
  onFailure(listener: (why: string) => void): void;
  /**
   * Whether the worker has work (Node: a worker thread keeps the process alive only while it has a
   * job, so a program that never unloads its engine still exits). Optional.
   */
  busy?(busy: boolean): void;
  terminate(): void;
}

/**
 * Encodes in `worker`; if the worker fails (it did not start, it crashed, it could not build the
 * tokenizer), the jobs it held and every later one are done by `fallback` (the engine's thread): a
 * prompt is never lost to a worker.
 */
export function workerEncoder(worker: PromptWorkerHandle, files: TokenizerFiles, fallback: PromptEncoder, readyTimeoutMs = 15_000): PromptEncoder {
  let next = 0;
  const waiting = new Map<number, { job: PromptJob; limit: number; resolve: (r: EncodeResult) => void; reject: (e: Error) => void }>();
  let failed = false;
  let markReady!: () => void;
  const ready = new Promise<void>((resolve) => (markReady = resolve));
  const busy = (): void => worker.busy?.(waiting.size > 0);
  const fail = (): void => {
    if (failed) return;
    failed = true;
    worker.terminate();
    for (const w of waiting.values()) fallback.encode(w.job, w.limit).then(w.resolve, w.reject);
    waiting.clear();
    markReady();
  };
  worker.onFailure(fail);
  // A worker that neither builds its tokenizer nor fails in time is given up on.
  const timer = setTimeout(fail, readyTimeoutMs);
  void ready.then(() => clearTimeout(timer));
  worker.addEventListener('message', (ev) => {
    const m = ev.data as FromWorker;
    if (m.type === 'ready') return markReady();
    // The worker could not build the tokenizer: the engine's thread (which could) takes over.
    if (m.type === 'error' && m.id === null) return fail();
    const w = waiting.get(m.id!);
    if (!w) return;
    waiting.delete(m.id!);
    busy();
    if (m.type === 'result') w.resolve(m.result);
    else w.reject(fromWire(m.error));
  });
  busy();
  worker.postMessage({ type: 'init', files } satisfies ToWorker);
  return {
    get where() {
      return failed ? fallback.where : 'worker';
    },
    ready,
    encode(job, limit) {
      if (failed) return fallback.encode(job, limit);
      const id = next++;
      return new Promise<EncodeResult>((resolve, reject) => {
        // Posted first: a job that cannot be sent (not cloneable) is not left waiting.
        worker.postMessage({ type: 'encode', id, job, limit } satisfies ToWorker);
        waiting.set(id, { job, limit, resolve, reject });
        busy();
      });
    },
    close() {
      clearTimeout(timer);
      markReady();
      waiting.clear();
      worker.terminate();
    },
  };
}

/** The prompt worker's side: build the tokenizer from the first message, then answer jobs in order. */
export function servePromptEncoder(scope: MessagePortLike): void {
  let tok: TextTokenizer | null = null;
  scope.addEventListener('message', (ev) => {
    const m = ev.data as ToWorker;
    if (m.type === 'init') {
      try {
        tok = new TextTokenizer(m.files.tokenizerJson, m.files.tokenizerConfig, m.files.extraEosTokenIds);
        scope.postMessage({ type: 'ready' } satisfies FromWorker);
      } catch (e) {
        scope.postMessage({ type: 'error', id: null, error: toWire(e) } satisfies FromWorker);
      }
      return;
    }
    if (!tok) return; // init failed and said so
    try {
      scope.postMessage({ type: 'result', id: m.id, result: encodePrompt(tok, m.job, m.limit) } satisfies FromWorker);
    } catch (e) {
      scope.postMessage({ type: 'error', id: m.id, error: toWire(e) } satisfies FromWorker);
    }
  });
}
