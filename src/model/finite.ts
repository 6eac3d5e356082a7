// The weights must be finite: a NaN or infinity in any parameter poisons every activation it
// touches, and the model then loads and "runs" while greedy decoding returns token 0 forever.
// Checked on the file bytes at load, by the exponent bits (all ones: NaN or infinity), without
// converting a value: about a nanosecond per weight on one CPU core, next to minutes of download.

import { NonFiniteWeightError } from './errors.js';
import type { Tensor } from './safetensors.js';

/** The first element of `t` that is NaN or infinite, or -1. */
export function firstNonFinite(t: Tensor): number {
  const { data } = t;
  if (t.dtype === 'F32') {
    const n = data.byteLength >>> 2;
    if (data.byteOffset % 4 === 0) {
      const u = new Uint32Array(data.buffer, data.byteOffset, n);
      for (let i = 0; i < n; i++) if ((u[i]! & 0x7f800000) === 0x7f800000) return i;
      return -1;
    }
    const v = new DataView(data.buffer, data.byteOffset, data.byteLength);
    for (let i = 0; i < n; i++) if ((v.getUint32(4 * i, true) & 0x7f800000) === 0x7f800000) return i;
    return -1;
  }
  // F16: 5 exponent bits; BF16: 8.
  const mask = t.dtype === 'F16' ? 0x7c00 : t.dtype === 'BF16' ? 0x7f80 : 0;
  if (mask === 0) return -1;
  const n = data.byteLength >>> 1;
  if (data.byteOffset % 4 === 0) {
    // Two values a word: a word passes when neither half has its exponent all ones.
    const words = n >>> 1;
    const u = new Uint32Array(data.buffer, data.byteOffset, words);
    const lo = mask;
    const hi = mask << 16;
    for (let w = 0; w < words; w++) {
      const v = u[w]!;
      if ((v & lo) === lo || (v & hi) >>> 0 === hi >>> 0) return (v & lo) === lo ? 2 * w : 2 * w + 1;
    }
    if (n % 2 === 1 && ((data[2 * n - 2]! | (data[2 * n - 1]! << 8)) & mask) === mask) return n - 1;
    return -1;
  }
  for (let i = 0; i < n; i++) if (((data[2 * i]! | (data[2 * i + 1]! << 8)) & mask) === mask) return i;
  return -1;
}

/** Throws NonFiniteWeightError naming the first tensor with a non-finite element. */
export function checkFinite(tensors: ReadonlyMap<string, Tensor>): void {
  for (const [name, t] of tensors) {
    const i = firstNonFinite(t);
    if (i >= 0) throw new NonFiniteWeightError(name, i);
  }
}
