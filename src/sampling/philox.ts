// The counter-based RNG sampling and stochastic speculative acceptance draw from: Philox-4x32-10
// (Salmon et al., SC'11; Random123), key = the 64-bit seed as (low, high) u32 words, counter =
// (tokenIndex, stream, 0, 0) with stream 0 for sampling. The uniform is the first output word's
// high 24 bits / 2^24: exact in f32, in [0, 1 - 2^-24]. shaders/sample.wgsl computes the same words.

import { splitSeed } from './params.js';

const PHILOX_M0 = 0xd2511f53;
const PHILOX_M1 = 0xcd9e8d57;
const PHILOX_W0 = 0x9e3779b9;
const PHILOX_W1 = 0xbb67ae85;

/** High 32 bits of the 64-bit product of two u32 (exact, via 16-bit halves). */
export function mulhi32(a: number, b: number): number {
  const aLo = a & 0xffff;
  const aHi = a >>> 16;
  const bLo = b & 0xffff;
  const bHi = b >>> 16;
  const ll = aLo * bLo;
  const lh = aLo * bHi;
  const hl = aHi * bLo;
  const hh = aHi * bHi;
  const mid = (ll >>> 16) + (lh & 0xffff) + (hl & 0xffff);
  return (hh + Math.floor(lh / 65536) + Math.floor(hl / 65536) + Math.floor(mid / 65536)) >>> 0;
}

/** Philox-4x32-10 of a 4-word counter under a 2-word key (Random123's philox4x32_10). */
export function philox4x32(counter: ArrayLike<number>, key: ArrayLike<number>): Uint32Array {
  let c0 = counter[0]! >>> 0;
  let c1 = counter[1]! >>> 0;
  let c2 = counter[2]! >>> 0;
  let c3 = counter[3]! >>> 0;
  let k0 = key[0]! >>> 0;
  let k1 = key[1]! >>> 0;
  for (let round = 0; round < 10; round++) {
    if (round > 0) {
      k0 = (k0 + PHILOX_W0) >>> 0;
      k1 = (k1 + PHILOX_W1) >>> 0;
    }
    const hi0 = mulhi32(PHILOX_M0, c0);
    const lo0 = Math.imul(PHILOX_M0, c0) >>> 0;
    const hi1 = mulhi32(PHILOX_M1, c2);
    const lo1 = Math.imul(PHILOX_M1, c2) >>> 0;
    [c0, c1, c2, c3] = [(hi1 ^ c1 ^ k0) >>> 0, lo1, (hi0 ^ c3 ^ k1) >>> 0, lo0];
  }
  return new Uint32Array([c0, c1, c2, c3]);
}

/** The uniform in [0, 1) that sampling draws for (seed, tokenIndex): high 24 bits / 2^24. */
export function samplingUniform(seed: bigint | number, tokenIndex: number, stream = 0): number {
  const [lo, hi] = splitSeed(seed);
  const x = philox4x32([tokenIndex >>> 0, stream >>> 0, 0, 0], [lo, hi])[0]!;
  return (x >>> 8) / 16777216;
}
