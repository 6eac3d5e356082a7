// SLOs-Serve's executed steps are its plan: a burst into an idle scheduler gets a first step no
// longer than the earliest admitted first-token deadline; best-effort rows never lengthen a step;
// speculation buys the step it is planned for (each decoder's drafts reach the step's end, and the
// step is longer than the nearest next-token deadline); with the model as the clock, admitted
// requests meet their SLOs; the reservation modes; and the one registry.

import { describe, expect, it } from 'vitest';
import { judgeRequest } from '../../src/scheduler/attainment.js';
import { PerformanceModel } from '../../src/scheduler/perf-model.js';
import { createScheduler, SCHEDULER_NAMES, SchedulerNameError, sweep, type SchedulerContext } from '../../src/scheduler/registry.js';
import { keysRead } from '../../src/scheduler/request-state.js';
import { plannedTokens } from '../../src/scheduler/slos/decode-plan.js';
import { OutputReservation } from '../../src/scheduler/slos/reservation.js';
import { SlosScheduler } from '../../src/scheduler/slos/scheduler.js';
import { planStepDecodes, type StepDecoder } from '../../src/scheduler/slos/step-plan.js';
import { OutputLengthTracker } from '../../src/scheduler/slo.js';
import type { SchedRequest, Scheduler, StepOutcome, StepPlan } from '../../src/scheduler/types.js';
import { makeScheduler, variantsFor, type BenchSetup } from '../../src/sim/bench-sched.js';
import { PROFILES } from '../../src/sim/profiles.js';
import { generateScenario } from '../../src/sim/scenarios.js';
import { simulate } from '../../src/sim/simulator.js';
import { compressTrace, resolveTrace } from '../../src/sim/trace.js';

const paper = PerformanceModel.fromProfile(PROFILES.paper);
const KV = { pages: 6000, pageSize: 16 };

function req(id: string, over: Partial<SchedRequest> = {}): SchedRequest {
  return { id, app: 'chat', arrivalMs: 0, promptTokens: 230, maxTokens: 200, ttftMs: 203, stages: [{ name: 'decode', tpotMs: 100 }], ...over };
}

/** Predicted time of a plan's entries restricted to `ids` (the same keys and drafts as the plan). */
function predictOf(s: Scheduler, plan: StepPlan, ids: ReadonlySet<string>, kvOf: (id: string) => number): number {
  let tokens = 0;
  let draftSteps = 0;
  let kvTokensRead = 0;
  for (const e of plan.entries) {
    if (!ids.has(e.id)) continue;
    const rows = e.kind === 'prefill' ? e.tokens : 1 + e.draftTokens;
    tokens += rows;
    if (e.kind === 'decode') draftSteps = Math.max(draftSteps, e.draftTokens);
    kvTokensRead += keysRead(kvOf(e.id), rows, s.performanceModel.profile.layers);
  }
  return tokens > 0 ? s.performanceModel.predict({ tokens, draftSteps, kvTokensRead }) : 0;
}

