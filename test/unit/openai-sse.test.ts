import { describe, expect, it } from 'vitest';
import { ChatTemplateError, errorResponse, InvalidRequestError, jsonResponse, SSE_DONE, sseEvent, sseEvents, sseResponse, sseStream, toHttpError } from '../../src/openai/index.js';

/** Errors shaped like the engine's (matched by name, as sse.ts does). */
function named(name: string, message: string, fields: Record<string, unknown> = {}): Error {
  const e = new Error(message);
  e.name = name;
  return Object.assign(e, fields);
}

async function readAll(stream: ReadableStream<Uint8Array>): Promise<string> {
  return new Response(stream).text();
}

/** Parse SSE as the openai SDK does: `data:` lines, events split by blank lines, [DONE] ends it. */
function parseSse(text: string): { events: unknown[]; done: boolean } {
  const events: unknown[] = [];
  let done = false;
  for (const block of text.split('\n\n')) {
    if (block === '') continue;
    expect(block.startsWith('data: ')).toBe(true);
    const data = block.slice('data: '.length);
    if (data === '[DONE]') done = true;
    else events.push(JSON.parse(data));
  }
  return { events, done };
}

describe('toHttpError', () => {
  it('maps typed errors to statuses and OpenAI error bodies', () => {
    const cases: [unknown, number, string, string | null, string | null][] = [
      [new InvalidRequestError('top_logprobs', 'top_logprobs must be an integer in 0..20 (got 25)'), 400, 'invalid_request_error', 'top_logprobs', null],
      [named('InvalidRequestError', "'max_tokens' too big", { param: 'max_tokens' }), 400, 'invalid_request_error', 'max_tokens', null],
      [named('PromptTooLongError', 'the prompt has 9000 tokens'), 400, 'invalid_request_error', null, 'context_length_exceeded'],
      [new ChatTemplateError('raised', 'roles must alternate'), 400, 'invalid_request_error', null, 'chat_template_error'],
      [new ChatTemplateError('missing', 'no chat_template'), 400, 'invalid_request_error', null, 'chat_template_error'],
      [new ChatTemplateError('syntax', 'does not parse'), 500, 'server_error', null, 'chat_template_error'],
      [named('SloError', 'declined', { reason: 'slo' }), 429, 'rate_limit_error', null, 'slo_declined'],
      [named('SloError', 'outgrew', { reason: 'kv-exhausted' }), 400, 'invalid_request_error', null, 'kv_cache_exhausted'],
      [named('SloError', "app 'a': field 'ttftMs' is 1 ms"), 400, 'invalid_request_error', null, 'slo_unattainable'],
      [named('AbortError', 'the request was aborted'), 499, 'request_aborted', null, 'request_aborted'],
      [named('DeviceLostError', 'lost'), 503, 'server_error', null, 'engine_unavailable'],
      [named('EngineClosedError', 'closed'), 503, 'server_error', null, 'engine_unavailable'],
      [new TypeError('boom'), 500, 'server_error', null, null],
    ];
    for (const [e, status, type, param, code] of cases) {
      const r = toHttpError(e);
      expect(r.status).toBe(status);
      expect(r.body).toEqual({ error: { message: (e as Error).message, type, param, code } });
    }
    expect(toHttpError('plain string').body.error.message).toBe('plain string');
    expect(toHttpError({ name: 'AbortError', message: 'gone' }).status).toBe(499);
  });

  it('makes JSON responses', async () => {
    const r = errorResponse(new InvalidRequestError('n', 'n must be 1 (got 2)'));
    expect(r.status).toBe(400);
    expect(r.headers.get('content-type')).toBe('application/json');
    expect(await r.json()).toEqual({ error: { message: 'n must be 1 (got 2)', type: 'invalid_request_error', param: 'n', code: null } });
    expect(errorResponse(named('AbortError', 'aborted')).status).toBe(499);
    const ok = jsonResponse({ a: 1 });
    expect([ok.status, await ok.text()]).toEqual([200, '{"a":1}']);
  });
});

describe('sseStream', () => {
  it('frames each chunk as a data event and ends with [DONE]', async () => {
    async function* chunks(): AsyncGenerator<unknown> {
      yield { a: 1 };
      yield { text: 'line\nbreak: "quoted" €' };
    }
    const text = await readAll(sseStream(chunks()));
    expect(text).toBe('data: {"a":1}\n\ndata: {"text":"line\\nbreak: \\"quoted\\" €"}\n\ndata: [DONE]\n\n');
    expect(parseSse(text)).toEqual({ events: [{ a: 1 }, { text: 'line\nbreak: "quoted" €' }], done: true });
    expect(sseEvent({ x: 'y' })).toBe('data: {"x":"y"}\n\n');
    expect(SSE_DONE).toBe('data: [DONE]\n\n');
  });

  it('takes sync iterables and empty streams', async () => {
    expect(await readAll(sseStream([1, 2]))).toBe('data: 1\n\ndata: 2\n\ndata: [DONE]\n\n');
    expect(await readAll(sseStream([]))).toBe('data: [DONE]\n\n');
  });

  it('ends a failing stream with an error event and no [DONE]', async () => {
    async function* chunks(): AsyncGenerator<unknown> {
      yield { a: 1 };
      throw named('DeviceLostError', 'the GPU device was lost');
    }
    const { events, done } = parseSse(await readAll(sseStream(chunks())));
    expect(done).toBe(false);
    expect(events).toEqual([{ a: 1 }, { error: { message: 'the GPU device was lost', type: 'server_error', param: null, code: 'engine_unavailable' } }]);
  });

  it('pulls lazily and, on cancel, returns the iterator and calls onCancel', async () => {
    let produced = 0;
    let cleanedUp = false;
    async function* chunks(): AsyncGenerator<unknown> {
      try {
        for (;;) yield { n: produced++ };
      } finally {
        cleanedUp = true;
      }
    }
    const reasons: unknown[] = [];
    const stream = sseStream(chunks(), { onCancel: (r) => reasons.push(r) });
    const reader = stream.getReader();
    const first = await reader.read();
    expect(new TextDecoder().decode(first.value)).toBe('data: {"n":0}\n\n');
    await reader.cancel('client went away');
    expect(reasons).toEqual(['client went away']);
    expect(cleanedUp).toBe(true);
    expect(produced).toBeLessThanOrEqual(3); // a small read-ahead at most, not a runaway loop
  });

  it('sseEvents writes what sseStream sends, chunk by chunk, for writers that are not streams', async () => {
    async function* good(): AsyncGenerator<unknown> {
      yield { a: 1 };
      yield 'two';
    }
    async function* bad(): AsyncGenerator<unknown> {
      yield { a: 1 };
      throw named('EngineClosedError', 'closed');
    }
    const all = async (g: AsyncIterable<string>): Promise<string[]> => {
      const out: string[] = [];
      for await (const e of g) out.push(e);
      return out;
    };
    const events = await all(sseEvents(good()));
    expect(events).toEqual(['data: {"a":1}\n\n', 'data: "two"\n\n', SSE_DONE]);
    expect(events.join('')).toBe(await readAll(sseStream(good())));
    expect((await all(sseEvents(bad()))).join('')).toBe(await readAll(sseStream(bad())));
  });

  it('wraps a stream in a Response with SSE headers', async () => {
    const r = sseResponse(sseStream([{ ok: true }]));
    expect(r.status).toBe(200);
    expect(r.headers.get('content-type')).toBe('text/event-stream; charset=utf-8');
    expect(r.headers.get('cache-control')).toBe('no-cache');
    expect(await r.text()).toBe('data: {"ok":true}\n\ndata: [DONE]\n\n');
  });
});
