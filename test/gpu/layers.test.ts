// Each transformer kernel against its float64 reference, at awkward sizes.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { GpuRuntime } from '../../src/gpu/index.js';
import { attentionSplits, LayerKernels } from '../../src/kernels/layers.js';
import { RopeTable } from '../../src/kernels/rope-table.js';
import { fromBf16Array, fromF16Array, toBf16Array, toF16Array } from '../../src/numeric/half.js';
import { argmaxRef, attentionRef, rmsNormRef, ropeInvFreq, ropeRef, siluMulRef } from '../../src/reference/ops.js';
import { randomF32, rng } from '../helpers/random.js';
import { createTestRuntime } from './gpu-config.js';

let rt: GpuRuntime;
let k: LayerKernels;

beforeAll(async () => {
  rt = await createTestRuntime();
  k = await LayerKernels.create(rt, ['f32', 'f16', 'bf16']);
});

afterAll(() => {
  expect(rt.takeErrors()).toEqual([]);
  rt.destroy();
});

const RW = (): number => GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST;

function out(floats: number): GPUBuffer {
  return rt.createBuffer(4 * floats, RW(), 'out');
}

/** max |a - b| / (atol + rtol |b|) must be <= 1. */
function expectClose(actual: ArrayLike<number>, expected: ArrayLike<number>, atol: number, rtol: number, what: string): void {
  expect(actual.length, what).toBe(expected.length);
  let worst = 0;
  let at = -1;
  for (let i = 0; i < expected.length; i++) {
    const r = Math.abs(actual[i]! - expected[i]!) / (atol + rtol * Math.abs(expected[i]!));
    if (!(r <= worst)) {
      worst = r;
      at = i;
    }
  }
  expect(worst, `${what}: worst at ${at}: ${actual[at]} vs ${expected[at]}`).toBeLessThanOrEqual(1);
}

describe('embedding', () => {
  it.each(['f32', 'f16', 'bf16'] as const)('%s: gathers rows exactly, across a table split into chunks', async (dtype) => {
    const V = 37;
    const H = 19;
    const table = randomF32(V * H, 11);
    const bits = dtype === 'f16' ? toF16Array(table) : dtype === 'bf16' ? toBf16Array(table) : null;
    const exact = bits ? (dtype === 'f16' ? fromF16Array(bits) : fromBf16Array(bits)) : Float64Array.from(table);
    const tokens = new Uint32Array([0, 36, 5, 5, 20, 21, 1]);
    const tok = rt.upload(tokens, 'tokens');
    const y = out(tokens.length * H);
    const step = rt.beginStep('embedding');
    for (const [start, rows] of [
      [0, 20],
      [20, 17],
    ] as const) {
      const slice = bits ? bits.subarray(start * H, (start + rows) * H) : table.subarray(start * H, (start + rows) * H);
      const chunk = rt.upload(slice, `E ${start}`);
      k.embedding(step, dtype, tok, chunk, y, tokens.length, H, start, rows);
    }
    const got = step.read(y);
    await step.submit();
    const expected = Array.from(tokens).flatMap((t) => Array.from(exact.subarray(t * H, (t + 1) * H)));
    expect(Array.from(new Float32Array(await got))).toEqual(expected.map((v) => Math.fround(v)));
  });
});

describe('rmsnorm', () => {
  it.each([
    [1, 1],
    [3, 130],
    [5, 1000],
  ])('%i rows of %i within 2e-6 relative, and the gather variant picks rows', async (rows, n) => {
    const x = randomF32(rows * n, rows + n, 3);
    const w = randomF32(n, 7 + n);
    const xb = rt.upload(x, 'x');
    const wb = rt.upload(w, 'w');
    const y = out(rows * n);
    const step = rt.beginStep('rmsnorm');
    k.rmsnorm(step, xb, wb, y, rows, n, 1e-6);
    const got = step.read(y);
    const order = Array.from({ length: rows }, (_, i) => rows - 1 - i);
    const idx = rt.upload(new Uint32Array(order), 'idx');
    const y2 = out(rows * n);
    k.rmsnorm(step, xb, wb, y2, rows, n, 1e-6, {}, idx);
    const gathered = step.read(y2);
    await step.submit();
    const ref = rmsNormRef(x, w, rows, n, 1e-6);
    expectClose(new Float32Array(await got), ref, 1e-7, 2e-6, 'rmsnorm');
    const g = new Float32Array(await gathered);
    const direct = new Float32Array(await got);
    order.forEach((src, r) => expect(g.subarray(r * n, (r + 1) * n)).toEqual(direct.subarray(src * n, (src + 1) * n)));
  });
});

