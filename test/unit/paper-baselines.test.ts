// The SLOs-Serve paper's baselines as the authors' code configures them: vllm-v0 prefills one whole
// prompt per step before any decode and never chunks; sarathi-paper's budget is the authors' grid
// search (1, 33, ..., 2017) against the tightest TPOT, decodes come first and the prefill budget is
// split evenly (floored) over the prefilling prompts; both reserve prompt + maxTokens of KV at
// admission and decline the first arrival that does not fit and every later one of the same round.

import { describe, expect, it } from 'vitest';
import { SchedulerInputError } from '../../src/scheduler/base.js';
import { paperSarathiBudget, SarathiPaperScheduler, VllmV0Scheduler } from '../../src/scheduler/paper-baselines.js';
import { PerformanceModel } from '../../src/scheduler/perf-model.js';
import type { SchedRequest, Scheduler, SchedulerEvent, StepPlan } from '../../src/scheduler/types.js';
import { PROFILES } from '../../src/sim/profiles.js';
import { generateScenario } from '../../src/sim/scenarios.js';
import { simulate } from '../../src/sim/simulator.js';
import { compressTrace, resolveTrace } from '../../src/sim/trace.js';
import { runStep } from '../helpers/sched-steps.js';

// The paper's OPT-6.7B fit: planned T = 1.05 * max(0.0688 t + 24.8, 0.0752 t + 3.46 s + 3.0) ms.
const model = PerformanceModel.fromProfile({ ...(PROFILES.paper as object), maxTokensPerStep: 4096 });
const KV = { pages: 2000, pageSize: 16 };

function req(id: string, over: Partial<SchedRequest> = {}): SchedRequest {
  return { id, app: 'chat', arrivalMs: 0, promptTokens: 100, maxTokens: 50, ttftMs: 1000, stages: [{ name: 'decode', tpotMs: 100 }], ...over };
}

const run = runStep;

function submitAll(s: Scheduler, prompts: Map<string, number>, now = 0, over: Partial<SchedRequest> = {}): void {
  for (const [id, p] of prompts) s.submit(req(id, { promptTokens: p, ...over }), now);
}

/**
 * Record the decisions `s` returns from step, complete and offer; the function returned hands over
 * (and forgets) those recorded since it was last called.
 */
function recordDecisions(s: Scheduler): () => SchedulerEvent[] {
  let recorded: SchedulerEvent[] = [];
  const step = s.step.bind(s);
  const complete = s.complete.bind(s);
  const offer = s.offer.bind(s);
  s.step = (t) => {
    const d = step(t);
    recorded.push(...d.decisions);
    return d;
  };
  s.complete = (t, outcomes) => {
    const ev = complete(t, outcomes);
    recorded.push(...ev);
    return ev;
  };
  s.offer = (r, t, fallback) => {
    const ev = offer(r, t, fallback);
    if (ev) recorded.push(...ev);
    return ev;
  };
  return () => {
    const out = recorded;
    recorded = [];
    return out;
  };
}

const prefills = (p: StepPlan): [string, number][] => p.entries.flatMap((e) => (e.kind === 'prefill' ? [[e.id, e.tokens] as [string, number]] : []));
const decodes = (p: StepPlan): string[] => p.entries.flatMap((e) => (e.kind === 'decode' ? [e.id] : []));

