// Output handling: a step's tokens for one request become its output. EOS ends the request and is
// not output; max_tokens cuts it; stage markers (and replayed stage boundaries) start its next
// stage; tokens go to the sink, which may stop the request on a stop string; an app that fails
// declined requests sees no token before its request is admitted (they are held).

import type { StepOutcome } from '../scheduler/types.js';
import type { Live } from './live.js';
import type { EmittedToken, FinishReason } from './request.js';

/**
 * Append a step's tokens to `r`. `finish` is called when the request ends here (EOS, max_tokens or
 * a stop string); the returned outcome is what the scheduler learns.
 */
export function deliver(r: Live, tokens: EmittedToken[], atMs: number, finish: (r: Live, reason: FinishReason, atMs: number) => void, accepted?: number): StepOutcome {
  const before = r.generated.length;
  let reason: FinishReason | null = null;
  let kept = tokens.length;
  let eos = false;
  for (let i = 0; i < tokens.length; i++) {
    if (r.spec.stopTokenIds.has(tokens[i]!.id)) {
      // EOS ends the request and is not part of the output.
      kept = i;
      reason = 'stop';
      eos = true;
      break;
    }
    if (before + i + 1 >= r.spec.maxTokens) {
      kept = i + 1;
      reason = 'length';
      break;
    }
  }
  r.unsent.push(...tokens.slice(0, kept));
  if (sendable(r) && send(r, atMs)) reason = 'stop';
  const out = tokens.slice(0, Math.max(0, Math.min(kept, r.sent + r.unsent.length - before)));
  let stageStartedAt: number | undefined;
  for (let i = 0; i < out.length; i++) {
    const index = before + i;
    if (r.stageAt !== null && index === r.stageAt) {
      stageStartedAt = index;
      r.timeline.stageStarts.push(index);
      r.stageAt = r.boundaries.shift() ?? null;
    }
    if (r.spec.stageMarkerIds?.has(out[i]!.id) && r.timeline.stageStarts.length + (r.stageAt === null ? 0 : 1) < r.spec.stages.length) r.stageAt = index + 1;
    r.generated.push(out[i]!.id);
    r.timeline.tokenTimes.push(atMs);
  }
  // An EOS counts as emitted for the scheduler (the request ends here, so its KV mirror is moot).
  const emitted = out.length + (eos ? 1 : 0);
  if (reason) finish(r, reason, atMs);
  return { id: r.spec.id, emitted, finished: reason !== null, ...(accepted !== undefined ? { accepted } : {}), ...(stageStartedAt !== undefined ? { stageStartedAt } : {}) };
}

/** An app that fails declined requests sees no token before its request is admitted. */
export function sendable(r: Live): boolean {
  return r.spec.onDecline === 'best-effort' || r.decision === 'admitted';
}

/** Hand the unsent tokens to the sink; true when it stopped the request (the rest are dropped). */
export function send(r: Live, atMs: number): boolean {
  if (r.unsent.length === 0) return false;
  const batch = r.unsent;
  r.unsent = [];
  const verdict = r.sink.onTokens(batch, atMs);
  if (verdict) {
    r.sent += Math.max(0, Math.min(batch.length, verdict.stopAfter));
    return true;
  }
  r.sent += batch.length;
  return false;
}
