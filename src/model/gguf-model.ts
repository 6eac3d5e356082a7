// A parsed GGUF file (gguf.ts) as the model webslo loads: the config from `<arch>.*` metadata and the
// tensors under the names and layout of Hugging Face's checkpoints, so everything after loading
// (shape checks, GPU weights, q4 at load, the float64 reference) is the same as for a model folder.
//
// What the mapping undoes or decides:
//  - llama.cpp's `llama` files (Llama, Mistral) hold q and k rows permuted for GGML's adjacent-pair
//    RoPE; they are permuted back to HF's rotate-half layout. `qwen2` and `qwen3` are not permuted.
//  - `rope_freqs` (Llama-3 scaling as per-frequency divisors) becomes a `factors` RoPE scaling.
//  - F32, F16 and BF16 tensors are used as they are; Q8_0, Q4_0 and the K-quants (Q4_K, Q5_K, Q6_K)
//    are dequantized to F32 at load by gguf-dequant.ts (ggml's values to the bit), so they cost 4
//    bytes per weight in memory until `quantize: 'q4'` packs the matrices again. Other types are
//    refused by the parser. A Q4_0 matrix's Tensor also carries its blocks (`ggmlQ4_0`, rows in HF
//    order like the values), so the GPU upload holds it as q4 bit for bit, asked or not (it is 4-bit
//    already); the F32 values serve the checks and the float64 reference.
//  - The tokenizer (`tokenizer.ggml.*`) is gguf-tokenizer.ts's job.
//
// Invariants: every metadata key read is checked for type and range (a ModelConfigError naming the
// key); a key or feature the engine cannot honour (partial rotary, other RoPE scalings, another
// architecture) is refused, never ignored.

import type { ModelConfig } from './config.js';
import { ModelConfigError, UnsupportedModelError } from './errors.js';
import type { GgufFile, GgufTensor, GgufValue } from './gguf.js';
import { tensorToFloat64, type Tensor } from './safetensors.js';
import { dequantizeGgml } from './gguf-dequant.js';
import { hasGgmlQ4_0 } from './quantize-q4.js';

const ARCHITECTURES = ['llama', 'qwen2', 'qwen3'] as const;

export interface GgufModel {
  config: ModelConfig;
  /** HF parameter name -> tensor (F32 / F16 / BF16), row-major as HF writes it. */
  tensors: Map<string, Tensor>;
  /** GGUF tensors not used (e.g. a tied output.weight). */
  ignoredTensors: string[];
}

function keyError(key: string, value: GgufValue | undefined, valid: string): never {
  throw new ModelConfigError(key, value === undefined ? 'is missing from the GGUF metadata' : `is ${JSON.stringify(typeof value === 'bigint' ? String(value) : value)}`, valid);
}

function intKey(meta: Map<string, GgufValue>, key: string, dflt?: number): number {
  const v = meta.get(key);
  if (v === undefined && dflt !== undefined) return dflt;
  const n = typeof v === 'bigint' ? Number(v) : v;
  if (typeof n !== 'number' || !Number.isSafeInteger(n) || n < 1) keyError(key, v, 'a positive integer');
  return n;
}

function floatKey(meta: Map<string, GgufValue>, key: string, dflt?: number): number {
  const v = meta.get(key);
  if (v === undefined && dflt !== undefined) return dflt;
  if (typeof v !== 'number' || !Number.isFinite(v) || v <= 0) keyError(key, v, 'a positive number');
  return v;
}

/** F32/F16/BF16 tensors as they are, quantized ones dequantized (gguf-dequant.ts), as a Tensor webslo's loader takes. */
function asTensor(t: GgufTensor): Tensor {
  if (t.type === 'F32' || t.type === 'F16' || t.type === 'BF16') return { dtype: t.type, shape: t.shape, data: t.data };
  const values = dequantizeGgml(t.type, t.data);
  const tensor: Tensor = { dtype: 'F32', shape: t.shape, data: new Uint8Array(values.buffer) };
  // A Q4_0 matrix keeps its blocks too: the upload holds it as q4 bit for bit (quantize-q4.ts).
  return t.type === 'Q4_0' && t.shape.length === 2 ? Object.assign(tensor, { ggmlQ4_0: t.data }) : tensor;
}

