// npm run bench:forward — the whole forward step on a synthetic model with a real model's shapes
// (weights generated on the GPU, bench/synthetic-model.ts), through the real ModelRunner and
// RunnerSession: decode tokens/s at several batch sizes, prefill tokens/s of one chunk, and the
// weight bytes a decode step streams beside the bandwidth ceiling measured in the same run.
// Prints a table and writes bench/results/.
//
// Options: --shape qwen2.5-0.5b|qwen2.5-1.5b|llama-3.2-1b|llama-3.2-3b (default qwen2.5-0.5b),
//          --dtype f32|f16|bf16 (default f16),
//          --layers N (default: 2 on software adapters, else all),
//          --trials N (fewest timed trials per case: default 2 on software adapters, else 5; quick
//            steps get more, up to 10, while the case has run under 20 s / 2 s),
//          --budget-ms MS (the extra-trials budget per case; default 20000 on software, else 2000),
//          --prompt N (tokens of each sequence before decode, default 16), --batches 1,8,32,
//          --prefill N (the prefill chunk, default 512; less if maxTokensPerStep is lower),
//          --tiled auto|compact|wide (the prefill matmul geometry, default auto),
//          --fuse-norm (decode-sized steps apply RMSNorm inside the next matmul; RunnerOptions.fuseNorm),
//          --out FILE (default bench/results/forward-<adapter>-<shape>.json, with -<dtype> and
//            -<N>l appended when those differ from their defaults).
//
// Timing: the best of the trials after one warm-up (software adapters' prefill: the setup prefill
// steps are its warm-up). A trial is one step, timed from submit to the token ids on the CPU
// (StepFeatures.ms), with the whole session.step call (recording included) beside it. Decode trials
// run every sequence at the same context: each timed step appends one token to each of B sequences
// and the KV is truncated back afterwards. Per-layer figures come from a second runner over the same
// weights with only their first layer: per layer = (step - 1-layer step) / (layers - 1), and the
// rest of a step (embedding, final norm, LM head, argmax, fixed costs) = 1-layer step - per layer.

import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { describeCapabilities, GpuRuntime } from '../src/gpu/index.js';
import type { ModelConfig } from '../src/model/config.js';
import { destroyWeights, type ModelWeights } from '../src/runner/gpu-weights.js';
import { ModelRunner } from '../src/runner/model-runner.js';
import { TILED_VARIANTS, type TiledChoice } from '../src/kernels/matmul.js';
import { RunnerSession } from '../src/runner/session.js';
import { adapterSlug, arg, bandwidthCeiling, isSoftwareAdapter } from './common.js';
import { assertFillChecked, buildSyntheticWeights, decodeWeightBytes, layerMatrixShapes, shapeArgs, shapeConfig } from './synthetic-model.js';

function positiveInt(value: string | undefined, name: string, fallback: number): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) throw new RangeError(`${name} must be a positive integer, got ${value}`);
  return n;
}

interface Timed {
  /** Best submit-to-ids time, ms. */
  ms: number;
  /** Best time of the whole session.step call (KV bookkeeping, recording, submit, readback), ms. */
  hostMs: number;
  /** Timed trials the best was taken over. */
  trials: number;
}

interface DecodeRow {
  batch: number;
  trials: number;
  stepMs: number;
  hostMs: number;
  tokensPerS: number;
  /** Step time over the batch-1 step time. */
  vsBatch1: number;
  /** The same step through a runner with only the first layer (NaN when layers = 1). */
  oneLayerMs: number;
  /** (stepMs - oneLayerMs) / (layers - 1); NaN when not positive (load noise) or layers = 1. */
  perLayerMs: number;
  /** oneLayerMs - perLayerMs: embedding, final norm, LM head, argmax and fixed costs. */
  headMs: number;
  /** stepMs / layers (embedding and LM head included: an upper bound per layer). */
  stepPerLayerMs: number;
  /** stepMs + (totalLayers - layers) * perLayerMs (an estimate for the whole model when layers < total). */
  fullModelMs: number;
  fullModelTokensPerS: number;
}

interface Trial {
  /** Runs one step and returns its features.ms; its wall time is taken around it. */
  run: () => Promise<number>;
  /** Undo its state (KV) so every trial starts from the same one. */
  after: () => void;
}

/** How long to keep taking trials past the minimum, and the most trials of one case. */
interface TrialBudget {
  minTrials: number;
  budgetMs: number;
  maxTrials: number;
}

