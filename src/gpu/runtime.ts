// GpuRuntime: one device and everything pooled around it. Kernels prepare their pipelines through
// it and record into its steps; nothing above the kernels sees a GPUDevice.

import { BindGroupCache, ParamsPages, type StepParams } from './bind-groups.js';
import { BufferPool } from './buffers.js';
import type { GpuCapabilities } from './capabilities.js';
import { acquireDevice, type AcquireOptions, withTimeout } from './device.js';
import { GpuDeviceLostError, GpuLimitError } from './errors.js';
import { PipelineCache, type KernelSpec, type PreparedPipeline } from './pipelines.js';
import { StepRecorder, type StepHost } from './step.js';
import type { WgslDefines } from './wgsl.js';

export interface RuntimeOptions extends AcquireOptions {
  /** Time every dispatch with timestamp queries (off by default: it splits compute passes). */
  timing?: boolean;
  /** Submits allowed in flight before `submit` waits for the oldest (bounded GPU queue). */
  maxInFlightSubmits?: number;
  /** Timeout for mapAsync and onSubmittedWorkDone waits. */
  waitTimeoutMs?: number;
}

interface Timing {
  querySet: GPUQuerySet;
  resolveBuffer: GPUBuffer;
  capacity: number;
}

const TIMING_QUERIES = 2 * 1024;

export class GpuRuntime implements StepHost {
  readonly pipelines: PipelineCache;
  readonly buffers: BufferPool;
  readonly bindGroups: BindGroupCache;
  readonly paramsPages: ParamsPages;
  readonly timing: Timing | null;
  private readonly inFlight = new Set<Promise<void>>();
  private readonly maxInFlight: number;
  private readonly waitTimeoutMs: number;
  private readonly errors: string[] = [];
  private lostError: GpuDeviceLostError | null = null;
  private destroyed = false;
  /** Submits so far. */
  submits = 0;

  private constructor(
    readonly device: GPUDevice,
    readonly capabilities: GpuCapabilities,
    lost: Promise<GpuDeviceLostError>,
    options: RuntimeOptions,
  ) {
    this.maxInFlight = options.maxInFlightSubmits ?? 3;
    if (!(this.maxInFlight >= 1)) throw new RangeError(`maxInFlightSubmits must be >= 1, got ${this.maxInFlight}`);
    this.waitTimeoutMs = options.waitTimeoutMs ?? 120_000;
    this.bindGroups = new BindGroupCache(device);
    this.pipelines = new PipelineCache(device);
    this.buffers = new BufferPool(device, capabilities.limits.maxBufferSize, (b) => this.bindGroups.forget(b));
    this.paramsPages = new ParamsPages(device, capabilities.limits.minUniformBufferOffsetAlignment, capabilities.limits.maxUniformBufferBindingSize);
    if (options.timing) {
      if (!capabilities.features.timestampQuery) {
        throw new GpuLimitError(`GPU timing needs the 'timestamp-query' feature, which ${capabilities.adapter.description || 'this adapter'} lacks`);
      }
      this.timing = {
        querySet: device.createQuerySet({ type: 'timestamp', count: TIMING_QUERIES }),
        resolveBuffer: device.createBuffer({
          size: 8 * TIMING_QUERIES,
          usage: GPUBufferUsage.QUERY_RESOLVE | GPUBufferUsage.COPY_SRC,
        }),
        capacity: TIMING_QUERIES,
      };
    } else {
      this.timing = null;
    }
    device.addEventListener('uncapturederror', (ev) => {
      this.errors.push(ev.error.message);
    });
    void lost.then((err) => {
      this.lostError = err;
    });
  }

  static async create(options: RuntimeOptions = {}): Promise<GpuRuntime> {
    const { device, capabilities, lost } = await acquireDevice(options);
    return new GpuRuntime(device, capabilities, lost, options);
  }

  get isLost(): boolean {
    return this.lostError !== null;
  }

  /** Throws the typed error if the device is gone; every entry point calls it. */
  assertAlive(): void {
    if (this.lostError) throw this.lostError;
    if (this.destroyed) throw new GpuDeviceLostError('destroyed', 'the runtime was destroyed');
  }

  /** Uncaptured validation/out-of-memory errors since the last call (tests assert there are none). */
  takeErrors(): string[] {
    return this.errors.splice(0);
  }

  prepare(kernel: KernelSpec, defines: WgslDefines): Promise<PreparedPipeline> {
    this.assertAlive();
    return this.pipelines.prepare(kernel, defines);
  }

