// The schedulers through the simulator and by hand: FCFS/Sarathi ordering, budgets and recompute
// preemption; SLOs-Serve never drops what it admitted (with max_tokens reservations nothing
// overruns), what it admits meets its SLOs when replayed on the same clock, KV pages never exceed the
// budget, the simulator is deterministic per seed, and routing offers requests to replicas in turn.

import { describe, expect, it } from 'vitest';
import { judgeRequest } from '../../src/scheduler/attainment.js';
import { FcfsScheduler } from '../../src/scheduler/fcfs.js';
import { PerformanceModel } from '../../src/scheduler/perf-model.js';
import { SlosScheduler } from '../../src/scheduler/slos/scheduler.js';
import type { SchedRequest, Scheduler, SchedulerEvent, StepPlan } from '../../src/scheduler/types.js';
import { PROFILES } from '../../src/sim/profiles.js';
import { generateScenario } from '../../src/sim/scenarios.js';
import { remoteLike } from '../../src/sim/remote-replica.js';
import { simulate } from '../../src/sim/simulator.js';
import { compressTrace, resolveTrace } from '../../src/sim/trace.js';
import { runStep } from '../helpers/sched-steps.js';

// The paper's OPT-6.7B fit (with a draft piece), as a small-GPU-free clock.
const model = PerformanceModel.fromProfile({ ...(PROFILES.paper as object), maxTokensPerStep: 4096 });
const KV = { pages: 2000, pageSize: 16 };

function req(id: string, over: Partial<SchedRequest> = {}): SchedRequest {
  return { id, app: 'chat', arrivalMs: 0, promptTokens: 100, maxTokens: 50, ttftMs: 1000, stages: [{ name: 'decode', tpotMs: 100 }], ...over };
}

const run = runStep;

/** Pass every decision `s` returns from step, complete and offer (in order) to `record`; returns `s`. */
function onDecisions<S extends Scheduler>(s: S, record: (ev: readonly SchedulerEvent[]) => void): S {
  const step = s.step.bind(s);
  const complete = s.complete.bind(s);
  const offer = s.offer.bind(s);
  s.step = (t) => {
    const d = step(t);
    record(d.decisions);
    return d;
  };
  s.complete = (t, outcomes) => {
    const ev = complete(t, outcomes);
    record(ev);
    return ev;
  };
  s.offer = (r, t, fallback) => {
    const ev = offer(r, t, fallback);
    if (ev) record(ev);
    return ev;
  };
  return s;
}

describe('FCFS (vLLM-style) and Sarathi', () => {
  it('serves running requests first, then waiting ones in arrival order, under the token budget', () => {
    const events: SchedulerEvent[] = [];
    const s = onDecisions(new FcfsScheduler({ model, kv: KV, maxBatchedTokens: 256 }), (ev) => events.push(...ev));
    const prompts = new Map([
      ['a', 300],
      ['b', 100],
      ['c', 100],
    ]);
    for (const [id, p] of prompts) s.submit(req(id, { promptTokens: p }), 0);
    const progress = new Map<string, number>();
    const p1 = run(s, 0, progress, prompts)!;
    expect(p1.entries).toEqual([{ id: 'a', kind: 'prefill', tokens: 256 }]);
    const p2 = run(s, 50, progress, prompts)!;
    expect(p2.entries).toEqual([
      { id: 'a', kind: 'prefill', tokens: 44 },
      { id: 'b', kind: 'prefill', tokens: 100 },
      { id: 'c', kind: 'prefill', tokens: 100 },
    ]);
    const p3 = run(s, 100, progress, prompts)!;
    expect(p3.entries.map((e) => e.kind)).toEqual(['decode', 'decode', 'decode']);
    expect(events.map((e) => e.decision)).toEqual(['admitted', 'admitted', 'admitted']);
  });

  it('preempts the most recently started request (recompute) when KV pages run out', () => {
    // 3 pages of 16: a and b each hold 16 tokens after prefill; the next decode needs a page.
    const s = new FcfsScheduler({ model, kv: { pages: 3, pageSize: 16 }, maxBatchedTokens: 64 });
    const prompts = new Map([
      ['a', 16],
      ['b', 16],
    ]);
    for (const [id, p] of prompts) s.submit(req(id, { promptTokens: p }), 0);
    const progress = new Map<string, number>();
    run(s, 0, progress, prompts);
    const p2 = s.step(10).plan!;
    expect(p2.preempt).toEqual(['b']);
    expect(p2.entries).toEqual([{ id: 'a', kind: 'decode', draftTokens: 0 }]);
  });

  it('Sarathi puts decodes before ongoing prefills', () => {
    const s = new FcfsScheduler({ model, kv: KV, maxBatchedTokens: 64, order: 'sarathi' });
    const prompts = new Map([
      ['a', 32],
      ['b', 200],
    ]);
    for (const [id, p] of prompts) s.submit(req(id, { promptTokens: p }), 0);
    const progress = new Map<string, number>();
    run(s, 0, progress, prompts); // a 32, b 32
    const p2 = s.step(50).plan!;
    expect(p2.entries[0]).toEqual({ id: 'a', kind: 'decode', draftTokens: 0 });
    expect(p2.entries[1]).toEqual({ id: 'b', kind: 'prefill', tokens: 63 });
  });
});

