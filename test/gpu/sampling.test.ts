// GPU sampling (shaders/sample.wgsl) against the float64 reference (src/reference/sampling.ts):
// greedy and top-k = 1, the kept sets of top-k/top-p, the sampled distribution (chi-square), the
// exact RNG draw, batch invariance, exact agreement away from rounding boundaries, special
// values, a Qwen-sized vocab, and parameter errors. Everything is seeded: no test is flaky.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GpuLimitError, GpuUsageError, type GpuRuntime } from '../../src/gpu/index.js';
import { packSamplingParams, SAMPLE, SamplingKernels, SamplingParamsError, type SamplingDims, type SamplingParams } from '../../src/kernels/sampling.js';
import { sampleDetails, samplingUniform, warpDetails } from '../../src/reference/sampling.js';
import { randomF32, rng } from '../helpers/random.js';
import { createTestRuntime } from './gpu-config.js';

let rt: GpuRuntime;
let k: SamplingKernels;

beforeAll(async () => {
  rt = await createTestRuntime();
  k = await SamplingKernels.create(rt);
});

afterAll(() => {
  expect(rt.takeErrors()).toEqual([]);
  rt.destroy();
});

const params = (p: Partial<SamplingParams> = {}): SamplingParams => ({ temperature: 1, topK: 0, topP: 1, seed: 0, tokenIndex: 0, ...p });

/** Sample rows of `logits` (row r at r * stride) under per-row params; returns the whole ids buffer. */
async function sample(logits: Float32Array, ps: readonly SamplingParams[], d: Partial<SamplingDims> & { vocab: number }, idsLength = ps.length + (d.outOffset ?? 0)): Promise<Uint32Array> {
  const rows = ps.length;
  const lb = rt.upload(logits, 'logits');
  const pb = rt.upload(new Uint8Array(packSamplingParams(ps)), 'row params');
  const ids = rt.upload(new Uint32Array(idsLength).fill(0xdeadbeef), 'ids');
  const step = rt.beginStep('sample');
  k.record(step, lb, pb, ids, { rows, stride: d.vocab, outOffset: 0, ...d });
  const got = step.read(ids);
  await step.submit();
  const out = new Uint32Array(await got);
  for (const b of [lb, pb, ids]) rt.destroyBuffer(b);
  return out;
}

/** Exact agreement where both the draw and top_p are clear of f32 rounding. */
const SAFE = 1e-5;

function expectAgreement(logitsOf: (r: number) => Float32Array, ps: readonly SamplingParams[], got: ArrayLike<number>, minCompared: number): void {
  let compared = 0;
  const bad: string[] = [];
  ps.forEach((p, r) => {
    const ref = sampleDetails(logitsOf(r), p);
    if (ref.margin > SAFE && ref.topPMargin > SAFE) {
      compared++;
      if (got[r] !== ref.id) bad.push(`row ${r}: gpu ${got[r]} ref ${ref.id} (${JSON.stringify({ ...p, seed: String(p.seed) })})`);
    }
  });
  expect(bad, bad.slice(0, 5).join('\n')).toEqual([]);
  expect(compared).toBeGreaterThanOrEqual(minCompared);
}

describe('greedy', () => {
  it('temperature 0 is argmax with ties to the lowest id, at any stride and output offset', async () => {
    const vocab = 1000;
    const stride = 1003;
    const rows = 6;
    const l = randomF32(rows * stride, 4, 8);
    const expected: number[] = [];
    for (let r = 0; r < rows; r++) {
      const row = l.subarray(r * stride, r * stride + vocab);
      // Ties at the maximum: ids 999, then 500 and 17 share the max in later rows.
      const ties = [[999], [500, 999], [17, 500, 999], [0, 999], [998, 999], [3]][r]!;
      for (const i of ties) row[i] = 9;
      expected.push(ties[0]!);
    }
    // Beyond vocab within the stride: larger, must be ignored.
    l[vocab] = 100;
    const ids = await sample(
      l,
      Array.from({ length: rows }, (_, r) => params({ temperature: 0, seed: r, tokenIndex: r })),
      { vocab, stride, outOffset: 3 },
      rows + 5,
    );
    expect(Array.from(ids)).toEqual([0xdeadbeef, 0xdeadbeef, 0xdeadbeef, ...expected, 0xdeadbeef, 0xdeadbeef]);
  });

  it('NaN counts as -Infinity and -0 ties +0 (greedy); top_k = 1 is argmax when the maximum is unique', async () => {
    const a = new Float32Array([NaN, -1, -0, 0, -5]);
    const got = await sample(a, [params({ temperature: 0 })], { vocab: 5 });
    expect(got[0]).toBe(2);
    const vocab = 300;
    const l = randomF32(vocab, 9, 4);
    l[123] = 7;
    const ps = Array.from({ length: 64 }, (_, t) => params({ temperature: 1.5, topK: 1, seed: 77n, tokenIndex: t }));
    const ids = await sample(l, ps, { vocab, stride: 0 });
    expect(new Set(ids)).toEqual(new Set([123]));
  });

  it('top_k = 1 with a tied maximum samples among the tied ids only (ties are kept)', async () => {
    const l = randomF32(64, 10, 2);
    l[5] = l[40] = 3;
    const ps = Array.from({ length: 200 }, (_, t) => params({ topK: 1, seed: 5, tokenIndex: t }));
    const ids = await sample(l, ps, { vocab: 64, stride: 0 });
    expect(new Set(ids)).toEqual(new Set([5, 40]));
  });
});

