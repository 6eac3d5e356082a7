// Attention decode over long contexts: one layer's paged KV (f32, as the engine stores it) of B
// sequences at a real model's head shapes, every sequence's one new token attending to all `context`
// keys through its block table (pages assigned in reverse order, as a fragmented cache would). Rate =
// the KV bytes read (B x context x kv_dim x 4 bytes x 2 for K and V, counted once however many query
// heads share a KV head) over the time; ratio to the bandwidth ceiling. The KV and queries are
// filled on the GPU (bench_fill), nothing large is uploaded. Used by bench/run-all.ts and
// bench/kernel-check.ts (which reads the buffers back for the float64 reference).

import type { GpuRuntime } from '../src/gpu/index.js';
import { attentionSplits, LayerKernels } from '../src/kernels/layers.js';
import type { ModelConfig } from '../src/model/config.js';
import { timeSteps } from './common.js';
import { gpuFill } from './synthetic-model.js';

export const PAGE_SIZE = 16;

export interface AttentionCase {
  /** Model shape the heads come from. */
  shape: string;
  heads: number;
  kvHeads: number;
  headDim: number;
  context: number;
  batch: number;
  /** 'split': one workgroup per (head, token, 512-key split) + combine (what the engine runs); 'whole': one per (head, token). */
  form: 'split' | 'whole';
}

export interface AttentionRow extends AttentionCase {
  ms: number;
  /** Unique KV bytes read. */
  kvBytes: number;
  gbps: number;
  ofBandwidth: number;
  error?: string;
}

export interface AttentionSetup {
  c: AttentionCase;
  q: GPUBuffer;
  k: GPUBuffer;
  v: GPUBuffer;
  out: GPUBuffer;
  positions: Uint32Array;
  blockTables: Uint32Array;
  maxBlocks: number;
  record: (step: ReturnType<GpuRuntime['beginStep']>) => void;
  destroy: () => void;
}

export function attentionCase(shape: string, config: ModelConfig, context: number, batch: number, form: AttentionCase['form'] = 'split'): AttentionCase {
  return { shape, heads: config.numHeads, kvHeads: config.numKvHeads, headDim: config.headDim, context, batch, form };
}

/** Bytes of one layer's K cache for the case (V the same). */
export function kvCacheBytes(c: AttentionCase): number {
  return c.batch * Math.ceil(c.context / PAGE_SIZE) * PAGE_SIZE * c.kvHeads * c.headDim * 4;
}

/** Buffers for one case, filled on the GPU, and a function recording the attention dispatch. */
export async function setupAttention(rt: GpuRuntime, kernels: LayerKernels, c: AttentionCase, seed = 7): Promise<AttentionSetup> {
  const usage = GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST;
  const kvDim = c.kvHeads * c.headDim;
  const qDim = c.heads * c.headDim;
  const maxBlocks = Math.ceil(c.context / PAGE_SIZE);
  const pages = c.batch * maxBlocks;
  const cacheBytes = pages * PAGE_SIZE * kvDim * 4;
  const q = rt.createBuffer(4 * c.batch * qDim, usage, 'attn q');
  const k = rt.createBuffer(cacheBytes, usage, 'attn K');
  const v = rt.createBuffer(cacheBytes, usage, 'attn V');
  const out = rt.createBuffer(4 * c.batch * qDim, usage, 'attn out');
  const partials = rt.createBuffer(c.form === 'split' ? 4 * c.batch * c.heads * attentionSplits(c.context - 1) * (c.headDim + 2) : 4, usage, 'attn partials');
  // Queries of norm ~1 per head after scaling keep the softmax neither flat nor one-hot.
  await gpuFill(rt, [q], 'f32', 0, 2, seed);
  await gpuFill(rt, [k, v], 'f32', 0, 1, seed + 1);
  const positions = new Uint32Array(c.batch).fill(c.context - 1);
  const seqOfToken = Uint32Array.from({ length: c.batch }, (_, t) => t);
  const blockTables = Uint32Array.from({ length: pages }, (_, i) => pages - 1 - i);
  const pos = rt.upload(positions, 'attn positions');
  const seqs = rt.upload(seqOfToken, 'attn seq of token');
  const tables = rt.upload(blockTables, 'attn block tables');
  const record = (step: ReturnType<GpuRuntime['beginStep']>): void =>
    kernels.attention(
      step,
      { q, kCache: k, vCache: v, positions: pos, seqOfToken: seqs, blockTables: tables, out },
      { T: c.batch, heads: c.heads, kvHeads: c.kvHeads, headDim: c.headDim, pageSize: PAGE_SIZE, maxBlocks, qStride: qDim, outStride: qDim },
      c.form === 'split' ? { partials, maxPosition: c.context - 1 } : undefined,
    );
  const destroy = (): void => {
    for (const b of [q, k, v, out, partials, pos, seqs, tables]) rt.destroyBuffer(b);
  };
  return { c, q, k, v, out, positions, blockTables, maxBlocks, record, destroy };
}

/** Time each case (best of `trials` after a warm-up); a case over this device's binding or buffer limit gets a row saying so. */
export async function attentionRows(rt: GpuRuntime, cases: readonly AttentionCase[], trials: number, reps: number, bandwidthGBps: number): Promise<AttentionRow[]> {
  const kernels = await LayerKernels.create(rt, ['f32']);
  const lim = rt.capabilities.limits;
  const rows: AttentionRow[] = [];
  for (const c of cases) {
    const kvBytes = 2 * c.batch * c.context * c.kvHeads * c.headDim * 4;
    const need = kvCacheBytes(c);
    if (need > Math.min(lim.maxStorageBufferBindingSize, lim.maxBufferSize)) {
      rows.push({ ...c, ms: NaN, kvBytes, gbps: NaN, ofBandwidth: NaN, error: `one layer's K (${(need / 2 ** 20).toFixed(0)} MiB) exceeds this device's storage binding` });
      continue;
    }
    const s = await setupAttention(rt, kernels, c);
    try {
      const ms = await timeSteps(rt, trials, reps, s.record);
      const gbps = kvBytes / ms / 1e6;
      rows.push({ ...c, ms, kvBytes, gbps, ofBandwidth: gbps / bandwidthGBps });
    } finally {
      s.destroy();
    }
  }
  return rows;
}
