// Shared by the benchmarks: argument lookup, adapter naming, step timing, the bandwidth ceiling.

import streamSource from '../shaders/bench_stream_read.wgsl?raw';
import type { GpuCapabilities, GpuRuntime, KernelSpec, StepRecorder } from '../src/gpu/index.js';

export const STREAM: KernelSpec = { name: 'bench_stream_read', source: streamSource, storage: ['read', 'read_write'], paramsBytes: 16 };

export function arg(args: string[], name: string): string | undefined {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : undefined;
}

export function isSoftwareAdapter(caps: GpuCapabilities): boolean {
  return /llvmpipe|lavapipe|swiftshader|software/i.test(`${caps.adapter.description} ${caps.adapter.architecture}`);
}

/** A file-name-safe adapter name for bench/results/. */
export function adapterSlug(caps: GpuCapabilities): string {
  const a = caps.adapter;
  return (a.description || a.device || `${a.vendor} ${a.architecture}` || 'adapter')
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, '-')
    .replace(/^-|-$/g, '')
    .slice(0, 60);
}

/** Best wall time (ms) of `trials` steps each recording `reps` repetitions, after one warm-up. */
export async function timeSteps(rt: GpuRuntime, trials: number, reps: number, record: (step: StepRecorder) => void): Promise<number> {
  let best = Infinity;
  for (let t = 0; t <= trials; t++) {
    await rt.flush();
    const step = rt.beginStep('bench');
    for (let r = 0; r < reps; r++) record(step);
    const start = performance.now();
    await step.submit();
    await rt.flush();
    const ms = (performance.now() - start) / reps;
    if (t > 0) best = Math.min(best, ms);
  }
  return best;
}

/** Bandwidth ceiling: max(buffer copy, vec4 streaming read), both counted as bytes read. */
export async function bandwidthCeiling(rt: GpuRuntime, large: boolean, trials: number): Promise<{ copyGBps: number; streamGBps: number; bytes: number }> {
  const caps = rt.capabilities;
  const usage = GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST;
  const copyBytes = Math.min(large ? 1024 * 2 ** 20 : 64 * 2 ** 20, Math.floor(caps.limits.maxBufferSize / 4) * 4);
  const src = rt.createBuffer(copyBytes, usage, 'copy src');
  const dst = rt.createBuffer(copyBytes, usage, 'copy dst');
  const reps = large ? 10 : 4;
  const copyMs = await timeSteps(rt, trials, reps, (s) => s.copy(src, 0, dst, 0, copyBytes));
  rt.destroyBuffer(dst);
  const streamBytes = Math.min(copyBytes, Math.floor(caps.limits.maxStorageBufferBindingSize / 16) * 16);
  const wg = Math.min(256, caps.limits.maxComputeInvocationsPerWorkgroup);
  const threads = wg * Math.min(caps.limits.maxComputeWorkgroupsPerDimension, large ? 4096 : 256);
  const sums = rt.createBuffer(4 * threads, usage, 'sums');
  const stream = await rt.prepare(STREAM, { WG: wg });
  const params = new Uint32Array([streamBytes / 16, threads, 0, 0]);
  const streamMs = await timeSteps(rt, trials, reps, (s) => s.dispatch(stream, params, [{ buffer: src, offset: 0, size: streamBytes }, sums], [threads / wg]));
  rt.destroyBuffer(src);
  rt.destroyBuffer(sums);
  return { copyGBps: copyBytes / copyMs / 1e6, streamGBps: streamBytes / streamMs / 1e6, bytes: copyBytes };
}
