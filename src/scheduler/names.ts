// The scheduler names (what each means: registry.ts) with their labels and checks, in a module of
// their own: the page (the demo's select, createEngine's option check) needs the names without
// bundling any scheduler code.

export const SCHEDULER_NAMES = ['slos', 'edf', 'fcfs', 'fcfs+sd', 'sarathi', 'vllm-v0', 'sarathi-paper'] as const;
export type SchedulerName = (typeof SCHEDULER_NAMES)[number];

/** A short human name per scheduler (the demo's select, reports). */
export const SCHEDULER_LABELS: Readonly<Record<SchedulerName, string>> = {
  slos: 'SLOs-Serve',
  edf: 'EDF (no admission)',
  fcfs: 'FCFS (vLLM v1)',
  'fcfs+sd': 'FCFS + speculation',
  sarathi: 'Sarathi-Serve',
  'vllm-v0': 'vLLM v0 (paper baseline)',
  'sarathi-paper': 'Sarathi (paper baseline)',
};

/** A name or setting the registry does not know, or one the context cannot run. */
export class SchedulerNameError extends RangeError {
  override name = 'SchedulerNameError';
}

export function isSchedulerName(x: unknown): x is SchedulerName {
  return typeof x === 'string' && (SCHEDULER_NAMES as readonly string[]).includes(x);
}

export function checkSchedulerName(x: unknown): SchedulerName {
  if (!isSchedulerName(x)) throw new SchedulerNameError(`scheduler '${String(x)}' is not one of ${SCHEDULER_NAMES.join(', ')}`);
  return x;
}
