// npm run bench:kernels — achieved GB/s and GFLOP/s of the matmul kernels beside ceilings measured
// in the same run on the same adapter: bandwidth = max(buffer copy, vec4 streaming read), both as
// bytes read; arithmetic = an f32 fma loop. Prints a table and writes bench/results/.
// The functions (ceilings, kernel rows) are shared with bench/run-all.ts (npm run bench).
//
// Options: --size small|large (default: small on software adapters, large otherwise),
//          --out FILE (default bench/results/kernels-<adapter>.json), --trials N (default 3).

import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import fmaSource from '../shaders/bench_fma.wgsl?raw';
import { describeCapabilities, GpuRuntime, type KernelSpec } from '../src/gpu/index.js';
import { MatmulKernels, weightBytes, type MatmulPath, type WeightDType } from '../src/kernels/matmul.js';
import { adapterSlug, arg, bandwidthCeiling, isSoftwareAdapter, timeSteps } from './common.js';
import { gpuFill, WEIGHT_HALF_WIDTH } from './synthetic-model.js';
import { q4Bytes } from '../src/model/quantize-q4.js';

const FMA: KernelSpec = { name: 'bench_fma', source: fmaSource, storage: ['read_write'], paramsBytes: 16 };
const FMA_ITERS = 4096;

/** Weight dtypes of the kernel rows (adding one here adds its rows; an unsupported one gets a row saying why). */
export const KERNEL_DTYPES: readonly WeightDType[] = ['f32', 'f16', 'q4'];

export interface KernelRow {
  name: string;
  shape: string;
  ms: number;
  gbps: number;
  gflops: number;
  /** Share of the bandwidth ceiling (memory-bound rows) or the fma ceiling (compute-bound rows). */
  ofCeiling?: number;
  /** Which ceiling ofCeiling is a share of. */
  ceiling?: 'bandwidth' | 'fma';
  /** Why the row has no measurement (e.g. the dtype's kernels are not available here). */
  error?: string;
}

export interface Ceilings {
  copyGBps: number;
  streamGBps: number;
  /** max(copy, stream), bytes read. */
  bandwidthGBps: number;
  fmaGflops: number;
  /** Bytes of the copy / stream probes. */
  probeBytes: number;
}

/** The bandwidth and fma ceilings, with their rows for the table. */
export async function measureCeilings(rt: GpuRuntime, large: boolean, trials: number): Promise<{ ceilings: Ceilings; rows: KernelRow[] }> {
  const caps = rt.capabilities;
  const usage = GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST;
  const rows: KernelRow[] = [];
  const bw = await bandwidthCeiling(rt, large, trials);
  const mib = `${bw.bytes / 2 ** 20} MiB`;
  rows.push({ name: 'ceiling: buffer copy', shape: mib, ms: bw.bytes / bw.copyGBps / 1e6, gbps: bw.copyGBps, gflops: 0 });
  rows.push({ name: 'ceiling: vec4 stream read', shape: mib, ms: bw.bytes / bw.streamGBps / 1e6, gbps: bw.streamGBps, gflops: 0 });
  const wg = Math.min(256, caps.limits.maxComputeInvocationsPerWorkgroup);
  const fma = await rt.prepare(FMA, { WG: wg, ITERS: FMA_ITERS });
  const fmaGroups = large ? 8192 : 64;
  const fmaOut = rt.createBuffer(4 * wg * fmaGroups, usage, 'fma out');
  const fmaMs = await timeSteps(rt, trials, 2, (s) => s.dispatch(fma, new Float32Array([1, 0, 0, 0]), [fmaOut], [fmaGroups]));
  const fmaGflops = (wg * fmaGroups * FMA_ITERS * 32) / fmaMs / 1e6;
  rows.push({ name: 'ceiling: f32 fma', shape: `${wg * fmaGroups} threads x ${FMA_ITERS}`, ms: fmaMs, gbps: 0, gflops: fmaGflops });
  rt.destroyBuffer(fmaOut);
  const ceilings = { copyGBps: bw.copyGBps, streamGBps: bw.streamGBps, bandwidthGBps: Math.max(bw.copyGBps, bw.streamGBps), fmaGflops, probeBytes: bw.bytes };
  return { ceilings, rows };
}

