// Float64 reference of token sampling, with the exact RNG the GPU kernel (shaders/sample.wgsl)
// uses, so tests can predict its draws.
//
// Semantics, in HF transformers' generate order:
//   logits / temperature -> top-k -> top-p -> sample from the renormalized distribution;
//   temperature 0 is greedy argmax (ties to the lowest id).
//
// Logits are float32 values: NaN counts as -Infinity and -0 as +0. Every decision about which
// tokens stay is made on these values, before any arithmetic (dividing by T > 0 keeps the order).
// temperature and top_p are used as float32 values, as the kernel reads them.
//
// Weights: with m the largest logit, w(l) = 1 when l == m, else exp(-(m - l) / T), and 0 when
// (m - l) / T >= WEIGHT_CUTOFF (below f32's normal range; -Infinity and everything under an
// +Infinity maximum land here). A row whose logits are all -Infinity is uniform over the vocab.
//
// Tie rule (top-k and top-p alike): a token is kept or dropped together with every token of the
// same value, so the kept set is always {l >= threshold}:
//   top-k (0 < k < vocab): keep every token whose value is >= the k-th largest value counted with
//     multiplicity (HF's `scores < topk(scores, k).values[-1]` test); ties may keep more than k,
//     so top_k = 1 is argmax only when the maximum is unique (tied maxima are sampled among).
//   top-p (top_p < 1), on the weights of the top-k survivors with total Z: keep token i iff the
//     mass of the tokens with a strictly larger value is < top_p * Z. The largest value is always
//     kept; without ties this is the smallest prefix (by probability, descending) whose mass is
//     >= top_p, as HF's TopPLogitsWarper keeps.
// Sampling: u = uniform(seed, tokenIndex); target = u * Z' (Z' the kept mass); walk the kept ids
// in increasing order accumulating weights and pick the first id whose running sum exceeds target
// (the last id with positive weight if rounding leaves none).
//
// RNG: Philox-4x32-10 (Salmon et al., SC'11; Random123), key = the 64-bit seed as (low, high)
// u32 words, counter = (tokenIndex, stream, 0, 0) with stream 0 for sampling. The uniform is the
// first output word's high 24 bits / 2^24: exact in f32, in [0, 1 - 2^-24].
//
// The f32 arithmetic on the GPU sums weights in another order, so a draw landing within rounding
// of a cumulative boundary (or a top_p within rounding of a prefix mass) may go the other way;
// `sampleDetails` and `warpDetails` report how far from such boundaries a case is.

import { GpuUsageError } from '../gpu/errors.js';

/** One row's sampling request (src/kernels/sampling.ts packs these for the GPU). */
export interface SamplingParams {
  /** >= 0; 0 is greedy argmax. Used as float32. */
  temperature: number;
  /** Keep the k most likely tokens (ties kept, see above); 0 is off. An integer in [0, 2^32). */
  topK: number;
  /** Nucleus mass in (0, 1]; 1 is off. Used as float32. */
  topP: number;
  /** A u64 (bigint, or a non-negative safe integer). */
  seed: bigint | number;
  /** The position of the token being sampled in its request's output (a u32): the RNG counter. */
  tokenIndex: number;
}

/** A sampling parameter out of range; names the row (in a batch) and the field. */
export class SamplingParamsError extends GpuUsageError {
  override name = 'SamplingParamsError';

  constructor(
    readonly row: number,
    readonly field: keyof SamplingParams,
    detail: string,
  ) {
    super(`sampling params of row ${row}: ${field} ${detail}`);
  }
}

const MIN_NORMAL_F32 = 2 ** -126;

/** Throws SamplingParamsError unless `p` is a valid request. */
export function validateSamplingParams(p: SamplingParams, row = 0): void {
  const t = p.temperature;
  if (typeof t !== 'number' || !Number.isFinite(t) || t < 0) {
    throw new SamplingParamsError(row, 'temperature', `must be a finite number >= 0 (0 = greedy), got ${String(t)}`);
  }
  if (t > 0 && Math.abs(Math.fround(t)) < MIN_NORMAL_F32) {
    throw new SamplingParamsError(row, 'temperature', `${t} is below float32's normal range; use 0 for greedy`);
  }
  const k = p.topK;
  if (typeof k !== 'number' || !Number.isInteger(k) || k < 0 || k > 0xffffffff) {
    throw new SamplingParamsError(row, 'topK', `must be an integer in [0, 2^32) (0 = off), got ${String(k)}`);
  }
  const q = p.topP;
  if (typeof q !== 'number' || !(q > 0 && q <= 1)) {
    throw new SamplingParamsError(row, 'topP', `must be in (0, 1] (1 = off), got ${String(q)}`);
  }
  const ti = p.tokenIndex;
  if (typeof ti !== 'number' || !Number.isInteger(ti) || ti < 0 || ti > 0xffffffff) {
    throw new SamplingParamsError(row, 'tokenIndex', `must be an integer in [0, 2^32), got ${String(ti)}`);
  }
  splitSeedAt(p.seed, row);
}