/** Wrap a scheduler, checking every plan against an independent KV model (PagedKvCache's rules). */
function checked(inner: Scheduler, pages: number, pageSize: number, maxRows: number): Scheduler {
  const kv = new Map<string, number>();
  let last: StepPlan | null = null;
  const used = (): number => [...kv.values()].reduce((a, t) => a + Math.ceil(t / pageSize), 0);
  return {
    name: inner.name,
    get size() {
      return inner.size;
    },
    get performanceModel() {
      return inner.performanceModel;
    },
    setModel: (m) => inner.setModel(m),
    submit: (r, t) => inner.submit(r, t),
    offer: (r, t, f) => inner.offer(r, t, f),
    cancel: (id, t) => inner.cancel(id, t),
    step(now) {
      const decided = inner.step(now);
      const plan = decided.plan;
      last = plan;
      if (!plan) return decided;
      for (const id of plan.preempt) kv.delete(id);
      let rows = 0;
      for (const e of plan.entries) {
        const r = e.kind === 'prefill' ? e.tokens : 1 + e.draftTokens;
        rows += r;
        kv.set(e.id, (kv.get(e.id) ?? 0) + r);
      }
      if (used() > pages) throw new Error(`step at ${now} needs ${used()} KV pages of ${pages}`);
      if (rows !== plan.tokens) throw new Error('plan.tokens disagrees with its entries');
      if (plan.entries.every((e) => e.kind === 'prefill') && rows > maxRows) throw new Error(`${rows} rows > ${maxRows}`);
      return decided;
    },
    complete(now, outcomes) {
      for (const o of outcomes) {
        const e = last!.entries.find((x) => x.id === o.id)!;
        if (e.kind === 'decode') kv.set(o.id, kv.get(o.id)! - (1 + e.draftTokens) + o.emitted);
        if (o.finished) kv.delete(o.id);
      }
      return inner.complete(now, outcomes);
    },
  };
}

function chatTrace(rate: number, seed: number, requests = 300) {
  return compressTrace(resolveTrace(generateScenario('mixed', { requests, ratePerSec: 1, seed, tightTpotMs: 50, looseTpotMs: 100, maxPromptTokens: 3000 }), { contextTokens: 4096 }), rate);
}

