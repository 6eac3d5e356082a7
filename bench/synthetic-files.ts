// A synthetic model (a real checkpoint's shapes, fixed-seed weights) written as files, so that
// webslo and llama.cpp run the very same weights: an HF folder (config.json, model.safetensors in
// F16) for webslo, and GGUF files (F16, Q4_0) for llama.cpp. Written tensor by tensor: a 3B model's
// files are larger than one buffer. Weights are F16 bit patterns drawn from a table of 65,536 values
// evenly spread over [-0.05, 0.05] (norm weights over [0.9, 1.1]), from a hash of the tensor's name
// and the seed, so generating a 1.5B model costs a table lookup per weight, not a conversion.

import { closeSync, mkdirSync, openSync, writeFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import type { ModelConfig } from '../src/model/config.js';
import { f16BitsToNumber, numberToF16Bits } from '../src/numeric/half.js';
import { ggufPlan, syntheticVocab, type GgufMatrixType, type HfTensorSource } from './gguf/from-hf.js';
import { writeGgufFile } from './gguf/write.js';

/** Half-width of the matrices' and biases' values (as bench/synthetic-model.ts's GPU-filled weights). */
const HALF_WIDTH = 0.05;

const table = (lo: number, hi: number): Uint16Array => Uint16Array.from({ length: 65536 }, (_, i) => numberToF16Bits(lo + ((hi - lo) * (i + 0.5)) / 65536));
const MATRIX_VALUES = table(-HALF_WIDTH, HALF_WIDTH);
const NORM_VALUES = table(0.9, 1.1);
const F16_TO_F32 = Float32Array.from({ length: 65536 }, (_, h) => f16BitsToNumber(h));

/** The HF tensors of `config`'s model: name -> shape, in the order HF's checkpoints list them. */
export function hfTensorShapes(config: ModelConfig): Map<string, number[]> {
  const { hiddenSize: h, intermediateSize: inter, numHeads, numKvHeads, headDim, vocabSize } = config;
  const m = new Map<string, number[]>([['model.embed_tokens.weight', [vocabSize, h]]]);
  for (let i = 0; i < config.numLayers; i++) {
    const p = `model.layers.${i}`;
    m.set(`${p}.input_layernorm.weight`, [h]);
    m.set(`${p}.self_attn.q_proj.weight`, [numHeads * headDim, h]);
    m.set(`${p}.self_attn.k_proj.weight`, [numKvHeads * headDim, h]);
    m.set(`${p}.self_attn.v_proj.weight`, [numKvHeads * headDim, h]);
    m.set(`${p}.self_attn.o_proj.weight`, [h, numHeads * headDim]);
    if (config.attentionBias) {
      m.set(`${p}.self_attn.q_proj.bias`, [numHeads * headDim]);
      m.set(`${p}.self_attn.k_proj.bias`, [numKvHeads * headDim]);
      m.set(`${p}.self_attn.v_proj.bias`, [numKvHeads * headDim]);
    }
    if (config.oProjBias) m.set(`${p}.self_attn.o_proj.bias`, [h]);
    if (config.qkNorm) {
      m.set(`${p}.self_attn.q_norm.weight`, [headDim]);
      m.set(`${p}.self_attn.k_norm.weight`, [headDim]);
    }
    m.set(`${p}.post_attention_layernorm.weight`, [h]);
    m.set(`${p}.mlp.gate_proj.weight`, [inter, h]);
    m.set(`${p}.mlp.up_proj.weight`, [inter, h]);
    m.set(`${p}.mlp.down_proj.weight`, [h, inter]);
  }
  m.set('model.norm.weight', [h]);
  if (!config.tieWordEmbeddings) m.set('lm_head.weight', [vocabSize, h]);
  return m;
}

/** A tensor's F16 bits: xorshift32 seeded by FNV-1a of its name and `seed`, through the value table. */
function generate(name: string, count: number, seed: number): Uint16Array {
  let s = 0x811c9dc5 ^ seed;
  for (let i = 0; i < name.length; i++) s = Math.imul(s ^ name.charCodeAt(i), 0x01000193);
  s = s >>> 0 || 1;
  const values = name.includes('norm') ? NORM_VALUES : MATRIX_VALUES;
  const out = new Uint16Array(count);
  for (let i = 0; i < count; i++) {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    out[i] = values[(s >>> 0) & 0xffff]!;
  }
  return out;
}

/** The synthetic model as a tensor source (F16 bits, and their values as float32). */
export function syntheticSource(config: ModelConfig, seed: number): HfTensorSource & { f16(hfName: string): Uint16Array } {
  const shapes = hfTensorShapes(config);
  const f16 = (n: string): Uint16Array => {
    const shape = shapes.get(n);
    if (!shape) throw new Error(`the synthetic ${config.architecture} model has no ${n}`);
    return generate(
      n,
      shape.reduce((a, b) => a * b, 1),
      seed,
    );
  };
  return {
    shape: (n) => shapes.get(n) ?? null,
    f16,
    values: (n) => {
      const bits = f16(n);
      const out = new Float32Array(bits.length);
      for (let i = 0; i < bits.length; i++) out[i] = F16_TO_F32[bits[i]!]!;
      return out;
    },
  };
}

/** HF's config.json for `config`. */
export function hfConfigJson(config: ModelConfig): Record<string, unknown> {
  const cls = { llama: 'LlamaForCausalLM', mistral: 'MistralForCausalLM', qwen2: 'Qwen2ForCausalLM', qwen3: 'Qwen3ForCausalLM' }[config.architecture];
  const s = config.ropeScaling;
  if (s?.type === 'factors') throw new Error('per-frequency RoPE factors have no config.json form');
  return {
    architectures: [cls],
    model_type: config.architecture,
    vocab_size: config.vocabSize,
    hidden_size: config.hiddenSize,
    intermediate_size: config.intermediateSize,
    num_hidden_layers: config.numLayers,
    num_attention_heads: config.numHeads,
    num_key_value_heads: config.numKvHeads,
    head_dim: config.headDim,
    rms_norm_eps: config.rmsNormEps,
    rope_theta: config.ropeTheta,
    rope_scaling: s
      ? { rope_type: 'llama3', factor: s.factor, low_freq_factor: s.lowFreqFactor, high_freq_factor: s.highFreqFactor, original_max_position_embeddings: s.originalMaxPositionEmbeddings }
      : null,
    max_position_embeddings: config.maxPositionEmbeddings,
    tie_word_embeddings: config.tieWordEmbeddings,
    ...(config.architecture === 'qwen2' ? {} : { attention_bias: config.attentionBias }),
    hidden_act: 'silu',
    bos_token_id: config.bosTokenId,
    eos_token_id: config.eosTokenIds[0] ?? null,
    torch_dtype: 'float16',
  };
}

/** Writes the HF folder `dir` (config.json, model.safetensors in F16) and the GGUF files named; returns their paths. */
export function writeSyntheticModel(
  config: ModelConfig,
  dir: string,
  options: { seed?: number; gguf?: readonly GgufMatrixType[] } = {},
): { folder: string; gguf: Partial<Record<GgufMatrixType, string>> } {
  const seed = options.seed ?? 1;
  const source = syntheticSource(config, seed);
  const folder = join(dir, 'hf');
  mkdirSync(folder, { recursive: true });
  writeFileSync(join(folder, 'config.json'), JSON.stringify(hfConfigJson(config), null, 2));
  // safetensors: 8-byte header length, the JSON header, then the tensors back to back.
  const shapes = hfTensorShapes(config);
  const header: Record<string, unknown> = { __metadata__: { format: 'pt' } };
  let offset = 0;
  for (const [name, shape] of shapes) {
    const bytes = shape.reduce((a, b) => a * b, 1) * 2;
    header[name] = { dtype: 'F16', shape, data_offsets: [offset, offset + bytes] };
    offset += bytes;
  }
  let json = JSON.stringify(header);
  json += ' '.repeat((8 - (json.length % 8)) % 8);
  const fd = openSync(join(folder, 'model.safetensors'), 'w');
  try {
    const len = new Uint8Array(8);
    new DataView(len.buffer).setBigUint64(0, BigInt(json.length), true);
    writeSync(fd, len);
    writeSync(fd, new TextEncoder().encode(json));
    for (const name of shapes.keys()) {
      const bits = source.f16(name);
      writeSync(fd, new Uint8Array(bits.buffer, bits.byteOffset, bits.byteLength));
    }
  } finally {
    closeSync(fd);
  }
  const gguf: Partial<Record<GgufMatrixType, string>> = {};
  for (const type of options.gguf ?? []) {
    const plan = ggufPlan(config, source, type, `synthetic-${config.architecture}`, syntheticVocab(config.vocabSize));
    const path = join(dir, `model-${type}.gguf`);
    writeGgufFile(path, plan.metadata, plan.tensors, plan.data);
    gguf[type] = path;
  }
  return { folder, gguf };
}
