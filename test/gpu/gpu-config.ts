// The GPU test matrix: scripts/test-gpu.mjs runs the gpu tier once per config, naming it in
// WEBSLO_GPU_CONFIG (and, for SwiftShader, pointing the Vulkan loader at Chromium's driver).
// Each test file gets its runtime here, so every file runs every config.

import { expect } from 'vitest';
import { GpuRuntime, type RuntimeOptions } from '../../src/gpu/index.js';

export type GpuConfig = 'all-features' | 'no-f16' | 'no-subgroups' | 'swiftshader';
export const GPU_CONFIGS: readonly GpuConfig[] = ['all-features', 'no-f16', 'no-subgroups', 'swiftshader'];

export function gpuConfig(): GpuConfig {
  const c = process.env.WEBSLO_GPU_CONFIG ?? 'all-features';
  if (!(GPU_CONFIGS as readonly string[]).includes(c)) {
    throw new Error(`WEBSLO_GPU_CONFIG=${c} is not one of ${GPU_CONFIGS.join(', ')}`);
  }
  return c as GpuConfig;
}

/** A runtime for this config; fails (never skips) when there is no adapter. */
export async function createTestRuntime(extra: RuntimeOptions = {}): Promise<GpuRuntime> {
  const config = gpuConfig();
  const rt = await GpuRuntime.create({
    ignoreShaderF16: config === 'no-f16',
    ignoreSubgroups: config === 'no-subgroups',
    ...extra,
  });
  const desc = `${rt.capabilities.adapter.description} ${rt.capabilities.adapter.architecture}`.toLowerCase();
  // The matrix must run what it says: SwiftShader only under its config, and features as asked.
  expect(desc.includes('swiftshader'), `adapter '${desc}' under config ${config}`).toBe(config === 'swiftshader');
  if (config === 'no-f16') expect(rt.capabilities.features.shaderF16).toBe(false);
  if (config === 'no-subgroups') expect(rt.capabilities.features.subgroups).toBe(false);
  return rt;
}

/**
 * How much of the heavy whole-model work a leg runs. 'full' (lavapipe, every feature): everything;
 * 'reduced' (lavapipe with a feature ignored): shorter prompts and fewer samples; 'light'
 * (SwiftShader, ~10x slower): the smallest cases of each behaviour, since the browser tier runs the
 * models on SwiftShader too.
 */
export function legScope(): 'full' | 'reduced' | 'light' {
  const c = gpuConfig();
  return c === 'all-features' ? 'full' : c === 'swiftshader' ? 'light' : 'reduced';
}
