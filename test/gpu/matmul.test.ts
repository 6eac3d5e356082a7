// The matmul kernels against the float64 reference, and the reduction-order contract: matvec and
// tiled produce bitwise identical rows, and a row does not change with the rows batched beside it.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { GpuRuntime } from '../../src/gpu/index.js';
import { LayerKernels } from '../../src/kernels/layers.js';
import { MatmulKernels, type MatmulPath, type WeightDType } from '../../src/kernels/matmul.js';
import { fromBf16Array, fromF16Array, toBf16Array, toF16Array } from '../../src/numeric/half.js';
import { matmulAbsReference, matmulErrorBound, matmulReference } from '../../src/reference/matmul.js';
import { randomF32 } from '../helpers/random.js';
import { createTestRuntime } from './gpu-config.js';

let rt: GpuRuntime;
const kernels = new Map<WeightDType, MatmulKernels>();

beforeAll(async () => {
  rt = await createTestRuntime();
  // 'compact' here; the 'wide' tests below compare the other geometry against it bitwise.
  for (const dtype of ['f32', 'f16', 'bf16'] as const) kernels.set(dtype, await MatmulKernels.create(rt, dtype, false, 'compact'));
});

afterAll(() => {
  expect(rt.takeErrors()).toEqual([]);
  rt.destroy();
});

interface Case {
  M: number;
  N: number;
  K: number;
}

// Awkward on purpose: 1 row, 1 column, K not a multiple of 4 or of a k-step, tails of every tile.
const CASES: Case[] = [
  { M: 1, N: 1, K: 1 },
  { M: 1, N: 37, K: 13 },
  { M: 3, N: 65, K: 130 },
  { M: 9, N: 33, K: 64 },
  { M: 33, N: 70, K: 96 },
  { M: 70, N: 41, K: 257 },
  { M: 2, N: 5, K: 20_011 },
  { M: 40, N: 7, K: 4_099 },
];

interface Weights {
  gpu: GPUBuffer;
  exact: Float64Array;
}

function makeWeights(dtype: WeightDType, N: number, K: number, seed: number): Weights {
  const w32 = randomF32(N * K, seed, 0.5);
  if (dtype === 'f32') return { gpu: rt.upload(w32, 'W'), exact: Float64Array.from(w32) };
  if (dtype === 'bf16') {
    const bits = toBf16Array(w32);
    return { gpu: rt.upload(bits, 'W bf16'), exact: fromBf16Array(bits) };
  }
  const bits = toF16Array(w32);
  return { gpu: rt.upload(bits, 'W f16'), exact: fromF16Array(bits) };
}

async function run(k: MatmulKernels, x: Float32Array, w: GPUBuffer, { M, N, K }: Case, path: MatmulPath): Promise<Float32Array> {
  const xb = rt.upload(x, 'X');
  const yb = rt.createBuffer(4 * M * N, GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC, 'Y');
  const step = rt.beginStep('matmul test');
  k.record(step, xb, w, yb, { M, N, K }, path);
  const out = step.read(yb, 0, 4 * M * N);
  await step.submit();
  const y = new Float32Array(await out);
  rt.destroyBuffer(xb);
  rt.destroyBuffer(yb);
  return y;
}

function bitsOf(a: Float32Array): Uint32Array {
  return new Uint32Array(a.buffer, a.byteOffset, a.length);
}

