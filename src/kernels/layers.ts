// The transformer's non-matmul kernels: embedding gather, RMSNorm, RoPE (+ Qwen3 q/k norm), KV
// append, paged attention, elementwise ops, argmax. Each is one WGSL file; this module holds their
// binding lists and the record functions that check shapes and size the dispatch.

import argmaxSource from '../../shaders/argmax.wgsl?raw';
import attentionSource from '../../shaders/attention_paged.wgsl?raw';
import attentionCombineSource from '../../shaders/attention_combine.wgsl?raw';
import elementwiseSource from '../../shaders/elementwise.wgsl?raw';
import embeddingSource from '../../shaders/embedding.wgsl?raw';
import kvAppendSource from '../../shaders/kv_append.wgsl?raw';
import weightsLib from '../../shaders/lib/weights.wgsl?raw';
import rowSumSquaresLib from '../../shaders/lib/row_sumsq.wgsl?raw';
import ropeSource from '../../shaders/rope.wgsl?raw';
import rmsnormSource from '../../shaders/rmsnorm.wgsl?raw';
import type { StorageArg } from '../gpu/bind-groups.js';
import { GpuLimitError, GpuUsageError } from '../gpu/errors.js';
import type { KernelSpec, PreparedPipeline } from '../gpu/pipelines.js';
import type { GpuRuntime } from '../gpu/runtime.js';
import type { StepRecorder } from '../gpu/step.js';
import type { WgslDefines } from '../gpu/wgsl.js';
import { weightDefines, type WeightDType } from './matmul.js';

const spec = (name: string, source: string, storage: KernelSpec['storage'], paramsBytes: number, extra: Partial<KernelSpec> = {}): KernelSpec => ({
  name,
  source,
  storage,
  paramsBytes,
  ...extra,
});

export const EMBEDDING = spec('embedding', embeddingSource, ['read', 'read', 'read_write'], 16, { includes: { weights: weightsLib } });
const sumSquares = { includes: { row_sumsq: rowSumSquaresLib } };
export const RMSNORM = spec('rmsnorm', rmsnormSource, ['read', 'read', 'read_write'], 32, sumSquares);
export const RMSNORM_GATHER = spec('rmsnorm_gather', rmsnormSource, ['read', 'read', 'read_write', 'read'], 32, sumSquares);
export const ROPE = spec('rope', ropeSource, ['read_write', 'read', 'read'], 32, sumSquares);
export const ROPE_QK_NORM = spec('rope_qk_norm', ropeSource, ['read_write', 'read', 'read', 'read'], 32, sumSquares);
export const ROPE_KV_APPEND = spec('rope_kv_append', ropeSource, ['read_write', 'read', 'read', 'read', 'read_write', 'read_write'], 32, sumSquares);
export const ROPE_QK_NORM_KV_APPEND = spec('rope_qk_norm_kv_append', ropeSource, ['read_write', 'read', 'read', 'read', 'read_write', 'read_write', 'read', 'read'], 32, sumSquares);
export const KV_APPEND = spec('kv_append', kvAppendSource, ['read', 'read', 'read_write', 'read_write'], 32);
export const ATTENTION = spec('attention_paged', attentionSource, ['read', 'read', 'read', 'read', 'read', 'read', 'read_write'], 48);
export const ATTENTION_PARTIAL = spec('attention_paged_partial', attentionSource, ['read', 'read', 'read', 'read', 'read', 'read', 'read_write'], 48);
export const ATTENTION_COMBINE = spec('attention_combine', attentionCombineSource, ['read', 'read', 'read_write'], 32);
export const ADD = spec('add', elementwiseSource, ['read', 'read_write'], 16);
export const SILU_MUL = spec('silu_mul', elementwiseSource, ['read', 'read_write'], 16);
export const BIAS = spec('bias', elementwiseSource, ['read', 'read_write'], 16);
export const ARGMAX = spec('argmax', argmaxSource, ['read', 'read_write'], 16);

/** Keys per attention chunk: fixed (not adapter-dependent) so chunk boundaries never move. */
export const ATTENTION_CHUNK = 64;
export const ATTENTION_MAX_HEAD_DIM = 256;
/** Chunks per attention split (fixed, like the chunk: split boundaries are absolute positions). */
export const ATTENTION_SPLIT_CHUNKS = 8;