/**
 * Best of at least `minTrials` trials after `warmups` warm-up rounds, more while the case's trials
 * have taken less than `budgetMs` (quick steps get more trials: the machine may be shared), for
 * several cases at once: each trial runs every case in turn, so cases compared with each other (a
 * step and its 1-layer twin) see the same load.
 */
async function bestOfEach(budget: TrialBudget, cases: readonly Trial[], warmups = 1): Promise<Timed[]> {
  const best = cases.map(() => ({ ms: Infinity, hostMs: Infinity, trials: 0 }));
  for (let t = 0; t < warmups; t++) for (const c of cases) await timeOne(c);
  const start = performance.now();
  for (let t = 1; t <= budget.maxTrials && (t <= budget.minTrials || performance.now() - start < budget.budgetMs); t++) {
    for (const [i, c] of cases.entries()) {
      const r = await timeOne(c);
      const b = best[i]!;
      b.ms = Math.min(b.ms, r.ms);
      b.hostMs = Math.min(b.hostMs, r.hostMs);
      b.trials = t;
    }
  }
  return best;
}

async function timeOne(c: Trial): Promise<{ ms: number; hostMs: number }> {
  const start = performance.now();
  const ms = await c.run();
  const hostMs = performance.now() - start;
  c.after();
  return { ms, hostMs };
}

/** Deterministic token ids spread over the vocabulary. */
function tokenIds(n: number, salt: number, vocab: number): number[] {
  return Array.from({ length: n }, (_, i) => (1000 + (salt * 7919 + i) * 104729) % vocab);
}

export type BandwidthProbe = Awaited<ReturnType<typeof bandwidthCeiling>>;
export type ForwardRecord = Awaited<ReturnType<typeof forwardBench>>['record'];

export async function main(args: string[]): Promise<number> {
  const benchStart = performance.now();
  const rt = await GpuRuntime.create({ maxInFlightSubmits: 2 });
  const { record, out } = await forwardBench(rt, args);
  mkdirSync(dirname(out), { recursive: true });
  writeFileSync(out, `${JSON.stringify(record, null, 2)}\n`);
  console.log(`wrote ${out} (${((performance.now() - benchStart) / 1000).toFixed(0)} s in all)`);
  rt.destroy();
  if (record.gpuErrors.length) {
    console.error(`GPU errors: ${record.gpuErrors.join('\n')}`);
    return 1;
  }
  return 0;
}

/**
 * The forward benchmark on `rt` (options as above; `bw`: a bandwidth ceiling measured already in
 * this run, else measured here). Prints its tables; returns the record and its default file name.
 * The weights and runners are destroyed before it returns.
 */
