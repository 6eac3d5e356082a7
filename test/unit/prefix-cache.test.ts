// Prefix caching in the scheduler and the simulator: a request's `cachedTokens` start it with that
// much KV and prefill progress in every policy (validated; the first chunk covers only the rest and
// reads the cached keys; a hit makes a TTFT feasible that is not cold; its pages count from the
// start; cached prefixes nobody computes on are reclaimed before computed KV); the simulator's cache
// model (shared prefixes and conversations, per app, full pages, LRU eviction beside live KV); and
// the simulator with it on: hits reach the scheduler, pages stay within budget, deterministic, and
// off by default.

import { describe, expect, it } from 'vitest';
import { SchedulerInputError } from '../../src/scheduler/base.js';
import { FcfsScheduler } from '../../src/scheduler/fcfs.js';
import { PerformanceModel } from '../../src/scheduler/perf-model.js';
import { keysRead } from '../../src/scheduler/request-state.js';
import { SlosScheduler } from '../../src/scheduler/slos/scheduler.js';
import type { KvBudget, SchedRequest, Scheduler, SchedulerEvent, StepPlan } from '../../src/scheduler/types.js';
import { attainmentAt, prefixCacheConfig, scenarioWorkload, variantsFor, type BenchSetup } from '../../src/sim/bench-sched.js';
import { PrefixCache } from '../../src/sim/prefix-cache.js';
import { PROFILES } from '../../src/sim/profiles.js';
import { generateScenario } from '../../src/sim/scenarios.js';
import { simulate } from '../../src/sim/simulator.js';
import { compressTrace, resolveTrace, type Trace } from '../../src/sim/trace.js';

const model = PerformanceModel.fromProfile({ ...(PROFILES.paper as object), maxTokensPerStep: 4096 });
const layers = model.profile.layers;
const KV: KvBudget = { pages: 2000, pageSize: 16 };

function req(id: string, over: Partial<SchedRequest> = {}): SchedRequest {
  return { id, app: 'chat', arrivalMs: 0, promptTokens: 100, maxTokens: 50, ttftMs: 1000, stages: [{ name: 'decode', tpotMs: 100 }], ...over };
}

const POLICIES: [string, (kv: KvBudget) => Scheduler][] = [
  ['slos', (kv) => new SlosScheduler({ model, kv })],
  ['edf', (kv) => new SlosScheduler({ model, kv, admission: false })],
  ['fcfs', (kv) => new FcfsScheduler({ model, kv, maxBatchedTokens: 512 })],
  ['fcfs+sd', (kv) => new FcfsScheduler({ model, kv, maxBatchedTokens: 512, specK: 2 })],
  ['sarathi', (kv) => new FcfsScheduler({ model, kv, maxBatchedTokens: 512, order: 'sarathi' })],
];

