// webslo beside llama.cpp on the same machine, the same model, in one run: `npm run bench:peer`.
// The model is synthetic (a real checkpoint's shapes, fixed-seed F16 weights, bench/synthetic-files.ts)
// and written twice: an HF folder that webslo loads (F16 as it is, and quantized to q4 at load) and
// GGUF files that llama.cpp loads through node-llama-cpp (F16, and Q4_0, whose layout is webslo's q4:
// blocks of 32 with one f16 scale). Both engines are driven through their public APIs:
//  - prefill: one request with a --prefill-token prompt and one output token; tok/s = prompt / time
//    (webslo: create() until the completion; llama.cpp: evaluate() until its first token).
//  - decode at batch B: B requests with distinct 16-token prompts, greedy, --decode tokens each,
//    started together; tok/s = tokens that arrive after the last request's first token / that
//    window (so prefill and ramp-up are outside it). llama.cpp decodes the B sequences of one
//    context together (node-llama-cpp batches their tokens into one llama_decode per step).
// Each measure: one warm-up, then the median of --repeat runs. Settings are each engine's defaults
// but those a comparison needs: webslo's FCFS scheduler (the planner adds nothing to one batch),
// no prefix caching, a step budget that holds the whole prompt; llama.cpp's batch size holds the
// prompt, its thread count is --threads. llama.cpp's backend: --llama-gpu auto|vulkan|cuda|false.
// On a software GPU (lavapipe) and llama.cpp's CPU build this is a smoke run: run it with
// --shape tiny. Results: --out DIR gets peer-<shape>.json and .md.

