// Buffer pool: scratch and activation buffers are reused by (size class, usage) instead of being
// created and destroyed every step. Long-lived tensors (weights, KV pages) are created once with
// createTensorBuffer-style exact sizes and never go through the free lists.

import { GpuLimitError, GpuUsageError } from './errors.js';

let nextBufferId = 1;
const bufferIds = new WeakMap<GPUBuffer, number>();

/** A small integer identity per GPUBuffer, used in bind-group cache keys. */
export function bufferId(buffer: GPUBuffer): number {
  let id = bufferIds.get(buffer);
  if (id === undefined) {
    id = nextBufferId++;
    bufferIds.set(buffer, id);
  }
  return id;
}

/**
 * Size classes: 256 B minimum, then four steps per power of two (x1, x1.25, x1.5, x1.75), so a
 * pooled buffer wastes at most 25% and a few classes cover everything.
 */
export function sizeClass(bytes: number): number {
  if (!Number.isFinite(bytes) || bytes < 0) throw new GpuUsageError(`buffer size must be >= 0, got ${bytes}`);
  if (bytes <= 256) return 256;
  const p = 2 ** Math.floor(Math.log2(bytes));
  const step = p / 4;
  const cls = Math.ceil(bytes / step) * step;
  return Math.ceil(cls / 16) * 16;
}

export interface BufferPoolStats {
  /** Buffers handed out and not yet released. */
  inUse: number;
  /** Buffers waiting in the free lists. */
  free: number;
  /** Bytes of all buffers the pool owns (in use + free). */
  bytes: number;
}

export class BufferPool {
  private readonly free = new Map<string, GPUBuffer[]>();
  private readonly owned = new Map<GPUBuffer, string>();
  private readonly inUse = new Set<GPUBuffer>();
  private bytes = 0;
  /** Buffers created so far (a steady-state step creates none: everything comes from the free lists). */
  created = 0;

  constructor(
    private readonly device: GPUDevice,
    private readonly maxBufferSize: number,
    /** Called before a pooled buffer is destroyed, so caches that refer to it can forget it. */
    private readonly onDestroy: (buffer: GPUBuffer) => void = () => {},
  ) {}

  /** A buffer of at least `bytes` with exactly `usage`; release it when the work using it is submitted. */
  acquire(bytes: number, usage: GPUBufferUsageFlags, label = 'pooled'): GPUBuffer {
    const size = sizeClass(bytes);
    if (size > this.maxBufferSize) {
      throw new GpuLimitError(`a ${bytes}-byte buffer exceeds this device's maxBufferSize of ${this.maxBufferSize} bytes`);
    }
    const key = `${usage}:${size}`;
    const list = this.free.get(key);
    const reused = list?.pop();
    if (reused) {
      this.inUse.add(reused);
      return reused;
    }
    const buffer = this.device.createBuffer({ size, usage, label: `${label} (${size} B)` });
    this.created++;
    this.owned.set(buffer, key);
    this.inUse.add(buffer);
    this.bytes += size;
    return buffer;
  }

  release(buffer: GPUBuffer): void {
    const key = this.owned.get(buffer);
    if (key === undefined) throw new GpuUsageError(`buffer '${buffer.label}' was not acquired from this pool`);
    if (!this.inUse.delete(buffer)) throw new GpuUsageError(`buffer '${buffer.label}' was released twice`);
    let list = this.free.get(key);
    if (!list) this.free.set(key, (list = []));
    list.push(buffer);
  }

  /** Destroy every free buffer (memory pressure, or a cache that grew past its use). */
  trim(): void {
    for (const list of this.free.values()) {
      for (const b of list) this.destroyOwned(b);
    }
    this.free.clear();
  }

  stats(): BufferPoolStats {
    let free = 0;
    for (const list of this.free.values()) free += list.length;
    return { inUse: this.inUse.size, free, bytes: this.bytes };
  }

  destroy(): void {
    this.trim();
    for (const b of [...this.inUse]) this.destroyOwned(b);
    this.inUse.clear();
  }

  private destroyOwned(buffer: GPUBuffer): void {
    this.onDestroy(buffer);
    this.bytes -= buffer.size;
    this.owned.delete(buffer);
    buffer.destroy();
  }
}
