// Online refit: steps recorded with their measured times pull the planning model toward what steps
// really cost; no refit before enough samples; a failed fit keeps the old model.

import { describe, expect, it } from 'vitest';
import { OnlineRefit } from '../../src/engine/online-refit.js';
import { PerformanceModel, type PerfSample } from '../../src/scheduler/perf-model.js';
import type { StepPlan } from '../../src/scheduler/types.js';

const info = { adapter: 'test', model: 'test', layers: 2, maxTokensPerStep: 256 };
const plan = (tokens: number, kvTokensRead: number): StepPlan => ({ preempt: [], entries: [], tokens, draftSteps: 0, kvTokensRead, predictedMs: 0 });

describe('OnlineRefit', () => {
  it('moves the model from the calibration toward the measured steps', () => {
    // Calibration says 0.1 ms/token + 5 ms; real steps cost 0.2 ms/token + 10 ms.
    const base: PerfSample[] = [1, 16, 64, 128, 256].map((t) => ({ tokens: t, draftSteps: 0, kvTokensRead: 0, ms: 0.1 * t + 5 }));
    const calibrated = PerformanceModel.fit(base, info);
    const refit = new OnlineRefit(base, info, { every: 50, window: 400 });
    let latest: PerformanceModel | null = null;
    for (let i = 0; i < 400; i++) {
      const tokens = 1 + ((i * 37) % 256);
      const m = refit.record(plan(tokens, 0), 0.2 * tokens + 10);
      if (m) latest = m;
      if (i < 49) expect(m).toBeNull();
    }
    expect(refit.refits).toBe(8);
    const truth = 0.2 * 100 + 10;
    expect(Math.abs(latest!.predictRaw({ tokens: 100, draftSteps: 0, kvTokensRead: 0 }) - truth)).toBeLessThan(Math.abs(calibrated.predictRaw({ tokens: 100, draftSteps: 0, kvTokensRead: 0 }) - truth) / 3);
  });

  it('waits for minSamples without calibration samples, and ignores empty steps', () => {
    const refit = new OnlineRefit([], info, { every: 10, minSamples: 40 });
    let fits = 0;
    for (let i = 0; i < 39; i++) if (refit.record(plan(1 + (i % 50), 10 * i), 3 + 0.05 * i)) fits++;
    expect(fits).toBe(0);
    expect(refit.record(plan(0, 0), 5)).toBeNull();
    let m: PerformanceModel | null = null;
    for (let i = 0; i < 20 && !m; i++) m = refit.record(plan(5 + i, 100), 4 + i * 0.1);
    expect(m).not.toBeNull();
  });
});
