// The local engine as the Router uses it: a streamed request read up to its first token (so an
// offer's refusal, which comes as the stream's error once the prompt is encoded, is known before
// the Router answers), and its chunks turned into the Router's pieces with the route judged.

import { AbortError, PromptTooLongError, RequestDeclinedError } from '../engine/errors.js';
import type { ChatCompletionChunk, CompletionChunk, CompletionUsage, FinishReason } from '../openai/types.js';
import type { ChatParams, ChunkStream, CompletionParams, Engine } from './engine.js';
import { doneOf, type Piece } from './router-response.js';

/**
 * Start a streamed request on the local engine and read it up to its first token (an offer's
 * refusal comes as the stream's error, after the prompt is encoded). Offered and refused: the
 * refusal; otherwise the stream with what was read put back in front.
 */
export async function startLocal(
  local: Engine,
  /** Whether a refused prompt may go elsewhere (a remote exists): a PromptTooLongError then counts as a refusal. */
  elsewhere: boolean,
  kind: 'chat' | 'completions',
  body: Record<string, unknown>,
  app: string,
  signal: AbortSignal | undefined,
  o: { offer: boolean },
): Promise<AsyncGenerator<ChatCompletionChunk | CompletionChunk> | Error> {
  // Tool calls are parsed by the Router's response (router-response.ts), from raw text: an 'auto'
  // tool_choice travels as 'none' (the template still gets the tools; the engine parses nothing).
  const rawTools = kind === 'chat' && body['tools'] !== undefined && (body['tool_choice'] === undefined || body['tool_choice'] === 'auto');
  const params = { ...body, ...(rawTools ? { tool_choice: 'none' } : {}), app, stream: true as const, stream_options: { include_usage: true }, return_token_ids: true };
  // Not here: the planner would not take it now, or the prompt does not fit this engine at all (a remote may be bigger).
  const refused = (e: unknown): e is Error => o.offer && ((e instanceof RequestDeclinedError && e.reason === 'not-admitted') || (e instanceof PromptTooLongError && elsewhere));
  let stream: ChunkStream<ChatCompletionChunk | CompletionChunk>;
  try {
    const opts = { offer: o.offer, ...(signal ? { signal } : {}) };
    stream = kind === 'chat' ? await local.chat.completions.create(params as ChatParams & { stream: true }, opts) : await local.completions.create(params as CompletionParams & { stream: true }, opts);
  } catch (e) {
    if (refused(e)) return e;
    throw e;
  }
  const it = stream[Symbol.asyncIterator]();
  const read: (ChatCompletionChunk | CompletionChunk)[] = [];
  let ended = false;
  try {
    for (;;) {
      const r = await it.next();
      if (r.done) {
        ended = true;
        break;
      }
      read.push(r.value);
      const c = r.value.choices[0];
      if (r.value.usage || (c && (('delta' in c ? c.delta.content : c.text) || c.token_ids?.length || c.finish_reason))) break;
    }
  } catch (e) {
    if (refused(e)) return e;
    throw e;
  }
  return (async function* () {
    try {
      yield* read;
      while (!ended) {
        const r = await it.next();
        if (r.done) ended = true;
        else yield r.value;
      }
    } finally {
      // The caller stopped early: the engine's request stops too.
      if (!ended) await it.return?.();
    }
  })();
}

/** Pieces of a local stream; `after`: a continuation of a remote's reply (its first token's time, tokens delivered). */
export async function* relayLocal(
  /** Counts a failure on the route it happened on. */
  failed: (replica: string) => void,
  stream: AsyncGenerator<ChatCompletionChunk | CompletionChunk>,
  arrival: number,
  /** Each output token's arrival time, appended to (a continuation's follow the remote's). */
  times: number[],
  replica: string,
  continuedBy: string | null,
  judge: (replica: string) => void,
  after?: { firstAt: number; delivered: number },
): AsyncGenerator<Piece> {
  let firstAt = after?.firstAt ?? null;
  let n = after?.delivered ?? 0;
  let finish: FinishReason | null = null;
  let decision: 'admitted' | 'best-effort' = 'admitted';
  let u: CompletionUsage | null = null;
  try {
    for await (const chunk of stream) {
      if (chunk.usage) {
        u = chunk.usage;
        if (chunk.webslo) decision = chunk.webslo.decision;
      }
      const c = chunk.choices[0];
      if (!c) continue;
      const text = 'delta' in c ? (c.delta.content ?? '') : c.text;
      const ids = c.token_ids ?? null;
      if (text || ids?.length) {
        const now = performance.now();
        firstAt ??= now;
        n += ids?.length ?? 1;
        // One time per token: the last chunk may carry held-back text with an empty id list (no token).
        for (let k = ids ? ids.length : 1; k > 0; k--) times.push(now);
        yield { type: 'delta', text, tokenIds: ids, logprobs: 'delta' in c ? (c.logprobs?.content ?? null) : null };
      }
      if (c.finish_reason) finish = c.finish_reason;
    }
  } catch (e) {
    if (!(e instanceof AbortError)) failed(continuedBy ?? replica);
    throw e;
  }
  const end = performance.now();
  const tpot = firstAt !== null && n > 1 ? (end - firstAt) / (n - 1) : null;
  const ttft = firstAt === null ? null : firstAt - arrival;
  judge(replica);
  // A continuation's usage counts only what the local engine produced; the caller's counts the whole reply.
  const whole = after && u ? { prompt_tokens: u.prompt_tokens - after.delivered, completion_tokens: n, total_tokens: u.prompt_tokens - after.delivered + n } : u;
  yield doneOf(finish ?? 'stop', whole, n, replica, continuedBy, ttft, tpot, decision);
}
