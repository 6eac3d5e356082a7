// npm run bench:kernels — achieved GB/s and GFLOP/s of the matmul kernels beside ceilings measured
// in the same run on the same adapter: bandwidth = max(buffer copy, vec4 streaming read), both as
// bytes read; arithmetic = an f32 fma loop. Prints a table and writes bench/results/.
//
// Options: --size small|large (default: small on software adapters, large otherwise),
//          --out FILE (default bench/results/kernels-<adapter>.json), --trials N (default 3).

import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import fmaSource from '../shaders/bench_fma.wgsl?raw';
import { describeCapabilities, GpuRuntime, type KernelSpec } from '../src/gpu/index.js';
import { MatmulKernels, type MatmulPath, type WeightDType } from '../src/kernels/matmul.js';
import { toF16Array } from '../src/numeric/half.js';
import { adapterSlug, arg, bandwidthCeiling, isSoftwareAdapter, timeSteps } from './common.js';

const FMA: KernelSpec = { name: 'bench_fma', source: fmaSource, storage: ['read_write'], paramsBytes: 16 };
const FMA_ITERS = 4096;

interface Row {
  name: string;
  shape: string;
  ms: number;
  gbps: number;
  gflops: number;
  /** Share of the bandwidth ceiling (memory-bound rows) or the fma ceiling (compute-bound rows). */
  ofCeiling?: number;
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

  const rows: Row[] = [];
  const usage = GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST;

  // Bandwidth ceiling: max(buffer copy, vec4 streaming read), both counted as bytes read.
  const bw = await bandwidthCeiling(rt, large, trials);
  const mib = `${bw.bytes / 2 ** 20} MiB`;
  rows.push({ name: 'ceiling: buffer copy', shape: mib, ms: bw.bytes / bw.copyGBps / 1e6, gbps: bw.copyGBps, gflops: 0 });
  rows.push({ name: 'ceiling: vec4 stream read', shape: mib, ms: bw.bytes / bw.streamGBps / 1e6, gbps: bw.streamGBps, gflops: 0 });
  const bandwidth = Math.max(bw.copyGBps, bw.streamGBps);
  const wg = Math.min(256, caps.limits.maxComputeInvocationsPerWorkgroup);

  // Arithmetic ceiling: f32 fma chains.
  const fma = await rt.prepare(FMA, { WG: wg, ITERS: FMA_ITERS });
  const fmaGroups = large ? 8192 : 64;
  const fmaOut = rt.createBuffer(4 * wg * fmaGroups, usage, 'fma out');
  const fmaMs = await timeSteps(rt, trials, 2, (s) => s.dispatch(fma, new Float32Array([1, 0, 0, 0]), [fmaOut], [fmaGroups]));
  const fmaFlops = wg * fmaGroups * FMA_ITERS * 32;
  rows.push({ name: 'ceiling: f32 fma', shape: `${wg * fmaGroups} threads x ${FMA_ITERS}`, ms: fmaMs, gbps: 0, gflops: fmaFlops / fmaMs / 1e6 });
  rt.destroyBuffer(fmaOut);
  const arithmetic = rows[2]!.gflops;

  // The kernels: matvec (decode, memory-bound) and tiled matmul (prefill, compute-bound).
  const cases: { path: MatmulPath; dtype: WeightDType; M: number; N: number; K: number }[] = [];
  const mv = large ? 8192 : 2048;
  const mm = large ? 4096 : 512;
  for (const dtype of ['f32', 'f16'] as const) {
    cases.push({ path: 'matvec', dtype, M: 1, N: mv, K: mv });
    cases.push({ path: 'matvec', dtype, M: 4, N: mv, K: mv });
    cases.push({ path: 'tiled', dtype, M: mm, N: mm, K: mm });
  }
  for (const c of cases) {
    const k = await MatmulKernels.create(rt, c.dtype);
    const wValues = new Float32Array(c.N * c.K).map((_, i) => ((i * 2654435761) % 1000) / 1000 - 0.5);
    const w = rt.upload(c.dtype === 'f32' ? wValues : toF16Array(wValues), `W ${c.dtype}`);
    const x = rt.upload(new Float32Array(c.M * c.K).fill(0.5), 'X');
    const y = rt.createBuffer(4 * c.M * c.N, usage, 'Y');
    const reps = c.path === 'matvec' ? (large ? 50 : 4) : large ? 5 : 1;
    const ms = await timeSteps(rt, trials, reps, (s) => k.record(s, x, w, y, c, c.path));
    const wBytes = c.N * c.K * (c.dtype === 'f32' ? 4 : 2);
    const bytes = wBytes + 4 * c.M * c.K + 4 * c.M * c.N;
    const flops = 2 * c.M * c.N * c.K;
    const row: Row = { name: `${c.path} ${c.dtype}`, shape: `${c.M}x${c.N}x${c.K}`, ms, gbps: bytes / ms / 1e6, gflops: flops / ms / 1e6 };
    row.ofCeiling = c.path === 'matvec' ? row.gbps / bandwidth : row.gflops / arithmetic;
    rows.push(row);
    for (const b of [w, x, y]) rt.destroyBuffer(b);
  }

  const errors = rt.takeErrors();
  const pad = (s: string, n: number): string => s.padEnd(n);
  const num = (v: number, d = 1): string => (v ? v.toFixed(d) : '-').padStart(9);
  console.log(`\n${pad('kernel', 26)}${pad('shape', 22)}${'ms'.padStart(9)}${'GB/s'.padStart(9)}${'GFLOP/s'.padStart(9)}  of ceiling`);
  for (const r of rows) {
    const share = r.ofCeiling === undefined ? '' : `${(100 * r.ofCeiling).toFixed(0)}% of ${r.name.startsWith('matvec') ? 'bandwidth' : 'fma'}`;
    console.log(`${pad(r.name, 26)}${pad(r.shape, 22)}${num(r.ms, 3)}${num(r.gbps)}${num(r.gflops)}  ${share}`);
  }
  console.log(`\nbandwidth ceiling ${bandwidth.toFixed(1)} GB/s (bytes read), fma ceiling ${arithmetic.toFixed(1)} GFLOP/s`);

  const slug = adapterSlug(caps);
  const out = arg(args, '--out') ?? `bench/results/kernels-${slug}.json`;
  mkdirSync(dirname(out), { recursive: true });
  const record = { date: new Date().toISOString(), adapter: caps.adapter, features: caps.features, size, trials, bandwidthGBps: bandwidth, fmaGflops: arithmetic, rows };
  writeFileSync(out, `${JSON.stringify(record, null, 2)}\n`);
  console.log(`wrote ${out}`);
  rt.destroy();
  if (errors.length) {
    console.error(`GPU errors: ${errors.join('\n')}`);
    return 1;
  }
  return 0;
}
