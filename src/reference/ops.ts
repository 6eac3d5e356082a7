// Float64 CPU references for every transformer kernel. Plain loops, read top to bottom; the GPU
// kernels are tested against these, and src/reference/model.ts composes them into a whole forward.

export type Vec = Float64Array;

/** y[r, :] = x[r, :] * w / sqrt(mean(x[r, :]^2) + eps) for `rows` rows of width `n`. */
export function rmsNormRef(x: ArrayLike<number>, w: ArrayLike<number>, rows: number, n: number, eps: number): Vec {
  const y = new Float64Array(rows * n);
  for (let r = 0; r < rows; r++) {
    let ss = 0;
    for (let i = 0; i < n; i++) ss += x[r * n + i]! ** 2;
    const inv = 1 / Math.sqrt(ss / n + eps);
    for (let i = 0; i < n; i++) y[r * n + i] = x[r * n + i]! * inv * w[i]!;
  }
  return y;
}

import { ropeCosSin } from '../model/rope.js';

export { ropeCosSin, ropeInvFreq, type RopeScaling } from '../model/rope.js';

/**
 * Rotate each head of x in place (HF's rotate_half layout: pairs are (i, i + headDim/2)).
 * x is [tokens, heads, headDim]; positions has one entry per token.
 */
export function ropeRef(x: Float64Array, positions: ArrayLike<number>, heads: number, headDim: number, invFreq: ArrayLike<number>): void {
  const half = headDim / 2;
  for (let t = 0; t < positions.length; t++) {
    for (let h = 0; h < heads; h++) {
      const base = (t * heads + h) * headDim;
      for (let i = 0; i < half; i++) {
        const [c, s] = ropeCosSin(positions[t]!, invFreq[i]!);
        const a = x[base + i]!;
        const b = x[base + i + half]!;
        x[base + i] = a * c - b * s;
        x[base + i + half] = b * c + a * s;
      }
    }
  }
}

/**
 * Causal attention of `q` rows over keys/values 0..pos[t] of their sequence.
 * q: [tokens, heads, d]; keys/values: per token, a function giving K/V of (position, kvHead).
 */
export function attentionRef(
  q: ArrayLike<number>,
  positions: ArrayLike<number>,
  heads: number,
  kvHeads: number,
  d: number,
  kv: (t: number, pos: number, kvHead: number) => { k: ArrayLike<number>; v: ArrayLike<number> },
): Vec {
  const out = new Float64Array(positions.length * heads * d);
  const group = heads / kvHeads;
  const scale = 1 / Math.sqrt(d);
  for (let t = 0; t < positions.length; t++) {
    const n = positions[t]! + 1;
    for (let h = 0; h < heads; h++) {
      const kvh = Math.floor(h / group);
      const scores = new Float64Array(n);
      let max = -Infinity;
      for (let j = 0; j < n; j++) {
        const { k } = kv(t, j, kvh);
        let s = 0;
        for (let i = 0; i < d; i++) s += q[(t * heads + h) * d + i]! * k[i]!;
        scores[j] = s * scale;
        max = Math.max(max, scores[j]!);
      }
      let sum = 0;
      for (let j = 0; j < n; j++) sum += scores[j] = Math.exp(scores[j]! - max);
      for (let j = 0; j < n; j++) {
        const { v } = kv(t, j, kvh);
        const p = scores[j]! / sum;
        for (let i = 0; i < d; i++) out[(t * heads + h) * d + i] = out[(t * heads + h) * d + i]! + p * v[i]!;
      }
    }
  }
  return out;
}

export function siluRef(x: number): number {
  return x / (1 + Math.exp(-x));
}

/** h = silu(gate) * up, elementwise. */
export function siluMulRef(gate: ArrayLike<number>, up: ArrayLike<number>): Vec {
  const h = new Float64Array(gate.length);
  for (let i = 0; i < h.length; i++) h[i] = siluRef(gate[i]!) * up[i]!;
  return h;
}

/** Index of the largest value; ties go to the lowest index (torch.argmax). */
export function argmaxRef(x: ArrayLike<number>, offset = 0, n = x.length - offset): number {
  let best = 0;
  for (let i = 1; i < n; i++) if (x[offset + i]! > x[offset + best]!) best = i;
  return best;
}