describe('SLOs-Serve steps execute the plan', () => {
  it('a burst into an idle scheduler: the first step ends by the earliest admitted first-token deadline', () => {
    // The review's repro: 12 identical chat requests, 203 ms of TTFT under the paper's profile. All
    // 12 prompts in one step would be 2760 rows (~215 ms): every admitted request would miss.
    const s = new SlosScheduler({ model: paper, kv: KV });
    for (let i = 0; i < 12; i++) s.submit(req(`r${i}`), 0);
    const { plan: first, decisions } = s.step(0);
    const plan = first!;
    const admitted = decisions.filter((e) => e.decision === 'admitted').map((e) => e.id);
    expect(admitted.length).toBeGreaterThan(0);
    expect(admitted.length).toBeLessThan(12);
    expect(plan.predictedMs).toBeLessThanOrEqual(203);
    // Every admitted prompt is whole in the step: its first token comes at the step's end, on time.
    for (const id of admitted) expect(plan.entries).toContainEqual({ id, kind: 'prefill', tokens: 230 });
  });

  it('a long prefill with a late deadline does not push an earlier admitted one past its deadline', () => {
    // Both fit their deadlines in EDF order (the DP admits both); one step of both would take ~400 ms.
    const s = new SlosScheduler({ model: paper, kv: KV });
    s.submit(req('short', { promptTokens: 230, ttftMs: 100 }), 0);
    s.submit(req('long', { promptTokens: 5000, ttftMs: 2000 }), 0);
    const { plan: first, decisions } = s.step(0);
    const plan = first!;
    expect(decisions.map((e) => e.decision)).toEqual(['admitted', 'admitted']);
    expect(plan.predictedMs).toBeLessThanOrEqual(100);
    expect(plan.entries[0]).toEqual({ id: 'short', kind: 'prefill', tokens: 230 });
    expect(plan.entries[1]).toMatchObject({ id: 'long', kind: 'prefill' });
  });

  it('best-effort rows never lengthen a step with admitted work in it', () => {
    const s = new SlosScheduler({ model: paper, kv: KV });
    const kv = new Map<string, number>();
    const admitted = new Set<string>();
    let now = 0;
    let mixed = 0;
    let idleBestEffort = 0;
    // Waves of bursts: more than the DP takes, so some are served best-effort.
    for (let step = 0; step < 400; step++) {
      if (step % 40 === 0) for (let i = 0; i < 14; i++) s.submit(req(`w${step}-${i}`, { arrivalMs: now, maxTokens: 30 }), now);
      const { plan, decisions } = s.step(now);
      for (const ev of decisions) if (ev.decision === 'admitted') admitted.add(ev.id);
      if (!plan) {
        now += 10;
        continue;
      }
      const inPlanAdmitted = plan.entries.filter((e) => admitted.has(e.id));
      const be = plan.entries.filter((e) => !admitted.has(e.id));
      if (inPlanAdmitted.length > 0 && be.length > 0) mixed++;
      // Every row costs time under this model: a best-effort row beside admitted ones would lengthen the step.
      if (inPlanAdmitted.length > 0) expect(plan.predictedMs).toBeLessThanOrEqual(predictOf(s, plan, admitted, (id) => kv.get(id) ?? 0) + 1e-9);
      if (inPlanAdmitted.length === 0 && be.length > 0) idleBestEffort++;
      const out: StepOutcome[] = plan.entries.map((e) => {
        const before = kv.get(e.id) ?? 0;
        if (e.kind === 'prefill') {
          kv.set(e.id, before + e.tokens);
          return { id: e.id, emitted: before + e.tokens >= 230 ? 1 : 0, finished: false };
        }
        kv.set(e.id, before + 1);
        return { id: e.id, emitted: 1, accepted: 0, finished: before - 230 >= 28 };
      });
      now += plan.predictedMs;
      for (const ev of s.complete(now, out)) if (ev.decision === 'admitted') admitted.add(ev.id);
    }
    // Best-effort work did run (in steps with nothing admitted), and never inside admitted steps.
    expect(idleBestEffort).toBeGreaterThan(0);
    expect(mixed).toBe(0);
  });

  it('speculation buys the step it is planned for: drafts reach the step end, past the next-token deadline', () => {
    // Eight decoders 10 ms from their next token on 50 ms curves, a big prefill waiting.
    const decoders: StepDecoder[] = Array.from({ length: 8 }, (_, i) => ({ reachMs: (t: number) => 10 + i + (t - 1) * 50, alpha: 0.7, maxK: 4, kv: 300 }));
    const plan = planStepDecodes(decoders, { model: paper, layers: 32, maxTokensPerStep: 8192, speculation: 'adaptive', capMs: Infinity, prefillWork: 5000, steadyMs: 50 });
    expect(plan.stepMs).toBeGreaterThan(10);
    for (const [i, d] of decoders.entries()) expect(d.reachMs(plannedTokens(plan.spec[i]!, d.alpha))).toBeGreaterThanOrEqual(plan.stepMs - 1e-9);
    // Without drafts the step could not outlast the nearest next-token deadline.
    const off = planStepDecodes(decoders, { model: paper, layers: 32, maxTokensPerStep: 8192, speculation: 0, capMs: Infinity, prefillWork: 5000, steadyMs: 50 });
    expect(off.stepMs).toBe(10);
    expect(plan.spec.every((k) => k >= 1)).toBe(true);
  });

  it('never plans more rows than a step takes, whatever the mode', () => {
    const many: StepDecoder[] = Array.from({ length: 200 }, () => ({ reachMs: (t: number) => -5 + t, alpha: 0.7, maxK: 4, kv: 10 }));
    for (const speculation of ['adaptive', 4] as const) {
      const plan = planStepDecodes(many, { model: paper, layers: 32, maxTokensPerStep: 512, speculation, capMs: Infinity, prefillWork: 0, steadyMs: 50 });
      expect(plan.spec.reduce((a, k) => a + 1 + k, 0)).toBeLessThanOrEqual(512);
    }
  });

  it('a decoder no step can save does not cut the step short for everyone else', () => {
    // Due in 3 ms, no drafts possible: shorter than any step. It must not bound the step to 3 ms.
    const doomed: StepDecoder = { reachMs: (t: number) => 3 + (t - 1) * 50, alpha: 0.7, maxK: 0, kv: 10 };
    const fine: StepDecoder = { reachMs: (t: number) => 80 + (t - 1) * 50, alpha: 0.7, maxK: 0, kv: 10 };
    const plan = planStepDecodes([doomed, fine], { model: paper, layers: 32, maxTokensPerStep: 8192, speculation: 'adaptive', capMs: Infinity, prefillWork: 1000, steadyMs: 50 });
    expect(plan.stepMs).toBe(80);
  });

  it('decode-only steps race: spare rows buy drafts without lengthening the step', () => {
    const decoders: StepDecoder[] = Array.from({ length: 4 }, (_, i) => ({ reachMs: (t: number) => 200 + i + (t - 1) * 100, alpha: 0.8, maxK: 4, kv: 100 }));
    const plan = planStepDecodes(decoders, { model: paper, layers: 32, maxTokensPerStep: 8192, speculation: 'adaptive', capMs: Infinity, prefillWork: 0, steadyMs: 100 });
    expect(plan.spec).toEqual([4, 4, 4, 4]);
    const rows = plan.spec.reduce((a, k) => a + 1 + k, 0);
    expect(paper.predict({ tokens: rows, draftSteps: 4, kvTokensRead: 0 })).toBeLessThanOrEqual(plan.stepMs);
  });

  it('with true lengths reserved and the model as the clock, at most 1% of admitted requests miss (simulated coder load, speculating)', () => {
    const resolved = compressTrace(resolveTrace(generateScenario('coder', { requests: 200, ratePerSec: 1, seed: 7, tightTpotMs: 50, looseTpotMs: 100 }), { contextTokens: 8192 }), 20);
    const result = simulate({ trace: resolved, clock: paper, seed: 7, makeScheduler: () => new SlosScheduler({ model: paper, kv: KV, maxSpec: 4, reservation: 'oracle' }) });
    let admitted = 0;
    let missed = 0;
    for (const t of result.timelines) {
      if (t.declined) continue;
      admitted++;
      if (!judgeRequest(t).met) missed++;
    }
    expect(result.drafted).toBeGreaterThan(0);
    expect(admitted).toBeGreaterThan(150);
    // With true lengths reserved and the model as the clock, only acceptance luck can make an admitted request miss.
    expect(missed / admitted).toBeLessThanOrEqual(0.01);
  });
});

