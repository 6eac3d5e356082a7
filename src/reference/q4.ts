// Float64 reference of q4 quantization (see src/model/quantize-q4.ts for the definition), written
// straight from the definition, one element at a time, with no packing: tests check the fast
// quantizer's buffers against it, and run the reference model on the weights it dequantizes to.

import type { ModelConfig } from '../model/config.js';
import { f16BitsToNumber, numberToF16Bits } from '../numeric/half.js';
import type { WeightLookup } from './model.js';

export interface Q4Reference {
  /** The 4-bit code of every element, 0..15. */
  q: Uint8Array;
  /** The f16 bits of every group's scale d16. */
  scaleBits: Uint16Array;
  /** (q - 8) * d16 per element. */
  values: Float64Array;
}

/** q4 of a row-major [rows, cols] matrix of exact values (cols a multiple of 32). */
export function q4Reference(x: ArrayLike<number>, rows: number, cols: number): Q4Reference {
  if (cols % 32 !== 0 || x.length !== rows * cols) throw new RangeError(`q4Reference: ${rows}x${cols} with ${x.length} values`);
  const n = rows * cols;
  const q = new Uint8Array(n);
  const scaleBits = new Uint16Array(n / 32);
  const values = new Float64Array(n);
  for (let g = 0; g < n / 32; g++) {
    let m = 0;
    for (let i = 32 * g; i < 32 * g + 32; i++) if (Math.abs(x[i]!) > Math.abs(m)) m = x[i]!;
    const bits = m === 0 ? 0 : numberToF16Bits(m / -8);
    const d = f16BitsToNumber(bits);
    scaleBits[g] = bits;
    for (let i = 32 * g; i < 32 * g + 32; i++) {
      q[i] = d === 0 ? 8 : Math.min(15, Math.max(0, Math.round(x[i]! / d) + 8));
      values[i] = (q[i]! - 8) * d;
    }
  }
  return { q, scaleBits, values };
}

// The linears the engine quantizes: every decoder-layer projection, and an untied LM head.
const LAYER_LINEAR = /^model\.layers\.\d+\.(self_attn\.[qkvo]_proj|mlp\.(gate|up|down)_proj)\.weight$/;

/**
 * The weights a q4 model computes with: each quantized linear whose K is a multiple of 32
 * replaced by its dequantized values, everything else (embeddings, norms, biases, a tied head) as is.
 */
export function q4WeightLookup(config: ModelConfig, weight: WeightLookup): WeightLookup {
  const cache = new Map<string, Float64Array>();
  return (name) => {
    const quantized = LAYER_LINEAR.test(name) || (name === 'lm_head.weight' && !config.tieWordEmbeddings);
    if (!quantized) return weight(name);
    let w = cache.get(name);
    if (!w) {
      const src = weight(name);
      const cols = name.endsWith('o_proj.weight') ? config.numHeads * config.headDim : name.endsWith('down_proj.weight') ? config.intermediateSize : config.hiddenSize;
      w = cols % 32 === 0 ? q4Reference(src, src.length / cols, cols).values : src;
      cache.set(name, w);
    }
    return w;
  };
}
