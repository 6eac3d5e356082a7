// The runtime layer on a real adapter: granted limits and features, pooling and caching that make a
// steady-state step allocation-free, one submit per step, the bounded queue, readback pooling,
// timestamp timing, the binding-size cap, and typed errors after the device is lost.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GpuDeviceLostError, GpuLimitError, type GpuRuntime, REQUESTED_LIMITS, getWebGpu } from '../../src/gpu/index.js';
import { MATVEC_KERNEL, MatmulKernels } from '../../src/kernels/matmul.js';
import { randomF32 } from '../helpers/random.js';
import { createTestRuntime, gpuConfig } from './gpu-config.js';

let rt: GpuRuntime;
let mm: MatmulKernels;

beforeAll(async () => {
  rt = await createTestRuntime({ maxInFlightSubmits: 2 });
  mm = await MatmulKernels.create(rt, 'f32');
});

afterAll(() => {
  expect(rt.takeErrors()).toEqual([]);
  rt.destroy();
});

const RW = (): number => GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST;

describe('device acquisition', () => {
  it('grants every requested limit at the adapter maximum', async () => {
    const adapter = (await (await getWebGpu()).requestAdapter())!;
    for (const name of REQUESTED_LIMITS) expect(rt.capabilities.limits[name], name).toBe(adapter.limits[name]);
    // Above WebGPU's defaults, which is what an implicit request would have given.
    expect(rt.capabilities.limits.maxComputeWorkgroupStorageSize).toBeGreaterThan(16384);
  });

  it('uses exactly the features the adapter has, less those this config ignores', async () => {
    const adapter = (await (await getWebGpu()).requestAdapter())!;
    const f = rt.capabilities.features;
    const config = gpuConfig();
    expect(f.shaderF16).toBe(adapter.features.has('shader-f16') && config !== 'no-f16');
    expect(f.subgroups).toBe(adapter.features.has('subgroups') && config !== 'no-subgroups');
    expect(f.timestampQuery).toBe(adapter.features.has('timestamp-query'));
    expect(rt.capabilities.subgroupMinSize).toBe(f.subgroups ? adapter.info.subgroupMinSize : 0);
    if (config === 'swiftshader') {
      // What Chromium's software adapter is known to offer (design/platform.md).
      expect(f.shaderF16).toBe(false);
      expect(rt.capabilities.subgroupMinSize).toBe(4);
    }
  });
});

describe('pipelines, bind groups, params', () => {
  it('compiles each (kernel, variant) once', async () => {
    const before = rt.pipelines.compiled;
    const again = await MatmulKernels.create(rt, 'f32');
    expect(rt.pipelines.compiled).toBe(before);
    expect(again.defines).toEqual(mm.defines);
  });

  it('a repeated step records into one submit and creates no new bind groups or buffers', async () => {
    const x = rt.upload(randomF32(2 * 64, 1), 'x');
    const w = rt.upload(randomF32(32 * 64, 2), 'w');
    const y = rt.createBuffer(4 * 2 * 32, RW(), 'y');
    const runStep = async (): Promise<ArrayBuffer> => {
      const step = rt.beginStep('repeat');
      for (let i = 0; i < 10; i++) mm.record(step, x, w, y, { M: 2, N: 32, K: 64 });
      const out = step.read(y);
      await step.submit();
      return out;
    };
    const first = await runStep();
    const groups = rt.bindGroups.created;
    const pooled = rt.buffers.stats().bytes;
    const submits = rt.submits;
    for (let i = 0; i < 5; i++) expect(new Uint8Array(await runStep())).toEqual(new Uint8Array(first));
    expect(rt.submits - submits).toBe(5);
    expect(rt.bindGroups.created).toBe(groups);
    expect(rt.buffers.stats()).toEqual({ inUse: 0, free: 1, bytes: pooled });
    for (const b of [x, w, y]) rt.destroyBuffer(b);
  });

  it('hundreds of dispatches in one step each read their own params (several uniform pages)', async () => {
    const K = 8;
    const N = 600;
    const x = rt.upload(new Float32Array(K).fill(1), 'x');
    const y = rt.createBuffer(4 * N, RW(), 'y');
    // Column n of Y comes from a one-row W whose row sums to n: each dispatch needs its own yColOffset.
    const wAll = new Float32Array(N * K);
    for (let n = 0; n < N; n++) wAll[n * K] = n;
    const w = rt.upload(wAll, 'w');
    const step = rt.beginStep('many');
    const align = rt.capabilities.limits.minStorageBufferOffsetAlignment;
    // Each dispatch binds one row of W; binding offsets must be aligned, so rows get aligned slots.
    const slot = Math.ceil((4 * K) / align) * align;
    const rows = rt.createBuffer(slot * N, RW(), 'rows');
    for (let n = 0; n < N; n++) step.copy(w, 4 * K * n, rows, slot * n, 4 * K);
    for (let n = 0; n < N; n++) {
      mm.record(step, x, { buffer: rows, offset: slot * n, size: 4 * K }, y, { M: 1, N: 1, K, yStride: N, yColOffset: n });
    }
    const out = step.read(y);
    await step.submit();
    expect(rt.paramsPages.count).toBeGreaterThan(1);
    expect(Array.from(new Float32Array(await out))).toEqual(Array.from({ length: N }, (_, n) => n));
    for (const b of [x, y, w, rows]) rt.destroyBuffer(b);
  });
});

