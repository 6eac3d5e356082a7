// The model's weights on the GPU. Matrices keep their file dtype (F32, F16, BF16 raw) and are
// split by row range into chunks that each fit one storage binding; one matmul dispatch per chunk
// writes its columns of the output. q/k/v and gate/up are fused row-wise so one matmul serves each.
// Norm weights and biases are small and widened to f32 once (exact).
// With `quantize: 'q4'` the decoder-layer linears and an untied LM head are quantized on the CPU,
// chunk by chunk (src/model/quantize-q4.ts); a matrix whose K is not a multiple of 32 keeps its
// dtype, and so do the embeddings (and a head tied to them). Those linears, when a GGUF file holds
// them as Q4_0 blocks, are q4 whatever `quantize` says: the file's blocks re-laid-out, bit for bit.

import type { GpuRuntime } from '../gpu/runtime.js';
import type { StepRecorder } from '../gpu/step.js';
import { weightRowBytes, type MatmulKernels, type MatmulPath, type SourceWeightDType, type WeightDType } from '../kernels/matmul.js';
import type { ModelConfig } from '../model/config.js';
import { MissingTensorError, UnsupportedModelError } from '../model/errors.js';
import { tensorToFloat64 } from '../model/load.js';
import { hasGgmlQ4_0, parseQuantization, Q4_GROUP, q4Bytes, q4FromGgmlQ4_0, quantizeQ4, type WeightQuantization } from '../model/quantize-q4.js';
import type { Tensor } from '../model/safetensors.js';

export interface MatrixChunk {
  buffer: GPUBuffer;
  rowStart: number;
  rows: number;
}

/** A [rows, cols] matrix in HF Linear layout, split into row chunks. */
export interface GpuMatrix {
  name: string;
  dtype: WeightDType;
  rows: number;
  cols: number;
  chunks: MatrixChunk[];
  /**
   * Rows of two equal tensors interleaved (row 2i from the first, 2i + 1 from the second), chunks
   * split at even rows: gate and up this way let the matmul apply SiLU * up as it stores.
   */
  interleaved?: boolean;
}

export interface LayerWeights {
  inputNorm: GPUBuffer;
  qkv: GpuMatrix;
  qkvBias: GPUBuffer | null;
  qNorm: GPUBuffer | null;
  kNorm: GPUBuffer | null;
  o: GpuMatrix;
  oBias: GPUBuffer | null;
  postNorm: GPUBuffer;
  gateUp: GpuMatrix;
  down: GpuMatrix;
}

export interface ModelWeights {
  embed: GpuMatrix;
  layers: LayerWeights[];
  finalNorm: GPUBuffer;
  /** The LM head: `embed` itself when the embeddings are tied. */
  lmHead: GpuMatrix;
  /** Bytes of weights on the GPU. */
  bytes: number;
}

function dtypeOf(t: Tensor, name: string): SourceWeightDType {
  if (t.dtype === 'F32') return 'f32';
  if (t.dtype === 'F16') return 'f16';
  if (t.dtype === 'BF16') return 'bf16';
  throw new UnsupportedModelError(`dtype ${String(t.dtype)} (tensor ${name})`, ['F32', 'F16', 'BF16']);
}

/** Interleave the rows of two row-major tensors of one shape and dtype: a0, b0, a1, b1, ... */
function interleaveRows(a: Tensor, b: Tensor): Uint8Array {
  const rowBytes = a.data.byteLength / a.shape[0]!;
  const out = new Uint8Array(a.data.byteLength + b.data.byteLength);
  for (let r = 0; r < a.shape[0]!; r++) {
    out.set(a.data.subarray(r * rowBytes, (r + 1) * rowBytes), 2 * r * rowBytes);
    out.set(b.data.subarray(r * rowBytes, (r + 1) * rowBytes), (2 * r + 1) * rowBytes);
  }
  return out;
}

