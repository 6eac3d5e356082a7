// The scheduler benchmark's core: workloads (generated scenarios or a trace file, one trace per seed
// at a base rate), scheduler variants (each baseline's tuning sweep), attainment at a rate, and the
// capacity search. Pure TypeScript; the CLI (src/cli/bench-sched.ts) adds workers and reports.
//
// Choices, written down:
// - TPOT SLOs of generated scenarios scale with the profile: tight = 2x and loose = 4x the zero-load
//   decode step (50 and 100 ms under the paper's profile, whose decode step is 24.9 ms).
// - Attainment at a rate pools every seed's requests, minus the first and last 10% by arrival.
// - Speculation (slos, fcfs+sd) is used only with a profile that measured draft cost (some k2 > 0).
// - With `prefixCache`, generated scenarios mark their shared prefixes (the same lengths and times as
//   without) and the simulator models the engine's prefix cache over the whole KV budget
//   (prefix-cache.ts): a tool round hits its conversation so far, a request its app's shared prefix.

import { FcfsScheduler, sarathiBudget } from '../scheduler/fcfs.js';
import type { PerformanceModel } from '../scheduler/perf-model.js';
import { judgeRequest } from '../scheduler/attainment.js';
import { SlosScheduler } from '../scheduler/slos/scheduler.js';
import type { Scheduler } from '../scheduler/types.js';
import { findCapacity, type CapacityPoint } from './capacity.js';
import type { PrefixCacheConfig } from './prefix-cache.js';
import { generateScenario, type ScenarioName } from './scenarios.js';
import { simulate } from './simulator.js';
import { compressTrace, parseTrace, resolveTrace, type ResolvedTrace, type Trace } from './trace.js';

export const SCHEDULERS = ['slos', 'fcfs', 'fcfs+sd', 'sarathi', 'edf'] as const;
export type SchedulerName = (typeof SCHEDULERS)[number];

export interface Variant {
  scheduler: SchedulerName;
  /** e.g. 'fcfs budget=2048', 'fcfs+sd k=2', 'slos reserve=max_tokens'. specK: fcfs+sd's fixed k, slos's longest. */
  label: string;
  maxBatchedTokens?: number;
  specK?: number;
  reservation?: 'p90' | 'max_tokens';
}

export interface BenchSetup {
  profile: PerformanceModel;
  kvTokens: number;
  pageSize: number;
  seeds: number[];
  requests: number;
  replicas: number;
  arrivals: 'poisson' | 'bursty';
  contextTokens: number;
  /** Default acceptance rate where the trace gives none. */
  alpha: number;
  /** Model the engine's prefix cache (default off). */
  prefixCache?: boolean;
}

export interface Workload {
  name: string;
  /** Output lengths per app from a warm-up trace (other seeds): the p90 reservations' history. */
  history: Record<string, number[]>;
  /** One trace per seed (a trace file: the same trace, seeds vary acceptance draws only). */
  traces: ResolvedTrace[];
  /** Requests per second of the traces as built (rate r compresses time by r / baseRate). */
  baseRate: number;
}

export interface CapacityResult {
  scenario: string;
  variant: Variant;
  capacityRps: number;
  /** Attainment at the capacity rate. */
  attainment: number;
  points: CapacityPoint[];
}

export function decodeStepMs(profile: PerformanceModel): number {
  return profile.predictRaw({ tokens: 1 });
}

export function hasDraftCost(profile: PerformanceModel): boolean {
  return profile.profile.pieces.some((p) => p.k2 > 0);
}

export function tpotsFor(profile: PerformanceModel): { tight: number; loose: number } {
  const step = decodeStepMs(profile);
  return { tight: Math.round(2 * step * 10) / 10, loose: Math.round(4 * step * 10) / 10 };
}