describe('rope', () => {
  it.each([false, true])('rotates heads inside fused rows at any position (qk norm %s)', async (qkNorm) => {
    const T = 4;
    const heads = 3;
    const headDim = 40;
    const rowStride = 200;
    const colOffset = 40;
    const positions = new Uint32Array([0, 5, 700, 3000]);
    const scaling = { type: 'llama3' as const, factor: 8, lowFreqFactor: 1, highFreqFactor: 4, originalMaxPositionEmbeddings: 64 };
    const table = new RopeTable(rt, headDim, 5e5, scaling, 16);
    table.ensure(3000);
    expect(table.positions).toBe(4096);
    const x = randomF32(T * rowStride, 99);
    const xb = rt.upload(x, 'x');
    const pos = rt.upload(positions, 'pos');
    const nw = randomF32(headDim, 5);
    const step = rt.beginStep('rope');
    k.rope(step, xb, pos, table.buffer, { T, heads, headDim, rowStride, colOffset }, qkNorm ? { weight: rt.upload(nw, 'nw'), eps: 1e-6 } : undefined);
    const got = step.read(xb);
    await step.submit();
    const heads64 = new Float64Array(T * heads * headDim);
    for (let t = 0; t < T; t++) heads64.set(x.subarray(t * rowStride + colOffset, t * rowStride + colOffset + heads * headDim), t * heads * headDim);
    const normed = qkNorm ? rmsNormRef(heads64, nw, T * heads, headDim, 1e-6) : heads64;
    ropeRef(normed, positions, heads, headDim, ropeInvFreq(headDim, 5e5, scaling));
    const y = new Float32Array(await got);
    for (let t = 0; t < T; t++) {
      const row = y.subarray(t * rowStride, (t + 1) * rowStride);
      // Columns outside the heads are untouched.
      expect(row.subarray(0, colOffset)).toEqual(x.subarray(t * rowStride, t * rowStride + colOffset));
      expect(row.subarray(colOffset + heads * headDim)).toEqual(x.subarray(t * rowStride + colOffset + heads * headDim, (t + 1) * rowStride));
      expectClose(row.subarray(colOffset, colOffset + heads * headDim), normed.subarray(t * heads * headDim, (t + 1) * heads * headDim), 1e-6, 1e-5, `token ${t}`);
    }
    table.destroy();
  });
});

describe('rope + kv append, fused', () => {
  // The fused pass must write exactly what rope (q heads, K heads) then kv_append write.
  it.each([false, true])('equals rope, rope, kv_append bitwise: qkv rows and both caches (qk norm %s)', async (qkNorm) => {
    const T = 5;
    const heads = 4;
    const kvHeads = 2;
    const headDim = 32;
    const qDim = heads * headDim;
    const kvDim = kvHeads * headDim;
    const rowStride = qDim + 2 * kvDim;
    const positions = new Uint32Array([0, 1, 17, 300, 301]);
    const slots = new Uint32Array([3, 9, 0xffffffff, 0, 7]);
    const cacheSlots = 12;
    const table = new RopeTable(rt, headDim, 1e6, null, 16);
    table.ensure(301);
    const x = randomF32(T * rowStride, 123);
    const cache0 = randomF32(cacheSlots * kvDim, 124);
    const qn = rt.upload(randomF32(headDim, 125), 'q norm');
    const kn = rt.upload(randomF32(headDim, 126), 'k norm');
    const pos = rt.upload(positions, 'pos');
    const sl = rt.upload(slots, 'slots');
    const runBoth = async (fused: boolean): Promise<Float32Array[]> => {
      const xb = rt.upload(x, 'qkv');
      const kc = rt.upload(cache0, 'k');
      const vc = rt.upload(cache0, 'v');
      const step = rt.beginStep('rope kv');
      if (fused) {
        k.ropeKvAppend(
          step,
          { qkv: xb, positions: pos, table: table.buffer, slots: sl, kCache: kc, vCache: vc },
          { T, heads, kvHeads, headDim, rowStride },
          qkNorm ? { q: qn, k: kn, eps: 1e-6 } : undefined,
        );
      } else {
        const d = { T, headDim, rowStride };
        k.rope(step, xb, pos, table.buffer, { ...d, heads, colOffset: 0 }, qkNorm ? { weight: qn, eps: 1e-6 } : undefined);
        k.rope(step, xb, pos, table.buffer, { ...d, heads: kvHeads, colOffset: qDim }, qkNorm ? { weight: kn, eps: 1e-6 } : undefined);
        k.kvAppend(step, xb, sl, kc, vc, { T, kvDim, rowStride, kOffset: qDim, vOffset: qDim + kvDim });
      }
      const reads = [step.read(xb), step.read(kc), step.read(vc)];
      await step.submit();
      const out = await Promise.all(reads);
      for (const b of [xb, kc, vc]) rt.destroyBuffer(b);
      return out.map((a) => new Float32Array(a));
    };
    const separate = await runBoth(false);
    const fused = await runBoth(true);
    const bits = (a: Float32Array): Uint32Array => new Uint32Array(a.buffer);
    for (let i = 0; i < 3; i++) expect(bits(fused[i]!), ['qkv', 'k cache', 'v cache'][i]).toEqual(bits(separate[i]!));
    // (Equality with kv_append also covers the padding row's skipped slot.) The rows did change:
    expect(bits(fused[0]!)).not.toEqual(bits(x));
    table.destroy();
  });
});

