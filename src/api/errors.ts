// Errors rebuilt on the page side from their wire form, so `instanceof` and `name` both work for
// callers: the engine's typed errors keep their names and messages across the worker boundary.

import { InvalidRequestError, ChatTemplateError } from './openai/errors.js';
import { AbortError, DeviceLostError, EngineClosedError, EngineError, PromptTooLongError, RequestDeclinedError } from '../engine/errors.js';
import { SloError } from '../scheduler/slo.js';
import type { WireError } from '../host/protocol.js';

/** A failure from the engine whose class did not cross the boundary: same name and message. */
export class RemoteEngineError extends Error {
  constructor(name: string, message: string) {
    super(message);
    this.name = name;
  }
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
