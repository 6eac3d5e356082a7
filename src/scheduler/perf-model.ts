// The scheduler's performance model (SLOs-Serve, arXiv 2504.08784, its
// "performance model"): the time of one step is a max over a few linear pieces plus a KV-read term,
//
//   T = max_i(k1_i * tokens + k2_i * draftSteps + b_i) + k3 * kvTokensRead        (ms)
//
// tokens = every token of the forward pass (prefill chunks + decode + verify rows), draftSteps = the
// longest speculation length (sequential draft passes), kvTokensRead = keys attention reads, summed
// over new tokens and layers. Pure TypeScript: fitted from profiled samples, inverted for planning,
// (de)serialized as a PerformanceProfile. Nothing here touches the GPU.
//
// Fit. One piece: ordinary least squares through the normal equations, columns scaled to unit RMS and
// a tiny ridge (1e-10 of the diagonal) for conditioning. Per-step costs (k1, k2, k3) are physical, so
// negative ones are not allowed: the most negative is fixed at 0 and the rest refit (a small
// active-set loop; a negative k1 drops the k3 term first, since tokens are the primary term). A column without variation is left out (its coefficient is 0; a constant is
// absorbed by the intercept). Several pieces: an alternating fit. Starting from splits of the samples
// at quantiles of tokens (and of draft steps when they vary), repeat a fixed number of times: fit each
// piece to its samples (with the shared k3, jointly), then give each sample to the piece that predicts
// the max. The split with the least squared error wins; a multi-piece fit that is not 5% better than
// one piece falls back to one piece (fewer parameters, steadier extrapolation).
//
// Planning applies a safety margin: planned = factor * raw + addMs (factor default 1.1; addMs 0, or
// the p90 residual of the fit when asked for).

import { fitPiecesInSlices, quantile, rawPredict, PerfFitError, type LinearPiece, type PerfSample, type StepShape } from './perf-fit.js';

export { PerfFitError, type LinearPiece, type PerfSample, type StepShape } from './perf-fit.js';

export interface SafetyMargin {
  /** Multiplies the raw prediction (>= 1 in practice; default 1.1). */
  factor: number;
  /** Added after the factor, ms (0, or the fit's p90 residual). */
  addMs: number;
}

export const PROFILE_FORMAT = 'webslo-perf-profile';
export const PROFILE_VERSION = 1;

/** The serialized model: what `webslo calibrate` writes and the scheduler loads. */
export interface PerformanceProfile {
  format: typeof PROFILE_FORMAT;
  version: typeof PROFILE_VERSION;
  /** The adapter the samples came from (a profile holds for one GPU and one model only). */
  adapter: string;
  model: string;
  /** ISO 8601 time of the calibration. */
  date: string;
  /** Layers the runner ran (kvTokensRead = attendedKeys * layers). */
  layers: number;
  /** The runner's largest step, tokens (zero-load prefill is chunked by it). */
  maxTokensPerStep: number;
  pieces: LinearPiece[];
  /** ms per KV token read. */
  k3: number;
  margin: SafetyMargin;
  /** Coefficient of determination of the raw model on the fitted samples. */
  r2: number;
  /** 90th percentile of (measured - raw prediction), ms. */
  p90ResidualMs: number;
  samples: number;
  /** Where the profile comes from (a calibration run, a paper's fit, ...). */
  origin?: string;
  /** KV cache capacity in tokens on that GPU for that model (the simulator's memory). */
  kvCapacityTokens?: number;
}

/** A profile that does not validate: names the field and what is wrong with it. */
export class PerfProfileError extends Error {
  override name = 'PerfProfileError';

  constructor(
    readonly field: string,
    readonly problem: string,
  ) {
    super(`profile field '${field}' ${problem}`);
  }
}