describe("vllm-v0 (the authors' vLLMScheduler)", () => {
  it('prefills one whole prompt per step, in arrival order, before any decode', () => {
    const s = new VllmV0Scheduler({ model, kv: KV });
    const drain = recordDecisions(s);
    expect(s.name).toBe('vllm-v0');
    const prompts = new Map([
      ['a', 3000],
      ['b', 100],
      ['c', 700],
    ]);
    submitAll(s, prompts);
    const progress = new Map<string, number>();
    expect(run(s, 0, progress, prompts)!.entries).toEqual([{ id: 'a', kind: 'prefill', tokens: 3000 }]);
    expect(run(s, 1, progress, prompts)!.entries).toEqual([{ id: 'b', kind: 'prefill', tokens: 100 }]);
    expect(run(s, 2, progress, prompts)!.entries).toEqual([{ id: 'c', kind: 'prefill', tokens: 700 }]);
    const d = run(s, 3, progress, prompts)!;
    expect(d.entries).toEqual(['a', 'b', 'c'].map((id) => ({ id, kind: 'decode', draftTokens: 0 })));
    expect(d.tokens).toBe(3);
    // A new arrival stalls the decodes: its whole prompt runs alone first.
    prompts.set('d', 2500);
    s.submit(req('d', { promptTokens: 2500 }), 4);
    expect(run(s, 4, progress, prompts)!.entries).toEqual([{ id: 'd', kind: 'prefill', tokens: 2500 }]);
    expect(decodes(run(s, 5, progress, prompts)!)).toEqual(['a', 'b', 'c', 'd']);
    expect(drain().map((e) => e.decision)).toEqual(['admitted', 'admitted', 'admitted', 'admitted']);
  });

  it('prefills only the uncached part of a prompt with a prefix-cache hit, whole', () => {
    const s = new VllmV0Scheduler({ model, kv: KV });
    s.submit(req('a', { promptTokens: 1000, cachedTokens: 600 }), 0);
    expect(s.step(0).plan!.entries).toEqual([{ id: 'a', kind: 'prefill', tokens: 400 }]);
  });

  it('declines a request whose prompt + maxTokens cannot be reserved, though its prompt alone fits', () => {
    // 20 pages of 16 = 320 tokens: 100 + 300 = 400 does not fit; 100 + 200 = 300 does.
    const s = new VllmV0Scheduler({ model, kv: { pages: 20, pageSize: 16 } });
    s.submit(req('big', { promptTokens: 100, maxTokens: 300 }), 0);
    const d0 = s.step(0);
    expect(d0.plan).toBeNull();
    expect(d0.decisions).toEqual([{ id: 'big', decision: 'declined', atMs: 0 }]);
    expect(s.size).toBe(0);
    s.submit(req('ok', { promptTokens: 100, maxTokens: 200 }), 1);
    const d1 = s.step(1);
    expect(d1.plan!.entries).toEqual([{ id: 'ok', kind: 'prefill', tokens: 100 }]);
    expect(d1.decisions).toEqual([{ id: 'ok', decision: 'admitted', atMs: 1 }]);
  });

  it('declines every later arrival of the round after the first that does not fit; reservations free on finish', () => {
    const s = new VllmV0Scheduler({ model, kv: { pages: 20, pageSize: 16 } });
    const drain = recordDecisions(s);
    // a reserves ceil(200/16) = 13 pages; b needs ceil(300/16) = 19 > 7 free; c (2 pages) would fit.
    s.submit(req('a', { promptTokens: 100, maxTokens: 100 }), 0);
    s.submit(req('b', { promptTokens: 200, maxTokens: 100 }), 0);
    s.submit(req('c', { promptTokens: 10, maxTokens: 10 }), 0);
    const prompts = new Map([
      ['a', 100],
      ['d', 10],
      ['e', 200],
    ]);
    const progress = new Map<string, number>();
    run(s, 0, progress, prompts);
    expect(drain().map((e) => [e.id, e.decision])).toEqual([
      ['a', 'admitted'],
      ['b', 'declined'],
      ['c', 'declined'],
    ]);
    // A later round starts afresh: d fits the 7 free pages.
    s.submit(req('d', { promptTokens: 10, maxTokens: 10 }), 1);
    run(s, 1, progress, prompts);
    expect(drain().map((e) => e.decision)).toEqual(['admitted']);
    // Reserved: 13 + 2 = 18 of 20. e (19 pages) is declined until a and d finish.
    s.submit(req('e', { promptTokens: 200, maxTokens: 100 }), 2);
    run(s, 2, progress, prompts, new Set(['a', 'd']));
    expect(drain().map((e) => [e.id, e.decision])).toEqual([['e', 'declined']]);
    expect(s.size).toBe(0);
    s.submit(req('e', { promptTokens: 200, maxTokens: 100 }), 3);
    expect(s.step(3).plan!.entries).toEqual([{ id: 'e', kind: 'prefill', tokens: 200 }]);
    expect(drain().map((e) => [e.id, e.decision])).toEqual([['e', 'admitted']]);
  });

  it('declines a prompt longer than the largest step (it cannot run unchunked)', () => {
    const s = new VllmV0Scheduler({ model, kv: KV, maxTokensPerStep: 512 });
    s.submit(req('long', { promptTokens: 513 }), 0);
    s.submit(req('short', { promptTokens: 512 }), 0);
    const d = s.step(0);
    expect(d.plan!.entries).toEqual([{ id: 'short', kind: 'prefill', tokens: 512 }]);
    expect(d.decisions.map((e) => [e.id, e.decision])).toEqual([
      ['long', 'declined'],
      ['short', 'admitted'],
    ]);
  });

  it('runs at most maxSeqs requests; the rest wait admitted, in order', () => {
    const s = new VllmV0Scheduler({ model, kv: KV, maxSeqs: 2 });
    const prompts = new Map([
      ['a', 10],
      ['b', 10],
      ['c', 10],
    ]);
    submitAll(s, prompts);
    const progress = new Map<string, number>();
    run(s, 0, progress, prompts);
    run(s, 1, progress, prompts);
    expect(decodes(run(s, 2, progress, prompts, new Set(['a']))!)).toEqual(['a', 'b']);
    expect(run(s, 3, progress, prompts)!.entries).toEqual([{ id: 'c', kind: 'prefill', tokens: 10 }]);
  });

  it('never chunks and never preempts through the simulator; every step is one prompt or decodes only', () => {
    const pages = 3000;
    const trace = compressTrace(
      resolveTrace(generateScenario('mixed', { requests: 200, ratePerSec: 1, seed: 4, tightTpotMs: 50, looseTpotMs: 100, maxPromptTokens: 3000 }), { contextTokens: 4096 }),
      6,
    );
    const prompt = new Map<string, number>();
    let steps = 0;
    const result = simulate({
      trace,
      clock: model,
      seed: 4,
      makeScheduler: () => {
        const s = new VllmV0Scheduler({ model, kv: { pages, pageSize: 16 } });
        const submit = s.submit.bind(s);
        s.submit = (r, t) => {
          prompt.set(r.id, r.promptTokens - (r.cachedTokens ?? 0));
          submit(r, t);
        };
        const step = s.step.bind(s);
        s.step = (t) => {
          const d = step(t);
          const p = d.plan;
          if (p) {
            steps++;
            expect(p.preempt).toEqual([]);
            const pf = prefills(p);
            if (pf.length > 0) {
              expect(p.entries.length).toBe(1);
              expect(pf[0]![1]).toBe(prompt.get(pf[0]![0]));
            }
          }
          return d;
        };
        return s;
      },
    });
    expect(steps).toBeGreaterThan(100);
    expect(result.preemptions).toBe(0);
    // Whatever was admitted finished.
    for (const t of result.timelines.filter((x) => !x.declined)) expect(t.rounds.every((r) => r.finished)).toBe(true);
  });
});

