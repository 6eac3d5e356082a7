// RoPE's frequencies and angles exactly as HF transformers computes them (float32 throughout):
// the GPU's RoPE table (src/kernels/rope-table.ts) and the float64 reference (src/reference/ops.ts)
// both use these, so the rotation matches HF's to the last bit of its inputs.

export type Vec = Float64Array;

export type RopeScaling =
  | {
      type: 'llama3';
      factor: number;
      lowFreqFactor: number;
      highFreqFactor: number;
      originalMaxPositionEmbeddings: number;
    }
  /** One divisor per frequency, as GGUF files store Llama-3 scaling (llama.cpp's `rope_freqs`). */
  | { type: 'factors'; factors: readonly number[] };

/**
 * RoPE inverse frequencies for dims 0, 2, ..., headDim-2, with Llama-3 scaling, computed the way HF
 * transformers does: in float32 (`1 / theta ** (arange(0, d, 2).float() / d)`, then the scaling in
 * float32). Every HF model, whatever its dtype, rotates with these rounded frequencies; computing
 * them in float64 instead moves logits by ~1e-5 at a few hundred positions.
 */
export function ropeInvFreq(headDim: number, theta: number, scaling: RopeScaling | null): Vec {
  const f = Math.fround;
  const half = headDim / 2;
  const inv = new Float64Array(half);
  for (let i = 0; i < half; i++) inv[i] = f(1 / f(f(theta) ** f((2 * i) / headDim)));
  if (!scaling) return inv;
  if (scaling.type === 'factors') {
    if (scaling.factors.length !== half) throw new RangeError(`RoPE factors: ${scaling.factors.length} for ${half} frequencies`);
    for (let i = 0; i < half; i++) inv[i] = f(inv[i]! / f(scaling.factors[i]!));
    return inv;
  }
  const { factor, lowFreqFactor, highFreqFactor, originalMaxPositionEmbeddings: old } = scaling;
  const lowWavelen = old / lowFreqFactor;
  const highWavelen = old / highFreqFactor;
  for (let i = 0; i < half; i++) {
    // torch evaluates `scalar / tensor` as reciprocal(tensor) * scalar, all in float32.
    const wavelen = f(f(1 / inv[i]!) * f(2 * Math.PI));
    const scaled = f(inv[i]! / factor);
    const v = wavelen > lowWavelen ? scaled : inv[i]!;
    const smooth = f(f(f(f(1 / wavelen) * old) - lowFreqFactor) / (highFreqFactor - lowFreqFactor));
    const smoothed = f(f(f(f(1 - smooth) * v) / factor) + f(smooth * v));
    const medium = !(wavelen < highWavelen) && !(wavelen > lowWavelen);
    inv[i] = medium ? smoothed : v;
  }
  return inv;
}

/**
 * cos and sin of pos * invFreq the way HF computes them: the product and both functions in float32
 * (LlamaRotaryEmbedding forces float32 there, whatever the model's dtype). Positions are exact.
 */
export function ropeCosSin(pos: number, invFreq: number): [number, number] {
  const angle = Math.fround(pos * invFreq);
  return [Math.fround(Math.cos(angle)), Math.fround(Math.sin(angle))];
}
