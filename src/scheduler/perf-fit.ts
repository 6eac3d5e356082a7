// Fitting the performance model (perf-model.ts) to profiled samples: least squares per linear piece
// (normal equations, columns scaled to unit RMS, a tiny ridge), non-negative per-step costs by a small
// active-set loop, and an alternating assignment of samples to pieces for max-of-pieces models.
// Pure TypeScript.

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

export const RIDGE = 1e-10;
export const MIN_SAMPLES = 3;

export function rawPredict(pieces: readonly LinearPiece[], k3: number, s: StepShape): number {
  const steps = s.draftSteps ?? 0;
  let m = -Infinity;
  for (const p of pieces) m = Math.max(m, p.k1 * s.tokens + p.k2 * steps + p.b);
  return m + k3 * (s.kvTokensRead ?? 0);
}

export function quantile(values: readonly number[], q: number): number {
  if (values.length === 0) return 0;
  const sorted = [...values].sort((a, b) => a - b);
  const pos = q * (sorted.length - 1);
  const lo = Math.floor(pos);
  const hi = Math.min(sorted.length - 1, lo + 1);
  return sorted[lo]! + (pos - lo) * (sorted[hi]! - sorted[lo]!);
}

// ---- fitting ------------------------------------------------------------------------------------

export interface Fit {
  pieces: LinearPiece[];
  k3: number;
  sse: number;
}

