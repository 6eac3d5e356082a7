// Float64 reference for penalties and logit bias (semantics: src/sampling/penalties.ts), applied to
// one row of logits from its context, independently of the entry lists the GPU path builds.

import type { Penalties } from '../sampling/penalties.js';

/** `logits` (one row) adjusted for a row whose context is `context` (prompt: the first `promptLength`). */
export function applyPenaltiesRef(logits: ArrayLike<number>, p: Penalties, context: readonly number[], promptLength: number): Float64Array {
  const out = Float64Array.from(logits as ArrayLike<number>);
  const inContext = new Set(context);
  const outputCount = new Map<number, number>();
  for (const t of context.slice(promptLength)) outputCount.set(t, (outputCount.get(t) ?? 0) + 1);
  for (let t = 0; t < out.length; t++) {
    let l = out[t]!;
    if (p.repetition !== 1 && inContext.has(t)) l = l > 0 ? l / p.repetition : l * p.repetition;
    const c = outputCount.get(t) ?? 0;
    if (c > 0) l -= p.frequency * c + p.presence;
    out[t] = l + (p.logitBias.get(t) ?? 0);
  }
  return out;
}
