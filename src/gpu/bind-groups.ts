// Params arena and bind-group cache.
//
// Every dispatch's params struct goes into a uniform "page" (64 KiB or the device's uniform-binding
// limit) at a dynamic offset; a step's params are written with one writeBuffer per page right
// before its submit. Reusing the same pages every step is safe because queue.writeBuffer is ordered
// with submits: work already submitted reads the old bytes. Bind groups then depend only on the
// page and the storage buffers, so a steady-state step creates none.

import { bufferId } from './buffers.js';
import { GpuLimitError } from './errors.js';

export interface StorageBinding {
  buffer: GPUBuffer;
  /** Byte offset, a multiple of minStorageBufferOffsetAlignment. */
  offset?: number;
  /** Bytes bound; the rest of the buffer by default. */
  size?: number;
}

export type StorageArg = GPUBuffer | StorageBinding;

export function asBinding(arg: StorageArg): StorageBinding {
  return 'buffer' in arg ? arg : { buffer: arg };
}

export class ParamsPages {
  readonly pageBytes: number;
  private readonly pages: GPUBuffer[] = [];
  /** CPU staging arrays of finished steps, reused so that a step allocates none. */
  private readonly spare: Uint8Array[] = [];

  constructor(
    private readonly device: GPUDevice,
    readonly alignment: number,
    maxUniformBindingSize: number,
  ) {
    this.pageBytes = Math.min(65536, maxUniformBindingSize);
  }

  page(index: number): GPUBuffer {
    while (this.pages.length <= index) {
      this.pages.push(
        this.device.createBuffer({
          size: this.pageBytes,
          usage: GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST,
          label: `params page ${this.pages.length}`,
        }),
      );
    }
    return this.pages[index]!;
  }

  get count(): number {
    return this.pages.length;
  }

  /** A page-sized CPU array (contents arbitrary), back with `giveBack` once written. */
  borrow(): Uint8Array {
    return this.spare.pop() ?? new Uint8Array(this.pageBytes);
  }

  giveBack(data: Uint8Array): void {
    if (this.spare.length < 64) this.spare.push(data);
  }

  destroy(): void {
    for (const p of this.pages) p.destroy();
    this.pages.length = 0;
  }
}

/** CPU side of one step's params: packed per page, written at submit. */
export class StepParams {
  private readonly data: Uint8Array[] = [];
  private page = 0;
  private used = 0;

  constructor(private readonly pages: ParamsPages) {}

  /** Place `size` bytes (`bytes`, zero-padded) and return where they went. */
  push(bytes: ArrayBufferView, size = bytes.byteLength): { page: number; offset: number } {
    const { pageBytes, alignment } = this.pages;
    if (size > pageBytes || bytes.byteLength > size) {
      throw new GpuLimitError(`a ${size}-byte params struct (${bytes.byteLength} given) exceeds the ${pageBytes}-byte uniform page or its own size`);
    }
    let offset = Math.ceil(this.used / alignment) * alignment;
    if (offset + size > pageBytes) {
      this.page++;
      offset = 0;
    }
    let buf = this.data[this.page];
    if (!buf) this.data[this.page] = buf = this.pages.borrow();
    buf.set(new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength), offset);
    buf.fill(0, offset + bytes.byteLength, offset + size);
    this.used = offset + size;
    return { page: this.page, offset };
  }

  /** Queue the writes (call right before submitting the step's command buffer); the arrays go back. */
  write(queue: GPUQueue): void {
    this.data.forEach((buf, i) => {
      const end = i === this.page ? Math.ceil(this.used / 4) * 4 : buf.byteLength;
      if (end > 0) queue.writeBuffer(this.pages.page(i), 0, buf, 0, end);
      this.pages.giveBack(buf);
    });
    this.data.length = 0;
  }
}

export class BindGroupCache {
  private readonly groups = new Map<string, GPUBindGroup>();
  private readonly byBuffer = new Map<number, Set<string>>();
  created = 0;

  constructor(
    private readonly device: GPUDevice,
    private readonly maxEntries = 8192,
  ) {}

  /**
   * The bind group for these buffers (created once, then cached). Hot path (every dispatch): the
   * key is one string built without intermediate arrays.
   */
  get(layout: GPUBindGroupLayout, layoutKey: string, params: GPUBuffer, paramsBytes: number, storage: readonly StorageArg[]): GPUBindGroup {
    let key = `${layoutKey}|${bufferId(params)}`;
    for (let i = 0; i < storage.length; i++) {
      const s = storage[i]!;
      if ('buffer' in s) key += `|${bufferId(s.buffer)}@${s.offset ?? 0}+${s.size ?? 'all'}`;
      else key += `|${bufferId(s)}@0+all`;
    }
    const hit = this.groups.get(key);
    if (hit) return hit;
    return this.create(key, layout, params, paramsBytes, storage.map(asBinding));
  }

  private create(key: string, layout: GPUBindGroupLayout, params: GPUBuffer, paramsBytes: number, storage: readonly StorageBinding[]): GPUBindGroup {
    if (this.groups.size >= this.maxEntries) this.clear();
    const group = this.device.createBindGroup({
      layout,
      entries: [
        { binding: 0, resource: { buffer: params, offset: 0, size: paramsBytes } },
        ...storage.map((s, i): GPUBindGroupEntry => {
          const resource: GPUBufferBinding = { buffer: s.buffer, offset: s.offset ?? 0 };
          if (s.size !== undefined) resource.size = s.size;
          return { binding: i + 1, resource };
        }),
      ],
    });
    this.created++;
    this.groups.set(key, group);
    for (const id of [bufferId(params), ...storage.map((s) => bufferId(s.buffer))]) {
      let set = this.byBuffer.get(id);
      if (!set) this.byBuffer.set(id, (set = new Set()));
      set.add(key);
    }
    return group;
  }

  /** Drop every bind group that refers to `buffer` (call before destroying it). */
  forget(buffer: GPUBuffer): void {
    const id = bufferId(buffer);
    const keys = this.byBuffer.get(id);
    if (!keys) return;
    for (const k of keys) this.groups.delete(k);
    this.byBuffer.delete(id);
  }

  get size(): number {
    return this.groups.size;
  }

  clear(): void {
    this.groups.clear();
    this.byBuffer.clear();
  }
}
