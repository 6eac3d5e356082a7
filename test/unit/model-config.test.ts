import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { parseModelConfig } from '../../src/model/config.js';
import { ModelConfigError, ModelError, UnsupportedModelError } from '../../src/model/errors.js';

const fixture = (name: string): Record<string, unknown> => JSON.parse(readFileSync(new URL(`../fixtures/${name}/config.json`, import.meta.url), 'utf8')) as Record<string, unknown>;

/** A fixture config with some keys replaced (undefined deletes). */
function edited(name: string, changes: Record<string, unknown>): Record<string, unknown> {
  const cfg = fixture(name);
  for (const [k, v] of Object.entries(changes)) {
    if (v === undefined) delete cfg[k];
    else cfg[k] = v;
  }
  return cfg;
}

function thrown(fn: () => unknown): unknown {
  try {
    fn();
  } catch (e) {
    return e;
  }
  throw new Error('expected a throw');
}

describe('parseModelConfig on the fixtures', () => {
  it('normalizes tiny-qwen2 (biases, MQA, tied)', () => {
    expect(parseModelConfig(fixture('tiny-qwen2'))).toEqual({
      architecture: 'qwen2',
      vocabSize: 32000,
      hiddenSize: 64,
      intermediateSize: 192,
      numLayers: 2,
      numHeads: 4,
      numKvHeads: 1,
      headDim: 16,
      rmsNormEps: 1e-6,
      ropeTheta: 1e6,
      ropeScaling: null,
      maxPositionEmbeddings: 4096,
      tieWordEmbeddings: true,
      attentionBias: true,
      oProjBias: false,
      qkNorm: false,
      bosTokenId: 1,
      eosTokenIds: [2],
      hiddenAct: 'silu',
      torchDtype: 'float32',
    });
  });

  it('normalizes tiny-llama3 (llama3 rope scaling via rope_type, untied, GQA)', () => {
    const c = parseModelConfig(fixture('tiny-llama3'));
    expect(c.architecture).toBe('llama');
    expect(c.ropeScaling).toEqual({ type: 'llama3', factor: 8, lowFreqFactor: 1, highFreqFactor: 4, originalMaxPositionEmbeddings: 64 });
    expect(c.ropeTheta).toBe(500000);
    expect([c.numHeads, c.numKvHeads, c.headDim, c.numLayers]).toEqual([8, 2, 16, 3]);
    expect([c.tieWordEmbeddings, c.attentionBias, c.oProjBias, c.qkNorm]).toEqual([false, false, false, false]);
    expect(c.rmsNormEps).toBe(1e-5);
    expect(c.torchDtype).toBe('bfloat16');
  });

  it('normalizes tiny-qwen3b (head_dim independent of hidden/heads, qk norm)', () => {
    const c = parseModelConfig(fixture('tiny-qwen3b'));
    expect(c.architecture).toBe('qwen3');
    expect([c.hiddenSize, c.numHeads, c.numKvHeads, c.headDim]).toEqual([96, 3, 1, 40]);
    expect([c.qkNorm, c.attentionBias, c.tieWordEmbeddings]).toEqual([true, false, true]);
    expect(c.torchDtype).toBe('float16');
  });

  it('normalizes tiny-mistral (sliding_window null)', () => {
    const c = parseModelConfig(fixture('tiny-mistral'));
    expect(c.architecture).toBe('mistral');
    expect([c.numHeads, c.numKvHeads, c.headDim, c.tieWordEmbeddings, c.attentionBias]).toEqual([4, 2, 16, false, false]);
  });
});

