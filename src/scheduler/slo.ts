// Per-app SLOs (SLOs-Serve, arXiv 2504.08784: requests, stages, SLOs): validation of
// what an app declares, resolution of a TTFT SLO to an absolute budget for one prompt, the TPOT
// deadline curve, and the online output-length estimate admission reserves KV for.
//
// TTFT SLO: an absolute budget in ms, or a slowdown factor x the zero-load prefill time the
// performance model predicts for the prompt. TPOT: a deadline curve; token n (1-based) is due at
// t0 + sum over m = 2..n of tpot(stage of token m), t0 = max(arrival + TTFT SLO, first-token time).

import type { PerformanceModel } from './perf-model.js';
import type { StageSlo } from './types.js';
import { showValue } from '../model/describe.js';

/** What an app declares: exactly one TTFT form, and its decode stages in order. */
export interface AppSlo {
  /** Absolute TTFT budget, ms after arrival. */
  ttftMs?: number;
  /** TTFT budget as a factor (>= 1) of the zero-load prefill time of the prompt. */
  ttftSlowdown?: number;
  stages: StageSlo[];
}

/** An SLO that is malformed or cannot be met on this model; names the app and the field. */
export class SloError extends Error {
  override name = 'SloError';

  constructor(
    readonly app: string,
    readonly field: string,
    readonly problem: string,
  ) {
    super(`app '${app}': field '${field}' ${problem}`);
  }
}

/** A value as an error message shows it (JSON.stringify would print NaN and Infinity as null). */
const show = showValue;

/** A lower bound as shown to the user: rounded up to the microsecond, so asking for it passes. */
const atLeastMs = (x: number): string => `${Math.ceil(x * 1000 - 1e-6) / 1000} ms`;

const isObject = (x: unknown): x is Record<string, unknown> => typeof x === 'object' && x !== null && !Array.isArray(x);
const present = (o: Record<string, unknown>, key: string): boolean => Object.hasOwn(o, key) && o[key] !== undefined;

function checkKeys(app: string, o: Record<string, unknown>, prefix: string, allowed: readonly string[]): void {
  for (const key of Object.keys(o)) {
    if (!allowed.includes(key)) throw new SloError(app, `${prefix}${key}`, `is not a known field (expected ${allowed.join(', ')})`);
  }
}

/**
 * Validate an app's SLO (from JSON or code) and return a clean copy. With a model, also reject SLOs
 * no schedule can meet: a TPOT below one zero-load decode step (the planning prediction, margin
 * included, since that is what the planner holds steps to), an absolute TTFT below the zero-load
 * prefill of a 1-token prompt.
 */
