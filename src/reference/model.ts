// A float64 forward pass of the supported decoder-only models (Llama, Mistral, Qwen2, Qwen3),
// llama2.c style: one sequence, a plain growing KV cache, every step read top to bottom. It checks
// our reading of the HF configs against the fixtures' HF outputs, and is the oracle GPU tests use
// when they need intermediate values.

import type { ModelConfig } from '../model/config.js';
import { argmaxRef, attentionRef, rmsNormRef, ropeInvFreq, ropeRef, siluMulRef } from './ops.js';

/** Weights by HF parameter name, as exact float64 values. */
export type WeightLookup = (name: string) => Float64Array;

function linear(x: Float64Array, w: Float64Array, rows: number, n: number, k: number, bias?: Float64Array): Float64Array {
  const y = new Float64Array(rows * n);
  for (let r = 0; r < rows; r++) {
    for (let j = 0; j < n; j++) {
      let s = bias ? bias[j]! : 0;
      for (let i = 0; i < k; i++) s += x[r * k + i]! * w[j * k + i]!;
      y[r * n + j] = s;
    }
  }
  return y;
}

export class ReferenceModel {
  private readonly keys: Float64Array[][] = [];
  private readonly values: Float64Array[][] = [];
  private readonly invFreq: Float64Array;

  constructor(
    readonly config: ModelConfig,
    private readonly weight: WeightLookup,
  ) {
    this.invFreq = ropeInvFreq(config.headDim, config.ropeTheta, config.ropeScaling);
    for (let l = 0; l < config.numLayers; l++) {
      this.keys.push([]);
      this.values.push([]);
    }
  }

  get length(): number {
    return this.keys[0]!.length;
  }

  /** Run new tokens after the cached ones; returns logits [tokens, vocab] of the rows asked for. */
  forward(tokens: readonly number[], logitRows: 'last' | 'all' = 'last'): Float64Array {
    const c = this.config;
    const T = tokens.length;
    const H = c.hiddenSize;
    const d = c.headDim;
    const start = this.length;
    const positions = tokens.map((_, i) => start + i);
    const embed = this.weight('model.embed_tokens.weight');
    let x = new Float64Array(T * H);
    tokens.forEach((tok, t) => x.set(embed.subarray(tok * H, (tok + 1) * H), t * H));

    for (let l = 0; l < c.numLayers; l++) {
      const p = `model.layers.${l}.`;
      const w = (n: string): Float64Array => this.weight(p + n);
      const b = (n: string): Float64Array | undefined => (c.attentionBias ? this.weight(p + n) : undefined);
      const h = rmsNormRef(x, w('input_layernorm.weight'), T, H, c.rmsNormEps);
      const q = linear(h, w('self_attn.q_proj.weight'), T, c.numHeads * d, H, b('self_attn.q_proj.bias'));
      const k = linear(h, w('self_attn.k_proj.weight'), T, c.numKvHeads * d, H, b('self_attn.k_proj.bias'));
      const v = linear(h, w('self_attn.v_proj.weight'), T, c.numKvHeads * d, H, b('self_attn.v_proj.bias'));
      const qn = c.qkNorm ? rmsNormRef(q, w('self_attn.q_norm.weight'), T * c.numHeads, d, c.rmsNormEps) : q;
      const kn = c.qkNorm ? rmsNormRef(k, w('self_attn.k_norm.weight'), T * c.numKvHeads, d, c.rmsNormEps) : k;
      ropeRef(qn, positions, c.numHeads, d, this.invFreq);
      ropeRef(kn, positions, c.numKvHeads, d, this.invFreq);
      for (let t = 0; t < T; t++) {
        this.keys[l]!.push(kn.slice(t * c.numKvHeads * d, (t + 1) * c.numKvHeads * d));
        this.values[l]!.push(v.slice(t * c.numKvHeads * d, (t + 1) * c.numKvHeads * d));
      }
      const K = this.keys[l]!;
      const V = this.values[l]!;
      const attn = attentionRef(qn, positions, c.numHeads, c.numKvHeads, d, (_t, pos, kvh) => ({
        k: K[pos]!.subarray(kvh * d, (kvh + 1) * d),
        v: V[pos]!.subarray(kvh * d, (kvh + 1) * d),
      }));
      const o = linear(attn, w('self_attn.o_proj.weight'), T, H, c.numHeads * d, c.oProjBias ? w('self_attn.o_proj.bias') : undefined);
      for (let i = 0; i < x.length; i++) x[i]! += o[i]!;
      const h2 = rmsNormRef(x, w('post_attention_layernorm.weight'), T, H, c.rmsNormEps);
      const gate = linear(h2, w('mlp.gate_proj.weight'), T, c.intermediateSize, H);
      const up = linear(h2, w('mlp.up_proj.weight'), T, c.intermediateSize, H);
      const down = linear(siluMulRef(gate, up), w('mlp.down_proj.weight'), T, H, c.intermediateSize);
      for (let i = 0; i < x.length; i++) x[i]! += down[i]!;
    }

    const rows = logitRows === 'last' ? 1 : T;
    x = x.subarray((T - rows) * H);
    const normed = rmsNormRef(x, this.weight('model.norm.weight'), rows, H, c.rmsNormEps);
    const head = this.weight(c.tieWordEmbeddings ? 'model.embed_tokens.weight' : 'lm_head.weight');
    return linear(normed, head, rows, c.vocabSize, H);
  }

  /** Greedy decoding: `n` tokens after `prompt` (the cache is reset first). */
  greedy(prompt: readonly number[], n: number): number[] {
    for (const l of this.keys) l.length = 0;
    for (const l of this.values) l.length = 0;
    const out: number[] = [];
    let logits = this.forward(prompt);
    for (let i = 0; i < n; i++) {
      const next = argmaxRef(logits);
      out.push(next);
      if (i + 1 < n) logits = this.forward([next]);
    }
    return out;
  }
}
