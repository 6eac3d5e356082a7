// Errors across the worker boundary, both ways: `toWire` turns one into plain data where the engine
// runs, `fromWire` rebuilds it on the page side, so `instanceof` and `name` both work for callers:
// the engine's typed errors keep their names and messages across the boundary.

import { InvalidRequestError, ChatTemplateError } from '../openai/errors.js';
import { AbortError, DeviceLostError, EngineClosedError, EngineError, PromptTooLongError, RequestDeclinedError } from '../engine/errors.js';
import { SloError } from '../scheduler/slo.js';
import type { WireError } from './protocol.js';

/** A failure from the engine whose class did not cross the boundary: same name and message. */
export class RemoteEngineError extends Error {
  constructor(name: string, message: string) {
    super(message);
    this.name = name;
  }
}

/** An error as plain data (the worker boundary clones only plain objects). */
export function toWire(e: unknown): WireError {
  if (e instanceof Error) {
    const out: WireError = { name: e.name, message: e.message };
    const param = (e as { param?: unknown }).param;
    const app = (e as { app?: unknown }).app;
    if (typeof param === 'string') out.param = param;
    if (typeof app === 'string') out.app = app;
    return out;
  }
  return { name: 'Error', message: String(e) };
}

export function fromWire(w: WireError): Error {
  let e: Error;
  switch (w.name) {
    case 'AbortError':
      e = new AbortError(w.message);
      break;
    case 'EngineClosedError':
      e = Object.assign(new EngineClosedError(), { message: w.message });
      break;
    case 'DeviceLostError':
      e = Object.assign(new DeviceLostError(''), { message: w.message });
      break;
    case 'SloError':
      e = Object.assign(new SloError(w.app ?? '', '', ''), { message: w.message });
      break;
    case 'PromptTooLongError':
      e = Object.assign(new PromptTooLongError(0, 0, ''), { message: w.message });
      break;
    case 'InvalidRequestError':
      e = new InvalidRequestError(w.param ?? '', w.message);
      break;
    case 'ChatTemplateError':
      e = Object.assign(new ChatTemplateError('render', w.message), { message: w.message });
      break;
    default:
      e = new RemoteEngineError(w.name, w.message);
  }
  return e;
}

export { AbortError, DeviceLostError, EngineClosedError, EngineError, PromptTooLongError, RequestDeclinedError, SloError, InvalidRequestError, ChatTemplateError };
