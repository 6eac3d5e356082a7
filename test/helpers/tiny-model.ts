// Writes a small random Hugging Face model folder (config.json + model.safetensors, F32) through the
// tests' safetensors writer: speculative-decoding tests need a target and a genuinely different
// draft with a vocabulary small enough to enumerate.

import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseModelConfig } from '../../src/model/config.js';
import { expectedTensors } from '../../src/model/tensors.js';
import { rng } from './random.js';
import { buildSafetensors, elementCount } from './safetensors-builder.js';

export interface TinyModelSpec {
  vocab: number;
  hidden: number;
  intermediate: number;
  layers: number;
  heads: number;
  kvHeads: number;
  seed: number;
  /** Scale of the LM head: larger means peakier next-token distributions. */
  headScale?: number;
}

export function writeTinyModel(spec: TinyModelSpec): string {
  const dir = mkdtempSync(join(tmpdir(), 'webslo-tiny-'));
  const configJson = {
    architectures: ['LlamaForCausalLM'],
    model_type: 'llama',
    vocab_size: spec.vocab,
    hidden_size: spec.hidden,
    intermediate_size: spec.intermediate,
    num_hidden_layers: spec.layers,
    num_attention_heads: spec.heads,
    num_key_value_heads: spec.kvHeads,
    max_position_embeddings: 512,
    rms_norm_eps: 1e-6,
    rope_theta: 10000,
    tie_word_embeddings: false,
    bos_token_id: 0,
    eos_token_id: 1,
    hidden_act: 'silu',
    torch_dtype: 'float32',
  };
  const config = parseModelConfig(configJson);
  const r = rng(spec.seed);
  const tensors = [...expectedTensors(config)].map(([name, shape]) => {
    const n = elementCount(shape);
    const values = new Float32Array(n);
    const isNorm = name.endsWith('norm.weight');
    const scale = name === 'lm_head.weight' ? (spec.headScale ?? 2) / Math.sqrt(spec.hidden) : name.includes('embed') ? 1 : 1 / Math.sqrt(shape[1] ?? 1);
    for (let i = 0; i < n; i++) values[i] = isNorm ? 1 + 0.1 * (2 * r() - 1) : scale * (2 * r() - 1) * Math.sqrt(3);
    return { name, dtype: 'F32', shape, data: new Uint8Array(values.buffer) };
  });
  writeFileSync(join(dir, 'config.json'), JSON.stringify(configJson));
  writeFileSync(join(dir, 'model.safetensors'), buildSafetensors(tensors));
  return dir;
}