/** Each scheduler's variants: the tuning sweep (baselines) or the reservation policies (slos). */
export function variantsFor(name: SchedulerName, setup: BenchSetup): Variant[] {
  const maxStep = setup.profile.profile.maxTokensPerStep;
  const budgets = [512, 1024, 2048, 4096, 8192].filter((b) => b <= maxStep);
  if (budgets.length === 0) budgets.push(maxStep);
  switch (name) {
    case 'slos':
      // Speculation is a setting like the baselines' budgets: swept where the profile has drafts.
      return [
        { scheduler: 'slos', label: 'slos reserve=p90', reservation: 'p90', specK: 0 },
        ...(hasDraftCost(setup.profile) ? [{ scheduler: 'slos' as const, label: 'slos reserve=p90 spec<=4', reservation: 'p90' as const, specK: 4 }] : []),
        { scheduler: 'slos', label: 'slos reserve=max_tokens', reservation: 'max_tokens', specK: 0 },
      ];
    case 'fcfs':
      return budgets.map((b) => ({ scheduler: 'fcfs', label: `fcfs budget=${b}`, maxBatchedTokens: b }));
    case 'fcfs+sd':
      if (!hasDraftCost(setup.profile)) return [];
      return [1, 2, 4].map((k) => ({ scheduler: 'fcfs+sd', label: `fcfs+sd k=${k}`, specK: k }));
    case 'sarathi':
      return [{ scheduler: 'sarathi', label: 'sarathi' }];
    case 'edf':
      return [{ scheduler: 'edf', label: 'edf' }];
  }
}

export function makeScheduler(v: Variant, setup: BenchSetup, tightestTpotMs: number, history: Record<string, number[]> = {}): Scheduler {
  const model = setup.profile;
  const kv = { pages: Math.floor(setup.kvTokens / setup.pageSize), pageSize: setup.pageSize };
  switch (v.scheduler) {
    case 'slos':
      return new SlosScheduler({ model, kv, maxSpec: hasDraftCost(model) ? (v.specK ?? 0) : 0, reservation: v.reservation ?? 'p90', lengthHistory: history });
    case 'edf':
      return new SlosScheduler({ model, kv, admission: false });
    case 'fcfs':
      return new FcfsScheduler({ model, kv, maxBatchedTokens: v.maxBatchedTokens ?? 2048 });
    case 'fcfs+sd':
      return new FcfsScheduler({ model, kv, maxBatchedTokens: v.maxBatchedTokens ?? 2048, specK: v.specK ?? 2 });
    case 'sarathi':
      return new FcfsScheduler({ model, kv, order: 'sarathi', maxBatchedTokens: sarathiBudget(model, tightestTpotMs, model.profile.maxTokensPerStep) });
  }
}

export function scenarioWorkload(name: ScenarioName, setup: BenchSetup): Workload {
  const { tight, loose } = tpotsFor(setup.profile);
  const traces = setup.seeds.map((seed) =>
    resolveTrace(
      generateScenario(name, { requests: setup.requests, ratePerSec: 1, seed, arrivals: setup.arrivals, tightTpotMs: tight, looseTpotMs: loose, maxPromptTokens: Math.min(8192, setup.contextTokens - 256), ...(setup.prefixCache ? { prefixes: true } : {}) }),
      { contextTokens: setup.contextTokens },
    ),
  );
  const warm = resolveTrace(generateScenario(name, { requests: 200, ratePerSec: 1, seed: 1_000_003, tightTpotMs: tight, looseTpotMs: loose, maxPromptTokens: Math.min(8192, setup.contextTokens - 256) }), { contextTokens: setup.contextTokens });
  return { name, traces, baseRate: 1, history: lengthHistory(warm) };
}

export function traceWorkload(name: string, json: unknown, setup: BenchSetup): Workload {
  const trace: Trace = parseTrace(json);
  const resolved = resolveTrace(trace, { contextTokens: setup.contextTokens });
  const reqs = resolved.requests;
  const span = reqs.length > 1 ? (reqs[reqs.length - 1]!.arrivalMs - reqs[0]!.arrivalMs) / 1000 : 1;
  const baseRate = span > 0 ? (reqs.length - 1) / span : 1;
  // A trace file has no second sample: its own first 10% (excluded from attainment) warm the history.
  return { name, traces: setup.seeds.map(() => resolved), baseRate, history: lengthHistory({ apps: resolved.apps, requests: reqs.slice(0, Math.max(1, Math.floor(reqs.length * 0.1))) }) };
}