describe.each(['f32', 'f16', 'bf16'] as const)('matmul, %s weights', (dtype) => {
  it.each(CASES)('M=$M N=$N K=$K: both paths within the float32 bound of the float64 reference, bitwise equal', async (c) => {
    const k = kernels.get(dtype)!;
    const x = randomF32(c.M * c.K, 1000 + c.K, 1);
    const w = makeWeights(dtype, c.N, c.K, 2000 + c.N);
    const ref = matmulReference(x, w.exact, c);
    const abs = matmulAbsReference(x, w.exact, c);
    const viaMatvec = await run(k, x, w.gpu, c, 'matvec');
    const viaTiled = await run(k, x, w.gpu, c, 'tiled');
    let worst = 0;
    for (let i = 0; i < ref.length; i++) {
      const bound = matmulErrorBound(c.K, rt.capabilities.reduceLanes, abs[i]!);
      const err = Math.abs(viaMatvec[i]! - ref[i]!);
      worst = Math.max(worst, err / bound);
      if (err > bound) expect.fail(`output ${i}: |${viaMatvec[i]} - ${ref[i]}| = ${err} > bound ${bound}`);
    }
    expect(worst).toBeLessThanOrEqual(1);
    expect(bitsOf(viaTiled)).toEqual(bitsOf(viaMatvec));
    rt.destroyBuffer(w.gpu);
  });

  it('a row is bitwise the same alone, in a small batch and in a large batch, on either path', async () => {
    const k = kernels.get(dtype)!;
    const c = { M: 45, N: 67, K: 333 };
    const x = randomF32(c.M * c.K, 77, 2);
    const w = makeWeights(dtype, c.N, c.K, 78);
    const full = await run(k, x, w.gpu, c, 'auto');
    for (const row of [0, 17, 44]) {
      const one = x.subarray(row * c.K, (row + 1) * c.K);
      const expected = bitsOf(full.subarray(row * c.N, (row + 1) * c.N));
      for (const path of ['matvec', 'tiled'] as const) {
        const alone = await run(k, one, w.gpu, { ...c, M: 1 }, path);
        expect(bitsOf(alone), `row ${row} alone via ${path}`).toEqual(expected);
      }
      const three = x.subarray(Math.max(0, row - 1) * c.K, Math.min(c.M, Math.max(0, row - 1) + 3) * c.K);
      const at = row - Math.max(0, row - 1);
      const small = await run(k, three, w.gpu, { ...c, M: three.length / c.K }, 'matvec');
      expect(bitsOf(small.subarray(at * c.N, (at + 1) * c.N)), `row ${row} in a batch of 3`).toEqual(expected);
    }
    rt.destroyBuffer(w.gpu);
  });

  it('W split by row range into chunks writes the same Y (yColOffset, yStride)', async () => {
    const k = kernels.get(dtype)!;
    const c = { M: 12, N: 50, K: 72 };
    const x = randomF32(c.M * c.K, 5, 1);
    const w32 = randomF32(c.N * c.K, 6, 0.5);
    const upload = (a: Float32Array): GPUBuffer => rt.upload(dtype === 'f32' ? a : dtype === 'f16' ? toF16Array(a) : toBf16Array(a), `W ${dtype}`);
    const whole = upload(w32);
    const expected = await run(k, x, whole, c, 'auto');
    const xb = rt.upload(x, 'X');
    const yb = rt.createBuffer(4 * c.M * c.N, GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC, 'Y');
    const step = rt.beginStep('split');
    const parts = [0, 19, 33, 50];
    const chunks: GPUBuffer[] = [];
    for (let i = 0; i + 1 < parts.length; i++) {
      const [a, b] = [parts[i]!, parts[i + 1]!];
      const chunk = upload(w32.subarray(a * c.K, b * c.K));
      chunks.push(chunk);
      k.record(step, xb, chunk, yb, { M: c.M, N: b - a, K: c.K, yStride: c.N, yColOffset: a }, i % 2 ? 'tiled' : 'matvec');
    }
    const out = step.read(yb);
    await step.submit();
    expect(bitsOf(new Float32Array(await out))).toEqual(bitsOf(expected));
    for (const b of [whole, xb, yb, ...chunks]) rt.destroyBuffer(b);
  });
});

// The register-tiled geometry ('wide': 8x8 micro tiles, padded rows) must be bitwise the same as
// matvec (and so as 'compact'), on every dtype, across tile tails and k-steps.
const wideKernels = new Map<WeightDType, Promise<MatmulKernels>>();
function wideOf(dtype: WeightDType): Promise<MatmulKernels> {
  let k = wideKernels.get(dtype);
  if (!k) wideKernels.set(dtype, (k = MatmulKernels.create(rt, dtype, false, 'wide')));
  return k;
}