export interface FitOptions {
  /** Most linear pieces (1 or more; default 2). */
  pieces?: number;
  /** Alternating-fit rounds per start (default 30). */
  iterations?: number;
  /** Multiplicative margin (default 1.1). */
  marginFactor?: number;
  /** Add the p90 residual to planning predictions (default false). */
  addP90Residual?: boolean;
}

export interface ProfileInfo {
  adapter: string;
  model: string;
  layers: number;
  maxTokensPerStep: number;
  /** Default: now. */
  date?: string;
  /** Where the samples come from (kept in the profile). */
  origin?: string;
}

export class PerformanceModel {
  private constructor(readonly profile: Readonly<PerformanceProfile>) {}

  /** Fit from samples; throws PerfFitError on degenerate input. */
  static fit(samples: readonly PerfSample[], info: ProfileInfo, options: FitOptions = {}): PerformanceModel {
    const slices = PerformanceModel.fitInSlices(samples, info, options);
    for (;;) {
      const r = slices.next();
      if (r.done) return r.value;
    }
  }

  /** fit() as slices of work (perf-fit.ts fitPiecesInSlices): the same model, a slice per next(). */
  static *fitInSlices(samples: readonly PerfSample[], info: ProfileInfo, options: FitOptions = {}): Generator<void, PerformanceModel, void> {
    const fit = yield* fitPiecesInSlices(samples, options.pieces ?? 2, options.iterations ?? 30);
    const residuals = samples.map((s) => s.ms - rawPredict(fit.pieces, fit.k3, s));
    const mean = samples.reduce((a, s) => a + s.ms, 0) / samples.length;
    const sst = samples.reduce((a, s) => a + (s.ms - mean) ** 2, 0);
    const sse = residuals.reduce((a, r) => a + r * r, 0);
    const p90 = quantile(residuals, 0.9);
    const factor = options.marginFactor ?? 1.1;
    if (!Number.isFinite(factor) || factor <= 0) throw new PerfFitError('marginFactor', `is ${factor}; expected a positive number`);
    const profile: PerformanceProfile = {
      format: PROFILE_FORMAT,
      version: PROFILE_VERSION,
      adapter: info.adapter,
      model: info.model,
      date: info.date ?? new Date().toISOString(),
      layers: info.layers,
      maxTokensPerStep: info.maxTokensPerStep,
      pieces: fit.pieces,
      k3: fit.k3,
      margin: { factor, addMs: options.addP90Residual ? Math.max(0, p90) : 0 },
      r2: sst > 0 ? 1 - sse / sst : sse === 0 ? 1 : 0,
      p90ResidualMs: p90,
      samples: samples.length,
      ...(info.origin !== undefined ? { origin: info.origin } : {}),
    };
    return PerformanceModel.fromProfile(profile);
  }

  /** Validate a parsed profile (PerfProfileError names the first bad field). */
  static fromProfile(value: unknown): PerformanceModel {
    return new PerformanceModel(validateProfile(value));
  }

  static fromJson(text: string): PerformanceModel {
    let value: unknown;
    try {
      value = JSON.parse(text);
    } catch (e) {
      throw new PerfProfileError('(json)', `does not parse: ${(e as Error).message}`);
    }
    return PerformanceModel.fromProfile(value);
  }

  toProfile(): PerformanceProfile {
    return structuredClone(this.profile);
  }

  toJson(): string {
    return `${JSON.stringify(this.profile, null, 2)}\n`;
  }

  /** The model without the safety margin, ms. */
  predictRaw(step: StepShape): number {
    return rawPredict(this.profile.pieces, this.profile.k3, step);
  }

  /** The planning prediction: factor * raw + addMs, ms. */
  predict(step: StepShape): number {
    const m = this.profile.margin;
    return m.factor * this.predictRaw(step) + m.addMs;
  }

