// The sampling reference: the Philox RNG against Random123's known answers, the warp's rules
// (temperature, top-k and top-p with their tie rule) against brute force, and parameter checks.

import { describe, expect, it } from 'vitest';
import {
  mulhi32,
  philox4x32,
  sampleDetails,
  sampleReference,
  samplingUniform,
  SamplingParamsError,
  splitSeed,
  validateSamplingParams,
  warpDetails,
  warpedDistribution,
  type SamplingParams,
} from '../../src/reference/sampling.js';
import { GpuUsageError } from '../../src/gpu/errors.js';
import { randomF32, rng } from '../helpers/random.js';

const words = (hex: string): number[] => hex.split(' ').map((h) => parseInt(h, 16));
const hex = (v: ArrayLike<number>): string => Array.from(v, (x) => (x >>> 0).toString(16).padStart(8, '0')).join(' ');

const params = (p: Partial<SamplingParams> = {}): SamplingParams => ({ temperature: 1, topK: 0, topP: 1, seed: 0, tokenIndex: 0, ...p });

describe('Philox-4x32-10', () => {
  // Random123 tests/kat_vectors, "philox4x32 10" lines: counter, key, output.
  it.each([
    ['00000000 00000000 00000000 00000000', '00000000 00000000', '6627e8d5 e169c58d bc57ac4c 9b00dbd8'],
    ['ffffffff ffffffff ffffffff ffffffff', 'ffffffff ffffffff', '408f276d 41c83b0e a20bc7c6 6d5451fd'],
    ['243f6a88 85a308d3 13198a2e 03707344', 'a4093822 299f31d0', 'd16cfe09 94fdcceb 5001e420 24126ea1'],
  ])('counter %s key %s gives the known answer', (ctr, key, out) => {
    expect(hex(philox4x32(words(ctr), words(key)))).toBe(out);
  });

  it('mulhi32 is the exact high word', () => {
    const r = rng(5);
    const cases: [number, number][] = [
      [0xffffffff, 0xffffffff],
      [0, 0xffffffff],
      [0xd2511f53, 0xffffffff],
      [1, 1],
    ];
    for (let i = 0; i < 2000; i++) cases.push([Math.floor(r() * 2 ** 32), Math.floor(r() * 2 ** 32)]);
    for (const [a, b] of cases) expect(mulhi32(a, b)).toBe(Number((BigInt(a) * BigInt(b)) >> 32n));
  });

  it("the uniform is the first word's high 24 bits over 2^24, keyed by seed words and token index", () => {
    const seed = 0x0123456789abcdefn;
    const [lo, hi] = splitSeed(seed);
    expect([lo, hi]).toEqual([0x89abcdef, 0x01234567]);
    expect(splitSeed(2 ** 40 + 7)).toEqual([7, 2 ** 8]);
    const x = philox4x32([77, 0, 0, 0], [lo, hi])[0]!;
    const u = samplingUniform(seed, 77);
    expect(u).toBe((x >>> 8) / 2 ** 24);
    expect(Math.fround(u)).toBe(u);
    expect(samplingUniform(seed, 77, 1)).not.toBe(u);
    // A number seed and the same bigint seed draw the same.
    expect(samplingUniform(2 ** 40 + 7, 3)).toBe(samplingUniform(2n ** 40n + 7n, 3));
  });

  it('uniforms over token indexes are uniform (KS) and differ across seeds', () => {
    const n = 20000;
    const us = Array.from({ length: n }, (_, t) => samplingUniform(42, t)).sort((a, b) => a - b);
    let d = 0;
    us.forEach((u, i) => (d = Math.max(d, Math.abs(u - i / n), Math.abs(u - (i + 1) / n))));
    expect(d).toBeLessThan(1.63 / Math.sqrt(n)); // KS at alpha = 0.01
    expect(Math.max(...us)).toBeLessThan(1);
    expect(Math.min(...us)).toBeGreaterThanOrEqual(0);
    let same = 0;
    for (let t = 0; t < 1000; t++) if (samplingUniform(1, t) === samplingUniform(2, t)) same++;
    expect(same).toBeLessThan(3);
  });
});

