// Synthetic models for benchmarks: a real model's shapes (ModelConfig built directly, no files) and
// weights generated ON THE GPU by shaders/bench_fill.wgsl (an integer hash of (seed, index), small
// uniform values; norm weights around 1), laid out exactly as src/runner/gpu-weights.ts lays out
// loaded ones: fused q/k/v and gate/up matrices split by row range so each chunk fits one storage
// binding, f32 vectors for norms and biases. Nothing is generated or uploaded from JS.

import fillSource from '../shaders/bench_fill.wgsl?raw';
import type { GpuRuntime, KernelSpec, PreparedPipeline } from '../src/gpu/index.js';
import { arg } from './common.js';
import { weightBytes, type SourceWeightDType, type WeightDType } from '../src/kernels/matmul.js';
import { q4Bytes } from '../src/model/quantize-q4.js';
import type { ModelConfig } from '../src/model/config.js';
import { UnsupportedModelError } from '../src/model/errors.js';
import { bf16BitsToNumber, f16BitsToNumber } from '../src/numeric/half.js';
import type { GpuMatrix, LayerWeights, MatrixChunk, ModelWeights } from '../src/runner/gpu-weights.js';

export const FILL: KernelSpec = { name: 'bench_fill', source: fillSource, storage: ['read_write'], paramsBytes: 32 };

/** Half-width of the uniform distribution of matrix and bias values. */
export const WEIGHT_HALF_WIDTH = 0.05;

const base = {
  rmsNormEps: 1e-6,
  ropeScaling: null,
  attentionBias: true,
  oProjBias: false,
  qkNorm: false,
  hiddenAct: 'silu',
  torchDtype: 'bfloat16',
} as const;

/** Shapes of real checkpoints (their config.json values). */
export const SHAPES = {
  'qwen2.5-0.5b': {
    ...base,
    architecture: 'qwen2',
    vocabSize: 151936,
    hiddenSize: 896,
    intermediateSize: 4864,
    numLayers: 24,
    numHeads: 14,
    numKvHeads: 2,
    headDim: 64,
    ropeTheta: 1e6,
    maxPositionEmbeddings: 32768,
    tieWordEmbeddings: true,
    bosTokenId: 151643,
    eosTokenIds: [151643],
  },
  'qwen2.5-1.5b': {
    ...base,
    architecture: 'qwen2',
    vocabSize: 151936,
    hiddenSize: 1536,
    intermediateSize: 8960,
    numLayers: 28,
    numHeads: 12,
    numKvHeads: 2,
    headDim: 128,
    ropeTheta: 1e6,
    maxPositionEmbeddings: 131072,
    tieWordEmbeddings: true,
    bosTokenId: 151643,
    eosTokenIds: [151643],
  },
  // Llama-3.2-1B's shapes. Untied here on purpose (the checkpoint ties them): the LM head is read
  // every step either way, untied only exercises a separate lm_head matrix.
  'llama-3.2-1b': {
    ...base,
    architecture: 'llama',
    vocabSize: 128256,
    hiddenSize: 2048,
    intermediateSize: 8192,
    numLayers: 16,
    numHeads: 32,
    numKvHeads: 8,
    headDim: 64,
    rmsNormEps: 1e-5,
    ropeTheta: 5e5,
    ropeScaling: { type: 'llama3', factor: 32, lowFreqFactor: 1, highFreqFactor: 4, originalMaxPositionEmbeddings: 8192 },
    maxPositionEmbeddings: 131072,
    tieWordEmbeddings: false,
    attentionBias: false,
    bosTokenId: 128000,
    eosTokenIds: [128001],
  },
  // Llama-3.2-3B's shapes (tied embeddings, as the checkpoint).
  'llama-3.2-3b': {
    ...base,
    architecture: 'llama',
    vocabSize: 128256,
    hiddenSize: 3072,
    intermediateSize: 8192,
    numLayers: 28,
    numHeads: 24,
    numKvHeads: 8,
    headDim: 128,
    rmsNormEps: 1e-5,
    ropeTheta: 5e5,
    ropeScaling: { type: 'llama3', factor: 32, lowFreqFactor: 1, highFreqFactor: 4, originalMaxPositionEmbeddings: 8192 },
    maxPositionEmbeddings: 131072,
    tieWordEmbeddings: true,
    attentionBias: false,
    bosTokenId: 128000,
    eosTokenIds: [128001],
  },
} satisfies Record<string, ModelConfig>;

