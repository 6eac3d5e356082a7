// One request to a remote OpenAI-compatible server (vLLM, llama.cpp's llama-server, another
// `webslo serve`), always streamed: the Router reads the first token's time and every token from
// the stream, whether or not its own caller asked for a stream. Parses Server-Sent Events as the
// servers write them (`data: {json}` lines, events split by a blank line, `data: [DONE]` at the
// end) and turns every failure into a RemoteReplicaError that says which replica, in which phase,
// and what came back.
//
// Invariants: the generator yields only parsed deltas; it ends normally only after a chunk with a
// finish_reason (or [DONE] after one); anything else (a closed connection, a stall the caller
// aborts, malformed JSON, an HTTP error) is thrown as RemoteReplicaError.

import { RemoteReplicaError } from '../openai/errors.js';
export { RemoteReplicaError };
import type { ChatCompletionTokenLogprob, CompletionUsage, FinishReason } from '../openai/types.js';

export interface RemoteReplicaConfig {
  /** Base URL of its OpenAI API, e.g. http://10.0.0.5:8000/v1. */
  url: string;
  /** The model name it serves (sent as `model`). */
  model: string;
  /** Sent as `Authorization: Bearer <apiKey>`. */
  apiKey?: string;
  /** A name for stats and errors (default: the URL's host). */
  name?: string;
  /** At most this many requests there at once (default: no limit). */
  maxInFlight?: number;
  /** No first token this long after sending: it failed (default: the Router's firstTokenTimeoutMs). */
  firstTokenTimeoutMs?: number;
  /**
   * Ask for vLLM's `return_token_ids` (webslo serve and vLLM >= 0.10.2 honour it): a stream cut
   * mid-way then continues locally from the exact tokens. Default true; false for servers that
   * refuse unknown fields (the local continuation then re-tokenizes the text delivered).
   */
  tokenIds?: boolean;
}

/** One parsed chunk of a remote stream. */
export interface RemoteDelta {
  text: string;
  tokenIds: number[] | null;
  logprobs: ChatCompletionTokenLogprob[] | null;
  finishReason: FinishReason | null;
  usage: CompletionUsage | null;
}

export type FetchFn = (input: string, init: RequestInit) => Promise<Response>;

/** Stream a chat or legacy completion from `config`; `body` is the OpenAI request body (stream is forced on). */
export async function* streamRemote(
  config: RemoteReplicaConfig,
  name: string,
  endpoint: 'chat' | 'completions',
  body: Record<string, unknown>,
  signal: AbortSignal,
  fetchFn: FetchFn,
): AsyncGenerator<RemoteDelta> {
  const url = `${config.url.replace(/\/+$/, '')}/${endpoint === 'chat' ? 'chat/completions' : 'completions'}`;
  const headers: Record<string, string> = { 'content-type': 'application/json', accept: 'text/event-stream' };
  if (config.apiKey) headers['authorization'] = `Bearer ${config.apiKey}`;
  const sent = { ...body, model: config.model, stream: true, stream_options: { include_usage: true }, ...(config.tokenIds === false ? {} : { return_token_ids: true }) };
  let res: Response;
  try {
    res = await fetchFn(url, { method: 'POST', headers, body: JSON.stringify(sent), signal });
  } catch (e) {
    throw signal.aborted ? abortReason(signal, name) : new RemoteReplicaError(name, 'connect', messageOf(e));
  }
  if (!res.ok || !res.body) {
    const text = await res.text().catch(() => '');
    throw new RemoteReplicaError(name, 'status', errorText(text) || res.statusText || 'no body', res.status);
  }
  const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = '';
  let finished = false;
  try {
    for (;;) {
      let chunk: ReadableStreamReadResult<string>;
      try {
        chunk = await reader.read();
      } catch (e) {
        throw signal.aborted ? abortReason(signal, name) : new RemoteReplicaError(name, 'stream', `the connection broke (${messageOf(e)})`);
      }
      if (chunk.done) break;
      buffer += chunk.value;
      // Events end with a blank line (\n\n, or \r\n\r\n).
      for (let at = eventEnd(buffer); at !== null; at = eventEnd(buffer)) {
        const event = buffer.slice(0, at.index);
        buffer = buffer.slice(at.index + at.length);
        const data = dataOf(event);
        if (data === '') continue;
        if (data === '[DONE]') {
          if (!finished) throw new RemoteReplicaError(name, 'stream', 'ended ([DONE]) without a finish_reason');
          return;
        }
        const delta = parseChunk(data, name);
        if (delta.finishReason) finished = true;
        yield delta;
      }
    }
    // A last event without its blank line.
    const last = dataOf(buffer);
    if (last !== '' && last !== '[DONE]') {
      const delta = parseChunk(last, name);
      if (delta.finishReason) finished = true;
      yield delta;
    }
  } finally {
    reader.releaseLock();
    void res.body.cancel().catch(() => {});
  }
  if (!finished) throw new RemoteReplicaError(name, 'stream', 'the connection closed before the reply finished');
}