/** The matmul kernels: matvec (decode, memory-bound) and tiled (prefill, compute-bound), per dtype. */
export async function kernelRows(rt: GpuRuntime, large: boolean, trials: number, ceilings: Ceilings, dtypes: readonly WeightDType[] = KERNEL_DTYPES): Promise<KernelRow[]> {
  const usage = GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST;
  const rows: KernelRow[] = [];
  const mv = large ? 8192 : 2048;
  const mm = large ? 4096 : 512;
  for (const dtype of dtypes) {
    const cases: { path: MatmulPath; M: number; N: number; K: number }[] = [
      { path: 'matvec', M: 1, N: mv, K: mv },
      { path: 'matvec', M: 4, N: mv, K: mv },
      { path: 'tiled', M: mm, N: mm, K: mm },
    ];
    let k: MatmulKernels;
    try {
      k = await MatmulKernels.create(rt, dtype);
    } catch (e) {
      const error = `not run: ${e instanceof Error ? e.message : String(e)}`;
      for (const c of cases) rows.push({ name: `${c.path} ${dtype}`, shape: `${c.M}x${c.N}x${c.K}`, ms: NaN, gbps: NaN, gflops: NaN, error });
      continue;
    }
    for (const c of cases) {
      const wBytes = dtype === 'q4' ? q4Bytes(c.N, c.K) : c.N * c.K * weightBytes(dtype);
      const w = rt.createBuffer(wBytes, usage, `W ${dtype}`);
      const x = rt.createBuffer(4 * c.M * c.K, usage, 'X');
      await gpuFill(rt, [w], dtype, 0, WEIGHT_HALF_WIDTH);
      await gpuFill(rt, [x], 'f32', 0.5, 0.25);
      const y = rt.createBuffer(4 * c.M * c.N, usage, 'Y');
      const reps = c.path === 'matvec' ? (large ? 50 : 4) : large ? 5 : 1;
      const ms = await timeSteps(rt, trials, reps, (s) => k.record(s, x, w, y, c, c.path));
      const bytes = wBytes + 4 * c.M * c.K + 4 * c.M * c.N;
      const flops = 2 * c.M * c.N * c.K;
      const row: KernelRow = { name: c.path === 'tiled' ? `tiled ${k.variant} ${dtype}` : `${c.path} ${dtype}`, shape: `${c.M}x${c.N}x${c.K}`, ms, gbps: bytes / ms / 1e6, gflops: flops / ms / 1e6 };
      row.ceiling = c.path === 'matvec' ? 'bandwidth' : 'fma';
      row.ofCeiling = c.path === 'matvec' ? row.gbps / ceilings.bandwidthGBps : row.gflops / ceilings.fmaGflops;
      rows.push(row);
      for (const b of [w, x, y]) rt.destroyBuffer(b);
    }
  }
  return rows;
}

export function printKernelRows(rows: readonly KernelRow[], ceilings: Ceilings): void {
  const pad = (s: string, n: number): string => s.padEnd(n);
  const num = (v: number, d = 1): string => (v ? v.toFixed(d) : '-').padStart(9);
  console.log(`\n${pad('kernel', 26)}${pad('shape', 22)}${'ms'.padStart(9)}${'GB/s'.padStart(9)}${'GFLOP/s'.padStart(9)}  of ceiling`);
  for (const r of rows) {
    if (r.error) {
      console.log(`${pad(r.name, 26)}${pad(r.shape, 22)}  ${r.error}`);
      continue;
    }
    const share = r.ofCeiling === undefined ? '' : `${(100 * r.ofCeiling).toFixed(0)}% of ${r.ceiling}`;
    console.log(`${pad(r.name, 26)}${pad(r.shape, 22)}${num(r.ms, 3)}${num(r.gbps)}${num(r.gflops)}  ${share}`);
  }
  console.log(`\nbandwidth ceiling ${ceilings.bandwidthGBps.toFixed(1)} GB/s (bytes read), fma ceiling ${ceilings.fmaGflops.toFixed(1)} GFLOP/s`);
}

export async function main(args: string[]): Promise<number> {
  const rt = await GpuRuntime.create({ maxInFlightSubmits: 2 });
  const caps = rt.capabilities;
  const software = isSoftwareAdapter(caps);
  const size = arg(args, '--size') ?? (software ? 'small' : 'large');
  const trials = Number(arg(args, '--trials') ?? 3);
  const large = size === 'large';
  console.log(`adapter: ${describeCapabilities(caps)}`);
  console.log(`size: ${size}, best of ${trials} trials after a warm-up; wall time of one submit / repetitions`);

  const { ceilings, rows: ceilingRows } = await measureCeilings(rt, large, trials);
  const rows = [...ceilingRows, ...(await kernelRows(rt, large, trials, ceilings))];
  const errors = rt.takeErrors();
  printKernelRows(rows, ceilings);

  const slug = adapterSlug(caps);
  const out = arg(args, '--out') ?? `bench/results/kernels-${slug}.json`;
  mkdirSync(dirname(out), { recursive: true });
  const record = { date: new Date().toISOString(), adapter: caps.adapter, features: caps.features, size, trials, bandwidthGBps: ceilings.bandwidthGBps, fmaGflops: ceilings.fmaGflops, rows };
  writeFileSync(out, `${JSON.stringify(record, null, 2)}\n`);
  console.log(`wrote ${out}`);
  rt.destroy();
  if (errors.length) {
    console.error(`GPU errors: ${errors.join('\n')}`);
    return 1;
  }
  return 0;
}