  beginStep(label = 'step'): StepRecorder {
    this.assertAlive();
    return new StepRecorder(this, label);
  }

  /** An exact-size buffer for a long-lived tensor (weights, caches); not pooled. */
  createBuffer(bytes: number, usage: GPUBufferUsageFlags, label: string): GPUBuffer {
    this.assertAlive();
    const size = Math.max(4, Math.ceil(bytes / 4) * 4);
    if (size > this.capabilities.limits.maxBufferSize) {
      throw new GpuLimitError(`'${label}' needs ${bytes} bytes; this device's maxBufferSize is ${this.capabilities.limits.maxBufferSize}`);
    }
    return this.device.createBuffer({ size, usage, label });
  }

  /** A storage buffer holding `data` (padded to 4 bytes). */
  upload(data: ArrayBufferView, label: string, usage: GPUBufferUsageFlags = 0): GPUBuffer {
    const buffer = this.createBuffer(data.byteLength, GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST | GPUBufferUsage.COPY_SRC | usage, label);
    this.write(buffer, 0, data);
    return buffer;
  }

  write(buffer: GPUBuffer, offset: number, data: ArrayBufferView): void {
    this.assertAlive();
    const bytes = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
    const aligned = bytes.byteLength % 4 === 0 ? bytes : padTo4(bytes);
    this.device.queue.writeBuffer(buffer, offset, aligned);
  }

  destroyBuffer(buffer: GPUBuffer): void {
    this.bindGroups.forget(buffer);
    buffer.destroy();
  }

  /** Read a buffer range (one small step of its own). */
  async read(buffer: GPUBuffer, offset = 0, size = buffer.size - offset): Promise<ArrayBuffer> {
    const step = this.beginStep('read');
    const data = step.read(buffer, offset, size);
    await step.submit();
    return data;
  }

  /** Internal: submit a finished command buffer, keeping at most maxInFlight submits queued. */
  async submit(commands: GPUCommandBuffer, params: StepParams, writes: readonly { buffer: GPUBuffer; offset: number; data: ArrayBufferView }[] = []): Promise<void> {
    while (this.inFlight.size >= this.maxInFlight) {
      await Promise.race(this.inFlight);
    }
    this.assertAlive();
    params.write(this.device.queue);
    for (const w of writes) this.device.queue.writeBuffer(w.buffer, w.offset, w.data.buffer, w.data.byteOffset, w.data.byteLength);
    this.device.queue.submit([commands]);
    this.submits++;
    const done: Promise<void> = this.workDone()
      .catch(() => undefined)
      .then(() => {
        this.inFlight.delete(done);
      });
    this.inFlight.add(done);
  }

  /** Submits queued on the GPU and not yet known to be finished. */
  get inFlightCount(): number {
    return this.inFlight.size;
  }

  /** Wait until everything submitted so far has finished on the GPU. */
  async flush(): Promise<void> {
    this.assertAlive();
    await this.workDone();
    await Promise.all(this.inFlight);
  }

  private workDone(): Promise<void> {
    return withTimeout(this.device.queue.onSubmittedWorkDone(), this.waitTimeoutMs, 'onSubmittedWorkDone');
  }

  /** Internal: map a pooled staging buffer, copy its bytes out, return it to the pool. */
  async mapRead(staging: GPUBuffer, size: number): Promise<ArrayBuffer> {
    try {
      await withTimeout(staging.mapAsync(GPUMapMode.READ, 0, size), this.waitTimeoutMs, 'mapAsync');
    } catch (e) {
      if (this.lostError || this.destroyed) throw this.lostError ?? new GpuDeviceLostError('destroyed', 'the runtime was destroyed');
      throw e;
    }
    const copy = staging.getMappedRange(0, size).slice(0);
    staging.unmap();
    this.buffers.release(staging);
    return copy;
  }

  /** Destroy the device and everything pooled; later calls throw GpuDeviceLostError. */
  destroy(): void {
    if (this.destroyed) return;
    this.destroyed = true;
    this.buffers.destroy();
    this.paramsPages.destroy();
    this.bindGroups.clear();
    this.timing?.querySet.destroy();
    this.timing?.resolveBuffer.destroy();
    this.device.destroy();
  }
}

function padTo4(bytes: Uint8Array): Uint8Array {
  const out = new Uint8Array(Math.ceil(bytes.byteLength / 4) * 4);
  out.set(bytes);
  return out;
}
