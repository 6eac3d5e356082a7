// The Router's remote side without a GPU (remote replicas only, a scripted fetch): SSE as servers
// write it (CRLF, events split across reads, a last event without its blank line, data over several
// lines), vLLM's 'abort' finish, a 4xx that is the request's fault (no circuit opened, the next
// replica tried), a slow reader that is not a stalled replica, the first-token timeout, and a
// half-open circuit's probe that is aborted (the next probe goes through).

import { describe, expect, it } from 'vitest';
import { RemoteReplicaError, Router } from '../../src/index.js';
import type { FetchFn } from '../../src/api/remote-replica.js';

type Script = { status?: number; body?: string; parts?: { after: number; text: string }[]; hang?: boolean };

/** A fetch that answers each call with the next script for that URL's host. */
function scripted(scripts: Record<string, Script[]>): { fetch: FetchFn; calls: string[] } {
  const calls: string[] = [];
  const fetch: FetchFn = async (input, init) => {
    const host = new URL(input).host;
    calls.push(host);
    const s = scripts[host]!.shift()!;
    if (s.status && s.status !== 200) return new Response(s.body ?? '{"error":{"message":"no"}}', { status: s.status });
    const signal = init.signal!;
    const stream = new ReadableStream<Uint8Array>({
      async start(controller) {
        const enc = new TextEncoder();
        signal.addEventListener('abort', () => controller.error(signal.reason));
        for (const p of s.parts ?? []) {
          await new Promise((r) => setTimeout(r, p.after));
          if (signal.aborted) return;
          controller.enqueue(enc.encode(p.text));
        }
        if (!s.hang) controller.close();
      },
    });
    return new Response(stream, { status: 200, headers: { 'content-type': 'text/event-stream' } });
  };
  return { fetch, calls };
}

const chunk = (text: string, ids: number[], finish: string | null = null): string =>
  JSON.stringify({ object: 'text_completion', choices: [{ index: 0, text, finish_reason: finish, token_ids: ids }] });

function router(scripts: Record<string, Script[]>, options: { firstTokenTimeoutMs?: number; stallTimeoutMs?: number; circuitBackoffMs?: number } = {}): { r: Router; calls: string[] } {
  const { fetch, calls } = scripted(scripts);
  const r = new Router({ local: null, remotes: Object.keys(scripts).map((h) => ({ url: `http://${h}/v1`, model: 'm', name: h })), fetch, ...options });
  r.app('a', { ttftMs: 10_000, tpotMs: 1000 });
  return { r, calls };
}

