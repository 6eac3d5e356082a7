// The GGUF writer (bench/gguf/) checked by llama.cpp itself: each shared fixture written as GGUF,
// loaded by node-llama-cpp (llama.cpp's prebuilt CPU backend), must give HF transformers' reference
// outputs: the 24 greedy tokens of all five prompts, and the log-probabilities of the whole
// vocabulary after each prompt. This is what makes llama.cpp a fair peer in the GPU benchmark: the
// same weights, the same model. The KV cache is F32 here (llama.cpp's default F16 cache moves
// log-probabilities by up to 1.4e-2 on these models, enough to flip a greedy token at 200 positions).

import { mkdtempSync, rmSync, writeFileSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { getLlama, type ControlledEvaluateInputItem, type Llama, type Token } from 'node-llama-cpp';
import { ggufFromHfFolder, permuteForGgmlRope, type GgufMatrixType } from '../../bench/gguf/from-hf.js';

interface Case {
  prompt: number[];
  last_logits: number[];
  greedy: number[];
}

const FIXTURES = ['tiny-qwen2', 'tiny-llama3', 'tiny-mistral', 'tiny-qwen3b'] as const;
let llama: Llama;
let dir: string;

beforeAll(async () => {
  llama = await getLlama({ gpu: false, build: 'never', logLevel: 'error' as never });
  dir = mkdtempSync(join(tmpdir(), 'webslo-gguf-'));
}, 120_000);
afterAll(async () => {
  await llama?.dispose();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

/** llama.cpp's greedy tokens and its full next-token log-probabilities after each case's prompt. */
async function runLlamaCpp(name: string, matrices: GgufMatrixType, cases: Case[]): Promise<{ greedy: number[]; logProbs: Float64Array }[]> {
  const path = join(dir, `${name}-${matrices}.gguf`);
  writeFileSync(path, ggufFromHfFolder(join('test/fixtures', name), matrices));
  const model = await llama.loadModel({ modelPath: path, gpuLayers: 0 });
  const context = await model.createContext({
    contextSize: 1024,
    batchSize: 1024,
    sequences: 1,
    // One thread: node-llama-cpp's default on this 2-core machine spins (about 320 ms per token against 3 ms).
    threads: 1,
    flashAttention: false,
    experimentalKvCacheKeyType: 'F32',
    experimentalKvCacheValueType: 'F32',
  });
  const sequence = context.getSequence();
  const out: { greedy: number[]; logProbs: Float64Array }[] = [];
  try {
    for (const c of cases) {
      await sequence.clearHistory();
      const greedy: number[] = [];
      for await (const token of sequence.evaluate(c.prompt as Token[], { temperature: 0, yieldEogToken: true })) {
        greedy.push(token);
        if (greedy.length === c.greedy.length) break;
      }
      await sequence.clearHistory();
      // temperature 1 with no top-k/top-p/min-p: the probabilities are softmax(logits) over the whole vocabulary.
      const last = c.prompt.length - 1;
      const items = (c.prompt as Token[]).map((t, i): ControlledEvaluateInputItem =>
        i === last ? [t, { generateNext: { probabilities: true, options: { temperature: 1, topK: 0, topP: 1, minP: 0 } } }] : t,
      );
      const results = await sequence.controlledEvaluate(items);
      const probabilities = results[last]?.next?.probabilities;
      if (!probabilities) throw new Error(`${name}: llama.cpp returned no probabilities`);
      const logProbs = new Float64Array(c.last_logits.length).fill(-Infinity);
      for (const [id, p] of probabilities) logProbs[id as number] = Math.log(p);
      out.push({ greedy, logProbs });
    }
  } finally {
    await context.dispose();
    await model.dispose();
  }
  return out;
}

const logSoftmax = (logits: number[]): Float64Array => {
  const max = Math.max(...logits);
  const lse = max + Math.log(logits.reduce((s, x) => s + Math.exp(x - max), 0));
  return Float64Array.from(logits, (x) => x - lse);
};

describe('GGUF files of the shared fixtures, run by llama.cpp (node-llama-cpp 3.21.1, CPU)', () => {
  for (const name of FIXTURES) {
    it(`${name}: F32 GGUF gives HF's greedy tokens and log-probabilities`, async () => {
      const cases = (JSON.parse(readFileSync(join('test/fixtures', name, 'reference.json'), 'utf8')) as { cases: Case[] }).cases;
      const got = await runLlamaCpp(name, 'F32', cases);
      cases.forEach((c, i) => {
        expect(got[i]!.greedy, `${name}, ${c.prompt.length}-token prompt`).toEqual(c.greedy);
        const want = logSoftmax(c.last_logits);
        // Tokens whose probability float32 can still hold (log p > -80): the rest round to 0 in llama.cpp's output.
        let maxErr = 0;
        want.forEach((w, id) => {
          if (w > -80) maxErr = Math.max(maxErr, Math.abs(got[i]!.logProbs[id]! - w));
        });
        expect(maxErr, `${name}, ${c.prompt.length}-token prompt: max |log p - HF's|`).toBeLessThan(1e-3);
      });
    }, 120_000);
  }

  it('tiny-qwen3b (F16 weights): an F16 GGUF holds them exactly; llama.cpp rounds activations to F16, so a looser bound', async () => {
    const cases = (JSON.parse(readFileSync('test/fixtures/tiny-qwen3b/reference.json', 'utf8')) as { cases: Case[] }).cases;
    const got = await runLlamaCpp('tiny-qwen3b', 'F16', cases);
    cases.forEach((c, i) => {
      expect(got[i]!.greedy.slice(0, 8), `${c.prompt.length}-token prompt`).toEqual(c.greedy.slice(0, 8));
      const want = logSoftmax(c.last_logits);
      let maxErr = 0;
      want.forEach((w, id) => {
        if (w > -30) maxErr = Math.max(maxErr, Math.abs(got[i]!.logProbs[id]! - w));
      });
      expect(maxErr).toBeLessThan(5e-2);
    });
  }, 120_000);
});

describe('permuteForGgmlRope', () => {
  it("moves row s*half+j of each head to 2j+s (HF's rotate-half layout to GGML's adjacent pairs)", () => {
    // 2 heads of dim 4, one column: rows h*4 + [0,1 | 2,3] -> h*4 + [0,2,1,3].
    const w = Float32Array.from([0, 1, 2, 3, 10, 11, 12, 13]);
    expect([...permuteForGgmlRope(w, 2, 8, 1)]).toEqual([0, 2, 1, 3, 10, 12, 11, 13]);
    // Whole rows move with their columns.
    const m = Float32Array.from([0, 0, 1, 1, 2, 2, 3, 3]);
    expect([...permuteForGgmlRope(m, 1, 4, 2)]).toEqual([0, 0, 2, 2, 1, 1, 3, 3]);
  });
});
