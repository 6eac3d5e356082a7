// config.json of a Hugging Face causal LM, normalized into the one shape the engine computes with.
// Defaults are the ones the HF config classes (transformers 4.4x/5.x) apply when a key is absent, so a
// config.json means here what it means in transformers; anything the engine does not implement is
// refused up front with a typed error rather than computed wrongly.

import { ModelConfigError, UnsupportedModelError } from './errors.js';
import { describeValue } from './describe.js';

export type Architecture = 'llama' | 'mistral' | 'qwen2' | 'qwen3';

/** Per-frequency RoPE divisors (what a GGUF file's `rope_freqs` tensor holds). */
export interface FactorRopeScaling {
  type: 'factors';
  factors: readonly number[];
}

export interface Llama3RopeScaling {
  type: 'llama3';
  factor: number;
  lowFreqFactor: number;
  highFreqFactor: number;
  originalMaxPositionEmbeddings: number;
}

export interface ModelConfig {
  architecture: Architecture;
  vocabSize: number;
  hiddenSize: number;
  intermediateSize: number;
  numLayers: number;
  numHeads: number;
  numKvHeads: number;
  headDim: number;
  rmsNormEps: number;
  ropeTheta: number;
  ropeScaling: Llama3RopeScaling | FactorRopeScaling | null;
  maxPositionEmbeddings: number;
  tieWordEmbeddings: boolean;
  /** q_proj/k_proj/v_proj carry a bias. */
  attentionBias: boolean;
  /** o_proj carries a bias too (Llama and Qwen3 with `attention_bias: true`; never Qwen2). */
  oProjBias: boolean;
  /** Per-head RMSNorm of q and k before RoPE (Qwen3). */
  qkNorm: boolean;
  bosTokenId: number | null;
  eosTokenIds: number[];
  hiddenAct: 'silu';
  torchDtype: string | null;
}

/** HF class name -> architecture; also accepted as `model_type` when `architectures` is absent. */
const ARCHITECTURES: ReadonlyMap<string, Architecture> = new Map([
  ['LlamaForCausalLM', 'llama'],
  ['MistralForCausalLM', 'mistral'],
  ['Qwen2ForCausalLM', 'qwen2'],
  ['Qwen3ForCausalLM', 'qwen3'],
]);
const MODEL_TYPES: ReadonlyMap<string, Architecture> = new Map([
  ['llama', 'llama'],
  ['mistral', 'mistral'],
  ['qwen2', 'qwen2'],
  ['qwen3', 'qwen3'],
]);
const SUPPORTED_ARCHS = [...ARCHITECTURES.keys()];

/** max_position_embeddings defaults of LlamaConfig, MistralConfig, Qwen2Config, Qwen3Config. */
const DEFAULT_MAX_POSITIONS: Record<Architecture, number> = {
  llama: 2048,
  mistral: 4096 * 32,
  qwen2: 32768,
  qwen3: 32768,
};

// Sizes are multiplied together downstream (element counts, byte sizes); keeping each below 2^31
// keeps those products exact in a double and rejects absurd values early.
const MAX_SIZE = 2 ** 31 - 1;

type Json = Record<string, unknown>;

function isObject(v: unknown): v is Json {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** `null` counts as absent: HF writes `"head_dim": null`, `"rope_scaling": null` and the like. */
function get(cfg: Json, key: string): unknown {
  const v = Object.prototype.hasOwnProperty.call(cfg, key) ? cfg[key] : undefined;
  return v === null ? undefined : v;
}

function positiveInt(cfg: Json, key: string, fallback?: number): number {
  const v = get(cfg, key);
  if (v === undefined) {
    if (fallback !== undefined) return fallback;
    throw new ModelConfigError(key, 'is missing', 'a positive integer');
  }
  if (typeof v !== 'number' || !Number.isInteger(v) || v <= 0 || v > MAX_SIZE) {
    throw new ModelConfigError(key, `is ${describeValue(v)}`, `a positive integer below 2^31`);
  }
  return v;
}

/** fallback undefined: the key is required. */
function positiveNumber(cfg: Json, key: string, fallback: number | undefined, field = key): number {
  const v = get(cfg, key);
  if (v === undefined) {
    if (fallback !== undefined) return fallback;
    throw new ModelConfigError(field, 'is missing', 'a finite number > 0');
  }
  if (typeof v !== 'number' || !Number.isFinite(v) || v <= 0) {
    throw new ModelConfigError(field, `is ${describeValue(v)}`, 'a finite number > 0');
  }
  return v;
}

function bool(cfg: Json, key: string, fallback: boolean): boolean {
  const v = get(cfg, key);
  if (v === undefined) return fallback;
  if (typeof v !== 'boolean') throw new ModelConfigError(key, `is ${describeValue(v)}`, 'true or false');
  return v;
}

function tokenId(v: unknown, field: string): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 0) {
    throw new ModelConfigError(field, `is ${describeValue(v)}`, 'a non-negative integer token id');
  }
  return v;
}

