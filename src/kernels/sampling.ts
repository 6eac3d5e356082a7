// GPU token sampling: temperature, top-k, top-p and a seeded draw per row, one workgroup per row
// (shaders/sample.wgsl; the semantics, tie rules and RNG are described in
// src/reference/sampling.ts, the float64 reference that tests compare against; parameters in
// src/sampling/params.ts).

import rngLib from '../../shaders/lib/rng.wgsl?raw';
import sampleSource from '../../shaders/sample.wgsl?raw';
import { asBinding, type StorageArg } from '../gpu/bind-groups.js';
import { GpuLimitError, GpuUsageError } from '../gpu/errors.js';
import type { KernelSpec, PreparedPipeline } from '../gpu/pipelines.js';
import type { GpuRuntime } from '../gpu/runtime.js';
import type { StepRecorder } from '../gpu/step.js';
import { splitSeed, validateSamplingParams, type SamplingParams } from '../sampling/params.js';
import { foldGroups } from './layers.js';

export { SamplingParamsError, validateSamplingParams, splitSeed, type SamplingParams } from '../sampling/params.js';

/** Bytes per row in the packed params buffer (the shader's RowParams). */
export const SAMPLING_PARAMS_BYTES = 32;

/**
 * Default cap on workgroups per dispatch; each workgroup takes rows wg, wg + groups, ... in turn.
 * A row's id never depends on which workgroup ran it. CPU drivers get a low cap: SwiftShader pays
 * milliseconds of setup per workgroup of this kernel, which rows sharing a workgroup amortize.
 */
export const SAMPLING_MAX_WORKGROUPS = 256;
export const SAMPLING_MAX_WORKGROUPS_CPU = 32;

export interface SamplingKernelOptions {
  /** Workgroups per dispatch at most (default: 256, or 32 on a CPU adapter). */
  maxWorkgroups?: number;
}

function isCpuAdapter(rt: GpuRuntime): boolean {
  const a = rt.capabilities.adapter;
  return /swiftshader|llvmpipe|lavapipe/i.test(`${a.vendor} ${a.architecture} ${a.device} ${a.description}`);
}

export const SAMPLE: KernelSpec = {
  name: 'sample',
  source: sampleSource,
  storage: ['read', 'read', 'read_write'],
  paramsBytes: 16,
  includes: { rng: rngLib },
};

/**
 * The per-row params buffer contents: for each row, temperature (f32), top_k (u32), top_p (f32),
 * seed low and high words, token index, two zero words. Throws SamplingParamsError on a bad row.
 */
export function packSamplingParams(rows: readonly SamplingParams[]): ArrayBuffer {
  const out = new ArrayBuffer(Math.max(1, rows.length) * SAMPLING_PARAMS_BYTES);
  const u = new Uint32Array(out);
  const f = new Float32Array(out);
  rows.forEach((p, r) => {
    validateSamplingParams(p, r);
    const o = (r * SAMPLING_PARAMS_BYTES) / 4;
    const [lo, hi] = splitSeed(p.seed);
    f[o] = p.temperature;
    u[o + 1] = p.topK;
    f[o + 2] = p.topP;
    u[o + 3] = lo;
    u[o + 4] = hi;
    u[o + 5] = p.tokenIndex;
  });
  return out;
}

export interface SamplingDims {
  rows: number;
  vocab: number;
  /** Floats between consecutive logits rows (usually >= vocab; 0 samples one row `rows` times). */
  stride: number;
  /** ids[outOffset + r] receives row r's token. */
  outOffset: number;
}

function boundBytes(arg: StorageArg): number {
  const b = asBinding(arg);
  return b.size ?? b.buffer.size - (b.offset ?? 0);
}

export class SamplingKernels {
  private constructor(
    private readonly prepared: PreparedPipeline,
    private readonly maxDim: number,
    private readonly wg: number,
    /** Workgroups per dispatch at most. */
    readonly maxWorkgroups: number,
  ) {}

  static async create(rt: GpuRuntime, options: SamplingKernelOptions = {}): Promise<SamplingKernels> {
    const maxWorkgroups = options.maxWorkgroups ?? (isCpuAdapter(rt) ? SAMPLING_MAX_WORKGROUPS_CPU : SAMPLING_MAX_WORKGROUPS);
    if (!Number.isInteger(maxWorkgroups) || maxWorkgroups < 1) throw new GpuUsageError(`sampling: maxWorkgroups must be a positive integer, got ${maxWorkgroups}`);
    const wg = Math.min(256, rt.capabilities.limits.maxComputeInvocationsPerWorkgroup);
    if (wg < 128 || (wg & (wg - 1)) !== 0) {
      throw new GpuLimitError(`sampling needs a power-of-two workgroup of at least 128 invocations; this device allows ${wg}`);
    }
    // 16 bins' partials at once need 16 * WG floats of shared memory (plus ~2 KiB); else 2 passes.
    const halves = wg >= 256 && rt.capabilities.limits.maxComputeWorkgroupStorageSize >= 16 * wg * 4 + 4096 ? 1 : 2;
    const prepared = await rt.prepare(SAMPLE, { WG: wg, BIN_HALVES: halves });
    return new SamplingKernels(prepared, rt.capabilities.limits.maxComputeWorkgroupsPerDimension, wg, maxWorkgroups);
  }

  /**
   * ids[outOffset + r] = a token sampled from logits[r * stride .. r * stride + vocab) under
   * rowParams[r] (packSamplingParams' layout), for r < rows.
   */
  record(step: StepRecorder, logits: StorageArg, rowParams: StorageArg, ids: StorageArg, d: SamplingDims): void {
    const { rows, vocab, stride, outOffset } = d;
    for (const [name, v] of Object.entries(d)) {
      if (!Number.isInteger(v) || v < 0 || v > 0xffffffff) throw new GpuUsageError(`sample: ${name} must be a u32, got ${v}`);
    }
    if (vocab < 1) throw new GpuUsageError('sample: vocab must be >= 1');
    // Per-thread bin counters are 16 bits wide.
    if (vocab > 0xffff * this.wg) throw new GpuLimitError(`sample: vocab ${vocab} exceeds ${0xffff * this.wg}`);
    if (rows === 0) return;
    const needLogits = 4 * ((rows - 1) * stride + vocab);
    if (!Number.isSafeInteger(needLogits) || needLogits > 4 * 0xffffffff) throw new GpuLimitError(`sample: ${rows} rows of stride ${stride} overflow u32 indexing`);
    if (boundBytes(logits) < needLogits) throw new GpuUsageError(`sample: logits binding has ${boundBytes(logits)} bytes, ${rows} rows of stride ${stride} need ${needLogits}`);
    if (boundBytes(rowParams) < rows * SAMPLING_PARAMS_BYTES) {
      throw new GpuUsageError(`sample: row params binding has ${boundBytes(rowParams)} bytes, ${rows} rows need ${rows * SAMPLING_PARAMS_BYTES}`);
    }
    if (boundBytes(ids) < 4 * (outOffset + rows)) throw new GpuUsageError(`sample: ids binding has ${boundBytes(ids)} bytes, needs ${4 * (outOffset + rows)}`);
    const groups = Math.min(rows, this.maxWorkgroups);
    step.dispatch(this.prepared, new Uint32Array([rows, vocab, stride, outOffset]), [logits, rowParams, ids], foldGroups(groups, 1, this.maxDim));
  }
}
