// npm run bench:spec — speculative decoding on a synthetic model pair with real models' shapes and a
// controlled acceptance rate: the draft is a real synthetic model (its forward passes are run and
// paid for, one per draft token) whose proposals are replaced by an oracle's: the target's own
// greedy token with probability alpha, else another token. Reports tokens per target forward and
// the wall-clock decode speed-up against plain decoding for each k, with the draft's cost and
// without it (oracle only), and the cost of a (k+1)-row verify relative to a 1-row step (the ratio
// the scheduler's performance model needs).
//
// Options: --shape (target, as bench:forward, default qwen2.5-1.5b), --draft-shape (default
//          qwen2.5-0.5b), --dtype f32|f16|bf16 (default f16),
//          --layers N (target and draft layers; default 2 on software adapters, else all), --alpha A (default 0.8),
//          --ks 1,2,4,8, --tokens N (decoded per run; default 24 on software adapters, else 128),
//          --out FILE (default bench/results/spec-<adapter>-<shape>.json).

import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { describeCapabilities, GpuRuntime } from '../src/gpu/index.js';
import type { SourceWeightDType } from '../src/kernels/matmul.js';
import { ModelRunner } from '../src/runner/model-runner.js';
import { RunnerSession } from '../src/runner/session.js';
import { SpeculativeDecoder } from '../src/speculative/speculative-decoder.js';
import { adapterSlug, arg, isSoftwareAdapter } from './common.js';
import { buildSyntheticWeights, isShapeName, shapeConfig } from './synthetic-model.js';

interface Row {
  k: number;
  /** Whether the draft model's forwards were run (else the oracle alone, free). */
  draftCost: boolean;
  tokens: number;
  targetSteps: number;
  tokensPerTargetStep: number;
  alphaEstimate: number | null;
  wallMs: number;
  speedup: number;
  verifyMs: number;
  verifyVsDecode: number;
}

/** A deterministic stream in [0, 1). */
function lcg(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 4294967296;
  };
}

