// The step recorder: a whole sequence of dispatches (a forward step) goes into one command encoder
// and one submit. Params go to the shared uniform pages, bind groups come from the cache, readbacks
// are copies into pooled MAP_READ buffers at the end of the same command buffer.

import { type StorageArg, StepParams } from './bind-groups.js';
import { GpuLimitError, GpuUsageError } from './errors.js';
import type { BufferPool } from './buffers.js';
import type { BindGroupCache, ParamsPages } from './bind-groups.js';
import type { GpuCapabilities } from './capabilities.js';
import type { PreparedPipeline } from './pipelines.js';

/** What a step needs from its runtime (kept as an interface so step.ts does not import runtime.ts). */
export interface StepHost {
  readonly device: GPUDevice;
  readonly capabilities: GpuCapabilities;
  readonly paramsPages: ParamsPages;
  readonly bindGroups: BindGroupCache;
  readonly buffers: BufferPool;
  readonly timing: { querySet: GPUQuerySet; resolveBuffer: GPUBuffer; capacity: number } | null;
  assertAlive(): void;
  submit(commands: GPUCommandBuffer, params: StepParams, writes: readonly { buffer: GPUBuffer; offset: number; data: ArrayBufferView }[]): Promise<void>;
  mapRead(staging: GPUBuffer, size: number): Promise<ArrayBuffer>;
}

export interface KernelTiming {
  label: string;
  /** GPU time of the dispatch in nanoseconds (timestamp queries). */
  ns: number;
}

interface PendingRead {
  staging: GPUBuffer;
  size: number;
  resolve: (data: ArrayBuffer) => void;
  reject: (error: unknown) => void;
}

export type Workgroups = readonly [number, number?, number?];

function validGroups(n: number, max: number): boolean {
  return Number.isInteger(n) && n >= 0 && n <= max;
}

export class StepRecorder {
  private readonly encoder: GPUCommandEncoder;
  private pass: GPUComputePassEncoder | null = null;
  private readonly params: StepParams;
  private readonly reads: PendingRead[] = [];
  private readonly writes: { buffer: GPUBuffer; offset: number; data: ArrayBufferView }[] = [];
  private readonly toRelease: GPUBuffer[] = [];
  private readonly timedLabels: string[] = [];
  private submitted = false;
  private lastPipeline: GPUComputePipeline | null = null;
  private readonly dynamicOffset = new Uint32Array(1);
  /** Dispatches recorded so far. */
  dispatches = 0;

  constructor(
    private readonly rt: StepHost,
    readonly label: string,
  ) {
    this.encoder = rt.device.createCommandEncoder({ label });
    this.params = new StepParams(rt.paramsPages);
  }

  /** Record one dispatch of a prepared pipeline (`label`: for GPU timing; a function is called only then). */
  dispatch(prepared: PreparedPipeline, params: ArrayBufferView, storage: readonly StorageArg[], workgroups: Workgroups, label: string | (() => string) = prepared.kernel.name): void {
    this.assertOpen();
    const kernel = prepared.kernel;
    if (storage.length !== kernel.storage.length) {
      throw new GpuUsageError(`kernel '${kernel.name}' takes ${kernel.storage.length} storage buffers, got ${storage.length}`);
    }
    if (params.byteLength > kernel.paramsBytes) {
      throw new GpuUsageError(`kernel '${kernel.name}' params are ${kernel.paramsBytes} bytes, got ${params.byteLength}`);
    }
    // Hot path (every dispatch of every step): checks without allocating.
    const limits = this.rt.capabilities.limits;
    const x = workgroups[0];
    const y = workgroups[1] ?? 1;
    const z = workgroups[2] ?? 1;
    const maxGroups = limits.maxComputeWorkgroupsPerDimension;
    if (!validGroups(x, maxGroups) || !validGroups(y, maxGroups) || !validGroups(z, maxGroups)) {
      const bad = [x, y, z].find((n) => !validGroups(n, maxGroups));
      throw new GpuLimitError(`kernel '${kernel.name}': ${bad} workgroups in one dimension (valid: 0..${maxGroups})`);
    }
    const maxBinding = limits.maxStorageBufferBindingSize;
    for (let i = 0; i < storage.length; i++) {
      const s = storage[i]!;
      const size = 'buffer' in s ? (s.size ?? s.buffer.size - (s.offset ?? 0)) : s.size;
      if (size > maxBinding) {
        throw new GpuLimitError(`kernel '${kernel.name}': a ${size}-byte storage binding exceeds maxStorageBufferBindingSize (${maxBinding}); split the tensor`);
      }
    }
    if (x * y * z === 0) return;

    const { page, offset } = this.params.push(params, kernel.paramsBytes);
    const group = this.rt.bindGroups.get(prepared.bindGroupLayout, prepared.layoutKey, this.rt.paramsPages.page(page), kernel.paramsBytes, storage);
    const timing = this.rt.timing;
    if (timing) {
      this.endPass();
      const i = this.timedLabels.length;
      if (2 * i + 2 > timing.capacity) {
        throw new GpuLimitError(`GPU timing covers ${timing.capacity / 2} dispatches per step; this step has more`);
      }
      const text = typeof label === 'string' ? label : label();
      this.timedLabels.push(text);
      this.pass = this.encoder.beginComputePass({
        label: text,
        timestampWrites: { querySet: timing.querySet, beginningOfPassWriteIndex: 2 * i, endOfPassWriteIndex: 2 * i + 1 },
      });
    } else if (!this.pass) {
      this.pass = this.encoder.beginComputePass({ label: this.label });
    }
    const pass = this.pass;
    // Consecutive dispatches of one pipeline (row chunks, same-kind matmuls) set it once.
    if (this.lastPipeline !== prepared.pipeline || timing) pass.setPipeline(prepared.pipeline);
    this.lastPipeline = prepared.pipeline;
    this.dynamicOffset[0] = offset;
    pass.setBindGroup(0, group, this.dynamicOffset, 0, 1);
    pass.dispatchWorkgroups(x, y, z);
    if (timing) this.endPass();
    this.dispatches++;
  }

