// npm run bench — every benchmark in one process on one adapter: the ceilings (buffer copy and vec4
// stream read as bytes read, f32 fma), the matmul kernel rows, attention decode over long contexts,
// decode and prefill tokens/s of real-shape synthetic models (weights filled on the GPU) against the
// weight-streaming roofline, and the engine step's CPU overhead at 64 running requests. Writes
// <out>/<adapter>.json (everything) and <out>/<adapter>.md (a table per section); prints a short
// summary last. On a software adapter everything shrinks (small kernels, short contexts, one layer,
// a small vocabulary for the overhead run) so it finishes in minutes; those numbers are not results.
//
// Options: --out DIR (default bench/results), --size small|large (default: small on software
//          adapters), --trials N, --sections ceilings,kernels,attention,forward,overhead (default
//          all; the ceilings always run), --shapes a,b (forward shapes), --running N (default 64).

import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describeCapabilities, GpuRuntime } from '../src/gpu/index.js';
import type { WeightDType } from '../src/kernels/matmul.js';
import { attentionCase, attentionRows, type AttentionRow } from './attention.js';
import { adapterSlug, arg, isSoftwareAdapter } from './common.js';
import { forwardBench } from './forward.js';
import { kernelRows, measureCeilings, printKernelRows, type Ceilings, type KernelRow } from './kernels.js';
import { markdown, summary, type ForwardEntry, type RunAllRecord } from './report.js';
import { stepOverhead } from './step-overhead.js';
import { isShapeName, shapeConfig, type ShapeName } from './synthetic-model.js';

/** Weight dtypes of the forward rows (adding one here adds its rows; a dtype that fails gets a row saying why). */
export const FORWARD_DTYPES: readonly WeightDType[] = ['f16', 'q4'];
export const FORWARD_SHAPES: readonly ShapeName[] = ['qwen2.5-1.5b', 'llama-3.2-3b'];
const SECTIONS = ['ceilings', 'kernels', 'attention', 'forward', 'overhead'] as const;

const message = (e: unknown): string => (e instanceof Error ? `${e.name}: ${e.message}` : String(e));

