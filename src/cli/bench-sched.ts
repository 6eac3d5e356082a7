// `webslo bench-sched`: serving capacity of SLOs-Serve and the baselines in the simulator.
//   webslo bench-sched [--scenario NAME|all] [--trace FILE] [--profile FILE|paper|default|h200]
//                      [--scheduler slos,edf,fcfs,fcfs+sd,sarathi,vllm-v0,sarathi-paper] [--json]
//                      [--seeds 3] [--requests 600] [--replicas 1] [--arrivals poisson|bursty] [--cv 3.5]
//                      [--metric strict|paper] [--ablations] [--kv-tokens N] [--prefix-cache]
//                      [--remotes N] [--workers N] [--out DIR]
// Scheduler names and sweeps come from the registry (src/scheduler/registry.ts). --arrivals bursty
// draws Gamma gaps with coefficient of variation --cv once at rate 1 and time-stretches that trace
// to each rate (bursts shrink as the rate drops, as the paper's replayed traces do). --metric paper
// scores as the SLOs-Serve authors do (each tool round alone, the answer TPOT, the final token);
// strict (ours, the default) needs every round and stage. --ablations adds SLOs-Serve's ablations
// (speculation off, fixed k, reservation modes including the benchmark-only oracle).
// --prefix-cache runs the simulator with its model of the engine's prefix cache (src/sim/prefix-cache.ts).
// --remotes N puts N remote replicas (src/sim/remote-replica.ts: peers of the local replica, 20 ms
// away, 256 at once, KV-limited) behind the Router's policy: what the local planner does not admit goes there.
// Capacity searches run in worker processes (one per core by default). --json prints
// [{"scenario", "scheduler", "label", "capacity_rps", "attainment", "admitted_miss_rate" (scored
// strictly), "decline_rate", "metric", "arrivals", "replicas", "remotes", "ablation"}] (each scheduler at its best
// setting, then each ablation); otherwise a markdown
// table. --out DIR also writes bench-sched-<profile>[-xN][-bursty-cvC][-paper-metric].{md,svg,json}.

import { spawn } from 'node:child_process';
import { readFile, mkdir, writeFile } from 'node:fs/promises';
import { availableParallelism } from 'node:os';
import { basename, join } from 'node:path';
import { createInterface } from 'node:readline';
import { PerformanceModel } from '../scheduler/perf-model.js';
import { bestRows, markdownReport, svgPlot } from '../sim/bench-report.js';
import { ablationVariants, SCHEDULERS, variantsFor, type BenchSetup, type CapacityResult, type SchedulerName } from '../sim/bench-sched.js';
import type { BenchJob, BenchJobResult } from '../sim/bench-worker.js';
import { PROFILES, type ProfileName } from '../sim/profiles.js';
import { SCENARIOS, type ScenarioName } from '../sim/scenarios.js';
import { parseTrace } from '../sim/trace.js';
import { numberFlag, stringFlag, UsageError, type ParsedArgs } from './args.js';
import { benchWorkerProcess } from './bench-worker-process.js';

export const BENCH_SCHED_USAGE = `  webslo bench-sched [--scenario NAME|all] [--trace FILE] [--profile FILE|${Object.keys(PROFILES).join('|')}]
                     [--scheduler ${SCHEDULERS.join(',')}] [--json] [--seeds N] [--requests N]
                     [--replicas N] [--arrivals poisson|bursty] [--cv C] [--metric strict|paper] [--ablations]
                     [--kv-tokens N] [--prefix-cache] [--remotes N] [--workers N] [--out DIR]
                     (serving capacity in the simulator; scenarios: ${SCENARIOS.join(', ')})`;

const FLAGS = new Set([
  'scenario',
  'trace',
  'profile',
  'scheduler',
  'json',
  'seeds',
  'requests',
  'replicas',
  'arrivals',
  'cv',
  'metric',
  'ablations',
  'kv-tokens',
  'prefix-cache',
  'remotes',
  'workers',
  'out',
]);

