import { describe, expect, it, vi } from 'vitest';
import { REQUESTED_LIMITS } from '../../src/gpu/capabilities.js';
import { acquireDevice } from '../../src/gpu/device.js';
import { GpuDeviceLostError, GpuTimeoutError, GpuUnavailableError } from '../../src/gpu/errors.js';
import { fakeGpu } from '../helpers/fake-gpu.js';

describe('acquireDevice', () => {
  it('fails with GpuTimeoutError when requestAdapter never settles', async () => {
    const gpu = { requestAdapter: () => new Promise(() => {}) } as unknown as GPU;
    await expect(acquireDevice({ gpu, adapterTimeoutMs: 30 })).rejects.toMatchObject({
      name: 'GpuTimeoutError',
      step: 'requestAdapter',
      timeoutMs: 30,
    });
  });

  it('fails with GpuTimeoutError when requestDevice never settles', async () => {
    const { gpu } = fakeGpu({ hangDevice: true });
    const err = await acquireDevice({ gpu, deviceTimeoutMs: 30 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(GpuTimeoutError);
    expect((err as GpuTimeoutError).step).toBe('requestDevice');
  });

  it('fails with GpuUnavailableError, saying what to install, when there is no adapter', async () => {
    const gpu = { requestAdapter: () => Promise.resolve(null) } as unknown as GPU;
    const err = await acquireDevice({ gpu }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(GpuUnavailableError);
    expect(String((err as Error).message)).toMatch(/Mesa|Vulkan/);
  });

  it('requests every needed limit at the adapter maximum and the features it has', async () => {
    const { gpu, requests } = fakeGpu({ features: ['shader-f16', 'subgroups', 'timestamp-query'], limits: { maxStorageBufferBindingSize: 2 ** 31 } });
    const { capabilities } = await acquireDevice({ gpu });
    const req = requests[0]!;
    for (const name of REQUESTED_LIMITS) expect(req.requiredLimits?.[name], name).toBeGreaterThan(0);
    expect(req.requiredLimits?.maxStorageBufferBindingSize).toBe(2 ** 31);
    expect([...(req.requiredFeatures ?? [])].sort()).toEqual(['shader-f16', 'subgroups', 'timestamp-query']);
    expect(capabilities.features).toEqual({ shaderF16: true, subgroups: true, timestampQuery: true });
    expect(capabilities.subgroupMinSize).toBe(16);
    expect(capabilities.limits.maxStorageBufferBindingSize).toBe(2 ** 31);
  });

  it('ignores shader-f16 and subgroups when asked, and says so', async () => {
    const { gpu, requests } = fakeGpu({ features: ['shader-f16', 'subgroups'] });
    const { capabilities } = await acquireDevice({ gpu, ignoreShaderF16: true, ignoreSubgroups: true });
    expect(requests[0]!.requiredFeatures).toEqual([]);
    expect(capabilities.features.shaderF16).toBe(false);
    expect(capabilities.features.subgroups).toBe(false);
    expect(capabilities.ignored).toEqual({ shaderF16: true, subgroups: true });
    expect(capabilities.subgroupMaxSize).toBe(0);
  });

  it('caps the storage binding with the override and validates options', async () => {
    const { gpu } = fakeGpu();
    const { capabilities } = await acquireDevice({ gpu, maxStorageBindingOverride: 2 ** 20 });
    expect(capabilities.limits.maxStorageBufferBindingSize).toBe(2 ** 20);
    await expect(acquireDevice({ gpu, maxStorageBindingOverride: 100 })).rejects.toThrow(/multiple of 4 and >= 256/);
    await expect(acquireDevice({ gpu, reduceLanes: 3 })).rejects.toThrow(/power of two/);
  });

  it('reports an unexpected loss through onLost and the lost promise as GpuDeviceLostError', async () => {
    let lose: (info: GPUDeviceLostInfo) => void = () => {};
    const lost = new Promise<GPUDeviceLostInfo>((r) => (lose = r));
    const { gpu } = fakeGpu({ lost });
    const onLost = vi.fn();
    const acquired = await acquireDevice({ gpu, onLost });
    lose({ reason: 'unknown', message: 'driver reset' } as GPUDeviceLostInfo);
    const err = await acquired.lost;
    expect(err).toBeInstanceOf(GpuDeviceLostError);
    expect(err.message).toMatch(/driver reset/);
    expect(onLost).toHaveBeenCalledWith(err);
  });

  it('does not call onLost for an explicit destroy()', async () => {
    let lose: (info: GPUDeviceLostInfo) => void = () => {};
    const lost = new Promise<GPUDeviceLostInfo>((r) => (lose = r));
    const { gpu } = fakeGpu({ lost });
    const onLost = vi.fn();
    const acquired = await acquireDevice({ gpu, onLost });
    acquired.device.destroy();
    lose({ reason: 'destroyed', message: '' } as GPUDeviceLostInfo);
    expect((await acquired.lost).reason).toBe('destroyed');
    expect(onLost).not.toHaveBeenCalled();
  });
});
