// npm run bench:calibrate — the scheduler's performance model calibrated on a synthetic model with a
// real model's shapes (weights generated on the GPU, bench/synthetic-model.ts; no files), through the
// real ModelRunner and RunnerSession and src/runner/calibrate.ts: prefill chunks, decode batches
// at several contexts, verify batches, and speculative steps with SpeculativeDecoder's self draft (the first
// --draft-layers layers + final norm + LM head: k sequential draft passes, then the verify), so the
// profile's k2 (ms per draft step) is measured. Prints every sample beside the fitted prediction, the
// model's summary and R^2, and writes the profile JSON (PerformanceModel.toJson: what the scheduler
// loads).
//
// Options: --shape qwen2.5-0.5b|qwen2.5-1.5b|llama-3.2-1b|llama-3.2-3b (default qwen2.5-0.5b),
//          --dtype f16|f32|bf16 (weights; default f16), --math f32|f16 (the runner's matmul math,
//            default f32 as ModelRunner's),
//          --layers N (default: 2 on software adapters, else all), --draft-layers N (default layers/4,
//            at least 1; 0 = no speculative samples),
//          --repeats N (timed runs per shape, default 3; 1 on software adapters), --pieces N (default 2),
//          --budget-s S (the sweep's time budget: shapes not started by then are skipped and the
//            fit uses the samples so far; default 150),
//          --prefill-chunks, --prefill-contexts, --decode-batches, --decode-contexts, --verify-ks,
//          --verify-batches (comma lists; defaults below, smaller on software adapters),
//          --max-tokens-per-step N (default 512), --kv-pages N (default: what the sweep needs),
//          --out FILE (default bench/results/profile-<adapter>-<shape>.json, with -<dtype> and -<N>l
//            appended when those differ from their defaults).

import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { describeCapabilities, GpuRuntime } from '../src/gpu/index.js';
import { ModelRunner } from '../src/runner/model-runner.js';
import { RunnerSession } from '../src/runner/session.js';
import { adapterName, calibrate, type CalibrationOptions } from '../src/runner/calibrate.js';
import { adapterSlug, arg, isSoftwareAdapter } from './common.js';
import { assertFillChecked, buildSyntheticWeights, shapeArgs, shapeConfig } from './synthetic-model.js';

function intArg(args: string[], name: string, fallback: number, min = 1): number {
  const v = arg(args, name);
  if (v === undefined) return fallback;
  const n = Number(v);
  if (!Number.isInteger(n) || n < min) throw new RangeError(`${name} must be an integer >= ${min}, got ${v}`);
  return n;
}

function listArg(args: string[], name: string, fallback: number[]): number[] {
  const v = arg(args, name);
  if (v === undefined) return fallback;
  const xs = v.split(',').map((x) => Number(x.trim()));
  if (xs.some((x) => !Number.isInteger(x) || x < 0)) throw new RangeError(`${name} must be a comma list of integers >= 0, got ${v}`);
  return xs;
}