export async function benchSchedCommand(args: ParsedArgs): Promise<void> {
  for (const name of args.flags.keys()) if (!FLAGS.has(name)) throw new UsageError(`bench-sched: unknown option --${name} (expected ${[...FLAGS].map((f) => `--${f}`).join(', ')})`);
  const profileArg = stringFlag(args, 'profile') ?? 'default';
  let profileJson: unknown;
  let profileName: string;
  if (profileArg in PROFILES) {
    profileJson = PROFILES[profileArg as ProfileName];
    profileName = profileArg;
  } else {
    profileJson = JSON.parse(await readFile(profileArg, 'utf8'));
    profileName = basename(profileArg).replace(/\.json$/, '');
  }
  const profile = PerformanceModel.fromProfile(profileJson);
  const kvTokens = numberFlag(args, 'kv-tokens', (n) => Number.isInteger(n) && n > 0, 'a positive integer') ?? profile.profile.kvCapacityTokens;
  if (kvTokens === undefined) throw new UsageError(`the profile has no kvCapacityTokens: pass --kv-tokens N`);
  const nSeeds = numberFlag(args, 'seeds', (n) => Number.isInteger(n) && n >= 1, 'an integer >= 1') ?? 3;
  const arrivals = stringFlag(args, 'arrivals') ?? 'poisson';
  if (arrivals !== 'poisson' && arrivals !== 'bursty') throw new UsageError(`--arrivals ${arrivals}: expected poisson or bursty`);
  const cv = numberFlag(args, 'cv', (n) => n > 1 && n <= 10, 'a number in (1, 10] (1 is Poisson)');
  if (cv !== undefined && arrivals !== 'bursty') throw new UsageError('--cv sets the burstiness of --arrivals bursty; add --arrivals bursty');
  const metric = stringFlag(args, 'metric') ?? 'strict';
  if (metric !== 'strict' && metric !== 'paper') throw new UsageError(`--metric ${metric}: expected strict or paper`);
  const setup: Omit<BenchSetup, 'profile'> = {
    kvTokens,
    pageSize: 16,
    seeds: Array.from({ length: nSeeds }, (_, i) => i + 1),
    requests: numberFlag(args, 'requests', (n) => Number.isInteger(n) && n >= 10, 'an integer >= 10') ?? 600,
    replicas: numberFlag(args, 'replicas', (n) => Number.isInteger(n) && n >= 1, 'an integer >= 1') ?? 1,
    arrivals,
    ...(arrivals === 'bursty' ? { cv: cv ?? 3.5 } : {}),
    metric,
    contextTokens: 8192,
    alpha: 0.7,
    ...(args.flags.has('prefix-cache') ? { prefixCache: true } : {}),
    remotes: numberFlag(args, 'remotes', (n) => Number.isInteger(n) && n >= 0 && n <= 64, 'an integer in 0..64') ?? 0,
  };
  const schedulers = (stringFlag(args, 'scheduler') ?? SCHEDULERS.join(',')).split(',').map((s) => s.trim());
  for (const s of schedulers) if (!(SCHEDULERS as readonly string[]).includes(s)) throw new UsageError(`--scheduler ${s}: expected some of ${SCHEDULERS.join(',')}`);

  const workloads: BenchJob['workload'][] = [];
  const trace = stringFlag(args, 'trace');
  if (trace) {
    let json: unknown;
    try {
      json = JSON.parse(await readFile(trace, 'utf8'));
    } catch (e) {
      throw new UsageError(`--trace ${trace}: ${(e as Error).message}`);
    }
    parseTrace(json); // a TraceError names the bad field before any worker starts
    workloads.push({ name: basename(trace), trace: json });
  }
  const scenario = stringFlag(args, 'scenario') ?? (trace ? undefined : 'all');
  if (scenario === 'all') for (const s of SCENARIOS) workloads.push({ scenario: s });
  else if (scenario !== undefined) {
    if (!(SCENARIOS as readonly string[]).includes(scenario)) throw new UsageError(`--scenario ${scenario}: expected one of ${SCENARIOS.join(', ')} or all`);
    workloads.push({ scenario: scenario as ScenarioName });
  }

  const full: BenchSetup = { ...setup, profile };
  const jobs: BenchJob[] = [];
  const extra = args.flags.has('ablations') ? ablationVariants(full) : [];
  for (const workload of workloads) {
    for (const s of schedulers) for (const variant of variantsFor(s as SchedulerName, full)) jobs.push({ id: jobs.length, workload, variant, profile: profileJson, setup });
    for (const variant of extra) jobs.push({ id: jobs.length, workload, variant, profile: profileJson, setup });
  }
  const workers = numberFlag(args, 'workers', (n) => Number.isInteger(n) && n >= 1, 'an integer >= 1') ?? Math.max(1, Math.min(availableParallelism(), jobs.length));
  const t0 = performance.now();
  const results = await runJobs(jobs, workers, (done, job, ms) => {
    const what = 'scenario' in job.workload ? job.workload.scenario : job.workload.name;
    process.stderr.write(`[webslo] bench-sched: ${done}/${jobs.length} ${what} ${job.variant.label} (${(ms / 1000).toFixed(1)} s)\n`);
  });
  process.stderr.write(`[webslo] bench-sched: ${jobs.length} capacity searches in ${((performance.now() - t0) / 1000).toFixed(0)} s on ${workers} workers\n`);

  const arrivalText = arrivals === 'bursty' ? `bursty arrivals (CV ${setup.cv}, time-stretched)` : 'Poisson arrivals';
  const metricText = metric === 'paper' ? "metric 'paper' (the authors' scoring: each tool round alone, answer TPOT, final token checked)" : "metric 'strict' (every round and stage)";
  const title = `Scheduler capacity under profile '${profileName}' (${profile.profile.model}; ${setup.requests} requests x ${nSeeds} seeds, ${arrivalText}, ${setup.replicas} replica${setup.replicas > 1 ? 's' : ''}${setup.remotes ? ` + ${setup.remotes} remote${setup.remotes > 1 ? 's' : ''} behind the Router` : ''}, KV ${kvTokens} tokens${setup.prefixCache ? ', prefix cache' : ''}; ${metricText})`;
  const markdown = markdownReport(results, title);
  const row = (r: { scenario: string; scheduler: string; label: string; capacityRps: number; attainment: number; admittedMissRate: number; declineRate: number }, ablation: boolean) => ({
    scenario: r.scenario,
    scheduler: r.scheduler,
    label: r.label,
    capacity_rps: r.capacityRps,
    attainment: r.attainment,
    admitted_miss_rate: r.admittedMissRate,
    decline_rate: r.declineRate,
    metric,
    arrivals: arrivals === 'bursty' ? `bursty cv=${setup.cv}` : 'poisson',
    replicas: setup.replicas,
    remotes: setup.remotes ?? 0,
    ablation,
  });
  const rows = [...bestRows(results).map((r) => row(r, false)), ...results.filter((r) => r.variant.ablation).map((r) => row({ ...r, scheduler: r.variant.scheduler, label: r.variant.label }, true))];
  process.stdout.write(args.flags.has('json') ? `${JSON.stringify(rows, null, 2)}\n` : markdown);
  const out = stringFlag(args, 'out');
  if (out) {
    await mkdir(out, { recursive: true });
    const stem = join(
      out,
      `bench-sched-${profileName}${setup.replicas > 1 ? `-x${setup.replicas}` : ''}${setup.remotes ? `-remotes${setup.remotes}` : ''}${arrivals === 'bursty' ? `-bursty-cv${setup.cv}` : ''}${metric === 'paper' ? '-paper-metric' : ''}${setup.prefixCache ? '-prefix-cache' : ''}`,
    );
    await writeFile(`${stem}.md`, markdown);
    await writeFile(`${stem}.svg`, svgPlot(results, title));
    await writeFile(`${stem}.json`, `${JSON.stringify({ title, setup: { ...setup, profile: profileName }, results }, null, 1)}\n`);
    process.stderr.write(`[webslo] wrote ${stem}.{md,svg,json}\n`);
  }
}