/** Concatenate row-major tensors of one dtype along rows (their bytes, as the file has them). */
function concatRows(parts: Tensor[]): Uint8Array {
  const total = parts.reduce((n, p) => n + p.data.byteLength, 0);
  const out = new Uint8Array(total);
  let o = 0;
  for (const p of parts) {
    out.set(p.data, o);
    o += p.data.byteLength;
  }
  return out;
}

/**
 * The q4 rows of a matrix some of whose parts are GGUF Q4_0 blocks: those re-laid-out bit for bit,
 * the others quantized (the caller asked for q4); in the matrix's row order (concatenated or
 * interleaved). Returned as one q4 buffer of all the rows; q4Chunk cuts chunks from it.
 */
function q4RowsOf(parts: Tensor[], interleave: boolean, cols: number, label: string): Uint8Array {
  const packed = parts.map((p) => {
    const r = p.shape[0]!;
    return hasGgmlQ4_0(p) ? q4FromGgmlQ4_0(p.ggmlQ4_0, r, cols, label) : quantizeQ4(p.data, p.dtype, r, cols, label);
  });
  const rows = parts.reduce((n, p) => n + p.shape[0]!, 0);
  const order: [part: number, row: number][] = [];
  if (interleave) for (let r = 0; r < parts[0]!.shape[0]!; r++) order.push([0, r], [1, r]);
  else
    parts.forEach((p, i) => {
      for (let r = 0; r < p.shape[0]!; r++) order.push([i, r]);
    });
  const out = new Uint8Array(q4Bytes(rows, cols));
  const nib = cols / 2;
  const sc = (2 * cols) / Q4_GROUP;
  order.forEach(([i, r], to) => {
    const src = packed[i]!;
    const srcNibbles = (parts[i]!.shape[0]! * cols) / 2;
    out.set(src.subarray(r * nib, (r + 1) * nib), to * nib);
    out.set(src.subarray(srcNibbles + r * sc, srcNibbles + (r + 1) * sc), (rows * cols) / 2 + to * sc);
  });
  return out;
}

/** Rows [start, start + n) of a q4 buffer of `rows` rows, as a q4 buffer of their own. */
function q4Chunk(all: Uint8Array, start: number, n: number, rows: number, cols: number): Uint8Array {
  if (start === 0 && n === rows) return all;
  const out = new Uint8Array(q4Bytes(n, cols));
  const nib = cols / 2;
  const sc = (2 * cols) / Q4_GROUP;
  out.set(all.subarray(start * nib, (start + n) * nib));
  out.set(all.subarray((rows * cols) / 2 + start * sc, (rows * cols) / 2 + (start + n) * sc), (n * cols) / 2);
  return out;
}

export class WeightUploader {
  bytes = 0;

  constructor(
    private readonly rt: GpuRuntime,
    private readonly tensors: ReadonlyMap<string, Tensor>,
    private readonly architecture: string,
  ) {}

  tensor(name: string): Tensor {
    const t = this.tensors.get(name);
    if (!t) throw new MissingTensorError([name], this.architecture);
    return t;
  }

