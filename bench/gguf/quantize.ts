// GGML's Q4_0 and Q8_0 quantization, as llama.cpp's reference quantizer does it, for the GGUF files
// of benchmarks and tests. Both: blocks of 32 values, each an f16 scale d then the codes.
//  - Q4_0: 16 bytes of 4-bit codes (byte j holds value j in its low nibble, value j + 16 in its high
//    one); a value is (code - 8) * d; d = m / -8 where m is the block's value of largest magnitude,
//    so m maps to code 0.
//  - Q8_0: 32 signed bytes; a value is code * d; d = max |x| / 127, code = round(x / d).

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
    const bits = numberToF16Bits(d);
    out[b * 18] = bits & 0xff;
    out[b * 18 + 1] = bits >> 8;
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
    const bits = numberToF16Bits(d);
    out[b * 34] = bits & 0xff;
    out[b * 34 + 1] = bits >> 8;
    // roundf: halves away from zero.
    for (let i = 0; i < 32; i++) {
      const v = Math.fround(x[i]! * id);
      out[b * 34 + 2 + i] = (Math.sign(v) * Math.round(Math.abs(v))) & 0xff;
    }
  }
  return out;
}

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
