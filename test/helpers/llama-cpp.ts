// llama.cpp (node-llama-cpp 3.21.1, its prebuilt CPU build) as a reference engine for tests: the
// context settings that make it comparable with a float reference, and its full next-token
// log-probabilities after a prompt.

import { getLlama, type ControlledEvaluateInputItem, type Llama, type LlamaContextOptions, type LlamaContextSequence, type Token } from 'node-llama-cpp';

/** llama.cpp on the CPU, prebuilt binaries only (no build, no network). */
export function cpuLlama(): Promise<Llama> {
  return getLlama({ gpu: false, build: 'never', logLevel: 'error' as never });
}

/**
 * Context settings for comparisons: the KV cache in F32 (llama.cpp's default F16 cache moves the
 * fixtures' log-probabilities by up to 1.4e-2), and one thread (node-llama-cpp's default on a
 * 2-core machine spins: about 320 ms per token against 3 ms).
 */
export const REFERENCE_CONTEXT = {
  threads: 1,
  flashAttention: false,
  experimentalKvCacheKeyType: 'F32',
  experimentalKvCacheValueType: 'F32',
} as const satisfies Partial<LlamaContextOptions>;

/**
 * Evaluates `prompt` on `sequence` and returns log p(next token) over a vocabulary of `vocab` ids:
 * temperature 1 with no top-k/top-p/min-p, so the probabilities are softmax(logits).
 */
export async function nextLogProbs(sequence: LlamaContextSequence, prompt: readonly number[], vocab: number): Promise<Float64Array> {
  const last = prompt.length - 1;
  const items = (prompt as Token[]).map((t, i): ControlledEvaluateInputItem =>
    i === last ? [t, { generateNext: { probabilities: true, options: { temperature: 1, topK: 0, topP: 1, minP: 0 } } }] : t,
  );
  const results = await sequence.controlledEvaluate(items);
  const probabilities = results[last]?.next?.probabilities;
  if (!probabilities) throw new Error('llama.cpp returned no probabilities');
  const logProbs = new Float64Array(vocab).fill(-Infinity);
  for (const [id, p] of probabilities) logProbs[id as number] = Math.log(p);
  return logProbs;
}
