// IEEE 754 binary16 and bfloat16 conversions on the CPU (weights arrive as F16/BF16 bits).

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

/** Exact value of a binary16 bit pattern. */
export function f16BitsToNumber(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exp = (h >> 10) & 0x1f;
  const frac = h & 0x3ff;
  if (exp === 0) return sign * frac * 2 ** -24;
  if (exp === 31) return frac ? NaN : sign * Infinity;
  return sign * (1 + frac / 1024) * 2 ** (exp - 15);
}

/** Nearest binary16 (round half to even) of a number; overflow gives infinity. */
export function numberToF16Bits(value: number): number {
  if (Number.isNaN(value)) return 0x7e00;
  const sign = value < 0 || Object.is(value, -0) ? 0x8000 : 0;
  let a = Math.abs(value);
  if (a === Infinity) return sign | 0x7c00;
  // Subnormals: multiples of 2^-24.
  if (a < 2 ** -14) {
    const q = roundHalfEven(a / 2 ** -24);
    return sign | q; // q == 1024 rolls into the smallest normal, which is the right bit pattern
  }
  let exp = Math.floor(Math.log2(a));
  // log2 can be off by one near powers of two.
  if (2 ** exp > a) exp--;
  if (2 ** (exp + 1) <= a) exp++;
  a = a / 2 ** exp - 1; // fraction in [0, 1)
  let frac = roundHalfEven(a * 1024);
  if (frac === 1024) {
    frac = 0;
    exp++;
  }
  if (exp > 15) return sign | 0x7c00;
  return sign | ((exp + 15) << 10) | frac;
}

function roundHalfEven(x: number): number {
  const f = Math.floor(x);
  const d = x - f;
  if (d > 0.5) return f + 1;
  if (d < 0.5) return f;
  return f % 2 === 0 ? f : f + 1;
}

/** Exact value of a bfloat16 bit pattern (the high half of an f32). */
export function bf16BitsToNumber(b: number): number {
  u32[0] = (b & 0xffff) << 16;
  return f32[0]!;
}

export function toF16Array(values: ArrayLike<number>): Uint16Array {
  const out = new Uint16Array(values.length);
  for (let i = 0; i < values.length; i++) out[i] = numberToF16Bits(values[i]!);
  return out;
}

export function fromF16Array(bits: Uint16Array): Float64Array {
  const out = new Float64Array(bits.length);
  for (let i = 0; i < bits.length; i++) out[i] = f16BitsToNumber(bits[i]!);
  return out;
}

/** Nearest bfloat16 (round half to even) of a number, via its float32. */
export function numberToBf16Bits(value: number): number {
  f32[0] = value;
  const bits = u32[0]!;
  if ((bits & 0x7f800000) === 0x7f800000 && bits & 0x7fffff) return 0x7fc0; // NaN
  const rounded = bits + 0x7fff + ((bits >>> 16) & 1);
  return (rounded >>> 16) & 0xffff;
}

export function toBf16Array(values: ArrayLike<number>): Uint16Array {
  const out = new Uint16Array(values.length);
  for (let i = 0; i < values.length; i++) out[i] = numberToBf16Bits(values[i]!);
  return out;
}

export function fromBf16Array(bits: Uint16Array): Float64Array {
  const out = new Float64Array(bits.length);
  for (let i = 0; i < bits.length; i++) out[i] = bf16BitsToNumber(bits[i]!);
  return out;
}
