// GGML's Q4_0, Q5_0, Q5_1 and Q8_0 quantization, as llama.cpp's reference quantizer does it
// (ggml-quants.c's quantize_row_*_ref), and the K-quants Q4_K, Q5_K, Q6_K in ggml's layouts (below),
// for the GGUF files of benchmarks and tests. Q4_0, Q8_0: blocks of 32 values, each an f16 scale d then the codes.
//  - Q4_0: 16 bytes of 4-bit codes (byte j holds value j in its low nibble, value j + 16 in its high
//    one); a value is (code - 8) * d; d = m / -8 where m is the block's value of largest magnitude,
//    so m maps to code 0.
//  - Q8_0: 32 signed bytes; a value is code * d; d = max |x| / 127, code = round(x / d).
//  - Q5_0 (f16 d, 4 bytes qh, 16 bytes of nibbles) and Q5_1 (f16 d, f16 m, qh, nibbles): 5-bit
//    codes, the low 4 bits placed as Q4_0's, the fifth bit of value j in bit j of qh (a
//    little-endian u32). Q5_0: value = (code - 16) * d, d = m / -16 (m of largest magnitude, code 0);
//    Q5_1: value = code * d + min, d = (max - min) / 31. The arithmetic is ggml's f32 arithmetic
//    (Math.fround at each step), so the codes are the ones llama-quantize writes.

import { numberToF16Bits, f16BitsToNumber } from '../../src/numeric/half.js';

/** `values` (row-major, rows x cols, cols a multiple of 32) as Q4_0 blocks. */
export function quantizeQ4_0(values: Float32Array): Uint8Array {
  if (values.length % 32 !== 0) throw new Error(`Q4_0 needs a multiple of 32 values, got ${values.length}`);
  const blocks = values.length / 32;
  const out = new Uint8Array(blocks * 18);
  for (let b = 0; b < blocks; b++) {
    const x = values.subarray(b * 32, b * 32 + 32);
    let amax = 0;
    let max = 0;
    for (let i = 0; i < 32; i++) {
      if (Math.abs(x[i]!) > amax) {
        amax = Math.abs(x[i]!);
        max = x[i]!;
      }
    }
    const d = max / -8;
    const id = d ? 1 / d : 0;
    putHalf(out, b * 18, d);
    for (let j = 0; j < 16; j++) {
      const lo = Math.min(15, Math.trunc(Math.fround(x[j]! * id) + 8.5));
      const hi = Math.min(15, Math.trunc(Math.fround(x[j + 16]! * id) + 8.5));
      out[b * 18 + 2 + j] = lo | (hi << 4);
    }
  }
  return out;
}

/** The values Q4_0 blocks stand for (for tests). */
export function dequantizeQ4_0(bytes: Uint8Array): Float32Array {
  const blocks = bytes.length / 18;
  const out = new Float32Array(blocks * 32);
  for (let b = 0; b < blocks; b++) {
    const d = f16BitsToNumber(bytes[b * 18]! | (bytes[b * 18 + 1]! << 8));
    for (let j = 0; j < 16; j++) {
      const q = bytes[b * 18 + 2 + j]!;
      out[b * 32 + j] = ((q & 15) - 8) * d;
      out[b * 32 + j + 16] = ((q >> 4) - 8) * d;
    }
  }
  return out;
}

/** `values` (a multiple of 32) as Q8_0 blocks. */
export function quantizeQ8_0(values: Float32Array): Uint8Array {
  if (values.length % 32 !== 0) throw new Error(`Q8_0 needs a multiple of 32 values, got ${values.length}`);
  const blocks = values.length / 32;
  const out = new Uint8Array(blocks * 34);
  for (let b = 0; b < blocks; b++) {
    const x = values.subarray(b * 32, b * 32 + 32);
    let amax = 0;
    for (let i = 0; i < 32; i++) amax = Math.max(amax, Math.abs(x[i]!));
    const d = amax / 127;
    const id = d ? 1 / d : 0;
    putHalf(out, b * 34, d);
    // roundf: halves away from zero.
    for (let i = 0; i < 32; i++) {
      const v = Math.fround(x[i]! * id);
      out[b * 34 + 2 + i] = (Math.sign(v) * Math.round(Math.abs(v))) & 0xff;
    }
  }
  return out;
}

