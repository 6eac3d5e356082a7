// Device acquisition, one code path for the browser (navigator.gpu) and Node (Dawn through the
// npm package `webgpu`). Every await on the driver has a timeout: a wrong flag set can leave
// requestAdapter pending forever, and a hung test is worse than a failed one.

import { DEFAULT_REDUCE_LANES, REQUESTED_LIMITS, type GpuAdapterDescription, type GpuCapabilities, type GpuLimits } from './capabilities.js';
import { GpuDeviceLostError, GpuTimeoutError, GpuUnavailableError } from './errors.js';

export interface AcquireOptions {
  /** A WebGPU implementation to use; by default navigator.gpu, or Dawn in Node. */
  gpu?: GPU;
  /** Dawn instance flags in Node (e.g. 'backend=vulkan'); ignored in the browser. */
  dawnFlags?: string[];
  powerPreference?: GPUPowerPreference;
  /** Do not use shader-f16 even if the adapter has it (to test the unpacking fallback). */
  ignoreShaderF16?: boolean;
  /** Do not use subgroups even if the adapter has it (to test the shared-memory fallback). */
  ignoreSubgroups?: boolean;
  /** Cap the storage-binding size below the granted one (tests force tensor splitting with it). */
  maxStorageBindingOverride?: number;
  /** Reduction lanes (see GpuCapabilities.reduceLanes); a power of two, 1..64. */
  reduceLanes?: number;
  adapterTimeoutMs?: number;
  deviceTimeoutMs?: number;
  /** Called once if the device is lost after acquisition (not for an explicit destroy()). */
  onLost?: (error: GpuDeviceLostError) => void;
}

export interface AcquiredDevice {
  device: GPUDevice;
  capabilities: GpuCapabilities;
  /** Settles when the device is lost, for any reason including destroy(). */
  lost: Promise<GpuDeviceLostError>;
}

const DEFAULT_TIMEOUT_MS = 20_000;

export function withTimeout<T>(promise: Promise<T>, ms: number, step: GpuTimeoutError['step']): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new GpuTimeoutError(step, ms)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

interface DawnModule {
  create(flags: string[]): GPU;
  globals: Record<string, unknown>;
}

const dawnInstances = new Map<string, GPU>();

function isNode(): boolean {
  const p = (globalThis as { process?: { versions?: { node?: string } } }).process;
  return typeof p?.versions?.node === 'string';
}

/** navigator.gpu in a browser or worker; a Dawn instance in Node (one per flag set, kept). */
export async function getWebGpu(dawnFlags: string[] = []): Promise<GPU> {
  const nav = (globalThis as { navigator?: { gpu?: GPU } }).navigator;
  if (nav?.gpu) return nav.gpu;
  if (!isNode()) {
    throw new GpuUnavailableError(
      'WebGPU is not available in this browser: use a recent Chrome or Edge (or Chromium with --enable-unsafe-webgpu), Firefox 141+, or Safari 26+, over https or localhost',
    );
  }
  const key = dawnFlags.join('\u0000');
  const cached = dawnInstances.get(key);
  if (cached) return cached;
  // A computed specifier keeps browser bundlers from trying to resolve the Node-only package.
  const specifier = 'webgpu';
  let dawn: DawnModule;
  try {
    dawn = (await import(/* @vite-ignore */ specifier)) as DawnModule;
  } catch (e) {
    throw new GpuUnavailableError(`WebGPU for Node needs the npm package 'webgpu' (Dawn): npm install webgpu (${String(e)})`);
  }
  // Dawn's constants (GPUBufferUsage, GPUMapMode, ...) are globals in a browser; make them so here.
  for (const [name, value] of Object.entries(dawn.globals)) {
    if (!(name in globalThis)) (globalThis as Record<string, unknown>)[name] = value;
  }
  const gpu = dawn.create(dawnFlags);
  dawnInstances.set(key, gpu);
  return gpu;
}

const NO_ADAPTER_HELP = isNode()
  ? "Node found no WebGPU adapter. On Debian 12 install Mesa >= 23 (lavapipe) from bookworm-backports: bash scripts/setup-debian.sh; elsewhere install a Vulkan driver (mesa-vulkan-drivers, or your GPU vendor's), or point VK_ICD_FILENAMES at one."
  : 'The browser offered no WebGPU adapter: enable hardware acceleration, or start Chromium with --enable-unsafe-webgpu.';