/** A top_p midway between two consecutive prefix masses (by tie group) around `approx`. */
function clearTopP(l: Float32Array, p: SamplingParams, approx: number): number {
  const { probs, kept } = warpDetails(l, { ...p, topP: 1 });
  const byValue = kept.slice().sort((a, b) => l[b]! - l[a]!);
  let before = 0;
  for (let g = 0; g < byValue.length;) {
    let mass = 0;
    const v = l[byValue[g]!];
    while (g < byValue.length && l[byValue[g]!] === v) mass += probs[byValue[g++]!]!;
    if (before + mass >= approx) return Math.fround(before + mass / 2);
    before += mass;
  }
  return 1;
}

describe('kept sets', () => {
  // Coarse logits (many ties) and smooth ones; top_p set clear of every prefix mass.
  const cases: [string, Float32Array, Partial<SamplingParams>, number][] = [
    ['top-k 10 with ties', Float32Array.from(randomF32(500, 21, 6), (x) => Math.round(x)), { topK: 10 }, 1],
    ['top-k 37', randomF32(1000, 22, 3), { topK: 37, temperature: 0.6 }, 1],
    ['top-p 0.3', randomF32(1000, 23, 5), { temperature: 0.8 }, 0.3],
    ['top-k 200 then top-p 0.8 with ties', Float32Array.from(randomF32(1200, 24, 8), (x) => Math.round(x * 4) / 4), { topK: 200, temperature: 1.3 }, 0.8],
    ['top-p 0.95 at T 2', randomF32(800, 25, 4), { temperature: 2 }, 0.95],
  ];

  it.each(cases)('%s: every draw is inside the reference kept set, and it is covered', async (_name, l, extra, approxTopP) => {
    const base = params({ seed: 0xabcdef12345n, ...extra });
    const p = approxTopP < 1 ? { ...base, topP: clearTopP(l, base, approxTopP) } : base;
    const warp = warpDetails(l, p);
    expect(warp.topPMargin).toBeGreaterThan(1e-4);
    const N = 1000;
    const ps = Array.from({ length: N }, (_, t) => ({ ...p, tokenIndex: t }));
    const ids = await sample(l, ps, { vocab: l.length, stride: 0 });
    const kept = new Set(warp.kept);
    const outside = Array.from(ids).filter((id) => !kept.has(id));
    expect(outside).toEqual([]);
    // Every kept token with probability >= 8/N shows up.
    for (const i of warp.kept) if (warp.probs[i]! >= 8 / N) expect(ids.includes(i), `id ${i} p=${warp.probs[i]}`).toBe(true);
    expectAgreement(() => l, ps, ids, 0.99 * N);
  });

  it('a tiny nucleus is never left', async () => {
    const l = randomF32(5000, 30, 2);
    l[4321] = 12; // p ~ 0.97 at T 1
    l[7] = 8.5; // the runner-up
    const warp = warpDetails(l, params({ topP: 0.9 }));
    expect(warp.kept).toEqual([4321]);
    const ps = Array.from({ length: 500 }, (_, t) => params({ topP: 0.9, seed: 3, tokenIndex: t }));
    expect(new Set(await sample(l, ps, { vocab: 5000, stride: 0 }))).toEqual(new Set([4321]));
    // Without top-p the runner-up and the tail do appear.
    const plain = await sample(
      l,
      ps.map((p) => ({ ...p, topP: 1 })),
      { vocab: 5000, stride: 0 },
    );
    expect(new Set(plain).size).toBeGreaterThan(3);
  });
});

