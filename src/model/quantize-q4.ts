// 4-bit symmetric group quantization ("q4", like llama.cpp's Q4_0), done on the CPU at load time.
//
// A matrix [rows, cols] in HF Linear layout (cols = K, a multiple of 32) is cut into groups of 32
// consecutive elements of a row. Per group: m = the element of largest |m| (the first such, in
// order), d = m / -8 rounded to f16 (d16), and each element x becomes
// q = clamp(round(x / d16) + 8, 0, 15) (q = 8 when d16 is 0), where round is Math.round (halves
// toward +infinity) of the float64 quotient. The value it stands for is (q - 8) * d16, exact in f32.
// So m itself maps to q = 0 (-8 * d16), and only elements of the opposite sign near |m| clamp at 15.
//
// Buffer layout of one matrix (or one row chunk of it), n = rows * cols elements:
//   words [0, n/8):            nibbles, 8 per u32 in element order, low nibble first;
//   words [n/8, n/8 + ceil(n/64)): the f16 scales, 2 per u32, group j in half j % 2 (low first).
// Little-endian throughout, like WebGPU buffers.
//
// A GGUF file's Q4_0 matrices are this format already (the same groups, codes and f16 scales, laid
// out per block): q4FromGgmlQ4_0 re-lays them out, bit for bit, and the upload uses that instead
// of quantizing their dequantized values again.

import { f16BitsToNumber } from '../numeric/half.js';
import { DTYPE_BYTES, type SafetensorsDtype } from './safetensors.js';
import { describeValue } from './describe.js';

export const Q4_GROUP = 32;

/** How weights are stored on the GPU: as the files have them, or quantized to q4 at load. */
export type WeightQuantization = 'none' | 'q4';
export const WEIGHT_QUANTIZATIONS: readonly WeightQuantization[] = ['none', 'q4'];

/** A bad quantization option or input; names what was given and what would have been valid. */
export class QuantizeError extends Error {
  override name = 'QuantizeError';

  constructor(
    readonly input: string,
    readonly problem: string,
    readonly valid: string,
  ) {
    super(`${input}: ${problem} (expected ${valid})`);
  }
}

/** Check a `quantize` option from a caller (JS callers may pass anything). */
export function parseQuantization(value: unknown, field = 'quantize'): WeightQuantization {
  if (value === undefined) return 'none';
  if (typeof value === 'string' && (WEIGHT_QUANTIZATIONS as readonly string[]).includes(value)) return value as WeightQuantization;
  throw new QuantizeError(`${field} ${describeValue(value)}`, 'is not a weight quantization', WEIGHT_QUANTIZATIONS.map((q) => `'${q}'`).join(' or '));
}

function checkShape(rows: number, cols: number, what: string): void {
  if (!Number.isInteger(rows) || rows < 0) throw new QuantizeError(`${what}: rows ${rows}`, 'is not a non-negative integer', 'a row count');
  if (!Number.isInteger(cols) || cols <= 0 || cols % Q4_GROUP !== 0) {
    throw new QuantizeError(`${what}: ${cols} columns`, 'cannot be cut into q4 groups', `a positive multiple of ${Q4_GROUP}`);
  }
}

/** Bytes of a q4 [rows, cols] matrix: nibbles, then the scales padded to a whole u32. */
export function q4Bytes(rows: number, cols: number): number {
  checkShape(rows, cols, 'q4Bytes');
  const n = rows * cols;
  return n / 2 + 4 * Math.ceil(n / (2 * Q4_GROUP));
}

/** Bytes per row of a q4 matrix (nibbles + scales; the whole buffer may add 2 bytes of padding). */
export function q4RowBytes(cols: number): number {
  checkShape(1, cols, 'q4RowBytes');
  return cols / 2 + (2 * cols) / Q4_GROUP;
}

// f16 bits -> value, for F16 sources and for d16 (exact: every f16 is an f32).
let f16Table: Float32Array | null = null;
function f16Values(): Float32Array {
  if (!f16Table) {
    f16Table = new Float32Array(65536);
    for (let h = 0; h < 65536; h++) f16Table[h] = f16BitsToNumber(h);
  }
  return f16Table;
}

const f32Box = new Float32Array(1);
const u32Box = new Uint32Array(f32Box.buffer);