describe('scheduler: cachedTokens', () => {
  it('is validated by every policy: an integer in [0, promptTokens)', () => {
    for (const [, make] of POLICIES) {
      for (const bad of [-1, 1.5, 100, 101, NaN]) {
        const s = make(KV);
        let err: unknown;
        try {
          s.submit(req('a', { cachedTokens: bad }), 0);
        } catch (e) {
          err = e;
        }
        expect(err).toBeInstanceOf(SchedulerInputError);
        expect((err as SchedulerInputError).field).toBe('cachedTokens');
        expect(s.size).toBe(0);
      }
      const s = make(KV);
      s.submit(req('a', { cachedTokens: 0 }), 0);
      s.submit(req('b', { cachedTokens: 99 }), 0);
      expect(s.size).toBe(2);
    }
  });

  it('every policy prefills only the uncached part, reading the cached keys', () => {
    for (const [name, make] of POLICIES) {
      const s = make(KV);
      s.submit(req('a', { promptTokens: 300, cachedTokens: 256 }), 0);
      const plan = s.step(0).plan!;
      expect(plan.entries, name).toEqual([{ id: 'a', kind: 'prefill', tokens: 44 }]);
      expect(plan.kvTokensRead, name).toBe(keysRead(256, 44, layers));
      // That chunk finishes the prompt: the next step decodes.
      s.complete(plan.predictedMs, [{ id: 'a', emitted: 1, finished: false }]);
      const next = s.step(plan.predictedMs).plan!;
      expect(next.entries[0]?.kind, name).toBe('decode');
      expect(next.kvTokensRead, name).toBe(keysRead(300, 1 + (next.entries[0] as { draftTokens: number }).draftTokens, layers));
    }
  });

  it('a big cached prefix makes a TTFT feasible that is not cold (SLOs-Serve admission)', () => {
    const prompt = 3000;
    const ttft = model.zeroLoadPrefillMs(prompt) / 2;
    // Cold the prompt cannot be prefilled in time even alone; its uncached 100 tokens easily can.
    expect(ttft).toBeGreaterThan(3 * model.zeroLoadPrefillMs(100));
    const decide = (cachedTokens: number): { events: string[]; plan: StepPlan } => {
      const s = new SlosScheduler({ model, kv: KV });
      s.submit(req('a', { promptTokens: prompt, cachedTokens, ttftMs: ttft }), 0);
      const { plan, decisions } = s.step(0);
      return { events: decisions.map((e) => e.decision), plan: plan! };
    };
    const cold = decide(0);
    expect(cold.events).not.toContain('admitted');
    const warm = decide(2900);
    expect(warm.events).toEqual(['admitted']);
    expect(warm.plan.entries).toEqual([{ id: 'a', kind: 'prefill', tokens: 100 }]);
  });

  it('a cached prefix holds its pages from the start (FCFS)', () => {
    // 10 pages of 16. x: 150-token prompt, 144 cached (9 pages held); y: 20 tokens (2 pages).
    const kv = { pages: 10, pageSize: 16 };
    const s = new FcfsScheduler({ model, kv, maxBatchedTokens: 512 });
    s.submit(req('x', { promptTokens: 150, cachedTokens: 144 }), 0);
    s.submit(req('y', { promptTokens: 20 }), 0);
    // x needs its 10th page: no page is left for y, which waits.
    expect(s.step(0).plan).toMatchObject({ preempt: [], entries: [{ id: 'x', kind: 'prefill', tokens: 6 }] });

    // The other way round, y comes first and reclaims the cached prefix of x, which has computed
    // nothing yet; x then waits and will prefill its whole prompt.
    const t = new FcfsScheduler({ model, kv, maxBatchedTokens: 512 });
    t.submit(req('y', { promptTokens: 20 }), 0);
    t.submit(req('x', { promptTokens: 150, cachedTokens: 144 }), 0);
    const p = t.step(0).plan!;
    expect(p).toMatchObject({ preempt: ['x'], entries: [{ id: 'y', kind: 'prefill', tokens: 20 }] });
    t.complete(p.predictedMs, [{ id: 'y', emitted: 1, finished: true }]);
    expect(t.step(p.predictedMs).plan).toMatchObject({ preempt: [], entries: [{ id: 'x', kind: 'prefill', tokens: 150 }] });
  });

  it('EDF reclaims a later deadline cached prefix for an earlier prefill, without demoting it', () => {
    const kv = { pages: 10, pageSize: 16 };
    const s = new SlosScheduler({ model, kv, admission: false });
    s.submit(req('late', { promptTokens: 150, cachedTokens: 144, ttftMs: 10_000 }), 0);
    s.submit(req('early', { promptTokens: 40, ttftMs: 500 }), 0);
    const { plan, decisions } = s.step(0);
    const p = plan!;
    expect(p.preempt).toEqual(['late']);
    expect(p.entries).toEqual([{ id: 'early', kind: 'prefill', tokens: 40 }]);
    expect(decisions.map((e) => `${e.id}:${e.decision}`)).toEqual(['late:admitted', 'early:admitted']);
    s.complete(p.predictedMs, [{ id: 'early', emitted: 1, finished: true }]);
    // The recompute runs without the cache: the whole prompt.
    expect(s.step(p.predictedMs).plan!.entries).toEqual([{ id: 'late', kind: 'prefill', tokens: 150 }]);
  });

  it('recompute preemption drops the cached prefix too', () => {
    // 3 pages: a (16) and b (cached 16 of 20) fill them after prefill; a's first decode needs a page.
    const s = new FcfsScheduler({ model, kv: { pages: 3, pageSize: 16 }, maxBatchedTokens: 64 });
    s.submit(req('a', { promptTokens: 16 }), 0);
    s.submit(req('b', { promptTokens: 20, cachedTokens: 16 }), 0);
    const p1 = s.step(0).plan!;
    expect(p1.entries).toEqual([
      { id: 'a', kind: 'prefill', tokens: 16 },
      { id: 'b', kind: 'prefill', tokens: 4 },
    ]);
    s.complete(10, [
      { id: 'a', emitted: 1, finished: false },
      { id: 'b', emitted: 1, finished: false },
    ]);
    const p2 = s.step(10).plan!;
    expect(p2.preempt).toEqual(['b']);
    s.complete(20, [{ id: 'a', emitted: 1, finished: true }]);
    // b recomputes its whole prompt (the cached part too) and its output so far.
    expect(s.step(20).plan!.entries).toEqual([{ id: 'b', kind: 'prefill', tokens: 21 }]);
  });
});

