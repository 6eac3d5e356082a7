// Module worker: acquires its own GpuRuntime (navigator.gpu exists in dedicated workers, which is
// where the engine will run) and checks the matmul kernels against the float64 reference, the same
// contract as test/gpu/matmul.test.ts: within matmulErrorBound, and matvec == tiled bitwise.

import { expose } from 'comlink';
import { describeCapabilities, GpuRuntime } from '../../src/gpu/index.js';
import { MatmulKernels, type MatmulPath, type WeightDType } from '../../src/kernels/matmul.js';
import { fromF16Array, toF16Array } from '../../src/numeric/half.js';
import { matmulAbsReference, matmulErrorBound, matmulReference } from '../../src/reference/matmul.js';
import { randomF32 } from '../../test/helpers/random.js';
import { HARNESS_DTYPES } from './cases.js';
import type { HarnessResult, KernelWorkerApi, MatmulCase, MatmulCaseResult } from './protocol.js';

interface Weights {
  gpu: GPUBuffer;
  /** The exact values the GPU sees (after f16 rounding for f16 weights). */
  exact: Float64Array;
}

function uploadWeights(rt: GpuRuntime, dtype: WeightDType, N: number, K: number, seed: number): Weights {
  const w32 = randomF32(N * K, seed, 0.5);
  if (dtype === 'f32') return { gpu: rt.upload(w32, 'W'), exact: Float64Array.from(w32) };
  const bits = toF16Array(w32);
  return { gpu: rt.upload(bits, 'W f16'), exact: fromF16Array(bits) };
}

async function runMatmul(rt: GpuRuntime, kernels: MatmulKernels, x: Float32Array, w: GPUBuffer, { M, N, K }: MatmulCase, path: MatmulPath): Promise<Float32Array> {
  const xb = rt.upload(x, 'X');
  const yb = rt.createBuffer(4 * M * N, GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC, 'Y');
  const step = rt.beginStep(`harness ${path}`);
  kernels.record(step, xb, w, yb, { M, N, K }, path);
  const out = step.read(yb, 0, 4 * M * N);
  await step.submit();
  const y = new Float32Array(await out);
  rt.destroyBuffer(xb);
  rt.destroyBuffer(yb);
  return y;
}

async function checkCase(rt: GpuRuntime, kernels: MatmulKernels, c: MatmulCase): Promise<MatmulCaseResult> {
  const started = performance.now();
  // Same seeds as the Node tier uses for its shapes, so a failure reproduces there.
  const x = randomF32(c.M * c.K, 1000 + c.K, 1);
  const w = uploadWeights(rt, kernels.dtype, c.N, c.K, 2000 + c.N);
  const ref = matmulReference(x, w.exact, c);
  const abs = matmulAbsReference(x, w.exact, c);
  const viaMatvec = await runMatmul(rt, kernels, x, w.gpu, c, 'matvec');
  const viaTiled = await runMatmul(rt, kernels, x, w.gpu, c, 'tiled');
  rt.destroyBuffer(w.gpu);

  const matvecBits = new Uint32Array(viaMatvec.buffer);
  const tiledBits = new Uint32Array(viaTiled.buffer);
  let maxAbsReference = 0;
  let maxAbsError = 0;
  let matvecBoundRatio = 0;
  let tiledBoundRatio = 0;
  let bitwiseMismatches = 0;
  for (let i = 0; i < ref.length; i++) {
    const bound = matmulErrorBound(c.K, rt.capabilities.reduceLanes, abs[i]!);
    const errMatvec = Math.abs(viaMatvec[i]! - ref[i]!);
    const errTiled = Math.abs(viaTiled[i]! - ref[i]!);
    maxAbsReference = Math.max(maxAbsReference, Math.abs(ref[i]!));
    // NaN must not hide behind Math.max (which would return NaN and then compare false).
    maxAbsError = Math.max(maxAbsError, nanToInf(errMatvec), nanToInf(errTiled));
    matvecBoundRatio = Math.max(matvecBoundRatio, nanToInf(errMatvec / bound));
    tiledBoundRatio = Math.max(tiledBoundRatio, nanToInf(errTiled / bound));
    if (matvecBits[i] !== tiledBits[i]) bitwiseMismatches++;
  }
  return {
    ...c,
    dtype: kernels.dtype,
    outputs: ref.length,
    maxAbsReference,
    maxAbsError,
    matvecBoundRatio,
    tiledBoundRatio,
    bitwiseMismatches,
    bitwiseEqual: bitwiseMismatches === 0 && viaMatvec.length === viaTiled.length,
    sample: { matvec: viaMatvec[0]!, tiled: viaTiled[0]!, reference: ref[0]! },
    ms: performance.now() - started,
  };
}

function nanToInf(v: number): number {
  return Number.isNaN(v) ? Infinity : v;
}

async function runMatmulChecks(cases: readonly MatmulCase[]): Promise<HarnessResult> {
  const started = performance.now();
  let rt: GpuRuntime | undefined;
  try {
    rt = await GpuRuntime.create();
    const results: MatmulCaseResult[] = [];
    let compileMs = 0;
    for (const dtype of HARNESS_DTYPES) {
      const compileStart = performance.now();
      const kernels = await MatmulKernels.create(rt, dtype);
      compileMs += performance.now() - compileStart;
      for (const c of cases) results.push(await checkCase(rt, kernels, c));
    }
    const caps = rt.capabilities;
    return {
      ok: true,
      scope: typeof document === 'undefined' ? 'worker' : 'window',
      adapter: caps.adapter,
      summary: describeCapabilities(caps),
      features: caps.features,
      subgroupMinSize: caps.subgroupMinSize,
      subgroupMaxSize: caps.subgroupMaxSize,
      reduceLanes: caps.reduceLanes,
      cases: results,
      compileMs,
      gpuErrors: rt.takeErrors(),
      ms: performance.now() - started,
    };
  } catch (e) {
    // Typed errors lose their class over postMessage; keep name and message as data.
    const error = e instanceof Error ? e : new Error(String(e));
    return { ok: false, error: { name: error.name, message: error.message, ...(error.stack ? { stack: error.stack } : {}) } };
  } finally {
    rt?.destroy();
  }
}

const api: KernelWorkerApi = { runMatmulChecks };
expose(api);