/** Splits of a token at absolute position `pos` (it attends to pos + 1 keys). */
export function attentionSplits(pos: number): number {
  return Math.ceil(Math.ceil((pos + 1) / ATTENTION_CHUNK) / ATTENTION_SPLIT_CHUNKS);
}

/** Workgroups for `n` items of `perGroup` each, folded into 2D when over the per-dimension limit. */
export function foldGroups(n: number, perGroup: number, maxPerDim: number): [number, number] {
  const groups = Math.ceil(n / perGroup);
  if (groups <= maxPerDim) return [groups, 1];
  const y = Math.ceil(groups / maxPerDim);
  if (y > maxPerDim) throw new GpuLimitError(`${n} items need ${groups} workgroups, over ${maxPerDim}^2`);
  return [maxPerDim, y];
}

function u32(...v: number[]): Uint32Array {
  for (const x of v) {
    if (!Number.isInteger(x) || x < 0 || x > 0xffffffff) throw new GpuUsageError(`kernel parameter ${x} is not a u32`);
  }
  return new Uint32Array(v);
}

/** u32 params with one f32 at `floatIndex`. */
function mixed(values: number[], floatIndex: number): Uint32Array {
  const out = new Uint32Array(values.length);
  const f = new Float32Array(out.buffer);
  values.forEach((v, i) => {
    if (i === floatIndex) f[i] = v;
    else out[i] = u32(v)[0]!;
  });
  return out;
}

export class LayerKernels {
  private readonly wg: number;
  private readonly maxDim: number;

  private constructor(
    rt: GpuRuntime,
    private readonly p: Map<string, PreparedPipeline>,
  ) {
    this.wg = Math.min(256, rt.capabilities.limits.maxComputeInvocationsPerWorkgroup);
    this.maxDim = rt.capabilities.limits.maxComputeWorkgroupsPerDimension;
  }

  /** Compile every kernel, with embedding variants for the given weight dtypes. */
  static async create(rt: GpuRuntime, embeddingDtypes: readonly WeightDType[]): Promise<LayerKernels> {
    const wg = Math.min(256, rt.capabilities.limits.maxComputeInvocationsPerWorkgroup);
    const f16 = rt.capabilities.features.shaderF16;
    const jobs: [string, KernelSpec, WgslDefines][] = [
      ['rmsnorm', RMSNORM, { WG: wg, GATHER: false }],
      ['rmsnorm_gather', RMSNORM_GATHER, { WG: wg, GATHER: true }],
      ['rope', ROPE, { WG: 64, QK_NORM: false, KV_APPEND: false }],
      ['rope_qk_norm', ROPE_QK_NORM, { WG: 64, QK_NORM: true, KV_APPEND: false }],
      ['rope_kv_append', ROPE_KV_APPEND, { WG: 64, QK_NORM: false, KV_APPEND: true }],
      ['rope_qk_norm_kv_append', ROPE_QK_NORM_KV_APPEND, { WG: 64, QK_NORM: true, KV_APPEND: true }],
      ['kv_append', KV_APPEND, { WG: wg }],
      ['attention', ATTENTION, { CHUNK: ATTENTION_CHUNK, D_MAX: ATTENTION_MAX_HEAD_DIM, SPLIT_CHUNKS: ATTENTION_SPLIT_CHUNKS, PARTIAL: false }],
      ['attention_partial', ATTENTION_PARTIAL, { CHUNK: ATTENTION_CHUNK, D_MAX: ATTENTION_MAX_HEAD_DIM, SPLIT_CHUNKS: ATTENTION_SPLIT_CHUNKS, PARTIAL: true }],
      ['attention_combine', ATTENTION_COMBINE, { WG: 64, CHUNK: ATTENTION_CHUNK, SPLIT_CHUNKS: ATTENTION_SPLIT_CHUNKS }],
      ['add', ADD, { WG: wg, ADD: true, SILU_MUL: false, BIAS: false }],
      ['silu_mul', SILU_MUL, { WG: wg, ADD: false, SILU_MUL: true, BIAS: false }],
      ['bias', BIAS, { WG: wg, ADD: false, SILU_MUL: false, BIAS: true }],
      ['argmax', ARGMAX, { WG: wg }],
    ];
    for (const dtype of new Set(embeddingDtypes)) {
      // The embedding kernel reads rows by token id, without the matmul Params q4 scales need.
      if (dtype === 'q4') throw new GpuUsageError('embedding tables stay in their source dtype (f32, f16 or bf16), not q4');
      jobs.push([`embedding_${dtype}`, EMBEDDING, { WG: wg, W_BINDING: 2, VEC4: false, ...weightDefines(dtype, f16) }]);
    }
    const p = new Map<string, PreparedPipeline>();
    await Promise.all(jobs.map(async ([key, k, d]) => p.set(key, await rt.prepare(k, d))));
    return new LayerKernels(rt, p);
  }