/** A paged cache with random page assignment, for kv_append and attention. */
function pagedSetup(seqLens: number[], pageSize: number, kvDim: number, numPages: number, seed: number) {
  const r = rng(seed);
  const free = Array.from({ length: numPages }, (_, i) => i).sort(() => r() - 0.5);
  const tables = seqLens.map((len) => Array.from({ length: Math.ceil(len / pageSize) }, () => free.pop()!));
  const maxBlocks = Math.max(...tables.map((t) => t.length));
  const flat = new Uint32Array(seqLens.length * maxBlocks);
  tables.forEach((t, s) => flat.set(t, s * maxBlocks));
  const slot = (s: number, pos: number): number => tables[s]![Math.floor(pos / pageSize)]! * pageSize + (pos % pageSize);
  return { tables, flat, maxBlocks, slot, kvDim };
}

/** kv_append then attention (one-workgroup form, or split + combine) against the float64 reference. */
async function attentionCase(seqLens: number[], newCounts: number[], numPages: number, split: boolean): Promise<Float32Array> {
  const heads = 4;
  const kvHeads = 2;
  const d = 40;
  const pageSize = 16;
  const kvDim = kvHeads * d;
  const qDim = heads * d;
  const rowStride = qDim + 2 * kvDim;
  const ps = pagedSetup(seqLens, pageSize, kvDim, numPages, 3);
  const cacheFloats = numPages * pageSize * kvDim;
  // History K/V in the cache (random), NaN in every slot no sequence owns.
  const kHist = new Float32Array(cacheFloats).fill(NaN);
  const vHist = new Float32Array(cacheFloats).fill(NaN);
  const kv = randomF32(2 * cacheFloats, 17);
  seqLens.forEach((len, s) => {
    for (let pos = 0; pos < len - newCounts[s]!; pos++) {
      const sl = ps.slot(s, pos);
      kHist.set(kv.subarray(sl * kvDim, (sl + 1) * kvDim), sl * kvDim);
      vHist.set(kv.subarray(cacheFloats + sl * kvDim, cacheFloats + (sl + 1) * kvDim), sl * kvDim);
    }
  });
  const tokens: { s: number; pos: number }[] = [];
  seqLens.forEach((len, s) => {
    for (let i = len - newCounts[s]!; i < len; i++) tokens.push({ s, pos: i });
  });
  const T = tokens.length;
  const qkv = randomF32(T * rowStride, 23);
  const kCache = rt.upload(kHist, 'K');
  const vCache = rt.upload(vHist, 'V');
  const qkvb = rt.upload(qkv, 'qkv');
  const slots = rt.upload(new Uint32Array(tokens.map((t) => ps.slot(t.s, t.pos))), 'slots');
  const positions = rt.upload(new Uint32Array(tokens.map((t) => t.pos)), 'positions');
  const seqOf = rt.upload(new Uint32Array(tokens.map((t) => t.s)), 'seq');
  const tables = rt.upload(ps.flat, 'tables');
  const o = out(T * qDim);
  const step = rt.beginStep('attention');
  k.kvAppend(step, qkvb, slots, kCache, vCache, { T, kvDim, rowStride, kOffset: qDim, vOffset: qDim + kvDim });
  const maxPosition = Math.max(...tokens.map((t) => t.pos));
  const partials = split ? out(T * heads * attentionSplits(maxPosition) * (d + 2)) : null;
  k.attention(
    step,
    { q: qkvb, kCache, vCache, positions, seqOfToken: seqOf, blockTables: tables, out: o },
    { T, heads, kvHeads, headDim: d, pageSize, maxBlocks: ps.maxBlocks, qStride: rowStride, outStride: qDim },
    partials ? { partials, maxPosition } : undefined,
  );
  if (split) expect(step.dispatches, 'kv_append, partial, combine').toBe(attentionSplits(maxPosition) > 1 ? 3 : 2);
  const gotK = step.read(kCache);
  const got = step.read(o);
  await step.submit();

  // The reference cache: history plus the appended rows.
  const kAll = Float64Array.from(kHist);
  const vAll = Float64Array.from(vHist);
  tokens.forEach((t, i) => {
    const sl = ps.slot(t.s, t.pos);
    kAll.set(qkv.subarray(i * rowStride + qDim, i * rowStride + qDim + kvDim), sl * kvDim);
    vAll.set(qkv.subarray(i * rowStride + qDim + kvDim, i * rowStride + qDim + 2 * kvDim), sl * kvDim);
  });
  const kg = new Float32Array(await gotK);
  for (let i = 0; i < kAll.length; i++) {
    if (!Number.isNaN(kAll[i]!) || !Number.isNaN(kg[i]!)) expect(kg[i]).toBe(kAll[i]);
  }
  const q = new Float64Array(T * qDim);
  tokens.forEach((_, i) => q.set(qkv.subarray(i * rowStride, i * rowStride + qDim), i * qDim));
  const ref = attentionRef(
    q,
    tokens.map((t) => t.pos),
    heads,
    kvHeads,
    d,
    (t, pos, kvh) => {
      const sl = ps.slot(tokens[t]!.s, pos);
      return { k: kAll.subarray(sl * kvDim + kvh * d, sl * kvDim + (kvh + 1) * d), v: vAll.subarray(sl * kvDim + kvh * d, sl * kvDim + (kvh + 1) * d) };
    },
  );
  const result = new Float32Array(await got);
  expectClose(result, ref, 2e-6, 1e-4, 'attention');
  return result;
}