  /**
   * Rows of one or more tensors (same dtype and columns) as one chunked matrix; `quantize` q4
   * stores it as q4 when its columns split into whole groups; `interleave` alternates the rows of
   * two tensors (gate/up: the matmul then applies SiLU * up as it stores).
   */
  matrix(label: string, names: string[], opts: { quantize?: WeightQuantization; interleave?: boolean } = {}): GpuMatrix {
    const quantize = opts.quantize ?? 'none';
    const parts = names.map((n) => this.tensor(n));
    const dtypes = new Set(parts.map((p, i) => dtypeOf(p, names[i]!)));
    if (dtypes.size !== 1) throw new UnsupportedModelError(`mixed dtypes ${[...dtypes].join(', ')} in ${names.join(', ')}`, ['one dtype per fused matrix']);
    const source = [...dtypes][0]!;
    const cols = parts[0]!.shape[1]!;
    const rows = parts.reduce((n, p) => n + p.shape[0]!, 0);
    const interleave = opts.interleave ?? false;
    if (interleave && (parts.length !== 2 || parts[0]!.shape[0] !== parts[1]!.shape[0] || parts[0]!.shape[1] !== parts[1]!.shape[1])) {
      throw new UnsupportedModelError(`${label}: interleaving ${names.join(', ')} (shapes ${parts.map((p) => `[${p.shape.join(', ')}]`).join(', ')})`, ['two tensors of one shape']);
    }
    // A matrix that may be q4 (opts.quantize given) is, when asked or when every part is a GGUF
    // file's Q4_0 blocks (4-bit already: held as the file has it, nothing re-quantized).
    const fileQ4 = opts.quantize !== undefined && parts.every((p) => hasGgmlQ4_0(p));
    const dtype: WeightDType = (quantize === 'q4' || fileQ4) && cols % Q4_GROUP === 0 ? 'q4' : source;
    const anyBlocks = dtype === 'q4' && parts.some((p) => hasGgmlQ4_0(p));
    const bytes = anyBlocks ? q4RowsOf(parts, interleave, cols, label) : interleave ? interleaveRows(parts[0]!, parts[1]!) : concatRows(parts);
    const srcRowBytes = weightRowBytes(source, cols);
    const rowBytes = weightRowBytes(dtype, cols);
    const limits = this.rt.capabilities.limits;
    const binding = Math.min(limits.maxStorageBufferBindingSize, limits.maxBufferSize);
    // q4: room for the scales' padding word, and element indices (N * K) that fit a u32.
    const fit = dtype === 'q4' ? Math.min(Math.floor((binding - 4) / rowBytes), Math.floor(0xffffffff / cols)) : Math.floor(binding / rowBytes);
    // Interleaved rows split at even rows, so no gate is cut from its up.
    const maxRows = interleave ? fit - (fit % 2) : fit;
    if (maxRows < 1) throw new UnsupportedModelError(`${label}: a row of ${rowBytes} bytes`, [`rows up to ${limits.maxStorageBufferBindingSize} bytes (this device's storage binding limit)`]);
    const chunks: MatrixChunk[] = [];
    for (let start = 0; start < rows; start += maxRows) {
      const n = Math.min(maxRows, rows - start);
      const data = anyBlocks
        ? q4Chunk(bytes, start, n, rows, cols)
        : dtype === 'q4'
          ? quantizeQ4(bytes.subarray(start * srcRowBytes, (start + n) * srcRowBytes), parts[0]!.dtype, n, cols, label)
          : bytes.subarray(start * srcRowBytes, (start + n) * srcRowBytes);
      const buffer = this.rt.upload(data, `${label} rows ${start}..${start + n}`);
      this.bytes += buffer.size;
      chunks.push({ buffer, rowStart: start, rows: n });
    }
    return { name: label, dtype, rows, cols, chunks, ...(interleave ? { interleaved: true } : {}) };
  }

  /** Small tensors (norms, biases) widened to f32, optionally concatenated. */
  vector(names: string[]): GPUBuffer {
    const values = names.map((n) => tensorToFloat64(this.tensor(n)));
    const out = new Float32Array(values.reduce((n, v) => n + v.length, 0));
    let o = 0;
    for (const v of values) {
      out.set(v, o);
      o += v.length;
    }
    const buffer = this.rt.upload(out, names[0]!);
    this.bytes += buffer.size;
    return buffer;
  }
}

export interface UploadOptions {
  /** 'q4': quantize the decoder-layer linears and an untied LM head at load. Default 'none'. */
  quantize?: WeightQuantization;
}

