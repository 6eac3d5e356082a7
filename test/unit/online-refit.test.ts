// Online refit: steps recorded with their measured times pull the planning model toward what steps
// really cost (the shape by refits on an anchor plus recent steps, the level within a few steps);
// shapes no real step was measured at keep the anchor's cost; a failed fit keeps the old model.

import { describe, expect, it } from 'vitest';
import { anchorSamples, OnlineRefit } from '../../src/scheduler/online-refit.js';
import { PerformanceModel, type PerfSample } from '../../src/scheduler/perf-model.js';
import type { StepPlan } from '../../src/scheduler/types.js';

const info = { adapter: 'test', model: 'test', layers: 2, maxTokensPerStep: 512 };
const plan = (tokens: number, kvTokensRead: number): StepPlan => ({ preempt: [], entries: [], tokens, draftSteps: 0, kvTokensRead, predictedMs: 0 });
const shape = (tokens: number, kvTokensRead = 0): { tokens: number; draftSteps: number; kvTokensRead: number } => ({ tokens, draftSteps: 0, kvTokensRead });
// A given profile (no calibration on this adapter): 0.1 ms/token + 5 ms, 1 us per key read.
const given = PerformanceModel.fit(
  [1, 16, 64, 128, 256, 512].flatMap((t) => [0, 4096].map((kv) => ({ tokens: t, draftSteps: 0, kvTokensRead: kv, ms: 0.1 * t + 5 + 0.001 * kv }))),
  info,
);

describe('OnlineRefit', () => {
  it('moves the model from the calibration toward the measured steps', () => {
    // Calibration says 0.1 ms/token + 5 ms; real steps cost 0.2 ms/token + 10 ms.
    const base: PerfSample[] = [1, 16, 64, 128, 256].map((t) => ({ tokens: t, draftSteps: 0, kvTokensRead: 0, ms: 0.1 * t + 5 }));
    const calibrated = PerformanceModel.fit(base, info);
    const refit = new OnlineRefit(calibrated, base, info, { every: 50, window: 400 });
    let latest: PerformanceModel | null = null;
    for (let i = 0; i < 400; i++) {
      const tokens = 1 + ((i * 37) % 256);
      const m = refit.record(plan(tokens, 0), 0.2 * tokens + 10);
      if (m) latest = m;
    }
    expect(refit.refits).toBe(8);
    const truth = 0.2 * 100 + 10;
    expect(Math.abs(latest!.predictRaw(shape(100)) - truth)).toBeLessThan(Math.abs(calibrated.predictRaw(shape(100)) - truth) / 3);
  });

  it('follows a slowdown within a few steps (the level), and stays put when steps cost what it predicts', () => {
    const refit = new OnlineRefit(given, [], info, { every: 1000, minSamples: 1000 });
    // Steps as fitted: nothing to change.
    for (let i = 0; i < 20; i++) expect(refit.record(plan(1 + (i % 8), 0), given.predictRaw(shape(1 + (i % 8))))).toBeNull();
    // The GPU is now shared with something else: every step takes 3x.
    let latest: PerformanceModel | null = null;
    for (let i = 0; i < 16; i++) latest = refit.record(plan(64, 0), 3 * given.predictRaw(shape(64))) ?? latest;
    expect(latest).not.toBeNull();
    expect(refit.drift).toBeGreaterThan(2.5);
    expect(latest!.predict(shape(256)) / given.predict(shape(256))).toBeGreaterThan(2.5);
    // A 100x outlier run is clamped (8x at most).
    for (let i = 0; i < 16; i++) latest = refit.record(plan(64, 0), 100 * given.predictRaw(shape(64))) ?? latest;
    expect(refit.drift).toBe(8);
  });

  it('one slow small step and a run of decode steps do not change what a 512-token chunk costs (the anchor holds it)', () => {
    // Once: with a given profile and no calibration, the refit fitted recent steps alone; a 3-token
    // step at 75 ms among 1-token steps set the per-token cost to ~36 ms, and a 512-token chunk was
    // then predicted at 12.5 s (its prompt declined for a TTFT it met in 1.8 s without the refit).
    const refit = new OnlineRefit(given, [], info);
    let latest = given;
    latest = refit.record(plan(3, 100), 75) ?? latest;
    for (let i = 0; i < 400; i++) latest = refit.record(plan(1, 200 + i), given.predictRaw(shape(1, 200 + i))) ?? latest;
    expect(refit.refits).toBeGreaterThanOrEqual(5);
    const chunk = shape(512, 512 * 256 * 2);
    expect(latest.predictRaw(chunk) / given.predictRaw(chunk)).toBeLessThan(1.5);
    expect(latest.predictRaw(chunk) / given.predictRaw(chunk)).toBeGreaterThan(0.67);
  });

  it('anchors a given profile over every step size it plans for; ignores empty steps', () => {
    const anchor = anchorSamples(given);
    expect(Math.min(...anchor.map((s) => s.tokens))).toBe(1);
    expect(Math.max(...anchor.map((s) => s.tokens))).toBe(512);
    for (const s of anchor) expect(s.ms).toBeCloseTo(given.predictRaw(s), 9);
    const refit = new OnlineRefit(given, [], info);
    expect(refit.record(plan(0, 0), 5)).toBeNull();
    expect(refit.record(plan(4, 0), Number.NaN)).toBeNull();
  });

  it('refits in slices, one per step, to exactly the fit of the samples it started with', () => {
    const base: PerfSample[] = [1, 16, 64, 128, 256].map((t) => ({ tokens: t, draftSteps: 0, kvTokensRead: 0, ms: 0.1 * t + 5 }));
    const refit = new OnlineRefit(PerformanceModel.fit(base, info), base, info, { every: 1000 });
    const steps: PerfSample[] = Array.from({ length: 40 }, (_, i) => {
      const tokens = 1 + ((i * 37) % 256);
      return { tokens, draftSteps: 0, kvTokensRead: 0, ms: 0.2 * tokens + 10 + (i % 3) };
    });
    let doneAt = -1;
    steps.forEach((st, i) => {
      if (refit.record(plan(st.tokens, 0), st.ms) && refit.refits === 1 && doneAt < 0) doneAt = i;
    });
    // Started at the 16th step, finished some steps later: never the whole fit within one step.
    expect(doneAt).toBeGreaterThan(16);
    expect(refit.refits).toBe(1);
    const whole = PerformanceModel.fit([...base, ...steps.slice(0, 16)], info);
    expect(refit.fit.profile.pieces).toEqual(whole.profile.pieces);
    expect(refit.fit.profile.k3).toBe(whole.profile.k3);
  });
});
