// The load-time q4 quantizer: its buffer layout on a hand-built example, its codes and scales
// against the element-by-element float64 reference (src/reference/q4.ts), the error bound, the
// edge cases (zero groups, clamping, bad shapes and values) and the three source dtypes.

import { describe, expect, it } from 'vitest';
import { dequantizeQ4, f32ToF16Bits, parseQuantization, q4Bytes, q4RowBytes, QuantizeError, quantizeQ4 } from '../../src/model/quantize-q4.js';
import type { SafetensorsDtype } from '../../src/model/safetensors.js';
import { f16BitsToNumber, numberToF16Bits, toBf16Array, toF16Array, fromBf16Array } from '../../src/numeric/half.js';
import { q4Reference } from '../../src/reference/q4.js';
import { randomF32, rng } from '../helpers/random.js';

const bytesOf = (a: ArrayBufferView): Uint8Array => new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
const words = (a: Uint8Array): number[] => Array.from(new Uint32Array(a.buffer, a.byteOffset, a.byteLength / 4));

function source(values: ArrayLike<number>, dtype: SafetensorsDtype): Uint8Array {
  if (dtype === 'F32') return bytesOf(Float32Array.from(values));
  return bytesOf(dtype === 'F16' ? toF16Array(values) : toBf16Array(values));
}

/** The 4-bit code of element i of a q4 buffer, read by the layout's definition. */
function codeAt(buf: Uint8Array, i: number): number {
  return (buf[i >> 1]! >> (4 * (i & 1))) & 0xf;
}

describe('q4 layout', () => {
  it('packs a hand-built 1x96 matrix: nibbles low first, scales after them, padded to a word', () => {
    const x = new Float32Array(96);
    // Group 0: -16 is the largest magnitude, so d16 = 2 and x = 2 (q - 8) with q = i % 16.
    for (let i = 0; i < 32; i++) x[i] = 2 * ((i % 16) - 8);
    // Group 1: all zero. Group 2: +4 is the largest, so d16 = -0.5: 4 -> q 0, -4 -> 16, clamped to 15.
    x[64] = 4;
    x[65] = -4;
    x[66] = 1;
    const buf = quantizeQ4(source(x, 'F32'), 'F32', 1, 96);
    expect(buf.byteLength).toBe(48 + 8);
    expect(q4Bytes(1, 96)).toBe(56);
    expect(words(buf)).toEqual([
      0x76543210,
      0xfedcba98,
      0x76543210,
      0xfedcba98, // group 0
      0x88888888,
      0x88888888,
      0x88888888,
      0x88888888, // group 1
      0x888886f0,
      0x88888888,
      0x88888888,
      0x88888888, // group 2: q 0, 15, 6, then 8s
      0x00004000, // scales of groups 0 (2.0) and 1 (0)
      0xb800, // scale of group 2 (-0.5), and the padding half
    ]);
    const back = dequantizeQ4(buf, 1, 96);
    expect(Array.from(back.subarray(0, 32))).toEqual(Array.from(x.subarray(0, 32)));
    expect(Array.from(back.subarray(32, 64)).every((v) => v === 0)).toBe(true);
    expect([back[64], back[65], back[66]]).toEqual([4, -3.5, 1]);
  });

  it('sizes: 18 bytes per 32 weights, chunks of odd group counts padded to a word', () => {
    expect(q4RowBytes(32)).toBe(18);
    expect(q4RowBytes(1536)).toBe(864);
    expect(q4Bytes(3, 32)).toBe(48 + 8);
    expect(q4Bytes(4, 32)).toBe(64 + 8);
    expect(q4Bytes(0, 64)).toBe(0);
  });
});