describe('SLOs-Serve through the simulator', () => {
  it('never drops an admitted request and keeps KV within budget (max_tokens reservations)', () => {
    const pages = 1500;
    const trace = chatTrace(12, 3);
    const decisions = new Map<string, string[]>();
    const result = simulate({
      trace,
      clock: model,
      seed: 3,
      makeScheduler: () => {
        const inner = new SlosScheduler({ model, kv: { pages, pageSize: 16 }, reservation: 'max_tokens', maxSpec: 4 });
        return onDecisions(checked(inner, pages, 16, 4096), (ev) => {
          for (const e of ev) decisions.set(e.id, [...(decisions.get(e.id) ?? []), e.decision]);
        });
      },
    });
    let admitted = 0;
    for (const d of decisions.values()) {
      if (d[0] === 'admitted') {
        admitted++;
        expect(d).toEqual(['admitted']);
      }
    }
    expect(admitted).toBeGreaterThan(50);
    // Some were declined at this rate, so the DP made real choices.
    expect(result.timelines.some((t) => t.declined)).toBe(true);
  });

  it('what it admits meets its SLOs when replayed on the clock it planned with', () => {
    for (const seed of [1, 2]) {
      const result = simulate({ trace: chatTrace(14, seed), clock: model, seed, makeScheduler: () => new SlosScheduler({ model, kv: { pages: 6000, pageSize: 16 } }) });
      const admitted = result.timelines.filter((t) => !t.declined);
      const met = admitted.filter((t) => judgeRequest(t).met).length;
      expect(result.timelines.length - admitted.length).toBeGreaterThan(0);
      expect(met / admitted.length).toBeGreaterThan(0.95);
    }
  });

  it('is deterministic per seed; acceptance draws change with the seed', () => {
    const make = () => new SlosScheduler({ model, kv: KV, maxSpec: 4 });
    const a = simulate({ trace: chatTrace(3, 5, 120), clock: model, seed: 5, makeScheduler: make });
    const b = simulate({ trace: chatTrace(3, 5, 120), clock: model, seed: 5, makeScheduler: make });
    const c = simulate({ trace: chatTrace(3, 5, 120), clock: model, seed: 6, makeScheduler: make });
    expect(a).toEqual(b);
    expect(a.drafted).toBeGreaterThan(0);
    expect(c.timelines).not.toEqual(a.timelines);
  });

  it('routes across replicas: a replica that cannot admit passes the request on', () => {
    const tight = new SlosScheduler({ model, kv: { pages: 10, pageSize: 16 } });
    const roomy = new SlosScheduler({ model, kv: KV });
    const r = req('x', { promptTokens: 200 });
    expect(tight.offer(r, 0, false)).toBeNull();
    expect(tight.size).toBe(0);
    const taken = roomy.offer(r, 0, false);
    expect(taken).not.toBeNull();
    expect(taken).toEqual([{ id: 'x', decision: 'admitted', atMs: 0 }]);
    const trace = chatTrace(30, 1, 200);
    const one = simulate({ trace, clock: model, seed: 1, makeScheduler: () => new SlosScheduler({ model, kv: KV }) });
    const four = simulate({ trace, clock: model, seed: 1, replicas: 4, makeScheduler: () => new SlosScheduler({ model, kv: KV }) });
    const att = (x: typeof one) => x.timelines.filter((t) => judgeRequest(t).met).length / x.timelines.length;
    expect(att(four)).toBeGreaterThan(att(one));
  });

  it('sends what the local planner does not admit to remote replicas (the Router policy in the simulator); without admission nothing leaves', () => {
    const trace = chatTrace(30, 1, 200);
    const make = () => new SlosScheduler({ model, kv: KV });
    const alone = simulate({ trace, clock: model, seed: 1, makeScheduler: make });
    const remote = () => remoteLike(model, 'r0', { kvTokens: KV.pages * KV.pageSize });
    const routed = simulate({ trace, clock: model, seed: 1, makeScheduler: make, remotes: [remote()] });
    const att = (x: typeof alone) => x.timelines.filter((t) => judgeRequest(t).met).length / x.timelines.length;
    expect(routed.remoteRounds).toBeGreaterThan(0);
    expect(att(routed)).toBeGreaterThan(att(alone));
    // Deterministic per seed.
    expect(simulate({ trace, clock: model, seed: 1, makeScheduler: make, remotes: [remote()] }).timelines).toEqual(routed.timelines);
    // The remote's timing: prefills one after another, decodes in steps of (in flight + 1) rows, KV refused when full.
    const peer = remote();
    const a = peer.take(0, 200, 10, 0)!;
    expect(a.ttftMs).toBeCloseTo(20 + model.zeroLoadPrefillMs(200), 6);
    expect(a.tpotMs).toBeCloseTo(model.predictRaw({ tokens: 1 }), 6);
    const b = peer.take(0, 200, 10, 1)!;
    expect(b.ttftMs).toBeCloseTo(a.ttftMs + model.zeroLoadPrefillMs(200) + model.predictRaw({ tokens: 2 }) - model.predictRaw({ tokens: 1 }), 6);
    expect(b.tpotMs).toBeCloseTo(model.predictRaw({ tokens: 2 }), 6);
    expect(peer.take(0, KV.pages * KV.pageSize, 1, 2)).toBeNull();
    a.release();
    b.release();
    expect(peer.take(1e6, KV.pages * KV.pageSize - 1, 1, 0)).not.toBeNull();
    // FCFS has no admission: its offer takes everything, so a router never sends anything away.
    const fcfs = simulate({ trace, clock: model, seed: 1, makeScheduler: () => new FcfsScheduler({ model, kv: KV, maxBatchedTokens: 2048 }), remotes: [remote()] });
    expect(fcfs.remoteRounds).toBe(0);
  });

  it('follows a stage switch: the answer stage gets its own TPOT', () => {
    const s = new SlosScheduler({ model, kv: KV });
    s.submit(
      req('r', {
        stages: [
          { name: 'think', tpotMs: 50 },
          { name: 'answer', tpotMs: 200 },
        ],
        promptTokens: 10,
      }),
      0,
    );
    const p = s.step(0).plan!;
    s.complete(
      40,
      p.entries.map((e) => ({ id: e.id, emitted: 1, finished: false })),
    );
    const d = s.step(40).plan!;
    s.complete(
      70,
      d.entries.map((e) => ({ id: e.id, emitted: 1, finished: false, stageStartedAt: 1 })),
    );
    // Deadlines: token 1 at 1000 (TTFT), token 2 at 1000 + 200 in the answer stage, token 3 at 1400.
    const state = (s as unknown as { states: Map<string, { tokenDeadlineMs(n: number): number }> }).states.get('r')!;
    expect(state.tokenDeadlineMs(2)).toBe(1200);
    expect(state.tokenDeadlineMs(3)).toBe(1400);
  });

  it('the simulator reports stage switches at one token per step; the judge sees both stages', () => {
    const trace = resolveTrace(
      {
        apps: {
          reason: {
            ttft_ms: 5000,
            stages: [
              { name: 'think', tpot_ms: 50 },
              { name: 'answer', tpot_ms: 200 },
            ],
          },
        },
        requests: [{ t_ms: 0, app: 'reason', prompt_tokens: 20, stage_tokens: [5, 5] }],
      },
      { contextTokens: 4096 },
    );
    for (const make of [() => new FcfsScheduler({ model, kv: KV, maxBatchedTokens: 64 }), () => new SlosScheduler({ model, kv: KV })]) {
      const r = simulate({ trace, clock: model, seed: 1, makeScheduler: make });
      expect(r.timelines[0]!.rounds[0]!.stageStarts).toEqual([0, 5]);
      expect(r.timelines[0]!.rounds[0]!.tokenTimes.length).toBe(10);
    }
  });

  it('declines a request whose KV alone would outgrow the cache, instead of looping on it', () => {
    for (const make of [
      () => new FcfsScheduler({ model, kv: { pages: 4, pageSize: 16 }, maxBatchedTokens: 64 }),
      () => new SlosScheduler({ model, kv: { pages: 4, pageSize: 16 }, admission: false }),
    ]) {
      const trace = resolveTrace(
        {
          apps: { chat: { ttft_ms: 5000, tpot_ms: 100 } },
          requests: [
            { t_ms: 0, app: 'chat', prompt_tokens: 40, output_tokens: 100 },
            { t_ms: 1, app: 'chat', prompt_tokens: 10, output_tokens: 5 },
          ],
        },
        { contextTokens: 4096 },
      );
      const r = simulate({ trace, clock: model, seed: 1, makeScheduler: make });
      expect(r.timelines[0]!.declined).toBe(true);
      expect(r.timelines[0]!.rounds[0]!.finished).toBe(false);
      expect(r.timelines[1]!.rounds[0]!.finished).toBe(true);
    }
  });
});
