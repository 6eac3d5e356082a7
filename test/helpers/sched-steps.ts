// Drives a scheduler by hand in tests: one step, completed at its predicted end.

import type { Scheduler, StepOutcome, StepPlan } from '../../src/scheduler/types.js';

/**
 * Run one step and complete it: a prefill chunk that finishes its prompt (`prompts`, tracked in
 * `progress`) emits a token, a decode emits 1 (and finishes the request when its id is in `finish`).
 */
export function runStep(s: Scheduler, now: number, progress: Map<string, number>, prompts: Map<string, number>, finish: ReadonlySet<string> = new Set()): StepPlan | null {
  const { plan } = s.step(now);
  if (!plan) return null;
  const out: StepOutcome[] = plan.entries.map((e) => {
    if (e.kind === 'prefill') {
      const done = (progress.get(e.id) ?? 0) + e.tokens;
      progress.set(e.id, done);
      return { id: e.id, emitted: done >= prompts.get(e.id)! ? 1 : 0, finished: false };
    }
    return { id: e.id, emitted: 1, accepted: 0, finished: finish.has(e.id) };
  });
  s.complete(now + plan.predictedMs, out);
  return plan;
}
