// The small Qwen2 configs the GGUF tests write synthetic files of (weights from
// bench/synthetic-files.ts): a vocabulary of 300 and widths chosen for the block sizes under test
// (256-wide rows are whole K-quant super-blocks; 896, Qwen2.5-0.5B's width, is not).

import { parseModelConfig, type ModelConfig } from '../../src/model/config.js';

export function syntheticQwen2Config(o: { hidden: number; intermediate: number; layers: number; heads: number; tied: boolean }): ModelConfig {
  return parseModelConfig({
    architectures: ['Qwen2ForCausalLM'],
    model_type: 'qwen2',
    vocab_size: 300,
    hidden_size: o.hidden,
    intermediate_size: o.intermediate,
    num_hidden_layers: o.layers,
    num_attention_heads: o.heads,
    num_key_value_heads: 2,
    rms_norm_eps: 1e-6,
    rope_theta: 10000,
    max_position_embeddings: 256,
    tie_word_embeddings: o.tied,
    hidden_act: 'silu',
  });
}
