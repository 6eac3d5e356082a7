// `webslo serve` as a real process on 127.0.0.1 (tiny-qwen2 on Dawn, the paper's step times for
// the planner), driven by the official `openai` client: chat and completions, streamed and not,
// logprobs and usage; the app from a header; a 400 naming the field, a 401 for a wrong key, a 429
// with Retry-After for a decline; /health, /v1/models and /metrics (read by a Prometheus text
// parser); a disconnect frees the request's KV; SIGTERM under load ends every request and exits 0.

import OpenAI from 'openai';
import parsePrometheusTextFormat from 'parse-prometheus-text-format';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fixtureDir } from '../helpers/fixtures.js';
import { serveProcess, type Served } from '../helpers/serve-process.js';
import { legScope } from './gpu-config.js';

const KEY = 'test-key-0123';
/** The one origin whose pages may call the server (--allowed-origins). */
const ORIGIN = 'http://localhost:5173';

/** `webslo serve` with the test's apps and API key. */
async function serve(extra: string[] = []): Promise<Served> {
  // 'tight': a first token within 40 ms of the paper's clock, so a burst is partly declined.
  return serveProcess({ chat: { ttftMs: 60_000, tpotMs: 10_000 }, tight: { ttftMs: 40, tpotMs: 10_000 } }, ['--api-key', KEY, ...extra]);
}

