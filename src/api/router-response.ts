// What the Router streams from wherever a request runs (Piece: a delta or the end), and how those
// pieces become the caller's response: OpenAI chunks (streamed) or one chat completion or legacy
// completion, with webslo's response info saying which replica served it.
//
// Invariants: a stream's abort() makes its next read reject with AbortError, as the engine's do;
// breaking out of `for await` stops the request (its AbortController) without an error.

import { AbortError } from '../engine/errors.js';
import type { NormalizedChatRequest, NormalizedCompletionRequest } from '../openai/validate.js';
import { chatChunk, chatCompletion, chatUsageChunk, completion, completionChunk, completionUsageChunk, createdAt, newChatCompletionId, newCompletionId, usage } from '../openai/responses.js';
import { ReplyToolCalls, type ToolCallFormat } from '../openai/tool-calls.js';
import type { ChatCompletion, ChatCompletionChunk, ChatCompletionTokenLogprob, Completion, CompletionChunk, CompletionUsage, FinishReason, WebsloResponseInfo } from '../openai/types.js';
import type { ChunkStream } from './engine.js';

export type Piece =
  | { type: 'delta'; text: string; tokenIds: number[] | null; logprobs: ChatCompletionTokenLogprob[] | null }
  | {
      type: 'done';
      finishReason: FinishReason;
      usage: CompletionUsage | null;
      completionTokens: number;
      replica: string;
      continuedBy: string | null;
      decision: 'admitted' | 'best-effort';
      ttftMs: number | null;
      tpotMs: number | null;
    };

export function doneOf(
  finishReason: FinishReason,
  u: CompletionUsage | null,
  completionTokens: number,
  replica: string,
  continuedBy: string | null,
  ttftMs: number | null,
  tpotMs: number | null,
  decision: 'admitted' | 'best-effort' = 'admitted',
): Piece {
  return { type: 'done', finishReason, usage: u, completionTokens, replica, continuedBy, decision, ttftMs, tpotMs };
}

/**
 * The caller's response from a request's pieces: `first` (already read, so errors at submit reject
 * the create call) and the rest of `pieces`; `cancel` stops the request wherever it runs.
 */
export function respond(
  kind: 'chat' | 'completions',
  norm: NormalizedChatRequest | NormalizedCompletionRequest,
  model: string,
  app: string,
  first: IteratorResult<Piece>,
  pieces: AsyncGenerator<Piece>,
  cancel: AbortController,
  /** Chat requests whose replies are parsed for tool calls: the format (else null). */
  toolFormat: ToolCallFormat | null = null,
): ChunkStream<ChatCompletionChunk | CompletionChunk> | Promise<ChatCompletion | Completion> {
  const header = { id: kind === 'chat' ? newChatCompletionId() : newCompletionId(), created: createdAt(), model };
  const wantIds = norm.returnTokenIds;
  const logprobs = norm.logprobs;
  const info = (d: Piece & { type: 'done' }): WebsloResponseInfo => ({
    app,
    decision: d.decision,
    replica: d.replica,
    ...(d.continuedBy ? { continued_by: d.continuedBy } : {}),
    ...(d.ttftMs !== null ? { ttft_ms: d.ttftMs } : {}),
    ...(d.tpotMs !== null ? { tpot_ms: d.tpotMs } : {}),
  });
  const all = (async function* (): AsyncGenerator<Piece> {
    if (!first.done) yield first.value;
    yield* pieces;
  })();
  if (norm.stream) {
    const includeUsage = norm.includeUsage;
    const calls = new ReplyToolCalls(toolFormat);
    const chunks = async function* (): AsyncGenerator<ChatCompletionChunk | CompletionChunk> {
      if (kind === 'chat') yield chatChunk({ ...header, role: true, content: '', includeUsage });
      for await (const p of all) {
        if (p.type === 'delta') {
          const { content, toolCalls } = calls.push(p.text);
          if (!content && toolCalls.length === 0 && !(wantIds && p.tokenIds?.length) && !(logprobs && p.logprobs?.length)) continue;
          const ids = wantIds ? { tokenIds: p.tokenIds ?? [] } : {};
          yield kind === 'chat'
            ? chatChunk({ ...header, content, toolCalls, ...(logprobs ? { logprobs: p.logprobs ?? [] } : {}), ...ids, includeUsage })
            : completionChunk({ ...header, text: p.text, ...ids, includeUsage });
        } else {
          const u = p.usage ?? usage(0, p.completionTokens);
          if (kind === 'chat') {
            const rest = calls.end();
            if (rest.content || rest.toolCalls.length > 0) yield chatChunk({ ...header, ...rest, includeUsage });
            yield chatChunk({ ...header, finishReason: calls.finishReason(p.finishReason), includeUsage });
            if (includeUsage) yield chatUsageChunk({ ...header, usage: u, webslo: info(p) });
          } else {
            yield completionChunk({ ...header, text: '', finishReason: p.finishReason, includeUsage });
            if (includeUsage) yield completionUsageChunk({ ...header, usage: u, webslo: info(p) });
          }
        }
      }
    };
    const gen = chunks();
    let aborted = false;
    const stop = (): void => {
      cancel.abort(new AbortError());
      void gen.return(undefined).then(() => pieces.return(undefined));
    };
    const stream: ChunkStream<ChatCompletionChunk | CompletionChunk> = {
      // As the engine's streams: abort() makes the reader's next read reject with AbortError.
      abort: () => {
        aborted = true;
        stop();
      },
      [Symbol.asyncIterator]: () => ({
        next: () => (aborted ? Promise.reject(new AbortError()) : gen.next()),
        // Breaking out of `for await` stops the request too.
        return: async () => {
          stop();
          return { value: undefined, done: true };
        },
      }),
    };
    return stream;
  }
  return (async () => {
    let text = '';
    const lps: ChatCompletionTokenLogprob[] = [];
    const ids: number[] = [];
    for await (const p of all) {
      if (p.type === 'delta') {
        text += p.text;
        if (p.logprobs) lps.push(...p.logprobs);
        if (p.tokenIds) ids.push(...p.tokenIds);
        continue;
      }
      const u = p.usage ?? usage(0, p.completionTokens);
      const extra = { ...(wantIds ? { tokenIds: ids } : {}), webslo: info(p) };
      return kind === 'chat'
        ? chatCompletion({ ...header, ...new ReplyToolCalls(toolFormat).whole(text, p.finishReason), usage: u, ...(logprobs ? { logprobs: lps } : {}), ...extra })
        : completion({ ...header, text, finishReason: p.finishReason, usage: u, ...extra });
    }
    throw new AbortError('the request ended without a result');
  })();
}