/** Upper 1e-4 tail of chi-square with df degrees of freedom (Wilson-Hilferty). */
function chiSquareCritical(df: number): number {
  const z = 3.719;
  const a = 2 / (9 * df);
  return df * (1 - a + z * Math.sqrt(a)) ** 3;
}

describe('distribution', () => {
  it('20k draws over a 50-token vocab match warpedDistribution (chi-square), for two configs in one dispatch', async () => {
    const vocab = 50;
    const l = randomF32(vocab, 40, 2.5);
    const configs = [params({ temperature: 0.8, topK: 30, topP: 0.9, seed: 2024n }), params({ temperature: 1.2, seed: 99 })];
    const N = 10000;
    const ps = configs.flatMap((c) => Array.from({ length: N }, (_, t) => ({ ...c, tokenIndex: 1000 + t })));
    const t0 = performance.now();
    const ids = await sample(l, ps, { vocab, stride: 0 });
    const ms = performance.now() - t0;
    configs.forEach((c, ci) => {
      const warp = warpDetails(l, c);
      expect(warp.topPMargin).toBeGreaterThan(1e-3);
      const counts = new Float64Array(vocab);
      for (let t = 0; t < N; t++) counts[ids[ci * N + t]!]!++;
      let chi = 0;
      let df = -1;
      warp.probs.forEach((q, i) => {
        if (q > 0) {
          chi += (counts[i]! - N * q) ** 2 / (N * q);
          df++;
        } else {
          expect(counts[i], `id ${i} is outside the kept set`).toBe(0);
        }
      });
      expect(df).toBeGreaterThan(5);
      expect(chi, `config ${ci}: chi-square ${chi.toFixed(1)} with ${df} df`).toBeLessThan(chiSquareCritical(df));
    });
    expectAgreement(() => l, ps, ids, 0.99 * ps.length);
    expect(ms).toBeLessThan(60_000);
  });

  it('draws the exact RNG uniform: uniform logits over 2^16 ids pick floor(u * 2^16)', async () => {
    const vocab = 65536;
    const l = new Float32Array(vocab).fill(-1.5);
    const seeds: (bigint | number)[] = [0, 1, 0xffffffff, 2n ** 32n, 0xfedcba9876543210n, 2n ** 64n - 1n, 123456789, Number.MAX_SAFE_INTEGER];
    const ps = seeds.flatMap((seed, s) => [0, 1, 2 ** 31 + s, 2 ** 32 - 1].map((tokenIndex) => params({ seed, tokenIndex, temperature: 0.5 + s })));
    const ids = await sample(l, ps, { vocab, stride: 0 });
    ps.forEach((p, r) => expect(ids[r], `seed ${p.seed} token ${p.tokenIndex}`).toBe(Math.floor(samplingUniform(p.seed, p.tokenIndex) * vocab)));
  });
});

