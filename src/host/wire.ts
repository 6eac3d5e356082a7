// Errors across the worker boundary, both ways: `toWire` turns one into plain data where the engine
// runs, `fromWire` rebuilds it on the page side as the same exported class, with its name, message
// and data fields (a decline's `reason`, a file error's `path`, a prompt's `promptTokens`), so
// `instanceof`, `name` and the fields all work for callers, and the HTTP layer (openai/sse.ts) maps a
// decline to 429 as it would in-process. A class this list does not know arrives as
// RemoteEngineError with the same name and message.
//
// Invariants: WIRE_CLASSES is ordered subclasses first (the first `instanceof` match names the
// class); fields are an error's own enumerable properties with string, number, boolean or null
// values, or arrays of strings and numbers; a rebuilt error is created without running its
// constructor (the message already says everything), so its fields are exactly what crossed.

import { ChatTemplateError, InvalidRequestError, RemoteReplicaError } from '../openai/errors.js';
import { AbortError, DeviceLostError, EngineClosedError, EngineError, PromptTooLongError, RequestDeclinedError, RequestError } from '../engine/errors.js';
import { GpuDeviceLostError, GpuError, GpuLimitError, GpuTimeoutError, GpuUnavailableError, GpuUsageError, ShaderError } from '../gpu/errors.js';
import { CacheQuotaError, CacheUnavailableError, ModelSourceError } from '../hub/errors.js';
import { MissingTensorError, ModelConfigError, ModelError, ModelFileError, NonFiniteWeightError, SafetensorsError, TensorShapeError, TokenizerError, UnsupportedModelError } from '../model/errors.js';
import { QuantizeError } from '../model/quantize-q4.js';
import { PerfProfileError } from '../scheduler/perf-model.js';
import { SloError } from '../scheduler/slo.js';
import { EngineOptionError } from './options.js';
import type { WireError, WireValue } from './protocol.js';

/** A failure from the engine whose class did not cross the boundary: same name and message. */
export class RemoteEngineError extends Error {
  constructor(name: string, message: string) {
    super(message);
    this.name = name;
  }
}

type ErrorClass = abstract new (...args: never[]) => Error;

/**
 * Wire key -> the class an error is encoded from (subclasses first) and rebuilt as. The engine's
 * RequestError travels as the page's InvalidRequestError (same name, same `param`).
 */
const WIRE_CLASSES: readonly (readonly [string, ErrorClass, ErrorClass?])[] = [
  ['RequestDeclinedError', RequestDeclinedError],
  ['SloError', SloError],
  ['PromptTooLongError', PromptTooLongError],
  ['AbortError', AbortError],
  ['DeviceLostError', DeviceLostError],
  ['EngineClosedError', EngineClosedError],
  ['RemoteReplicaError', RemoteReplicaError],
  ['InvalidRequestError', RequestError, InvalidRequestError],
  ['EngineError', EngineError],
  ['InvalidRequestError', InvalidRequestError],
  ['ChatTemplateError', ChatTemplateError],
  ['CacheQuotaError', CacheQuotaError],
  ['CacheUnavailableError', CacheUnavailableError],
  ['ModelSourceError', ModelSourceError],
  ['ModelConfigError', ModelConfigError],
  ['SafetensorsError', SafetensorsError],
  ['MissingTensorError', MissingTensorError],
  ['TensorShapeError', TensorShapeError],
  ['UnsupportedModelError', UnsupportedModelError],
  ['ModelFileError', ModelFileError],
  ['TokenizerError', TokenizerError],
  ['NonFiniteWeightError', NonFiniteWeightError],
  ['ModelError', ModelError],
  ['GpuUnavailableError', GpuUnavailableError],
  ['GpuTimeoutError', GpuTimeoutError],
  ['GpuDeviceLostError', GpuDeviceLostError],
  ['GpuLimitError', GpuLimitError],
  ['ShaderError', ShaderError],
  ['GpuUsageError', GpuUsageError],
  ['GpuError', GpuError],
  ['QuantizeError', QuantizeError],
  ['PerfProfileError', PerfProfileError],
  ['EngineOptionError', EngineOptionError],
];

const REBUILD = new Map<string, ErrorClass>();
for (const [key, from, as] of WIRE_CLASSES) if (!REBUILD.has(key)) REBUILD.set(key, as ?? from);

/** An error as plain data (the worker boundary clones only plain objects). */
export function toWire(e: unknown): WireError {
  if (!(e instanceof Error)) return { name: 'Error', message: String(e) };
  const out: WireError = { name: e.name, message: e.message };
  const entry = WIRE_CLASSES.find(([, cls]) => e instanceof cls);
  if (entry) out.cls = entry[0];
  const fields: Record<string, WireValue> = {};
  let any = false;
  for (const [key, value] of Object.entries(e)) {
    if (key === 'name' || key === 'message' || key === 'stack' || key === 'cause') continue;
    const plain = (v: unknown): v is string | number => typeof v === 'string' || (typeof v === 'number' && Number.isFinite(v));
    if (value === null || typeof value === 'boolean' || plain(value) || (Array.isArray(value) && value.every(plain))) {
      fields[key] = Array.isArray(value) ? [...(value as (string | number)[])] : (value as WireValue);
      any = true;
    }
  }
  if (any) out.fields = fields;
  return out;
}

/**
 * The error `toWire` described, as its exported class where it has one. A hand-written wire error
 * (no `cls`: `{ name: 'EngineClosedError', message }`, or what comlink kept of a thrown Error) is
 * rebuilt by its name, with `param` and `app` when given.
 */
export function fromWire(w: WireError): Error {
  const cls = REBUILD.get(w.cls ?? w.name);
  if (!cls) return new RemoteEngineError(w.name, w.message);
  const e = Object.create(cls.prototype as object) as Error & Record<string, unknown>;
  Object.assign(e, w.fields ?? {});
  if (w.param !== undefined && e['param'] === undefined) e['param'] = w.param;
  if (w.app !== undefined && e['app'] === undefined) e['app'] = w.app;
  Object.defineProperty(e, 'message', { value: w.message, writable: true, configurable: true, enumerable: false });
  e.name = w.name;
  Object.defineProperty(e, 'stack', { value: `${w.name}: ${w.message}\n    (raised in the engine)`, writable: true, configurable: true, enumerable: false });
  return e;
}

export { AbortError, DeviceLostError, EngineClosedError, EngineError, PromptTooLongError, RequestDeclinedError, SloError, InvalidRequestError, ChatTemplateError };
