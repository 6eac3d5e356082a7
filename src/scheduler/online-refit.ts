// Online refit of the performance model (planning code: the engine feeds it each step it ran). Every
// executed step is a sample (its shape and measured time), and the planner's model follows what
// steps really cost, in two parts.
//
// 1. The shape (every `every` steps): the model is refitted on an anchor plus the most recent
//    `window` real steps. The anchor is the startup calibration's samples when there are any, else
//    pseudo-samples of the model the engine started with, spread over every step size it plans for.
//    Real steps therefore move the model where they were measured and nowhere else: a run of decode
//    steps cannot make a 512-token prefill cost what one slow 3-token step suggested (the anchor's
//    large steps hold the slope).
// 2. The level (every step): the ratio of the last `driftWindow` steps' measured time to the fitted
//    model's time for the same shapes, clamped to [minDrift, maxDrift], multiplies the model
//    (PerformanceModel.scaled) when it moved by more than `hysteresis` since last applied. Contention
//    (a page rendering beside the GPU work, another tab, throttling) shows within a few steps, well
//    before a refit has enough of them to move the fit. Measured over time, not per step: big steps
//    weigh what they cost.
//
// record() returns the model to plan with when it changed, null otherwise. A failed fit keeps the
// previous fit (lastError says why). A refit runs in slices, one per recorded step
// (PerformanceModel.fitInSlices: one starting assignment each, about a tenth of the fit), on the
// samples it started with: a whole two-piece fit at once stalled every stream by 60-100 ms every
// 64 steps on 2 CPU cores.

import { PerformanceModel, type FitOptions, type PerfSample, type ProfileInfo, type StepShape } from './perf-model.js';
import type { StepPlan } from './types.js';

export interface OnlineRefitOptions extends FitOptions {
  /**
   * Start a refit after this many new steps (default 64). The first refit starts as soon as
   * minSamples real steps are in. Each takes about ten steps to finish (one slice per step).
   */
  every?: number;
  /** Recent steps kept for the refit (default 512). */
  window?: number;
  /** Real steps needed before the first refit (default 16). */
  minSamples?: number;
  /** Steps the level is measured over (default 16; at least 4 before it applies). */
  driftWindow?: number;
  /**
   * Bounds of the level (default 1 and 8): it slows the fit down for contention, never speeds it up
   * (a planner that thinks steps are cheaper than the fit packs longer steps, and a miss costs more
   * than a decline; with a floor of 0.5 the level sank to 0.51 at 2x load on lavapipe).
   */
  minDrift?: number;
  maxDrift?: number;
  /** Relative change of the level that is applied (default 0.15). */
  hysteresis?: number;
}

const MIN_DRIFT_STEPS = 4;

/** Pseudo-samples of `model` over the step sizes the planner uses: the anchor when no calibration ran. */
export function anchorSamples(model: PerformanceModel): PerfSample[] {
  const { maxTokensPerStep, layers, pieces } = model.profile;
  const sizes = [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096, 8192].filter((t) => t < maxTokensPerStep);
  sizes.push(maxTokensPerStep);
  const drafts = pieces.some((p) => p.k2 > 0) ? [0, 2, 4] : [0];
  const out: PerfSample[] = [];
  for (const tokens of sizes) {
    for (const keysPerToken of [0, 256, 2048]) {
      for (const draftSteps of drafts) {
        const shape: StepShape = { tokens, draftSteps, kvTokensRead: tokens * keysPerToken * layers };
        out.push({ tokens, draftSteps, kvTokensRead: shape.kvTokensRead!, ms: model.predictRaw(shape) });
      }
    }
  }
  return out;
}

export class OnlineRefit {
  private readonly anchor: readonly PerfSample[];
  private readonly recent: PerfSample[] = [];
  private sinceFit = 0;
  /** The latest fit (the given model until the first refit). */
  private fitted: PerformanceModel;
  /** The level applied to `fitted` in the model last returned. */
  private applied = 1;
  /** Refits done, and the last refit's failure when one failed (the old fit is kept then). */
  refits = 0;
  lastError: string | null = null;
  /** The refit in progress: its samples, and its slices (advanced one per recorded step). */
  private job: { samples: readonly PerfSample[]; date: string; slices: Generator<void, PerformanceModel, void> } | null = null;