describe('batch invariance', () => {
  it('(seed, token index, logits) give the same id in row 0 of 1 row and in rows 5 and 37 of 64', async () => {
    const vocab = 777;
    const target = randomF32(vocab, 50, 3);
    const r = rng(51);
    for (let t = 0; t < 6; t++) {
      const p = params({ temperature: 0.9, topK: t % 2 ? 40 : 0, topP: t % 3 ? 0.85 : 1, seed: 0x5eedn + BigInt(t), tokenIndex: 17 * t });
      const alone = await sample(target, [p], { vocab, outOffset: 2 });
      const batch = randomF32(64 * vocab, 60 + t, 3);
      batch.set(target, 5 * vocab);
      batch.set(target, 37 * vocab);
      const ps = Array.from({ length: 64 }, (_, i) => (i === 5 || i === 37 ? p : params({ temperature: r() * 2, topK: Math.floor(r() * 100), topP: 0.5 + r() / 2, seed: i, tokenIndex: i })));
      const ids = await sample(batch, ps, { vocab });
      expect(ids[5], `t=${t}`).toBe(alone[2]);
      expect(ids[37], `t=${t}`).toBe(alone[2]);
    }
  });

  it('ids do not depend on how many workgroups share the rows, nor on the shared-memory variant', async () => {
    const vocab = 300;
    const rows = 70;
    const l = randomF32(rows * vocab, 55, 4);
    const r = rng(56);
    const ps = Array.from({ length: rows }, (_, i) =>
      params({ temperature: i % 9 === 0 ? 0 : 0.5 + r(), topK: i % 2 ? 0 : 1 + Math.floor(r() * 50), topP: i % 3 ? 1 : 0.3 + r() * 0.6, seed: 7, tokenIndex: i }),
    );
    const lb = rt.upload(l, 'logits');
    const pb = rt.upload(new Uint8Array(packSamplingParams(ps)), 'row params');
    const results: number[][] = [];
    for (const maxWorkgroups of [1, 7, 256]) {
      const kk = await SamplingKernels.create(rt, { maxWorkgroups });
      const ids = rt.upload(new Uint32Array(rows), 'ids');
      const step = rt.beginStep('sample');
      kk.record(step, lb, pb, ids, { rows, vocab, stride: vocab, outOffset: 0 });
      const got = step.read(ids);
      await step.submit();
      results.push(Array.from(new Uint32Array(await got)));
      rt.destroyBuffer(ids);
    }
    // The variant for devices with 16 KiB of workgroup storage (bins summed 8 at a time).
    const halves = await rt.prepare(SAMPLE, { WG: 256, BIN_HALVES: 2 });
    const ids = rt.upload(new Uint32Array(rows), 'ids');
    const step = rt.beginStep('sample halves');
    step.dispatch(halves, new Uint32Array([rows, vocab, vocab, 0]), [lb, pb, ids], [rows]);
    const got = step.read(ids);
    await step.submit();
    results.push(Array.from(new Uint32Array(await got)));
    rt.destroyBuffer(ids);
    expect(results[1]).toEqual(results[0]);
    expect(results[2]).toEqual(results[0]);
    expect(results[3]).toEqual(results[0]);
    expect(new Set(results[0]).size).toBeGreaterThan(30);
    await expect(SamplingKernels.create(rt, { maxWorkgroups: 0 })).rejects.toThrow(GpuUsageError);
    rt.destroyBuffer(lb);
    rt.destroyBuffer(pb);
  });
});

describe('agreement with sampleReference', () => {
  it('random rows, vocabs and params agree exactly away from rounding boundaries', async () => {
    const r = rng(70);
    for (const vocab of [1, 2, 7, 256, 300, 4099]) {
      const rows = 48;
      const l = randomF32(rows * vocab, vocab, 1 + r() * 6);
      // Some rows coarse (ties), some with masked (-Infinity) tokens.
      for (let i = 0; i < rows * vocab; i++) {
        const row = Math.floor(i / vocab);
        if (row % 4 === 1) l[i] = Math.round(l[i]!);
        if (row % 4 === 2 && r() < 0.5) l[i] = -Infinity;
      }
      const ps = Array.from({ length: rows }, (_, i) =>
        params({
          temperature: i % 7 === 0 ? 0 : Math.fround(0.1 + r() * 2),
          topK: r() < 0.5 ? 0 : 1 + Math.floor(r() * vocab),
          topP: r() < 0.4 ? 1 : Math.fround(0.05 + r() * 0.95),
          seed: BigInt(Math.floor(r() * 2 ** 32)) * 2n ** 32n + BigInt(i),
          tokenIndex: Math.floor(r() * 2 ** 32),
        }),
      );
      const ids = await sample(l, ps, { vocab });
      expectAgreement((row) => l.subarray(row * vocab, (row + 1) * vocab), ps, ids, 0.9 * rows);
    }
  });
});

describe('special values', () => {
  it('-Infinity is never drawn, an all -Infinity row is uniform, +Infinity takes all, NaN is never drawn', async () => {
    const vocab = 40;
    const N = 400;
    const masked = randomF32(vocab, 80, 2).map((x, i) => (i % 5 === 3 ? x : -Infinity));
    const nan = randomF32(vocab, 81, 2).map((x, i) => (i % 2 ? NaN : x));
    const inf = randomF32(vocab, 82, 2);
    inf[11] = Infinity;
    const allNeg = new Float32Array(vocab).fill(-Infinity);
    const rowsOf = [masked, nan, inf, allNeg];
    const l = new Float32Array(rowsOf.length * N * vocab);
    rowsOf.forEach((row, c) => {
      for (let t = 0; t < N; t++) l.set(row, (c * N + t) * vocab);
    });
    const ps = rowsOf.flatMap((_, c) => Array.from({ length: N }, (_, t) => params({ temperature: 0.7 + c, topK: c === 1 ? 10 : 0, topP: c === 0 ? 0.99 : 1, seed: c, tokenIndex: t })));
    const ids = await sample(l, ps, { vocab });
    const of = (c: number): number[] => Array.from(ids.subarray(c * N, (c + 1) * N));
    expect(of(0).every((i) => i % 5 === 3)).toBe(true);
    expect(of(1).every((i) => i % 2 === 0)).toBe(true);
    expect(new Set(of(2))).toEqual(new Set([11]));
    expect(of(3).every((i) => i < vocab)).toBe(true);
    expect(new Set(of(3)).size).toBeGreaterThan(30);
    expectAgreement((row) => l.subarray(row * vocab, (row + 1) * vocab), ps, ids, 0.95 * ps.length);
  });
});