/** Nearest f16 (round half to even) of an f32 value, by its bits (the hot path: once per group). */
export function f32ToF16Bits(value: number): number {
  f32Box[0] = value;
  const x = u32Box[0]!;
  const sign = (x >>> 16) & 0x8000;
  const exp = (x >>> 23) & 0xff;
  const mant = x & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant ? 0x200 : 0);
  const e = exp - 127 + 15;
  if (e >= 31) return sign | 0x7c00;
  if (e <= 0) {
    // f16 subnormal (or zero): multiples of 2^-24.
    if (e < -10) return sign;
    const m = mant | 0x800000;
    const shift = 14 - e;
    let h = m >>> shift;
    const rem = m & ((1 << shift) - 1);
    const half = 1 << (shift - 1);
    if (rem > half || (rem === half && h & 1)) h++;
    return sign | h;
  }
  let h = (e << 10) | (mant >>> 13);
  const rem = mant & 0x1fff;
  // A carry out of the fraction bumps the exponent, up to infinity: the right bits either way.
  if (rem > 0x1000 || (rem === 0x1000 && h & 1)) h++;
  return sign | h;
}

// Elements converted to f32 at a time (a multiple of the group; small enough to stay in cache).
const BLOCK = 8192;

/** Copy `len` elements from `start` of raw `data` into `out` as f32 values. */
function toF32(data: Uint8Array, dtype: SafetensorsDtype, start: number, len: number, out: Float32Array, raw: Uint16Array): void {
  const size = DTYPE_BYTES[dtype];
  const src = data.subarray(start * size, (start + len) * size);
  if (dtype === 'F32') {
    // A byte copy: the source may sit at any offset of its file.
    new Uint8Array(out.buffer, 0, len * 4).set(src);
    return;
  }
  new Uint8Array(raw.buffer, 0, len * 2).set(src);
  if (dtype === 'BF16') {
    const bits = new Uint32Array(out.buffer);
    for (let i = 0; i < len; i++) bits[i] = raw[i]! << 16;
  } else {
    const table = f16Values();
    for (let i = 0; i < len; i++) out[i] = table[raw[i]!]!;
  }
}

/**
 * Quantize a row-major [rows, cols] matrix of F32, F16 or BF16 bytes (as a safetensors file holds
 * them) to the q4 layout. `label` names the tensor in errors.
 */
export function quantizeQ4(data: Uint8Array, dtype: SafetensorsDtype, rows: number, cols: number, label = 'tensor'): Uint8Array {
  checkShape(rows, cols, label);
  const size = DTYPE_BYTES[dtype];
  if (size === undefined) throw new QuantizeError(`${label}: dtype ${String(dtype)}`, 'cannot be quantized', 'F32, F16 or BF16');
  const n = rows * cols;
  if (data.byteLength !== n * size) throw new QuantizeError(`${label}: ${data.byteLength} bytes`, `do not hold ${rows}x${cols} ${dtype}`, `${n * size} bytes`);
  const out = new Uint8Array(q4Bytes(rows, cols));
  const nibbles = new Uint32Array(out.buffer, 0, n / 8);
  const scales = new Uint16Array(out.buffer, n / 2, (out.byteLength - n / 2) / 2);
  const table = f16Values();
  const x = new Float32Array(BLOCK);
  const raw = new Uint16Array(BLOCK);
  for (let start = 0; start < n; start += BLOCK) {
    const len = Math.min(BLOCK, n - start);
    toF32(data, dtype, start, len, x, raw);
    for (let g = 0; g < len; g += Q4_GROUP) {
      let m = 0;
      let am = 0;
      for (let i = g; i < g + Q4_GROUP; i++) {
        const v = x[i]!;
        const a = Math.abs(v);
        if (a > am) {
          am = a;
          m = v;
        } else if (v !== v) {
          throw new QuantizeError(`${label}: element ${start + i}`, 'is NaN', 'finite weights');
        }
      }
      // m / -8 is exact in f32 (f32 subnormals aside, which are 0 in f16 anyway).
      const bits = am === 0 ? 0 : f32ToF16Bits(m / -8);
      const d = table[bits]!;
      if (!Number.isFinite(d)) throw new QuantizeError(`${label}: element of magnitude ${am} near ${start + g}`, 'overflows the f16 scale', `|weights| <= ${8 * 65504}`);
      const group = (start + g) / Q4_GROUP;
      scales[group] = bits;
      for (let w = 0; w < Q4_GROUP / 8; w++) {
        let word = 0;
        const base = g + 8 * w;
        for (let e = 0; e < 8; e++) {
          let q = 8;
          if (d !== 0) {
            q = Math.round(x[base + e]! / d) + 8;
            q = q < 0 ? 0 : q > 15 ? 15 : q;
          }
          word |= q << (4 * e);
        }
        nibbles[group * 4 + w] = word;
      }
    }
  }
  return out;
}