/** Rows of `data` (`rows` rows of equal bytes) from GGML's adjacent pairs back to HF's rotate-half order, per head: row 2j+s -> s*half+j. */
function unpermuteRows(data: Uint8Array, rows: number, heads: number): Uint8Array {
  const rowBytes = data.length / rows;
  const headDim = rows / heads;
  const half = headDim / 2;
  const out = new Uint8Array(data.length);
  for (let h = 0; h < heads; h++) {
    for (let j = 0; j < half; j++) {
      for (let s = 0; s < 2; s++) {
        const from = (h * headDim + 2 * j + s) * rowBytes;
        out.set(data.subarray(from, from + rowBytes), (h * headDim + s * half + j) * rowBytes);
      }
    }
  }
  return out;
}

/** GGML's adjacent-pair rows back to HF's rotate-half layout, per head: row 2j+s -> s*half+j. */
export function unpermuteFromGgmlRope(t: Tensor, heads: number): Tensor {
  const rows = t.shape[0]!;
  const out: Tensor = { dtype: t.dtype, shape: t.shape, data: unpermuteRows(t.data, rows, heads) };
  return hasGgmlQ4_0(t) ? Object.assign(out, { ggmlQ4_0: unpermuteRows(t.ggmlQ4_0, rows, heads) }) : out;
}