  /**
   * The most tokens a step with `draftSteps` draft passes and `kvTokensRead` KV reads may carry and
   * still be predicted (with the margin) within budgetMs: min_i (t - b_i - k2_i*s - k3*kv) / k1_i,
   * floored, never negative; 0 when even an empty step does not fit. predict(n) <= t < predict(n+1)
   * whenever n > 0.
   */
  maxTokensWithin(budgetMs: number, draftSteps = 0, kvTokensRead = 0): number {
    const { pieces, k3, margin } = this.profile;
    const t = (budgetMs - margin.addMs) / margin.factor;
    if (!(t > -Infinity)) return 0;
    let n = Infinity;
    for (const p of pieces) {
      const room = t - p.b - p.k2 * draftSteps - k3 * kvTokensRead;
      if (p.k1 > 0) n = Math.min(n, Math.floor(room / p.k1));
      else if (room < 0) n = -1;
    }
    if (n === Infinity) n = Number.MAX_SAFE_INTEGER; // validation guarantees a k1 > 0; defensive
    n = Math.max(0, n);
    // Floating-point rounding at the boundary: make the result consistent with predict().
    const fits = (x: number): boolean => this.predict({ tokens: x, draftSteps, kvTokensRead }) <= budgetMs;
    for (let i = 0; i < 4 && n > 0 && !fits(n); i++) n--;
    for (let i = 0; i < 4 && fits(n + 1); i++) n++;
    return n;
  }

  /**
   * Zero-load time to prefill a prompt alone (raw model, no margin): chunks of at most `chunk`
   * tokens (default the profile's maxTokensPerStep), each reading the keys before it. The base of
   * TTFT SLOs given as slowdown factors.
   */
  zeroLoadPrefillMs(promptTokens: number, chunk = this.profile.maxTokensPerStep): number {
    if (!Number.isInteger(promptTokens) || promptTokens < 0) throw new RangeError(`promptTokens must be an integer >= 0, got ${promptTokens}`);
    if (!Number.isInteger(chunk) || chunk < 1) throw new RangeError(`chunk must be a positive integer, got ${chunk}`);
    let ms = 0;
    for (let start = 0; start < promptTokens; start += chunk) {
      const c = Math.min(chunk, promptTokens - start);
      // Token at position p attends to p + 1 keys in each layer.
      const keys = c * start + (c * (c + 1)) / 2;
      ms += this.predictRaw({ tokens: c, kvTokensRead: keys * this.profile.layers });
    }
    return ms;
  }

  /**
   * The same fit with every cost (pieces and k3) times `factor`, the planning margin kept: the model
   * of steps that run `factor` times slower than fitted (a GPU shared with a page's rendering, a
   * throttled one). r2, residuals and the sample count still describe the fit.
   */
  scaled(factor: number): PerformanceModel {
    if (!Number.isFinite(factor) || factor <= 0) throw new PerfFitError('factor', `is ${factor}; expected a finite number > 0`);
    const p = this.toProfile();
    p.pieces = p.pieces.map((q) => ({ k1: q.k1 * factor, k2: q.k2 * factor, b: q.b * factor }));
    p.k3 *= factor;
    return PerformanceModel.fromProfile(p);
  }

  /** One line: the pieces in us, R^2, the margin. */
  summary(): string {
    const p = this.profile;
    const us = (x: number): string => `${(x * 1000).toPrecision(4)} us`;
    const piece = (q: LinearPiece): string => `${us(q.k1)}*tok${q.k2 !== 0 ? ` + ${q.k2.toPrecision(4)} ms*steps` : ''} + ${q.b.toPrecision(4)} ms`;
    const body = p.pieces.length === 1 ? piece(p.pieces[0]!) : `max(${p.pieces.map(piece).join(', ')})`;
    return `T = ${body} + ${(p.k3 * 1e6).toPrecision(4)} ns*kv; R^2 ${p.r2.toFixed(4)}; margin x${p.margin.factor} + ${p.margin.addMs.toFixed(3)} ms; ${p.samples} samples`;
  }
}