export async function main(args: string[]): Promise<number> {
  const start = performance.now();
  const rt = await GpuRuntime.create({ maxInFlightSubmits: 2 });
  const caps = rt.capabilities;
  const software = isSoftwareAdapter(caps);
  const large = (arg(args, '--size') ?? (software ? 'small' : 'large')) === 'large';
  const trials = Number(arg(args, '--trials') ?? (large ? 3 : 2));
  const sections = new Set((arg(args, '--sections') ?? SECTIONS.join(',')).split(','));
  const shapes = (arg(args, '--shapes') ?? FORWARD_SHAPES.join(',')).split(',');
  for (const s of shapes) if (!isShapeName(s)) throw new RangeError(`--shapes: unknown shape ${s}`);
  const running = Number(arg(args, '--running') ?? 64);
  const outDir = arg(args, '--out') ?? 'bench/results';
  const options = { size: large ? 'large' : 'small', trials, sections: [...sections], shapes, running, forwardDtypes: FORWARD_DTYPES };
  console.log(`adapter: ${describeCapabilities(caps)}`);
  console.log(`npm run bench: ${JSON.stringify(options)}${software ? ' (software adapter: small sizes)' : ''}`);
  const sectionSeconds: Record<string, number> = {};
  const timed = async <T>(name: string, f: () => Promise<T>): Promise<T> => {
    const t0 = performance.now();
    console.log(`\n===== ${name}`);
    try {
      return await f();
    } finally {
      sectionSeconds[name] = (performance.now() - t0) / 1000;
      console.log(`===== ${name}: ${sectionSeconds[name].toFixed(1)} s`);
    }
  };

  const slug = adapterSlug(caps);
  mkdirSync(outDir, { recursive: true });
  const json = join(outDir, `${slug}.json`);
  const md = join(outDir, `${slug}.md`);
  // The record so far, written after every section: a phase timeout on a device keeps what ran.
  let ceilings: Ceilings | null = null;
  let ceilingRows: KernelRow[] = [];
  let kernels: KernelRow[] = [];
  let attention: AttentionRow[] = [];
  const forward: ForwardEntry[] = [];
  let overhead: RunAllRecord['stepOverhead'] = null;
  const gpuErrors: string[] = [];
  const save = (): RunAllRecord => {
    const record: RunAllRecord = {
      date: new Date().toISOString(),
      adapter: caps.adapter,
      adapterText: describeCapabilities(caps),
      software,
      options,
      ceilings: ceilings!,
      kernels: [...ceilingRows, ...kernels],
      attention,
      forward,
      stepOverhead: overhead,
      gpuErrors,
      sectionSeconds,
      wallSeconds: (performance.now() - start) / 1000,
    };
    writeFileSync(json, `${JSON.stringify(record, null, 2)}\n`);
    writeFileSync(md, markdown(record));
    return record;
  };

  // 1. Ceilings and kernels.
  ({ ceilings, rows: ceilingRows } = await timed('ceilings', () => measureCeilings(rt, large, trials)));
  save();
  const c = ceilings;
  if (sections.has('kernels')) kernels = await timed('kernels', () => kernelRows(rt, large, trials, c));
  printKernelRows([...ceilingRows, ...kernels], c);
  save();

  // 2. Attention decode over long contexts.
  if (sections.has('attention')) {
    attention = await timed('attention', async () => {
      const contexts = software ? [1024, 2048] : [4096, 8192, 16384, 32768];
      const batches = software ? [1] : [1, 8];
      const attShapes: ShapeName[] = software ? ['qwen2.5-1.5b'] : ['qwen2.5-1.5b', 'llama-3.2-3b'];
      const cases = attShapes.flatMap((s) => batches.flatMap((B) => contexts.flatMap((ctx) => (['split', 'whole'] as const).map((form) => attentionCase(s, shapeConfig(s), ctx, B, form)))));
      const rows = await attentionRows(rt, cases, trials, software ? 1 : 5, c.bandwidthGBps);
      for (const r of rows) {
        console.log(
          `${r.shape.padEnd(14)} ${`${r.heads}/${r.kvHeads}x${r.headDim}`.padEnd(10)} ${r.form.padEnd(6)} B=${String(r.batch).padEnd(3)} ctx ${String(r.context).padStart(6)}  ` +
            (r.error ?? `${r.ms.toFixed(3)} ms  ${r.gbps.toFixed(1)} GB/s  ${(100 * r.ofBandwidth).toFixed(1)}% of bandwidth`),
        );
      }
      return rows;
    });
  }

  save();

  // 3. Forward steps of real-shape models.
  if (sections.has('forward')) {
    const bw = { copyGBps: c.copyGBps, streamGBps: c.streamGBps, bytes: c.probeBytes };
    for (const shape of shapes) {
      for (const dtype of FORWARD_DTYPES) {
        await timed(`forward ${shape} ${dtype}`, async () => {
          const fargs = [
            '--shape',
            shape,
            '--dtype',
            dtype,
            ...(software ? ['--layers', '1', '--batches', '1,8', '--prefill', '32', '--trials', '1', '--budget-ms', '0'] : ['--batches', '1,8,32', '--prefill', '512']),
          ];
          try {
            forward.push({ shape, dtype, record: (await forwardBench(rt, fargs, bw)).record });
          } catch (e) {
            console.log(`forward ${shape} ${dtype}: not run: ${message(e)}`);
            forward.push({ shape, dtype, error: message(e) });
          }
          save();
        });
      }
    }
  }

  // 4. The engine step's CPU overhead at `running` decodes.
  if (sections.has('overhead')) {
    overhead = await timed('engine step overhead', async () => {
      const shape: ShapeName = 'qwen2.5-1.5b';
      // Software: the same kernels and dispatches per layer on tiny widths and 4 layers (64 rows of
      // the real widths take seconds per step there); the CPU side is what is measured.
      const tiny = { hiddenSize: 256, intermediateSize: 512, numHeads: 4, numKvHeads: 2, headDim: 64, vocabSize: 4096 };
      const config = { ...shapeConfig(shape), ...(software ? tiny : {}) };
      try {
        const r = await stepOverhead(rt, {
          shape: software ? `${shape} layout, tiny widths` : shape,
          config,
          dtype: 'f16',
          layers: software ? 4 : config.numLayers,
          running,
          promptTokens: 16,
          warmupSteps: 3,
          steps: software ? 5 : 12,
        });
        const m = r.median;
        console.log(
          `median of ${r.steps.length} steps at ${running} decodes: plan ${m.planMs.toFixed(3)} ms, record ${m.recordMs.toFixed(3)} ms, submit ${m.submitMs.toFixed(3)} ms (queue.submit ${m.queueSubmitMs.toFixed(3)}), other ${m.otherMs.toFixed(3)} ms; CPU ${m.cpuMs.toFixed(3)} ms; GPU wait ${m.waitMs.toFixed(3)} ms; step ${m.stepMs.toFixed(3)} ms`,
        );
        console.log(`per step: ${JSON.stringify(r.perStep)}`);
        return r;
      } catch (e) {
        console.log(`not run: ${message(e)}`);
        return { error: message(e) };
      }
    });
  }

  gpuErrors.push(...rt.takeErrors());
  const record = save();
  rt.destroy();
  console.log(`\nwrote ${json} and ${md}`);
  console.log(`\n===== bench summary (${record.wallSeconds.toFixed(0)} s; ${software ? 'software adapter: small sizes, not results' : 'full sizes'})`);
  console.log(summary(record));
  const failed = forward.some((e) => e.error) || (overhead !== null && 'error' in overhead) || gpuErrors.length > 0;
  return failed ? 1 : 0;
}
