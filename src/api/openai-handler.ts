// OpenAI's routes answered from an engine (or a Router), without any HTTP objects: a method, a path
// and a parsed body in; a JSON reply or a stream of chunks out. Two fronts wrap it: engineFetch
// (an in-process `fetch`: Request -> Response, for the `openai` client in a page) and `webslo
// serve` (node:http, which writes the reply to the socket itself and so skips building Fetch API
// Request/Response objects around each request: about half of the time the HTTP path added).
//
// Invariants: every failure is a JSON reply with OpenAI's error body and its status (sse.ts); a
// stream reply's chunks are the engine's own stream, so whoever ends reading early must abort it.

import type { ChatParams, ChunkStream, CompletionParams, Engine } from './engine.js';
import { errorHeaders, toHttpError } from '../openai/sse.js';
import { InvalidRequestError } from '../openai/errors.js';

/** What the fronts serve: an Engine, or a Router in front of several. */
export type OpenAiServing = Pick<Engine, 'chat' | 'completions'> & { readonly info: { readonly model: string } };

export type OpenAiReply = { kind: 'json'; status: number; headers: Record<string, string>; body: unknown } | { kind: 'stream'; chunks: ChunkStream<unknown> };

/** A thrown value as OpenAI's error reply; a 429 carries Retry-After. */
export function errorReply(e: unknown): OpenAiReply {
  const { status, body } = toHttpError(e);
  return { kind: 'json', status, headers: errorHeaders(status), body };
}

/**
 * Answer one OpenAI request. `path` is the URL path without the query (any prefix before /models,
 * /chat/completions or /completions); `readBody` gives the parsed JSON body and throws on bad JSON.
 */
export async function answerOpenAi(engine: OpenAiServing, method: string, path: string, readBody: () => Promise<unknown>, signal?: AbortSignal): Promise<OpenAiReply> {
  const route = path.replace(/\/+$/, '');
  try {
    if (method === 'GET' && route.endsWith('/models')) {
      return { kind: 'json', status: 200, headers: {}, body: { object: 'list', data: [{ id: engine.info.model, object: 'model', created: 0, owned_by: 'webslo' }] } };
    }
    const chat = route.endsWith('/chat/completions');
    if (!chat && !route.endsWith('/completions')) return errorReply(new InvalidRequestError('url', `no route for ${method} ${route} (POST /v1/chat/completions or /v1/completions)`));
    if (method !== 'POST') return errorReply(new InvalidRequestError('method', `${method} is not supported on ${route}: use POST`));
    let body: unknown;
    try {
      body = await readBody();
    } catch {
      return errorReply(new InvalidRequestError('body', 'is not valid JSON'));
    }
    if (typeof body !== 'object' || body === null || Array.isArray(body)) return errorReply(new InvalidRequestError('body', 'must be a JSON object'));
    const params = { ...(body as Record<string, unknown>), ...(signal ? { signal } : {}) };
    const result = chat ? await engine.chat.completions.create(params as unknown as ChatParams) : await engine.completions.create(params as unknown as CompletionParams);
    if (Symbol.asyncIterator in result) return { kind: 'stream', chunks: result as ChunkStream<unknown> };
    return { kind: 'json', status: 200, headers: {}, body: result };
  } catch (e) {
    return errorReply(e);
  }
}
