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
//
// The parameters, the RNG and the warp live in src/sampling/ (production code uses them too); this
// file adds the draw and re-exports them, so tests import one module.

import type { SamplingParams } from '../sampling/params.js';
import { samplingUniform } from '../sampling/philox.js';
import { warpDetails } from '../sampling/warp.js';

export { SamplingParamsError, splitSeed, validateSamplingParams, type SamplingParams } from '../sampling/params.js';
export { mulhi32, philox4x32, samplingUniform } from '../sampling/philox.js';
export { canonicalLogit, WEIGHT_CUTOFF, warpDetails, warpedDistribution, type WarpDetails } from '../sampling/warp.js';

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
