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
import type { Llama, Token } from 'node-llama-cpp';
import { cpuLlama, nextLogProbs, REFERENCE_CONTEXT } from '../helpers/llama-cpp.js';
import { ggufBytes, ggufFromHfFolder, ggufPlan, loadHfFolder, permuteForGgmlRope, syntheticVocab, type GgufMatrixType, type HfTensorSource } from '../../bench/gguf/from-hf.js';
import { dequantizeQ4_0, dequantizeQ8_0, quantizeQ4_0, quantizeQ8_0 } from '../../bench/gguf/quantize.js';
import { syntheticSource } from '../../bench/synthetic-files.js';
import { parseModelConfig } from '../../src/model/config.js';
import { loadModelFiles, tensorToFloat64 } from '../../src/model/load.js';
import { nodeGgufFileSource } from '../../src/model/source.js';
import { parseGguf } from '../../src/model/gguf.js';
import { ReferenceModel } from '../../src/reference/model.js';

interface Case {
  prompt: number[];
  last_logits: number[];
  greedy: number[];
}

const FIXTURES = ['tiny-qwen2', 'tiny-llama3', 'tiny-mistral', 'tiny-qwen3b'] as const;
let llama: Llama;
let dir: string;

beforeAll(async () => {
  llama = await cpuLlama();
  dir = mkdtempSync(join(tmpdir(), 'webslo-gguf-'));
}, 120_000);
afterAll(async () => {
  await llama?.dispose();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

/** llama.cpp's greedy tokens and its full next-token log-probabilities after each case's prompt. */
async function runLlamaCpp(name: string, matrices: GgufMatrixType, cases: Case[], file?: Uint8Array): Promise<{ greedy: number[]; logProbs: Float64Array }[]> {
  const path = join(dir, `${name}-${matrices}.gguf`);
  writeFileSync(path, file ?? ggufFromHfFolder(join('test/fixtures', name), matrices));
  const model = await llama.loadModel({ modelPath: path, gpuLayers: 0 });
  const context = await model.createContext({
    contextSize: 1024,
    batchSize: 1024,
    sequences: 1,
    ...REFERENCE_CONTEXT,
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
      const logProbs = await nextLogProbs(sequence, c.prompt, c.last_logits.length);
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

describe('Q4_0 and Q8_0', () => {
  for (const [type, quantize, dequantize] of [
    ['Q4_0', quantizeQ4_0, dequantizeQ4_0],
    ['Q8_0', quantizeQ8_0, dequantizeQ8_0],
  ] as const) {
    it(`llama.cpp reads our ${type} blocks as the values they stand for (scale, code order)`, async () => {
      // The same model twice: ${type} matrices, and F32 matrices holding exactly what those blocks
      // dequantize to. llama.cpp rounds activations to 8 bits against them, so the two agree on the
      // greedy tokens and roughly on log-probabilities; a wrong scale or code order makes them unrelated.
      const hf = loadHfFolder('test/fixtures/tiny-llama3');
      const roundTrip: HfTensorSource = {
        shape: (n) => hf.source.shape(n),
        values: (n) => (hf.source.shape(n)!.length === 2 ? dequantize(quantize(hf.source.values(n))) : hf.source.values(n)),
      };
      const cases = (JSON.parse(readFileSync('test/fixtures/tiny-llama3/reference.json', 'utf8')) as { cases: Case[] }).cases.slice(0, 4);
      const quantized = await runLlamaCpp('tiny-llama3', type, cases, ggufBytes(ggufPlan(hf.config, hf.source, type, hf.name, hf.vocab)));
      const f32 = await runLlamaCpp('tiny-llama3', 'F32', cases, ggufBytes(ggufPlan(hf.config, roundTrip, 'F32', hf.name, hf.vocab)));
      cases.forEach((c, i) => {
        expect(quantized[i]!.greedy.slice(0, 4), `${c.prompt.length}-token prompt`).toEqual(f32[i]!.greedy.slice(0, 4));
        let maxErr = 0;
        f32[i]!.logProbs.forEach((w, id) => {
          if (w > -30) maxErr = Math.max(maxErr, Math.abs(quantized[i]!.logProbs[id]! - w));
        });
        // Measured for Q4_0: 0.25-0.80 over these prompts (8-bit activations through 3 layers); nibbles
        // read in the wrong order already change the first greedy token.
        expect(maxErr, `${c.prompt.length}-token prompt`).toBeLessThan(1.5);
        // And the quantization is real: it moved the model away from HF's.
        if (type === 'Q4_0') expect(f32[i]!.greedy).not.toEqual(c.greedy);
      });
    }, 120_000);
  }

  it('round-trips within a step, the largest magnitude exactly, nibbles in GGML order', () => {
    const x = Float32Array.from({ length: 64 }, (_, i) => Math.sin(i * 1.7) * (i < 32 ? 1 : 0.01));
    x[5] = -2; // block 0's largest magnitude: d = 0.25, code 0
    const q = quantizeQ4_0(x);
    expect(q.length).toBe(36);
    const back = dequantizeQ4_0(q);
    expect(back[5]).toBe(-2);
    expect(q[2 + 5]! & 15).toBe(0);
    // Within half a step, except the side opposite the largest magnitude, where code 16 clamps to 15: one step.
    const step = (i: number): number => (i < 32 ? 0.25 : Math.max(...x.subarray(32).map(Math.abs)) / 8);
    for (let i = 0; i < 64; i++) expect(Math.abs(back[i]! - x[i]!)).toBeLessThanOrEqual(step(i) * (1 + 1e-3));
    // Value j in byte j's low nibble, value j + 16 in its high one: code = min(15, trunc(x / d + 8.5)), d = 0.25.
    const code = (v: number): number => Math.min(15, Math.trunc(v * 4 + 8.5));
    expect(q[2 + 3]! & 15).toBe(code(x[3]!));
    expect(q[2 + 3]! >> 4).toBe(code(x[19]!));
  });
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

// The K-quants' rows are super-blocks of 256 values, wider than the fixtures' rows: a synthetic Llama
// (bench/synthetic-files.ts's fixed-seed weights, matrices scaled from ±0.05 to ±0.15 so that the
// next-token distributions are peaked) with rows of 256 and 512. 4 layers: Q4_K_M's use_more_bits
// picks attn_v and ffn_down of layers 2 and 3 for Q6_K.
const K_CONFIG = parseModelConfig({
  architectures: ['LlamaForCausalLM'],
  model_type: 'llama',
  vocab_size: 512,
  hidden_size: 256,
  intermediate_size: 512,
  num_hidden_layers: 4,
  num_attention_heads: 4,
  num_key_value_heads: 2,
  rms_norm_eps: 1e-5,
  rope_theta: 10000,
  max_position_embeddings: 1024,
  tie_word_embeddings: false,
  hidden_act: 'silu',
  bos_token_id: 1,
  eos_token_id: 2,
});
const K_PROMPTS = [[1, 300], [1, 17, 422, 93, 5, 260, 71], Array.from({ length: 40 }, (_, i) => (i * 37 + 11) % 512)];

/** Largest |a - b| over the tokens `b` gives log p > -30. */
function maxLogProbDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let err = 0;
  for (let id = 0; id < b.length; id++) if (b[id]! > -30) err = Math.max(err, Math.abs(a[id]! - b[id]!));
  return err;
}

/**
 * llama.cpp runs the GGUF `bytes` on `prompts`; each of its first two greedy tokens must be webslo's
 * greedy choice there, by the float64 forward (ReferenceModel) on the weights webslo dequantized from
 * the same file, following llama.cpp's tokens: the argmax, or with `tieMargin` > 0 a token within
 * that much log-probability of it (a near-tie that llama.cpp's 8-bit activations may flip). Returns
 * the largest log-probability difference from that forward (`worst`) and from the forward of the
 * unquantized weights `original` (`worstOriginal`).
 */
async function llamaCppVsDequantized(
  label: string,
  bytes: Uint8Array,
  prompts: number[][],
  original: (hfName: string) => Float32Array,
  tieMargin = 0,
): Promise<{ worst: number; worstOriginal: number }> {
  const path = join(dir, `${label}.gguf`);
  writeFileSync(path, bytes);
  const loaded = await loadModelFiles(nodeGgufFileSource(path));
  const dequantized = (n: string): Float64Array => tensorToFloat64(loaded.tensors.get(n)!);
  const vocab = loaded.config.vocabSize;
  const cases = prompts.map((prompt) => ({ prompt, greedy: [0, 0], last_logits: new Array<number>(vocab).fill(0) }));
  const got = await runLlamaCpp(label, 'F32', cases, bytes);
  let worst = 0;
  let worstOriginal = 0;
  cases.forEach((c, i) => {
    const ref = new ReferenceModel(loaded.config, dequantized);
    const first = ref.forward(c.prompt);
    const [t0, t1] = got[i]!.greedy;
    expect(got[i]!.greedy.length, label).toBe(2);
    const second = ref.forward([t0!]);
    [first, second].forEach((logits, k) => {
      const lp = logSoftmax([...logits]);
      const behind = lp[argmax(logits)]! - lp[[t0, t1][k]!]!;
      expect(behind, `${label}, ${c.prompt.length}-token prompt: llama.cpp's greedy token ${k}, behind webslo's best by`).toBeLessThanOrEqual(tieMargin);
    });
    worst = Math.max(worst, maxLogProbDiff(got[i]!.logProbs, logSoftmax([...first])));
    const plain = new ReferenceModel(loaded.config, (n) => Float64Array.from(original(n)));
    worstOriginal = Math.max(worstOriginal, maxLogProbDiff(got[i]!.logProbs, logSoftmax([...plain.forward(c.prompt)])));
  });
  return { worst, worstOriginal };
}

describe('K-quants (Q4_K, Q5_K, Q6_K, and the Q4_K_M mix): llama.cpp and webslo read the same values', () => {
  const base = syntheticSource(K_CONFIG, 7);
  const source: HfTensorSource = {
    shape: (n) => base.shape(n),
    values: (n) => {
      const v = base.values(n);
      if (base.shape(n)!.length === 2) for (let i = 0; i < v.length; i++) v[i] = v[i]! * 3;
      return v;
    },
  };
  const vocab = syntheticVocab(K_CONFIG.vocabSize);
  for (const type of ['Q4_K', 'Q5_K', 'Q6_K', 'Q4_K_M'] as const) {
    it(`${type}: llama.cpp on our file gives the float64 forward of the weights webslo dequantized from it`, async () => {
      const bytes = ggufBytes(ggufPlan(K_CONFIG, source, type, 'k-quant', vocab));
      const file = parseGguf(bytes, `k-${type}.gguf`);
      const matrixTypes = [...file.tensors.values()].filter((t) => t.shape.length === 2).map((t) => `${t.name}:${t.type}`);
      if (type === 'Q4_K_M') {
        const q6 = matrixTypes.filter((t) => t.endsWith(':Q6_K')).sort();
        expect(q6).toEqual(['blk.2.attn_v.weight:Q6_K', 'blk.2.ffn_down.weight:Q6_K', 'blk.3.attn_v.weight:Q6_K', 'blk.3.ffn_down.weight:Q6_K', 'output.weight:Q6_K']);
        expect(matrixTypes.filter((t) => !t.endsWith(':Q6_K') && !t.endsWith(':Q4_K'))).toEqual([]);
      } else {
        expect(matrixTypes.every((t) => t.endsWith(`:${type}`))).toBe(true);
      }
      const { worst, worstOriginal } = await llamaCppVsDequantized(`k-${type}`, bytes, K_PROMPTS, (n) => source.values(n));
      // Measured: 0.16-0.27 (llama.cpp rounds activations to 8 bits against K-quant blocks); a wrong
      // scale, nibble or bit order gives unrelated models. And the quantization is real: the
      // unquantized weights' forward is further from llama.cpp (0.58 for Q6_K, 0.95 for Q5_K, 2.5 for Q4_K).
      expect(worst).toBeLessThan(0.35);
      expect(worstOriginal).toBeGreaterThan(1.5 * worst);
    }, 180_000);
  }
});

// llama.cpp's fallback for K-quant rows not a multiple of 256 (Q4_K -> Q5_0, Q5_K -> Q5_1, Q6_K ->
// Q8_0), as in the hub's Qwen2.5-0.5B Q4_K_M file (hidden size 896): Q5_0 and Q5_1 files of a shared
// fixture (tiny-llama3: rows of 128 and 320, multiples of 32 but not of 256), and a Q4_K_M file of a
// synthetic Qwen2 with 896-wide rows, run by llama.cpp against webslo's dequantization of them.
describe("Q5_0 and Q5_1 (llama.cpp's fallback for K-quant rows not a multiple of 256)", () => {
  for (const type of ['Q5_0', 'Q5_1'] as const) {
    it(`${type}: llama.cpp on our tiny-llama3 file gives the float64 forward of the weights webslo dequantized from it`, async () => {
      const hf = loadHfFolder('test/fixtures/tiny-llama3');
      const bytes = ggufBytes(ggufPlan(hf.config, hf.source, type, hf.name, hf.vocab));
      const file = parseGguf(bytes, `${type}.gguf`);
      const matrices = [...file.tensors.values()].filter((t) => t.shape.length === 2);
      expect(matrices.length).toBeGreaterThan(0);
      expect(matrices.filter((t) => t.type !== type)).toEqual([]);
      const cases = (JSON.parse(readFileSync('test/fixtures/tiny-llama3/reference.json', 'utf8')) as { cases: Case[] }).cases.slice(0, 4);
      // The fixture's next-token distributions are flat: llama.cpp's 8-bit activations (the vec_dot type
      // of Q5_0/Q5_1 is Q8_0/Q8_1) flip near-ties, measured up to 0.23 apart in webslo's Q5_1 forward
      // (Q5_0: none flipped), within the log-probability differences bounded below.
      const { worst, worstOriginal } = await llamaCppVsDequantized(
        `tiny-llama3-${type}`,
        bytes,
        cases.map((c) => c.prompt),
        (n) => hf.source.values(n),
        0.3,
      );
      // Measured: 0.52 (Q5_0) and 0.59 (Q5_1), as Q4_0's 0.25-0.80 above; a wrong qh bit order, nibble
      // order or m gives an unrelated model. The unquantized weights' forward is far further (5.3-5.8).
      expect(worst).toBeLessThan(0.8);
      expect(worstOriginal).toBeGreaterThan(4 * worst);
    }, 180_000);
  }

  it('Q4_K_M of a Qwen2 with 896-wide rows: the fallback types, run by llama.cpp as webslo reads them', async () => {
    const config = parseModelConfig({
      architectures: ['Qwen2ForCausalLM'],
      model_type: 'qwen2',
      vocab_size: 512,
      hidden_size: 896,
      intermediate_size: 1024,
      num_hidden_layers: 2,
      num_attention_heads: 14,
      num_key_value_heads: 2,
      rms_norm_eps: 1e-6,
      rope_theta: 1000000,
      max_position_embeddings: 1024,
      tie_word_embeddings: true,
      hidden_act: 'silu',
      bos_token_id: 1,
      eos_token_id: 2,
    });
    const base = syntheticSource(config, 11);
    const source: HfTensorSource = {
      shape: (n) => base.shape(n),
      values: (n) => {
        const v = base.values(n);
        if (base.shape(n)!.length === 2) for (let i = 0; i < v.length; i++) v[i] = v[i]! * 3;
        return v;
      },
    };
    const bytes = ggufBytes(ggufPlan(config, source, 'Q4_K_M', 'q4km-896', syntheticVocab(config.vocabSize)));
    const types = new Set([...parseGguf(bytes, 'q4km-896.gguf').tensors.values()].filter((t) => t.shape.length === 2).map((t) => t.type));
    expect([...types].sort()).toEqual(['Q4_K', 'Q5_0', 'Q6_K', 'Q8_0']);
    const { worst, worstOriginal } = await llamaCppVsDequantized('q4km-896', bytes, K_PROMPTS, (n) => source.values(n));
    // Measured: 0.36 (the K-quant files above: 0.21-0.27), against 2.45 for the unquantized weights.
    expect(worst).toBeLessThan(0.5);
    expect(worstOriginal).toBeGreaterThan(1.5 * worst);
  }, 180_000);
});

function argmax(x: ArrayLike<number>): number {
  let best = 0;
  for (let i = 1; i < x.length; i++) if (x[i]! > x[best]!) best = i;
  return best;
}