describe('output reservations', () => {
  it('adaptive moves its quantile with demotions (up) and memory declines (down); oracle reads the true length', () => {
    const lengths = new OutputLengthTracker();
    for (let n = 1; n <= 100; n++) lengths.record('a', n);
    const r = new OutputReservation('adaptive', lengths, 1_000_000);
    const base = r.tokens(req('x', { app: 'a', maxTokens: 1000 }));
    expect(base).toBe(60);
    r.onMemoryDecline('a');
    r.onMemoryDecline('a');
    expect(r.tokens(req('x', { app: 'a', maxTokens: 1000 }))).toBe(58);
    for (let i = 0; i < 10; i++) r.onDemoted('a');
    expect(r.tokens(req('x', { app: 'a', maxTokens: 1000 }))).toBe(78);
    for (let i = 0; i < 100; i++) r.onDemoted('a');
    expect(r.quantile('a')).toBe(0.99);
    for (let i = 0; i < 100; i++) r.onMemoryDecline('a');
    expect(r.quantile('a')).toBe(0.5);
    expect(r.tokens(req('x', { app: 'a', maxTokens: 50 }))).toBe(50);
    expect(new OutputReservation('p90', lengths, 1_000_000).tokens(req('x', { app: 'a', maxTokens: 1000 }))).toBe(90);
    expect(new OutputReservation('max_tokens', lengths, 1_000_000).tokens(req('x', { app: 'a', maxTokens: 1000 }))).toBe(1000);
    expect(new OutputReservation('oracle', lengths, 1_000_000).tokens(req('x', { app: 'a', maxTokens: 1000, oracleOutputTokens: 17 }))).toBe(17);
    // Before any history: max_tokens, at most an eighth of the cache.
    expect(new OutputReservation('adaptive', lengths, 1_000_000).tokens(req('x', { app: 'new', maxTokens: 300 }))).toBe(300);
    expect(new OutputReservation('adaptive', lengths, 1024).tokens(req('x', { app: 'new', maxTokens: 4096 }))).toBe(128);
    expect(new OutputReservation('p90', lengths, 1024).tokens(req('x', { app: 'new', maxTokens: 4096 }))).toBe(128);
    expect(new OutputReservation('max_tokens', lengths, 1024).tokens(req('x', { app: 'new', maxTokens: 4096 }))).toBe(4096);
    expect(() => new OutputReservation('p50' as never, lengths, 1_000_000)).toThrow(/not one of adaptive, p90, max_tokens, oracle/);
  });
});