describe("the simulator's prefix cache model", () => {
  const P = { id: 'sys', tokens: 40 }; // 2 full pages

  it('caches a shared prefix once prefilled, per app, in full pages, and a conversation after its round', () => {
    const c = new PrefixCache({ enabled: true });
    expect(c.lookup('a', 'r0', P, 100)).toBe(0);
    expect(c.acquire('r0', 'a', 'r0', P, 100)).toBe(0);
    c.setKv('r0', 31);
    expect(c.lookup('a', 'r1', P, 100)).toBe(0); // the prefix's 2 full pages are not all computed yet
    c.setKv('r0', 100);
    expect(c.lookup('a', 'r1', P, 100)).toBe(32);
    expect(c.lookup('b', 'r1', P, 100)).toBe(0); // another app
    expect(c.lookup('a', 'r1', { id: 'other', tokens: 40 }, 100)).toBe(0);
    // Round 0 of r0 ends with 100 + 30 - 1 tokens of KV: 8 full pages as its conversation.
    c.release('r0', { requestId: 'r0', tokens: 129 });
    expect(c.lookup('a', 'r0', P, 300)).toBe(128);
    expect(c.lookup('a', 'r0', P, 100)).toBe(99); // at least one token is computed
    expect(c.lookup('a', 'r1', P, 100)).toBe(32);
    // Own pages counted once: 2 prefix pages + 6 more of the conversation, none held.
    expect(c.unheld).toBe(128);
    expect(c.live).toBe(0);
  });

  it('holds what live requests use; evicts the least recently released, tail first, beside live KV', () => {
    const c = new PrefixCache({ enabled: true, capacityTokens: 320 }); // 20 pages
    for (const id of ['x', 'y']) {
      c.acquire(id, 'a', id, undefined, 100);
      c.setKv(id, 64);
      c.release(id, { requestId: id, tokens: 64 }); // 4 pages each
    }
    expect(c.unheld).toBe(128);
    // A live request takes 14 pages of its own: 6 left free, 8 cached: x (older) loses 2 pages.
    c.acquire('z', 'a', 'z', undefined, 300);
    c.setKv('z', 224);
    c.enforce();
    expect(c.unheld).toBe(96);
    expect(c.lookup('a', 'x', undefined, 100)).toBe(32);
    expect(c.lookup('a', 'y', undefined, 100)).toBe(64);
    expect(c.stats.evictedPages).toBe(2);
    // y's next round holds its conversation: it is not evicted; x goes entirely.
    expect(c.acquire('y#1', 'a', 'y', undefined, 100)).toBe(64);
    c.setKv('z', 272);
    c.enforce();
    expect(c.lookup('a', 'x', undefined, 100)).toBe(0);
    expect(c.lookup('a', 'y', undefined, 100)).toBe(64);
    expect(c.live).toBe(272 + 64);
    // A preempted holder holds nothing; its KV is gone.
    c.preempted('y#1');
    expect(c.live).toBe(272);
    expect(c.stats.reclaimedTokens).toBe(64); // it had computed nothing on its hit
  });

  it('a conversation is usable only while its shared prefix is cached in full', () => {
    const c = new PrefixCache({ enabled: true, capacityTokens: 1600 });
    c.acquire('r0', 'a', 'r0', P, 60);
    c.setKv('r0', 60);
    c.release('r0', { requestId: 'r0', tokens: 79 }); // prefix 2 pages (released first), conversation 4
    expect(c.lookup('a', 'r0', P, 200)).toBe(64);
    // The prefix is the least recently released: make room for 99 pages of live KV.
    c.acquire('big', 'a', 'big', undefined, 1600);
    c.setKv('big', 1584);
    c.enforce();
    expect(c.lookup('a', 'r0', P, 200)).toBe(0);
  });
});