describe('parseModelConfig normalization', () => {
  it('takes eos_token_id as a number or a list, and a missing bos as null', () => {
    const c = parseModelConfig(edited('tiny-llama3', { eos_token_id: [2, 7, 2], bos_token_id: null }));
    expect(c.eosTokenIds).toEqual([2, 7]);
    expect(c.bosTokenId).toBeNull();
    expect(parseModelConfig(edited('tiny-llama3', { eos_token_id: undefined })).eosTokenIds).toEqual([]);
  });

  it('accepts the legacy `type` key, a `default` rope type, and transformers 5 rope_parameters', () => {
    const scaling = { type: 'llama3', factor: 32, low_freq_factor: 1, high_freq_factor: 4, original_max_position_embeddings: 8192 };
    expect(parseModelConfig(edited('tiny-llama3', { rope_scaling: scaling })).ropeScaling).toMatchObject({ type: 'llama3', factor: 32 });
    expect(parseModelConfig(edited('tiny-llama3', { rope_scaling: { rope_type: 'default' } })).ropeScaling).toBeNull();
    const v5 = parseModelConfig(edited('tiny-llama3', { rope_theta: undefined, rope_scaling: undefined, rope_parameters: { rope_type: 'llama3', rope_theta: 5e5, ...scaling } }));
    expect(v5.ropeTheta).toBe(5e5);
    expect(v5.ropeScaling).toMatchObject({ originalMaxPositionEmbeddings: 8192 });
    const v5d = parseModelConfig(edited('tiny-qwen2', { rope_theta: undefined, rope_parameters: { rope_type: 'default', rope_theta: 1e6 } }));
    expect([v5d.ropeTheta, v5d.ropeScaling]).toEqual([1e6, null]);
  });

  it('derives head_dim from hidden/heads when absent or null, and takes num_kv_heads = heads when absent', () => {
    const c = parseModelConfig(edited('tiny-mistral', { head_dim: null, num_key_value_heads: undefined }));
    expect([c.headDim, c.numKvHeads]).toEqual([16, 4]);
  });

  it('honours attention_bias the way transformers does per architecture', () => {
    const llama = parseModelConfig(edited('tiny-llama3', { attention_bias: true }));
    expect([llama.attentionBias, llama.oProjBias]).toEqual([true, true]);
    const qwen3 = parseModelConfig(edited('tiny-qwen3b', { attention_bias: true }));
    expect([qwen3.attentionBias, qwen3.oProjBias]).toEqual([true, true]);
    // Qwen2 always has q/k/v biases; MistralAttention hard-codes bias=False.
    expect(parseModelConfig(edited('tiny-qwen2', { attention_bias: false })).attentionBias).toBe(true);
    expect(parseModelConfig(edited('tiny-mistral', { attention_bias: true })).attentionBias).toBe(false);
  });

  it('falls back to model_type when architectures is absent', () => {
    expect(parseModelConfig(edited('tiny-qwen3b', { architectures: undefined })).architecture).toBe('qwen3');
  });
});

describe('sliding windows', () => {
  it('refuses an active Mistral window (shorter than the context)', () => {
    const e = thrown(() => parseModelConfig(edited('tiny-mistral', { sliding_window: 1024 })));
    expect(e).toBeInstanceOf(UnsupportedModelError);
    expect((e as Error).message).toMatch(/sliding_window 1024/);
  });

  it('loads a Mistral window at least as long as the context', () => {
    expect(parseModelConfig(edited('tiny-mistral', { sliding_window: 4096 })).architecture).toBe('mistral');
    expect(parseModelConfig(edited('tiny-mistral', { sliding_window: 32768 })).architecture).toBe('mistral');
  });

  it('refuses Qwen2/Qwen3 with use_sliding_window true, loads them with it false', () => {
    expect(() => parseModelConfig(edited('tiny-qwen2', { use_sliding_window: true, sliding_window: 1024 }))).toThrow(UnsupportedModelError);
    expect(() => parseModelConfig(edited('tiny-qwen3b', { use_sliding_window: true, sliding_window: 512 }))).toThrow(UnsupportedModelError);
    // Qwen2.5 ships exactly this: a window value that is switched off.
    expect(parseModelConfig(edited('tiny-qwen2', { use_sliding_window: false, sliding_window: 1024, max_window_layers: 21 })).architecture).toBe('qwen2');
  });

  it('refuses sliding layers listed in layer_types', () => {
    expect(() => parseModelConfig(edited('tiny-qwen2', { layer_types: ['full_attention', 'sliding_attention'] }))).toThrow(UnsupportedModelError);
    expect(parseModelConfig(edited('tiny-qwen2', { layer_types: ['full_attention', 'full_attention'] })).numLayers).toBe(2);
  });
});