/** Output lengths per app (per round for tool apps, as the scheduler sees rounds). */
export function lengthHistory(trace: ResolvedTrace): Record<string, number[]> {
  const out: Record<string, number[]> = {};
  for (const r of trace.requests) for (const round of r.rounds) (out[r.app] ??= []).push(Math.min(round.maxTokens, round.stageTokens.reduce((a, b) => a + b, 0)));
  return out;
}

function tightestTpot(w: Workload): number {
  let t = Infinity;
  for (const app of w.traces[0]!.apps.values()) for (const s of [...app.stages, ...(app.finalStages ?? [])]) t = Math.min(t, s.tpotMs);
  return t;
}

/** The simulator's prefix cache for a setup: over the whole KV budget, in the scheduler's pages. */
export function prefixCacheConfig(setup: BenchSetup): PrefixCacheConfig {
  return { enabled: true, capacityTokens: Math.floor(setup.kvTokens / setup.pageSize) * setup.pageSize, pageSize: setup.pageSize };
}

/** Pooled attainment over seeds at `rate` requests per second, the first and last 10% excluded. */
/**
 * With `options.target`, a run stops as soon as the misses make the target unreachable and the
 * value returned is an upper bound on the attainment (below the target); the search needs no more.
 */
export function attainmentAt(w: Workload, v: Variant, setup: BenchSetup, rate: number, options: { target?: number } = {}): number {
  let met = 0;
  let counted = 0;
  const tight = tightestTpot(w);
  // Misses allowed over all seeds before the target is out of reach (then stop: a bound is enough).
  const total = w.traces.reduce((a, t) => a + t.requests.length - 2 * Math.floor(t.requests.length * 0.1), 0);
  let allowed = options.target === undefined ? Infinity : Math.floor(total - options.target * total + 1e-9);
  for (const [i, base] of w.traces.entries()) {
    const trace = compressTrace(base, rate / w.baseRate);
    const n = trace.requests.length;
    const from = Math.floor(n * 0.1);
    const to = n - Math.floor(n * 0.1);
    const result = simulate({
      trace, clock: setup.profile, makeScheduler: () => makeScheduler(v, setup, tight, w.history), replicas: setup.replicas, seed: setup.seeds[i]!, alpha: setup.alpha,
      ...(Number.isFinite(allowed) ? { missBudget: { from, to, max: allowed } } : {}),
      ...(setup.prefixCache ? { prefixCache: prefixCacheConfig(setup) } : {}),
    });
    // Upper bound: every request not yet known to miss counted as met.
    if (result.stoppedEarly !== undefined) return (total - (counted - met) - result.stoppedEarly) / total;
    let missedHere = 0;
    for (let j = from; j < to; j++) {
      counted++;
      if (judgeRequest(result.timelines[j]!).met) met++;
      else missedHere++;
    }
    allowed -= missedHere;
  }
  return counted > 0 ? met / counted : 1;
}

/** A start rate that should pass: an eighth of the prefill-bound rate at zero load. */
export function startRate(w: Workload, setup: BenchSetup): number {
  const m = setup.profile.profile.maxTokensPerStep;
  const tokensPerSec = (m / setup.profile.predictRaw({ tokens: m })) * 1000 * setup.replicas;
  let prompt = 0;
  let outputs = 0;
  for (const r of w.traces[0]!.requests) {
    for (const round of r.rounds) {
      prompt += round.promptTokens;
      outputs += round.stageTokens.reduce((a, b) => a + b, 0);
    }
  }
  const n = Math.max(1, w.traces[0]!.requests.length);
  // Decode rows cost a step each at low batch: count outputs as tokens too (a crude, safe bound).
  return Math.max(1e-3, tokensPerSec / ((prompt + outputs) / n) / 8);
}

export function capacityOf(w: Workload, v: Variant, setup: BenchSetup): CapacityResult {
  const search = findCapacity((rate) => attainmentAt(w, v, setup, rate, { target: 0.9 }), { start: startRate(w, setup), target: 0.9 });
  const at = search.points.find((p) => p.rate === search.capacity);
  return { scenario: w.name, variant: v, capacityRps: search.capacity, attainment: at?.attainment ?? 0, points: search.points };
}
