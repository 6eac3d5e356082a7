// The benchmarks' synthetic model files (bench/synthetic-files.ts) are one model in every format:
// webslo's own loader reads the HF folder, and its float64 reference model on those weights gives
// the next-token log-probabilities that llama.cpp (node-llama-cpp, CPU) computes from the F16 GGUF
// file; the Q4_0 file is the same model quantized (llama.cpp agrees with it roughly, as 4-bit must).

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Llama } from 'node-llama-cpp';
import { cpuLlama, nextLogProbs, REFERENCE_CONTEXT } from '../helpers/llama-cpp.js';
import { writeSyntheticModel } from '../../bench/synthetic-files.js';
import type { ModelConfig } from '../../src/model/config.js';
import { loadModelFiles, tensorToFloat64 } from '../../src/model/load.js';
import { nodeDirectorySource } from '../../src/model/source.js';
import { ReferenceModel } from '../../src/reference/model.js';

const base = {
  vocabSize: 512,
  hiddenSize: 128,
  intermediateSize: 256,
  numLayers: 2,
  numHeads: 4,
  numKvHeads: 2,
  headDim: 32,
  rmsNormEps: 1e-5,
  maxPositionEmbeddings: 4096,
  oProjBias: false,
  qkNorm: false,
  bosTokenId: 1,
  hiddenAct: 'silu',
  torchDtype: 'float16',
} as const;
const CONFIGS: Record<string, ModelConfig> = {
  llama: {
    ...base,
    architecture: 'llama',
    ropeTheta: 5e5,
    ropeScaling: { type: 'llama3', factor: 8, lowFreqFactor: 1, highFreqFactor: 4, originalMaxPositionEmbeddings: 64 },
    tieWordEmbeddings: false,
    attentionBias: false,
    eosTokenIds: [2],
  },
  qwen2: { ...base, architecture: 'qwen2', ropeTheta: 1e6, ropeScaling: null, tieWordEmbeddings: true, attentionBias: true, eosTokenIds: [2] },
};

let llama: Llama;
let dir: string;
beforeAll(async () => {
  llama = await cpuLlama();
  dir = mkdtempSync(join(tmpdir(), 'webslo-synthetic-'));
}, 120_000);
afterAll(async () => {
  await llama?.dispose();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

async function llamaCppLogProbs(path: string, prompt: number[], vocab: number): Promise<Float64Array> {
  const model = await llama.loadModel({ modelPath: path, gpuLayers: 0 });
  const context = await model.createContext({ contextSize: 256, batchSize: 256, ...REFERENCE_CONTEXT });
  try {
    return await nextLogProbs(context.getSequence(), prompt, vocab);
  } finally {
    await context.dispose();
    await model.dispose();
  }
}

const logSoftmax = (logits: ArrayLike<number>): Float64Array => {
  const xs = Array.from(logits);
  const max = Math.max(...xs);
  const lse = max + Math.log(xs.reduce((s, x) => s + Math.exp(x - max), 0));
  return Float64Array.from(xs, (x) => x - lse);
};
const maxAbsDiff = (a: Float64Array, b: Float64Array): number => a.reduce((m, x, i) => Math.max(m, Math.abs(x - b[i]!)), 0);

describe('synthetic model files: one model in HF and GGUF form', () => {
  for (const [name, config] of Object.entries(CONFIGS)) {
    it(`${name}: webslo's loader + float64 reference = llama.cpp on the F16 GGUF; Q4_0 close`, async () => {
      const files = writeSyntheticModel(config, join(dir, name), { seed: 7, gguf: ['F16', 'Q4_0'] });
      const loaded = await loadModelFiles(nodeDirectorySource(files.folder));
      expect(loaded.config).toEqual(config);
      const ref = new ReferenceModel(loaded.config, (n) => tensorToFloat64(loaded.tensors.get(n)!));
      const prompt = Array.from({ length: 40 }, (_, i) => (i * 37 + 11) % config.vocabSize);
      const want = logSoftmax(ref.forward(prompt));
      const f16 = await llamaCppLogProbs(files.gguf.F16!, prompt, config.vocabSize);
      const q4 = await llamaCppLogProbs(files.gguf.Q4_0!, prompt, config.vocabSize);
      // Measured: log-probabilities spread over ~2 nats; F16 within 5e-4 (llama.cpp rounds activations
      // to F16), Q4_0 within 0.17.
      expect(Math.max(...want) - Math.min(...want)).toBeGreaterThan(1);
      expect(maxAbsDiff(f16, want)).toBeLessThan(3e-3);
      expect(maxAbsDiff(q4, want)).toBeLessThan(0.5);
    }, 120_000);
  }
});

describe("the peer benchmark's decode rate", () => {
  it('counts only tokens after the last first token, over that window', async () => {
    const { decodeRate } = await import('../../bench/llama-cpp-peer.js');
    // Two requests: first tokens at 0 and 100 ms; then 4 more tokens each until 500 ms.
    const arrivals = [
      [0, 50, 150, 250, 350, 450],
      [100, 200, 300, 400, 500],
    ];
    // After 100 ms: 150, 250, 350, 450 and 200, 300, 400, 500 = 8 tokens in 0.4 s.
    expect(decodeRate(arrivals)).toBeCloseTo(20, 10);
  });
});
