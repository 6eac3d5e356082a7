// The engine's clock and step timer are injected. In wall-clock mode time passes by itself; in
// virtual mode a step lasts what a performance profile predicts for it, so the engine's timeline
// for a trace equals the simulator's (both drive the same scheduler code).

import type { PerformanceModel } from '../scheduler/perf-model.js';
import type { StepPlan } from '../scheduler/types.js';

export interface Clock {
  /** Milliseconds on the scheduler's time axis. */
  now(): number;
}

/** Called after each executed step with its measured GPU time; a virtual timer advances its clock. */
export interface StepTimer {
  afterStep(plan: StepPlan, measuredMs: number): void;
}

export const wallClock: Clock = { now: () => performance.now() };
export const wallTimer: StepTimer = { afterStep: () => {} };

export class VirtualClock implements Clock {
  constructor(private t = 0) {}
  now(): number {
    return this.t;
  }
  /** Move to `t` (never backwards). */
  advanceTo(t: number): void {
    if (t > this.t) this.t = t;
  }
}

/** Each step lasts the profile's raw prediction for its shape (what the simulator's clock does). */
export function profileTimer(clock: VirtualClock, profile: PerformanceModel): StepTimer {
  return { afterStep: (plan) => clock.advanceTo(clock.now() + profile.predictRaw(plan)) };
}
