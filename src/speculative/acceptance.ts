// Draft/verify acceptance, on the CPU. Greedy: the longest prefix of drafts that equals the
// target's argmax, then the target's own token. Stochastic (Leviathan et al., Chen et al.): accept
// draft x with probability min(1, p(x)/q(x)); on the first rejection sample from
// normalize(max(0, p - q)); if all k are accepted, sample the bonus token from p. With p and q the
// warped distributions the request samples from, the output is distributed exactly as the target's.
//
// Randomness is keyed by (seed, output token index, stream), never by batch position:
//   stream 1: the draft's proposal for that index; 2: the accept test; 3: residual / bonus draw.

import { samplingUniform } from '../sampling/philox.js';

export const STREAM_DRAFT = 1;
export const STREAM_ACCEPT = 2;
export const STREAM_RESIDUAL = 3;

export interface Acceptance {
  /** Draft tokens accepted (0..k). */
  accepted: number;
  /** The tokens to emit: the accepted drafts, then the target's correction or bonus token. */
  emitted: number[];
}

/** Greedy: `targetArgmax` has k+1 entries, the target's choice after each prefix of the drafts. */
export function acceptGreedy(drafts: readonly number[], targetArgmax: ArrayLike<number>): Acceptance {
  let m = 0;
  while (m < drafts.length && drafts[m] === targetArgmax[m]) m++;
  return { accepted: m, emitted: [...drafts.slice(0, m), targetArgmax[m]!] };
}

/** Inverse-CDF draw from an (unnormalized, non-negative) weight vector, in increasing id order. */
export function drawFrom(weights: ArrayLike<number>, u: number): number {
  let total = 0;
  for (let i = 0; i < weights.length; i++) total += weights[i]!;
  if (!(total > 0)) throw new RangeError('cannot sample from an all-zero distribution');
  const target = u * total;
  let run = 0;
  let last = -1;
  for (let i = 0; i < weights.length; i++) {
    if (weights[i]! <= 0) continue;
    run += weights[i]!;
    last = i;
    if (run > target) return i;
  }
  return last;
}

export interface StochasticInput {
  drafts: readonly number[];
  /** k+1 warped target distributions: after the context, and after each draft prefix. */
  p: readonly Float64Array[];
  /** k warped draft distributions the drafts were sampled from. */
  q: readonly Float64Array[];
  seed: bigint | number;
  /** Output index of the first draft token (= tokens emitted so far). */
  firstIndex: number;
}

export function acceptStochastic(input: StochasticInput, options: { broken?: 'accept-always' | 'resample-from-p' } = {}): Acceptance {
  const { drafts, p, q, seed, firstIndex } = input;
  const k = drafts.length;
  if (p.length !== k + 1 || q.length !== k) throw new RangeError(`need ${k + 1} target and ${k} draft distributions, got ${p.length} and ${q.length}`);
  for (let j = 0; j < k; j++) {
    const x = drafts[j]!;
    const px = p[j]![x]!;
    const qx = q[j]![x]!;
    const u = samplingUniform(seed, firstIndex + j, STREAM_ACCEPT);
    if (options.broken === 'accept-always' || u * qx < px) continue;
    // Rejected: the residual max(0, p - q) carries exactly the mass the draft under-proposed.
    const residual = new Float64Array(p[j]!.length);
    for (let i = 0; i < residual.length; i++) residual[i] = Math.max(0, p[j]![i]! - q[j]![i]!);
    const from = options.broken === 'resample-from-p' ? p[j]! : residual;
    const c = drawFrom(from, samplingUniform(seed, firstIndex + j, STREAM_RESIDUAL));
    return { accepted: j, emitted: [...drafts.slice(0, j), c] };
  }
  const bonus = drawFrom(p[k]!, samplingUniform(seed, firstIndex + k, STREAM_RESIDUAL));
  return { accepted: k, emitted: [...drafts, bonus] };
}
