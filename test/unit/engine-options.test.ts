// createEngine's options and the Engine's app() guard their input before anything runs: each bad
// value is a typed error naming it (EngineOptionError, SloError, EngineClosedError), never a
// TypeError, a RangeError, Dawn's own message, or a silent clamp.

import { describe, expect, it } from 'vitest';
import type { EngineBackend } from '../../src/host/backend.js';
import { Engine } from '../../src/api/engine.js';
import { createEngine, EngineClosedError, EngineOptionError, SloError } from '../../src/index.js';
import type { HostLoadOptions, ModelInfo } from '../../src/host/protocol.js';
import { checkLoadOptions } from '../../src/host/options.js';

const ok: HostLoadOptions = { model: 'org/model' };

function rejects(o: Record<string, unknown>, option: string): void {
  let err: unknown;
  try {
    checkLoadOptions({ ...ok, ...o });
  } catch (e) {
    err = e;
  }
  expect(err, JSON.stringify(o)).toBeInstanceOf(EngineOptionError);
  expect((err as EngineOptionError).option).toBe(option);
}

describe('createEngine options', () => {
  it('refuse what once slipped through, each naming the option', () => {
    for (const v of [Number.NaN, -1, 0, Infinity, '1000']) rejects({ kvCacheBytes: v }, 'kvCacheBytes');
    for (const v of [0, -1, Number.NaN, 1.5]) rejects({ maxTokensPerStep: v }, 'maxTokensPerStep');
    for (const v of [-1, Number.NaN, 1000, 2.5]) rejects({ maxSpec: v }, 'maxSpec');
    rejects({ prefixCaching: { conversationTtlMs: Number.NaN } }, 'prefixCaching.conversationTtlMs');
    rejects({ prefixCaching: { conversationTtlMs: -5 } }, 'prefixCaching.conversationTtlMs');
    rejects({ calibrationBudgetMs: Number.NaN }, 'calibrationBudgetMs');
    rejects({ selfSpeculation: { layers: 0 } }, 'selfSpeculation.layers');
    rejects({ selfSpeculation: { layers: 1 }, draftModel: 'org/draft' }, 'selfSpeculation');
    rejects({ model: '' }, 'model');
  });

  it('accept every documented form', () => {
    for (const o of [
      {},
      { kvCacheBytes: 1 << 20, maxTokensPerStep: 64, maxSpec: 0 },
      { maxSpec: 16 },
      { prefixCaching: false },
      { prefixCaching: { conversationTtlMs: Infinity } },
      { selfSpeculation: { layers: 2 } },
      { calibrationBudgetMs: 0 },
    ]) {
      expect(() => checkLoadOptions({ ...ok, ...o })).not.toThrow();
    }
  });

  it('createEngine refuses before loading anything', async () => {
    await expect(createEngine({ model: 'org/model', kvCacheBytes: Number.NaN, worker: false })).rejects.toBeInstanceOf(EngineOptionError);
  });
});

describe('Engine.app', () => {
  const backend: EngineBackend = {
    info: async () => ({}) as ModelInfo,
    registerApp: async () => {},
    generate: () => {},
    cancel: () => {},
    stats: async () => {
      throw new Error('unused');
    },
    exportProfile: async () => {
      throw new Error('unused');
    },
    setScheduler: async () => {},
    unload: async () => {},
    destroyDevice: async () => {},
  };

  it('a null SLO is a SloError, not a TypeError', () => {
    const engine = new Engine(backend, {} as ModelInfo);
    expect(() => engine.app('x', null as never)).toThrow(SloError);
    expect(() => engine.app('x', 5 as never)).toThrow(SloError);
  });

  it('after unload(), app() throws EngineClosedError instead of a handle that looks ready', async () => {
    const engine = new Engine(backend, {} as ModelInfo);
    await engine.unload();
    expect(() => engine.app('x', { ttftMs: 100, tpotMs: 50 })).toThrow(EngineClosedError);
  });
});