function splitSeedAt(seed: bigint | number, row: number): [number, number] {
  if (typeof seed === 'bigint') {
    if (seed < 0n || seed >= 1n << 64n) throw new SamplingParamsError(row, 'seed', `must be in [0, 2^64), got ${seed}`);
    return [Number(seed & 0xffffffffn), Number(seed >> 32n)];
  }
  if (typeof seed !== 'number' || !Number.isSafeInteger(seed) || seed < 0) {
    throw new SamplingParamsError(row, 'seed', `must be a non-negative safe integer or a bigint below 2^64, got ${String(seed)}`);
  }
  return [seed % 2 ** 32, Math.floor(seed / 2 ** 32)];
}

/** The seed as its (low, high) u32 words: the Philox key. */
export function splitSeed(seed: bigint | number): [number, number] {
  return splitSeedAt(seed, 0);
}

/** (m - l) / T at or beyond which a weight is 0. */
export const WEIGHT_CUTOFF = 87;

const PHILOX_M0 = 0xd2511f53;
const PHILOX_M1 = 0xcd9e8d57;
const PHILOX_W0 = 0x9e3779b9;
const PHILOX_W1 = 0xbb67ae85;

/** High 32 bits of the 64-bit product of two u32 (exact, via 16-bit halves). */
export function mulhi32(a: number, b: number): number {
  const aLo = a & 0xffff;
  const aHi = a >>> 16;
  const bLo = b & 0xffff;
  const bHi = b >>> 16;
  const ll = aLo * bLo;
  const lh = aLo * bHi;
  const hl = aHi * bLo;
  const hh = aHi * bHi;
  const mid = (ll >>> 16) + (lh & 0xffff) + (hl & 0xffff);
  return (hh + Math.floor(lh / 65536) + Math.floor(hl / 65536) + Math.floor(mid / 65536)) >>> 0;
}

/** Philox-4x32-10 of a 4-word counter under a 2-word key (Random123's philox4x32_10). */
export function philox4x32(counter: ArrayLike<number>, key: ArrayLike<number>): Uint32Array {
  let c0 = counter[0]! >>> 0;
  let c1 = counter[1]! >>> 0;
  let c2 = counter[2]! >>> 0;
  let c3 = counter[3]! >>> 0;
  let k0 = key[0]! >>> 0;
  let k1 = key[1]! >>> 0;
  for (let round = 0; round < 10; round++) {
    if (round > 0) {
      k0 = (k0 + PHILOX_W0) >>> 0;
      k1 = (k1 + PHILOX_W1) >>> 0;
    }
    const hi0 = mulhi32(PHILOX_M0, c0);
    const lo0 = Math.imul(PHILOX_M0, c0) >>> 0;
    const hi1 = mulhi32(PHILOX_M1, c2);
    const lo1 = Math.imul(PHILOX_M1, c2) >>> 0;
    [c0, c1, c2, c3] = [(hi1 ^ c1 ^ k0) >>> 0, lo1, (hi0 ^ c3 ^ k1) >>> 0, lo0];
  }
  return new Uint32Array([c0, c1, c2, c3]);
}

/** The uniform in [0, 1) that sampling draws for (seed, tokenIndex): high 24 bits / 2^24. */
export function samplingUniform(seed: bigint | number, tokenIndex: number, stream = 0): number {
  const [lo, hi] = splitSeed(seed);
  const x = philox4x32([tokenIndex >>> 0, stream >>> 0, 0, 0], [lo, hi])[0]!;
  return (x >>> 8) / 16777216;
}

/** A logit as the kernel sees it: float32, NaN -> -Infinity, -0 -> +0. */
export function canonicalLogit(v: number): number {
  const f = Math.fround(v);
  if (Number.isNaN(f)) return -Infinity;
  return f === 0 ? 0 : f;
}

export interface WarpDetails {
  /** The warped distribution (sums to 1; zero outside the kept set). */
  probs: Float64Array;
  /** Unnormalized weights of the kept tokens (0 elsewhere). */
  weights: Float64Array;
  /** Ids with positive probability after top-k and top-p, ascending (the support). */
  kept: number[];
  /** Ids kept after top-k alone, ascending. */
  keptTopK: number[];
  /**
   * How far top_p is from flipping a tie group, as a fraction of the top-k mass: min over the last
   * kept and the first dropped group of |mass strictly above the group - top_p * Z| / Z
   * (Infinity when top-p is off or the decision is not close to anything).
   */
  topPMargin: number;
  /** The argmax (lowest id among the largest values). */
  argmax: number;
}