/** `eos_token_id` is a number or a list of numbers (Llama 3 instruct lists several); absent -> []. */
export function parseEosTokenIds(v: unknown, field = 'eos_token_id'): number[] {
  if (v === undefined || v === null) return [];
  const list = Array.isArray(v) ? v : [v];
  return [...new Set(list.map((id, i) => tokenId(id, Array.isArray(v) ? `${field}[${i}]` : field)))];
}

function architectureOf(cfg: Json): Architecture {
  const archs = get(cfg, 'architectures');
  if (archs !== undefined) {
    if (!Array.isArray(archs) || archs.length === 0 || !archs.every((a) => typeof a === 'string')) {
      throw new ModelConfigError('architectures', `is ${describeValue(archs)}`, 'a non-empty list of class names');
    }
    // transformers instantiates architectures[0]; a config listing several is a multi-head export.
    const name = archs[0] as string;
    const arch = ARCHITECTURES.get(name);
    if (!arch) throw new UnsupportedModelError(`architecture '${name}'`, SUPPORTED_ARCHS);
    return arch;
  }
  const modelType = get(cfg, 'model_type');
  if (modelType === undefined) {
    throw new ModelConfigError('architectures', 'is missing (and so is model_type)', `one of ${SUPPORTED_ARCHS.join(', ')}`);
  }
  const arch = typeof modelType === 'string' ? MODEL_TYPES.get(modelType) : undefined;
  if (!arch) throw new UnsupportedModelError(`model_type '${String(modelType)}'`, [...MODEL_TYPES.keys()]);
  return arch;
}

/**
 * RoPE settings from either layout: transformers <= 4.x writes `rope_theta` + `rope_scaling`
 * (`type` or `rope_type`); transformers 5 writes one `rope_parameters` object holding both.
 */
function parseRope(cfg: Json): { ropeTheta: number; ropeScaling: Llama3RopeScaling | null } {
  const params = get(cfg, 'rope_parameters');
  let scaling: unknown;
  let ropeTheta: number;
  let field: string;
  if (params !== undefined) {
    if (!isObject(params)) throw new ModelConfigError('rope_parameters', `is ${describeValue(params)}`, 'an object');
    ropeTheta = positiveNumber(params, 'rope_theta', positiveNumber(cfg, 'rope_theta', 10000), 'rope_parameters.rope_theta');
    scaling = params;
    field = 'rope_parameters';
  } else {
    ropeTheta = positiveNumber(cfg, 'rope_theta', 10000);
    scaling = get(cfg, 'rope_scaling');
    field = 'rope_scaling';
  }
  if (scaling === undefined) return { ropeTheta, ropeScaling: null };
  if (!isObject(scaling)) throw new ModelConfigError(field, `is ${describeValue(scaling)}`, 'an object or null');
  const type = get(scaling, 'rope_type') ?? get(scaling, 'type');
  if (type === 'default' || (type === undefined && params !== undefined)) return { ropeTheta, ropeScaling: null };
  if (type !== 'llama3') {
    throw new UnsupportedModelError(`${field} type ${describeValue(type)}`, ['none', 'default', 'llama3']);
  }
  const num = (key: string): number => positiveNumber(scaling, key, undefined, `${field}.${key}`);
  const factor = num('factor');
  const lowFreqFactor = num('low_freq_factor');
  const highFreqFactor = num('high_freq_factor');
  const originalMaxPositionEmbeddings = num('original_max_position_embeddings');
  if (!Number.isInteger(originalMaxPositionEmbeddings)) {
    throw new ModelConfigError(`${field}.original_max_position_embeddings`, `is ${originalMaxPositionEmbeddings}`, 'a positive integer');
  }
  // The smoothing between the two bands divides by (high - low).
  if (highFreqFactor <= lowFreqFactor) {
    throw new ModelConfigError(`${field}.high_freq_factor`, `is ${highFreqFactor}, not above low_freq_factor ${lowFreqFactor}`, 'high_freq_factor > low_freq_factor');
  }
  return { ropeTheta, ropeScaling: { type: 'llama3', factor, lowFreqFactor, highFreqFactor, originalMaxPositionEmbeddings } };
}

/**
 * Sliding-window attention changes which keys each query sees; the engine attends to the full
 * context, so a config where the window actually bites is refused, and one where it cannot
 * (disabled, or at least as long as the context) loads.
 */
function checkSlidingWindow(cfg: Json, arch: Architecture, maxPositions: number): void {
  const layerTypes = get(cfg, 'layer_types');
  if (Array.isArray(layerTypes) && layerTypes.some((t) => t !== 'full_attention')) {
    throw new UnsupportedModelError('sliding-window attention (layer_types lists non-full attention layers)', ['full attention on every layer']);
  }
  if (arch === 'llama') return;
  const window = get(cfg, 'sliding_window');
  if (window === undefined) return;
  if (typeof window !== 'number' || !Number.isInteger(window) || window <= 0) {
    throw new ModelConfigError('sliding_window', `is ${describeValue(window)}`, 'a positive integer or null');
  }
  if (arch === 'mistral') {
    if (window < maxPositions) {
      throw new UnsupportedModelError(
        `sliding_window ${window}`,
        ['sliding_window null', `sliding_window >= max_position_embeddings (${maxPositions})`],
        'sliding-window attention is not implemented',
      );
    }
    return;
  }
  // Qwen2/Qwen3 configs always carry a sliding_window value; only use_sliding_window turns it on.
  if (bool(cfg, 'use_sliding_window', false) && window < maxPositions) {
    throw new UnsupportedModelError(
      `use_sliding_window with sliding_window ${window}`,
      ['use_sliding_window false', `sliding_window >= max_position_embeddings (${maxPositions})`],
      'sliding-window attention is not implemented',
    );
  }
}