describe('queue and readback', () => {
  it('never has more than maxInFlightSubmits submits queued', async () => {
    const x = rt.upload(randomF32(64 * 256, 3), 'x');
    const w = rt.upload(randomF32(256 * 256, 4), 'w');
    const y = rt.createBuffer(4 * 64 * 256, RW(), 'y');
    const reads: Promise<ArrayBuffer>[] = [];
    let most = 0;
    for (let i = 0; i < 12; i++) {
      const step = rt.beginStep(`q${i}`);
      mm.record(step, x, w, y, { M: 64, N: 256, K: 256 });
      reads.push(step.read(y, 0, 16));
      await step.submit();
      most = Math.max(most, rt.inFlightCount);
    }
    expect(most).toBeLessThanOrEqual(2);
    await Promise.all(reads);
    await rt.flush();
    expect(rt.inFlightCount).toBe(0);
    expect(rt.buffers.stats().inUse).toBe(0);
    for (const b of [x, w, y]) rt.destroyBuffer(b);
  });
});

describe('limits', () => {
  it('refuses a storage binding over the (overridden) max binding size, and accepts it split', async () => {
    const small = await createTestRuntime({ maxStorageBindingOverride: 2 ** 16 });
    try {
      const k = await MatmulKernels.create(small, 'f32');
      const K = 64;
      const N = 512; // W is 128 KiB: two 64 KiB chunks
      const x = small.upload(randomF32(K, 5), 'x');
      const wData = randomF32(N * K, 6);
      const w = small.upload(wData, 'w');
      const y = small.createBuffer(4 * N, RW(), 'y');
      const whole = small.beginStep('whole');
      expect(() => k.record(whole, x, w, y, { M: 1, N, K })).toThrow(GpuLimitError);
      const split = small.beginStep('split');
      const half = (N / 2) * K * 4;
      k.record(split, x, { buffer: w, offset: 0, size: half }, y, { M: 1, N: N / 2, K, yStride: N, yColOffset: 0 });
      k.record(split, x, { buffer: w, offset: half, size: half }, y, { M: 1, N: N / 2, K, yStride: N, yColOffset: N / 2 });
      const out = split.read(y);
      await split.submit();
      // Against the same kernel on the unsplit W in the big-binding runtime: bitwise equal.
      const xb = rt.upload(new Float32Array(await small.read(x)), 'x2');
      const wb = rt.upload(wData, 'w2');
      const yb = rt.createBuffer(4 * N, RW(), 'y2');
      const ref = rt.beginStep('ref');
      mm.record(ref, xb, wb, yb, { M: 1, N, K });
      const expected = ref.read(yb);
      await ref.submit();
      expect(new Uint32Array(await out)).toEqual(new Uint32Array(await expected));
      for (const b of [xb, wb, yb]) rt.destroyBuffer(b);
      expect(small.takeErrors()).toEqual([]);
    } finally {
      small.destroy();
    }
  });

  it('refuses more workgroups than the device allows in one dimension', async () => {
    const p = await rt.prepare(MATVEC_KERNEL, { ...mm.defines.matvec, VEC4: true });
    const b = rt.createBuffer(256, RW(), 'b');
    const step = rt.beginStep('too many');
    const tooMany = rt.capabilities.limits.maxComputeWorkgroupsPerDimension + 1;
    expect(() => step.dispatch(p, new Uint32Array(8), [b, b, b, b], [tooMany])).toThrow(GpuLimitError);
    rt.destroyBuffer(b);
  });
});

describe('timing', () => {
  it('times each dispatch with timestamp queries when the adapter has them, and refuses otherwise', async () => {
    if (!rt.capabilities.features.timestampQuery) {
      await expect(createTestRuntime({ timing: true })).rejects.toThrow(GpuLimitError);
      return;
    }
    const timed = await createTestRuntime({ timing: true });
    try {
      const k = await MatmulKernels.create(timed, 'f32');
      const x = timed.upload(randomF32(16 * 128, 7), 'x');
      const w = timed.upload(randomF32(128 * 128, 8), 'w');
      const y = timed.createBuffer(4 * 16 * 128, RW(), 'y');
      const step = timed.beginStep('timed');
      k.record(step, x, w, y, { M: 16, N: 128, K: 128 }, 'tiled');
      k.record(step, x, w, y, { M: 1, N: 128, K: 128 }, 'matvec');
      const { timings } = await step.submit();
      const t = await timings!;
      expect(t.map((e) => e.label)).toEqual(['tiled 16x128x128 f32', 'matvec 1x128x128 f32']);
      for (const e of t) expect(e.ns).toBeGreaterThanOrEqual(0);
      expect(timed.takeErrors()).toEqual([]);
    } finally {
      timed.destroy();
    }
  });
});

describe('device loss', () => {
  it('after the device is gone every entry point throws GpuDeviceLostError', async () => {
    const doomed = await createTestRuntime();
    const buf = doomed.createBuffer(64, RW(), 'b');
    doomed.device.destroy();
    await doomed.device.lost;
    await new Promise((r) => setTimeout(r, 0));
    expect(doomed.isLost).toBe(true);
    expect(() => doomed.beginStep()).toThrow(GpuDeviceLostError);
    expect(() => doomed.createBuffer(64, RW(), 'c')).toThrow(GpuDeviceLostError);
    await expect(doomed.read(buf)).rejects.toBeInstanceOf(GpuDeviceLostError);
    doomed.destroy();
  });
});