describe('kv_append + attention_paged', () => {
  it('appends K/V to their slots and attends over paged history (GQA, ragged, chunk boundaries)', async () => {
    // Three sequences; the new tokens of this step are at the ends of their histories.
    await attentionCase([150, 7, 65], [3, 7, 1], 40, false);
  });

  it('long contexts: split + combine is bitwise the one-workgroup form (and both match the reference)', async () => {
    // Contexts across several 512-key splits, a split boundary, and one short sequence.
    const cases: [number[], number[], number] = [[1300, 512, 513, 20], [2, 1, 2, 3], 160];
    const whole = await attentionCase(...cases, false);
    const split = await attentionCase(...cases, true);
    expect(new Uint32Array(split.buffer)).toEqual(new Uint32Array(whole.buffer));
  });
});

describe('elementwise and argmax', () => {
  it('add, silu_mul and bias match the reference', async () => {
    const T = 3;
    const n = 50;
    const a = randomF32(T * 2 * n, 1, 6);
    const y0 = randomF32(T * 2 * n, 2);
    const b = randomF32(n, 3);
    const ab = rt.upload(a, 'a');
    const yAdd = rt.upload(y0, 'y');
    const ySilu = out(T * n);
    const yBias = rt.upload(y0, 'yb');
    const step = rt.beginStep('elementwise');
    k.add(step, ab, yAdd, T * 2 * n);
    k.siluMul(step, ab, ySilu, T, n);
    k.bias(step, rt.upload(b, 'b'), yBias, T, n, 2 * n);
    const [gAdd, gSilu, gBias] = [step.read(yAdd), step.read(ySilu), step.read(yBias)];
    await step.submit();
    expect(Array.from(new Float32Array(await gAdd))).toEqual(Array.from(y0, (v, i) => Math.fround(v + a[i]!)));
    const gate = new Float64Array(T * n);
    const up = new Float64Array(T * n);
    for (let t = 0; t < T; t++) {
      gate.set(a.subarray(t * 2 * n, t * 2 * n + n), t * n);
      up.set(a.subarray(t * 2 * n + n, (t + 1) * 2 * n), t * n);
    }
    expectClose(new Float32Array(await gSilu), siluMulRef(gate, up), 1e-7, 1e-6, 'silu_mul');
    const expectedBias = Array.from(y0, (v, i) => (i % (2 * n) < n ? Math.fround(v + b[i % (2 * n)]!) : v));
    expect(Array.from(new Float32Array(await gBias))).toEqual(expectedBias);
  });

  it('argmax takes the lowest id among ties, per row', async () => {
    const rows = 4;
    const V = 1031;
    const stride = 1040;
    const logits = randomF32(rows * stride, 8);
    // Row 1: a tie between ids 900 and 17 (17 must win); row 3: all equal (0 must win).
    logits[stride + 900] = 5;
    logits[stride + 17] = 5;
    logits.fill(0.25, 3 * stride, 3 * stride + V);
    const lb = rt.upload(logits, 'logits');
    const ids = out(rows + 2);
    const step = rt.beginStep('argmax');
    k.argmax(step, lb, ids, rows, V, stride, 2);
    const got = step.read(ids);
    await step.submit();
    const g = new Uint32Array(await got);
    const expected = Array.from({ length: rows }, (_, r) => argmaxRef(logits, r * stride, V));
    expect(Array.from(g.subarray(2))).toEqual(expected);
    expect(expected[1]).toBe(17);
    expect(expected[3]).toBe(0);
  });
});