describe("sarathi-paper (the authors' SarathiServeScheduler)", () => {
  it('budget: the largest of 1, 33, ..., 2017 whose planned step fits the TPOT, else 1', () => {
    // 1.05 * (0.0688 t + 24.8) <= 100 -> t <= 1023.8: the grid's 993 (= 1 + 31 * 32), not 1023.
    expect(paperSarathiBudget(model, 100)).toBe(993);
    expect(model.predict({ tokens: 993, draftSteps: 0, kvTokensRead: 0 })).toBeLessThanOrEqual(100);
    expect(model.predict({ tokens: 1025, draftSteps: 0, kvTokensRead: 0 })).toBeGreaterThan(100);
    // Nothing fits (an empty step is 26 ms): 1, as Python's max() of all-zero keys.
    expect(paperSarathiBudget(model, 20)).toBe(1);
    // Everything fits: the grid ends at 2017, not 2048.
    expect(paperSarathiBudget(model, 1e6)).toBe(2017);
    // Against the model's own inverse, for a spread of TPOTs.
    for (let tpot = 27; tpot < 200; tpot += 3.7) {
      const n = model.maxTokensWithin(tpot);
      const expected = n >= 1 ? 1 + 32 * Math.floor((Math.min(n, 2047) - 1) / 32) : 1;
      expect(paperSarathiBudget(model, tpot)).toBe(expected);
    }
    expect(new SarathiPaperScheduler({ model, kv: KV, tightestTpotMs: 100 }).budget).toBe(993);
    // The engine's largest step caps it.
    expect(new SarathiPaperScheduler({ model, kv: KV, tightestTpotMs: 1e6, maxTokensPerStep: 512 }).budget).toBe(512);
  });

  it('follows a new planning model', () => {
    const s = new SarathiPaperScheduler({ model, kv: KV, tightestTpotMs: 100 });
    expect(s.budget).toBe(993);
    const slower = PerformanceModel.fromProfile({ ...model.toProfile(), margin: { factor: 2, addMs: 0 } });
    s.setModel(slower);
    expect(s.budget).toBe(paperSarathiBudget(slower, 100));
    expect(s.budget).toBeLessThan(993);
  });

  it('puts decodes first and splits the rest of the budget evenly (floored) over the prefilling prompts', () => {
    const s = new SarathiPaperScheduler({ model, kv: KV, tightestTpotMs: 100 });
    expect(s.name).toBe('sarathi-paper');
    const prompts = new Map([['a', 10]]);
    submitAll(s, prompts);
    const progress = new Map<string, number>();
    run(s, 0, progress, prompts);
    for (const [id, p] of [
      ['b', 3000],
      ['c', 3000],
      ['d', 50],
    ] as const) {
      prompts.set(id, p);
      s.submit(req(id, { promptTokens: p }), 1);
    }
    // Budget 993: 1 decode, floor(992 / 3) = 330 each; d needs only 50 and its rest is not handed on.
    const p2 = run(s, 1, progress, prompts)!;
    expect(p2.entries).toEqual([
      { id: 'a', kind: 'decode', draftTokens: 0 },
      { id: 'b', kind: 'prefill', tokens: 330 },
      { id: 'c', kind: 'prefill', tokens: 330 },
      { id: 'd', kind: 'prefill', tokens: 50 },
    ]);
    expect(p2.tokens).toBe(711);
    // Now a and d decode; floor(991 / 2) = 495 each for b and c.
    const p3 = run(s, 2, progress, prompts)!;
    expect(decodes(p3)).toEqual(['a', 'd']);
    expect(p3.entries.slice(0, 2).every((e) => e.kind === 'decode')).toBe(true);
    expect(prefills(p3)).toEqual([
      ['b', 495],
      ['c', 495],
    ]);
    expect(p3.tokens).toBe(992);
    expect(p3.tokens).toBeLessThanOrEqual(s.budget);
  });

  it('with no decode, prefills every prompt in full in one step, budget or not', () => {
    const s = new SarathiPaperScheduler({ model, kv: KV, tightestTpotMs: 100 });
    submitAll(
      s,
      new Map([
        ['a', 2000],
        ['b', 1500],
      ]),
    );
    const p = s.step(0).plan!;
    expect(p.entries).toEqual([
      { id: 'a', kind: 'prefill', tokens: 2000 },
      { id: 'b', kind: 'prefill', tokens: 1500 },
    ]);
    expect(p.tokens).toBeGreaterThan(s.budget);
  });

  it('with no decode, fills whole prompts in order up to the largest step', () => {
    const s = new SarathiPaperScheduler({ model, kv: KV, tightestTpotMs: 100, maxTokensPerStep: 1000 });
    submitAll(
      s,
      new Map([
        ['a', 600],
        ['b', 600],
        ['c', 600],
      ]),
    );
    expect(s.step(0).plan!.entries).toEqual([
      { id: 'a', kind: 'prefill', tokens: 600 },
      { id: 'b', kind: 'prefill', tokens: 400 },
    ]);
  });

  it('runs every decode even past the budget, leaving no prefill (their share would be negative)', () => {
    const s = new SarathiPaperScheduler({ model, kv: KV, tightestTpotMs: 20 }); // budget 1
    expect(s.budget).toBe(1);
    const prompts = new Map([
      ['a', 10],
      ['b', 10],
    ]);
    submitAll(s, prompts);
    const progress = new Map<string, number>();
    run(s, 0, progress, prompts);
    s.submit(req('c', { promptTokens: 10 }), 1);
    expect(s.step(1).plan!.entries).toEqual([
      { id: 'a', kind: 'decode', draftTokens: 0 },
      { id: 'b', kind: 'decode', draftTokens: 0 },
    ]);
  });

  it('declines like vllm-v0: prompt + maxTokens must be reservable, later arrivals of the round too', () => {
    const s = new SarathiPaperScheduler({ model, kv: { pages: 20, pageSize: 16 }, tightestTpotMs: 100 });
    s.submit(req('a', { promptTokens: 100, maxTokens: 300 }), 0);
    s.submit(req('b', { promptTokens: 10, maxTokens: 10 }), 0);
    const d = s.step(0);
    expect(d.plan).toBeNull();
    expect(d.decisions.map((e) => [e.id, e.decision])).toEqual([
      ['a', 'declined'],
      ['b', 'declined'],
    ]);
  });

  it('rejects a bad tightestTpotMs', () => {
    for (const bad of [0, -5, Number.NaN, Infinity]) expect(() => new SarathiPaperScheduler({ model, kv: KV, tightestTpotMs: bad })).toThrow(SchedulerInputError);
    expect(() => new VllmV0Scheduler({ model, kv: KV, maxSeqs: 0 })).toThrow(SchedulerInputError);
  });

  it('through the simulator: steps with decodes stay within the budget, KV reservations hold, nothing is preempted', () => {
    const pages = 3000;
    const trace = compressTrace(
      resolveTrace(generateScenario('mixed', { requests: 200, ratePerSec: 1, seed: 2, tightTpotMs: 50, looseTpotMs: 100, maxPromptTokens: 3000 }), { contextTokens: 4096 }),
      8,
    );
    let budget = 0;
    let withDecodes = 0;
    let split = 0;
    const result = simulate({
      trace,
      clock: model,
      seed: 2,
      makeScheduler: () => {
        const s = new SarathiPaperScheduler({ model, kv: { pages, pageSize: 16 }, tightestTpotMs: 50 });
        budget = s.budget;
        const step = s.step.bind(s);
        s.step = (t) => {
          const decided = step(t);
          const p = decided.plan;
          if (p) {
            expect(p.preempt).toEqual([]);
            const d = decodes(p).length;
            if (d > 0) {
              withDecodes++;
              // Decodes first, then prefills.
              expect(p.entries.slice(0, d).every((e) => e.kind === 'decode')).toBe(true);
              if (d <= budget) expect(p.tokens).toBeLessThanOrEqual(budget);
              const pf = prefills(p);
              if (pf.length > 1) split++;
            }
          }
          return decided;
        };
        return s;
      },
    });
    expect(budget).toBe(paperSarathiBudget(model, 50));
    expect(withDecodes).toBeGreaterThan(100);
    expect(split).toBeGreaterThan(0);
    expect(result.preemptions).toBe(0);
    for (const t of result.timelines.filter((x) => !x.declined)) expect(t.rounds.every((r) => r.finished)).toBe(true);
  });
});