export async function main(args: string[]): Promise<number> {
  const shape = arg(args, '--shape') ?? 'qwen2.5-1.5b';
  if (!isShapeName(shape)) throw new RangeError(`unknown --shape ${shape}`);
  const draftShape = arg(args, '--draft-shape') ?? 'qwen2.5-0.5b';
  if (!isShapeName(draftShape)) throw new RangeError(`unknown --draft-shape ${draftShape}`);
  const dtype = (arg(args, '--dtype') ?? 'f16') as SourceWeightDType;
  if (!['f32', 'f16', 'bf16'].includes(dtype)) throw new RangeError(`--dtype must be f32, f16 or bf16`);
  const alpha = Number(arg(args, '--alpha') ?? 0.8);
  const ks = (arg(args, '--ks') ?? '1,2,4,8').split(',').map(Number);
  const rt = await GpuRuntime.create();
  const caps = rt.capabilities;
  const software = isSoftwareAdapter(caps);
  const config = shapeConfig(shape);
  const layers = Number(arg(args, '--layers') ?? (software ? 2 : config.numLayers));
  const T = Number(arg(args, '--tokens') ?? (software ? 24 : 128));
  console.log(`adapter: ${describeCapabilities(caps)}`);
  const draftConfig = shapeConfig(draftShape);
  const draftLayers = Math.min(layers, draftConfig.numLayers);
  console.log(
    `target: synthetic ${shape} (${dtype}), ${layers} of ${config.numLayers} layers; draft: synthetic ${draftShape}, ${draftLayers} layers, proposals from an oracle with alpha ${alpha}; ${T} tokens per run`,
  );

  const { weights } = await buildSyntheticWeights(rt, config, dtype, layers);
  const runner = await ModelRunner.fromWeights(rt, config, weights, { kvPages: 256, maxTokensPerStep: 64 });
  const session = new RunnerSession(runner);
  const draftWeights = await buildSyntheticWeights(rt, draftConfig, dtype, draftLayers, 7);
  const draftRunner = await ModelRunner.fromWeights(rt, draftConfig, draftWeights.weights, { kvPages: 256, maxTokensPerStep: 64 });
  const draftSession = new RunnerSession(draftRunner);
  const prompt = Array.from({ length: 16 }, (_, i) => (i * 7919) % config.vocabSize);

  // Plain decoding: the truth the oracle draws from, its wall time, and the 1-row step time.
  const plainId = session.newSequence();
  const warm = await session.prefill(plainId, prompt.slice(0, -1), undefined, { outputs: 'none' });
  void warm;
  let pending = prompt[prompt.length - 1]!;
  const truth: number[] = [];
  const decodeMs: number[] = [];
  const plainStart = performance.now();
  for (let i = 0; i < T + 16; i++) {
    const r = await session.step([{ id: plainId, tokens: [pending] }]);
    pending = r.tokens[0]!;
    truth.push(pending);
    if (i < T) decodeMs.push(r.features.ms);
  }
  const plainWall = ((performance.now() - plainStart) * T) / (T + 16);
  session.free(plainId);
  decodeMs.sort((a, b) => a - b);
  const decodeMedian = decodeMs[decodeMs.length >> 1]!;

  const rows: Row[] = [];
  for (const draftCost of [true, false]) {
    for (const k of ks) {
      const next = lcg(1000 + k);
      // The draft model runs one forward per proposed token on its own sequence (rolled back after
      // each step), so its cost is real; the oracle then decides what it proposes.
      const draftSeq = draftSession.newSequence();
      await draftSession.prefill(draftSeq, prompt, undefined, { outputs: 'none' });
      const spec = new SpeculativeDecoder(session, {
        kind: 'oracle',
        propose: async (req, kk) => {
          const done = req.tokens.length - req.promptLength;
          if (draftCost) {
            const base = draftSession.kv.length(draftSeq);
            for (let j = 0; j < kk; j++) await draftSession.step([{ id: draftSeq, tokens: [truth[done + j]!] }]);
            draftSession.kv.truncate(draftSeq, base);
          }
          return Array.from({ length: kk }, (_, j) => (next() < alpha ? truth[done + j]! : (truth[done + j]! + 1) % config.vocabSize));
        },
      });
      const id = await spec.start(prompt, { k });
      const verifyMs: number[] = [];
      const start = performance.now();
      while (spec.output(id).length < T) {
        const { verify } = await spec.step([id]);
        verifyMs.push(verify.features.ms);
      }
      const wallMs = performance.now() - start;
      const out = spec.output(id);
      if (out.slice(0, T).some((t, i) => t !== truth[i])) throw new Error(`k=${k}: speculative output differs from plain greedy decoding`);
      verifyMs.sort((a, b) => a - b);
      const vMedian = verifyMs[verifyMs.length >> 1]!;
      const stats = spec.requestStats(id);
      rows.push({
        k,
        draftCost,
        tokens: out.length,
        targetSteps: spec.targetSteps,
        tokensPerTargetStep: out.length / spec.targetSteps,
        alphaEstimate: stats.alpha,
        wallMs,
        speedup: plainWall / T / (wallMs / out.length),
        verifyMs: vMedian,
        verifyVsDecode: vMedian / decodeMedian,
      });
      spec.finish(id);
      draftSession.free(draftSeq);
    }
  }

  const errors = rt.takeErrors();
  console.log(`\nplain decoding: ${(plainWall / T).toFixed(2)} ms/token wall, 1-row step ${decodeMedian.toFixed(2)} ms (median)`);
  console.log(`${'draft'.padEnd(8)}${'k'.padStart(3)}${'tok/target step'.padStart(17)}${'alpha est.'.padStart(12)}${'speed-up'.padStart(10)}${'verify ms'.padStart(11)}${'verify/1-row'.padStart(14)}`);
  for (const r of rows) {
    console.log(
      `${(r.draftCost ? 'model' : 'oracle').padEnd(8)}${String(r.k).padStart(3)}${r.tokensPerTargetStep.toFixed(2).padStart(17)}${(r.alphaEstimate ?? NaN).toFixed(3).padStart(12)}${`${r.speedup.toFixed(2)}x`.padStart(10)}${r.verifyMs.toFixed(2).padStart(11)}${r.verifyVsDecode.toFixed(2).padStart(14)}`,
    );
  }
  const slug = adapterSlug(caps);
  const out = arg(args, '--out') ?? `bench/results/spec-${slug}-${shape}.json`;
  mkdirSync(dirname(out), { recursive: true });
  writeFileSync(
    out,
    `${JSON.stringify({ date: new Date().toISOString(), adapter: caps.adapter, shape, draftShape, dtype, layers, draftLayers, alpha, tokens: T, plainMsPerToken: plainWall / T, decodeStepMs: decodeMedian, rows }, null, 2)}\n`,
  );
  console.log(`wrote ${out}`);
  runner.destroy();
  draftRunner.destroy();
  rt.destroy();
  if (errors.length) {
    console.error(`GPU errors: ${errors.join('\n')}`);
    return 1;
  }
  return 0;
}