/** Everything the warp decides, in float64. Greedy (temperature 0) keeps only the argmax. */
export function warpDetails(logits: ArrayLike<number>, params: SamplingParams): WarpDetails {
  validateSamplingParams(params);
  const n = logits.length;
  if (n === 0) throw new RangeError('warpDetails: empty logits');
  const l = Float64Array.from({ length: n }, (_, i) => canonicalLogit(logits[i]!));
  let argmax = 0;
  for (let i = 1; i < n; i++) if (l[i]! > l[argmax]!) argmax = i;
  const max = l[argmax]!;
  const probs = new Float64Array(n);
  const weights = new Float64Array(n);
  const T = Math.fround(params.temperature);
  if (T === 0) {
    probs[argmax] = 1;
    weights[argmax] = 1;
    return { probs, weights, kept: [argmax], keptTopK: [argmax], topPMargin: Infinity, argmax };
  }

  // Top-k on the values.
  let kThreshold = -Infinity;
  if (params.topK > 0 && params.topK < n) {
    const sorted = Float64Array.from(l).sort((a, b) => b - a);
    kThreshold = sorted[params.topK - 1]!;
  }
  const keptTopK: number[] = [];
  for (let i = 0; i < n; i++) if (l[i]! >= kThreshold) keptTopK.push(i);

  const weight = (v: number): number => {
    if (v === max) return 1;
    const x = (max - v) / T;
    return x < WEIGHT_CUTOFF ? Math.exp(-x) : 0;
  };

  // Top-p over tie groups, largest value first.
  let pThreshold = -Infinity;
  let topPMargin = Infinity;
  const topP = Math.fround(params.topP);
  if (topP < 1) {
    let Z = 0;
    for (const i of keptTopK) Z += weight(l[i]!);
    const target = topP * Z;
    const byValue = keptTopK.slice().sort((a, b) => l[b]! - l[a]! || a - b);
    let above = 0;
    for (let g = 0; g < byValue.length; ) {
      const v = l[byValue[g]!]!;
      let mass = 0;
      let e = g;
      while (e < byValue.length && l[byValue[e]!] === v) mass += weight(l[byValue[e++]!]!);
      topPMargin = Math.min(topPMargin, Math.abs(above - target) / Z);
      if (!(above < target) && g > 0) break;
      pThreshold = v;
      above += mass;
      g = e;
    }
  }

  const threshold = Math.max(kThreshold, pThreshold);
  const kept: number[] = [];
  let Z = 0;
  for (let i = 0; i < n; i++) {
    const w = l[i]! >= threshold ? weight(l[i]!) : 0;
    if (w > 0) {
      weights[i] = w;
      Z += w;
      kept.push(i);
    }
  }
  for (const i of kept) probs[i] = weights[i]! / Z;
  return { probs, weights, kept, keptTopK, topPMargin, argmax };
}

/** The probability vector after temperature, top-k and top-p (float64). */
export function warpedDistribution(logits: ArrayLike<number>, params: SamplingParams): Float64Array {
  return warpDetails(logits, params).probs;
}

export interface SampleDetails {
  id: number;
  /** The draw in [0, 1). */
  u: number;
  /**
   * Distance of u * Z' from the nearest cumulative boundary of the picked id, as a fraction of Z'
   * (Infinity for greedy). Agreement with the f32 GPU walk is exact when this is well above the
   * f32 rounding of the sums (1e-5 is ample).
   */
  margin: number;
  /** warpDetails' topPMargin. */
  topPMargin: number;
}

export function sampleDetails(logits: ArrayLike<number>, params: SamplingParams): SampleDetails {
  const warp = warpDetails(logits, params);
  const u = samplingUniform(params.seed, params.tokenIndex);
  if (Math.fround(params.temperature) === 0) return { id: warp.argmax, u, margin: Infinity, topPMargin: Infinity };
  let Z = 0;
  for (const i of warp.kept) Z += warp.weights[i]!;
  const target = u * Z;
  let run = 0;
  let last = -1;
  for (const i of warp.kept) {
    const w = warp.weights[i]!;
    if (w <= 0) continue;
    const before = run;
    run += w;
    last = i;
    if (run > target) {
      return { id: i, u, margin: Math.min(target - before, run - target) / Z, topPMargin: warp.topPMargin };
    }
  }
  return { id: last, u, margin: 0, topPMargin: warp.topPMargin };
}

/** The id the kernel samples for these logits and params (exact away from rounding boundaries). */
export function sampleReference(logits: ArrayLike<number>, params: SamplingParams): number {
  return sampleDetails(logits, params).id;
}
