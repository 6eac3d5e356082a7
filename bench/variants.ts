// npm run bench:variants — the kernel geometries side by side on this adapter, to choose defaults
// from measurements: for each reduction-lane count (4, 8, 16, 32: a device-wide constant of the
// reduction order, so each runs on its own device), matvec at Qwen2.5-1.5B's decode shapes (f32,
// f16 and q4 weights; q4 rows count the nibbles and scales read), the tiled matmul's 'compact' and
// 'wide' geometries at a 512-token prefill, and the whole forward step of the synthetic
// Qwen2.5-1.5B (decode B = 1 and 8, a 512-token prefill, with the faster tiled geometry; decode
// B = 1 again with the RMSNorms fused into the matvecs). Ratios to ceilings measured once, first.
// Every variant computes the same bits (bench/kernel-check.ts checks it), so the choice is only
// about speed. Writes <out>/variants-<adapter>.json and .md; prints a table last.
//
// Options: --out DIR (default bench/results), --lanes 4,8,16,32, --trials N (default 3),
//          --forward (default on real GPUs; --no-forward skips it), --size small|large.

import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describeCapabilities, GpuRuntime } from '../src/gpu/index.js';
import { MatmulKernels, TILED_VARIANTS, weightBytes, type TiledVariant, type WeightDType } from '../src/kernels/matmul.js';
import { adapterSlug, arg, isSoftwareAdapter, timeSteps } from './common.js';
import { forwardBench } from './forward.js';
import { measureCeilings, type Ceilings } from './kernels.js';
import { forwardSummary } from './report.js';
import { q4Bytes } from '../src/model/quantize-q4.js';
import { gpuFill, WEIGHT_HALF_WIDTH } from './synthetic-model.js';

interface VariantRow {
  lanes: number;
  kernel: string;
  shape: string;
  ms: number;
  rate: number;
  unit: 'GB/s' | 'GFLOP/s' | 'tok/s';
  /** Share of the bandwidth ceiling (matvec), the fma ceiling (tiled), or the weight-streaming roofline (decode). */
  share: number;
  error?: string;
}

const message = (e: unknown): string => (e instanceof Error ? e.message : String(e));

/** Matvec and tiled rows for one device (its reduceLanes). */
async function kernelVariants(rt: GpuRuntime, large: boolean, trials: number, c: Ceilings): Promise<{ rows: VariantRow[]; fasterTiled: TiledVariant }> {
  const lanes = rt.capabilities.reduceLanes;
  const usage = GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST;
  const rows: VariantRow[] = [];
  const s = large ? 1 : 8; // software adapters: shapes / s
  const decode = [
    { M: 1, N: 2048 / s, K: 1536 / s, what: 'qkv' },
    { M: 1, N: 17920 / s, K: 1536 / s, what: 'gate_up' },
    { M: 1, N: 1536 / s, K: 8960 / s, what: 'down' },
  ];
  const prefill = { M: 512 / s, N: 17920 / s, K: 1536 / s };
  const run = async (k: MatmulKernels, dtype: WeightDType, d: { M: number; N: number; K: number }, path: 'matvec' | 'tiled', reps: number): Promise<number> => {
    const w = rt.createBuffer(dtype === 'q4' ? q4Bytes(d.N, d.K) : d.N * d.K * weightBytes(dtype), usage, 'W');
    const x = rt.createBuffer(4 * d.M * d.K, usage, 'X');
    const y = rt.createBuffer(4 * d.M * d.N, usage, 'Y');
    try {
      await gpuFill(rt, [w], dtype, 0, WEIGHT_HALF_WIDTH);
      await gpuFill(rt, [x], 'f32', 0.5, 0.25);
      return await timeSteps(rt, trials, reps, (st) => k.record(st, x, w, y, d, path));
    } finally {
      for (const b of [w, x, y]) rt.destroyBuffer(b);
    }
  };
  for (const dtype of ['f32', 'f16', 'q4'] as const) {
    const k = await MatmulKernels.create(rt, dtype);
    for (const d of decode) {
      const ms = await run(k, dtype, d, 'matvec', large ? 50 : 2);
      const gbps = (d.N * d.K * weightBytes(dtype) + 4 * d.K + 4 * d.N) / ms / 1e6;
      rows.push({ lanes, kernel: `matvec ${dtype} (${d.what})`, shape: `${d.M}x${d.N}x${d.K}`, ms, rate: gbps, unit: 'GB/s', share: gbps / c.bandwidthGBps });
    }
  }
  let best: { variant: TiledVariant; ms: number } = { variant: 'compact', ms: Infinity };
  for (const variant of TILED_VARIANTS) {
    const shape = `${prefill.M}x${prefill.N}x${prefill.K}`;
    try {
      const k = await MatmulKernels.create(rt, 'f16', false, variant);
      const ms = await run(k, 'f16', prefill, 'tiled', large ? 5 : 1);
      const gflops = (2 * prefill.M * prefill.N * prefill.K) / ms / 1e6;
      rows.push({ lanes, kernel: `tiled ${variant} f16`, shape, ms, rate: gflops, unit: 'GFLOP/s', share: gflops / c.fmaGflops });
      if (ms < best.ms) best = { variant, ms };
    } catch (e) {
      rows.push({ lanes, kernel: `tiled ${variant} f16`, shape, ms: NaN, rate: NaN, unit: 'GFLOP/s', share: NaN, error: `not run: ${message(e)}` });
    }
  }
  return { rows, fasterTiled: best.variant };
}