describe.each(['f32', 'f16', 'bf16'] as const)("tiled variant 'wide', %s weights", (dtype) => {
  it.each(CASES.filter((c) => c.M * c.N * c.K <= 2_000_000))('M=$M N=$N K=$K: bitwise equal to matvec', async (c) => {
    const wide = await wideOf(dtype);
    expect(wide.variant).toBe('wide');
    const x = randomF32(c.M * c.K, 3000 + c.K, 1);
    const w = makeWeights(dtype, c.N, c.K, 4000 + c.N);
    const viaMatvec = await run(kernels.get(dtype)!, x, w.gpu, c, 'matvec');
    const viaWide = await run(wide, x, w.gpu, c, 'tiled');
    expect(bitsOf(viaWide)).toEqual(bitsOf(viaMatvec));
    rt.destroyBuffer(w.gpu);
  });

  it('a larger prefill shape (several 64x64 tiles, many k-steps)', async () => {
    const wide = await wideOf(dtype);
    const c = { M: 130, N: 200, K: 516 };
    const x = randomF32(c.M * c.K, 91, 1);
    const w = makeWeights(dtype, c.N, c.K, 92);
    const viaCompact = await run(kernels.get(dtype)!, x, w.gpu, c, 'tiled');
    const viaWide = await run(wide, x, w.gpu, c, 'tiled');
    expect(bitsOf(viaWide)).toEqual(bitsOf(viaCompact));
    rt.destroyBuffer(w.gpu);
  });
});

it("'auto' picks 'wide' where the workgroup storage holds it", async () => {
  const auto = await MatmulKernels.create(rt, 'f32');
  expect(auto.variant).toBe(rt.capabilities.limits.maxComputeWorkgroupStorageSize >= 18432 ? 'wide' : 'compact');
});

it('an unknown tiled variant is a typed error naming the valid ones', async () => {
  await expect(MatmulKernels.create(rt, 'f32', false, 'huge' as never)).rejects.toThrow(/unknown tiled matmul variant 'huge' \(valid: auto, compact, wide\)/);
});

// The epilogue (bias, residual accumulate) must be exactly the separate passes it replaces:
// (X W^T + bias) rounded to f32, then Y + that rounded to f32 (checked with Math.fround).
describe.each(['matvec', 'tiled'] as const)('matmul epilogue via %s', (path) => {
  it.each([
    { M: 3, N: 37, K: 64 },
    { M: 20, N: 70, K: 130 },
  ])('M=$M N=$N K=$K: bias and accumulate equal the separate f32 adds bitwise, per chunk column', async (c) => {
    const k = kernels.get('f16')!;
    const x = randomF32(c.M * c.K, 11, 1);
    const w = makeWeights('f16', c.N, c.K, 12);
    const bias = randomF32(c.N + 5, 13, 1);
    const y0 = randomF32(c.M * c.N, 14, 2);
    const product = await run(k, x, w.gpu, c, path);
    const xb = rt.upload(x, 'X');
    const bb = rt.upload(bias, 'bias');
    const expectFused = async (opts: { bias?: boolean; accumulate?: boolean }, expected: (i: number, n: number) => number): Promise<void> => {
      const yb = rt.upload(y0, 'Y');
      const step = rt.beginStep('epilogue');
      // Two chunks of W's rows: the bias is indexed by Y's column (yColOffset + n).
      const split = 17;
      const chunks = [makeChunk(w, 0, split, c.K), makeChunk(w, split, c.N, c.K)];
      chunks.forEach((ch, i) =>
        k.record(
          step,
          xb,
          ch,
          yb,
          { M: c.M, N: i === 0 ? split : c.N - split, K: c.K, yStride: c.N, yColOffset: i === 0 ? 0 : split, ...(opts.bias ? { bias: bb } : {}), accumulate: opts.accumulate ?? false },
          path,
        ),
      );
      const out = step.read(yb);
      await step.submit();
      const got = new Float32Array(await out);
      const want = Float32Array.from(got, (_, i) => expected(i, i % c.N));
      expect(bitsOf(got), JSON.stringify(opts)).toEqual(bitsOf(want));
      for (const b of [yb, ...chunks]) rt.destroyBuffer(b);
    };
    await expectFused({ bias: true }, (i, n) => Math.fround(product[i]! + bias[n]!));
    await expectFused({ accumulate: true }, (i) => Math.fround(y0[i]! + product[i]!));
    await expectFused({ bias: true, accumulate: true }, (i, n) => Math.fround(y0[i]! + Math.fround(product[i]! + bias[n]!)));
    for (const b of [xb, bb, w.gpu]) rt.destroyBuffer(b);
  });
});

