import { describe, expect, it } from 'vitest';
import { BindGroupCache, ParamsPages, StepParams } from '../../src/gpu/bind-groups.js';
import { BufferPool, sizeClass } from '../../src/gpu/buffers.js';
import { GpuLimitError, GpuUsageError } from '../../src/gpu/errors.js';
import { fakeDevice } from '../helpers/fake-gpu.js';

const STORAGE = 0x80;
const MAP_READ = 0x1;

describe('sizeClass', () => {
  it('covers the request, wastes at most 25%, and is 16-byte aligned', () => {
    for (let n = 0; n < 5_000_000; n = Math.floor(n * 1.37) + 1) {
      const c = sizeClass(n);
      expect(c).toBeGreaterThanOrEqual(n);
      expect(c % 16).toBe(0);
      if (n > 256) expect(c).toBeLessThanOrEqual(Math.ceil(n * 1.25) + 16);
    }
    expect(sizeClass(0)).toBe(256);
    expect(() => sizeClass(-1)).toThrow(GpuUsageError);
  });
});

describe('BufferPool', () => {
  it('reuses a released buffer of the same class and usage, and only that', () => {
    const { device, log } = fakeDevice();
    const pool = new BufferPool(device, 2 ** 30);
    const a = pool.acquire(1000, STORAGE);
    pool.release(a);
    expect(pool.acquire(1001, STORAGE)).toBe(a);
    const b = pool.acquire(1000, MAP_READ);
    expect(b).not.toBe(a);
    expect(log.buffers).toHaveLength(2);
    expect(pool.stats()).toEqual({ inUse: 2, free: 0, bytes: a.size + b.size });
  });

  it('rejects double release, foreign buffers and sizes over maxBufferSize', () => {
    const { device } = fakeDevice();
    const pool = new BufferPool(device, 4096);
    const a = pool.acquire(100, STORAGE);
    pool.release(a);
    expect(() => pool.release(a)).toThrow(/released twice/);
    expect(() => pool.release(device.createBuffer({ size: 4, usage: 1 }))).toThrow(/not acquired from this pool/);
    expect(() => pool.acquire(5000, STORAGE)).toThrow(GpuLimitError);
  });

  it('trim destroys free buffers and tells the caches first', () => {
    const { device } = fakeDevice();
    const forgotten: GPUBuffer[] = [];
    const pool = new BufferPool(device, 2 ** 30, (b) => forgotten.push(b));
    const a = pool.acquire(100, STORAGE);
    const b = pool.acquire(100, STORAGE);
    pool.release(a);
    pool.trim();
    expect(forgotten).toEqual([a]);
    expect((a as unknown as { destroyed: boolean }).destroyed).toBe(true);
    expect((b as unknown as { destroyed: boolean }).destroyed).toBe(false);
    expect(pool.stats()).toEqual({ inUse: 1, free: 0, bytes: b.size });
  });
});

describe('StepParams', () => {
  it('packs params at the uniform alignment and moves to a new page when one is full', () => {
    const { device, log } = fakeDevice();
    const pages = new ParamsPages(device, 256, 1024);
    expect(pages.pageBytes).toBe(1024);
    const p = new StepParams(pages);
    const places = Array.from({ length: 6 }, () => p.push(new Uint8Array(32)));
    expect(places).toEqual([
      { page: 0, offset: 0 },
      { page: 0, offset: 256 },
      { page: 0, offset: 512 },
      { page: 0, offset: 768 },
      { page: 1, offset: 0 },
      { page: 1, offset: 256 },
    ]);
    p.write(device.queue);
    expect(log.writes.map((w) => w.bytes)).toEqual([1024, 288]);
    expect(() => p.push(new Uint8Array(2048))).toThrow(GpuLimitError);
  });
});

describe('BindGroupCache', () => {
  it('creates a bind group once per distinct binding set and forgets those of a destroyed buffer', () => {
    const { device, log } = fakeDevice();
    const cache = new BindGroupCache(device);
    const layout = {} as GPUBindGroupLayout;
    const params = device.createBuffer({ size: 256, usage: 0 });
    const x = device.createBuffer({ size: 64, usage: 0 });
    const y = device.createBuffer({ size: 64, usage: 0 });
    const g1 = cache.get(layout, 'L', params, 32, [{ buffer: x }, { buffer: y }]);
    expect(cache.get(layout, 'L', params, 32, [{ buffer: x }, { buffer: y }])).toBe(g1);
    const g2 = cache.get(layout, 'L', params, 32, [{ buffer: x, offset: 0, size: 32 }, { buffer: y }]);
    expect(g2).not.toBe(g1);
    expect(log.bindGroups).toBe(2);
    cache.forget(x);
    expect(cache.size).toBe(0);
    cache.get(layout, 'L', params, 32, [{ buffer: y }, { buffer: y }]);
    cache.forget(x);
    expect(cache.size).toBe(1);
  });
});