export function checkSamples(samples: readonly PerfSample[]): void {
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

export function fitPieces(samples: readonly PerfSample[], maxPieces: number, iterations: number): Fit {
  const slices = fitPiecesInSlices(samples, maxPieces, iterations);
  for (;;) {
    const r = slices.next();
    if (r.done) return r.value;
  }
}

/**
 * fitPieces as slices of work: each next() runs one starting assignment's alternation (about a
 * tenth of a fit), and the last returns the fit. The same fit as fitPieces on the same samples; a
 * caller on a step loop (the online refit) runs one slice between steps instead of the whole fit.
 */
export function* fitPiecesInSlices(samples: readonly PerfSample[], maxPieces: number, iterations: number): Generator<void, Fit, void> {
  checkSamples(samples);
  if (!Number.isInteger(maxPieces) || maxPieces < 1 || maxPieces > 8) throw new PerfFitError('pieces', `is ${maxPieces}; expected an integer in 1..8`);
  const n = samples.length;
  const one = fitAssigned(samples, new Int32Array(n), 1);
  if (!one) throw new PerfFitError('samples', 'give a singular system');
  let best = one;
  if (maxPieces >= 2) {
    for (let P = 2; P <= maxPieces; P++) {
      for (const start of initialSplits(samples, P)) {
        yield;
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
    const next = new Int32Array(samples.length);
    let same = true;
    for (let i = 0; i < samples.length; i++) {
      next[i] = argmaxPiece(f.pieces, samples[i]!);
      if (next[i] !== assign[i]) same = false;
    }
    if (same) break;
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
  for (let i = 0; i < pieces.length; i++) {
    const p = pieces[i]!;
    const v = p.k1 * s.tokens + p.k2 * s.draftSteps + p.b;
    if (v > bestV) {
      bestV = v;
      best = i;
    }
  }
  return best;
}

type Column = { kind: 'k1' | 'k2' | 'b'; piece: number } | { kind: 'k3' };

/**
 * Joint least squares of the pieces (each over its assigned samples) and the shared k3, with
 * non-negative coefficients. Null when a piece has too few samples to stand on its own.
 */
function fitAssigned(samples: readonly PerfSample[], assign: Int32Array, P: number): Fit | null {
  const n = samples.length;
  const columns: Column[] = [];
  for (let p = 0; p < P; p++) {
    // Whether piece p has enough samples, and whether its tokens / draft steps vary (no arrays:
    // this runs thousands of times per fit, on the engine's step loop when it refits online).
    let count = 0;
    let firstTokens = 0;
    let firstDraft = 0;
    let tokensVary = false;
    let draftVary = false;
    for (let i = 0; i < n; i++) {
      if (assign[i] !== p) continue;
      const s = samples[i]!;
      if (count === 0) {
        firstTokens = s.tokens;
        firstDraft = s.draftSteps;
      } else {
        if (s.tokens !== firstTokens) tokensVary = true;
        if (s.draftSteps !== firstDraft) draftVary = true;
      }
      count++;
    }
    if (count < MIN_SAMPLES) return null;
    if (tokensVary) columns.push({ kind: 'k1', piece: p });
    if (draftVary) columns.push({ kind: 'k2', piece: p });
    columns.push({ kind: 'b', piece: p });
  }
  if (varies(samples.map((s) => s.kvTokensRead))) columns.push({ kind: 'k3' });
  // Each column's values once, scaled to unit RMS; the normal equations from their dot products
  // (summed over the samples in order, as a row-by-row accumulation would).
  const raw = columns.map((c) => {
    const v = new Float64Array(n);
    for (let i = 0; i < n; i++) {
      const s = samples[i]!;
      if (c.kind === 'k3') v[i] = s.kvTokensRead;
      else if (assign[i] === c.piece) v[i] = c.kind === 'k1' ? s.tokens : c.kind === 'k2' ? s.draftSteps : 1;
    }
    return v;
  });
  let active = columns.map((_, j) => j);
  for (;;) {
    const m = active.length;
    const scale = active.map((j) => {
      const v = raw[j]!;
      let sq = 0;
      for (let i = 0; i < n; i++) sq += v[i]! ** 2;
      return Math.sqrt(sq / n) || 1;
    });
    const x = active.map((j, r) => {
      const v = raw[j]!;
      const out = new Float64Array(n);
      for (let i = 0; i < n; i++) out[i] = v[i]! / scale[r]!;
      return out;
    });
    const A = Array.from({ length: m }, () => new Float64Array(m));
    const y = new Float64Array(m);
    for (let r = 0; r < m; r++) {
      const xr = x[r]!;
      const row = A[r]!;
      let yr = 0;
      for (let i = 0; i < n; i++) if (xr[i] !== 0) yr += xr[i]! * samples[i]!.ms;
      y[r] = yr;
      for (let c = 0; c < m; c++) {
        const xc = x[c]!;
        let sum = 0;
        for (let i = 0; i < n; i++) if (xr[i] !== 0) sum += xr[i]! * xc[i]!;
        row[c] = sum;
      }
    }
    const diag = A.reduce((a, row, r) => a + row[r]!, 0) / m;
    for (let r = 0; r < m; r++) A[r]![r] = A[r]![r]! + RIDGE * diag;
    const beta = solve(A, y);
    if (!beta) return null;
    const coef = Array.from(beta, (v, j) => v / scale[j]!);
    // Slopes and intercepts must be >= 0 (no step takes negative time, even a 1-token one on a
    // noisy adapter): fix the most negative at 0 and refit.
    let worst = -1;
    active.forEach((_, j) => {
      if (coef[j]! < 0 && (worst < 0 || coef[j]! < coef[worst]!)) worst = j;
    });
    if (worst >= 0) {
      // Tokens are the primary term, the KV term a refinement: when a per-token cost comes out
      // negative (KV reads and tokens are correlated in practice), give up k3 before any k1.
      const k3 = active.findIndex((j) => columns[j]!.kind === 'k3');
      if (columns[active[worst]!]!.kind === 'k1' && k3 >= 0) worst = k3;
      active = active.filter((_, j) => j !== worst);
      continue;
    }
    const pieces: LinearPiece[] = Array.from({ length: P }, () => ({ k1: 0, k2: 0, b: 0 }));
    let k3 = 0;
    active.forEach((col, j) => {
      const c = columns[col]!;
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