// ---- validation ---------------------------------------------------------------------------------

function validateProfile(v: unknown): PerformanceProfile {
  const obj = (x: unknown, field: string): Record<string, unknown> => {
    if (typeof x !== 'object' || x === null || Array.isArray(x)) throw new PerfProfileError(field, 'must be an object');
    return x as Record<string, unknown>;
  };
  const num = (o: Record<string, unknown>, key: string, field: string, ok: (n: number) => boolean, expected: string): number => {
    const x = o[key];
    if (typeof x !== 'number' || !Number.isFinite(x) || !ok(x)) throw new PerfProfileError(field, `is ${JSON.stringify(x)}; expected ${expected}`);
    return x;
  };
  const str = (o: Record<string, unknown>, key: string): string => {
    const x = o[key];
    if (typeof x !== 'string') throw new PerfProfileError(key, `is ${JSON.stringify(x)}; expected a string`);
    return x;
  };
  const o = obj(v, '(profile)');
  if (o.format !== PROFILE_FORMAT) throw new PerfProfileError('format', `is ${JSON.stringify(o.format)}; expected '${PROFILE_FORMAT}'`);
  if (o.version !== PROFILE_VERSION) throw new PerfProfileError('version', `is ${JSON.stringify(o.version)}; this build reads version ${PROFILE_VERSION}`);
  const date = str(o, 'date');
  if (Number.isNaN(Date.parse(date))) throw new PerfProfileError('date', `is '${date}'; expected an ISO 8601 date`);
  const posInt = (n: number): boolean => Number.isInteger(n) && n >= 1;
  const nonNeg = (n: number): boolean => n >= 0;
  if (!Array.isArray(o.pieces) || o.pieces.length < 1 || o.pieces.length > 8) throw new PerfProfileError('pieces', 'must be an array of 1..8 linear pieces');
  const pieces = o.pieces.map((p, i): LinearPiece => {
    const q = obj(p, `pieces[${i}]`);
    return {
      k1: num(q, 'k1', `pieces[${i}].k1`, nonNeg, 'a finite number >= 0 (ms per token)'),
      k2: num(q, 'k2', `pieces[${i}].k2`, nonNeg, 'a finite number >= 0 (ms per draft step)'),
      b: num(q, 'b', `pieces[${i}].b`, () => true, 'a finite number (ms)'),
    };
  });
  if (!pieces.some((p) => p.k1 > 0)) throw new PerfProfileError('pieces', 'have no positive per-token cost k1');
  const margin = obj(o.margin, 'margin');
  return {
    format: PROFILE_FORMAT,
    version: PROFILE_VERSION,
    adapter: str(o, 'adapter'),
    model: str(o, 'model'),
    date,
    layers: num(o, 'layers', 'layers', posInt, 'a positive integer'),
    maxTokensPerStep: num(o, 'maxTokensPerStep', 'maxTokensPerStep', posInt, 'a positive integer'),
    pieces,
    k3: num(o, 'k3', 'k3', nonNeg, 'a finite number >= 0 (ms per KV token read)'),
    margin: {
      factor: num(margin, 'factor', 'margin.factor', (n) => n > 0, 'a finite number > 0'),
      addMs: num(margin, 'addMs', 'margin.addMs', nonNeg, 'a finite number >= 0'),
    },
    r2: num(o, 'r2', 'r2', (n) => n <= 1, 'a finite number <= 1'),
    p90ResidualMs: num(o, 'p90ResidualMs', 'p90ResidualMs', () => true, 'a finite number'),
    samples: num(o, 'samples', 'samples', posInt, 'a positive integer'),
    ...(o.origin !== undefined ? { origin: str(o, 'origin') } : {}),
    ...(o.kvCapacityTokens !== undefined ? { kvCapacityTokens: num(o, 'kvCapacityTokens', 'kvCapacityTokens', posInt, 'a positive integer (tokens)') } : {}),
  };
}
