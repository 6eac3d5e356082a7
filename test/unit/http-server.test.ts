// `webslo serve`'s HTTP front on 127.0.0.1 in front of a scripted engine (no GPU): what the server
// itself decides. CORS (a preflight for an allowed origin, a 403 for another, errors readable by
// the allowed page), the app from the x-webslo-app header, a stream written event by event, and a
// client that goes away aborting its stream. The real engine behind it: test/gpu/serve.test.ts.

import { request as httpRequest } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { corsHeaders, startHttpServer, type RunningServer } from '../../src/cli/http-server.js';
import type { Engine } from '../../src/index.js';

/** What the scripted engine saw, and a stream that runs until it is aborted. */
const seen: { params: Record<string, unknown>[]; aborted: number } = { params: [], aborted: 0 };

function scriptedEngine(): Engine {
  const create = async (params: Record<string, unknown>): Promise<unknown> => {
    seen.params.push(params);
    if (!params['stream']) return { id: 'c1', object: 'chat.completion', choices: [{ index: 0, message: { role: 'assistant', content: 'ok' }, finish_reason: 'stop' }] };
    let aborted = false;
    const signal = params['signal'] as AbortSignal;
    return {
      abort: () => void (aborted = true),
      async *[Symbol.asyncIterator]() {
        for (let i = 0; ; i++) {
          if (aborted || signal.aborted) {
            seen.aborted++;
            throw Object.assign(new Error('aborted'), { name: 'AbortError' });
          }
          if (params['max_tokens'] !== undefined && i >= Number(params['max_tokens'])) return;
          yield { object: 'chat.completion.chunk', choices: [{ index: 0, delta: { content: `t${i}` } }] };
          await new Promise((r) => setTimeout(r, 5));
        }
      },
    };
  };
  return { info: { model: 'scripted' }, chat: { completions: { create } }, completions: { create } } as unknown as Engine;
}

describe('webslo serve HTTP front', () => {
  let server: RunningServer;
  beforeAll(async () => {
    server = await startHttpServer(scriptedEngine(), { host: '127.0.0.1', port: 0, apiKeys: ['k'], maxBodyBytes: 1 << 16, allowedOrigins: ['http://page.test'] });
  });
  afterAll(() => server.close());

  const auth = { authorization: 'Bearer k', 'content-type': 'application/json' };
  const chat = (extra: object = {}): string => JSON.stringify({ model: 'x', messages: [{ role: 'user', content: 'hi' }], ...extra });

  it('corsHeaders: none for a caller that is not a page, allowing ones for an allowed origin, null for another', () => {
    expect(corsHeaders(undefined, [])).toEqual({});
    expect(corsHeaders('http://a.test', ['http://a.test'])).toMatchObject({ 'access-control-allow-origin': 'http://a.test', vary: 'origin' });
    expect(corsHeaders('http://b.test', ['*'])).toMatchObject({ 'access-control-allow-origin': '*' });
    expect(corsHeaders('http://b.test', ['http://a.test'])).toBeNull();
    expect(corsHeaders('http://b.test')).toBeNull();
    // A page served through this host (a reverse proxy in front) is same-origin: nothing to allow.
    expect(corsHeaders('https://chat.example', [], 'chat.example')).toEqual({});
    expect(corsHeaders('http://127.0.0.1:8000', [], '127.0.0.1:8000')).toEqual({});
    expect(corsHeaders('http://127.0.0.1:5173', [], '127.0.0.1:8000')).toBeNull();
  });

  it('answers a preflight from the allowed origin and refuses another origin before the engine sees it', async () => {
    const pre = await fetch(`${server.url}/v1/chat/completions`, { method: 'OPTIONS', headers: { origin: 'http://page.test', 'access-control-request-headers': 'content-type, authorization' } });
    expect(pre.status).toBe(204);
    expect(pre.headers.get('access-control-allow-origin')).toBe('http://page.test');
    expect(pre.headers.get('access-control-allow-headers')).toBe('content-type, authorization');
    const n = seen.params.length;
    const other = await fetch(`${server.url}/v1/chat/completions`, { method: 'POST', headers: { ...auth, origin: 'http://other.test' }, body: chat() });
    expect(other.status).toBe(403);
    expect(((await other.json()) as { error: { code: string } }).error.code).toBe('origin_not_allowed');
    expect(seen.params.length).toBe(n);
    const wrongKey = await fetch(`${server.url}/v1/models`, { headers: { origin: 'http://page.test' } });
    expect([wrongKey.status, wrongKey.headers.get('access-control-allow-origin')]).toEqual([401, 'http://page.test']);
  });

  it('takes the app from x-webslo-app unless the body names one, and answers JSON with its length', async () => {
    const r = await fetch(`${server.url}/v1/chat/completions`, { method: 'POST', headers: { ...auth, 'x-webslo-app': 'chat' }, body: chat() });
    expect(r.status).toBe(200);
    const text = await r.text();
    expect(Number(r.headers.get('content-length'))).toBe(Buffer.byteLength(text));
    expect(seen.params.at(-1)!['app']).toBe('chat');
    await (await fetch(`${server.url}/v1/chat/completions`, { method: 'POST', headers: { ...auth, 'x-webslo-app': 'chat' }, body: chat({ app: 'own' }) })).text();
    expect(seen.params.at(-1)!['app']).toBe('own');
    // A body that starts with a byte-order mark is still JSON to this server.
    const bom = await fetch(`${server.url}/v1/chat/completions`, { method: 'POST', headers: auth, body: `\uFEFF${chat({ app: 'bom' })}` });
    expect(bom.status).toBe(200);
    await bom.text();
    expect(seen.params.at(-1)!['app']).toBe('bom');
    const bad = await fetch(`${server.url}/v1/chat/completions`, { method: 'POST', headers: { ...auth, 'x-webslo-app': 'chat' }, body: '{not json' });
    expect([bad.status, ((await bad.json()) as { error: { param: string } }).error.param]).toEqual([400, 'body']);
  });

  it('streams SSE event by event and ends with [DONE]', async () => {
    const r = await fetch(`${server.url}/v1/chat/completions`, { method: 'POST', headers: auth, body: chat({ stream: true, max_tokens: 3 }) });
    expect(r.headers.get('content-type')).toBe('text/event-stream; charset=utf-8');
    const text = await r.text();
    expect(text.split('\n\n').filter((e) => e !== '')).toEqual(
      [0, 1, 2].map((i) => `data: {"object":"chat.completion.chunk","choices":[{"index":0,"delta":{"content":"t${i}"}}]}`).concat('data: [DONE]'),
    );
  });

  it('a client that goes away mid-stream aborts the stream on the server', async () => {
    const before = seen.aborted;
    await new Promise<void>((resolve, reject) => {
      const req = httpRequest(`${server.url}/v1/chat/completions`, { method: 'POST', headers: auth }, (res) => {
        res.once('data', () => {
          req.destroy();
          resolve();
        });
      });
      req.on('error', () => {});
      req.end(chat({ stream: true }));
      setTimeout(() => reject(new Error('no first event')), 5000);
    });
    await expect.poll(() => seen.aborted, { timeout: 5000 }).toBe(before + 1);
    await expect.poll(() => server.inFlight, { timeout: 5000 }).toBe(0);
  });
});