export async function main(args: string[]): Promise<number> {
  const start = performance.now();
  const rt0 = await GpuRuntime.create({ maxInFlightSubmits: 2 });
  const caps0 = rt0.capabilities;
  const software = isSoftwareAdapter(caps0);
  const large = (arg(args, '--size') ?? (software ? 'small' : 'large')) === 'large';
  const trials = Number(arg(args, '--trials') ?? 3);
  const lanesList = (arg(args, '--lanes') ?? '4,8,16,32').split(',').map(Number);
  const forward = args.includes('--no-forward') ? false : args.includes('--forward') || !software;
  const outDir = arg(args, '--out') ?? 'bench/results';
  console.log(`adapter: ${describeCapabilities(caps0)}`);
  console.log(`variants: lanes ${lanesList.join(', ')}; ${large ? 'full' : 'small (software adapter)'} sizes; forward ${forward ? 'on' : 'off'}`);
  const { ceilings } = await measureCeilings(rt0, large, trials);
  const slug = adapterSlug(caps0);
  rt0.destroy();
  console.log(`ceilings: bandwidth ${ceilings.bandwidthGBps.toFixed(1)} GB/s (bytes read), fma ${ceilings.fmaGflops.toFixed(1)} GFLOP/s`);

  const rows: VariantRow[] = [];
  const pct = (v: number): string => (Number.isFinite(v) ? `${(100 * v).toFixed(1)}%` : '-');
  const num = (v: number, d = 1): string => (Number.isFinite(v) ? v.toFixed(d) : '-');
  mkdirSync(outDir, { recursive: true });
  const base = join(outDir, `variants-${slug}`);
  // Written after every lane count, so a phase timeout on a device keeps what ran.
  const save = (): void => {
    const md = [
      `# Kernel variants: ${describeCapabilities(caps0)}`,
      '',
      `${new Date().toISOString()}; ${software ? 'software adapter: small sizes (not results)' : 'full sizes'}; bandwidth ceiling ${num(ceilings.bandwidthGBps)} GB/s, fma ${num(ceilings.fmaGflops)} GFLOP/s.`,
      'Share: of the bandwidth ceiling (matvec), of the fma ceiling (tiled), of the weight-streaming roofline (decode B=1).',
      '',
      '| lanes | kernel | shape | ms | rate | share |',
      '|---:|---|---|---:|---:|---:|',
      ...rows.map((r) => `| ${r.lanes} | ${r.kernel} | ${r.shape} | ${num(r.ms, 3)} | ${r.error ?? `${num(r.rate)} ${r.unit}`} | ${pct(r.share)} |`),
      '',
    ].join('\n');
    writeFileSync(`${base}.json`, `${JSON.stringify({ date: new Date().toISOString(), adapter: caps0.adapter, software, ceilings, rows }, null, 2)}\n`);
    writeFileSync(`${base}.md`, md);
  };

  for (const lanes of lanesList) {
    let rt: GpuRuntime;
    try {
      rt = await GpuRuntime.create({ maxInFlightSubmits: 2, reduceLanes: lanes });
    } catch (e) {
      rows.push({ lanes, kernel: 'device', shape: '-', ms: NaN, rate: NaN, unit: 'GB/s', share: NaN, error: message(e) });
      continue;
    }
    const sub = rt.capabilities.features.subgroups && rt.capabilities.subgroupMinSize >= lanes ? 'subgroup shuffles' : 'workgroup-memory trees';
    console.log(`\n===== lanes ${lanes} (${sub})`);
    try {
      const { rows: kr, fasterTiled } = await kernelVariants(rt, large, trials, ceilings);
      rows.push(...kr);
      for (const r of kr) console.log(`${r.kernel.padEnd(24)} ${r.shape.padEnd(18)} ${r.error ?? `${r.ms.toFixed(3)} ms  ${r.rate.toFixed(1)} ${r.unit}  ${(100 * r.share).toFixed(1)}%`}`);
      if (forward) {
        const fargs = [
          '--shape',
          'qwen2.5-1.5b',
          '--dtype',
          'f16',
          '--batches',
          '1,8',
          '--tiled',
          fasterTiled,
          ...(software ? ['--layers', '1', '--prefill', '32', '--trials', '1', '--budget-ms', '0'] : ['--prefill', '512', '--budget-ms', '1000']),
        ];
        const bw = { copyGBps: ceilings.copyGBps, streamGBps: ceilings.streamGBps, bytes: ceilings.probeBytes };
        const { record } = await forwardBench(rt, fargs, bw);
        const s = forwardSummary(record, ceilings.bandwidthGBps);
        const b8 = record.decode.find((d) => d.batch === 8);
        const tag = `qwen2.5-1.5b f16 ${record.layers}/${record.totalLayers}L`;
        rows.push({ lanes, kernel: 'decode B=1', shape: tag, ms: 1000 / s.b1, rate: s.b1, unit: 'tok/s', share: s.ofRoofline });
        if (b8) rows.push({ lanes, kernel: 'decode B=8', shape: tag, ms: b8.stepMs, rate: b8.tokensPerS, unit: 'tok/s', share: NaN });
        rows.push({ lanes, kernel: `prefill (${fasterTiled})`, shape: tag, ms: NaN, rate: record.prefill.tokensPerS, unit: 'tok/s', share: NaN });
        // The same decode with the RMSNorms fused into the matvec reads (RunnerOptions.fuseNorm).
        const fused = (
          await forwardBench(
            rt,
            [
              '--shape',
              'qwen2.5-1.5b',
              '--dtype',
              'f16',
              '--batches',
              '1',
              '--fuse-norm',
              ...(software ? ['--layers', '1', '--prefill', '16', '--trials', '1', '--budget-ms', '0'] : ['--prefill', '16', '--budget-ms', '1000']),
            ],
            bw,
          )
        ).record;
        const fs = forwardSummary(fused, ceilings.bandwidthGBps);
        rows.push({ lanes, kernel: 'decode B=1 (fused norm)', shape: tag, ms: 1000 / fs.b1, rate: fs.b1, unit: 'tok/s', share: fs.ofRoofline });
      }
    } catch (e) {
      rows.push({ lanes, kernel: 'run', shape: '-', ms: NaN, rate: NaN, unit: 'GB/s', share: NaN, error: message(e) });
      console.log(`lanes ${lanes}: ${message(e)}`);
    } finally {
      rt.destroy();
      save();
    }
  }

  save();
  console.log(`\nwrote ${base}.json and ${base}.md (${((performance.now() - start) / 1000).toFixed(0)} s)\n`);
  console.log('===== variants summary');
  for (const r of rows)
    console.log(`lanes ${String(r.lanes).padStart(2)}  ${r.kernel.padEnd(24)} ${r.error ? r.error.slice(0, 90) : `${num(r.rate).padStart(9)} ${r.unit.padEnd(7)} ${pct(r.share).padStart(6)}`}`);
  return rows.some((r) => r.error && r.kernel !== `tiled wide f16`) ? 1 : 0;
}
