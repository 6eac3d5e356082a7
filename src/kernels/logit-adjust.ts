// Penalties and logit bias on GPU logits rows, in place (shaders/logit_adjust.wgsl): one invocation
// per (row, token) entry, so rows without entries cost nothing. The entries and their semantics
// come from src/sampling/penalties.ts; the float64 reference is src/reference/penalties.ts.

import logitAdjustSource from '../../shaders/logit_adjust.wgsl?raw';
import { asBinding, type StorageArg } from '../gpu/bind-groups.js';
import { GpuUsageError } from '../gpu/errors.js';
import type { KernelSpec, PreparedPipeline } from '../gpu/pipelines.js';
import type { GpuRuntime } from '../gpu/runtime.js';
import type { StepRecorder } from '../gpu/step.js';
import type { PenaltyEntry } from '../sampling/penalties.js';
import { foldGroups } from './layers.js';

/** Bytes per entry (the shader's Entry). */
export const PENALTY_ENTRY_BYTES = 32;
const WG = 64;

export const LOGIT_ADJUST: KernelSpec = { name: 'logit_adjust', source: logitAdjustSource, storage: ['read', 'read_write'], paramsBytes: 16 };

/** The entries as the shader reads them: row, token (u32), count (f32), in-context (u32), bias, frequency, presence, repetition (f32). */
export function packPenaltyEntries(entries: readonly PenaltyEntry[]): ArrayBuffer {
  const out = new ArrayBuffer(Math.max(1, entries.length) * PENALTY_ENTRY_BYTES);
  const u = new Uint32Array(out);
  const f = new Float32Array(out);
  entries.forEach((e, i) => {
    const o = (i * PENALTY_ENTRY_BYTES) / 4;
    u[o] = e.row;
    u[o + 1] = e.token;
    f[o + 2] = e.count;
    u[o + 3] = e.inContext ? 1 : 0;
    f[o + 4] = e.bias;
    f[o + 5] = e.frequency;
    f[o + 6] = e.presence;
    f[o + 7] = e.repetition;
  });
  return out;
}

export interface LogitAdjustDims {
  /** Entries in the buffer. */
  entries: number;
  /** The output row that logits row 0 holds (a chunk's first row). */
  firstRow: number;
  /** Logits rows in the binding. */
  rows: number;
  /** Floats between consecutive rows. */
  stride: number;
  /** Tokens per row: every entry's token must be below it (checked when packing rows' entries). */
  vocab: number;
}

export class LogitAdjustKernel {
  private constructor(
    private readonly prepared: PreparedPipeline,
    private readonly maxDim: number,
  ) {}

  static async create(rt: GpuRuntime): Promise<LogitAdjustKernel> {
    return new LogitAdjustKernel(await rt.prepare(LOGIT_ADJUST, { WG }), rt.capabilities.limits.maxComputeWorkgroupsPerDimension);
  }

  /** Adjust logits rows [0, rows) (output rows firstRow ...) by the entries naming them. */
  record(step: StepRecorder, entries: StorageArg, logits: StorageArg, d: LogitAdjustDims): void {
    if (d.entries === 0 || d.rows === 0) return;
    for (const [name, v] of Object.entries(d)) {
      if (!Number.isInteger(v) || v < 0 || v > 0xffffffff) throw new GpuUsageError(`logit_adjust: ${name} must be a u32, got ${v}`);
    }
    if (d.stride < d.vocab) throw new GpuUsageError(`logit_adjust: stride ${d.stride} is below the vocabulary ${d.vocab}`);
    const e = asBinding(entries);
    if ((e.size ?? e.buffer.size - (e.offset ?? 0)) < d.entries * PENALTY_ENTRY_BYTES) throw new GpuUsageError(`logit_adjust: the entries binding is smaller than ${d.entries} entries`);
    step.dispatch(this.prepared, new Uint32Array([d.entries, d.firstRow, d.rows, d.stride]), [entries, logits], foldGroups(d.entries, WG, this.maxDim));
  }
}