export type ShapeName = keyof typeof SHAPES;

export function isShapeName(name: string): name is ShapeName {
  return Object.prototype.hasOwnProperty.call(SHAPES, name);
}

/** A fresh copy of a shape's config. */
export function shapeConfig(name: ShapeName): ModelConfig {
  return structuredClone(SHAPES[name]);
}

/** Rows of each per-layer matrix (HF Linear layout [rows, cols], fused as gpu-weights.ts fuses). */
export function layerMatrixShapes(c: ModelConfig): { name: string; rows: number; cols: number }[] {
  const qDim = c.numHeads * c.headDim;
  const kvDim = c.numKvHeads * c.headDim;
  return [
    { name: 'qkv', rows: qDim + 2 * kvDim, cols: c.hiddenSize },
    { name: 'o', rows: c.hiddenSize, cols: qDim },
    { name: 'gate_up', rows: 2 * c.intermediateSize, cols: c.hiddenSize },
    { name: 'down', rows: c.hiddenSize, cols: c.intermediateSize },
  ];
}

/**
 * Weight bytes one decode step streams: every layer matrix of `layers` layers plus the LM head.
 * q4 (as the loader does it): the layer matrices and an untied LM head in q4, a tied one f16.
 */
export function decodeWeightBytes(c: ModelConfig, dtype: WeightDType, layers: number): { perLayer: number; lmHead: number; total: number } {
  const b = weightBytes(dtype);
  const perLayer = layerMatrixShapes(c).reduce((n, m) => n + m.rows * m.cols * b, 0);
  const lmHead = c.vocabSize * c.hiddenSize * (dtype === 'q4' && c.tieWordEmbeddings ? 2 : b);
  return { perLayer, lmHead, total: layers * perLayer + lmHead };
}

// PCG hash, as in bench_fill.wgsl (for spot-checking what the GPU wrote).
function pcgHash(v: number): number {
  const state = (Math.imul(v >>> 0, 747796405) + 2891336453) >>> 0;
  const word = Math.imul(((state >>> ((state >>> 28) + 4)) ^ state) >>> 0, 277803737) >>> 0;
  return ((word >>> 22) ^ word) >>> 0;
}

/** The f32 value bench_fill.wgsl writes for element `index` (up to fma contraction on the GPU). */
export function fillValue(seed: number, index: number, center: number, halfWidth: number): number {
  const h = pcgHash((index ^ pcgHash(seed)) >>> 0);
  const u = Math.fround((h >>> 8) * (2 / 16777216) - 1);
  return Math.fround(center + Math.fround(halfWidth * u));
}

/**
 * Fill `buffers` on the GPU with the hash's values (center +- halfWidth) in `dtype`'s layout (f16 /
 * bf16: two halves per word; any other dtype: f32 words), one step, waited for.
 */
export async function gpuFill(rt: GpuRuntime, buffers: readonly GPUBuffer[], dtype: WeightDType, center: number, halfWidth: number, seed = 1): Promise<void> {
  // q4: f16 halves in every word, so the scales are finite (the nibbles are any bits).
  if (dtype === 'q4') dtype = 'f16';
  const caps = rt.capabilities;
  const wg = Math.min(256, caps.limits.maxComputeInvocationsPerWorkgroup);
  const pipeline = await rt.prepare(FILL, { WG: wg, F16: dtype === 'f16', BF16: dtype === 'bf16' });
  const groups = Math.min(caps.limits.maxComputeWorkgroupsPerDimension, 4096);
  const step = rt.beginStep('bench fill');
  buffers.forEach((buffer, i) => {
    const params = new Uint32Array(8);
    params.set([buffer.size / 4, seed + i, groups * wg, 0]);
    new Float32Array(params.buffer).set([center, halfWidth], 4);
    step.dispatch(pipeline, params, [buffer], [groups], `fill ${buffer.label}`);
  });
  await step.submit();
  await rt.flush();
}

interface FillRecord {
  buffer: GPUBuffer;
  seed: number;
  center: number;
  halfWidth: number;
  dtype: SourceWeightDType;
}

export interface SyntheticWeights {
  weights: ModelWeights;
  /** Wall time of generating them on the GPU (submit to done), ms. */
  fillMs: number;
  /** Largest difference between GPU-written values and the JS mirror of the hash, over a sample. */
  checkMaxError: number;
  /** Buffers filled. */
  buffers: number;
}