/** Rows [a, b) of an f16 weight buffer as their own buffer. */
function makeChunk(w: Weights, a: number, b: number, K: number): GPUBuffer {
  const bits = toF16Array(new Float32Array(w.exact.subarray(a * K, b * K)));
  return rt.upload(bits, `W rows ${a}..${b}`);
}

let layersOnce: Promise<LayerKernels> | undefined;

// SWIGLU epilogue: with W's rows interleaved (gate_i, up_i), the matmul stores silu(gate) * up,
// exactly what the silu_mul pass computes from the plain product ([gate | up] columns).
describe.each(['matvec', 'tiled'] as const)('matmul swiglu epilogue via %s', (path) => {
  it.each([
    { M: 1, I: 37, K: 64 },
    { M: 5, I: 40, K: 36 },
    { M: 19, I: 66, K: 128 },
  ])('M=$M I=$I K=$K: equals matmul then silu_mul, bitwise, across row chunks', async ({ M, I, K }) => {
    layersOnce ??= LayerKernels.create(rt, []);
    const layers = await layersOnce;
    const k = kernels.get('f32')!;
    const N = 2 * I;
    const x = randomF32(M * K, 21, 1);
    const w = randomF32(N * K, 22, 0.5); // rows interleaved: 2i = gate_i, 2i + 1 = up_i
    const wb = rt.upload(w, 'W');
    const product = await run(k, x, wb, { M, N, K }, path);
    // The same product as [gate | up] columns, through the silu_mul kernel.
    const gu = new Float32Array(M * N);
    for (let m = 0; m < M; m++)
      for (let i = 0; i < I; i++) {
        gu[m * N + i] = product[m * N + 2 * i]!;
        gu[m * N + I + i] = product[m * N + 2 * i + 1]!;
      }
    const gub = rt.upload(gu, 'gate|up');
    const act = rt.createBuffer(4 * M * I, GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC, 'act');
    let step = rt.beginStep('silu_mul');
    layers.siluMul(step, gub, act, M, I);
    const expected = step.read(act);
    await step.submit();
    // Fused, with W split into two row chunks at an even row.
    const xb = rt.upload(x, 'X');
    const fusedOut = rt.createBuffer(4 * M * I, GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC, 'fused');
    const split = 2 * Math.floor(I / 2);
    const chunks = [rt.upload(w.subarray(0, split * K), 'W a'), rt.upload(w.subarray(split * K), 'W b')];
    step = rt.beginStep('swiglu');
    k.record(step, xb, chunks[0]!, fusedOut, { M, N: split, K, yStride: I, yColOffset: 0, swiglu: true }, path);
    k.record(step, xb, chunks[1]!, fusedOut, { M, N: N - split, K, yStride: I, yColOffset: split, swiglu: true }, path);
    const got = step.read(fusedOut);
    await step.submit();
    expect(bitsOf(new Float32Array(await got))).toEqual(bitsOf(new Float32Array(await expected)));
    for (const b of [wb, gub, act, xb, fusedOut, ...chunks]) rt.destroyBuffer(b);
  });

  it('refuses an odd split or a bias with swiglu', async () => {
    const k = kernels.get('f32')!;
    const b = rt.createBuffer(4096, GPUBufferUsage.STORAGE, 'b');
    const step = rt.beginStep('bad');
    expect(() => k.record(step, b, b, b, { M: 1, N: 3, K: 4, yStride: 2, swiglu: true }, path)).toThrow(/swiglu needs even N/);
    expect(() => k.record(step, b, b, b, { M: 1, N: 4, K: 4, yStride: 2, swiglu: true, bias: b }, path)).toThrow(/no bias/);
    rt.destroyBuffer(b);
  });
});

