// The scheduler's performance model (SLOs-Serve, ../shared/design/slos-serve.md, "Performance
// model"): the time of one step is a max over a few linear pieces plus a KV-read term,
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

export interface StepShape {
  tokens: number;
  /** Longest speculation length of the step (sequential draft passes); default 0. */
  draftSteps?: number;
  /** Keys read by attention, summed over new tokens and layers; default 0. */
  kvTokensRead?: number;
}

export interface PerfSample {
  tokens: number;
  draftSteps: number;
  kvTokensRead: number;
  /** Measured step time, ms. */
  ms: number;
}

/** One linear piece: k1 ms per token, k2 ms per draft step, b ms. */
export interface LinearPiece {
  k1: number;
  k2: number;
  b: number;
}

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

/** Samples the model cannot be fitted to (too few, non-finite, no variation in tokens, ...). */
export class PerfFitError extends Error {
  override name = 'PerfFitError';

  constructor(
    readonly field: string,
    readonly problem: string,
  ) {
    super(`cannot fit the performance model: ${field} ${problem}`);
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
}

const RIDGE = 1e-10;
const MIN_SAMPLES = 3;

export class PerformanceModel {
  private constructor(readonly profile: Readonly<PerformanceProfile>) {}

  /** Fit from samples; throws PerfFitError on degenerate input. */
  static fit(samples: readonly PerfSample[], info: ProfileInfo, options: FitOptions = {}): PerformanceModel {
    const fit = fitPieces(samples, options.pieces ?? 2, options.iterations ?? 30);
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
    return structuredClone(this.profile) as PerformanceProfile;
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

  /** One line: the pieces in us, R^2, the margin. */
  summary(): string {
    const p = this.profile;
    const us = (x: number): string => `${(x * 1000).toPrecision(4)} us`;
    const piece = (q: LinearPiece): string => `${us(q.k1)}*tok${q.k2 !== 0 ? ` + ${q.k2.toPrecision(4)} ms*steps` : ''} + ${q.b.toPrecision(4)} ms`;
    const body = p.pieces.length === 1 ? piece(p.pieces[0]!) : `max(${p.pieces.map(piece).join(', ')})`;
    return `T = ${body} + ${(p.k3 * 1e6).toPrecision(4)} ns*kv; R^2 ${p.r2.toFixed(4)}; margin x${p.margin.factor} + ${p.margin.addMs.toFixed(3)} ms; ${p.samples} samples`;
  }
}

function rawPredict(pieces: readonly LinearPiece[], k3: number, s: StepShape): number {
  const steps = s.draftSteps ?? 0;
  let m = -Infinity;
  for (const p of pieces) m = Math.max(m, p.k1 * s.tokens + p.k2 * steps + p.b);
  return m + k3 * (s.kvTokensRead ?? 0);
}

function quantile(values: readonly number[], q: number): number {
  if (values.length === 0) return 0;
  const sorted = [...values].sort((a, b) => a - b);
  const pos = q * (sorted.length - 1);
  const lo = Math.floor(pos);
  const hi = Math.min(sorted.length - 1, lo + 1);
  return sorted[lo]! + (pos - lo) * (sorted[hi]! - sorted[lo]!);
}

// ---- fitting ------------------------------------------------------------------------------------

interface Fit {
  pieces: LinearPiece[];
  k3: number;
  sse: number;
}

function checkSamples(samples: readonly PerfSample[]): void {
  if (!Array.isArray(samples) || samples.length < MIN_SAMPLES) throw new PerfFitError('samples', `are ${samples.length}; need at least ${MIN_SAMPLES}`);
  samples.forEach((s, i) => {
    for (const f of ['tokens', 'draftSteps', 'kvTokensRead', 'ms'] as const) {
      const v = s[f];
      if (typeof v !== 'number' || !Number.isFinite(v) || v < 0) throw new PerfFitError(`samples[${i}].${f}`, `is ${v}; expected a finite number >= 0`);
    }
  });
  if (!varies(samples.map((s) => s.tokens))) throw new PerfFitError('tokens', 'are all equal: the per-token cost is not identifiable');
}

function varies(v: readonly number[]): boolean {
  return v.some((x) => x !== v[0]);
}

function fitPieces(samples: readonly PerfSample[], maxPieces: number, iterations: number): Fit {
  checkSamples(samples);
  if (!Number.isInteger(maxPieces) || maxPieces < 1 || maxPieces > 8) throw new PerfFitError('pieces', `is ${maxPieces}; expected an integer in 1..8`);
  const n = samples.length;
  const one = fitAssigned(samples, new Int32Array(n), 1);
  if (!one) throw new PerfFitError('samples', 'give a singular system');
  let best = one;
  if (maxPieces >= 2) {
    for (let P = 2; P <= maxPieces; P++) {
      for (const start of initialSplits(samples, P)) {
        const f = alternate(samples, start, P, iterations);
        if (f && f.sse < best.sse) best = f;
      }
    }
    // Worth the extra parameters only if clearly better (and not just rounding noise on exact data).
    const mean = samples.reduce((a, s) => a + s.ms, 0) / n;
    const sst = samples.reduce((a, s) => a + (s.ms - mean) ** 2, 0);
    if (best !== one && !(best.sse < 0.95 * one.sse && one.sse - best.sse > 1e-9 * sst)) best = one;
  }
  // Rounding noise is not a cost: the per-token term must matter over the sampled range.
  const maxTokens = Math.max(...samples.map((s) => s.tokens));
  const maxMs = Math.max(...samples.map((s) => s.ms));
  if (!best.pieces.some((p) => p.k1 * maxTokens > 1e-9 * maxMs)) throw new PerfFitError('tokens', 'give no positive per-token cost (time does not grow with tokens)');
  best.pieces.sort((a, b) => a.k1 - b.k1 || a.b - b.b);
  return best;
}

/** Starting assignments: splits at quantiles of tokens (and of draft steps), piece index rising. */
function initialSplits(samples: readonly PerfSample[], P: number): Int32Array[] {
  const out: Int32Array[] = [];
  for (const key of ['tokens', 'draftSteps'] as const) {
    const values = [...new Set(samples.map((s) => s[key]))].sort((a, b) => a - b);
    if (values.length < 2) continue;
    const tries = Math.min(9, values.length - 1);
    for (let t = 1; t <= tries; t++) {
      // P - 1 thresholds spread from this start, so every piece gets a range of values.
      const cut = (j: number): number => values[Math.min(values.length - 1, Math.floor(((t + (j * (10 - t)) / P) * values.length) / 10))]!;
      const thresholds = Array.from({ length: P - 1 }, (_, j) => cut(j));
      out.push(Int32Array.from(samples, (s) => thresholds.filter((th) => s[key] > th).length));
    }
  }
  return out;
}

function alternate(samples: readonly PerfSample[], start: Int32Array, P: number, iterations: number): Fit | null {
  let assign = start;
  let fit: Fit | null = null;
  for (let it = 0; it < iterations; it++) {
    const f = fitAssigned(samples, assign, P);
    if (!f) break;
    fit = f;
    const next = Int32Array.from(samples, (s) => argmaxPiece(f.pieces, s));
    if (next.every((v, i) => v === assign[i])) break;
    assign = next;
  }
  if (!fit) return null;
  // Score the max model itself (the last assignment may not be the argmax one).
  const sse = samples.reduce((a, s) => a + (s.ms - rawPredict(fit.pieces, fit.k3, s)) ** 2, 0);
  return { ...fit, sse };
}

function argmaxPiece(pieces: readonly LinearPiece[], s: PerfSample): number {
  let best = 0;
  let bestV = -Infinity;
  pieces.forEach((p, i) => {
    const v = p.k1 * s.tokens + p.k2 * s.draftSteps + p.b;
    if (v > bestV) {
      bestV = v;
      best = i;
    }
  });
  return best;
}

type Column = { kind: 'k1' | 'k2' | 'b'; piece: number } | { kind: 'k3' };

/**
 * Joint least squares of the pieces (each over its assigned samples) and the shared k3, with
 * non-negative slopes. Null when a piece has too few samples to stand on its own.
 */
function fitAssigned(samples: readonly PerfSample[], assign: Int32Array, P: number): Fit | null {
  const n = samples.length;
  const columns: Column[] = [];
  for (let p = 0; p < P; p++) {
    const mine = samples.filter((_, i) => assign[i] === p);
    if (mine.length < MIN_SAMPLES) return null;
    if (varies(mine.map((s) => s.tokens))) columns.push({ kind: 'k1', piece: p });
    if (varies(mine.map((s) => s.draftSteps))) columns.push({ kind: 'k2', piece: p });
    columns.push({ kind: 'b', piece: p });
  }
  if (varies(samples.map((s) => s.kvTokensRead))) columns.push({ kind: 'k3' });
  const value = (c: Column, i: number): number => {
    const s = samples[i]!;
    if (c.kind === 'k3') return s.kvTokensRead;
    if (assign[i] !== c.piece) return 0;
    return c.kind === 'k1' ? s.tokens : c.kind === 'k2' ? s.draftSteps : 1;
  };
  let active = columns;
  for (;;) {
    const m = active.length;
    const scale = active.map((c) => Math.sqrt(Array.from({ length: n }, (_, i) => value(c, i) ** 2).reduce((a, b) => a + b, 0) / n) || 1);
    const A = Array.from({ length: m }, () => new Float64Array(m));
    const y = new Float64Array(m);
    for (let i = 0; i < n; i++) {
      const x = active.map((c, j) => value(c, i) / scale[j]!);
      for (let r = 0; r < m; r++) {
        if (x[r] === 0) continue;
        const xr = x[r]!;
        const row = A[r]!;
        y[r] = y[r]! + xr * samples[i]!.ms;
        for (let c = 0; c < m; c++) row[c] = row[c]! + xr * x[c]!;
      }
    }
    const diag = A.reduce((a, row, r) => a + row[r]!, 0) / m;
    for (let r = 0; r < m; r++) A[r]![r] = A[r]![r]! + RIDGE * diag;
    const beta = solve(A, y);
    if (!beta) return null;
    const coef = Array.from(beta, (v, j) => v / scale[j]!);
    // Slopes must be >= 0: fix the most negative at 0 and refit.
    let worst = -1;
    active.forEach((c, j) => {
      if (c.kind !== 'b' && coef[j]! < 0 && (worst < 0 || coef[j]! < coef[worst]!)) worst = j;
    });
    if (worst >= 0) {
      // Tokens are the primary term, the KV term a refinement: when a per-token cost comes out
      // negative (KV reads and tokens are correlated in practice), give up k3 before any k1.
      const k3 = active.findIndex((c) => c.kind === 'k3');
      if (active[worst]!.kind === 'k1' && k3 >= 0) worst = k3;
      active = active.filter((_, j) => j !== worst);
      continue;
    }
    const pieces: LinearPiece[] = Array.from({ length: P }, () => ({ k1: 0, k2: 0, b: 0 }));
    let k3 = 0;
    active.forEach((c, j) => {
      if (c.kind === 'k3') k3 = coef[j]!;
      else pieces[c.piece]![c.kind] = coef[j]!;
    });
    let sse = 0;
    for (let i = 0; i < n; i++) {
      const s = samples[i]!;
      const p = pieces[assign[i]!]!;
      sse += (s.ms - (p.k1 * s.tokens + p.k2 * s.draftSteps + p.b + k3 * s.kvTokensRead)) ** 2;
    }
    return { pieces, k3, sse };
  }
}

/** Gaussian elimination with partial pivoting; null when singular. */
function solve(A: Float64Array[], y: Float64Array): Float64Array | null {
  const m = y.length;
  const M = A.map((row, r) => Float64Array.from([...row, y[r]!]));
  for (let col = 0; col < m; col++) {
    let piv = col;
    for (let r = col + 1; r < m; r++) if (Math.abs(M[r]![col]!) > Math.abs(M[piv]![col]!)) piv = r;
    if (!(Math.abs(M[piv]![col]!) > 1e-300)) return null;
    [M[col], M[piv]] = [M[piv]!, M[col]!];
    const pr = M[col]!;
    for (let r = col + 1; r < m; r++) {
      const row = M[r]!;
      const f = row[col]! / pr[col]!;
      if (f === 0) continue;
      for (let c = col; c <= m; c++) row[c] = row[c]! - f * pr[c]!;
    }
  }
  const x = new Float64Array(m);
  for (let r = m - 1; r >= 0; r--) {
    let s = M[r]![m]!;
    for (let c = r + 1; c < m; c++) s -= M[r]![c]! * x[c]!;
    x[r] = s / M[r]![r]!;
  }
  return x.every(Number.isFinite) ? x : null;
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