// One server process compiles its pipelines once; the HTTP layer does not depend on the adapter.
describe.skipIf(legScope() !== 'full')('webslo serve', () => {
  let s: Served;
  let client: OpenAI;
  beforeAll(async () => {
    s = await serve(['--allowed-origins', ORIGIN]);
    client = new OpenAI({ baseURL: `${s.url}/v1`, apiKey: KEY, maxRetries: 0 });
  }, 150_000);
  afterAll(async () => {
    if (s && s.child.exitCode === null) {
      s.child.kill('SIGTERM');
      await s.exited;
    }
  });

  it('answers chat and completions through the openai client, streamed and not', async () => {
    const chat = await client.chat.completions.create({ model: 'x', messages: [{ role: 'user', content: 'Hello' }], max_tokens: 4, logprobs: true, top_logprobs: 2 });
    expect(chat.object).toBe('chat.completion');
    expect(chat.usage!.completion_tokens).toBeGreaterThan(0);
    expect(chat.choices[0]!.logprobs!.content!.length).toBe(chat.usage!.completion_tokens);
    const stream = await client.chat.completions.create({ model: 'x', messages: [{ role: 'user', content: 'Hello' }], max_tokens: 4, stream: true, stream_options: { include_usage: true } });
    const chunks = [];
    for await (const c of stream) chunks.push(c);
    const usage = chunks.at(-1)!.usage!;
    expect(usage.completion_tokens).toBeGreaterThan(0);
    expect(usage.completion_tokens).toBeLessThanOrEqual(4);
    const text = chunks.map((c) => c.choices[0]?.delta.content ?? '').join('');
    // Streamed and not, greedy: the same text.
    const again = await client.chat.completions.create({ model: 'x', messages: [{ role: 'user', content: 'Hello' }], max_tokens: 4 });
    expect(text).toBe(again.choices[0]!.message.content);
    const completion = await client.completions.create({ model: 'x', prompt: 'Once upon a time', max_tokens: 3, logprobs: 2 });
    expect(completion.choices[0]!.logprobs!.tokens).toHaveLength(completion.usage!.completion_tokens);
    const models = await client.models.list();
    expect(models.data.map((m) => m.id)).toEqual([fixtureDir('tiny-qwen2')]);
    const health = (await (await fetch(`${s.url}/health`)).json()) as { status: string };
    expect(health.status).toBe('ok');
  });

  it('takes the app from an x-webslo-app header or the body', async () => {
    const byHeader = await client.chat.completions.create({ model: 'x', messages: [{ role: 'user', content: 'hi' }], max_tokens: 2 }, { headers: { 'x-webslo-app': 'chat' } });
    expect((byHeader as unknown as { webslo: { app: string } }).webslo.app).toBe('chat');
    const byBody = await client.chat.completions.create({ model: 'x', messages: [{ role: 'user', content: 'hi' }], max_tokens: 2, app: 'chat' } as never);
    expect((byBody as unknown as { webslo: { app: string } }).webslo.app).toBe('chat');
    const none = await client.chat.completions.create({ model: 'x', messages: [{ role: 'user', content: 'hi' }], max_tokens: 2 });
    expect((none as unknown as { webslo: { app: string } }).webslo.app).toBe('default');
  });

  it('a bad request is a 400 naming the field; a wrong or missing key a 401', async () => {
    const bad = await client.chat.completions.create({ model: 'x', messages: [{ role: 'user', content: 'hi' }], temperature: -1 }).catch((e: unknown) => e);
    expect(bad).toBeInstanceOf(OpenAI.BadRequestError);
    expect((bad as InstanceType<typeof OpenAI.BadRequestError>).param).toBe('temperature');
    const wrong = new OpenAI({ baseURL: `${s.url}/v1`, apiKey: 'wrong', maxRetries: 0 });
    await expect(wrong.models.list()).rejects.toBeInstanceOf(OpenAI.AuthenticationError);
    const res = await fetch(`${s.url}/v1/models`);
    expect(res.status).toBe(401);
  });

  it('CORS: the allowed origin gets a preflight and readable replies (errors too); another origin is a 403 before anything runs', async () => {
    const preflight = await fetch(`${s.url}/v1/chat/completions`, {
      method: 'OPTIONS',
      headers: { origin: ORIGIN, 'access-control-request-method': 'POST', 'access-control-request-headers': 'authorization, content-type, x-webslo-app' },
    });
    expect(preflight.status).toBe(204);
    expect(preflight.headers.get('access-control-allow-origin')).toBe(ORIGIN);
    expect(preflight.headers.get('access-control-allow-methods')).toContain('POST');
    expect(preflight.headers.get('access-control-allow-headers')).toBe('authorization, content-type, x-webslo-app');
    const body = JSON.stringify({ model: 'x', messages: [{ role: 'user', content: 'hi' }], max_tokens: 2 });
    const ok = await fetch(`${s.url}/v1/chat/completions`, { method: 'POST', headers: { origin: ORIGIN, authorization: `Bearer ${KEY}`, 'content-type': 'application/json' }, body });
    expect(ok.status).toBe(200);
    expect(ok.headers.get('access-control-allow-origin')).toBe(ORIGIN);
    expect(ok.headers.get('access-control-expose-headers')).toContain('retry-after');
    await ok.json();
    // A page must read an error too (here a missing key).
    const unauthorized = await fetch(`${s.url}/v1/models`, { headers: { origin: ORIGIN } });
    expect(unauthorized.status).toBe(401);
    expect(unauthorized.headers.get('access-control-allow-origin')).toBe(ORIGIN);
    const before = (await (await fetch(`${s.url}/health`)).json()) as { running: number };
    const other = await fetch(`${s.url}/v1/chat/completions`, { method: 'POST', headers: { origin: 'http://evil.example', authorization: `Bearer ${KEY}`, 'content-type': 'text/plain' }, body });
    expect(other.status).toBe(403);
    expect(other.headers.get('access-control-allow-origin')).toBeNull();
    expect(((await other.json()) as { error: { code: string; message: string } }).error).toMatchObject({ code: 'origin_not_allowed', message: expect.stringContaining('--allowed-origins') });
    expect(before.running).toBe(0);
  });

  it('a declined request is a 429 with Retry-After, which the client would retry', async () => {
    const burst = await Promise.all(
      Array.from({ length: 12 }, (_, i) =>
        client.chat.completions
          .create({ model: 'x', messages: [{ role: 'user', content: `request ${i} of a burst with a longer prompt to prefill` }], max_tokens: 2 }, { headers: { 'x-webslo-app': 'tight' } })
          .then(() => 200)
          .catch((e: unknown) => e),
      ),
    );
    const limited = burst.filter((r): r is InstanceType<typeof OpenAI.RateLimitError> => r instanceof OpenAI.RateLimitError);
    expect(limited.length).toBeGreaterThan(0);
    expect(burst.every((r) => r === 200 || r instanceof OpenAI.RateLimitError)).toBe(true);
    expect(limited[0]!.headers?.get('retry-after')).toBe('1');
    expect((limited[0]!.error as { code?: string }).code).toBe('slo_declined');
  });

  it('/metrics is Prometheus text a parser reads, and its counters are what the requests above did', async () => {
    const res = await fetch(`${s.url}/metrics`);
    expect(res.headers.get('content-type')).toMatch(/^text\/plain; version=0.0.4/);
    const text = await res.text();
    const families = parsePrometheusTextFormat(text);
    const get = (name: string): (typeof families)[number] => families.find((f) => f.name === `webslo:${name}`)!;
    const byApp = (name: string): Record<string, number> => Object.fromEntries(get(name).metrics.map((m) => [m.labels!['app']!, Number(m.value)]));
    expect(get('request_success_total').type).toBe('COUNTER');
    // The tests above: 'chat' served 2 requests, the default app 6, 'tight' declined at least one.
    expect(byApp('request_success_total')['chat']).toBe(2);
    expect(byApp('request_success_total')['default']).toBe(6);
    expect(byApp('request_declined_total')['tight']).toBeGreaterThan(0);
    expect(byApp('request_declined_total')['tight']! + (byApp('request_success_total')['tight'] ?? 0)).toBe(12);
    expect(get('time_to_first_token_seconds').type).toBe('HISTOGRAM');
    // Every completed request is in its app's histogram (the +Inf bucket counts them all).
    const inf = text.match(/^webslo:time_to_first_token_seconds_bucket\{model_name="[^"]*",app="default",le="\+Inf"\} (\d+)$/m);
    expect(Number(inf![1])).toBe(6);
    const health = (await (await fetch(`${s.url}/health`)).json()) as { kv: { pagesUsed: number } };
    expect(Number(get('kv_cache_pages').metrics.find((m) => m.labels!['state'] === 'used')!.value)).toBe(health.kv.pagesUsed);
  });

  it('a client that disconnects aborts its request: nothing runs and no KV page is held after', async () => {
    const abort = new AbortController();
    const stream = await client.completions.create({ model: 'x', prompt: 'a long one', max_tokens: 3000, stream: true, ignore_eos: true } as never, { signal: abort.signal });
    let n = 0;
    try {
      for await (const chunk of stream as unknown as AsyncIterable<unknown>) {
        void chunk;
        if (++n === 3) abort.abort();
      }
    } catch {
      // the client's own AbortError
    }
    type Health = { running: number; kv: { pagesUsed: number } };
    let h: Health = { running: -1, kv: { pagesUsed: -1 } };
    for (let i = 0; i < 100; i++) {
      h = (await (await fetch(`${s.url}/health`)).json()) as Health;
      if (h.running === 0 && h.kv.pagesUsed === 0) break;
      await new Promise((r) => setTimeout(r, 50));
    }
    expect(h).toMatchObject({ running: 0, kv: { pagesUsed: 0 } });
  });

  it('SIGTERM under load: running requests end, new ones are refused, the process exits 0', async () => {
    const t = await serve(['--grace-s', '1']);
    const c = new OpenAI({ baseURL: `${t.url}/v1`, apiKey: KEY, maxRetries: 0 });
    const ended: string[] = [];
    const started: Promise<void>[] = [];
    const running = Array.from({ length: 4 }, async (_, i) => {
      const stream = await c.completions.create({ model: 'x', prompt: `long ${i}`, max_tokens: 3000, stream: true, ignore_eos: true } as never);
      let first!: () => void;
      started.push(new Promise<void>((r) => (first = r)));
      try {
        for await (const chunk of stream as unknown as AsyncIterable<unknown>) {
          void chunk;
          first();
        }
        ended.push('completed');
      } catch (e) {
        first();
        ended.push((e as Error).message);
      }
    });
    await new Promise((r) => setTimeout(r, 1500));
    await Promise.all(started);
    t.child.kill('SIGTERM');
    const code = await t.exited;
    await Promise.all(running);
    expect(code).toBe(0);
    expect(ended).toHaveLength(4);
    // Past the grace period the engine unloaded under them: each stream ended with its error.
    for (const e of ended) expect(e).toMatch(/unloaded|EngineClosed/);
    expect(t.stderr()).toMatch(/SIGTERM: no new requests; 4 running/);
    await expect(fetch(`${t.url}/health`)).rejects.toThrow();
  }, 120_000);
});