describe('refusals', () => {
  it('refuses unknown architectures and lists the supported ones', () => {
    const e = thrown(() => parseModelConfig(edited('tiny-llama3', { architectures: ['GPT2LMHeadModel'] })));
    expect(e).toBeInstanceOf(UnsupportedModelError);
    expect(e).toBeInstanceOf(ModelError);
    expect((e as Error).name).toBe('UnsupportedModelError');
    expect((e as Error).message).toContain('GPT2LMHeadModel');
    expect((e as Error).message).toContain('Qwen3ForCausalLM');
    expect(() => parseModelConfig(edited('tiny-llama3', { architectures: undefined, model_type: 'gemma' }))).toThrow(UnsupportedModelError);
  });

  it('refuses other activations and rope scaling types', () => {
    expect(() => parseModelConfig(edited('tiny-llama3', { hidden_act: 'gelu' }))).toThrow(UnsupportedModelError);
    expect(parseModelConfig(edited('tiny-llama3', { hidden_act: 'swish' })).hiddenAct).toBe('silu');
    for (const type of ['linear', 'dynamic', 'yarn', 'longrope']) {
      expect(() => parseModelConfig(edited('tiny-llama3', { rope_scaling: { rope_type: type, factor: 2 } }))).toThrow(UnsupportedModelError);
    }
    expect(() => parseModelConfig(edited('tiny-llama3', { mlp_bias: true }))).toThrow(UnsupportedModelError);
  });

  it.each([
    ['vocab_size', undefined, 'is missing'],
    ['hidden_size', 0, 'is 0'],
    ['hidden_size', -64, 'is -64'],
    ['intermediate_size', 320.5, 'is 320.5'],
    ['num_hidden_layers', '3', 'is "3"'],
    ['num_attention_heads', null, 'is missing'],
    ['num_key_value_heads', 3, 'does not divide'],
    ['rms_norm_eps', -1, 'is -1'],
    ['rope_theta', 'big', 'is "big"'],
    ['max_position_embeddings', 1e12, 'is 1000000000000'],
    ['tie_word_embeddings', 'yes', 'is "yes"'],
    ['eos_token_id', 32000, 'outside the vocabulary'],
    ['bos_token_id', -1, 'is -1'],
    ['architectures', [], 'is []'],
  ])('refuses %s = %j with a ModelConfigError naming it', (field, value, problem) => {
    const e = thrown(() => parseModelConfig(edited('tiny-llama3', { [field]: value })));
    expect(e).toBeInstanceOf(ModelConfigError);
    expect((e as ModelConfigError).field).toBe(field);
    expect((e as Error).message).toContain(problem);
    expect((e as Error).message).toMatch(/expected /);
  });

  it('refuses a bad head_dim, bad llama3 scaling fields, and non-objects', () => {
    expect(() => parseModelConfig(edited('tiny-qwen3b', { head_dim: 41 }))).toThrow(/even/);
    expect(() => parseModelConfig(edited('tiny-mistral', { head_dim: undefined, hidden_size: 66 }))).toThrow(ModelConfigError);
    const base = { rope_type: 'llama3', factor: 8, low_freq_factor: 1, high_freq_factor: 4, original_max_position_embeddings: 64 };
    const bad = (over: Record<string, unknown>): unknown => thrown(() => parseModelConfig(edited('tiny-llama3', { rope_scaling: { ...base, ...over } })));
    expect((bad({ factor: undefined }) as ModelConfigError).field).toBe('rope_scaling.factor');
    expect((bad({ high_freq_factor: 1 }) as ModelConfigError).field).toBe('rope_scaling.high_freq_factor');
    expect((bad({ original_max_position_embeddings: 64.5 }) as ModelConfigError).field).toBe('rope_scaling.original_max_position_embeddings');
    expect(() => parseModelConfig(edited('tiny-llama3', { rope_scaling: 'llama3' }))).toThrow(ModelConfigError);
    expect(() => parseModelConfig(edited('tiny-mistral', { sliding_window: 'off' }))).toThrow(ModelConfigError);
    for (const json of [null, 3, 'config', [fixture('tiny-llama3')]]) expect(() => parseModelConfig(json)).toThrow(ModelConfigError);
    expect(() => parseModelConfig({})).toThrow(ModelConfigError);
  });
});