/** Run jobs on `n` worker processes (src/sim/bench-worker.ts; bench-worker-process.ts), longest first. */
async function runJobs(jobs: BenchJob[], n: number, progress: (done: number, job: BenchJob, ms: number) => void): Promise<CapacityResult[]> {
  const worker = benchWorkerProcess();
  const queue = [...jobs];
  const results = new Map<number, CapacityResult>();
  let done = 0;
  const one = (): Promise<void> =>
    new Promise((resolve, reject) => {
      const child = spawn(process.execPath, worker.args, { stdio: ['pipe', 'pipe', 'inherit'], cwd: worker.cwd });
      const lines = createInterface({ input: child.stdout });
      const next = (): void => {
        const job = queue.shift();
        if (!job) {
          child.stdin.end();
          return;
        }
        child.stdin.write(`${JSON.stringify(job)}\n`);
      };
      lines.on('line', (line) => {
        const r = JSON.parse(line) as BenchJobResult;
        if (r.error || !r.result) {
          child.kill();
          reject(new Error(`bench-sched job ${r.id} (${JSON.stringify(jobs[r.id]?.variant)}) failed: ${r.error}`));
          return;
        }
        results.set(r.id, r.result);
        progress(++done, jobs[r.id]!, r.ms);
        next();
      });
      child.on('error', reject);
      child.on('exit', (code) => (code === 0 || code === null ? resolve() : reject(new Error(`bench-sched worker exited with ${code}`))));
      next();
    });
  await Promise.all(Array.from({ length: Math.min(n, jobs.length) }, one));
  return jobs.map((j) => {
    const r = results.get(j.id);
    if (!r) throw new Error(`bench-sched job ${j.id} returned no result`);
    return r;
  });
}