describe('large vocab', () => {
  it('151936 tokens: rows with and without top-k/top-p agree with the reference', async () => {
    const vocab = 151936;
    const rows = 4;
    const l = randomF32(rows * vocab, 90, 6);
    // A peaked row, as real logits often are.
    for (let i = 0; i < 20; i++) l[vocab + i * 7001] = 14 + i / 10;
    const ps = [
      params({ temperature: 0.7, topK: 50, topP: 0.95, seed: 1n, tokenIndex: 3 }),
      params({ temperature: 0.6, topP: 0.9, seed: 2n, tokenIndex: 4 }),
      params({ temperature: 1, seed: 3n, tokenIndex: 5 }),
      params({ temperature: 0, seed: 4n, tokenIndex: 6 }),
    ];
    const t0 = performance.now();
    const ids = await sample(l, ps, { vocab });
    const ms = performance.now() - t0;
    expectAgreement((row) => l.subarray(row * vocab, (row + 1) * vocab), ps, ids, rows - 1);
    expect(ms).toBeLessThan(20_000);
  });
});

describe('errors', () => {
  it('bad params are typed errors naming the row and field', () => {
    const good = params();
    for (const [bad, field] of [
      [{ temperature: -1 }, 'temperature'],
      [{ topK: 2.5 }, 'topK'],
      [{ topP: 0 }, 'topP'],
      [{ topP: 1.5 }, 'topP'],
      [{ seed: -3 }, 'seed'],
      [{ tokenIndex: 2 ** 32 }, 'tokenIndex'],
    ] as [Partial<SamplingParams>, keyof SamplingParams][]) {
      let err: unknown;
      try {
        packSamplingParams([good, good, params(bad)]);
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(SamplingParamsError);
      expect(err).toBeInstanceOf(GpuUsageError);
      expect((err as SamplingParamsError).row).toBe(2);
      expect((err as SamplingParamsError).field).toBe(field);
    }
  });

  it('packs 32 bytes per row in the shader layout', () => {
    const buf = packSamplingParams([params(), params({ temperature: 0.7, topK: 50, topP: 0.9, seed: 0x0123456789abcdefn, tokenIndex: 4000000000 })]);
    expect(buf.byteLength).toBe(64);
    const u = new Uint32Array(buf, 32, 8);
    const f = new Float32Array(buf, 32, 8);
    expect([f[0], u[1], f[2], u[3], u[4], u[5], u[6], u[7]]).toEqual([Math.fround(0.7), 50, Math.fround(0.9), 0x89abcdef, 0x01234567, 4000000000, 0, 0]);
  });

  it('record checks dims and binding sizes', () => {
    const lb = rt.upload(new Float32Array(100), 'l');
    const pb = rt.upload(new Uint8Array(packSamplingParams([params(), params()])), 'p');
    const ids = rt.upload(new Uint32Array(2), 'ids');
    const step = rt.beginStep('errors');
    expect(() => k.record(step, lb, pb, ids, { rows: 2, vocab: 0, stride: 50, outOffset: 0 })).toThrow(GpuUsageError);
    expect(() => k.record(step, lb, pb, ids, { rows: 2, vocab: 60, stride: 50, outOffset: 0 })).toThrow(/logits/);
    expect(() => k.record(step, lb, pb, ids, { rows: 3, vocab: 10, stride: 10, outOffset: 0 })).toThrow(/row params/);
    expect(() => k.record(step, lb, pb, ids, { rows: 2, vocab: 10, stride: 10, outOffset: 1 })).toThrow(/ids/);
    expect(() => k.record(step, lb, pb, ids, { rows: 1.5, vocab: 10, stride: 10, outOffset: 0 })).toThrow(GpuUsageError);
    expect(() => k.record(step, lb, pb, ids, { rows: 1, vocab: 2 ** 25, stride: 0, outOffset: 0 })).toThrow(GpuLimitError);
    k.record(step, lb, pb, ids, { rows: 0, vocab: 10, stride: 10, outOffset: 0 });
    expect(step.dispatches).toBe(0);
    for (const b of [lb, pb, ids]) rt.destroyBuffer(b);
  });
});