import { mkdtempSync, rmSync, writeFileSync, mkdirSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { getLlama, type Llama, type LlamaContextSequence, type Token } from 'node-llama-cpp';
import { createEngine, type Engine } from '../src/index.js';
import type { ModelConfig } from '../src/model/config.js';
import { PROFILES } from '../src/sim/profiles.js';
import { SHAPES } from './synthetic-model.js';
import { writeSyntheticModel } from './synthetic-files.js';

/** A small model for smoke runs on a software GPU. */
const TINY: ModelConfig = {
  ...SHAPES['qwen2.5-0.5b'],
  vocabSize: 4096,
  hiddenSize: 256,
  intermediateSize: 768,
  numLayers: 4,
  numHeads: 4,
  numKvHeads: 2,
  headDim: 64,
  maxPositionEmbeddings: 4096,
  bosTokenId: 1,
  eosTokenIds: [2],
};
const PROMPT = 16;

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const ids = (n: number, salt: number, vocab: number): number[] => Array.from({ length: n }, (_, i) => (3 + ((i * 7919 + salt * 104729) % (vocab - 3))) >>> 0);

/** Decode throughput from per-request token arrival times: tokens after the last first token / that window. */
export function decodeRate(arrivals: number[][]): number {
  const start = Math.max(...arrivals.map((a) => a[0]!));
  const end = Math.max(...arrivals.map((a) => a[a.length - 1]!));
  const tokens = arrivals.reduce((n, a) => n + a.filter((t) => t > start).length, 0);
  return tokens / ((end - start) / 1000);
}

interface Side {
  name: string;
  prefill(prompt: number[]): Promise<number>;
  decode(prompts: number[][], tokens: number): Promise<number[][]>;
  close(): Promise<void>;
}

async function webslo(folder: string, config: ModelConfig, quantize: 'none' | 'q4', maxBatch: number, prefill: number, decode: number): Promise<Side> {
  const engine: Engine = await createEngine({
    model: folder,
    worker: false,
    cache: false,
    quantize,
    scheduler: 'fcfs',
    prefixCaching: false,
    maxTokensPerStep: Math.max(512, prefill + maxBatch),
    // K and V in f32 for every request's tokens at once, and the prefill's.
    kvCacheBytes: Math.max(64 << 20, 2 * 4 * config.numLayers * config.numKvHeads * config.headDim * (maxBatch * (PROMPT + decode + 32) + prefill + 64)),
    profile: { ...(PROFILES.h200 as object), layers: config.numLayers },
  });
  const app = engine.app('peer', { ttftMs: 600_000, tpotMs: 60_000 });
  return {
    name: `webslo ${quantize === 'q4' ? 'q4' : 'f16'}`,
    async prefill(prompt) {
      const t0 = performance.now();
      await engine.completions.create({ app, prompt, max_tokens: 1 });
      return performance.now() - t0;
    },
    async decode(prompts, tokens) {
      return Promise.all(
        prompts.map(async (prompt) => {
          const stream = await engine.completions.create({ app, prompt, max_tokens: tokens, ignore_eos: true, stream: true, return_token_ids: true });
          const at: number[] = [];
          for await (const chunk of stream) {
            const n = chunk.choices[0]?.token_ids?.length ?? 0;
            for (let i = 0; i < n; i++) at.push(performance.now());
          }
          return at;
        }),
      );
    },
    close: () => engine.unload(),
  };
}

async function llamaCpp(llama: Llama, path: string, type: string, maxBatch: number, prefill: number, decode: number, threads: number): Promise<Side> {
  const model = await llama.loadModel({ modelPath: path, gpuLayers: llama.gpu ? 'max' : 0 });
  const context = await model.createContext({ sequences: maxBatch, contextSize: maxBatch * (PROMPT + decode + 32) + prefill + 64, batchSize: Math.max(512, prefill), threads });
  const sequences: LlamaContextSequence[] = Array.from({ length: maxBatch }, () => context.getSequence());
  return {
    name: `llama.cpp ${type} (${llama.gpu || 'cpu'})`,
    async prefill(prompt) {
      const s = sequences[0]!;
      await s.clearHistory();
      const t0 = performance.now();
      // Until the first generated token, as webslo's one-token completion: the last row's logits and a sample included.
      for await (const _token of s.evaluate(prompt as Token[], { temperature: 0, yieldEogToken: true })) break;
      return performance.now() - t0;
    },
    async decode(prompts, tokens) {
      return Promise.all(
        prompts.map(async (prompt, i) => {
          const s = sequences[i]!;
          await s.clearHistory();
          const at: number[] = [];
          for await (const _token of s.evaluate(prompt as Token[], { temperature: 0, yieldEogToken: true })) {
            at.push(performance.now());
            if (at.length === tokens) break;
          }
          return at;
        }),
      );
    },
    async close() {
      await context.dispose();
      await model.dispose();
    },
  };
}

const OPTIONS = ['--shape', '--batches', '--decode', '--prefill', '--repeat', '--threads', '--llama-gpu', '--out'];

export async function main(args: string[]): Promise<number> {
  for (let i = 0; i < args.length; i += 2) {
    if (!OPTIONS.includes(args[i]!) || args[i + 1] === undefined) throw new Error(`${args[i]}: expected one of ${OPTIONS.join(', ')}, each with a value`);
  }
  const arg = (name: string, dflt: string): string => {
    const i = args.indexOf(name);
    return i >= 0 ? args[i + 1]! : dflt;
  };
  const shapeName = arg('--shape', 'qwen2.5-1.5b');
  const config = shapeName === 'tiny' ? TINY : (SHAPES as Record<string, ModelConfig>)[shapeName];
  if (!config) throw new Error(`--shape ${shapeName}: expected tiny or one of ${Object.keys(SHAPES).join(', ')}`);
  const batches = arg('--batches', '1,8,32')
    .split(',')
    .map(Number)
    .filter((b) => b > 0);
  const decode = Number(arg('--decode', '64'));
  const prefillTokens = Number(arg('--prefill', '512'));
  const repeat = Number(arg('--repeat', '3'));
  const threads = Number(arg('--threads', String(availableParallelism())));
  const gpuArg = arg('--llama-gpu', 'auto');
  const out = arg('--out', '');
  const maxBatch = Math.max(...batches);

  const dir = mkdtempSync(join(tmpdir(), 'webslo-peer-'));
  const rows: { side: string; measure: string; tokPerS: number }[] = [];
  try {
    let t0 = performance.now();
    const files = writeSyntheticModel(config, dir, { seed: 1, gguf: ['F16', 'Q4_0'] });
    console.log(`${shapeName}: wrote the HF folder and GGUF F16 / Q4_0 in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
    const llama = await getLlama({ gpu: gpuArg === 'auto' ? 'auto' : gpuArg === 'false' ? false : (gpuArg as 'vulkan' | 'cuda'), build: 'never', logLevel: 'error' as never });
    const makers: (() => Promise<Side>)[] = [
      () => webslo(files.folder, config, 'none', maxBatch, prefillTokens, decode),
      () => webslo(files.folder, config, 'q4', maxBatch, prefillTokens, decode),
      () => llamaCpp(llama, files.gguf.F16!, 'F16', maxBatch, prefillTokens, decode, threads),
      () => llamaCpp(llama, files.gguf.Q4_0!, 'Q4_0', maxBatch, prefillTokens, decode, threads),
    ];
    for (const make of makers) {
      t0 = performance.now();
      const side = await make();
      console.log(`${side.name}: loaded in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
      try {
        const prompt = ids(prefillTokens, 0, config.vocabSize);
        const times: number[] = [];
        for (let r = 0; r <= repeat; r++) {
          const ms = await side.prefill(prompt.map((t) => (t + r) % config.vocabSize));
          if (r > 0) times.push(ms);
        }
        rows.push({ side: side.name, measure: `prefill ${prefillTokens}`, tokPerS: prefillTokens / (median(times) / 1000) });
        for (const b of batches) {
          const rates: number[] = [];
          for (let r = 0; r <= repeat; r++) {
            const prompts = Array.from({ length: b }, (_, i) => ids(PROMPT, 1 + i + r * b, config.vocabSize));
            const arrivals = await side.decode(prompts, decode);
            if (r > 0) rates.push(decodeRate(arrivals));
          }
          rows.push({ side: side.name, measure: `decode B=${b}`, tokPerS: median(rates) });
        }
        for (const row of rows.filter((x) => x.side === side.name)) console.log(`  ${row.measure}: ${row.tokPerS.toFixed(1)} tok/s`);
      } finally {
        await side.close();
      }
    }
    await llama.dispose();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }

  const sides = [...new Set(rows.map((r) => r.side))];
  const measures = [...new Set(rows.map((r) => r.measure))];
  const get = (side: string, measure: string): number => rows.find((r) => r.side === side && r.measure === measure)?.tokPerS ?? NaN;
  const [wF16, wQ4, lF16, lQ4] = sides;
  const lines = [
    `| ${shapeName}, tok/s | ${sides.join(' | ')} | webslo f16 / llama.cpp F16 | webslo q4 / llama.cpp Q4_0 |`,
    `|---|${sides.map(() => '---:').join('|')}|---:|---:|`,
    ...measures.map((m) => `| ${m} | ${sides.map((s) => get(s, m).toFixed(1)).join(' | ')} | ${(get(wF16!, m) / get(lF16!, m)).toFixed(2)}x | ${(get(wQ4!, m) / get(lQ4!, m)).toFixed(2)}x |`),
  ];
  console.log(`\n${lines.join('\n')}`);
  if (out) {
    mkdirSync(out, { recursive: true });
    writeFileSync(join(out, `peer-${shapeName}.json`), JSON.stringify({ shape: shapeName, config, batches, decode, prefill: prefillTokens, repeat, threads, rows }, null, 2));
    writeFileSync(join(out, `peer-${shapeName}.md`), `${lines.join('\n')}\n`);
  }
  return 0;
}