describe('q4 values', () => {
  it('values on a group grid round-trip exactly, with the codes they were built from', () => {
    const r = rng(7);
    const rows = 8;
    const cols = 128;
    const x = new Float32Array(rows * cols);
    const codes = new Uint8Array(rows * cols);
    for (let g = 0; g < (rows * cols) / 32; g++) {
      // A scale that is an f16 value (normal or subnormal), of either sign.
      const d = f16BitsToNumber((r() < 0.5 ? 0x8000 : 0) | Math.floor(1 + r() * 0x77ff));
      for (let i = 0; i < 32; i++) codes[32 * g + i] = Math.floor(r() * 16);
      codes[32 * g + Math.floor(r() * 32)] = 0; // the -8 d element: the group's max magnitude
      for (let i = 0; i < 32; i++) x[32 * g + i] = (codes[32 * g + i]! - 8) * d;
    }
    const buf = quantizeQ4(source(x, 'F32'), 'F32', rows, cols);
    const back = dequantizeQ4(buf, rows, cols);
    for (let i = 0; i < x.length; i++) {
      if (back[i] !== x[i] || codeAt(buf, i) !== codes[i]) expect.fail(`element ${i}: ${x[i]} (code ${codes[i]}) came back ${back[i]} (code ${codeAt(buf, i)})`);
    }
  });

  it.each(['F32', 'F16', 'BF16'] as const)('%s source: codes and scales equal the float64 reference; |x - q4(x)| <= |d16|/2 unless clamped', (dtype) => {
    const rows = 24;
    const cols = 160;
    const raw = randomF32(rows * cols, dtype.length * 31, 0.3);
    // Some groups with an outlier, some all zero, some tiny (subnormal f16 scales).
    for (let i = 0; i < raw.length; i += 97) raw[i] = raw[i]! * 40;
    raw.fill(0, 32 * 5, 32 * 6);
    for (let i = 32 * 9; i < 32 * 10; i++) raw[i] = raw[i]! * 1e-6;
    const src = source(raw, dtype);
    const exact = dtype === 'F32' ? Float64Array.from(raw) : dtype === 'F16' ? Float64Array.from(toF16Array(raw), f16BitsToNumber) : fromBf16Array(toBf16Array(raw));
    const buf = quantizeQ4(src, dtype, rows, cols);
    const ref = q4Reference(exact, rows, cols);
    const n = rows * cols;
    expect(Array.from(new Uint16Array(buf.buffer, n / 2, n / 32))).toEqual(Array.from(ref.scaleBits));
    const back = dequantizeQ4(buf, rows, cols);
    let clamped = 0;
    for (let g = 0; g < n / 32; g++) {
      const d = f16BitsToNumber(ref.scaleBits[g]!);
      let maxAt = 32 * g;
      for (let i = 32 * g; i < 32 * g + 32; i++) if (Math.abs(exact[i]!) > Math.abs(exact[maxAt]!)) maxAt = i;
      // With a normal f16 scale (relative rounding <= 2^-11) m / d16 rounds to -8 exactly; a
      // subnormal scale can be far off (the tiny group 9), and then m need not be code 0.
      if (Math.abs(d) >= 2 ** -14) expect(codeAt(buf, maxAt), `group ${g}: its largest element is code 0`).toBe(0);
      for (let i = 32 * g; i < 32 * g + 32; i++) {
        if (codeAt(buf, i) !== ref.q[i]) expect.fail(`element ${i}: code ${codeAt(buf, i)}, reference ${ref.q[i]}`);
        expect(back[i]).toBe(ref.values[i]);
        const err = Math.abs(exact[i]! - back[i]!);
        if (d === 0) {
          // Only a group too small for an f16 scale rounds to zero.
          expect(Math.abs(exact[maxAt]!)).toBeLessThan(8 * 2 ** -25);
          continue;
        }
        const ratio = exact[i]! / d;
        if (ratio > 7.5 || ratio < -8.5) {
          clamped++;
          expect(codeAt(buf, i)).toBe(ratio > 0 ? 15 : 0);
          continue;
        }
        if (err > (Math.abs(d) / 2) * (1 + 1e-12)) expect.fail(`element ${i}: |${exact[i]} - ${back[i]}| = ${err} > |d16|/2 = ${Math.abs(d) / 2}`);
      }
    }
    // Clamping is rare: only elements of the opposite sign to m and within 1/16 of |m| clamp.
    expect(clamped).toBeLessThan(n / 32);
  });

  it('all-zero groups (and -0) are scale 0 and code 8', () => {
    const x = new Float32Array(64);
    x[3] = -0;
    const buf = quantizeQ4(source(x, 'F32'), 'F32', 2, 32);
    expect(words(buf)).toEqual([...Array<number>(8).fill(0x88888888), 0]);
    expect(Array.from(dequantizeQ4(buf, 2, 32)).every((v) => v === 0)).toBe(true);
  });

  it('gives the same buffer for one set of values as F32, F16 and BF16, at any byte offset', () => {
    // Values exact in all three dtypes: small integers times powers of two.
    const r = rng(3);
    const x = Float32Array.from({ length: 4 * 64 }, () => (Math.floor(r() * 64) - 32) * 2 ** -Math.floor(r() * 6));
    const expected = quantizeQ4(source(x, 'F32'), 'F32', 4, 64);
    for (const dtype of ['F16', 'BF16', 'F32'] as const) {
      const bytes = source(x, dtype);
      const shifted = new Uint8Array(bytes.byteLength + 1).subarray(1);
      shifted.set(bytes);
      expect(quantizeQ4(shifted, dtype, 4, 64), dtype).toEqual(expected);
    }
  });
});