  constructor(
    initial: PerformanceModel,
    calibration: readonly PerfSample[],
    private readonly info: ProfileInfo,
    private readonly options: OnlineRefitOptions = {},
  ) {
    this.fitted = initial;
    this.anchor = calibration.length > 0 ? calibration : anchorSamples(initial);
  }

  /** The same state, going on separately (a benchmark runs several traces from one warmed-up engine). */
  clone(): OnlineRefit {
    const c = new OnlineRefit(this.fitted, this.anchor, this.info, this.options);
    c.recent.push(...this.recent);
    c.sinceFit = this.sinceFit;
    c.applied = this.applied;
    c.refits = this.refits;
    // A refit in progress starts over in the clone, on the same samples (the same fit when it ends).
    if (this.job) c.startJob(this.job.samples, this.job.date);
    return c;
  }

  /**
   * The latest fit without the applied level: what the steps cost in shape, not how much slower
   * they ran lately (another tab, a busy GPU). What a saved profile should hold.
   */
  get fit(): PerformanceModel {
    return this.fitted;
  }

  /** The model to plan with now: the latest fit at the applied level. */
  get model(): PerformanceModel {
    return this.applied === 1 ? this.fitted : this.fitted.scaled(this.applied);
  }

  /** The level last applied: measured over fitted time of recent steps (1 until measured). */
  get drift(): number {
    return this.applied;
  }

  /** Record a step; returns the model to plan with when it changed. */
  record(plan: StepPlan, measuredMs: number, executed?: { tokens: number; kvTokensRead: number }): PerformanceModel | null {
    // The executed batch's shape when known (a plan can lose entries to requests failed before it ran).
    const tokens = executed?.tokens ?? plan.tokens;
    if (tokens <= 0 || !(measuredMs > 0) || !Number.isFinite(measuredMs)) return null;
    this.recent.push({ tokens, draftSteps: plan.draftSteps, kvTokensRead: executed?.kvTokensRead ?? plan.kvTokensRead, ms: measuredMs });
    const window = this.options.window ?? 512;
    if (this.recent.length > window) this.recent.splice(0, this.recent.length - window);
    let changed = false;
    const minSamples = this.options.minSamples ?? 16;
    // Counted from the start of the last refit, so refits start every `every` steps as before.
    this.sinceFit++;
    if (this.job) changed = this.advance();
    else if (this.sinceFit >= (this.refits === 0 ? minSamples : (this.options.every ?? 64)) && this.recent.length >= minSamples) {
      this.sinceFit = 0;
      this.startJob([...this.anchor, ...this.recent], new Date().toISOString());
      changed = this.advance();
    }
    const level = this.level();
    if (level !== null && (changed || Math.abs(Math.log(level / this.applied)) > Math.log1p(this.options.hysteresis ?? 0.15))) {
      this.applied = level;
      changed = true;
    }
    if (!changed) return null;
    return this.model;
  }

  private startJob(samples: readonly PerfSample[], date: string): void {
    this.job = { samples, date, slices: PerformanceModel.fitInSlices(samples, { ...this.info, date }, this.options) };
  }

  /** One slice of the refit in progress; true when it ended with a new fit. */
  private advance(): boolean {
    const job = this.job!;
    try {
      const r = job.slices.next();
      if (!r.done) return false;
      this.job = null;
      this.fitted = r.value;
      this.refits++;
      this.lastError = null;
      return true;
    } catch (e) {
      this.job = null;
      this.lastError = e instanceof Error ? e.message : String(e);
      return false;
    }
  }

  /** Measured over fitted time of the last driftWindow steps, clamped; null with too few steps. */
  private level(): number | null {
    const n = Math.min(this.recent.length, this.options.driftWindow ?? 16);
    if (n < MIN_DRIFT_STEPS) return null;
    let measured = 0;
    let fitted = 0;
    for (let i = this.recent.length - n; i < this.recent.length; i++) {
      const s = this.recent[i]!;
      measured += s.ms;
      fitted += this.fitted.predictRaw(s);
    }
    if (!(fitted > 0)) return null;
    return Math.min(this.options.maxDrift ?? 8, Math.max(this.options.minDrift ?? 1, measured / fitted));
  }
}