/** The config and HF-named tensors of a parsed GGUF file (`fileName` for errors). */
export function ggufModel(file: GgufFile, fileName: string): GgufModel {
  const meta = file.metadata;
  const arch = meta.get('general.architecture');
  if (typeof arch !== 'string' || !(ARCHITECTURES as readonly string[]).includes(arch)) {
    throw new UnsupportedModelError(`GGUF architecture ${JSON.stringify(arch ?? null)} (general.architecture) in ${fileName}`, ARCHITECTURES);
  }
  const a = arch as (typeof ARCHITECTURES)[number];
  const hiddenSize = intKey(meta, `${a}.embedding_length`);
  const numHeads = intKey(meta, `${a}.attention.head_count`);
  const headDim = intKey(meta, `${a}.attention.key_length`, hiddenSize / numHeads);
  if (intKey(meta, `${a}.attention.value_length`, headDim) !== headDim) keyError(`${a}.attention.value_length`, meta.get(`${a}.attention.value_length`), `${headDim} (= key_length)`);
  const ropeDims = intKey(meta, `${a}.rope.dimension_count`, headDim);
  if (ropeDims !== headDim) throw new UnsupportedModelError(`partial rotary embedding (${a}.rope.dimension_count ${ropeDims} of head size ${headDim})`, ['rotary over the whole head']);
  const scalingType = meta.get(`${a}.rope.scaling.type`);
  if (scalingType !== undefined && scalingType !== 'none') throw new UnsupportedModelError(`RoPE scaling ${JSON.stringify(scalingType)} (${a}.rope.scaling.type)`, ['none', 'Llama-3 rope_freqs']);
  const embed = file.tensors.get('token_embd.weight');
  if (!embed) throw new UnsupportedModelError(`GGUF file ${fileName} without token_embd.weight`, ['files with their embeddings']);
  const vocabSize = embed.shape[0]!;
  const ropeFreqs = file.tensors.get('rope_freqs.weight');
  const bos = meta.get('tokenizer.ggml.bos_token_id');
  const eos = meta.get('tokenizer.ggml.eos_token_id');
  const tokenId = (v: GgufValue | undefined, key: string): number | null => {
    if (v === undefined) return null;
    if (typeof v !== 'number' || !Number.isInteger(v) || v < 0 || v >= vocabSize) keyError(key, v, `a token id below ${vocabSize}`);
    return v;
  };
  const numLayers = intKey(meta, `${a}.block_count`);
  const has = (n: string): boolean => file.tensors.has(n);
  const config: ModelConfig = {
    architecture: a,
    vocabSize,
    hiddenSize,
    intermediateSize: intKey(meta, `${a}.feed_forward_length`),
    numLayers,
    numHeads,
    numKvHeads: intKey(meta, `${a}.attention.head_count_kv`, numHeads),
    headDim,
    rmsNormEps: floatKey(meta, `${a}.attention.layer_norm_rms_epsilon`),
    ropeTheta: floatKey(meta, `${a}.rope.freq_base`, 10000),
    ropeScaling: ropeFreqs ? { type: 'factors', factors: Array.from(tensorToFloat64(asTensor(ropeFreqs))) } : null,
    maxPositionEmbeddings: intKey(meta, `${a}.context_length`, 2048),
    tieWordEmbeddings: !has('output.weight'),
    attentionBias: has('blk.0.attn_q.bias'),
    oProjBias: has('blk.0.attn_output.bias'),
    qkNorm: has('blk.0.attn_q_norm.weight'),
    bosTokenId: tokenId(bos, 'tokenizer.ggml.bos_token_id'),
    eosTokenIds: eos === undefined ? [] : [tokenId(eos, 'tokenizer.ggml.eos_token_id')!],
    hiddenAct: 'silu',
    torchDtype: null,
  };
  if (!Number.isInteger(config.headDim) || config.headDim % 2 !== 0) keyError(`${a}.attention.key_length`, meta.get(`${a}.attention.key_length`), 'an even head size');

  const tensors = new Map<string, Tensor>();
  const used = new Set<string>(['rope_freqs.weight']);
  const take = (hfName: string, ggufName: string, permuteHeads?: number): void => {
    const t = file.tensors.get(ggufName);
    if (!t) return; // checkTensors names every missing parameter at once
    used.add(ggufName);
    const tensor = asTensor(t);
    tensors.set(hfName, permuteHeads !== undefined && a === 'llama' ? unpermuteFromGgmlRope(tensor, permuteHeads) : tensor);
  };
  take('model.embed_tokens.weight', 'token_embd.weight');
  for (let i = 0; i < numLayers; i++) {
    const hf = `model.layers.${i}`;
    const blk = `blk.${i}`;
    take(`${hf}.input_layernorm.weight`, `${blk}.attn_norm.weight`);
    take(`${hf}.self_attn.q_proj.weight`, `${blk}.attn_q.weight`, config.numHeads);
    take(`${hf}.self_attn.k_proj.weight`, `${blk}.attn_k.weight`, config.numKvHeads);
    take(`${hf}.self_attn.v_proj.weight`, `${blk}.attn_v.weight`);
    take(`${hf}.self_attn.o_proj.weight`, `${blk}.attn_output.weight`);
    take(`${hf}.self_attn.q_proj.bias`, `${blk}.attn_q.bias`, config.numHeads);
    take(`${hf}.self_attn.k_proj.bias`, `${blk}.attn_k.bias`, config.numKvHeads);
    take(`${hf}.self_attn.v_proj.bias`, `${blk}.attn_v.bias`);
    take(`${hf}.self_attn.o_proj.bias`, `${blk}.attn_output.bias`);
    take(`${hf}.self_attn.q_norm.weight`, `${blk}.attn_q_norm.weight`);
    take(`${hf}.self_attn.k_norm.weight`, `${blk}.attn_k_norm.weight`);
    take(`${hf}.post_attention_layernorm.weight`, `${blk}.ffn_norm.weight`);
    take(`${hf}.mlp.gate_proj.weight`, `${blk}.ffn_gate.weight`);
    take(`${hf}.mlp.up_proj.weight`, `${blk}.ffn_up.weight`);
    take(`${hf}.mlp.down_proj.weight`, `${blk}.ffn_down.weight`);
  }
  take('model.norm.weight', 'output_norm.weight');
  take('lm_head.weight', 'output.weight');
  return { config, tensors, ignoredTensors: [...file.tensors.keys()].filter((n) => !used.has(n)) };
}
