// GGML's quantized blocks as the F32 values they stand for, exactly as ggml's dequantize_row_*
// (ggml/src/ggml-quants.c) computes them: used at load for GGUF tensors the engine holds as F32.
//
// Layouts (little-endian; "f16" is an IEEE half):
//  - Q8_0 (32 values, 34 bytes): f16 d, 32 int8 codes; value = code * d.
//  - Q4_0 (32 values, 18 bytes): f16 d, 16 bytes; byte j holds value j (low nibble) and value j + 16
//    (high nibble); value = (nibble - 8) * d.
//  - Q5_0 (32 values, 22 bytes): f16 d, 4 bytes qh (a little-endian u32 of fifth bits), 16 bytes of
//    nibbles laid out as Q4_0's; value j (0..15) is byte j's low nibble | bit j of qh << 4, value
//    j + 16 its high nibble | bit j + 16 of qh << 4; value = (code - 16) * d.
//  - Q5_1 (32 values, 24 bytes): f16 d, f16 m, then Q5_0's qh and nibbles; value = code * d + m.
//  - Q4_K (256 values, 144 bytes): f16 d, f16 dmin, 12 bytes of eight 6-bit scales and eight 6-bit
//    mins (scaleMinK4), 128 bytes of nibbles. Each 64 values use 32 bytes: sub-block 2c takes the low
//    nibbles, 2c + 1 the high ones; value = d*scale * nibble - dmin*min.
//  - Q5_K (256 values, 176 bytes): Q4_K's d, dmin, scales, then 32 bytes qh of fifth bits, then the
//    128 bytes of nibbles; sub-block s adds 16 where bit s of qh[l] is set.
//  - Q6_K (256 values, 210 bytes): 128 bytes ql (low 4 bits), 64 bytes qh (high 2 bits), 16 int8
//    scales (one per 16 values), f16 d. Each 128 values use 64 bytes of ql and 32 of qh; value l of
//    quarter k (k = 0..3) takes ql[l + 32*(k & 1)]'s low (k < 2) or high nibble and bits 2k..2k+1 of
//    qh[l]; value = d * scale * (code - 32).
//
// Invariants: the results are ggml's to the bit. Every product here is exact in float64 (f16 times
// a small integer times a small integer), so one rounding to f32 when stored gives ggml's f32
// arithmetic, fused multiply-add or not; Q4_K/Q5_K's `d1*q - m1` rounds once, as in ggml. Q5_1's
// `code*d + m` too: ggml's product (an f16 times a 5-bit code, 16 significant bits) is exact in f32,
// and the sum with the f16 m spans at most 45 bits (2^20 down to f16's 2^-24), so float64 holds it
// exactly and the store to f32 is ggml's single rounding of the sum.
// `data` must be whole blocks (the parser checks sizes); a partial block is an Error, never read past.

import { f16BitsToNumber } from '../numeric/half.js';

/** The quantized GGML types this file reads: values per block and bytes per block. */
export const QUANT_BLOCKS = {
  Q4_0: { block: 32, bytes: 18 },
  Q5_0: { block: 32, bytes: 22 },
  Q5_1: { block: 32, bytes: 24 },
  Q8_0: { block: 32, bytes: 34 },
  Q4_K: { block: 256, bytes: 144 },
  Q5_K: { block: 256, bytes: 176 },
  Q6_K: { block: 256, bytes: 210 },
} as const;
export type QuantType = keyof typeof QUANT_BLOCKS;

const half = (d: Uint8Array, at: number): number => f16BitsToNumber(d[at]! | (d[at + 1]! << 8));

/** Scale and min of sub-block j (0..7) from a K-quant's 12 packed bytes at `q` (ggml's get_scale_min_k4). */
export function scaleMinK4(d: Uint8Array, q: number, j: number): [scale: number, min: number] {
  if (j < 4) return [d[q + j]! & 63, d[q + j + 4]! & 63];
  return [(d[q + j + 4]! & 0xf) | ((d[q + j - 4]! >> 6) << 4), (d[q + j + 4]! >> 4) | ((d[q + j]! >> 6) << 4)];
}

function q4_0(d: Uint8Array, at: number, out: Float32Array, o: number): void {
  const s = half(d, at);
  for (let j = 0; j < 16; j++) {
    const q = d[at + 2 + j]!;
    out[o + j] = ((q & 15) - 8) * s;
    out[o + j + 16] = ((q >> 4) - 8) * s;
  }
}