/** Count KV pages of every request from its submit (cached prefix) on, and fail a step that overfills the budget. */
function kvChecked(inner: Scheduler, kv: KvBudget, submitted: SchedRequest[]): Scheduler {
  const held = new Map<string, number>();
  let last: StepPlan | null = null;
  const used = (): number => [...held.values()].reduce((a, t) => a + Math.ceil(t / kv.pageSize), 0);
  const add = (r: SchedRequest): void => {
    submitted.push(r);
    held.set(r.id, r.cachedTokens ?? 0);
  };
  // Decisions complete() returned, applied with the next step or taken offer, as the simulator does.
  let fromComplete: SchedulerEvent[] = [];
  const apply = (fresh: readonly SchedulerEvent[]): void => {
    for (const e of [...fromComplete, ...fresh]) if (e.decision === 'declined') held.delete(e.id);
    fromComplete = [];
  };
  return {
    name: inner.name,
    get size() {
      return inner.size;
    },
    get performanceModel() {
      return inner.performanceModel;
    },
    setModel: (m) => inner.setModel(m),
    submit: (r, t) => (add(r), inner.submit(r, t)),
    offer: (r, t, f) => {
      const ev = inner.offer(r, t, f);
      if (ev) {
        add(r);
        apply(ev);
      }
      return ev;
    },
    cancel: (id, t) => inner.cancel(id, t),
    step(now) {
      const decided = inner.step(now);
      const plan = decided.plan;
      last = plan;
      if (plan) {
        for (const id of plan.preempt) held.set(id, 0);
        for (const e of plan.entries) held.set(e.id, (held.get(e.id) ?? 0) + (e.kind === 'prefill' ? e.tokens : 1 + e.draftTokens));
        if (used() > kv.pages) throw new Error(`step at ${now} needs ${used()} KV pages of ${kv.pages}`);
      }
      apply(decided.decisions);
      return decided;
    },
    complete(now, outcomes) {
      for (const o of outcomes) {
        const e = last!.entries.find((x) => x.id === o.id)!;
        if (e.kind === 'decode') held.set(o.id, held.get(o.id)! - (1 + e.draftTokens) + o.emitted);
        if (o.finished) held.delete(o.id);
      }
      const ev = inner.complete(now, outcomes);
      fromComplete.push(...ev);
      return ev;
    },
  };
}

function toolTrace(requests: number, rate: number, seed: number) {
  return compressTrace(resolveTrace(generateScenario('toolllm', { requests, ratePerSec: 1, seed, prefixes: true, maxPromptTokens: 3000 }), { contextTokens: 4096 }), rate);
}

