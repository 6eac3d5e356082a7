// An in-process `fetch` for OpenAI clients: `new OpenAI({ baseURL: 'http://webslo.local/v1',
// apiKey: 'unused', fetch: engineFetch(engine) })` sends its requests here instead of the network.
// POST .../chat/completions and .../completions (JSON, or SSE with stream: true), GET .../models.
// The routes themselves are openai-handler.ts; this file only turns a Request into its arguments
// and its reply into a Response.

import { jsonResponse, sseResponse, sseStream } from '../openai/sse.js';
import { answerOpenAi, type OpenAiServing } from './openai-handler.js';

export type { OpenAiServing } from './openai-handler.js';

export type FetchLike = (input: string | URL | Request, init?: RequestInit) => Promise<Response>;

export function engineFetch(engine: OpenAiServing): FetchLike {
  return async (input, init) => {
    const request = input instanceof Request ? input : new Request(input, init);
    const signal = init?.signal ?? request.signal;
    const reply = await answerOpenAi(engine, request.method, new URL(request.url).pathname, () => request.json(), signal ?? undefined);
    if (reply.kind === 'json') return jsonResponse(reply.body, reply.status, reply.headers);
    const { chunks } = reply;
    return sseResponse(sseStream(chunks, { onCancel: () => chunks.abort() }));
  };
}