describe('q4 errors', () => {
  it('rejects K not a multiple of 32, a wrong byte count, NaN and scales beyond f16', () => {
    expect(() => quantizeQ4(new Uint8Array(4 * 48), 'F32', 1, 48)).toThrow(QuantizeError);
    expect(() => quantizeQ4(new Uint8Array(4 * 48), 'F32', 1, 48)).toThrow(/48 columns.*multiple of 32/);
    expect(() => q4RowBytes(100)).toThrow(/multiple of 32/);
    expect(() => quantizeQ4(new Uint8Array(4 * 31), 'F32', 1, 32, 'layer 0 o')).toThrow(/layer 0 o: 124 bytes.*128 bytes/);
    const nan = new Float32Array(32);
    nan[5] = NaN;
    expect(() => quantizeQ4(bytesOf(nan), 'F32', 1, 32, 'w')).toThrow(/element 5.*NaN/);
    const huge = new Float32Array(32);
    huge[0] = 1e6;
    expect(() => quantizeQ4(bytesOf(huge), 'F32', 1, 32, 'w')).toThrow(/overflows the f16 scale/);
  });

  it('parses the quantize option, naming the valid values', () => {
    expect(parseQuantization(undefined)).toBe('none');
    expect(parseQuantization('q4')).toBe('q4');
    expect(parseQuantization('none')).toBe('none');
    expect(() => parseQuantization('q8')).toThrow(QuantizeError);
    expect(() => parseQuantization('q8')).toThrow(`quantize "q8": is not a weight quantization (expected 'none' or 'q4')`);
    expect(() => parseQuantization(4)).toThrow(/quantize 4/);
  });
});

describe('f32ToF16Bits (the scale rounding)', () => {
  it('equals the reference conversion on random, tie, subnormal and overflow values', () => {
    const r = rng(11);
    const values: number[] = [0, -0, 65504, 65519, 65520, 1e9, -1e9, 2 ** -24, 2 ** -25, 3 * 2 ** -26, 2 ** -26, 1 + 2 ** -11, 1 + 3 * 2 ** -11, Infinity, -Infinity];
    for (let i = 0; i < 20000; i++) values.push(Math.fround((r() - 0.5) * 2 ** (Math.floor(r() * 50) - 30)));
    // Exact halfway points between neighbouring f16 values, normal and subnormal.
    for (let h = 0; h < 0x7bff; h += 37) values.push((f16BitsToNumber(h) + f16BitsToNumber(h + 1)) / 2);
    for (const v of values) {
      const f = Math.fround(v);
      if (f32ToF16Bits(f) !== numberToF16Bits(f)) expect.fail(`${f}: ${f32ToF16Bits(f).toString(16)} vs ${numberToF16Bits(f).toString(16)}`);
    }
  });
});
