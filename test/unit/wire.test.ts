// Errors across the worker boundary (host/wire.ts): every exported error class, and the internal ones
// the engine throws, survive toWire -> structured clone -> fromWire as the same class with the same
// name, message and data fields; a decline keeps its reason and so becomes a 429 with Retry-After
// through engineFetch's HTTP mapping.

import { describe, expect, it } from 'vitest';
import { fromWire, RemoteEngineError, toWire } from '../../src/host/wire.js';
import * as api from '../../src/index.js';
import { RequestError } from '../../src/engine/errors.js';
import { GpuLimitError, GpuTimeoutError, GpuUsageError, ShaderError } from '../../src/gpu/errors.js';
import { CacheUnavailableError, ModelSourceError } from '../../src/hub/errors.js';
import { MissingTensorError, TensorShapeError } from '../../src/model/errors.js';
import { errorResponse } from '../../src/openai/sse.js';

/** One instance of each class, with fields of every kind (strings, numbers, null, booleans, arrays). */
const SAMPLES: [Error, abstract new (...args: never[]) => Error][] = [
  [new api.RequestDeclinedError('chat', 'r7', 'slo'), api.RequestDeclinedError],
  [new api.RequestDeclinedError('chat', 'r8', 'kv-exhausted'), api.RequestDeclinedError],
  [new api.SloError('chat', 'ttftMs', 'is 1 ms, below one step'), api.SloError],
  [new api.PromptTooLongError(9000, 4096, 'the context', true), api.PromptTooLongError],
  [new api.AbortError(), api.AbortError],
  [new api.RemoteReplicaError('vllm-a', 'status', 'no', 503), api.RemoteReplicaError],
  [new api.DeviceLostError('destroyed'), api.DeviceLostError],
  [new api.EngineClosedError(), api.EngineClosedError],
  [new api.EngineError('something'), api.EngineError],
  [new api.InvalidRequestError('messages[2].content', 'must be a string'), api.InvalidRequestError],
  [new RequestError('max_tokens', 'must be >= 1'), api.InvalidRequestError],
  [new api.ChatTemplateError('raised', 'roles must alternate'), api.ChatTemplateError],
  [new api.CacheQuotaError('https://h/m.safetensors', 1000, 'a directory', null), api.CacheQuotaError],
  [new CacheUnavailableError('no Cache API'), CacheUnavailableError],
  [new ModelSourceError('42', 'is a number'), ModelSourceError],
  [new api.ModelConfigError('hidden_size', 'is -1', 'a positive integer'), api.ModelConfigError],
  [new api.SafetensorsError('model.safetensors', null, 'header too long'), api.SafetensorsError],
  [new MissingTensorError(['a.weight', 'b.weight'], 'llama'), MissingTensorError],
  [new TensorShapeError('a.weight', [2, 3], [3, 2]), TensorShapeError],
  [new api.UnsupportedModelError('architecture Foo', ['llama', 'qwen2'], 'from config.json'), api.UnsupportedModelError],
  [new api.ModelFileError('m/config.json', 'not found', 404), api.ModelFileError],
  [new api.TokenizerError('bad tokenizer.json'), api.TokenizerError],
  [new api.NonFiniteWeightError('a.weight', 17), api.NonFiniteWeightError],
  [new api.ModelLoadError('generic'), api.ModelLoadError],
  [new api.GpuUnavailableError('no adapter'), api.GpuUnavailableError],
  [new GpuTimeoutError('requestDevice', 5000), GpuTimeoutError],
  [new api.GpuDeviceLostError('unknown', 'driver reset'), api.GpuDeviceLostError],
  [new GpuLimitError('buffer too large'), GpuLimitError],
  [new ShaderError('matmul', 'parse error'), ShaderError],
  [new GpuUsageError('shape mismatch'), GpuUsageError],
  [new api.QuantizeError('quantize', "is 'q3'", "'none' or 'q4'"), api.QuantizeError],
  [new api.PerfProfileError('layers', 'is 3; the model has 24'), api.PerfProfileError],
  [new api.EngineOptionError('kvCacheBytes', 'is NaN'), api.EngineOptionError],
];

const ownFields = (e: Error): Record<string, unknown> => Object.fromEntries(Object.entries(e).filter(([k]) => k !== 'name'));

describe('errors across the worker boundary', () => {
  it.each(SAMPLES.map(([e, cls]) => [e.constructor.name, e, cls] as const))('%s keeps its class, name, message and fields', (_, e, cls) => {
    const back = fromWire(structuredClone(toWire(e)));
    expect(back).toBeInstanceOf(cls);
    expect(back.name).toBe(e.name);
    expect(back.message).toBe(e.message);
    expect(ownFields(back)).toEqual(ownFields(e));
    expect(back.stack).toContain(e.message);
  });

  it('every error class the package exports is covered', () => {
    const exported = Object.entries(api).filter(([, v]) => typeof v === 'function' && (v as { prototype?: unknown }).prototype instanceof Error);
    const covered = new Set(SAMPLES.map(([, cls]) => cls));
    const missing = exported.filter(([name, cls]) => !covered.has(cls as never) && name !== 'RemoteEngineError').map(([name]) => name);
    expect(missing).toEqual([]);
  });

  it("a wire error written by hand (no class: the page's own unload and comlink's leftovers) is rebuilt by its name", () => {
    const closed = fromWire({ name: 'EngineClosedError', message: 'the engine was unloaded; create a new engine (createEngine) to continue' });
    expect(closed).toBeInstanceOf(api.EngineClosedError);
    expect(closed.message).toBe('the engine was unloaded; create a new engine (createEngine) to continue');
    const bad = fromWire({ name: 'InvalidRequestError', message: "'max_tokens' must be >= 1", param: 'max_tokens' });
    expect(bad).toBeInstanceOf(api.InvalidRequestError);
    expect((bad as api.InvalidRequestError).param).toBe('max_tokens');
  });

  it('an error of no known class arrives as RemoteEngineError with its name and message; non-errors as Error', () => {
    class Odd extends Error {
      override name = 'OddError';
    }
    const back = fromWire(structuredClone(toWire(new Odd('strange'))));
    expect(back).toBeInstanceOf(RemoteEngineError);
    expect([back.name, back.message]).toEqual(['OddError', 'strange']);
    expect(toWire('a string')).toEqual({ name: 'Error', message: 'a string' });
  });

  it('a decline for load crosses as RequestDeclinedError and is a 429 with Retry-After; an impossible SLO stays a 400', async () => {
    const declined = fromWire(structuredClone(toWire(new api.RequestDeclinedError('chat', 'r1', 'slo'))));
    expect(declined).toBeInstanceOf(api.RequestDeclinedError);
    expect((declined as api.RequestDeclinedError).reason).toBe('slo');
    const res = errorResponse(declined);
    expect(res.status).toBe(429);
    expect(res.headers.get('retry-after')).toBe('1');
    expect(((await res.json()) as { error: { code: string } }).error.code).toBe('slo_declined');
    const impossible = errorResponse(fromWire(structuredClone(toWire(new api.SloError('chat', 'ttftMs', 'is 1 ms')))));
    expect(impossible.status).toBe(400);
    expect(impossible.headers.get('retry-after')).toBeNull();
  });
});
