// The public API in Node on Dawn (in-process engine, tiny-qwen2 with its tokenizer): the official
// `openai` client through an in-process fetch (streaming and not, logprobs); greedy results equal
// across the API and the core; abort mid-stream frees the pages; typed errors for an over-long
// prompt, an invalid SLO and a lost device; the startup calibration path and its export.

import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from 'vitest';
import { createEngine, EngineClosedError, engineFetch, PerfProfileError, type Engine, type PerformanceProfile } from '../../src/index.js';
import { PROFILES } from '../../src/sim/profiles.js';
import { paperProfileFor } from '../helpers/profiles.js';
import { fixtureDir } from '../helpers/fixtures.js';
import { startHubServer } from '../helpers/hub-server.js';
import { legScope } from './gpu-config.js';

const LIGHT = legScope() === 'light';
const MODEL = fixtureDir('tiny-qwen2');
let engine: Engine;

beforeAll(async () => {
  engine = await createEngine({ model: MODEL, worker: false, profile: paperProfileFor('tiny-qwen2'), kvCacheBytes: 4 * 1024 * 1024 });
  engine.app('chat', { ttftMs: 60_000, tpotMs: 10_000 });
});

afterAll(async () => {
  await engine.unload();
});

describe('public API (Node, in-process)', () => {
  it('the openai client runs streaming and non-streaming chat completions, logprobs included', async () => {
    const client = new OpenAI({ baseURL: 'http://webslo.local/v1', apiKey: 'unused', fetch: engineFetch(engine), maxRetries: 0 });
    const body = { model: 'tiny-qwen2', messages: [{ role: 'user' as const, content: 'Hello there' }], max_tokens: 10, logprobs: true, top_logprobs: 2, ignore_eos: true };
    const full = await client.chat.completions.create(body);
    expect(full.object).toBe('chat.completion');
    expect(full.choices[0]!.finish_reason).toBe('length');
    expect(full.usage!.completion_tokens).toBe(10);
    expect(full.usage!.prompt_tokens).toBeGreaterThan(3);
    const content = full.choices[0]!.logprobs!.content!;
    expect(content).toHaveLength(10);
    for (const t of content) {
      expect(t.logprob).toBeLessThanOrEqual(0);
      expect(t.top_logprobs).toHaveLength(2);
      // Greedy: the chosen token is the most likely one.
      expect(t.top_logprobs[0]!.logprob).toBe(t.logprob);
    }
    expect(content.map((t) => t.token).join('')).toBe(full.choices[0]!.message.content);

    const stream = await client.chat.completions.create({ ...body, stream: true, stream_options: { include_usage: true } });
    let text = '';
    const streamedLogprobs: number[] = [];
    let finish: string | null = null;
    let usage: OpenAI.CompletionUsage | null | undefined = null;
    for await (const chunk of stream) {
      expect(chunk.object).toBe('chat.completion.chunk');
      if (chunk.usage) usage = chunk.usage;
      const choice = chunk.choices[0];
      if (!choice) continue;
      text += choice.delta.content ?? '';
      for (const lp of choice.logprobs?.content ?? []) streamedLogprobs.push(lp.logprob);
      if (choice.finish_reason) finish = choice.finish_reason;
    }
    // Greedy: the same text and bitwise the same logprobs as the non-streamed request.
    expect(text).toBe(full.choices[0]!.message.content);
    expect(streamedLogprobs).toEqual(content.map((t) => t.logprob));
    expect(finish).toBe('length');
    expect(usage).toEqual(full.usage);

    const legacy = await client.completions.create({ model: 'tiny-qwen2', prompt: 'Once upon a time', max_tokens: 6, logprobs: 1, ignore_eos: true } as OpenAI.CompletionCreateParamsNonStreaming);
    expect(legacy.object).toBe('text_completion');
    expect(legacy.choices[0]!.logprobs!.tokens).toHaveLength(6);
    expect(legacy.usage!.completion_tokens).toBe(6);

    const bad = client.chat.completions.create({ ...body, top_logprobs: 50 });
    await expect(bad).rejects.toMatchObject({ status: 400 });
  });

  it('a stop string ends the text before it; the direct API and the client agree', async () => {
    const base = await engine.chat.completions.create({ app: 'chat', messages: [{ role: 'user', content: 'Count' }], max_tokens: 12, ignore_eos: true });
    const text = base.choices[0]!.message.content!;
    expect(text.length).toBeGreaterThan(4);
    const stop = text.slice(2, 4);
    const cut = await engine.chat.completions.create({ app: 'chat', messages: [{ role: 'user', content: 'Count' }], max_tokens: 12, ignore_eos: true, stop: [stop] });
    expect(cut.choices[0]!.finish_reason).toBe('stop');
    expect(cut.choices[0]!.message.content).toBe(text.slice(0, text.indexOf(stop)));
  });

  it('abort mid-stream rejects with AbortError and frees the request pages', async () => {
    const before = (await engine.stats()).apps.find((a) => a.app === 'chat') ?? { running: 0, aborted: 0 };
    const controller = new AbortController();
    const stream = await engine.chat.completions.create(
      { app: 'chat', messages: [{ role: 'user', content: 'Tell me a long story' }], max_tokens: 200, ignore_eos: true, stream: true },
      { signal: controller.signal },
    );
    let chunks = 0;
    const read = (async () => {
      for await (const c of stream) {
        void c;
        if (++chunks === 3) controller.abort();
      }
    })();
    await expect(read).rejects.toMatchObject({ name: 'AbortError' });
    // Right after the rejection the stats already count it aborted, not running (once: running 1,
    // aborted 0 until the engine's next step boundary).
    const right = (await engine.stats()).apps.find((a) => a.app === 'chat')!;
    expect(right.running).toBe(before.running);
    expect(right.aborted).toBe(before.aborted + 1);
    // The engine frees the pages before its next step; wait for it to go idle.
    for (let i = 0; i < 100; i++) {
      const s = await engine.stats();
      if (s.kv.pagesUsed === 0 && s.apps.every((a) => a.running === 0)) break;
      await new Promise((r) => setTimeout(r, 20));
    }
    const stats = await engine.stats();
    expect(stats.kv.pagesUsed).toBe(0);
    expect(stats.apps.find((a) => a.app === 'chat')!.aborted).toBeGreaterThanOrEqual(1);
  });

  it('return_token_ids gives the ids; a reply cut after n tokens and continued from them equals the uninterrupted one; a text continuation is tokenized after the prompt', async () => {
    const messages = [{ role: 'user' as const, content: 'Tell me about the sea' }];
    const whole = await engine.chat.completions.create({ app: 'chat', messages, max_tokens: 16, ignore_eos: true, return_token_ids: true });
    const ids = whole.choices[0]!.token_ids!;
    expect(ids).toHaveLength(16);
    // Streamed: the chunks' ids concatenate to the same ids.
    const stream = await engine.chat.completions.create({ app: 'chat', messages, max_tokens: 16, ignore_eos: true, return_token_ids: true, stream: true });
    const streamed: number[] = [];
    for await (const c of stream) streamed.push(...(c.choices[0]?.token_ids ?? []));
    expect(streamed).toEqual(ids);
    for (const n of [1, 7]) {
      const rest = await engine.chat.completions.create({ app: 'chat', messages, max_tokens: 16 - n, ignore_eos: true, return_token_ids: true, continuation: { token_ids: ids.slice(0, n) } });
      expect([...ids.slice(0, n), ...rest.choices[0]!.token_ids!]).toEqual(ids);
      expect(rest.usage!.completion_tokens).toBe(16 - n);
      // The continued tokens are part of the prompt now.
      expect(rest.usage!.prompt_tokens).toBe(whole.usage!.prompt_tokens + n);
    }
    const byText = await engine.chat.completions.create({ app: 'chat', messages, max_tokens: 4, ignore_eos: true, continuation: { text: ' and the waves' } });
    expect(byText.usage!.prompt_tokens).toBeGreaterThan(whole.usage!.prompt_tokens);
    expect(byText.usage!.completion_tokens).toBe(4);
    // A legacy completion with a token prompt continues the same way.
    const plain = await engine.completions.create({ app: 'chat', prompt: [5, 6, 7, 8], max_tokens: 10, ignore_eos: true, return_token_ids: true });
    const pIds = plain.choices[0]!.token_ids!;
    const pRest = await engine.completions.create({ app: 'chat', prompt: [5, 6, 7, 8], max_tokens: 6, ignore_eos: true, continuation: { token_ids: pIds.slice(0, 4) } });
    expect(pIds.slice(0, 4).length + pRest.usage!.completion_tokens).toBe(10);
    expect(plain.choices[0]!.text.endsWith(pRest.choices[0]!.text)).toBe(true);
    // Bad continuations are 400s naming the field.
    await expect(engine.chat.completions.create({ app: 'chat', messages, max_tokens: 2, continuation: { token_ids: [-1] } } as never)).rejects.toMatchObject({
      name: 'InvalidRequestError',
      param: 'continuation.token_ids',
    });
    await expect(engine.chat.completions.create({ app: 'chat', messages, max_tokens: 2, continuation: { token_ids: [1e6] } })).rejects.toMatchObject({ param: 'continuation.token_ids' });
    await expect(engine.completions.create({ app: 'chat', prompt: [5, 6], max_tokens: 2, continuation: { text: 'x' } })).rejects.toMatchObject({ param: 'continuation' });
  });

  it('an offer the planner cannot take fails at once with RequestDeclinedError (not-admitted) and leaves nothing behind; one it can take runs', async () => {
    // An engine whose KV cache (3,072 tokens) is smaller than the context (4,096).
    const engine = await createEngine({ model: MODEL, worker: false, profile: paperProfileFor('tiny-qwen2'), kvCacheBytes: 768 * 1024 });
    onTestFinished(() => engine.unload());
    engine.app('chat', { ttftMs: 60_000, tpotMs: 10_000 });
    const cache = engine.info.kv.pages * engine.info.kv.pageSize;
    expect(cache).toBeLessThan(engine.info.contextLength);
    // Two long requests hold most of the KV cache (prompts of 35% each, running until aborted).
    engine.app('hog', { ttftMs: 60_000, tpotMs: 10_000, onDecline: 'best-effort' });
    const stop = new AbortController();
    const hogPrompt = Array.from({ length: Math.floor(cache * 0.35) }, (_, i) => 10 + (i % 50));
    const hogs = [0, 1].map(async () => {
      const s = await engine.completions.create({ app: 'hog', prompt: hogPrompt, max_tokens: 64, ignore_eos: true, stream: true }, { signal: stop.signal });
      for await (const c of s) void c;
    });
    for (const h of hogs) h.catch(() => {}); // aborted below
    for (let i = 0; i < 200 && (await engine.stats()).kv.pagesUsed * engine.info.kv.pageSize < cache * 0.6; i++) await new Promise((r) => setTimeout(r, 10));
    const before = await engine.stats();
    // A prompt of 40% of the cache cannot fit beside them: offered, it is refused at once.
    const big = Array.from({ length: Math.floor(cache * 0.4) }, (_, i) => 20 + (i % 30));
    const err = await engine.completions.create({ app: 'chat', prompt: big, max_tokens: 2 }, { offer: true }).catch((e: unknown) => e);
    expect(err).toMatchObject({ name: 'SloError', reason: 'not-admitted' });
    expect((err as Error).message).toMatch(/offered and not admitted/);
    const after = await engine.stats();
    expect(after.apps.find((a) => a.app === 'chat')?.submitted ?? 0).toBe(before.apps.find((a) => a.app === 'chat')?.submitted ?? 0);
    stop.abort();
    await Promise.allSettled(hogs);
    // With the cache free again, the same offer is admitted and runs.
    const ok = await engine.completions.create({ app: 'chat', prompt: big.slice(0, 64), max_tokens: 3, ignore_eos: true }, { offer: true });
    expect(ok.usage!.completion_tokens).toBe(3);
    expect(ok.webslo!.decision).toBe('admitted');
  });

  it('an over-long prompt and an invalid SLO fail fast with their typed errors', async () => {
    const long = Array.from({ length: 5000 }, () => 100);
    await expect(engine.completions.create({ app: 'chat', prompt: long, max_tokens: 1 })).rejects.toMatchObject({ name: 'PromptTooLongError' });
    expect(() => engine.app('broken', { ttftMs: -5, tpotMs: 10 })).toThrow(expect.objectContaining({ name: 'SloError' }));
    // Well-formed but impossible on this model: a TPOT below one decode step.
    engine.app('impossible', { ttftMs: 60_000, tpotMs: 0.001 });
    await expect(engine.chat.completions.create({ app: 'impossible', messages: [{ role: 'user', content: 'hi' }], max_tokens: 2 })).rejects.toMatchObject({ name: 'SloError' });
    await expect(engine.chat.completions.create({ app: 'nobody', messages: [{ role: 'user', content: 'hi' }], max_tokens: 2 })).rejects.toMatchObject({ name: 'SloError' });
  });

  it('a profile measured on a model of other depth is refused at createEngine with PerfProfileError', async () => {
    // The paper's OPT-6.7B profile has 32 layers, tiny-qwen2 has 2: once, the engine took it and
    // died at its first online refit (step 128) with every request in flight.
    const err = await createEngine({ model: MODEL, worker: false, profile: PROFILES.paper, kvCacheBytes: 2 * 1024 * 1024 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(PerfProfileError);
    expect((err as PerfProfileError).field).toBe('layers');
    expect((err as Error).message).toMatch(/is 32; this model has 2 layers/);
  });
});

describe('a burst through the public API', () => {
  // The engine's bookkeeping, the same on every driver: the lavapipe legs run it; SwiftShader (~10x
  // slower) leaves it to them.
  it.skipIf(LIGHT)('200 requests from 4 apps: each ends exactly once (completed, SloError, AbortError), zero pages after', async () => {
    const count = 200;
    const e = await createEngine({ model: MODEL, worker: false, profile: paperProfileFor('tiny-qwen2'), kvCacheBytes: 2 * 1024 * 1024, onlineRefit: false });
    try {
      // Tight TTFTs on the paper profile's clock: the planner declines part of the burst.
      const apps = [
        e.app('chat', { ttftMs: 400, tpotMs: 200 }),
        e.app('code', { ttftMs: 3_000, tpotMs: 300, onDecline: 'best-effort' }),
        e.app('sum', { ttftMs: 800, tpotMs: 500 }),
        e.app('agent', { ttftMs: 5_000, tpotMs: 400, stages: undefined }),
      ];
      const controllers: AbortController[] = [];
      const runs = Array.from({ length: count }, (_, i) => {
        const controller = new AbortController();
        controllers.push(controller);
        const app = apps[i % 4]!;
        const words = Array.from({ length: 2 + (i % 13) }, (_, j) => `w${(i * 7 + j) % 50}`).join(' ');
        if (i % 3 === 0) {
          return (async () => {
            const stream = await e.chat.completions.create(
              { app, messages: [{ role: 'user', content: words }], max_tokens: 3 + (i % 6), ignore_eos: true, stream: true },
              { signal: controller.signal },
            );
            let finish: string | null = null;
            for await (const chunk of stream) finish = chunk.choices[0]?.finish_reason ?? finish;
            return finish;
          })();
        }
        return e.completions.create({ app, prompt: words, max_tokens: 3 + (i % 6), ignore_eos: true, signal: controller.signal }).then((r) => r.choices[0]!.finish_reason);
      });
      for (let i = 5; i < count; i += 23) controllers[i]!.abort();
      // Their ends are collected from here on (an aborted one rejects while the stats below are read).
      const ended = Promise.allSettled(runs);
      // Mid-burst, most requests wait (nothing of their prompt computed) and a few have started.
      let mid = await e.stats();
      for (let i = 0; i < 200 && mid.apps.reduce((n, a) => n + a.running - a.waiting, 0) === 0; i++) {
        await new Promise((r) => setTimeout(r, 5));
        mid = await e.stats();
      }
      const waiting = mid.apps.reduce((n, a) => n + a.waiting, 0);
      const started = mid.apps.reduce((n, a) => n + a.running - a.waiting, 0);
      expect(started).toBeGreaterThan(0);
      expect(waiting).toBeGreaterThan(0);
      expect(mid.apps.every((a) => a.waiting <= a.running)).toBe(true);
      const settled = await ended;
      const kinds: Record<string, number> = {};
      for (const r of settled) {
        const kind = r.status === 'fulfilled' ? `completed:${r.value}` : (r.reason as Error).name;
        kinds[kind] = (kinds[kind] ?? 0) + 1;
      }
      expect(
        Object.keys(kinds).every((k) => ['completed:length', 'SloError', 'AbortError'].includes(k)),
        JSON.stringify(kinds),
      ).toBe(true);
      expect(kinds['completed:length']).toBeGreaterThan(0);
      expect(kinds['AbortError']).toBeGreaterThan(0);
      let stats = await e.stats();
      for (let i = 0; i < 100 && (stats.kv.pagesUsed > 0 || stats.apps.some((a) => a.running > 0)); i++) {
        await new Promise((r) => setTimeout(r, 20));
        stats = await e.stats();
      }
      expect(stats.kv.pagesUsed).toBe(0);
      expect(stats.apps.reduce((a, s) => a + s.submitted, 0)).toBe(count - (kinds['AbortError'] ?? 0) + stats.apps.reduce((a, s) => a + s.aborted, 0));
      expect(stats.apps.every((a) => a.running === 0 && a.waiting === 0)).toBe(true);
    } finally {
      await e.unload();
    }
  });
});

describe('prefix caching through the API', () => {
  it('a conversation round 2 reuses round 1 (hit rate in stats) and answers as a cold engine does', async () => {
    const messages = [{ role: 'user' as const, content: 'Tell me about the sea and the mountains, please' }];
    const r1 = await engine.chat.completions.create({ app: 'chat', messages, max_tokens: 6, ignore_eos: true, conversationId: 'conv-1' });
    const history = [...messages, { role: 'assistant' as const, content: r1.choices[0]!.message.content! }, { role: 'user' as const, content: 'And the rivers?' }];
    const before = (await engine.stats()).apps.find((a) => a.app === 'chat')!;
    const r2 = await engine.chat.completions.create({ app: 'chat', messages: history, max_tokens: 6, ignore_eos: true, conversationId: 'conv-1', logprobs: true });
    const after = (await engine.stats()).apps.find((a) => a.app === 'chat')!;
    expect(after.cachedPromptTokens - before.cachedPromptTokens).toBeGreaterThan(r1.usage!.prompt_tokens / 2);
    expect(after.prefixHitRate).toBeGreaterThan(0);
    const cold = await createEngine({ model: MODEL, worker: false, profile: paperProfileFor('tiny-qwen2'), kvCacheBytes: 2 * 1024 * 1024, prefixCaching: false });
    cold.app('chat', { ttftMs: 60_000, tpotMs: 10_000 });
    const c2 = await cold.chat.completions.create({ app: 'chat', messages: history, max_tokens: 6, ignore_eos: true, logprobs: true });
    expect(r2.choices[0]!.message.content).toBe(c2.choices[0]!.message.content);
    expect(r2.choices[0]!.logprobs!.content!.map((t) => t.logprob)).toEqual(c2.choices[0]!.logprobs!.content!.map((t) => t.logprob));
    expect((await cold.stats()).apps[0]!.cachedPromptTokens).toBe(0);
    await cold.unload();
  });
});

describe('speculative engines', () => {
  it.skipIf(LIGHT)('a draft model and self-speculation leave greedy outputs unchanged', async () => {
    const ask = async (e: Engine): Promise<string[]> => {
      e.app('fast', { ttftMs: 60_000, tpotMs: 30 });
      const prompts = ['one', 'two words', 'three words here', 'and four words now', 'five', 'six six'];
      const out = await Promise.all(prompts.map((p) => e.chat.completions.create({ app: 'fast', messages: [{ role: 'user', content: p }], max_tokens: 12, ignore_eos: true })));
      return out.map((r) => r.choices[0]!.message.content!);
    };
    const plainEngine = await createEngine({ model: MODEL, worker: false, profile: paperProfileFor('tiny-qwen2'), kvCacheBytes: 2 * 1024 * 1024 });
    const plain = await ask(plainEngine);
    await plainEngine.unload();
    for (const extra of [{ draftModel: fixtureDir('tiny-mistral') }, { selfSpeculation: { layers: 1 } }]) {
      const e = await createEngine({ model: MODEL, worker: false, profile: paperProfileFor('tiny-qwen2'), kvCacheBytes: 2 * 1024 * 1024, ...extra });
      expect(e.info.speculation).toBe('draftModel' in extra ? 'draft-model' : 'self');
      expect(await ask(e)).toEqual(plain);
      expect((await e.stats()).kv.pagesUsed).toBe(0);
      await e.unload();
    }
  });
});

describe('device loss and startup calibration', () => {
  it('device.destroy() mid-run fails in-flight requests with DeviceLostError; a new engine works', async () => {
    const e = await createEngine({ model: MODEL, worker: false, profile: paperProfileFor('tiny-qwen2'), kvCacheBytes: 2 * 1024 * 1024 });
    e.app('chat', { ttftMs: 60_000, tpotMs: 10_000 });
    const stream = await e.chat.completions.create({ app: 'chat', messages: [{ role: 'user', content: 'go on' }], max_tokens: 500, ignore_eos: true, stream: true });
    let n = 0;
    const read = (async () => {
      for await (const c of stream) {
        void c;
        if (++n === 2) await e.destroyDeviceForTesting();
      }
    })();
    await expect(read).rejects.toMatchObject({ name: 'DeviceLostError' });
    await expect(e.chat.completions.create({ app: 'chat', messages: [{ role: 'user', content: 'again' }], max_tokens: 2 })).rejects.toMatchObject({ name: 'DeviceLostError' });
    await e.unload();
    const fresh = await createEngine({ model: MODEL, worker: false, profile: paperProfileFor('tiny-qwen2'), kvCacheBytes: 2 * 1024 * 1024 });
    fresh.app('chat', { ttftMs: 60_000, tpotMs: 10_000 });
    const r = await fresh.chat.completions.create({ app: 'chat', messages: [{ role: 'user', content: 'again' }], max_tokens: 3, ignore_eos: true });
    expect(r.usage!.completion_tokens).toBe(3);
    await fresh.unload();
  });

  it('$HF_TOKEN goes to the hub (a repo id) and never to another URL', async () => {
    const hub = await startHubServer({ 'org/tiny': MODEL });
    const saved = process.env['HF_TOKEN'];
    process.env['HF_TOKEN'] = 'hf_secret';
    try {
      const byUrl = await createEngine({ model: `${hub.endpoint}/org/tiny/resolve/main`, worker: false, cache: false, profile: paperProfileFor('tiny-qwen2'), kvCacheBytes: 2 * 1024 * 1024 });
      await byUrl.unload();
      expect(hub.requests.length).toBeGreaterThan(0);
      expect(hub.requests.filter((q) => q.auth !== null)).toEqual([]);
      hub.requests.length = 0;
      const byId = await createEngine({ model: 'org/tiny', hubEndpoint: hub.endpoint, worker: false, cache: false, profile: paperProfileFor('tiny-qwen2'), kvCacheBytes: 2 * 1024 * 1024 });
      await byId.unload();
      expect(hub.requests.length).toBeGreaterThan(0);
      expect(hub.requests.every((q) => q.auth === 'Bearer hf_secret')).toBe(true);
    } finally {
      if (saved === undefined) delete process.env['HF_TOKEN'];
      else process.env['HF_TOKEN'] = saved;
      await hub.close();
    }
  });

  it('without a profile, createEngine calibrates on this adapter and reports its step times (any budget)', async () => {
    const stages: string[] = [];
    const bar: [number, number][] = [];
    const files = new Map<string, number>();
    // On SwiftShader a 1 ms budget: only the minimal sweep runs, and it must still give a model.
    const e = await createEngine({
      model: MODEL,
      worker: false,
      calibrationBudgetMs: LIGHT ? 1 : 1500,
      kvCacheBytes: 2 * 1024 * 1024,
      onProgress: (p) => {
        stages.push(p.phase);
        if (p.phase === 'calibrate') bar.push([p.loaded, p.total ?? -1]);
        if (p.phase === 'download' && p.file !== undefined && p.loaded === p.total) files.set(p.file, p.loaded);
      },
    });
    expect(stages).toContain('calibrate');
    // A folder source reports its files' bytes too (once: only 'upload 0/1' and no file names).
    expect(files.get('config.json')).toBeGreaterThan(0);
    expect(files.get('model.safetensors')).toBeGreaterThan(0);
    // One bar over both sweeps: it never goes back and it ends full (once: 1/6..6/6, then 1/14..6/14).
    for (let i = 1; i < bar.length; i++) expect(bar[i]![0], `event ${i} of ${JSON.stringify(bar)}`).toBeGreaterThanOrEqual(bar[i - 1]![0]);
    expect(bar[bar.length - 1]![0]).toBe(bar[bar.length - 1]![1]);
    expect(e.info.profileOrigin).toMatch(/startup calibration/);
    expect(e.info.decodeStepMs).toBeGreaterThan(0);
    e.app('chat', { ttftMs: 60_000, tpotMs: 100 * e.info.decodeStepMs });
    const r = await e.chat.completions.create({ app: 'chat', messages: [{ role: 'user', content: 'hi' }], max_tokens: 2, ignore_eos: true });
    expect(r.usage!.completion_tokens).toBe(2);

    // The calibration can be saved and given back: the next engine skips it and plans the same.
    const saved = JSON.parse(JSON.stringify(await e.exportProfile())) as PerformanceProfile;
    expect(saved.format).toBe('webslo-perf-profile');
    expect(saved.origin).toMatch(/startup calibration/);
    await e.unload();
    await expect(e.exportProfile()).rejects.toBeInstanceOf(EngineClosedError);
    const phases = new Set<string>();
    const again = await createEngine({ model: MODEL, worker: false, profile: saved, kvCacheBytes: 2 * 1024 * 1024, onProgress: (p) => phases.add(p.phase) });
    expect(phases.has('calibrate')).toBe(false);
    expect(again.info.profileOrigin).toBe(`given to createEngine (${saved.origin})`);
    expect(again.info.decodeStepMs).toBeCloseTo(e.info.decodeStepMs, 9);
    expect(again.info.prefillMsPer512).toBeCloseTo(e.info.prefillMsPer512, 9);
    await again.unload();
  });
});
