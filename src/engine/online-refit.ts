// Online refit of the performance model: every executed step is a sample (its shape and measured
// time); every `every` steps the model is refitted on the startup calibration's samples plus the
// most recent `window` real steps, so the planner tracks what steps really cost under real load
// (mixed batches, real contexts) rather than only the calibration sweep's shapes.

import { PerformanceModel, type FitOptions, type PerfSample, type ProfileInfo } from '../scheduler/perf-model.js';
import type { StepPlan } from '../scheduler/types.js';

export interface OnlineRefitOptions extends FitOptions {
  /** Refit after this many new steps (default 64). */
  every?: number;
  /** Recent steps kept (default 512). */
  window?: number;
  /** Steps needed before the first refit when there are no calibration samples (default 128). */
  minSamples?: number;
}

export class OnlineRefit {
  private readonly recent: PerfSample[] = [];
  private sinceFit = 0;
  /** Refits done, and the last refit's failure when one failed (the old model is kept then). */
  refits = 0;
  lastError: string | null = null;

  constructor(
    private readonly base: readonly PerfSample[],
    private readonly info: ProfileInfo,
    private readonly options: OnlineRefitOptions = {},
  ) {}

  /** Record a step; returns a refitted model when one is due. */
  record(plan: StepPlan, measuredMs: number, executed?: { tokens: number; kvTokensRead: number }): PerformanceModel | null {
    // The executed batch's shape when known (a plan can lose entries to requests failed before it ran).
    const tokens = executed?.tokens ?? plan.tokens;
    if (tokens <= 0 || !(measuredMs > 0)) return null;
    this.recent.push({ tokens, draftSteps: plan.draftSteps, kvTokensRead: executed?.kvTokensRead ?? plan.kvTokensRead, ms: measuredMs });
    const window = this.options.window ?? 512;
    if (this.recent.length > window) this.recent.splice(0, this.recent.length - window);
    if (++this.sinceFit < (this.options.every ?? 64)) return null;
    if (this.base.length === 0 && this.recent.length < (this.options.minSamples ?? 128)) return null;
    this.sinceFit = 0;
    try {
      const model = PerformanceModel.fit([...this.base, ...this.recent], { ...this.info, date: new Date().toISOString() }, this.options);
      this.refits++;
      this.lastError = null;
      return model;
    } catch (e) {
      this.lastError = e instanceof Error ? e.message : String(e);
      return null;
    }
  }
}