describe('cold start', () => {
  it('requests without max_tokens on an app without history are admitted when the cache is smaller than the context', () => {
    // Once: 1,024 KV tokens, 4,096 context, max_tokens left out (= the context): each reservation was
    // prompt + 4,096 tokens, more than the whole cache, so all 12 were declined, and since declined
    // requests never finish, the app never got the history that would have fixed it.
    // Now each reserves at most an eighth of the cache: six fit at once, the others are re-offered as
    // the first ones finish (10 tokens each), all within their TTFT.
    const s = new SlosScheduler({ model: paper, kv: { pages: 64, pageSize: 16 } });
    expect(s.reservation.coldTokens).toBe(128);
    const prompts = new Map<string, number>();
    for (let i = 0; i < 12; i++) {
      s.submit(req(`r${i}`, { app: 'new', promptTokens: 20, maxTokens: 4096, ttftMs: 2000 }), 0);
      prompts.set(`r${i}`, 20);
    }
    const progress = new Map<string, number>();
    const emitted = new Map<string, number>();
    const events: { id: string; decision: string }[] = [];
    let now = 0;
    for (let n = 0; n < 400 && s.size > 0; n++) {
      const { plan, decisions } = s.step(now);
      events.push(...decisions);
      if (!plan) break;
      const out: StepOutcome[] = plan.entries.map((e) => {
        if (e.kind === 'prefill') {
          const done = (progress.get(e.id) ?? 0) + e.tokens;
          progress.set(e.id, done);
          return { id: e.id, emitted: done >= 20 ? 1 : 0, finished: false };
        }
        const k = (emitted.get(e.id) ?? 1) + 1;
        emitted.set(e.id, k);
        return { id: e.id, emitted: 1, accepted: 0, finished: k >= 10 };
      });
      now += plan.predictedMs;
      events.push(...s.complete(now, out));
    }
    expect(events.filter((e) => e.decision !== 'admitted')).toEqual([]);
    expect(events.filter((e) => e.decision === 'admitted')).toHaveLength(12);
  });
});

describe('the scheduler registry', () => {
  const ctx: SchedulerContext = { model: paper, kv: KV, maxSpec: 4, tightestTpotMs: 50 };

  it('builds every name, each reporting its own name; speculation needs a draft', () => {
    for (const name of SCHEDULER_NAMES) expect(createScheduler(name, ctx).name).toBe(name);
    expect(() => createScheduler('fcfs+sd', { ...ctx, maxSpec: 0 })).toThrow(SchedulerNameError);
    expect(() => createScheduler('slos', { ...ctx, maxSpec: 2 }, { specK: 4 })).toThrow(/at most 2/);
  });

  it('the simulator builds its variants through it (a variant with the registry defaults is the registry scheduler)', () => {
    const setup: BenchSetup = { profile: paper, kvTokens: KV.pages * KV.pageSize, pageSize: 16, seeds: [1], requests: 50, replicas: 1, arrivals: 'poisson', contextTokens: 8192, alpha: 0.7 };
    const trace = compressTrace(resolveTrace(generateScenario('chatbot', { requests: 60, ratePerSec: 1, seed: 3, tightTpotMs: 50, looseTpotMs: 100 }), { contextTokens: 8192 }), 20);
    for (const name of ['sarathi', 'fcfs', 'sarathi-paper', 'vllm-v0', 'edf'] as const) {
      const variant = variantsFor(name, setup)[0]!; // fcfs: budget=512, the sweep's first
      const viaBench = simulate({ trace, clock: paper, seed: 1, makeScheduler: () => makeScheduler(variant, setup, 50) });
      const viaRegistry = simulate({
        trace,
        clock: paper,
        seed: 1,
        makeScheduler: () => createScheduler(name, { model: paper, kv: KV, maxSpec: 0, tightestTpotMs: 50 }, name === 'fcfs' ? { budget: 512 } : undefined),
      });
      expect(viaBench.timelines, name).toEqual(viaRegistry.timelines);
    }
    expect(sweep('slos', ctx)).toHaveLength(1);
    expect(sweep('fcfs+sd', { ...ctx, maxSpec: 0 })).toEqual([]);
    // A small step limit (the h200 profile's 512) still sweeps k, at the budget it allows.
    expect(sweep('fcfs+sd', { ...ctx, maxTokensPerStep: 512 }).map((v) => v.label)).toEqual(['fcfs+sd k=1 budget=512', 'fcfs+sd k=2 budget=512', 'fcfs+sd k=4 budget=512']);
  });
});