/** Q5_0 (`withMin` false: (code - 16) * d) and Q5_1 (true: code * d + m, m the f16 after d). */
function q5(d: Uint8Array, at: number, out: Float32Array, o: number, withMin: boolean): void {
  const s = half(d, at);
  const m = withMin ? half(d, at + 2) : 0;
  const qhAt = at + (withMin ? 4 : 2);
  const qh = (d[qhAt]! | (d[qhAt + 1]! << 8) | (d[qhAt + 2]! << 16) | (d[qhAt + 3]! << 24)) >>> 0;
  const qs = qhAt + 4;
  for (let j = 0; j < 16; j++) {
    const q = d[qs + j]!;
    const lo = (q & 15) | (((qh >>> j) & 1) << 4);
    const hi = (q >> 4) | (((qh >>> (j + 16)) & 1) << 4);
    out[o + j] = withMin ? lo * s + m : (lo - 16) * s;
    out[o + j + 16] = withMin ? hi * s + m : (hi - 16) * s;
  }
}

function q8_0(d: Uint8Array, at: number, out: Float32Array, o: number): void {
  const s = half(d, at);
  for (let i = 0; i < 32; i++) out[o + i] = ((d[at + 2 + i]! << 24) >> 24) * s;
}

/** Q4_K (hasHigh false) and Q5_K (true): the same scales, Q5_K adds a fifth bit from qh. */
function qK45(d: Uint8Array, at: number, out: Float32Array, o: number, hasHigh: boolean): void {
  const dd = half(d, at);
  const dmin = half(d, at + 2);
  const qh = at + 16;
  const qs = at + (hasHigh ? 48 : 16);
  for (let c = 0; c < 4; c++) {
    for (let h = 0; h < 2; h++) {
      const s = 2 * c + h;
      const [sc, m] = scaleMinK4(d, at + 4, s);
      const d1 = dd * sc;
      const m1 = dmin * m;
      for (let l = 0; l < 32; l++) {
        const byte = d[qs + 32 * c + l]!;
        const high = hasHigh && (d[qh + l]! >> s) & 1 ? 16 : 0;
        out[o + 64 * c + 32 * h + l] = d1 * ((h === 0 ? byte & 15 : byte >> 4) + high) - m1;
      }
    }
  }
}

function q6K(d: Uint8Array, at: number, out: Float32Array, o: number): void {
  const dd = half(d, at + 208);
  for (let n = 0; n < 2; n++) {
    const ql = at + 64 * n;
    const qh = at + 128 + 32 * n;
    const sc = at + 192 + 8 * n;
    for (let l = 0; l < 32; l++) {
      const is = l >> 4;
      for (let k = 0; k < 4; k++) {
        const low = d[ql + l + 32 * (k & 1)]!;
        const code = ((k < 2 ? low & 15 : low >> 4) | (((d[qh + l]! >> (2 * k)) & 3) << 4)) - 32;
        const scale = (d[sc + is + 2 * k]! << 24) >> 24;
        out[o + 128 * n + 32 * k + l] = dd * scale * code;
      }
    }
  }
}

const DECODERS: Record<QuantType, (d: Uint8Array, at: number, out: Float32Array, o: number) => void> = {
  Q4_0: q4_0,
  Q5_0: (d, at, out, o) => q5(d, at, out, o, false),
  Q5_1: (d, at, out, o) => q5(d, at, out, o, true),
  Q8_0: q8_0,
  Q4_K: (d, at, out, o) => qK45(d, at, out, o, false),
  Q5_K: (d, at, out, o) => qK45(d, at, out, o, true),
  Q6_K: q6K,
};

/** The F32 values of `data`, whole blocks of `type` (as ggml's dequantize_row_*). */
export function dequantizeGgml(type: QuantType, data: Uint8Array): Float32Array {
  const { block, bytes } = QUANT_BLOCKS[type];
  if (data.length % bytes !== 0) throw new Error(`${type} data of ${data.length} bytes is not whole ${bytes}-byte blocks`);
  const blocks = data.length / bytes;
  const out = new Float32Array(blocks * block);
  const decode = DECODERS[type];
  for (let b = 0; b < blocks; b++) decode(data, b * bytes, out, b * block);
  return out;
}