describe('the simulator with a prefix cache', () => {
  it('gives a tool round its conversation so far and a request its shared prefix, in full pages', () => {
    const trace: Trace = {
      apps: { tool: { ttft_ms: 5000, tpot_ms: 100 } },
      requests: [
        {
          t_ms: 0,
          app: 'tool',
          prefix_id: 'sys',
          prefix_tokens: 100,
          rounds: [
            { prompt_tokens: 300, output_tokens: 20, tool_ms: 50 },
            { prompt_tokens: 50, output_tokens: 10 },
          ],
        },
        { t_ms: 10_000, app: 'tool', prefix_id: 'sys', prefix_tokens: 100, rounds: [{ prompt_tokens: 200, output_tokens: 5 }] },
      ],
    };
    const submitted: SchedRequest[] = [];
    const r = simulate({
      trace: resolveTrace(trace, { contextTokens: 4096 }),
      clock: model,
      seed: 1,
      prefixCache: { enabled: true, capacityTokens: KV.pages * 16 },
      makeScheduler: () => kvChecked(new SlosScheduler({ model, kv: KV }), KV, submitted),
    });
    expect(submitted.map((q) => [q.id, q.promptTokens, q.cachedTokens ?? 0])).toEqual([
      ['r0#0', 300, 0],
      // 300 + 20 - 1 tokens of KV after round 0: 19 full pages.
      ['r0#1', 370, 304],
      // The shared prefix: 6 full pages of its 100 tokens.
      ['r1', 200, 96],
    ]);
    expect(r.prefixCache).toEqual({ hitTokens: 400, promptTokens: 870, reclaimedTokens: 0, evictedPages: 0 });
    expect(r.timelines.every((t) => t.rounds.every((x) => x.finished))).toBe(true);
  });

  it('keeps KV within budget and finishes or declines everything, for every policy, tight on KV', () => {
    const kv = { pages: 600, pageSize: 16 };
    for (const [name, make] of POLICIES) {
      const submitted: SchedRequest[] = [];
      const trace = toolTrace(60, 0.5, 4);
      const r = simulate({ trace, clock: model, seed: 4, prefixCache: { enabled: true, capacityTokens: kv.pages * kv.pageSize }, makeScheduler: () => kvChecked(make(kv), kv, submitted) });
      expect(
        submitted.some((q) => (q.cachedTokens ?? 0) > 0),
        name,
      ).toBe(true);
      for (const t of r.timelines)
        if (!t.declined)
          expect(
            t.rounds.every((x) => x.finished),
            `${name} ${t.id}`,
          ).toBe(true);
      expect(r.prefixCache!.hitTokens, name).toBeGreaterThan(0);
    }
  });

  it('is deterministic, off by default, and off means no hits', () => {
    const trace = toolTrace(40, 0.3, 2);
    const make = () => new SlosScheduler({ model, kv: KV, maxSpec: 4 });
    const cfg = { trace, clock: model, seed: 2, makeScheduler: make };
    const on = simulate({ ...cfg, prefixCache: { enabled: true, capacityTokens: 32_000 } });
    expect(simulate({ ...cfg, prefixCache: { enabled: true, capacityTokens: 32_000 } })).toEqual(on);
    const off = simulate(cfg);
    expect(simulate({ ...cfg, prefixCache: { enabled: false } })).toEqual(off);
    expect(off.prefixCache).toBeUndefined();
    const submitted: SchedRequest[] = [];
    simulate({ ...cfg, makeScheduler: () => kvChecked(make(), KV, submitted) });
    expect(submitted.every((q) => q.cachedTokens === undefined)).toBe(true);
    // Hits shorten prefill: the same work takes fewer rows.
    expect(on.meanRows * on.steps).toBeLessThan(off.meanRows * off.steps);
  });

  it('raises attainment on the tool-calling scenario at a rate that fails without it (bench core)', () => {
    const setup: BenchSetup = { profile: model, kvTokens: 32_000, pageSize: 16, seeds: [1], requests: 60, replicas: 1, arrivals: 'poisson', contextTokens: 4096, alpha: 0.7 };
    const cached = { ...setup, prefixCache: true };
    expect(prefixCacheConfig(cached)).toEqual({ enabled: true, capacityTokens: 32_000, pageSize: 16 });
    const v = variantsFor('fcfs', setup)[0]!;
    const cold = attainmentAt(scenarioWorkload('toolllm', setup), v, setup, 0.4);
    const warm = attainmentAt(scenarioWorkload('toolllm', cached), v, cached, 0.4);
    expect(warm).toBeGreaterThan(cold);
    expect(warm).toBeGreaterThanOrEqual(0.9);
  });
});

describe('scheduler: pinned hits with tied deadlines', () => {
  it('EDF never stalls when requests with equal deadlines pin more cached pages than are free', () => {
    // 8 pages; 4 requests arriving together, each pinning 2 pages of a cached 32-token prefix: no
    // page is free and their TTFT deadlines are equal. Every one must still finish.
    const kv: KvBudget = { pages: 8, pageSize: 16 };
    const s = new SlosScheduler({ model, kv, admission: false });
    const prompt = 40;
    const maxTokens = 3;
    const progress = new Map(['a', 'b', 'c', 'd'].map((id) => [id, { prefilled: 32, generated: 0 }]));
    for (const id of progress.keys()) s.submit(req(id, { promptTokens: prompt, cachedTokens: 32, maxTokens }), 0);
    let now = 0;
    for (let i = 0; i < 500 && s.size > 0; i++) {
      const { plan } = s.step(now);
      expect(plan, `step ${i}: nothing planned with ${s.size} requests left`).not.toBeNull();
      for (const id of plan!.preempt) Object.assign(progress.get(id)!, { prefilled: 0 });
      now += 10;
      s.complete(
        now,
        plan!.entries.map((e) => {
          const p = progress.get(e.id)!;
          let emitted = 1;
          if (e.kind === 'prefill') {
            p.prefilled += e.tokens;
            emitted = p.prefilled >= prompt + p.generated ? 1 : 0;
          }
          p.generated += emitted;
          return { id: e.id, emitted, finished: p.generated >= maxTokens };
        }),
      );
    }
    expect(s.size).toBe(0);
  });
});