  private get(key: string): PreparedPipeline {
    const prepared = this.p.get(key);
    if (!prepared) throw new GpuUsageError(`kernel variant '${key}' was not prepared`);
    return prepared;
  }

  /** out[t] = E[tokens[t]] for tokens inside this chunk of E (rows rowStart .. rowStart+rowCount). */
  embedding(step: StepRecorder, dtype: WeightDType, tokens: StorageArg, table: StorageArg, out: StorageArg, T: number, H: number, rowStart: number, rowCount: number): void {
    step.dispatch(this.get(`embedding_${dtype}`), u32(T, H, rowStart, rowCount), [tokens, table, out], foldGroups(T * H, this.wg, this.maxDim));
  }

  /** y[r] = rmsnorm(x[r]) * w, or of x[rowIndex[indexOffset + r]] when rowIndex is given. */
  rmsnorm(
    step: StepRecorder,
    x: StorageArg,
    w: StorageArg,
    y: StorageArg,
    rows: number,
    n: number,
    eps: number,
    strides: { x?: number; y?: number } = {},
    rowIndex?: StorageArg,
    indexOffset = 0,
  ): void {
    const params = mixed([rows, n, eps, strides.x ?? n, strides.y ?? n, indexOffset, 0, 0], 2);
    const groups = foldGroups(rows, 1, this.maxDim);
    if (rowIndex) step.dispatch(this.get('rmsnorm_gather'), params, [x, w, y, rowIndex], groups);
    else step.dispatch(this.get('rmsnorm'), params, [x, w, y], groups);
  }

  /** Rotate `heads` heads starting at column colOffset of rows of rowStride floats, in place. */
  rope(
    step: StepRecorder,
    x: StorageArg,
    positions: StorageArg,
    table: StorageArg,
    d: { T: number; heads: number; headDim: number; rowStride: number; colOffset: number },
    qkNorm?: { weight: StorageArg; eps: number },
  ): void {
    if (d.T > this.maxDim || d.heads > this.maxDim) throw new GpuLimitError(`rope: ${d.T} tokens x ${d.heads} heads exceeds ${this.maxDim} workgroups per dimension`);
    const params = mixed([d.T, d.heads, d.headDim, d.rowStride, d.colOffset, qkNorm?.eps ?? 0, 0, 0], 5);
    if (qkNorm) step.dispatch(this.get('rope_qk_norm'), params, [x, positions, table, qkNorm.weight], [d.heads, d.T]);
    else step.dispatch(this.get('rope'), params, [x, positions, table], [d.heads, d.T]);
  }

  /**
   * RoPE (+ q/k norm) on every q and K head of the fused qkv rows and the KV-cache append, in one
   * dispatch: the same values `rope` (twice) and `kvAppend` produce, with two passes fewer.
   */
  ropeKvAppend(
    step: StepRecorder,
    b: { qkv: StorageArg; positions: StorageArg; table: StorageArg; slots: StorageArg; kCache: StorageArg; vCache: StorageArg },
    d: { T: number; heads: number; kvHeads: number; headDim: number; rowStride: number },
    qkNorm?: { q: StorageArg; k: StorageArg; eps: number },
  ): void {
    const groups = d.heads + 2 * d.kvHeads;
    if (d.T > this.maxDim || groups > this.maxDim) throw new GpuLimitError(`rope: ${d.T} tokens x ${groups} heads exceeds ${this.maxDim} workgroups per dimension`);
    const params = mixed([d.T, d.heads, d.headDim, d.rowStride, 0, qkNorm?.eps ?? 0, d.kvHeads, 0], 5);
    const common = [b.qkv, b.positions, b.table, b.slots, b.kCache, b.vCache];
    if (qkNorm) step.dispatch(this.get('rope_qk_norm_kv_append'), params, [...common, qkNorm.q, qkNorm.k], [groups, d.T]);
    else step.dispatch(this.get('rope_kv_append'), params, common, [groups, d.T]);
  }