/** Q5_0 (`withMin` false) or Q5_1 (true) blocks of `values` (a multiple of 32), as ggml's quantize_row_q5_{0,1}_ref. */
function quantizeQ5(values: Float32Array, withMin: boolean): Uint8Array {
  const type = withMin ? 'Q5_1' : 'Q5_0';
  if (values.length % 32 !== 0) throw new Error(`${type} needs a multiple of 32 values, got ${values.length}`);
  const size = withMin ? 24 : 22;
  const blocks = values.length / 32;
  const out = new Uint8Array(blocks * size);
  const f = Math.fround;
  for (let b = 0; b < blocks; b++) {
    const x = values.subarray(b * 32, b * 32 + 32);
    const at = b * size;
    let d: number;
    let min = 0;
    if (withMin) {
      min = Infinity;
      let max = -Infinity;
      for (let i = 0; i < 32; i++) {
        min = Math.min(min, x[i]!);
        max = Math.max(max, x[i]!);
      }
      d = f(f(max - min) / 31);
      putHalf(out, at, d);
      putHalf(out, at + 2, min);
    } else {
      let amax = 0;
      let max = 0;
      for (let i = 0; i < 32; i++) {
        if (Math.abs(x[i]!) > amax) {
          amax = Math.abs(x[i]!);
          max = x[i]!;
        }
      }
      d = f(max / -16);
      putHalf(out, at, d);
    }
    const id = d ? f(1 / d) : 0;
    // ggml: Q5_0 MIN(31, (int8_t)(x*id + 16.5f)); Q5_1 (uint8_t)((x - min)*id + 0.5f).
    const code = (v: number): number => (withMin ? Math.trunc(f(f(f(v - min) * id) + 0.5)) : Math.min(31, Math.trunc(f(f(v * id) + 16.5))));
    let qh = 0;
    const qs = at + (withMin ? 8 : 6);
    for (let j = 0; j < 16; j++) {
      const lo = code(x[j]!);
      const hi = code(x[j + 16]!);
      out[qs + j] = (lo & 15) | ((hi & 15) << 4);
      qh |= ((lo >> 4) & 1) << j;
      qh |= ((hi >> 4) & 1) << (j + 16);
    }
    new DataView(out.buffer, out.byteOffset).setUint32(qs - 4, qh >>> 0, true);
  }
  return out;
}

/** `values` (a multiple of 32) as Q5_0 blocks: value = (code - 16) * d. */
export const quantizeQ5_0 = (values: Float32Array): Uint8Array => quantizeQ5(values, false);

/** `values` (a multiple of 32) as Q5_1 blocks: value = code * d + m. */
export const quantizeQ5_1 = (values: Float32Array): Uint8Array => quantizeQ5(values, true);

/** The values Q8_0 blocks stand for (for tests). */
export function dequantizeQ8_0(bytes: Uint8Array): Float32Array {
  const blocks = bytes.length / 34;
  const out = new Float32Array(blocks * 32);
  for (let b = 0; b < blocks; b++) {
    const d = f16BitsToNumber(bytes[b * 34]! | (bytes[b * 34 + 1]! << 8));
    for (let i = 0; i < 32; i++) out[b * 32 + i] = ((bytes[b * 34 + 2 + i]! << 24) >> 24) * d;
  }
  return out;
}

// The K-quants, in ggml's block layouts (src/model/gguf-dequant.ts describes them; ggml's
// block_q4_K, block_q5_K, block_q6_K). The codes are chosen simply (each sub-block's range split
// evenly, scales rounded to the nearest 6-bit or 8-bit step), not by ggml's search for the best
// scales: a correct file, only less accurate than llama-quantize's.

const QK_K = 256;

function checkK(type: string, values: Float32Array): number {
  if (values.length % QK_K !== 0) throw new Error(`${type} needs a multiple of ${QK_K} values per row, got ${values.length}`);
  return values.length / QK_K;
}

const orByte = (out: Uint8Array, at: number, bits: number): void => {
  out[at] = out[at]! | bits;
};

/** Writes an f16 at `at`; returns the value it holds. */
export function putHalf(out: Uint8Array, at: number, v: number): number {
  const bits = numberToF16Bits(v);
  out[at] = bits & 0xff;
  out[at + 1] = bits >> 8;
  return f16BitsToNumber(bits);
}

