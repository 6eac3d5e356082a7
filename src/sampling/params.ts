// Sampling parameters: what one row asks of the sampler (shaders/sample.wgsl through
// src/kernels/sampling.ts) and their validation, and the seed's split into the Philox key. The
// semantics (temperature, top-k, top-p, ties, weights) are documented in warp.ts; the float64
// reference the kernel is tested against is src/reference/sampling.ts.

import { GpuUsageError } from '../gpu/errors.js';

/** One row's sampling request (src/kernels/sampling.ts packs these for the GPU). */
export interface SamplingParams {
  /** >= 0; 0 is greedy argmax. Used as float32. */
  temperature: number;
  /** Keep the k most likely tokens (ties kept, see above); 0 is off. An integer in [0, 2^32). */
  topK: number;
  /** Nucleus mass in (0, 1]; 1 is off. Used as float32. */
  topP: number;
  /** A u64 (bigint, or a non-negative safe integer). */
  seed: bigint | number;
  /** The position of the token being sampled in its request's output (a u32): the RNG counter. */
  tokenIndex: number;
}

/** A sampling parameter out of range; names the row (in a batch) and the field. */
export class SamplingParamsError extends GpuUsageError {
  override name = 'SamplingParamsError';

  constructor(
    readonly row: number,
    readonly field: keyof SamplingParams,
    detail: string,
  ) {
    super(`sampling params of row ${row}: ${field} ${detail}`);
  }
}

const MIN_NORMAL_F32 = 2 ** -126;

/** Throws SamplingParamsError unless `p` is a valid request. */
export function validateSamplingParams(p: SamplingParams, row = 0): void {
  const t = p.temperature;
  if (typeof t !== 'number' || !Number.isFinite(t) || t < 0) {
    throw new SamplingParamsError(row, 'temperature', `must be a finite number >= 0 (0 = greedy), got ${String(t)}`);
  }
  if (t > 0 && Math.abs(Math.fround(t)) < MIN_NORMAL_F32) {
    throw new SamplingParamsError(row, 'temperature', `${t} is below float32's normal range; use 0 for greedy`);
  }
  const k = p.topK;
  if (typeof k !== 'number' || !Number.isInteger(k) || k < 0 || k > 0xffffffff) {
    throw new SamplingParamsError(row, 'topK', `must be an integer in [0, 2^32) (0 = off), got ${String(k)}`);
  }
  const q = p.topP;
  if (typeof q !== 'number' || !(q > 0 && q <= 1)) {
    throw new SamplingParamsError(row, 'topP', `must be in (0, 1] (1 = off), got ${String(q)}`);
  }
  const ti = p.tokenIndex;
  if (typeof ti !== 'number' || !Number.isInteger(ti) || ti < 0 || ti > 0xffffffff) {
    throw new SamplingParamsError(row, 'tokenIndex', `must be an integer in [0, 2^32), got ${String(ti)}`);
  }
  splitSeedAt(p.seed, row);
}

function splitSeedAt(seed: bigint | number, row: number): [number, number] {
  if (typeof seed === 'bigint') {
    if (seed < 0n || seed >= 1n << 64n) throw new SamplingParamsError(row, 'seed', `must be in [0, 2^64), got ${seed}`);
    return [Number(seed & 0xffffffffn), Number(seed >> 32n)];
  }
  if (typeof seed !== 'number' || !Number.isSafeInteger(seed) || seed < 0) {
    throw new SamplingParamsError(row, 'seed', `must be a non-negative safe integer or a bigint below 2^64, got ${String(seed)}`);
  }
  return [seed % 2 ** 32, Math.floor(seed / 2 ** 32)];
}

/** The seed as its (low, high) u32 words: the Philox key. */
export function splitSeed(seed: bigint | number): [number, number] {
  return splitSeedAt(seed, 0);
}
