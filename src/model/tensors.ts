// The parameters each architecture needs, under the names and shapes transformers saves them with,
// and the check that a set of weight files provides exactly those (extras are tolerated, listed).

import type { ModelConfig } from './config.js';
import { MissingTensorError, TensorShapeError } from './errors.js';

/** HF parameter name -> shape (row-major, nn.Linear weights as [out_features, in_features]). */
export function expectedTensors(config: ModelConfig): Map<string, number[]> {
  const { vocabSize: vocab, hiddenSize: hidden, intermediateSize: inter, headDim, numHeads, numKvHeads } = config;
  const q = numHeads * headDim;
  const kv = numKvHeads * headDim;
  const out = new Map<string, number[]>();
  out.set('model.embed_tokens.weight', [vocab, hidden]);
  for (let i = 0; i < config.numLayers; i++) {
    const p = `model.layers.${i}.`;
    out.set(`${p}input_layernorm.weight`, [hidden]);
    out.set(`${p}self_attn.q_proj.weight`, [q, hidden]);
    out.set(`${p}self_attn.k_proj.weight`, [kv, hidden]);
    out.set(`${p}self_attn.v_proj.weight`, [kv, hidden]);
    out.set(`${p}self_attn.o_proj.weight`, [hidden, q]);
    if (config.attentionBias) {
      out.set(`${p}self_attn.q_proj.bias`, [q]);
      out.set(`${p}self_attn.k_proj.bias`, [kv]);
      out.set(`${p}self_attn.v_proj.bias`, [kv]);
    }
    if (config.oProjBias) out.set(`${p}self_attn.o_proj.bias`, [hidden]);
    if (config.qkNorm) {
      // One RMSNorm weight shared by all heads, applied per head.
      out.set(`${p}self_attn.q_norm.weight`, [headDim]);
      out.set(`${p}self_attn.k_norm.weight`, [headDim]);
    }
    out.set(`${p}post_attention_layernorm.weight`, [hidden]);
    out.set(`${p}mlp.gate_proj.weight`, [inter, hidden]);
    out.set(`${p}mlp.up_proj.weight`, [inter, hidden]);
    out.set(`${p}mlp.down_proj.weight`, [hidden, inter]);
  }
  out.set('model.norm.weight', [hidden]);
  // Tied models reuse embed_tokens as the LM head; transformers ties after loading, so an
  // lm_head.weight shipped anyway is overwritten there and ignored (listed as extra) here.
  if (!config.tieWordEmbeddings) out.set('lm_head.weight', [vocab, hidden]);
  return out;
}

export interface TensorCheck {
  /** Tensors present but not used by the architecture (rotary_emb.inv_freq, a tied lm_head.weight). */
  extra: string[];
}

function sameShape(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((d, i) => d === b[i]);
}

/**
 * Throws MissingTensorError listing every absent parameter, else TensorShapeError for the first one
 * whose shape disagrees with the config. Returns the names it did not need.
 */
export function checkTensors(config: ModelConfig, available: ReadonlyMap<string, { shape: readonly number[] }>): TensorCheck {
  // Layers the files cannot hold, before naming every tensor they would need: num_hidden_layers
  // 1e6 once built a 9e6-entry map (55 s, 2.4 GB) to say what was missing, and 2^31-1 overflowed it.
  const lastLayer = highestLayer(available);
  if (config.numLayers > lastLayer + 1) {
    const first = lastLayer + 1;
    const names = [`model.layers.${first}.input_layernorm.weight`, `model.layers.${first}.self_attn.q_proj.weight`];
    throw new MissingTensorError(
      [...names, `every tensor of layers ${first}..${config.numLayers - 1} (num_hidden_layers is ${config.numLayers}; the files hold layers 0..${lastLayer})`],
      config.architecture,
    );
  }
  const expected = expectedTensors(config);
  const missing = [...expected.keys()].filter((name) => !available.has(name));
  if (missing.length > 0) throw new MissingTensorError(missing, config.architecture);
  for (const [name, shape] of expected) {
    const actual = available.get(name)!.shape;
    if (!sameShape(shape, actual)) throw new TensorShapeError(name, shape, actual);
  }
  return { extra: [...available.keys()].filter((name) => !expected.has(name)).sort() };
}

/** The highest N of any `model.layers.N.` tensor (-1 without any). */
function highestLayer(available: ReadonlyMap<string, unknown>): number {
  let top = -1;
  for (const name of available.keys()) {
    const m = /^model\.layers\.(\d{1,9})\./.exec(name);
    if (m) top = Math.max(top, Number(m[1]));
  }
  return top;
}