/** Eight 6-bit scales and mins packed into 12 bytes at `at` (the inverse of ggml's get_scale_min_k4). */
function packScalesK4(out: Uint8Array, at: number, sc: number[], mn: number[]): void {
  for (let j = 0; j < 8; j++) {
    if (j < 4) {
      out[at + j] = sc[j]!;
      out[at + j + 4] = mn[j]!;
    } else {
      out[at + j + 4] = (sc[j]! & 0xf) | ((mn[j]! & 0xf) << 4);
      orByte(out, at + j - 4, (sc[j]! >> 4) << 6);
      orByte(out, at + j, (mn[j]! >> 4) << 6);
    }
  }
}

/** Q4_K (levels 15) and Q5_K (31): per sub-block of 32, value = d*sc*q - dmin*m, q in [0, levels]. */
function quantizeK45(values: Float32Array, levels: 15 | 31): Uint8Array {
  const blocks = checkK(levels === 15 ? 'Q4_K' : 'Q5_K', values);
  const size = levels === 15 ? 144 : 176;
  const out = new Uint8Array(blocks * size);
  for (let b = 0; b < blocks; b++) {
    const x = values.subarray(b * QK_K, (b + 1) * QK_K);
    const at = b * size;
    const scales: number[] = [];
    const mins: number[] = [];
    for (let s = 0; s < 8; s++) {
      let lo = 0;
      let hi = 0;
      for (let l = 0; l < 32; l++) {
        lo = Math.min(lo, x[32 * s + l]!);
        hi = Math.max(hi, x[32 * s + l]!);
      }
      scales.push((hi - lo) / levels);
      mins.push(-lo);
    }
    const d = putHalf(out, at, Math.max(...scales) / 63);
    const dmin = putHalf(out, at + 2, Math.max(...mins) / 63);
    const sc = scales.map((v) => (d ? Math.min(63, Math.round(v / d)) : 0));
    const mn = mins.map((v) => (dmin ? Math.min(63, Math.round(v / dmin)) : 0));
    packScalesK4(out, at + 4, sc, mn);
    const qs = at + (levels === 15 ? 16 : 48);
    for (let s = 0; s < 8; s++) {
      const step = d * sc[s]!;
      const offset = dmin * mn[s]!;
      for (let l = 0; l < 32; l++) {
        const q = step ? Math.max(0, Math.min(levels, Math.round((x[32 * s + l]! + offset) / step))) : 0;
        // Sub-blocks 2c and 2c + 1 share bytes [32c, 32c + 32): low and high nibbles.
        orByte(out, qs + 32 * (s >> 1) + l, (q & 15) << (4 * (s & 1)));
        if (q > 15) orByte(out, at + 16 + l, 1 << s);
      }
    }
  }
  return out;
}

/** `values` (rows of a multiple of 256) as Q4_K super-blocks. */
export const quantizeQ4_K = (values: Float32Array): Uint8Array => quantizeK45(values, 15);

/** `values` (rows of a multiple of 256) as Q5_K super-blocks. */
export const quantizeQ5_K = (values: Float32Array): Uint8Array => quantizeK45(values, 31);

/** `values` (rows of a multiple of 256) as Q6_K super-blocks: value = d * sc * (q - 32), sc int8 per 16. */
export function quantizeQ6_K(values: Float32Array): Uint8Array {
  const blocks = checkK('Q6_K', values);
  const out = new Uint8Array(blocks * 210);
  for (let b = 0; b < blocks; b++) {
    const x = values.subarray(b * QK_K, (b + 1) * QK_K);
    const at = b * 210;
    const scales: number[] = [];
    for (let s = 0; s < 16; s++) {
      let amax = 0;
      for (let l = 0; l < 16; l++) amax = Math.max(amax, Math.abs(x[16 * s + l]!));
      scales.push(amax / 31);
    }
    const d = putHalf(out, at + 208, Math.max(...scales) / 127);
    const sc = scales.map((v) => (d ? Math.min(127, Math.round(v / d)) : 0));
    sc.forEach((v, s) => (out[at + 192 + s] = v));
    for (let i = 0; i < QK_K; i++) {
      const step = d * sc[i >> 4]!;
      const code = (step ? Math.max(-32, Math.min(31, Math.round(x[i]! / step))) : 0) + 32;
      // Value i: half n = i >> 7, quarter k = (i >> 5) & 3, l = i & 31 (gguf-dequant.ts's Q6_K).
      const n = i >> 7;
      const k = (i >> 5) & 3;
      const l = i & 31;
      orByte(out, at + 64 * n + l + 32 * (k & 1), (code & 15) << (k < 2 ? 0 : 4));
      orByte(out, at + 128 + 32 * n + l, (code >> 4) << (2 * k));
    }
  }
  return out;
}