  /** Record a buffer-to-buffer copy (ends the current compute pass). */
  copy(source: GPUBuffer, sourceOffset: number, destination: GPUBuffer, destinationOffset: number, size: number): void {
    this.assertOpen();
    this.endPass();
    this.encoder.copyBufferToBuffer(source, sourceOffset, destination, destinationOffset, size);
  }

  /**
   * Read `size` bytes of `buffer` as they are at this point of the step (the copy is recorded
   * here, so later dispatches may reuse the buffer); resolves after the GPU finished the step.
   */
  read(buffer: GPUBuffer, offset = 0, size = buffer.size - offset): Promise<ArrayBuffer> {
    this.assertOpen();
    if (offset % 4 !== 0 || size % 4 !== 0) throw new GpuUsageError(`readback offset and size must be multiples of 4, got ${offset}, ${size}`);
    this.endPass();
    const staging = this.rt.buffers.acquire(size, GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST, 'readback');
    this.encoder.copyBufferToBuffer(buffer, offset, staging, 0, size);
    return new Promise((resolve, reject) => this.reads.push({ staging, size, resolve, reject }));
  }

  /**
   * Write `data` into `buffer` right before this step's commands run (queued at submit, so a step
   * recorded while another is pending never sees the other's inputs).
   */
  write(buffer: GPUBuffer, offset: number, data: ArrayBufferView): void {
    this.assertOpen();
    if (offset % 4 !== 0 || data.byteLength % 4 !== 0) throw new GpuUsageError(`write offset and size must be multiples of 4, got ${offset}, ${data.byteLength}`);
    this.writes.push({ buffer, offset, data });
  }

  /** Give a pooled buffer back to the pool once this step has been submitted. */
  releaseAfterSubmit(buffer: GPUBuffer): void {
    this.toRelease.push(buffer);
  }

  /**
   * Submit the step. Resolves once it is queued (waiting first if the queue is full); readbacks
   * resolve on their own. With timing on, `timings` resolves to each dispatch's GPU time.
   */
  async submit(): Promise<{ timings: Promise<KernelTiming[]> | null }> {
    this.assertOpen();
    this.submitted = true;
    this.endPass();
    const rt = this.rt;
    const pool = rt.buffers;
    let timingsStaging: GPUBuffer | null = null;
    const timing = rt.timing;
    const timed = this.timedLabels.length;
    if (timing && timed > 0) {
      this.encoder.resolveQuerySet(timing.querySet, 0, 2 * timed, timing.resolveBuffer, 0);
      timingsStaging = pool.acquire(16 * timed, GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST, 'timestamps');
      this.encoder.copyBufferToBuffer(timing.resolveBuffer, 0, timingsStaging, 0, 16 * timed);
    }
    const commands = this.encoder.finish();
    try {
      await rt.submit(commands, this.params, this.writes);
    } catch (e) {
      this.reads.forEach((r) => r.reject(e));
      this.reads.forEach((r) => pool.release(r.staging));
      if (timingsStaging) pool.release(timingsStaging);
      throw e;
    }
    for (const b of this.toRelease) pool.release(b);
    for (const r of this.reads) rt.mapRead(r.staging, r.size).then(r.resolve, r.reject);
    if (!timingsStaging) return { timings: null };
    const labels = this.timedLabels;
    const timings = rt.mapRead(timingsStaging, 16 * timed).then((data) => {
      const t = new BigInt64Array(data);
      return labels.map((label, i) => ({ label, ns: Number(t[2 * i + 1]! - t[2 * i]!) }));
    });
    return { timings };
  }

  private endPass(): void {
    if (this.pass) {
      this.pass.end();
      this.pass = null;
      this.lastPipeline = null;
    }
  }

  private assertOpen(): void {
    if (this.submitted) throw new GpuUsageError(`step '${this.label}' was already submitted`);
    this.rt.assertAlive();
  }
}
