// What the device was granted, as one typed object that kernels choose their variants from.
// Nothing downstream reads adapter.limits or device.features directly.

export interface GpuAdapterDescription {
  vendor: string;
  architecture: string;
  device: string;
  description: string;
}

/** The limits webslo requests explicitly at the adapter's maximum (the defaults are far lower). */
export const REQUESTED_LIMITS = [
  'maxBufferSize',
  'maxStorageBufferBindingSize',
  'maxComputeWorkgroupStorageSize',
  'maxComputeInvocationsPerWorkgroup',
  'maxComputeWorkgroupSizeX',
  'maxComputeWorkgroupSizeY',
  'maxComputeWorkgroupsPerDimension',
  'maxStorageBuffersPerShaderStage',
  'maxUniformBufferBindingSize',
] as const;

export type RequestedLimit = (typeof REQUESTED_LIMITS)[number];

export interface GpuLimits extends Record<RequestedLimit, number> {
  minStorageBufferOffsetAlignment: number;
  minUniformBufferOffsetAlignment: number;
}

export interface GpuFeatures {
  /** `shader-f16` granted and not ignored: WGSL may `enable f16`. */
  shaderF16: boolean;
  /** `subgroups` granted and not ignored: WGSL may `enable subgroups`. */
  subgroups: boolean;
  /** `timestamp-query` granted: GPU timing can be switched on. */
  timestampQuery: boolean;
}

export interface GpuCapabilities {
  adapter: GpuAdapterDescription;
  features: GpuFeatures;
  /** Features the adapter offered that the caller asked to ignore (so fallbacks run). */
  ignored: { shaderF16: boolean; subgroups: boolean };
  /** Subgroup sizes the adapter reports; 0 when subgroups are not in use. */
  subgroupMinSize: number;
  subgroupMaxSize: number;
  limits: GpuLimits;
  /**
   * Reduction-order constant: every dot product over K is split into this many interleaved lanes
   * (lane l takes the vec4 groups g with g % reduceLanes == l), each summed in increasing g with
   * fma, then the lanes are added by a fixed binary tree. It depends only on the adapter (never on
   * the batch), which is what makes rows bitwise independent of how many rows ran with them.
   */
  reduceLanes: number;
}

export const DEFAULT_REDUCE_LANES = 4;

/** A short human line for logs and the demo page. */
export function describeCapabilities(caps: GpuCapabilities): string {
  const f = caps.features;
  const a = caps.adapter;
  // Chromium reports only vendor and architecture (e.g. google / swiftshader).
  const name = a.description || a.device || [a.vendor, a.architecture].filter(Boolean).join(' ') || 'unknown adapter';
  const feats = [
    f.shaderF16 ? 'shader-f16' : caps.ignored.shaderF16 ? 'shader-f16 (ignored)' : 'no shader-f16',
    f.subgroups ? `subgroups ${caps.subgroupMinSize}-${caps.subgroupMaxSize}` : caps.ignored.subgroups ? 'subgroups (ignored)' : 'no subgroups',
    f.timestampQuery ? 'timestamp-query' : 'no timestamp-query',
  ];
  const mib = (n: number): string => `${Math.round(n / 2 ** 20)} MiB`;
  return `${name}; ${feats.join(', ')}; max binding ${mib(caps.limits.maxStorageBufferBindingSize)}, max buffer ${mib(caps.limits.maxBufferSize)}`;
}