/**
 * Synthetic weights for the first `layers` layers of `config`, every matrix in `dtype`, generated on
 * the GPU. Chunking follows WeightUploader.matrix: rows per chunk = floor(min(binding, maxBuffer) /
 * row bytes).
 */
export async function buildSyntheticWeights(rt: GpuRuntime, config: ModelConfig, dtype: WeightDType, layers: number, seed = 1): Promise<SyntheticWeights> {
  const caps = rt.capabilities;
  const wg = Math.min(256, caps.limits.maxComputeInvocationsPerWorkgroup);
  // q4 buffers are filled as f16 words (finite scales; any nibbles), and the embedding stays f16.
  const fillDtype: SourceWeightDType = dtype === 'q4' ? 'f16' : dtype;
  const pipelines = new Map<SourceWeightDType, PreparedPipeline>();
  for (const d of ['f32', fillDtype] as const) {
    if (!pipelines.has(d)) pipelines.set(d, await rt.prepare(FILL, { WG: wg, F16: d === 'f16', BF16: d === 'bf16' }));
  }
  const groups = Math.min(caps.limits.maxComputeWorkgroupsPerDimension, 4096);
  const threads = groups * wg;
  const usage = GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST | GPUBufferUsage.COPY_SRC;
  const fills: FillRecord[] = [];
  let bytes = 0;
  let nextSeed = seed;

  const start = performance.now();
  let step = rt.beginStep('bench fill');
  let pending = 0;
  const fill = async (buffer: GPUBuffer, d: SourceWeightDType, center: number, halfWidth: number): Promise<void> => {
    const s = nextSeed++;
    const params = new Uint32Array(8);
    params.set([buffer.size / 4, s, threads, 0]);
    new Float32Array(params.buffer).set([center, halfWidth], 4);
    step.dispatch(pipelines.get(d)!, params, [buffer], [groups], `fill ${buffer.label}`);
    fills.push({ buffer, seed: s, center, halfWidth, dtype: d });
    bytes += buffer.size;
    // Submit every ~256 MiB so the queue never holds more than that much unfinished fill work.
    pending += buffer.size;
    if (pending >= 256 * 2 ** 20) {
      await step.submit();
      step = rt.beginStep('bench fill');
      pending = 0;
    }
  };

  const limits = caps.limits;
  const binding = Math.min(limits.maxStorageBufferBindingSize, limits.maxBufferSize);
  // interleaved: gate/up rows alternate, as the loader lays them out (the runner then fuses SwiGLU).
  const matrix = async (label: string, rows: number, cols: number, interleaved = false, mdtype: WeightDType = dtype): Promise<GpuMatrix> => {
    const rowBytes = mdtype === 'q4' ? q4Bytes(1, cols) : cols * weightBytes(mdtype);
    const fit = mdtype === 'q4' ? Math.min(Math.floor((binding - 4) / rowBytes), Math.floor(0xffffffff / cols)) : Math.floor(binding / rowBytes);
    const maxRows = interleaved ? fit - (fit % 2) : fit;
    if (maxRows < 1) throw new UnsupportedModelError(`${label}: a row of ${rowBytes} bytes`, [`rows up to ${limits.maxStorageBufferBindingSize} bytes (this device's storage binding limit)`]);
    const chunks: MatrixChunk[] = [];
    for (let r = 0; r < rows; r += maxRows) {
      const n = Math.min(maxRows, rows - r);
      const buffer = rt.createBuffer(mdtype === 'q4' ? q4Bytes(n, cols) : n * rowBytes, usage, `${label} rows ${r}..${r + n}`);
      await fill(buffer, fillDtype, 0, WEIGHT_HALF_WIDTH);
      chunks.push({ buffer, rowStart: r, rows: n });
    }
    return { name: label, dtype: mdtype, rows, cols, chunks, ...(interleaved ? { interleaved: true } : {}) };
  };
  const vector = async (label: string, n: number, center: number, halfWidth: number): Promise<GPUBuffer> => {
    const buffer = rt.createBuffer(4 * n, usage, label);
    await fill(buffer, 'f32', center, halfWidth);
    return buffer;
  };

  const c = config;
  const shapes = layerMatrixShapes(c);
  const shape = (name: string): { rows: number; cols: number } => shapes.find((s) => s.name === name)!;
  const embed = await matrix('embed_tokens', c.vocabSize, c.hiddenSize, false, fillDtype);
  const layerWeights: LayerWeights[] = [];
  for (let l = 0; l < layers; l++) {
    const qkv = shape('qkv');
    layerWeights.push({
      inputNorm: await vector(`layer ${l} input_layernorm`, c.hiddenSize, 1, WEIGHT_HALF_WIDTH),
      qkv: await matrix(`layer ${l} qkv`, qkv.rows, qkv.cols),
      qkvBias: c.attentionBias ? await vector(`layer ${l} qkv bias`, qkv.rows, 0, WEIGHT_HALF_WIDTH) : null,
      qNorm: c.qkNorm ? await vector(`layer ${l} q_norm`, c.headDim, 1, WEIGHT_HALF_WIDTH) : null,
      kNorm: c.qkNorm ? await vector(`layer ${l} k_norm`, c.headDim, 1, WEIGHT_HALF_WIDTH) : null,
      o: await matrix(`layer ${l} o`, shape('o').rows, shape('o').cols),
      oBias: c.oProjBias ? await vector(`layer ${l} o bias`, c.hiddenSize, 0, WEIGHT_HALF_WIDTH) : null,
      postNorm: await vector(`layer ${l} post_attention_layernorm`, c.hiddenSize, 1, WEIGHT_HALF_WIDTH),
      gateUp: await matrix(`layer ${l} gate_up`, shape('gate_up').rows, shape('gate_up').cols, true),
      down: await matrix(`layer ${l} down`, shape('down').rows, shape('down').cols),
    });
  }
  const finalNorm = await vector('final norm', c.hiddenSize, 1, WEIGHT_HALF_WIDTH);
  const lmHead = c.tieWordEmbeddings ? embed : await matrix('lm_head', c.vocabSize, c.hiddenSize);
  await step.submit();
  await rt.flush();
  const fillMs = performance.now() - start;

  // Spot check: the first and last words of the first, a middle and the last buffer against the JS
  // mirror of the hash (f16/bf16: the low half of the word, within its rounding).
  let checkMaxError = 0;
  for (const f of [fills[0]!, fills[Math.floor(fills.length / 2)]!, fills[fills.length - 1]!]) {
    const words = f.buffer.size / 4;
    for (const w of [0, words - 1]) {
      const data = new Uint32Array(await rt.read(f.buffer, 4 * w, 4));
      const word = data[0]!;
      let got: number;
      if (f.dtype === 'f32') got = new Float32Array(data.buffer)[0]!;
      else if (f.dtype === 'bf16') got = bf16BitsToNumber(word & 0xffff);
      else got = f16BitsToNumber(word & 0xffff);
      const index = f.dtype === 'f32' ? w : 2 * w;
      checkMaxError = Math.max(checkMaxError, Math.abs(got - fillValue(f.seed, index, f.center, f.halfWidth)));
    }
  }

  return { weights: { embed, layers: layerWeights, finalNorm, lmHead, bytes }, fillMs, checkMaxError, buffers: fills.length };
}

