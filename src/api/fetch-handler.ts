// An in-process `fetch` for OpenAI clients: `new OpenAI({ baseURL: 'http://webslo.local/v1',
// apiKey: 'unused', fetch: engineFetch(engine) })` sends its requests here instead of the network.
// POST .../chat/completions and .../completions (JSON, or SSE with stream: true), GET .../models.

import type { ChatParams, CompletionParams, Engine } from './engine.js';
import { errorResponse, jsonResponse, sseResponse, sseStream } from '../openai/sse.js';
import { InvalidRequestError } from '../openai/errors.js';

export type FetchLike = (input: string | URL | Request, init?: RequestInit) => Promise<Response>;

/** What engineFetch serves: an Engine, or a Router in front of several. */
export type OpenAiServing = Pick<Engine, 'chat' | 'completions'> & { readonly info: { readonly model: string } };

export function engineFetch(engine: OpenAiServing): FetchLike {
  return async (input, init) => {
    const request = input instanceof Request ? input : new Request(input, init);
    const path = new URL(request.url).pathname.replace(/\/+$/, '');
    const signal = init?.signal ?? request.signal;
    try {
      if (request.method === 'GET' && path.endsWith('/models')) {
        return jsonResponse({ object: 'list', data: [{ id: engine.info.model, object: 'model', created: 0, owned_by: 'webslo' }] });
      }
      const chat = path.endsWith('/chat/completions');
      if (!chat && !path.endsWith('/completions')) return errorResponse(new InvalidRequestError('url', `no route for ${request.method} ${path} (POST /v1/chat/completions or /v1/completions)`));
      if (request.method !== 'POST') return errorResponse(new InvalidRequestError('method', `${request.method} is not supported on ${path}: use POST`));
      let body: unknown;
      try {
        body = await request.json();
      } catch {
        return errorResponse(new InvalidRequestError('body', 'is not valid JSON'));
      }
      if (typeof body !== 'object' || body === null || Array.isArray(body)) return errorResponse(new InvalidRequestError('body', 'must be a JSON object'));
      const params = { ...(body as Record<string, unknown>), ...(signal ? { signal } : {}) };
      const result = chat ? await engine.chat.completions.create(params as unknown as ChatParams) : await engine.completions.create(params as unknown as CompletionParams);
      if (Symbol.asyncIterator in result) return sseResponse(sseStream(result, { onCancel: () => result.abort() }));
      return jsonResponse(result);
    } catch (e) {
      return errorResponse(e);
    }
  };
}
