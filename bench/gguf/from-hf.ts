// A Hugging Face model folder (config.json, model.safetensors, optionally tokenizer.json) as the GGUF
// file llama.cpp's own converter would make of it, so that llama.cpp and webslo run the same weights.
// What the conversion must get right, each a way to get plausible but wrong logits:
//  - names: model.layers.N.self_attn.q_proj -> blk.N.attn_q, and so on (llama.cpp's tensor names);
//  - Llama and Mistral (GGUF architecture `llama`): llama.cpp rotates adjacent pairs, HF rotates the
//    two halves of each head, so q_proj and k_proj rows are permuted per head (Qwen2 and Qwen3 use
//    llama.cpp's NeoX rotation, the halves, and are written as they are);
//  - Llama-3 RoPE scaling: a `rope_freqs` tensor of per-frequency divisors (unscaled / scaled);
//  - tied embeddings: no `output.weight` (llama.cpp then uses token_embd);
//  - norms and biases in F32 whatever the matrices' type.
// The vocabulary is tokenizer.json's when the folder has one (ids, byte-fallback and control tokens
// typed as llama.cpp's SentencePiece vocabulary expects), else a synthetic one of the config's size:
// llama.cpp needs a vocabulary to load a model, and these checks feed token ids directly.

import { readFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { parseModelConfig, type ModelConfig } from '../../src/model/config.js';
import { parseSafetensors, tensorToFloat64 } from '../../src/model/safetensors.js';
import { ropeInvFreq } from '../../src/model/rope.js';
import { toF16Array } from '../../src/numeric/half.js';
import { writeGguf, type GgmlType, type GgufTensorInfo, type GgufValue } from './write.js';
import { quantizeQ4_0, quantizeQ4_K, quantizeQ5_0, quantizeQ5_1, quantizeQ5_K, quantizeQ6_K, quantizeQ8_0 } from './quantize.js';

/**
 * How the matrices are stored (norms and biases are always F32): one type for all, or 'Q4_K_M',
 * llama.cpp's mix (llama-quant.cpp's llama_tensor_get_type for LLAMA_FTYPE_MOSTLY_Q4_K_M, dense
 * models): Q4_K, but Q6_K for output.weight (token_embd.weight when the embeddings are tied), and
 * for attn_v and ffn_down in the layers where use_more_bits holds (the first and last eighth of the
 * layers, and every third in between). llama.cpp's rules for 70B and MoE models are not followed.
 * A K-quant matrix whose rows (ne[0], its input width) are not a multiple of 256 falls back as
 * llama-quant.cpp's tensor_type_fallback does: Q4_K -> Q5_0, Q5_K -> Q5_1, Q6_K -> Q8_0, and F16
 * where the rows are not a multiple of 32 either (Qwen2.5-0.5B's 896-wide rows: the hub's Q4_K_M
 * file of it holds Q5_0 and Q8_0 matrices).
 */
export type GgufMatrixType = 'F32' | 'F16' | 'Q4_0' | 'Q5_0' | 'Q5_1' | 'Q8_0' | 'Q4_K' | 'Q5_K' | 'Q6_K' | 'Q4_K_M';

/** llama.cpp's use_more_bits: layer i of n gets more bits in a Q4_K_M file's attn_v and ffn_down. */
export function useMoreBits(i: number, n: number): boolean {
  const eighth = Math.trunc(n / 8);
  return i < eighth || i >= Math.trunc((7 * n) / 8) || (i - eighth) % 3 === 2;
}

/** llama-quant.cpp's tensor_type_fallback: the 32-block type a K-quant falls back to for rows not a multiple of 256. */
const K_FALLBACK = { Q4_K: 'Q5_0', Q5_K: 'Q5_1', Q6_K: 'Q8_0' } as const;

/** The GGML type of matrix `ggufName`, of rows of `cols` values, in a file whose matrices are `matrices`. */
export function matrixType(matrices: GgufMatrixType, ggufName: string, numLayers: number, tied: boolean, cols: number): GgmlType {
  let type: GgmlType;
  if (matrices !== 'Q4_K_M') type = matrices;
  else if (ggufName === 'output.weight' || (tied && ggufName === 'token_embd.weight')) type = 'Q6_K';
  else {
    const layer = /^blk\.(\d+)\.(attn_v|ffn_down)\.weight$/.exec(ggufName);
    type = layer && useMoreBits(Number(layer[1]), numLayers) ? 'Q6_K' : 'Q4_K';
  }
  if (type !== 'Q4_K' && type !== 'Q5_K' && type !== 'Q6_K') return type;
  if (cols % 256 === 0) return type;
  return cols % 32 === 0 ? K_FALLBACK[type] : 'F16';
}

const QUANTIZERS: Record<'Q4_0' | 'Q5_0' | 'Q5_1' | 'Q8_0' | 'Q4_K' | 'Q5_K' | 'Q6_K', (v: Float32Array) => Uint8Array> = {
  Q4_0: quantizeQ4_0,
  Q5_0: quantizeQ5_0,
  Q5_1: quantizeQ5_1,
  Q8_0: quantizeQ8_0,
  Q4_K: quantizeQ4_K,
  Q5_K: quantizeQ5_K,
  Q6_K: quantizeQ6_K,
};

/** GGUF's token types (llama.cpp's llama_token_type). */
const TOKEN_TYPE = { normal: 1, unknown: 2, control: 3, byte: 6 } as const;

export interface GgufVocab {
  tokens: string[];
  scores: number[];
  types: number[];
  /** 'llama' (SentencePiece-style, the default) or 'gpt2' (byte-level BPE, with merges and a pre-tokenizer name). */
  model?: 'llama' | 'gpt2';
  merges?: string[];
  pre?: string;
  chatTemplate?: string;
}

/**
 * A byte-level BPE tokenizer.json (Qwen2's kind) as llama.cpp's converter writes it: every id up to
 * the model's vocabulary size (ids the tokenizer lacks become unused `[PAD<id>]` tokens), added
 * special tokens as control tokens, the merges, the pre-tokenizer's name, the chat template.
 */
export function gpt2VocabFromTokenizerJson(json: unknown, config: unknown, size: number, pre: string): GgufVocab {
  const t = json as { model?: { vocab?: Record<string, number>; merges?: (string | [string, string])[] }; added_tokens?: { id: number; content: string; special?: boolean }[] };
  const vocab = t.model?.vocab;
  if (!vocab || !t.model?.merges) throw new Error('tokenizer.json has no BPE model.vocab and merges');
  const tokens = Array.from({ length: size }, (_, i) => `[PAD${i}]`);
  const types: number[] = new Array<number>(size).fill(5);
  for (const [text, id] of Object.entries(vocab)) {
    tokens[id] = text;
    types[id] = TOKEN_TYPE.normal;
  }
  for (const a of t.added_tokens ?? []) {
    tokens[a.id] = a.content;
    types[a.id] = a.special ? TOKEN_TYPE.control : 4;
  }
  const merges = t.model.merges.map((m) => (Array.isArray(m) ? m.join(' ') : m));
  const template = (config as { chat_template?: unknown } | null)?.chat_template;
  return { tokens, scores: [], types, model: 'gpt2', merges, pre, ...(typeof template === 'string' ? { chatTemplate: template } : {}) };
}

/** A SentencePiece-style vocabulary of `size` tokens: <unk>, <s>, </s>, the 256 byte tokens, then fillers. */
export function syntheticVocab(size: number): GgufVocab {
  const tokens = ['<unk>', '<s>', '</s>'];
  const types: number[] = [TOKEN_TYPE.unknown, TOKEN_TYPE.control, TOKEN_TYPE.control];
  for (let b = 0; b < 256 && tokens.length < size; b++) {
    tokens.push(`<0x${b.toString(16).toUpperCase().padStart(2, '0')}>`);
    types.push(TOKEN_TYPE.byte);
  }
  while (tokens.length < size) {
    tokens.push(`\u2581w${tokens.length}`);
    types.push(TOKEN_TYPE.normal);
  }
  return { tokens, scores: tokens.map((_, i) => -i), types };
}

/**
 * The vocabulary of a Llama-2 style tokenizer.json (BPE with byte fallback), in id order, with the
 * scores a SentencePiece model would carry: a token made by a merge scores minus the rank of its
 * first merge, so llama.cpp's highest-score-first merging follows the tokenizer.json's merge order
 * (HF's converter made that order from the scores); a token no merge makes (characters, bytes,
 * control tokens) scores below every merged one, -(merges + id).
 */
export function vocabFromTokenizerJson(json: unknown, size: number): GgufVocab {
  const t = json as { model?: { vocab?: Record<string, number>; merges?: (string | [string, string])[] }; added_tokens?: { id: number; content: string; special?: boolean }[] };
  const vocab = t.model?.vocab;
  if (!vocab) throw new Error('tokenizer.json has no model.vocab');
  const { tokens, types } = syntheticVocab(size);
  const filled = new Set<number>();
  for (const [text, id] of Object.entries(vocab)) {
    if (id < 0 || id >= size) throw new Error(`tokenizer.json: token ${JSON.stringify(text)} has id ${id}, outside the model's ${size}`);
    tokens[id] = text;
    types[id] = /^<0x[0-9A-F]{2}>$/.test(text) ? TOKEN_TYPE.byte : TOKEN_TYPE.normal;
    filled.add(id);
  }
  for (const a of t.added_tokens ?? []) {
    tokens[a.id] = a.content;
    types[a.id] = a.content === '<unk>' ? TOKEN_TYPE.unknown : a.special ? TOKEN_TYPE.control : TOKEN_TYPE.normal;
    filled.add(a.id);
  }
  if (filled.size !== size) throw new Error(`tokenizer.json covers ${filled.size} of the model's ${size} token ids`);
  if (new Set(tokens).size !== tokens.length) throw new Error('tokenizer.json: two ids share one token text');
  const merges = t.model?.merges ?? [];
  const rank = new Map<string, number>();
  merges.forEach((m, i) => {
    const [l, r] = Array.isArray(m) ? m : (m.split(' ', 2) as [string, string]);
    if (!rank.has(l + r)) rank.set(l + r, i);
  });
  const scores = tokens.map((text, id) => -(rank.get(text) ?? merges.length + id));
  return { tokens, scores, types };
}

/** HF's rotate-half head layout -> GGML's adjacent pairs: within each head, row s*half+j goes to 2j+s. */
export function permuteForGgmlRope<T extends Float32Array | Uint16Array>(w: T, heads: number, rows: number, cols: number): T {
  const headDim = rows / heads;
  const half = headDim / 2;
  const out = new (w.constructor as new (n: number) => T)(w.length);
  for (let h = 0; h < heads; h++) {
    for (let s = 0; s < 2; s++) {
      for (let j = 0; j < half; j++) {
        const from = (h * headDim + s * half + j) * cols;
        out.set(w.subarray(from, from + cols) as ArrayLike<number>, (h * headDim + 2 * j + s) * cols);
      }
    }
  }
  return out;
}

const bytesOf = (a: Float32Array | Uint16Array): Uint8Array => new Uint8Array(a.buffer, a.byteOffset, a.byteLength);

function ggufArch(config: ModelConfig): 'llama' | 'qwen2' | 'qwen3' {
  return config.architecture === 'mistral' ? 'llama' : config.architecture;
}

function metadataFor(config: ModelConfig, name: string, vocab: GgufVocab, matrices: GgufMatrixType): Map<string, GgufValue> {
  const a = ggufArch(config);
  const u32 = (value: number): GgufValue => ({ type: 'u32', value });
  const m = new Map<string, GgufValue>([
    ['general.architecture', { type: 'string', value: a }],
    ['general.name', { type: 'string', value: name }],
    ['general.file_type', u32({ F32: 0, F16: 1, Q4_0: 2, Q8_0: 7, Q5_0: 8, Q5_1: 9, Q4_K: 14, Q5_K: 16, Q6_K: 18, Q4_K_M: 15 }[matrices])],
    [`${a}.context_length`, u32(config.maxPositionEmbeddings)],
    [`${a}.embedding_length`, u32(config.hiddenSize)],
    [`${a}.block_count`, u32(config.numLayers)],
    [`${a}.feed_forward_length`, u32(config.intermediateSize)],
    [`${a}.attention.head_count`, u32(config.numHeads)],
    [`${a}.attention.head_count_kv`, u32(config.numKvHeads)],
    [`${a}.attention.key_length`, u32(config.headDim)],
    [`${a}.attention.value_length`, u32(config.headDim)],
    [`${a}.attention.layer_norm_rms_epsilon`, { type: 'f32', value: config.rmsNormEps }],
    [`${a}.rope.freq_base`, { type: 'f32', value: config.ropeTheta }],
    [`${a}.rope.dimension_count`, u32(config.headDim)],
    [`${a}.vocab_size`, u32(config.vocabSize)],
    ['tokenizer.ggml.model', { type: 'string', value: vocab.model ?? 'llama' }],
    ...(vocab.pre !== undefined ? [['tokenizer.ggml.pre', { type: 'string', value: vocab.pre }] as [string, GgufValue]] : []),
    ['tokenizer.ggml.tokens', { type: 'array', of: 'string', value: vocab.tokens }],
    ...(vocab.model === 'gpt2' ? [] : [['tokenizer.ggml.scores', { type: 'array', of: 'f32', value: vocab.scores }] as [string, GgufValue]]),
    ['tokenizer.ggml.token_type', { type: 'array', of: 'i32', value: vocab.types }],
    ...(vocab.merges ? [['tokenizer.ggml.merges', { type: 'array', of: 'string', value: vocab.merges }] as [string, GgufValue]] : []),
    ...(vocab.chatTemplate !== undefined ? [['tokenizer.chat_template', { type: 'string', value: vocab.chatTemplate }] as [string, GgufValue]] : []),
    ['tokenizer.ggml.unknown_token_id', u32(0)],
    ['tokenizer.ggml.add_bos_token', { type: 'bool', value: false }],
  ]);
  if (config.bosTokenId !== null) m.set('tokenizer.ggml.bos_token_id', u32(config.bosTokenId));
  if (config.eosTokenIds[0] !== undefined) m.set('tokenizer.ggml.eos_token_id', u32(config.eosTokenIds[0]));
  return m;
}

/** Where the HF tensors come from: a loaded safetensors file, or a generator (synthetic models). */
export interface HfTensorSource {
  /** The tensor's shape, or null when the model has no such tensor. */
  shape(hfName: string): readonly number[] | null;
  values(hfName: string): Float32Array;
  /** The tensor's F16 bits, where the source holds F16 (written as they are, no rounding pass). */
  f16?(hfName: string): Uint16Array;
}

/** A GGUF file laid out: its metadata, its tensors, and each tensor's bytes on demand. */
export interface GgufPlan {
  metadata: Map<string, GgufValue>;
  tensors: GgufTensorInfo[];
  data(index: number): Uint8Array;
}

/** How `config`'s model from `source` is written as GGUF with its matrices as `matrices`. */
export function ggufPlan(config: ModelConfig, source: HfTensorSource, matrices: GgufMatrixType, name: string, vocab: GgufVocab): GgufPlan {
  const permute = ggufArch(config) === 'llama';
  const entries: { info: GgufTensorInfo; make: () => Uint8Array }[] = [];
  const add = (ggufName: string, hfName: string, opts: { vector?: boolean; permuteHeads?: number } = {}): void => {
    const shape = source.shape(hfName);
    if (!shape) throw new Error(`${name}: the model has no ${hfName}`);
    const cols = shape[shape.length - 1]!;
    const type = opts.vector ? 'F32' : matrixType(matrices, ggufName, config.numLayers, config.tieWordEmbeddings, cols);
    const permuted = <T extends Float32Array | Uint16Array>(w: T): T =>
      opts.permuteHeads !== undefined && permute ? permuteForGgmlRope(w, opts.permuteHeads, shape[0]!, shape.length > 1 ? shape[1]! : 1) : w;
    const make = (): Uint8Array => {
      if (type === 'F16' && source.f16) return bytesOf(permuted(source.f16(hfName)));
      const values = permuted(source.values(hfName));
      if (type === 'F32') return bytesOf(values);
      if (type === 'F16') return bytesOf(toF16Array(values));
      if (type === 'BF16') throw new Error(`${name}: the writer does not make BF16 matrices`);
      return QUANTIZERS[type](values);
    };
    entries.push({ info: { name: ggufName, shape, type }, make });
  };
  add('token_embd.weight', 'model.embed_tokens.weight');
  for (let i = 0; i < config.numLayers; i++) {
    const hf = `model.layers.${i}`;
    const blk = `blk.${i}`;
    add(`${blk}.attn_norm.weight`, `${hf}.input_layernorm.weight`, { vector: true });
    add(`${blk}.attn_q.weight`, `${hf}.self_attn.q_proj.weight`, { permuteHeads: config.numHeads });
    add(`${blk}.attn_k.weight`, `${hf}.self_attn.k_proj.weight`, { permuteHeads: config.numKvHeads });
    add(`${blk}.attn_v.weight`, `${hf}.self_attn.v_proj.weight`);
    add(`${blk}.attn_output.weight`, `${hf}.self_attn.o_proj.weight`);
    if (config.attentionBias) {
      add(`${blk}.attn_q.bias`, `${hf}.self_attn.q_proj.bias`, { vector: true, permuteHeads: config.numHeads });
      add(`${blk}.attn_k.bias`, `${hf}.self_attn.k_proj.bias`, { vector: true, permuteHeads: config.numKvHeads });
      add(`${blk}.attn_v.bias`, `${hf}.self_attn.v_proj.bias`, { vector: true });
    }
    if (config.oProjBias) add(`${blk}.attn_output.bias`, `${hf}.self_attn.o_proj.bias`, { vector: true });
    if (config.qkNorm) {
      add(`${blk}.attn_q_norm.weight`, `${hf}.self_attn.q_norm.weight`, { vector: true });
      add(`${blk}.attn_k_norm.weight`, `${hf}.self_attn.k_norm.weight`, { vector: true });
    }
    add(`${blk}.ffn_norm.weight`, `${hf}.post_attention_layernorm.weight`, { vector: true });
    add(`${blk}.ffn_gate.weight`, `${hf}.mlp.gate_proj.weight`);
    add(`${blk}.ffn_up.weight`, `${hf}.mlp.up_proj.weight`);
    add(`${blk}.ffn_down.weight`, `${hf}.mlp.down_proj.weight`);
  }
  add('output_norm.weight', 'model.norm.weight', { vector: true });
  if (!config.tieWordEmbeddings) add('output.weight', 'lm_head.weight');
  if (config.ropeScaling) {
    const plain = ropeInvFreq(config.headDim, config.ropeTheta, null);
    const scaled = ropeInvFreq(config.headDim, config.ropeTheta, config.ropeScaling);
    const factors = Float32Array.from(plain, (p, i) => p / scaled[i]!);
    entries.push({ info: { name: 'rope_freqs.weight', shape: [factors.length], type: 'F32' }, make: () => bytesOf(factors) });
  }
  return {
    metadata: metadataFor(config, name, vocab, matrices),
    tensors: entries.map((e) => e.info),
    data: (i) => entries[i]!.make(),
  };
}

/** A plan's file in memory (for small models). */
export function ggufBytes(plan: GgufPlan): Uint8Array {
  return writeGguf(
    plan.metadata,
    plan.tensors.map((t, i) => ({ ...t, data: plan.data(i) })),
  );
}

/** An HF model folder read into memory: its config, its tensors as a source, its vocabulary. */
export function loadHfFolder(dir: string): { config: ModelConfig; source: HfTensorSource; vocab: GgufVocab; name: string } {
  const config = parseModelConfig(JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8')));
  const file = parseSafetensors(new Uint8Array(readFileSync(join(dir, 'model.safetensors'))), 'model.safetensors');
  const tokenizerPath = join(dir, 'tokenizer.json');
  const vocab = existsSync(tokenizerPath) ? vocabFromTokenizerJson(JSON.parse(readFileSync(tokenizerPath, 'utf8')), config.vocabSize) : syntheticVocab(config.vocabSize);
  const source: HfTensorSource = {
    shape: (n) => file.tensors.get(n)?.shape ?? null,
    values: (n) => Float32Array.from(tensorToFloat64(file.tensors.get(n)!)),
  };
  return { config, source, vocab, name: dir.split('/').pop() ?? 'model' };
}

/** The GGUF file of the HF model folder `dir` (in memory: for small models), its matrices stored as `matrices`. */
export function ggufFromHfFolder(dir: string, matrices: GgufMatrixType = 'F32'): Uint8Array {
  const hf = loadHfFolder(dir);
  return ggufBytes(ggufPlan(hf.config, hf.source, matrices, hf.name, hf.vocab));
}