export async function forwardBench(rt: GpuRuntime, args: string[], bw0?: BandwidthProbe) {
  const { shape, dtype } = shapeArgs(args);
  const prompt = positiveInt(arg(args, '--prompt'), '--prompt', 16);
  const prefillChunk = positiveInt(arg(args, '--prefill'), '--prefill', 512);
  const batchesArg = (arg(args, '--batches') ?? '1,8,32').split(',').map((b) => positiveInt(b, '--batches', 1));

  const caps = rt.capabilities;
  const software = isSoftwareAdapter(caps);
  const trials = positiveInt(arg(args, '--trials'), '--trials', software ? 2 : 5);
  const budgetMs = Number(arg(args, '--budget-ms') ?? (software ? 20000 : 2000));
  const budget: TrialBudget = { minTrials: trials, budgetMs, maxTrials: Math.max(trials, 10) };
  const config: ModelConfig = shapeConfig(shape);
  const defaultLayers = software ? Math.min(2, config.numLayers) : config.numLayers;
  const layers = Math.min(positiveInt(arg(args, '--layers'), '--layers', defaultLayers), config.numLayers);
  const partial = layers < config.numLayers;
  console.log(`adapter: ${describeCapabilities(caps)}`);
  console.log(
    `model: ${shape} shapes (hidden ${config.hiddenSize}, intermediate ${config.intermediateSize}, ${config.numHeads}/${config.numKvHeads} heads x ${config.headDim}, vocab ${config.vocabSize}, ` +
      `${config.tieWordEmbeddings ? 'tied' : 'untied'} embeddings), synthetic ${dtype} weights, ${layers} of ${config.numLayers} layers`,
  );
  console.log(
    `timing: best of >= ${trials} trials (more while a case has run < ${budget.budgetMs / 1000} s, up to ${budget.maxTrials}) after a warm-up${software ? ' (prefill: the setup prefill)' : ''}; ` +
      `a step is timed from submit to the token ids on the CPU`,
  );

  // 1. The bandwidth ceiling, before the weights take memory.
  const bw = bw0 ?? (await bandwidthCeiling(rt, !software, trials));
  const ceiling = Math.max(bw.copyGBps, bw.streamGBps);

  // 2. The synthetic model.
  const synth = await buildSyntheticWeights(rt, config, dtype, layers);
  // Everything on the GPU goes when this returns or throws (a failed case must not starve the next).
  const cleanup: (() => void)[] = [() => destroyWeights(rt, synth.weights)];
  try {
    const weights: ModelWeights = synth.weights;
    assertFillChecked(synth, dtype);
    const wb = decodeWeightBytes(config, dtype, layers);
    const wbFull = decodeWeightBytes(config, dtype, config.numLayers);
    const chunkCount = [weights.embed, ...weights.layers.flatMap((l) => [l.qkv, l.o, l.gateUp, l.down]), ...(weights.lmHead === weights.embed ? [] : [weights.lmHead])].reduce(
      (n, m) => n + m.chunks.length,
      0,
    );
    console.log(
      `weights: ${(weights.bytes / 2 ** 20).toFixed(0)} MiB on the GPU in ${synth.buffers} buffers (${chunkCount} matrix chunks within the ${(Math.min(caps.limits.maxStorageBufferBindingSize, caps.limits.maxBufferSize) / 2 ** 20).toFixed(0)} MiB binding), ` +
        `generated on the GPU in ${synth.fillMs.toFixed(0)} ms; LM head in ${weights.lmHead.chunks.length} chunks`,
    );

    // 3. Runners: the model, and the same weights with only the first layer (to split layers from the rest).
    const batches = [...new Set(batchesArg)].sort((a, b) => a - b);
    const maxB = Math.max(...batches);
    const pagesPerSeq = Math.ceil((prompt + 1) / 16);
    const kvPages = Math.max(256, maxB * pagesPerSeq + Math.ceil(prefillChunk / 16) + 4);
    const tiledMatmul = (arg(args, '--tiled') ?? 'auto') as TiledChoice;
    if (tiledMatmul !== 'auto' && !TILED_VARIANTS.includes(tiledMatmul)) throw new RangeError(`--tiled must be one of auto, ${TILED_VARIANTS.join(', ')}, got ${tiledMatmul}`);
    const fuseNorm = args.includes('--fuse-norm');
    const runner = await ModelRunner.fromWeights(rt, config, weights, { kvPages, tiledMatmul, fuseNorm });
    cleanup.push(() => runner.destroy());
    const oneRunner =
      layers > 1 ? await ModelRunner.fromWeights(rt, config, { ...weights, layers: weights.layers.slice(0, 1) }, { kvPages, maxTokensPerStep: runner.maxTokens, tiledMatmul, fuseNorm }) : null;
    if (oneRunner) cleanup.push(() => oneRunner.destroy());
    if (runner.numPages < maxB * pagesPerSeq + Math.ceil(Math.min(prefillChunk, runner.maxTokens) / runner.pageSize)) {
      throw new Error(`the KV cache holds ${runner.numPages} pages on this device; --batches/--prompt need more`);
    }
    const usable = batches.filter((b) => b <= runner.maxSequences && b <= runner.maxTokens);
    const skipped = batches.filter((b) => !usable.includes(b));
    if (skipped.length) console.log(`batches ${skipped.join(', ')} skipped: this runner takes at most ${runner.maxSequences} sequences / ${runner.maxTokens} tokens per step`);
    if (usable.length === 0) throw new Error(`no batch size in --batches fits this runner`);
    if (prompt > runner.maxTokens) throw new Error(`--prompt ${prompt} exceeds ${runner.maxTokens} tokens per step`);

    const setup = async (r: ModelRunner): Promise<{ session: RunnerSession; ids: number[] }> => {
      const session = new RunnerSession(r);
      const ids = Array.from({ length: Math.max(...usable) }, () => session.newSequence());
      // Prefill every sequence's prompt, packed into steps of at most maxTokens tokens / maxSequences sequences.
      const perStep = Math.max(1, Math.min(r.maxSequences, Math.floor(r.maxTokens / prompt)));
      for (let i = 0; i < ids.length; i += perStep) {
        await session.step(ids.slice(i, i + perStep).map((id) => ({ id, tokens: tokenIds(prompt, id, config.vocabSize), outputs: 'none' as const })));
      }
      return { session, ids };
    };

    const decodeTrial = (s: { session: RunnerSession; ids: number[] }, B: number): Trial => {
      const seqs = s.ids.slice(0, B).map((id) => ({ id, tokens: tokenIds(1, id + 77, config.vocabSize) }));
      return {
        run: async () => {
          const res = await s.session.step(seqs);
          if (res.tokens.length !== B || res.tokens.some((t) => t >= config.vocabSize)) throw new Error(`decode B=${B}: bad ids ${res.tokens.join(',')}`);
          return res.features.ms;
        },
        after: () => seqs.forEach((q) => s.session.kv.truncate(q.id, prompt)),
      };
    };

    const prefillTokens = Math.min(prefillChunk, runner.maxTokens);
    const prefillTrial = (s: RunnerSession): Trial => {
      const tokens = tokenIds(prefillTokens, 4242, config.vocabSize);
      let id = 0;
      return {
        run: async () => {
          id = s.newSequence();
          return (await s.step([{ id, tokens, outputs: 'last' }])).features.ms;
        },
        after: () => s.free(id),
      };
    };

    const full = await setup(runner);
    // The synthetic model must compute finite logits (inf/NaN could run at other speeds).
    {
      const id = full.ids[0]!;
      const res = await full.session.step([{ id, tokens: tokenIds(1, 5, config.vocabSize) }], { logits: true });
      full.session.kv.truncate(id, prompt);
      const bad = res.logits!.findIndex((v) => !Number.isFinite(v));
      if (bad >= 0) throw new Error(`the synthetic model's logit ${bad} is ${res.logits![bad]}`);
    }
    const one = oneRunner ? await setup(oneRunner) : null;
    const decodeFull = new Map<number, Timed>();
    const decodeOne = new Map<number, Timed>();
    for (const B of usable) {
      const [f, o] = await bestOfEach(budget, one ? [decodeTrial(full, B), decodeTrial(one, B)] : [decodeTrial(full, B)]);
      decodeFull.set(B, f!);
      if (o) decodeOne.set(B, o);
    }
    // On a software adapter a 512-token warm-up costs as much as a trial, and setup() already ran
    // prefill steps through these runners (same pipelines, bind groups and buffers; RoPE table within
    // its first 1024 positions): no separate warm-up there.
    const [prefillFull, prefillOne] = (await bestOfEach(budget, one ? [prefillTrial(full.session), prefillTrial(one.session)] : [prefillTrial(full.session)], software ? 0 : 1)) as [
      Timed,
      Timed | undefined,
    ];

    // 4. Figures. A 1-layer step as slow as the full one is load noise: no per-layer figure then (NaN).
    const perLayer = (fullMs: number, oneMs: number): number => (fullMs > oneMs ? (fullMs - oneMs) / (layers - 1) : NaN);
    const positive = (v: number): number => (v > 0 ? v : NaN);
    const b1 = decodeFull.get(usable[0]!)!.ms;
    const rows: DecodeRow[] = usable.map((B) => {
      const f = decodeFull.get(B)!;
      const oneLayerMs = decodeOne.get(B)?.ms ?? NaN;
      const perLayerMs = perLayer(f.ms, oneLayerMs);
      const fullModelMs = f.ms + (config.numLayers - layers) * perLayerMs;
      return {
        batch: B,
        trials: f.trials,
        stepMs: f.ms,
        hostMs: f.hostMs,
        tokensPerS: (1000 * B) / f.ms,
        vsBatch1: f.ms / b1,
        oneLayerMs,
        perLayerMs,
        headMs: positive(oneLayerMs - perLayerMs),
        stepPerLayerMs: f.ms / layers,
        fullModelMs,
        fullModelTokensPerS: (1000 * B) / fullModelMs,
      };
    });
    const prefillOneMs = prefillOne?.ms ?? NaN;
    const prefillPerLayerMs = perLayer(prefillFull.ms, prefillOneMs);
    const prefillHeadMs = positive(prefillOneMs - prefillPerLayerMs);
    const prefillFullModelMs = prefillFull.ms + (config.numLayers - layers) * prefillPerLayerMs;
    // Matmul work of one layer over the prefill chunk (2 flops per weight per token; attention apart).
    const layerParams = layerMatrixShapes(config).reduce((n, m) => n + m.rows * m.cols, 0);
    const prefillLayerGflop = (2 * prefillTokens * layerParams) / 1e9;
    const prefillLayerGflops = prefillLayerGflop / (prefillPerLayerMs / 1000);
    const decode1 = rows.find((r) => r.batch === 1);
    const gbps = (bytes: number, ms: number): number => bytes / ms / 1e6;
    const implied = decode1
      ? {
          stepGBps: gbps(wb.total, decode1.stepMs),
          lmHeadGBps: gbps(wb.lmHead, decode1.headMs),
          perLayerGBps: gbps(wb.perLayer, decode1.perLayerMs),
        }
      : null;

    const errors = rt.takeErrors();

    // 5. Table.
    const pad = (s: string, n: number): string => s.padEnd(n);
    const num = (v: number, d = 1, w = 10): string => (Number.isFinite(v) ? v.toFixed(d) : '-').padStart(w);
    const mb = (b: number): string => `${(b / 1e6).toFixed(1)} MB`;
    console.log(`\nbandwidth ceiling: ${ceiling.toFixed(1)} GB/s (buffer copy ${bw.copyGBps.toFixed(1)}, vec4 stream read ${bw.streamGBps.toFixed(1)}; bytes read, ${bw.bytes / 2 ** 20} MiB)`);
    console.log(`\ndecode (each of B sequences at context ${prompt} brings 1 token), ${layers} layer${layers === 1 ? '' : 's'}:`);
    console.log(
      `${pad('B', 4)}${'n'.padStart(3)}${'step ms'.padStart(10)}${'incl. rec'.padStart(10)}${'tok/s'.padStart(10)}${`x B=${usable[0]}`.padStart(8)}${'1-layer'.padStart(10)}${'layer ms'.padStart(10)}${'rest ms'.padStart(10)}${'step/L ms'.padStart(11)}` +
        (partial ? `${`est ${config.numLayers}L ms`.padStart(13)}${'est tok/s'.padStart(11)}` : ''),
    );
    for (const r of rows) {
      console.log(
        `${pad(String(r.batch), 4)}${String(r.trials).padStart(3)}${num(r.stepMs)}${num(r.hostMs)}${num(r.tokensPerS)}${num(r.vsBatch1, 2, 8)}${num(r.oneLayerMs)}${num(r.perLayerMs, 2)}${num(r.headMs)}${num(r.stepPerLayerMs, 2, 11)}` +
          (partial ? `${num(r.fullModelMs, 0, 13)}${num(r.fullModelTokensPerS, 2, 11)}` : ''),
      );
    }
    if (layers > 1 && [...rows.map((r) => r.perLayerMs), prefillPerLayerMs].some(Number.isNaN))
      console.log('  (a - below: the 1-layer step was not faster than the full one, or the rest came out <= 0: load noise hides the split)');
    console.log(
      `  n: timed trials; step ms: submit to ids; incl. rec: the whole session.step call; 1-layer: the same step through a runner with only the first layer;` +
        (layers > 1
          ? `\n  layer ms = (step - 1-layer) / ${layers - 1}; rest ms = 1-layer - layer ms (embedding, final norm, LM head, argmax, fixed costs); `
          : `\n  (--layers 1: no per-layer split) `) +
        `step/L ms = step / ${layers} (the rest included)` +
        (partial ? `\n  est ${config.numLayers}L = step + ${config.numLayers - layers} x layer ms (an extrapolation, not a measurement)` : ''),
    );
    const prefillNote = prefillTokens < prefillChunk ? ` (maxTokensPerStep on this device is ${runner.maxTokens}, below ${prefillChunk})` : '';
    console.log(`\nprefill: one ${prefillTokens}-token chunk${prefillNote}, output row = last, best of ${prefillFull.trials}`);
    const split = layers > 1 ? `; 1-layer ${num(prefillOneMs, 1, 0)} ms; per layer ${num(prefillPerLayerMs, 1, 0)} ms; rest ${num(prefillHeadMs, 1, 0)} ms` : '';
    const estimate = partial && layers > 1 ? `; est ${config.numLayers} layers ${num(prefillFullModelMs, 0, 0)} ms = ${num((1000 * prefillTokens) / prefillFullModelMs, 1, 0)} tok/s` : '';
    const rate = layers > 1 ? `${num(prefillLayerGflops, 2, 0)} GFLOP/s over layer ms` : `${num(prefillLayerGflop / (prefillFull.ms / 1000), 2, 0)} GFLOP/s over the whole step`;
    console.log(
      `  ${prefillFull.ms.toFixed(1)} ms, ${((1000 * prefillTokens) / prefillFull.ms).toFixed(1)} tok/s (incl. rec ${prefillFull.hostMs.toFixed(1)} ms)${split}${estimate}` +
        `\n  one layer's matmuls are ${prefillLayerGflop.toFixed(1)} GFLOP here: ${rate} (attention and the rest counted in the time, not the flops)`,
    );
    console.log(
      `\nweight bytes per decode step (${dtype}): ${layers} layer${layers === 1 ? '' : 's'} x ${mb(wb.perLayer)} + LM head ${mb(wb.lmHead)} = ${mb(wb.total)}` +
        (partial ? ` (all ${config.numLayers} layers: ${mb(wbFull.total)})` : ''),
    );
    if (implied) {
      console.log(
        `implied at B=1: ${implied.stepGBps.toFixed(2)} GB/s over the step (${((100 * implied.stepGBps) / ceiling).toFixed(0)}% of the ${ceiling.toFixed(1)} GB/s ceiling); ` +
          `LM head bytes over the rest ${num(implied.lmHeadGBps, 2, 0)} GB/s, one layer's bytes over layer ms ${num(implied.perLayerGBps, 2, 0)} GB/s`,
      );
    }

    const slug = adapterSlug(caps);
    const suffix = `${dtype === 'f16' ? '' : `-${dtype}`}${layers === defaultLayers ? '' : `-${layers}l`}`;
    const out = arg(args, '--out') ?? `bench/results/forward-${slug}-${shape}${suffix}.json`;
    const record = {
      date: new Date().toISOString(),
      adapter: caps.adapter,
      features: caps.features,
      limits: { maxStorageBufferBindingSize: caps.limits.maxStorageBufferBindingSize, maxBufferSize: caps.limits.maxBufferSize },
      shape,
      config,
      dtype,
      layers,
      totalLayers: config.numLayers,
      trials: budget,
      prompt,
      timing:
        'best of trials (at least minTrials, more within budgetMs per case, at most maxTrials) after one warm-up (prefill on software adapters: the setup prefill steps); ms = submit to ids on the CPU (StepFeatures.ms), hostMs = whole session.step call',
      bandwidth: { copyGBps: bw.copyGBps, streamGBps: bw.streamGBps, ceilingGBps: ceiling, probeBytes: bw.bytes },
      weights: {
        bytesOnGpu: weights.bytes,
        buffers: synth.buffers,
        matrixChunks: chunkCount,
        lmHeadChunks: weights.lmHead.chunks.length,
        fillMs: synth.fillMs,
        fillCheckMaxError: synth.checkMaxError,
        decodeBytesPerLayer: wb.perLayer,
        decodeBytesLmHead: wb.lmHead,
        decodeBytesPerStep: wb.total,
        decodeBytesPerStepAllLayers: wbFull.total,
      },
      runner: { maxTokensPerStep: runner.maxTokens, maxSequencesPerStep: runner.maxSequences, kvPages: runner.numPages, logitRowsPerChunk: runner.logitRowsPerChunk },
      decode: rows,
      skippedBatches: skipped,
      prefill: {
        tokens: prefillTokens,
        trials: prefillFull.trials,
        limitedByMaxTokensPerStep: prefillTokens < prefillChunk,
        ms: prefillFull.ms,
        hostMs: prefillFull.hostMs,
        tokensPerS: (1000 * prefillTokens) / prefillFull.ms,
        oneLayerMs: prefillOneMs,
        headMs: prefillHeadMs,
        perLayerMs: prefillPerLayerMs,
        fullModelMs: prefillFullModelMs,
        layerMatmulGflop: prefillLayerGflop,
        layerGflopPerS: prefillLayerGflops,
        fullModelTokensPerS: (1000 * prefillTokens) / prefillFullModelMs,
      },
      impliedAtBatch1: implied,
      gpuErrors: errors,
    };
    return { record, out };
  } finally {
    for (const f of cleanup.reverse()) f();
  }
}
