// HTTP framing for an in-process `fetch` handler (so the official `openai` client can talk to the
// engine without a network): Server-Sent Events for streams, JSON bodies, and OpenAI's error body
// `{error: {message, type, param, code}}` with a status chosen by the error's `name` (errors from
// other modules are matched by name, not class, so this module imports none of them).
//
// Status mapping (the openai SDK retries 408/409/429/5xx by itself, so only load-dependent
// failures may be 429 or 5xx):
//   InvalidRequestError                       400 invalid_request_error  (param from the error)
//   PromptTooLongError                        400 invalid_request_error  code context_length_exceeded
//   ChatTemplateError missing/raised/render   400 invalid_request_error  code chat_template_error
//   ChatTemplateError syntax                  500 server_error           (the model's template is broken)
//   SloError, reason 'slo' (declined by load) 429 rate_limit_error       code slo_declined, Retry-After: 1
//   SloError, reason 'kv-exhausted'           400 invalid_request_error  code kv_cache_exhausted
//   SloError, otherwise (impossible SLO)      400 invalid_request_error  code slo_unattainable
//   AbortError                                499 request_aborted        (nginx's "client closed request")
//   DeviceLostError, EngineClosedError        503 server_error           code engine_unavailable
//   anything else                             500 server_error

import type { OpenAIErrorBody } from './types.js';

export interface HttpError {
  status: number;
  body: OpenAIErrorBody;
}

const field = (e: object, key: string): unknown => (e as Record<string, unknown>)[key];

/** The HTTP status and OpenAI error body for a thrown value. */
export function toHttpError(e: unknown): HttpError {
  const name = typeof e === 'object' && e !== null && typeof field(e, 'name') === 'string' ? (field(e, 'name') as string) : '';
  const message = e instanceof Error ? e.message : typeof e === 'object' && e !== null && typeof field(e, 'message') === 'string' ? (field(e, 'message') as string) : String(e);
  const make = (status: number, type: string, code: string | null, param: string | null = null): HttpError => ({
    status,
    body: { error: { message, type, param, code } },
  });
  const obj = typeof e === 'object' && e !== null ? e : {};
  switch (name) {
    case 'InvalidRequestError': {
      const param = field(obj, 'param');
      return make(400, 'invalid_request_error', null, typeof param === 'string' ? param : null);
    }
    case 'PromptTooLongError':
      return make(400, 'invalid_request_error', 'context_length_exceeded');
    case 'ChatTemplateError':
      return field(obj, 'kind') === 'syntax' ? make(500, 'server_error', 'chat_template_error') : make(400, 'invalid_request_error', 'chat_template_error');
    case 'SloError': {
      const reason = field(obj, 'reason');
      if (reason === 'slo' || reason === 'not-admitted') return make(429, 'rate_limit_error', 'slo_declined');
      return make(400, 'invalid_request_error', reason === 'kv-exhausted' ? 'kv_cache_exhausted' : 'slo_unattainable');
    }
    case 'RemoteReplicaError':
      return make(502, 'server_error', 'replica_failed');
    case 'AbortError':
      return make(499, 'request_aborted', 'request_aborted');
    case 'DeviceLostError':
    case 'EngineClosedError':
      return make(503, 'server_error', 'engine_unavailable');
    default:
      return make(500, 'server_error', null);
  }
}

const JSON_HEADERS = { 'content-type': 'application/json' };

/** A JSON response (the non-streamed result). */
export function jsonResponse(body: unknown, status = 200, headers: Record<string, string> = {}): Response {
  return new Response(JSON.stringify(body), { status, headers: { ...JSON_HEADERS, ...headers } });
}

/**
 * Seconds a declined client is told to wait (Retry-After on a 429): about one re-plan of a loaded
 * engine. The openai SDK honours it (and otherwise backs off on its own).
 */
export const DECLINE_RETRY_AFTER_S = 1;

/** An error response as OpenAI's API sends one; a 429 carries Retry-After. */
export function errorResponse(e: unknown): Response {
  const { status, body } = toHttpError(e);
  return jsonResponse(body, status, errorHeaders(status));
}

/** The headers an error reply with `status` carries: Retry-After on a 429. */
export const errorHeaders = (status: number): Record<string, string> => (status === 429 ? { 'retry-after': String(DECLINE_RETRY_AFTER_S) } : {});

/** One SSE event carrying `data` as JSON. */
export const sseEvent = (data: unknown): string => `data: ${JSON.stringify(data)}\n\n`;

/** The event that ends an OpenAI stream. */
export const SSE_DONE = 'data: [DONE]\n\n';

/**
 * Chunks -> `data: {json}\n\n` events, then `data: [DONE]\n\n`; if the chunks throw, one
 * `data: {"error": ...}` event and no [DONE] (what sseStream sends, for a writer that is not a
 * ReadableStream: `webslo serve` writes these strings to its socket).
 */
export async function* sseEvents(chunks: AsyncIterable<unknown> | Iterable<unknown>): AsyncGenerator<string, void, undefined> {
  try {
    for await (const chunk of chunks) yield sseEvent(chunk);
  } catch (e) {
    yield sseEvent(toHttpError(e).body);
    return;
  }
  yield SSE_DONE;
}

export interface SseStreamOptions {
  /** Called when the reader cancels (the client aborted): abort the request there. */
  onCancel?: (reason: unknown) => void;
}

/**
 * Chunks -> `data: {json}\n\n` events, then `data: [DONE]\n\n`. Pull-based, so a slow reader
 * slows the iteration. If the iterator throws, the stream sends `data: {"error": ...}` (the openai
 * SDK raises it as an APIError) and closes without [DONE]. Cancelling the stream returns the
 * iterator (running its finally blocks) and calls onCancel.
 */
export function sseStream(chunks: AsyncIterable<unknown> | Iterable<unknown>, options: SseStreamOptions = {}): ReadableStream<Uint8Array> {
  const encoder = new TextEncoder();
  // The framing is sseEvents'; this adds only the ReadableStream around it.
  const events = sseEvents(chunks);
  let finished = false;
  return new ReadableStream<Uint8Array>({
    async pull(controller) {
      if (finished) return;
      const next = await events.next();
      if (finished) return; // cancelled while this event was on its way
      if (next.done) {
        finished = true;
        controller.close();
      } else controller.enqueue(encoder.encode(next.value));
    },
    async cancel(reason) {
      if (finished) return;
      finished = true;
      options.onCancel?.(reason);
      await events.return();
    },
  });
}

/** The headers of an OpenAI stream. */
export const SSE_HEADERS: Readonly<Record<string, string>> = { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-cache', connection: 'keep-alive' };

/** A streaming response with the SSE headers. */
export function sseResponse(stream: ReadableStream<Uint8Array>): Response {
  return new Response(stream, { status: 200, headers: SSE_HEADERS });
}
