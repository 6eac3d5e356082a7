// GpuCapabilities as labelled rows for the demo's table. Pure (no DOM) so it is easy to test; each
// row's id becomes a data-testid ("cap-<id>") that the browser tests read.

import type { GpuCapabilities, GpuLimits } from '../gpu/index.js';

export interface CapabilityRow {
  group: 'Adapter' | 'Features' | 'Limits' | 'Kernels';
  /** Stable id: data-testid="cap-<id>" on the value cell. */
  id: string;
  label: string;
  value: string;
  /** Shown dimmed: the value is missing rather than meaningful. */
  muted?: boolean;
}

/** Limits counted in bytes, shown with a MiB/KiB figure beside the raw number. */
const BYTE_LIMITS: ReadonlySet<keyof GpuLimits> = new Set<keyof GpuLimits>([
  'maxBufferSize',
  'maxStorageBufferBindingSize',
  'maxComputeWorkgroupStorageSize',
  'maxUniformBufferBindingSize',
]);

function formatBytes(n: number): string {
  if (n >= 2 ** 20) return `${n} (${+(n / 2 ** 20).toFixed(1)} MiB)`;
  if (n >= 2 ** 10) return `${n} (${+(n / 2 ** 10).toFixed(1)} KiB)`;
  return String(n);
}

function feature(granted: boolean, ignored: boolean, detail = ''): string {
  if (granted) return detail ? `yes (${detail})` : 'yes';
  return ignored ? 'no (ignored on request)' : 'no';
}

export function capabilityRows(caps: GpuCapabilities): CapabilityRow[] {
  const rows: CapabilityRow[] = [];
  // Browsers may leave adapter strings empty on purpose (fingerprinting), so say so.
  for (const key of ['vendor', 'architecture', 'device', 'description'] as const) {
    const value = caps.adapter[key];
    rows.push({ group: 'Adapter', id: key, label: key, value: value || 'not reported', muted: !value });
  }
  const f = caps.features;
  rows.push(
    { group: 'Features', id: 'shader-f16', label: 'shader-f16', value: feature(f.shaderF16, caps.ignored.shaderF16) },
    {
      group: 'Features',
      id: 'subgroups',
      label: 'subgroups',
      value: feature(f.subgroups, caps.ignored.subgroups, `sizes ${caps.subgroupMinSize}–${caps.subgroupMaxSize}`),
    },
    { group: 'Features', id: 'timestamp-query', label: 'timestamp-query', value: feature(f.timestampQuery, false) },
  );
  for (const [name, value] of Object.entries(caps.limits) as [keyof GpuLimits, number][]) {
    rows.push({ group: 'Limits', id: name, label: name, value: BYTE_LIMITS.has(name) ? formatBytes(value) : String(value) });
  }
  rows.push({ group: 'Kernels', id: 'reduceLanes', label: 'reduceLanes', value: String(caps.reduceLanes) });
  return rows;
}