export function uploadWeights(rt: GpuRuntime, config: ModelConfig, tensors: ReadonlyMap<string, Tensor>, numLayers = config.numLayers, options: UploadOptions = {}): ModelWeights {
  const q = parseQuantization(options.quantize);
  const up = new WeightUploader(rt, tensors, config.architecture);
  const embed = up.matrix('embed_tokens', ['model.embed_tokens.weight']);
  const layers: LayerWeights[] = [];
  for (let l = 0; l < numLayers; l++) {
    const p = `model.layers.${l}.`;
    const a = `${p}self_attn.`;
    layers.push({
      inputNorm: up.vector([`${p}input_layernorm.weight`]),
      qkv: up.matrix(`layer ${l} qkv`, [`${a}q_proj.weight`, `${a}k_proj.weight`, `${a}v_proj.weight`], { quantize: q }),
      qkvBias: config.attentionBias ? up.vector([`${a}q_proj.bias`, `${a}k_proj.bias`, `${a}v_proj.bias`]) : null,
      qNorm: config.qkNorm ? up.vector([`${a}q_norm.weight`]) : null,
      kNorm: config.qkNorm ? up.vector([`${a}k_norm.weight`]) : null,
      o: up.matrix(`layer ${l} o`, [`${a}o_proj.weight`], { quantize: q }),
      oBias: config.oProjBias ? up.vector([`${a}o_proj.bias`]) : null,
      postNorm: up.vector([`${p}post_attention_layernorm.weight`]),
      gateUp: up.matrix(`layer ${l} gate_up`, [`${p}mlp.gate_proj.weight`, `${p}mlp.up_proj.weight`], { quantize: q, interleave: true }),
      down: up.matrix(`layer ${l} down`, [`${p}mlp.down_proj.weight`], { quantize: q }),
    });
  }
  const finalNorm = up.vector(['model.norm.weight']);
  const lmHead = config.tieWordEmbeddings ? embed : up.matrix('lm_head', ['lm_head.weight'], { quantize: q });
  return { embed, layers, finalNorm, lmHead, bytes: up.bytes };
}

/** What a matmul adds to its product before storing: a bias, and/or the old Y (a residual). */
export interface MatrixEpilogue {
  bias?: GPUBuffer | null;
  accumulate?: boolean;
  /** An interleaved gate/up matrix stores silu(gate) * up (Y's row is then rows / 2 wide). */
  swiglu?: boolean;
  /** RMSNorm X's rows as they are read (matvec path only; see MatmulDims.norm). */
  norm?: { weight: GPUBuffer; eps: number };
}

/** Y[:, :] = X W^T (+ epilogue) over all of W's chunks (each writes its own column range of Y). */
export function recordMatrix(
  step: StepRecorder,
  kernels: ReadonlyMap<WeightDType, MatmulKernels>,
  x: GPUBuffer,
  w: GpuMatrix,
  y: GPUBuffer,
  M: number,
  path: MatmulPath = 'auto',
  yStride = w.rows,
  epilogue: MatrixEpilogue = {},
): void {
  const k = kernels.get(w.dtype)!;
  if (epilogue.swiglu && !w.interleaved) throw new UnsupportedModelError(`${w.name}: a SwiGLU epilogue`, ['a matrix with interleaved gate/up rows']);
  const fused = {
    ...(epilogue.bias ? { bias: epilogue.bias } : {}),
    ...(epilogue.accumulate ? { accumulate: true } : {}),
    ...(epilogue.swiglu ? { swiglu: true } : {}),
    ...(epilogue.norm ? { norm: epilogue.norm } : {}),
  };
  for (const c of w.chunks) {
    k.record(step, x, c.buffer, y, { M, N: c.rows, K: w.cols, yStride, yColOffset: c.rowStart, ...fused }, path);
  }
}

export function destroyWeights(rt: GpuRuntime, w: ModelWeights): void {
  const mats = [w.embed, ...w.layers.flatMap((l) => [l.qkv, l.o, l.gateUp, l.down])];
  if (w.lmHead !== w.embed) mats.push(w.lmHead);
  for (const m of mats) for (const c of m.chunks) rt.destroyBuffer(c.buffer);
  const vecs = [w.finalNorm, ...w.layers.flatMap((l) => [l.inputNorm, l.postNorm, l.qkvBias, l.qNorm, l.kNorm, l.oBias])];
  for (const v of vecs) if (v) rt.destroyBuffer(v);
}