export function parseModelConfig(json: unknown): ModelConfig {
  if (!isObject(json)) throw new ModelConfigError('(root)', `is ${Array.isArray(json) ? 'an array' : typeof json}`, 'a JSON object');
  const cfg = json;
  const architecture = architectureOf(cfg);

  const hiddenAct = get(cfg, 'hidden_act') ?? 'silu';
  // transformers maps 'swish' to the same SiLU module.
  if (hiddenAct !== 'silu' && hiddenAct !== 'swish') {
    throw new UnsupportedModelError(`hidden_act ${describeValue(hiddenAct)}`, ['silu']);
  }

  const vocabSize = positiveInt(cfg, 'vocab_size');
  const hiddenSize = positiveInt(cfg, 'hidden_size');
  const intermediateSize = positiveInt(cfg, 'intermediate_size');
  const numLayers = positiveInt(cfg, 'num_hidden_layers');
  const numHeads = positiveInt(cfg, 'num_attention_heads');
  const numKvHeads = positiveInt(cfg, 'num_key_value_heads', numHeads);
  if (numHeads % numKvHeads !== 0) {
    throw new ModelConfigError('num_key_value_heads', `is ${numKvHeads}, which does not divide num_attention_heads ${numHeads}`, `a divisor of ${numHeads}`);
  }

  // Qwen3Config defaults head_dim to 128; the others derive it from hidden_size.
  let headDim: number;
  if (get(cfg, 'head_dim') !== undefined || architecture === 'qwen3') {
    headDim = positiveInt(cfg, 'head_dim', 128);
  } else {
    if (hiddenSize % numHeads !== 0) {
      throw new ModelConfigError(
        'hidden_size',
        `is ${hiddenSize}, not a multiple of num_attention_heads ${numHeads} (and head_dim is absent)`,
        'a multiple of num_attention_heads, or an explicit head_dim',
      );
    }
    headDim = hiddenSize / numHeads;
  }
  if (headDim % 2 !== 0) throw new ModelConfigError('head_dim', `is ${headDim}`, 'an even number (RoPE rotates pairs)');

  const maxPositionEmbeddings = positiveInt(cfg, 'max_position_embeddings', DEFAULT_MAX_POSITIONS[architecture]);
  const { ropeTheta, ropeScaling } = parseRope(cfg);
  checkSlidingWindow(cfg, architecture, maxPositionEmbeddings);

  if (architecture === 'llama' && bool(cfg, 'mlp_bias', false)) {
    throw new UnsupportedModelError('mlp_bias: true', ['mlp_bias: false']);
  }
  // Qwen2 hard-codes q/k/v biases (no o_proj bias); MistralAttention hard-codes bias=False and
  // ignores attention_bias; Llama and Qwen3 put attention_bias on q, k, v and o alike.
  const configBias = architecture === 'llama' || architecture === 'qwen3' ? bool(cfg, 'attention_bias', false) : false;
  const attentionBias = architecture === 'qwen2' || configBias;

  const bos = get(cfg, 'bos_token_id');
  const bosTokenId = bos === undefined ? null : tokenId(bos, 'bos_token_id');
  const eosTokenIds = parseEosTokenIds(get(cfg, 'eos_token_id'));
  for (const [field, id] of [['bos_token_id', bosTokenId] as const, ...eosTokenIds.map((id) => ['eos_token_id', id] as const)]) {
    if (id !== null && id >= vocabSize) throw new ModelConfigError(field, `is ${id}, outside the vocabulary`, `an id below vocab_size ${vocabSize}`);
  }
  const dtype = get(cfg, 'torch_dtype') ?? get(cfg, 'dtype');

  return {
    architecture,
    vocabSize,
    hiddenSize,
    intermediateSize,
    numLayers,
    numHeads,
    numKvHeads,
    headDim,
    rmsNormEps: positiveNumber(cfg, 'rms_norm_eps', 1e-6),
    ropeTheta,
    ropeScaling,
    maxPositionEmbeddings,
    tieWordEmbeddings: bool(cfg, 'tie_word_embeddings', false),
    attentionBias,
    oProjBias: configBias,
    qkNorm: architecture === 'qwen3',
    bosTokenId,
    eosTokenIds,
    hiddenAct: 'silu',
    torchDtype: typeof dtype === 'string' ? dtype : null,
  };
}