/** `--shape NAME` (default qwen2.5-0.5b) and `--dtype f32|f16|bf16|q4` (default f16), checked. */
export function shapeArgs(args: string[]): { shape: ShapeName; dtype: WeightDType } {
  const shape = arg(args, '--shape') ?? 'qwen2.5-0.5b';
  if (!isShapeName(shape)) throw new RangeError(`--shape must be one of ${Object.keys(SHAPES).join(', ')}, got ${shape}`);
  const dtype = arg(args, '--dtype') ?? 'f16';
  if (dtype !== 'f32' && dtype !== 'f16' && dtype !== 'bf16' && dtype !== 'q4') throw new RangeError(`--dtype must be f32, f16, bf16 or q4, got ${dtype}`);
  return { shape, dtype };
}

/** Largest |GPU value - JS mirror| accepted in the fill spot check, per dtype (rounding of the store). */
export const FILL_TOLERANCE: Record<SourceWeightDType, number> = { f32: 1e-6, f16: 5e-5, bf16: 5e-4 };

/** Throw if the spot check of GPU-filled weights exceeds the dtype's tolerance. */
export function assertFillChecked(synth: SyntheticWeights, dtype: WeightDType): void {
  if (dtype === 'q4') dtype = 'f16';
  if (!(synth.checkMaxError <= FILL_TOLERANCE[dtype])) throw new Error(`GPU-filled weights differ from the hash by ${synth.checkMaxError} (tolerance ${FILL_TOLERANCE[dtype]})`);
}
