// createEngine's numeric and structural options, checked before anything is downloaded or
// allocated: a bad value is an EngineOptionError naming the option, what it was and what is valid
// (once, kvCacheBytes NaN reached Dawn as "no overload matched for createBuffer", -1 silently gave
// one page, maxTokensPerStep 0 was ignored, conversationTtlMs NaN never expired, maxSpec 1000 was
// accepted). Checks that need the model (its bytes per KV page, its layers) are in load.ts, with
// the same error.

import { describeValue } from '../model/describe.js';
import type { HostLoadOptions } from './protocol.js';

/** The longest speculation per step createEngine accepts (the verify kernels' widest tested k). */
export const MAX_SPEC_LIMIT = 16;

/** A createEngine option with a value it cannot use. */
export class EngineOptionError extends Error {
  override name = 'EngineOptionError';

  constructor(
    readonly option: string,
    readonly problem: string,
  ) {
    super(`createEngine option '${option}' ${problem}`);
  }
}

const show = (v: unknown): string => (typeof v === 'number' ? String(v) : describeValue(v));

function integer(option: string, v: unknown, min: number, max: number): void {
  if (v === undefined) return;
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) throw new EngineOptionError(option, `is ${show(v)}; expected an integer in ${min}..${max}`);
}

function number(option: string, v: unknown, min: number, allowInfinity: boolean): void {
  if (v === undefined) return;
  if (typeof v !== 'number' || Number.isNaN(v) || v < min || (!allowInfinity && !Number.isFinite(v))) {
    throw new EngineOptionError(option, `is ${show(v)}; expected a ${allowInfinity ? '' : 'finite '}number >= ${min}${allowInfinity ? ' (Infinity: never)' : ''}`);
  }
}

export function checkLoadOptions(o: HostLoadOptions): void {
  if (o === null || typeof o !== 'object') throw new EngineOptionError('options', `are ${show(o)}; expected an object with at least { model }`);
  if (o.model === undefined || o.model === null || o.model === '') throw new EngineOptionError('model', `is ${show(o.model)}; expected a hub repo id, a URL, a folder, or files`);
  if (o.kvCacheBytes !== undefined && (typeof o.kvCacheBytes !== 'number' || !Number.isFinite(o.kvCacheBytes) || o.kvCacheBytes <= 0)) {
    throw new EngineOptionError('kvCacheBytes', `is ${show(o.kvCacheBytes)}; expected a finite number of bytes > 0 (default 256 MiB)`);
  }
  integer('maxTokensPerStep', o.maxTokensPerStep, 1, 1 << 20);
  integer('maxSpec', o.maxSpec, 0, MAX_SPEC_LIMIT);
  number('calibrationBudgetMs', o.calibrationBudgetMs, 0, false);
  if (o.selfSpeculation !== undefined) {
    if (o.selfSpeculation === null || typeof o.selfSpeculation !== 'object') throw new EngineOptionError('selfSpeculation', `is ${show(o.selfSpeculation)}; expected { layers: N }`);
    integer('selfSpeculation.layers', o.selfSpeculation.layers ?? Number.NaN, 1, 1 << 16);
  }
  if (o.draftModel !== undefined && o.selfSpeculation !== undefined) throw new EngineOptionError('selfSpeculation', 'is given with draftModel; give one of them');
  if (o.prefixCaching !== undefined && typeof o.prefixCaching !== 'boolean') {
    if (o.prefixCaching === null || typeof o.prefixCaching !== 'object')
      throw new EngineOptionError('prefixCaching', `is ${show(o.prefixCaching)}; expected true, false or { shareAcrossApps, conversationTtlMs }`);
    number('prefixCaching.conversationTtlMs', o.prefixCaching.conversationTtlMs, 0, true);
  }
}
