// The warp of one row's logits into the distribution sampling draws from, in float64, in HF
// transformers' generate order (the kernel, shaders/sample.wgsl, decides the same set in f32):
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
//
// Used by stochastic speculative acceptance on the CPU (src/speculative/) and by the float64
// reference (src/reference/sampling.ts), which adds the draw.

import { validateSamplingParams, type SamplingParams } from './params.js';

/** (m - l) / T at or beyond which a weight is 0. */
export const WEIGHT_CUTOFF = 87;

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
    for (let g = 0; g < byValue.length;) {
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