/** An event's data: its `data:` lines joined by newlines (lines end with \n, \r\n or \r). */
function dataOf(event: string): string {
  return event
    .split(/\r\n|\r|\n/)
    .filter((l) => l.startsWith('data:'))
    .map((l) => l.slice(5).replace(/^ /, ''))
    .join('\n');
}

function eventEnd(buffer: string): { index: number; length: number } | null {
  const m = /\r\n\r\n|\n\n|\r\r/.exec(buffer);
  return m ? { index: m.index, length: m[0].length } : null;
}

type Obj = Record<string, unknown>;
const isObj = (x: unknown): x is Obj => typeof x === 'object' && x !== null && !Array.isArray(x);

function parseChunk(data: string, name: string): RemoteDelta {
  let o: unknown;
  try {
    o = JSON.parse(data);
  } catch {
    throw new RemoteReplicaError(name, 'stream', `sent a chunk that is not JSON: ${data.slice(0, 120)}`);
  }
  if (!isObj(o)) throw new RemoteReplicaError(name, 'stream', 'sent a chunk that is not an object');
  if (isObj(o['error'])) throw new RemoteReplicaError(name, 'stream', `sent an error: ${String(o['error']['message'] ?? JSON.stringify(o['error']))}`);
  const usage = isObj(o['usage']) ? (o['usage'] as unknown as CompletionUsage) : null;
  const choices = Array.isArray(o['choices']) ? o['choices'] : [];
  const c: unknown = choices[0];
  if (!isObj(c)) return { text: '', tokenIds: null, logprobs: null, finishReason: null, usage };
  const delta = isObj(c['delta']) ? c['delta'] : null;
  const text = delta ? (typeof delta['content'] === 'string' ? delta['content'] : '') : typeof c['text'] === 'string' ? c['text'] : '';
  const ids = Array.isArray(c['token_ids']) && c['token_ids'].every((t) => Number.isInteger(t)) ? (c['token_ids'] as number[]) : null;
  const lp = isObj(c['logprobs']) && Array.isArray(c['logprobs']['content']) ? (c['logprobs']['content'] as ChatCompletionTokenLogprob[]) : null;
  const fr = c['finish_reason'];
  // vLLM ends a reply it aborted with 'abort': a broken reply, not a finished one.
  if (fr === 'abort') throw new RemoteReplicaError(name, 'stream', "ended the reply with finish_reason 'abort'");
  const finishReason = fr === 'stop' || fr === 'length' ? fr : typeof fr === 'string' && fr !== '' ? 'stop' : null;
  return { text, tokenIds: ids, logprobs: lp, finishReason, usage };
}

function errorText(body: string): string {
  try {
    const o: unknown = JSON.parse(body);
    if (isObj(o) && isObj(o['error']) && typeof o['error']['message'] === 'string') return o['error']['message'];
  } catch {
    // not JSON: the text itself
  }
  return body.slice(0, 200);
}

function messageOf(e: unknown): string {
  if (e instanceof Error) {
    const cause = (e as { cause?: unknown }).cause;
    return cause instanceof Error ? `${e.message}: ${cause.message}` : e.message;
  }
  return String(e);
}

function abortReason(signal: AbortSignal, name: string): Error {
  const r: unknown = signal.reason;
  return r instanceof Error ? r : new RemoteReplicaError(name, 'stream', 'aborted');
}