export function validateAppSlo(app: string, slo: unknown, model?: PerformanceModel): AppSlo {
  if (!isObject(slo)) throw new SloError(app, '(slo)', `must be an object { ttftMs | ttftSlowdown, stages }, got ${show(slo)}`);
  checkKeys(app, slo, '', ['ttftMs', 'ttftSlowdown', 'stages']);
  const hasMs = present(slo, 'ttftMs');
  const hasSlowdown = present(slo, 'ttftSlowdown');
  if (hasMs && hasSlowdown) throw new SloError(app, 'ttftSlowdown', 'cannot be given together with ttftMs: give exactly one TTFT form');
  if (!hasMs && !hasSlowdown) throw new SloError(app, 'ttftMs', 'is missing: give ttftMs (absolute ms) or ttftSlowdown (x zero-load prefill time)');
  const out: AppSlo = { stages: [] };
  if (hasMs) {
    const v = slo.ttftMs;
    if (typeof v !== 'number' || !Number.isFinite(v) || v <= 0) throw new SloError(app, 'ttftMs', `must be a positive finite number of ms, got ${show(v)}`);
    if (model) {
      const fastest = model.zeroLoadPrefillMs(1);
      if (v < fastest) throw new SloError(app, 'ttftMs', `is ${v} ms, below the zero-load prefill of even a 1-token prompt (${atLeastMs(fastest)}): impossible on this model`);
    }
    out.ttftMs = v;
  } else {
    const v = slo.ttftSlowdown;
    // Below 1 would ask for a prefill faster than the GPU does it alone.
    if (typeof v !== 'number' || !Number.isFinite(v) || v < 1) throw new SloError(app, 'ttftSlowdown', `must be a finite factor >= 1, got ${show(v)}`);
    out.ttftSlowdown = v;
  }
  const stages = slo.stages;
  if (!Array.isArray(stages) || stages.length === 0) throw new SloError(app, 'stages', `must be a non-empty array of { name, tpotMs }, got ${show(stages)}`);
  const fastestStep = model?.predict({ tokens: 1, kvTokensRead: 0 });
  const seen = new Map<string, number>();
  stages.forEach((s: unknown, i) => {
    const at = `stages[${i}]`;
    if (!isObject(s)) throw new SloError(app, at, `must be an object { name, tpotMs }, got ${show(s)}`);
    checkKeys(app, s, `${at}.`, ['name', 'tpotMs']);
    const { name, tpotMs } = s;
    if (typeof name !== 'string' || name.length === 0) throw new SloError(app, `${at}.name`, `must be a non-empty string, got ${show(name)}`);
    const dup = seen.get(name);
    if (dup !== undefined) throw new SloError(app, `${at}.name`, `duplicates stages[${dup}].name ${show(name)}`);
    seen.set(name, i);
    if (typeof tpotMs !== 'number' || !Number.isFinite(tpotMs) || tpotMs <= 0) throw new SloError(app, `${at}.tpotMs`, `must be a positive finite number of ms, got ${show(tpotMs)}`);
    if (fastestStep !== undefined && tpotMs < fastestStep) {
      throw new SloError(app, `${at}.tpotMs`, `is ${tpotMs} ms, below the fastest possible decode step on this model (${atLeastMs(fastestStep)} at zero load): impossible`);
    }
    out.stages.push({ name, tpotMs });
  });
  return out;
}

/**
 * The absolute TTFT budget (ms after arrival) of one prompt under `slo`. An absolute budget below
 * the zero-load prefill time of this prompt cannot be met by any schedule: SloError.
 */
export function resolveTtftMs(app: string, slo: AppSlo, promptTokens: number, model: PerformanceModel): number {
  const zero = model.zeroLoadPrefillMs(promptTokens);
  if (slo.ttftSlowdown !== undefined) return slo.ttftSlowdown * zero;
  if (slo.ttftMs === undefined) throw new SloError(app, 'ttftMs', 'is missing: give ttftMs (absolute ms) or ttftSlowdown (x zero-load prefill time)');
  if (slo.ttftMs < zero) {
    throw new SloError(app, 'ttftMs', `is ${slo.ttftMs} ms, below the zero-load prefill time of this ${promptTokens}-token prompt (${atLeastMs(zero)}): impossible`);
  }
  return slo.ttftMs;
}

function checkCurve(tpotsMs: readonly number[], stageStarts: readonly number[]): void {
  if (stageStarts.length === 0 || stageStarts[0] !== 0) throw new RangeError(`stageStarts must begin with 0, got [${stageStarts.join(', ')}]`);
  if (stageStarts.length > tpotsMs.length) throw new RangeError(`${stageStarts.length} stage starts for ${tpotsMs.length} stages`);
  for (let s = 1; s < stageStarts.length; s++) {
    const v = stageStarts[s]!;
    // Equal starts are allowed: a stage may be empty (a reasoning model that skips thinking).
    if (!Number.isInteger(v) || v < stageStarts[s - 1]!) throw new RangeError(`stageStarts must be non-decreasing integers, got [${stageStarts.join(', ')}]`);
  }
}

/**
 * The deadline of output token n (1-based): t0 + sum over m = 2..n of the TPOT of the stage holding
 * token m. `stageStarts[s]` is the 0-based output-token index where stage s begins (stageStarts[0] =
 * 0); stages not begun yet are simply absent. Token 1 is due at t0.
 */