/** HF-style warp by brute force over tie groups, for comparing against warpedDistribution. */
function bruteForce(logits: number[], p: SamplingParams): Set<number> {
  const n = logits.length;
  const order = Array.from({ length: n }, (_, i) => i).sort((a, b) => logits[b]! - logits[a]!);
  let keep = new Set(order);
  if (p.topK > 0 && p.topK < n) {
    const kth = logits[order[p.topK - 1]!]!;
    keep = new Set(order.filter((i) => logits[i]! >= kth));
  }
  if (p.topP < 1) {
    const max = logits[order[0]!]!;
    const w = (i: number): number => Math.exp((logits[i]! - max) / p.temperature);
    let Z = 0;
    for (const i of keep) Z += w(i);
    const kept = new Set<number>();
    for (const i of keep) {
      let above = 0;
      for (const j of keep) if (logits[j]! > logits[i]!) above += w(j);
      if (above < Math.fround(p.topP) * Z) kept.add(i);
    }
    keep = kept;
  }
  return keep;
}

describe('warpedDistribution', () => {
  it('temperature 0 is argmax with ties to the lowest id; top_k = 1 without ties too', () => {
    const l = [0.5, 2, -1, 2, 1.5];
    expect(Array.from(warpedDistribution(l, params({ temperature: 0 })))).toEqual([0, 1, 0, 0, 0]);
    expect(sampleReference(l, params({ temperature: 0, tokenIndex: 9 }))).toBe(1);
    const u = [0.5, 2, -1, 1.9, 1.5];
    expect(Array.from(warpedDistribution(u, params({ topK: 1 })))).toEqual([0, 1, 0, 0, 0]);
  });

  it('temperature scales the softmax', () => {
    const l = [1, 2, 3];
    const probs = warpedDistribution(l, params({ temperature: 0.5 }));
    const e = l.map((x) => Math.exp(x / 0.5));
    const z = e.reduce((a, b) => a + b);
    probs.forEach((p, i) => expect(p).toBeCloseTo(e[i]! / z, 14));
  });

  it('top-k keeps every token tied with the k-th largest value', () => {
    const l = [3, 1, 2, 2, 0, 2];
    expect(warpDetails(l, params({ topK: 2 })).kept).toEqual([0, 2, 3, 5]);
    expect(warpDetails(l, params({ topK: 1 })).kept).toEqual([0]);
    expect(warpDetails(l, params({ topK: 5 })).kept).toEqual([0, 1, 2, 3, 5]);
    expect(warpDetails(l, params({ topK: 6 })).kept).toEqual([0, 1, 2, 3, 4, 5]);
    expect(warpDetails(l, params({ topK: 600 })).kept).toEqual([0, 1, 2, 3, 4, 5]);
  });

  it('top-p keeps the smallest prefix reaching top_p, tie groups whole', () => {
    // Probabilities 0.5, 0.25, 0.125, 0.125 (log-weights).
    const l = [Math.log(4), Math.log(2), 0, 0];
    expect(warpDetails(l, params({ topP: 0.5 })).kept).toEqual([0]);
    expect(warpDetails(l, params({ topP: 0.6 })).kept).toEqual([0, 1]);
    expect(warpDetails(l, params({ topP: 0.74 })).kept).toEqual([0, 1]);
    // Past 0.75 the tied pair comes in together.
    expect(warpDetails(l, params({ topP: 0.8 })).kept).toEqual([0, 1, 2, 3]);
    // A tiny top_p keeps the maximum (all of its ties).
    expect(warpDetails([1, 5, 5, 2], params({ topP: 1e-30 })).kept).toEqual([1, 2]);
    const d = warpDetails(l, params({ topP: 0.6 }));
    expect(d.topPMargin).toBeCloseTo(0.1, 6);
    [2 / 3, 1 / 3, 0, 0].forEach((q, i) => expect(d.probs[i]).toBeCloseTo(q, 7));
  });

  it('matches brute force on random rows (top-k then top-p, renormalized)', () => {
    const r = rng(17);
    for (let c = 0; c < 300; c++) {
      const n = 1 + Math.floor(r() * 40);
      // Coarse values so ties are common.
      const l = Array.from({ length: n }, () => Math.fround(Math.round(r() * 12 - 6) / 2));
      const p = params({ temperature: 0.3 + r() * 2, topK: Math.floor(r() * (n + 2)), topP: r() < 0.3 ? 1 : Math.fround(0.05 + r() * 0.95) });
      const got = warpDetails(l, p);
      const expected = [...bruteForce(l, p)].sort((a, b) => a - b);
      expect(got.kept, `case ${c}`).toEqual(expected);
      const sum = got.probs.reduce((a, b) => a + b, 0);
      expect(sum).toBeCloseTo(1, 12);
    }
  });

  it('NaN is -Infinity, -Infinity has no mass, an all -Infinity row is uniform, +Infinity takes all', () => {
    expect(Array.from(warpedDistribution([NaN, 0, -Infinity, 0], params()))).toEqual([0, 0.5, 0, 0.5]);
    expect(Array.from(warpedDistribution([-Infinity, -Infinity], params()))).toEqual([0.5, 0.5]);
    expect(Array.from(warpedDistribution([1, Infinity, 3e38], params()))).toEqual([0, 1, 0]);
    expect(Array.from(warpedDistribution([-0, 0], params({ temperature: 0 })))).toEqual([1, 0]);
    // Weights below e^-87 relative to the maximum are 0 (as in f32 on the GPU).
    expect(Array.from(warpedDistribution([0, -100], params()))).toEqual([1, 0]);
  });
});