export async function main(args: string[]): Promise<number> {
  const benchStart = performance.now();
  const { shape, dtype } = shapeArgs(args);
  const math = arg(args, '--math') ?? 'f32';
  if (math !== 'f32' && math !== 'f16') throw new RangeError(`--math must be f32 or f16, got ${math}`);

  const rt = await GpuRuntime.create({ maxInFlightSubmits: 2 });
  const caps = rt.capabilities;
  const software = isSoftwareAdapter(caps);
  const config = shapeConfig(shape);
  const defaultLayers = software ? Math.min(2, config.numLayers) : config.numLayers;
  const layers = Math.min(intArg(args, '--layers', defaultLayers), config.numLayers);
  const draftLayers = Math.min(intArg(args, '--draft-layers', Math.max(1, Math.floor(layers / 4)), 0), layers);
  const repeats = intArg(args, '--repeats', software ? 1 : 3);
  const pieces = intArg(args, '--pieces', 2);
  const budgetS = Number(arg(args, '--budget-s') ?? 150);
  if (!(budgetS > 0)) throw new RangeError(`--budget-s must be a positive number, got ${arg(args, '--budget-s')}`);
  const maxTokensPerStep = intArg(args, '--max-tokens-per-step', 512);
  const sweep = {
    prefillChunks: listArg(args, '--prefill-chunks', software ? [16, 64] : [16, 64, 128, 256, 512]),
    prefillContexts: listArg(args, '--prefill-contexts', software ? [0, 32] : [0, 256]),
    decodeBatches: listArg(args, '--decode-batches', software ? [1, 4] : [1, 2, 4, 8, 16, 32]),
    decodeContexts: listArg(args, '--decode-contexts', software ? [32, 64] : [32, 256, 1024]),
    verifyKs: listArg(args, '--verify-ks', software ? [2] : [1, 2, 4, 6]),
    verifyBatches: listArg(args, '--verify-batches', software ? [1, 2] : [1, 4]),
  };
  // KV pages: every context sequence (the most any shape at a context uses) up to the longest
  // context plus the widest part, and a fresh sequence. Generous: unused pages cost only memory.
  const pool = Math.max(...sweep.decodeBatches, Math.max(...sweep.verifyBatches) + 4, 5);
  const widest = Math.max(...sweep.prefillChunks, 1 + Math.max(0, ...sweep.verifyKs));
  const pagesNeeded = pool * Math.ceil((Math.max(...sweep.decodeContexts, ...sweep.prefillContexts) + widest) / 16) + Math.ceil(widest / 16) + 8;
  const kvPages = intArg(args, '--kv-pages', pagesNeeded);

  const modelName = `synthetic ${shape} ${dtype}${layers < config.numLayers ? ` (${layers} of ${config.numLayers} layers)` : ''}${math === 'f16' ? ' f16-math' : ''}${draftLayers > 0 ? ` (self-draft ${draftLayers} layer${draftLayers === 1 ? '' : 's'})` : ''}`;
  console.log(`adapter: ${describeCapabilities(caps)}`);
  console.log(
    `model: ${modelName}: hidden ${config.hiddenSize}, intermediate ${config.intermediateSize}, ${config.numHeads}/${config.numKvHeads} heads x ${config.headDim}, vocab ${config.vocabSize}; runner math ${math}`,
  );
  console.log(
    `sweep: prefill ${sweep.prefillChunks.join(',')} @ ${sweep.prefillContexts.join(',')}; decode x${sweep.decodeBatches.join(',')} @ ${sweep.decodeContexts.join(',')}; ` +
      `verify k=${sweep.verifyKs.join(',')} x${sweep.verifyBatches.join(',')}${draftLayers > 0 ? `, also as speculative steps (self draft: ${draftLayers} layer${draftLayers === 1 ? '' : 's'} + LM head per draft pass)` : ''}; ` +
      `${repeats} timed run${repeats === 1 ? '' : 's'} per shape after a warm-up; budget ${budgetS} s`,
  );

  const synth = await buildSyntheticWeights(rt, config, dtype, layers);
  assertFillChecked(synth, dtype);
  console.log(`weights: ${(synth.weights.bytes / 2 ** 20).toFixed(0)} MiB generated on the GPU in ${synth.fillMs.toFixed(0)} ms`);
  const runner = await ModelRunner.fromWeights(rt, config, synth.weights, { kvPages, maxTokensPerStep, math });
  const session = new RunnerSession(runner);
  console.log(`runner: ${runner.maxTokens} tokens / ${runner.maxSequences} sequences per step, ${runner.numPages} KV pages of ${runner.pageSize}`);

  const sweepStart = performance.now();
  let lastReport = sweepStart;
  const options: CalibrationOptions = {
    adapter: adapterName(caps),
    model: modelName,
    ...sweep,
    repeats,
    pieces,
    timeBudgetMs: budgetS * 1000,
    ...(draftLayers > 0 ? { draftLayers } : {}),
    onShape: (done, total) => {
      const now = performance.now();
      if (now - lastReport > 10_000 || done === total) {
        console.log(`  shape ${done}/${total} (${((now - sweepStart) / 1000).toFixed(1)} s)`);
        lastReport = now;
      }
    },
  };
  const { model, samples, skipped } = await calibrate(session, options);
  const sweepS = (performance.now() - sweepStart) / 1000;
  const errors = rt.takeErrors();

  // Samples: one line per shape (median of its repeats) beside the raw prediction.
  console.log(`\nsamples (median of each shape's ${repeats} run${repeats === 1 ? '' : 's'}; pred = the fitted model without margin):`);
  console.log(`${'shape'.padEnd(46)}${'tokens'.padStart(7)}${'draft'.padStart(6)}${'kv read'.padStart(11)}${'ms'.padStart(10)}${'pred ms'.padStart(10)}${'err %'.padStart(8)}`);
  const byShape = new Map<string, typeof samples>();
  for (const s of samples) byShape.set(s.shape, [...(byShape.get(s.shape) ?? []), s]);
  for (const [name, ss] of byShape) {
    const ms = ss.map((s) => s.ms).sort((a, b) => a - b)[ss.length >> 1]!;
    const s = ss[0]!;
    const pred = model.predictRaw(s);
    console.log(
      `${name.padEnd(46)}${String(s.tokens).padStart(7)}${String(s.draftSteps).padStart(6)}${String(s.kvTokensRead).padStart(11)}${ms.toFixed(2).padStart(10)}${pred.toFixed(2).padStart(10)}${((100 * (pred - ms)) / ms).toFixed(1).padStart(8)}`,
    );
  }
  if (skipped.length) console.log(`skipped (the ${budgetS} s budget ran out): ${skipped.join('; ')}`);

  const p = model.profile;
  const ctx = 256;
  const decodeAt = (b: number): number => model.predictRaw({ tokens: b, kvTokensRead: b * (ctx + 1) * p.layers });
  console.log(`\nprofile: ${p.adapter}; ${p.model}; ${p.layers} layers, ${p.maxTokensPerStep} tokens per step`);
  console.log(`model: ${model.summary()}`);
  console.log(`R^2 ${p.r2.toFixed(4)}, p90 residual ${p.p90ResidualMs.toFixed(3)} ms, ${p.samples} samples, sweep ${sweepS.toFixed(1)} s`);
  console.log(
    `k2 (ms per draft step): ${p.pieces.map((q) => q.k2.toFixed(3)).join(', ')}${draftLayers > 0 ? ` (measured: self draft of ${draftLayers} layer${draftLayers === 1 ? '' : 's'})` : ' (no speculative samples)'}; ` +
      `predicted decode at context ${ctx}: B=1 ${decodeAt(1).toFixed(2)} ms, B=8 ${decodeAt(8).toFixed(2)} ms, B=32 ${decodeAt(32).toFixed(2)} ms; ` +
      `prefill 512 from 0: ${model.zeroLoadPrefillMs(512, Math.min(512, p.maxTokensPerStep)).toFixed(1)} ms`,
  );

  const slug = adapterSlug(caps);
  const suffix = `${dtype === 'f16' ? '' : `-${dtype}`}${layers === defaultLayers ? '' : `-${layers}l`}`;
  const out = arg(args, '--out') ?? `bench/results/profile-${slug}-${shape}${suffix}.json`;
  mkdirSync(dirname(out) || '.', { recursive: true });
  writeFileSync(out, model.toJson());
  console.log(`wrote ${out} (${((performance.now() - benchStart) / 1000).toFixed(0)} s in all)`);
  runner.destroy();
  rt.destroy();
  if (errors.length) {
    console.error(`GPU errors: ${errors.join('\n')}`);
    return 1;
  }
  return 0;
}