  kvAppend(step: StepRecorder, qkv: StorageArg, slots: StorageArg, kCache: StorageArg, vCache: StorageArg, d: { T: number; kvDim: number; rowStride: number; kOffset: number; vOffset: number }): void {
    step.dispatch(this.get('kv_append'), u32(d.T, d.kvDim, d.rowStride, d.kOffset, d.vOffset, 0, 0, 0), [qkv, slots, kCache, vCache], foldGroups(d.T * d.kvDim, this.wg, this.maxDim));
  }

  /**
   * Causal paged attention. With `split` (scratch for the splits' partial results) and a batch
   * whose longest context has several splits, one workgroup per (head, token, split) and a combine
   * pass: the same bits as the one-workgroup form, with far more parallelism for long contexts.
   */
  attention(
    step: StepRecorder,
    buffers: { q: StorageArg; kCache: StorageArg; vCache: StorageArg; positions: StorageArg; seqOfToken: StorageArg; blockTables: StorageArg; out: StorageArg },
    d: { T: number; heads: number; kvHeads: number; headDim: number; pageSize: number; maxBlocks: number; qStride: number; outStride: number },
    split?: { partials: GPUBuffer; maxPosition: number },
  ): void {
    if (d.headDim > ATTENTION_MAX_HEAD_DIM) throw new GpuLimitError(`attention supports head_dim <= ${ATTENTION_MAX_HEAD_DIM}, got ${d.headDim}`);
    if (d.heads % d.kvHeads !== 0) throw new GpuUsageError(`attention: ${d.heads} heads not divisible by ${d.kvHeads} KV heads`);
    if (d.T > this.maxDim) throw new GpuLimitError(`attention: ${d.T} tokens in one step exceeds ${this.maxDim}`);
    const b = buffers;
    const maxSplits = split ? attentionSplits(split.maxPosition) : 1;
    const partialFloats = d.T * d.heads * maxSplits * (d.headDim + 2);
    const useSplit = split !== undefined && maxSplits > 1 && maxSplits <= this.maxDim && 4 * partialFloats <= split.partials.size;
    const params = mixed([d.T, d.heads, d.kvHeads, d.headDim, d.pageSize, d.maxBlocks, d.qStride, d.outStride, 1 / Math.sqrt(d.headDim), useSplit ? maxSplits : 1, 0, 0], 8);
    if (!useSplit) {
      step.dispatch(this.get('attention'), params, [b.q, b.kCache, b.vCache, b.positions, b.seqOfToken, b.blockTables, b.out], [d.heads, d.T]);
      return;
    }
    step.dispatch(this.get('attention_partial'), params, [b.q, b.kCache, b.vCache, b.positions, b.seqOfToken, b.blockTables, split.partials], [d.heads, d.T, maxSplits]);
    step.dispatch(this.get('attention_combine'), u32(d.T, d.heads, d.headDim, maxSplits, d.outStride, 0, 0, 0), [split.partials, b.positions, b.out], [d.heads, d.T]);
  }

  /** y += x over `count` floats. */
  add(step: StepRecorder, x: StorageArg, y: StorageArg, count: number): void {
    step.dispatch(this.get('add'), u32(count, 0, 0, 0), [x, y], foldGroups(count, this.wg, this.maxDim));
  }

  /** y[t, j] = silu(gu[t, j]) * gu[t, n + j] for T rows. */
  siluMul(step: StepRecorder, gateUp: StorageArg, y: StorageArg, T: number, n: number): void {
    step.dispatch(this.get('silu_mul'), u32(T * n, n, 0, 0), [gateUp, y], foldGroups(T * n, this.wg, this.maxDim));
  }

  /** y[t * stride + j] += b[j] for T rows of n. */
  bias(step: StepRecorder, b: StorageArg, y: StorageArg, T: number, n: number, stride: number): void {
    step.dispatch(this.get('bias'), u32(T * n, n, stride, 0), [b, y], foldGroups(T * n, this.wg, this.maxDim));
  }

  /** ids[outOffset + r] = argmax(logits[r, :vocab]). */
  argmax(step: StepRecorder, logits: StorageArg, ids: StorageArg, rows: number, vocab: number, stride: number, outOffset: number): void {
    step.dispatch(this.get('argmax'), u32(rows, vocab, stride, outOffset), [logits, ids], foldGroups(rows, 1, this.maxDim));
  }
}
