// A bench-sched worker process: reads capacity jobs as JSON lines on stdin, writes one JSON line of
// results per job on stdout. Started by src/cli/bench-sched.ts through scripts/run-ts.mjs, so several
// cores search capacities at once (each search is sequential: a bisection).

import { createInterface } from 'node:readline';
import { PerformanceModel } from '../scheduler/perf-model.js';
import { capacityOf, scenarioWorkload, traceWorkload, type BenchSetup, type CapacityResult, type Variant, type Workload } from './bench-sched.js';
import type { ScenarioName } from './scenarios.js';

export interface BenchJob {
  id: number;
  /** A scenario name, or a trace: its name and parsed JSON. */
  workload: { scenario: ScenarioName } | { name: string; trace: unknown };
  variant: Variant;
  profile: unknown;
  setup: Omit<BenchSetup, 'profile'>;
}

export interface BenchJobResult {
  id: number;
  result?: CapacityResult;
  error?: string;
  ms: number;
}

export function runJob(job: BenchJob, cache: Map<string, Workload>): BenchJobResult {
  const t0 = performance.now();
  try {
    const setup: BenchSetup = { ...job.setup, profile: PerformanceModel.fromProfile(job.profile) };
    const key = JSON.stringify([job.workload, job.setup, job.profile]);
    let w = cache.get(key);
    if (!w) {
      w = 'scenario' in job.workload ? scenarioWorkload(job.workload.scenario, setup) : traceWorkload(job.workload.name, job.workload.trace, setup);
      cache.set(key, w);
    }
    return { id: job.id, result: capacityOf(w, job.variant, setup), ms: performance.now() - t0 };
  } catch (e) {
    return { id: job.id, error: e instanceof Error ? `${e.name}: ${e.message}` : String(e), ms: performance.now() - t0 };
  }
}

export async function main(): Promise<number> {
  const cache = new Map<string, Workload>();
  const lines = createInterface({ input: process.stdin });
  for await (const line of lines) {
    if (line.trim() === '') continue;
    const result = runJob(JSON.parse(line) as BenchJob, cache);
    await new Promise<void>((resolve) => process.stdout.write(`${JSON.stringify(result)}\n`, () => resolve()));
  }
  return 0;
}