describe('Router (remotes only, scripted servers)', () => {
  it('reads SSE with CRLF, events split across reads, multi-line data and a last event without its blank line', async () => {
    const body = [`data: ${chunk('Hel', [1])}\r\n\r\n`, `data: ${chunk('lo', [2])}\r\n`, `\r\ndata: ${chunk(' world', [3, 4])}\n\n`, `data: ${chunk('', [], 'length')}`];
    const { r } = router({ a: [{ parts: body.map((text) => ({ after: 1, text })) }] });
    const out = await r.completions.create({ app: 'a', prompt: 'x', max_tokens: 4, return_token_ids: true });
    expect(out.choices[0]!.text).toBe('Hello world');
    expect(out.choices[0]!.token_ids).toEqual([1, 2, 3, 4]);
    expect(out.choices[0]!.finish_reason).toBe('length');
    expect(out.webslo!.replica).toBe('a');
  });

  it("vLLM's finish_reason 'abort' is a broken reply, not a finished one", async () => {
    const { r } = router({ a: [{ parts: [{ after: 1, text: `data: ${chunk('Hi', [1])}\n\ndata: ${chunk('', [], 'abort')}\n\n` }] }] });
    const err = await r.completions.create({ app: 'a', prompt: 'x', max_tokens: 4 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(RemoteReplicaError);
    expect((err as Error).message).toMatch(/finish_reason 'abort'.*1 tokens \(2 characters\) were delivered/);
  });

  it("a 400 is the request's fault: the next replica is tried and no circuit opens", async () => {
    const ok = `data: ${chunk('ok', [7], 'stop')}\n\ndata: [DONE]\n\n`;
    const { r, calls } = router({ a: [{ status: 400 }, { parts: [{ after: 1, text: ok }] }], b: [{ parts: [{ after: 1, text: ok }] }] });
    const out = await r.completions.create({ app: 'a', prompt: 'x', max_tokens: 4 });
    expect(out.webslo!.replica).toBe('b');
    const stats = await r.stats();
    expect(stats.replicas.find((x) => x.replica === 'a')).toMatchObject({ failures: 0, state: 'closed' });
    expect(calls).toEqual(['a', 'b']);
    // A 503 does open it.
    const { r: r2 } = router({ a: [{ status: 503 }], b: [{ parts: [{ after: 1, text: ok }] }] });
    expect((await r2.completions.create({ app: 'a', prompt: 'x', max_tokens: 4 })).webslo!.replica).toBe('b');
    expect((await r2.stats()).replicas.find((x) => x.replica === 'a')).toMatchObject({ failures: 1, state: 'open' });
    // circuitBackoffMs sets how long: 40 ms here, then one probe may go (half-open); the default 1 s is still open then.
    const { r: r3 } = router({ a: [{ status: 503 }], b: [{ parts: [{ after: 1, text: ok }] }] }, { circuitBackoffMs: 40 });
    await r3.completions.create({ app: 'a', prompt: 'x', max_tokens: 4 });
    await new Promise((res) => setTimeout(res, 80));
    expect((await r3.stats()).replicas.find((x) => x.replica === 'a')!.state).toBe('half-open');
    expect((await r2.stats()).replicas.find((x) => x.replica === 'a')!.state).toBe('open');
    expect(() => new Router({ local: null, remotes: [{ url: 'http://x/v1', model: 'm' }], circuitBackoffMs: 0 })).toThrow(/backoff/);
  });

  it('a slow reader is not a stalled replica; a replica with no first token in time is', async () => {
    const parts = [1, 2, 3].map((i) => ({ after: 5, text: `data: ${chunk(`t${i}`, [i])}\n\n` })).concat([{ after: 5, text: `data: ${chunk('', [], 'stop')}\n\n` }]);
    const { r } = router({ a: [{ parts }] }, { stallTimeoutMs: 50 });
    const stream = await r.completions.create({ app: 'a', prompt: 'x', max_tokens: 3, stream: true });
    let text = '';
    for await (const c of stream) {
      text += c.choices[0]?.text ?? '';
      await new Promise((res) => setTimeout(res, 120)); // longer than the stall timeout, between reads
    }
    expect(text).toBe('t1t2t3');
    expect((await r.stats()).replicas[0]).toMatchObject({ failures: 0, state: 'closed' });
    // No first token within 80 ms: a timeout, the replica marked failed (then no replica is left).
    const { r: slow } = router({ a: [{ parts: [{ after: 300, text: `data: ${chunk('late', [1], 'stop')}\n\n` }] }] }, { firstTokenTimeoutMs: 80 });
    const err = await slow.completions.create({ app: 'a', prompt: 'x', max_tokens: 3 }).catch((e: unknown) => e);
    expect(err).toMatchObject({ name: 'SloError', reason: 'slo' });
    expect((await slow.stats()).replicas[0]).toMatchObject({ failures: 1, state: 'open' });
  });

  it('an aborted probe of a half-open circuit lets the next probe through', async () => {
    const ok = `data: ${chunk('ok', [7], 'stop')}\n\n`;
    const { r } = router({ a: [{ status: 500 }, { parts: [{ after: 1, text: `data: ${chunk('x', [1])}\n\n` }], hang: true }, { parts: [{ after: 1, text: ok }] }] });
    await expect(r.completions.create({ app: 'a', prompt: 'x', max_tokens: 3 })).rejects.toMatchObject({ name: 'SloError' });
    await new Promise((res) => setTimeout(res, 1050)); // the 1 s backoff
    const probe = await r.completions.create({ app: 'a', prompt: 'x', max_tokens: 3, stream: true });
    const it1 = probe[Symbol.asyncIterator]();
    await it1.next();
    probe.abort();
    await expect(it1.next()).rejects.toMatchObject({ name: 'AbortError' });
    for (let i = 0; i < 50 && (await r.stats()).replicas[0]!.inFlight > 0; i++) await new Promise((res) => setTimeout(res, 5));
    const next = await r.completions.create({ app: 'a', prompt: 'x', max_tokens: 3 });
    expect(next.choices[0]!.text).toBe('ok');
    expect((await r.stats()).replicas[0]).toMatchObject({ state: 'closed', inFlight: 0 });
  });

  it('refuses an app SLO it could not judge a reply against (a TTFT or TPOT that is not a positive finite number)', () => {
    const r = new Router({ local: null, remotes: [{ url: 'http://a/v1', model: 'm' }], fetch: () => Promise.reject(new Error('unused')) });
    for (const slo of [
      { ttftMs: Infinity, tpotMs: 50 },
      { ttftMs: Number.NaN, tpotMs: 50 },
      { ttftMs: 0, tpotMs: 50 },
      { ttftMs: 100, tpotMs: Infinity },
    ])
      expect(() => r.app('x', slo)).toThrow(expect.objectContaining({ name: 'SloError' }));
    expect(() => r.app('ok', { ttftMs: 100, tpotMs: 50 })).not.toThrow();
    expect(() => r.app('slowdown', { ttftSlowdown: 5, tpotMs: 50 })).not.toThrow();
  });
});