/** The values a q4 buffer stands for, (q - 8) * d16, as float64 (exact). */
export function dequantizeQ4(packed: Uint8Array, rows: number, cols: number): Float64Array {
  checkShape(rows, cols, 'dequantizeQ4');
  const n = rows * cols;
  if (packed.byteLength !== q4Bytes(rows, cols)) throw new QuantizeError(`dequantizeQ4: ${packed.byteLength} bytes`, `are not a q4 ${rows}x${cols} matrix`, `${q4Bytes(rows, cols)} bytes`);
  const view = new DataView(packed.buffer, packed.byteOffset, packed.byteLength);
  const out = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    const q = (view.getUint32(4 * (i >>> 3), true) >>> (4 * (i & 7))) & 0xf;
    const d = f16BitsToNumber(view.getUint16(n / 2 + 2 * Math.floor(i / Q4_GROUP), true));
    out[i] = (q - 8) * d;
  }
  return out;
}

/** GGML Q4_0 blocks: 32 values, an f16 scale then 16 bytes (value j low nibble, j + 16 high). */
const Q4_0_BLOCK_BYTES = 18;

/**
 * A matrix of GGML Q4_0 blocks (row-major, `cols / 32` blocks per row, as a GGUF file holds it) in
 * the q4 layout, re-laid-out only: Q4_0's value (nibble - 8) * d is q4's (q - 8) * d16, so each
 * group keeps its file's f16 scale bits and codes and stands for exactly the file's values (no
 * dequantize / requantize; requantizing them is lossy where a block lacks code 0, as llama.cpp's
 * importance-matrix quantizer writes).
 */
export function q4FromGgmlQ4_0(blocks: Uint8Array, rows: number, cols: number, label = 'tensor'): Uint8Array {
  checkShape(rows, cols, label);
  const groups = (rows * cols) / Q4_GROUP;
  if (blocks.byteLength !== groups * Q4_0_BLOCK_BYTES) {
    throw new QuantizeError(`${label}: ${blocks.byteLength} bytes`, `are not ${rows}x${cols} Q4_0 blocks`, `${groups * Q4_0_BLOCK_BYTES} bytes`);
  }
  const n = rows * cols;
  const out = new Uint8Array(q4Bytes(rows, cols));
  for (let g = 0; g < groups; g++) {
    const at = g * Q4_0_BLOCK_BYTES;
    out[n / 2 + 2 * g] = blocks[at]!;
    out[n / 2 + 2 * g + 1] = blocks[at + 1]!;
    // q4 byte k of the group: elements 2k (low nibble) and 2k + 1 (high); Q4_0 holds element e in
    // byte e % 16, low nibble for e < 16.
    const nib = (e: number): number => (e < 16 ? blocks[at + 2 + e]! & 15 : blocks[at + 2 + e - 16]! >> 4);
    for (let k = 0; k < 16; k++) out[g * 16 + k] = nib(2 * k) | (nib(2 * k + 1) << 4);
  }
  return out;
}

/** A matrix loaded from GGML Q4_0 blocks: its dequantized values as the Tensor, and the blocks themselves. */
export interface GgmlQ4_0Source {
  /** Row-major Q4_0 blocks of the matrix, rows in the Tensor's (HF) order. */
  ggmlQ4_0: Uint8Array;
}

export function hasGgmlQ4_0<T extends object>(t: T): t is T & GgmlQ4_0Source {
  return (t as Partial<GgmlQ4_0Source>).ggmlQ4_0 instanceof Uint8Array;
}