function describeAdapter(adapter: GPUAdapter): GpuAdapterDescription {
  const info = adapter.info;
  return {
    vendor: info?.vendor ?? '',
    architecture: info?.architecture ?? '',
    device: info?.device ?? '',
    description: info?.description ?? '',
  };
}

/** Acquire an adapter and a device with every limit webslo needs raised to the adapter's maximum. */
export async function acquireDevice(options: AcquireOptions = {}): Promise<AcquiredDevice> {
  const gpu = options.gpu ?? (await getWebGpu(options.dawnFlags));
  const adapterTimeout = options.adapterTimeoutMs ?? DEFAULT_TIMEOUT_MS;
  const deviceTimeout = options.deviceTimeoutMs ?? DEFAULT_TIMEOUT_MS;
  const adapterRequest: GPURequestAdapterOptions = {};
  if (options.powerPreference) adapterRequest.powerPreference = options.powerPreference;
  // On lavapipe Dawn's first adapter discovery prints "maxDynamic{Uniform,Storage}BuffersPerPipelineLayout
  // artificially reduced" from native code (Limits.cpp clamps the driver's 1e6 to 16); no request
  // option or toggle reaches it, and the device still gets the default 8 (one is used). docs/using.md.
  const adapter = await withTimeout(gpu.requestAdapter(adapterRequest), adapterTimeout, 'requestAdapter');
  if (!adapter) throw new GpuUnavailableError(NO_ADAPTER_HELP);

  const has = (f: GPUFeatureName): boolean => adapter.features.has(f);
  const useF16 = has('shader-f16') && !options.ignoreShaderF16;
  const useSubgroups = has('subgroups') && !options.ignoreSubgroups;
  const useTimestamps = has('timestamp-query');
  const requiredFeatures: GPUFeatureName[] = [];
  if (useF16) requiredFeatures.push('shader-f16');
  if (useSubgroups) requiredFeatures.push('subgroups');
  if (useTimestamps) requiredFeatures.push('timestamp-query');

  const requiredLimits: Record<string, number> = {};
  for (const name of REQUESTED_LIMITS) requiredLimits[name] = adapter.limits[name];

  const device = await withTimeout(adapter.requestDevice({ requiredFeatures, requiredLimits, label: 'webslo' }), deviceTimeout, 'requestDevice');

  let destroyedOnPurpose = false;
  const originalDestroy = device.destroy.bind(device);
  device.destroy = () => {
    destroyedOnPurpose = true;
    originalDestroy();
  };
  const lost = device.lost.then((info) => {
    const err = new GpuDeviceLostError(info.reason ?? 'unknown', info.message ?? '');
    if (!destroyedOnPurpose) options.onLost?.(err);
    return err;
  });

  const limits = {} as GpuLimits;
  for (const name of REQUESTED_LIMITS) limits[name] = device.limits[name];
  limits.minStorageBufferOffsetAlignment = device.limits.minStorageBufferOffsetAlignment;
  limits.minUniformBufferOffsetAlignment = device.limits.minUniformBufferOffsetAlignment;
  if (options.maxStorageBindingOverride !== undefined) {
    const cap = options.maxStorageBindingOverride;
    if (!(cap >= 256) || cap % 4 !== 0) {
      throw new RangeError(`maxStorageBindingOverride must be a multiple of 4 and >= 256, got ${cap}`);
    }
    limits.maxStorageBufferBindingSize = Math.min(limits.maxStorageBufferBindingSize, cap);
  }

  const lanes = options.reduceLanes ?? DEFAULT_REDUCE_LANES;
  if (!Number.isInteger(lanes) || lanes < 1 || lanes > 64 || (lanes & (lanes - 1)) !== 0) {
    throw new RangeError(`reduceLanes must be a power of two in 1..64, got ${lanes}`);
  }

  const info = adapter.info;
  const capabilities: GpuCapabilities = {
    adapter: describeAdapter(adapter),
    features: { shaderF16: useF16, subgroups: useSubgroups, timestampQuery: useTimestamps },
    ignored: {
      shaderF16: has('shader-f16') && !!options.ignoreShaderF16,
      subgroups: has('subgroups') && !!options.ignoreSubgroups,
    },
    subgroupMinSize: useSubgroups ? (info?.subgroupMinSize ?? 0) : 0,
    subgroupMaxSize: useSubgroups ? (info?.subgroupMaxSize ?? 0) : 0,
    limits,
    reduceLanes: lanes,
  };
  return { device, capabilities, lost };
}