export function tokenDeadline(t0: number, tpotsMs: readonly number[], stageStarts: readonly number[], n: number): number {
  checkCurve(tpotsMs, stageStarts);
  if (!Number.isInteger(n) || n < 1) throw new RangeError(`token index n must be an integer >= 1, got ${n}`);
  let d = t0;
  for (let s = 0; s < stageStarts.length; s++) {
    // Stage s holds 0-based indices [start, end); token m (1-based) is index m - 1, m in 2..n.
    const end = s + 1 < stageStarts.length ? stageStarts[s + 1]! : Infinity;
    const count = Math.min(n, end) - Math.max(1, stageStarts[s]!);
    if (count > 0) d += count * tpotsMs[s]!;
  }
  return d;
}

/** Deadlines of tokens 1..count (index i holds token i + 1), in one pass. */
export function tokenDeadlines(t0: number, tpotsMs: readonly number[], stageStarts: readonly number[], count: number): number[] {
  checkCurve(tpotsMs, stageStarts);
  if (!Number.isInteger(count) || count < 0) throw new RangeError(`count must be an integer >= 0, got ${count}`);
  const out = new Array<number>(count);
  let stage = 0;
  let d = t0;
  for (let i = 0; i < count; i++) {
    while (stage + 1 < stageStarts.length && stageStarts[stage + 1]! <= i) stage++;
    if (i > 0) d += tpotsMs[stage]!;
    out[i] = d;
  }
  return out;
}

/**
 * Online per-app output lengths (a sliding window per app): the engine knows only max_tokens, so
 * admission reserves KV for an observed quantile (slos/reservation.ts) and relies on best-effort
 * preemption for overruns. The window keeps the estimate current when an app's use changes.
 */
export class OutputLengthTracker {
  private readonly windows = new Map<string, { values: number[]; next: number; sorted?: number[] }>();

  constructor(
    readonly window = 256,
    /** Fewer observations than this give no quantile (too noisy to reserve less than max_tokens). */
    readonly minSamples = 8,
  ) {
    if (!Number.isInteger(window) || window < 1) throw new RangeError(`window must be a positive integer, got ${window}`);
    if (!Number.isInteger(minSamples) || minSamples < 1 || minSamples > window) throw new RangeError(`minSamples must be an integer in 1..window, got ${minSamples}`);
  }

  /** Observe one finished request's output length (tokens over all stages). */
  record(app: string, tokens: number): void {
    if (!Number.isInteger(tokens) || tokens < 0) throw new RangeError(`output length must be an integer >= 0, got ${tokens}`);
    let w = this.windows.get(app);
    if (!w) this.windows.set(app, (w = { values: [], next: 0 }));
    delete w.sorted; // sorted again on the next read (admission reads far more often than requests end)
    if (w.values.length < this.window) w.values.push(tokens);
    else {
      w.values[w.next] = tokens;
      w.next = (w.next + 1) % this.window;
    }
  }

  /** Observations held for `app` (at most `window`). */
  count(app: string): number {
    return this.windows.get(app)?.values.length ?? 0;
  }

  /** The nearest-rank p90, or null before `minSamples` observations. */
  p90(app: string): number | null {
    return this.quantile(app, 0.9);
  }

  /**
   * The nearest-rank q-quantile (q in (0, 1]; an observed length), or null before `minSamples`
   * observations.
   */
  quantile(app: string, q: number): number | null {
    if (!(q > 0 && q <= 1)) throw new RangeError(`quantile must be in (0, 1], got ${q}`);
    const w = this.windows.get(app);
    if (!w || w.values.length < this.minSamples) return null;
    w.sorted ??= [...w.values].sort((a, b) => a - b);
    return w.sorted[Math.max(0, Math.ceil(q * w.sorted.length - 1e-9) - 1)]!; // 1e-9: q built by sums (0.6 - 0.01 - 0.01) may round up
  }
}
