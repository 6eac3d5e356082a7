// Minimal fakes of the WebGPU objects the GPU layer touches, for unit tests of its bookkeeping
// (pooling, caching, timeouts) without a driver. Numerics are never tested on fakes.

export class FakeBuffer {
  destroyed = false;
  constructor(
    readonly size: number,
    readonly usage: number,
    readonly label: string,
  ) {}
  destroy(): void {
    this.destroyed = true;
  }
}

export interface FakeDeviceLog {
  buffers: FakeBuffer[];
  bindGroups: number;
  writes: { buffer: FakeBuffer; offset: number; bytes: number }[];
}

export function fakeDevice(): { device: GPUDevice; log: FakeDeviceLog } {
  const log: FakeDeviceLog = { buffers: [], bindGroups: 0, writes: [] };
  const device = {
    createBuffer(d: GPUBufferDescriptor) {
      const b = new FakeBuffer(d.size, d.usage, d.label ?? '');
      log.buffers.push(b);
      return b;
    },
    createBindGroup() {
      log.bindGroups++;
      return { id: log.bindGroups };
    },
    queue: {
      writeBuffer(buffer: FakeBuffer, offset: number, _data: unknown, _dataOffset?: number, size?: number) {
        log.writes.push({ buffer, offset, bytes: size ?? 0 });
      },
    },
  };
  return { device: device as unknown as GPUDevice, log };
}

export interface FakeAdapterOptions {
  features?: string[];
  limits?: Record<string, number>;
  hangDevice?: boolean;
  lost?: Promise<GPUDeviceLostInfo>;
}

const BASE_LIMITS: Record<string, number> = {
  maxBufferSize: 2 ** 30,
  maxStorageBufferBindingSize: 2 ** 29,
  maxComputeWorkgroupStorageSize: 32768,
  maxComputeInvocationsPerWorkgroup: 1024,
  maxComputeWorkgroupSizeX: 1024,
  maxComputeWorkgroupSizeY: 1024,
  maxComputeWorkgroupsPerDimension: 65535,
  maxStorageBuffersPerShaderStage: 16,
  maxUniformBufferBindingSize: 65536,
  minStorageBufferOffsetAlignment: 256,
  minUniformBufferOffsetAlignment: 256,
};

/** A fake GPU whose adapter records the device request it got. */
export function fakeGpu(opts: FakeAdapterOptions = {}): { gpu: GPU; requests: GPUDeviceDescriptor[] } {
  const requests: GPUDeviceDescriptor[] = [];
  const adapterLimits = { ...BASE_LIMITS, ...opts.limits };
  const adapter = {
    features: new Set(opts.features ?? []),
    limits: adapterLimits,
    info: { vendor: 'fake', architecture: 'test', device: 'fake0', description: 'Fake adapter', subgroupMinSize: 16, subgroupMaxSize: 32 },
    requestDevice(desc: GPUDeviceDescriptor) {
      requests.push(desc);
      if (opts.hangDevice) return new Promise(() => {});
      const granted = { ...BASE_LIMITS, ...(desc.requiredLimits as Record<string, number>) };
      return Promise.resolve({
        limits: granted,
        features: new Set(desc.requiredFeatures ?? []),
        lost: opts.lost ?? new Promise(() => {}),
        destroy() {},
      });
    },
  };
  const gpu = { requestAdapter: () => Promise.resolve(adapter) };
  return { gpu: gpu as unknown as GPU, requests };
}

// The WebGPU constant namespaces (spec values), which browsers and Dawn put on globalThis.
const CONSTANTS: Record<string, Record<string, number>> = {
  GPUBufferUsage: { MAP_READ: 1, MAP_WRITE: 2, COPY_SRC: 4, COPY_DST: 8, INDEX: 16, VERTEX: 32, UNIFORM: 64, STORAGE: 128, INDIRECT: 256, QUERY_RESOLVE: 512 },
  GPUMapMode: { READ: 1, WRITE: 2 },
  GPUShaderStage: { VERTEX: 1, FRAGMENT: 2, COMPUTE: 4 },
};
for (const [name, value] of Object.entries(CONSTANTS)) {
  if (!(name in globalThis)) (globalThis as Record<string, unknown>)[name] = value;
}