// A fused RMSNorm on the matvec path (flag NORM) must read exactly what the rmsnorm pass writes.
let normKernels: Promise<MatmulKernels> | undefined;
describe('matvec with a fused RMSNorm', () => {
  it.each([
    { M: 1, N: 40, K: 64 },
    { M: 3, N: 33, K: 130 },
    { M: 8, N: 70, K: 260 },
    { M: 5, N: 16, K: 1536 },
  ])('M=$M N=$N K=$K: bitwise rmsnorm then matvec (plain, + bias, + swiglu)', async ({ M, N, K }) => {
    layersOnce ??= LayerKernels.create(rt, []);
    const layers = await layersOnce;
    normKernels ??= MatmulKernels.create(rt, 'f16', false, 'auto', { fusedNorm: true });
    const k = await normKernels;
    const x = randomF32(M * K, 31, 3);
    const nw = randomF32(K, 32, 1);
    const w = makeWeights('f16', N, K, 33);
    const bias = randomF32(N, 34, 1);
    const xb = rt.upload(x, 'X');
    const nwb = rt.upload(nw, 'norm w');
    const bb = rt.upload(bias, 'bias');
    const h = rt.createBuffer(4 * M * K, GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC, 'h');
    const usage = GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC;
    for (const mode of ['plain', 'bias', 'swiglu'] as const) {
      const n = mode === 'swiglu' ? N - (N % 2) : N;
      const outCols = mode === 'swiglu' ? n / 2 : n;
      const epi = mode === 'bias' ? { bias: bb } : mode === 'swiglu' ? { swiglu: true, yStride: outCols } : {};
      const y1 = rt.createBuffer(4 * M * outCols, usage, 'y separate');
      const y2 = rt.createBuffer(4 * M * outCols, usage, 'y fused');
      const step = rt.beginStep('norm');
      layers.rmsnorm(step, xb, nwb, h, M, K, 1e-6);
      k.record(step, h, w.gpu, y1, { M, N: n, K, ...epi }, 'matvec');
      k.record(step, xb, w.gpu, y2, { M, N: n, K, ...epi, norm: { weight: nwb, eps: 1e-6 } }, 'matvec');
      const a = step.read(y1);
      const b = step.read(y2);
      await step.submit();
      expect(bitsOf(new Float32Array(await b)), mode).toEqual(bitsOf(new Float32Array(await a)));
      rt.destroyBuffer(y1);
      rt.destroyBuffer(y2);
    }
    for (const b of [xb, nwb, bb, h, w.gpu]) rt.destroyBuffer(b);
  });

  it('is refused on the tiled path, and by kernels created without it', async () => {
    normKernels ??= MatmulKernels.create(rt, 'f16', false, 'auto', { fusedNorm: true });
    const k = await normKernels;
    const b = rt.createBuffer(4096, GPUBufferUsage.STORAGE, 'b');
    const step = rt.beginStep('bad');
    expect(() => k.record(step, b, b, b, { M: 16, N: 4, K: 4, norm: { weight: b, eps: 1e-6 } }, 'tiled')).toThrow(/matvec path only/);
    expect(() => kernels.get('f32')!.record(step, b, b, b, { M: 1, N: 4, K: 4, norm: { weight: b, eps: 1e-6 } }, 'matvec')).toThrow(/fusedNorm/);
    rt.destroyBuffer(b);
  });
});