describe('sampleReference', () => {
  it('walks the kept ids in increasing order: u * Z against the running sum', () => {
    const l = [0, 0, 0, 0];
    for (let t = 0; t < 50; t++) {
      const u = samplingUniform(9, t);
      expect(sampleReference(l, params({ seed: 9, tokenIndex: t }))).toBe(Math.floor(u * 4));
    }
  });

  it('samples the warped distribution (chi-square)', () => {
    const l = Array.from(randomF32(30, 3, 3));
    const p = params({ temperature: 0.8, topK: 20, topP: 0.9, seed: 1234n });
    const probs = warpedDistribution(l, p);
    const counts = new Float64Array(l.length);
    const N = 20000;
    for (let t = 0; t < N; t++) counts[sampleReference(l, { ...p, tokenIndex: t })]!++;
    let chi = 0;
    let df = -1;
    probs.forEach((q, i) => {
      if (q > 0) {
        chi += (counts[i]! - N * q) ** 2 / (N * q);
        df++;
      } else expect(counts[i]).toBe(0);
    });
    expect(df).toBeGreaterThan(3);
    // 99.9% point of chi-square with df <= 20 is 45.3.
    expect(chi).toBeLessThan(45.3);
  });

  it('reports the margin from the nearest cumulative boundary', () => {
    const d = sampleDetails([0, 0], params({ seed: 3, tokenIndex: 1 }));
    const target = d.u * 2;
    expect(d.margin).toBeCloseTo(Math.min(target - Math.floor(target), Math.floor(target) + 1 - target) / 2, 12);
  });
});

describe('validateSamplingParams', () => {
  it.each([
    [{ temperature: -0.5 }, 'temperature'],
    [{ temperature: NaN }, 'temperature'],
    [{ temperature: Infinity }, 'temperature'],
    [{ temperature: 1e-45 }, 'temperature'],
    [{ topK: 1.5 }, 'topK'],
    [{ topK: -1 }, 'topK'],
    [{ topK: 2 ** 32 }, 'topK'],
    [{ topP: 0 }, 'topP'],
    [{ topP: 1.01 }, 'topP'],
    [{ topP: NaN }, 'topP'],
    [{ seed: -1 }, 'seed'],
    [{ seed: 1.5 }, 'seed'],
    [{ seed: 2n ** 64n }, 'seed'],
    [{ seed: 2 ** 60 }, 'seed'],
    [{ tokenIndex: -1 }, 'tokenIndex'],
    [{ tokenIndex: 2 ** 32 }, 'tokenIndex'],
  ] as [Partial<SamplingParams>, keyof SamplingParams][])('%o is rejected naming %s', (bad, field) => {
    let err: unknown;
    try {
      validateSamplingParams(params(bad), 3);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(SamplingParamsError);
    expect(err).toBeInstanceOf(GpuUsageError);
    expect((err as SamplingParamsError).field).toBe(field);
    expect((err as SamplingParamsError).row).toBe(3);
    expect((err as Error).name).toBe('SamplingParamsError');
    expect(() => warpedDistribution([1, 2], params(bad))).toThrow(SamplingParamsError);
  });

  it('accepts the edges', () => {
    for (const ok of [{ temperature: 0 }, { topK: 0 }, { topK: 2 ** 32 - 1 }, { topP: 1 }, { topP: 1e-9 }, { seed: 2n ** 64n - 1n }, { seed: Number.MAX_SAFE_INTEGER }, { tokenIndex: 2 ** 32 - 1 }]) {
      expect(() => validateSamplingParams(params(ok))).not.toThrow();
    }
  });
});
