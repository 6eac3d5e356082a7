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

import type { AttainmentMetric } from '../scheduler/attainment.js';
import { scoreRequest } from '../scheduler/attainment.js';
import type { PerformanceModel } from '../scheduler/perf-model.js';
import { ablations, createScheduler, SCHEDULER_NAMES, sweep, type SchedulerContext, type SchedulerName, type SchedulerVariant } from '../scheduler/registry.js';
import type { Scheduler } from '../scheduler/types.js';
import { CapacityUnboundedError, findCapacity, type CapacityPoint } from './capacity.js';
import type { PrefixCacheConfig } from './prefix-cache.js';
import { remoteLike } from './remote-replica.js';
import { generateScenario, type ScenarioName } from './scenarios.js';
import { simulate } from './simulator.js';
import { compressTrace, parseTrace, resolveTrace, type ResolvedTrace, type Trace } from './trace.js';

export const SCHEDULERS = SCHEDULER_NAMES;
export type { SchedulerName } from '../scheduler/registry.js';
export type Variant = SchedulerVariant;

/** Longest speculation the simulator offers (slos adaptive up to it; fcfs+sd and fixed k sweep 1, 2, 4). */
export const SIM_MAX_SPEC = 4;

export interface BenchSetup {
  profile: PerformanceModel;
  kvTokens: number;
  pageSize: number;
  seeds: number[];
  requests: number;
  replicas: number;
  arrivals: 'poisson' | 'bursty';
  /** Coefficient of variation of bursty arrival gaps (default 3.5). */
  cv?: number;
  /** How attainment is scored (default 'strict': ours). */
  metric?: AttainmentMetric;
  contextTokens: number;
  /** Default acceptance rate where the trace gives none. */
  alpha: number;
  /** Model the engine's prefix cache (default off). */
  prefixCache?: boolean;
  /** Remote replicas behind the Router's policy (sim/remote-replica.ts remoteLike; default 0). */
  remotes?: number;
}

export interface Workload {
  name: string;
  /** Output lengths per app from a warm-up trace (other seeds): the reservations' warm start. */
  history: Record<string, number[]>;
  /** One trace per seed (a trace file: the same trace, seeds vary acceptance draws only). */
  traces: ResolvedTrace[];
  /** Requests per second of each trace as built, measured over its span (rate r compresses trace i by r / baseRates[i]). */
  baseRates: number[];
}

export interface CapacityResult {
  scenario: string;
  variant: Variant;
  capacityRps: number;
  /** Attainment at the capacity rate. */
  attainment: number;
  /** At the capacity rate: admitted requests that missed, over admitted requests (the model is the clock). */
  admittedMissRate: number;
  /** At the capacity rate: declined requests over all requests. */
  declineRate: number;
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

/** The registry's context for a setup and a workload. */
export function schedulerContext(setup: BenchSetup, tightestTpotMs: number, history: Record<string, number[]> = {}): SchedulerContext {
  return {
    model: setup.profile,
    kv: { pages: Math.floor(setup.kvTokens / setup.pageSize), pageSize: setup.pageSize },
    maxSpec: hasDraftCost(setup.profile) ? SIM_MAX_SPEC : 0,
    tightestTpotMs,
    lengthHistory: history,
  };
}

/** Each scheduler's variants: its tuning sweep (the registry's). */
export function variantsFor(name: SchedulerName, setup: BenchSetup): Variant[] {
  return sweep(name, schedulerContext(setup, 1));
}

/** SLOs-Serve's ablation variants (the registry's). */
export function ablationVariants(setup: BenchSetup): Variant[] {
  return ablations(schedulerContext(setup, 1));
}

export function makeScheduler(v: Variant, setup: BenchSetup, tightestTpotMs: number, history: Record<string, number[]> = {}): Scheduler {
  return createScheduler(v.scheduler, schedulerContext(setup, tightestTpotMs, history), v.settings);
}

export function scenarioWorkload(name: ScenarioName, setup: BenchSetup): Workload {
  const { tight, loose } = tpotsFor(setup.profile);
  const traces = setup.seeds.map((seed) =>
    resolveTrace(
      generateScenario(name, {
        requests: setup.requests,
        ratePerSec: 1,
        seed,
        arrivals: setup.arrivals,
        ...(setup.cv !== undefined ? { cv: setup.cv } : {}),
        tightTpotMs: tight,
        looseTpotMs: loose,
        maxPromptTokens: Math.min(8192, setup.contextTokens - 256),
        ...(setup.prefixCache ? { prefixes: true } : {}),
      }),
      { contextTokens: setup.contextTokens },
    ),
  );
  const warm = resolveTrace(
    generateScenario(name, { requests: 200, ratePerSec: 1, seed: 1_000_003, tightTpotMs: tight, looseTpotMs: loose, maxPromptTokens: Math.min(8192, setup.contextTokens - 256) }),
    { contextTokens: setup.contextTokens },
  );
  return { name, traces, baseRates: traces.map(measuredRate), history: lengthHistory(warm) };
}

export function traceWorkload(name: string, json: unknown, setup: BenchSetup): Workload {
  const trace: Trace = parseTrace(json);
  const resolved = resolveTrace(trace, { contextTokens: setup.contextTokens });
  const reqs = resolved.requests;
  const baseRate = measuredRate(resolved);
  // A trace file has no second sample: its own first 10% (excluded from attainment) warm the history.
  return {
    name,
    traces: setup.seeds.map(() => resolved),
    baseRates: setup.seeds.map(() => baseRate),
    history: lengthHistory({ apps: resolved.apps, requests: reqs.slice(0, Math.max(1, Math.floor(reqs.length * 0.1))) }),
  };
}

/**
 * Requests per second over a trace's span: a rate means arrivals actually seen per second (a
 * generated trace's nominal rate 1 is only its expectation: a bursty trace's span varies a lot).
 */
export function measuredRate(trace: ResolvedTrace): number {
  const reqs = trace.requests;
  const span = reqs.length > 1 ? (reqs[reqs.length - 1]!.arrivalMs - reqs[0]!.arrivalMs) / 1000 : 0;
  return span > 0 ? (reqs.length - 1) / span : 1;
}

/** Output lengths per app (per round for tool apps, as the scheduler sees rounds). */
export function lengthHistory(trace: ResolvedTrace): Record<string, number[]> {
  // No prototype: an app may be named __proto__.
  const out = Object.create(null) as Record<string, number[]>;
  for (const r of trace.requests)
    for (const round of r.rounds)
      (out[r.app] ??= []).push(
        Math.min(
          round.maxTokens,
          round.stageTokens.reduce((a, b) => a + b, 0),
        ),
      );
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

export interface AttainmentDetail {
  attainment: number;
  /** Scored requests (rounds under the paper metric) and those met. */
  units: number;
  met: number;
  /** Requests (not rounds) counted, admitted (never declined), admitted that missed, declined. */
  requests: number;
  admitted: number;
  admittedMissed: number;
  declined: number;
  /** The run stopped as soon as the target was out of reach: `attainment` is an upper bound. */
  bounded: boolean;
}

/**
 * Pooled attainment over seeds at `rate` requests per second, the first and last 10% of requests by
 * arrival excluded, scored by `setup.metric`. With `options.target`, a run stops as soon as the
 * misses make the target unreachable and the attainment returned is an upper bound (below the
 * target); the search needs no more.
 */
export function attainmentDetail(w: Workload, v: Variant, setup: BenchSetup, rate: number, options: { target?: number } = {}): AttainmentDetail {
  const metric = setup.metric ?? 'strict';
  const d: AttainmentDetail = { attainment: 1, units: 0, met: 0, requests: 0, admitted: 0, admittedMissed: 0, declined: 0, bounded: false };
  const tight = tightestTpot(w);
  const unitsOf = (t: ResolvedTrace, j: number): number => (metric === 'paper' ? Math.max(1, t.requests[j]!.rounds.length) : 1);
  // Units over all seeds; misses allowed before the target is out of reach (then stop: a bound is enough).
  let total = 0;
  for (const t of w.traces) {
    const n = t.requests.length;
    for (let j = Math.floor(n * 0.1); j < n - Math.floor(n * 0.1); j++) total += unitsOf(t, j);
  }
  let allowed = options.target === undefined ? Infinity : Math.floor(total - options.target * total + 1e-9);
  for (const [i, base] of w.traces.entries()) {
    const trace = compressTrace(base, rate / w.baseRates[i]!);
    const n = trace.requests.length;
    const from = Math.floor(n * 0.1);
    const to = n - Math.floor(n * 0.1);
    const result = simulate({
      trace,
      clock: setup.profile,
      makeScheduler: () => makeScheduler(v, setup, tight, w.history),
      replicas: setup.replicas,
      seed: setup.seeds[i]!,
      alpha: setup.alpha,
      ...(Number.isFinite(allowed) ? { missBudget: { from, to, max: allowed } } : {}),
      ...(setup.prefixCache ? { prefixCache: prefixCacheConfig(setup) } : {}),
      ...(setup.remotes ? { remotes: Array.from({ length: setup.remotes }, (_, k) => remoteLike(setup.profile, `remote-${k}`, { kvTokens: setup.kvTokens })) } : {}),
    });
    // Upper bound: every unit not yet known to miss counted as met (each certain miss is >= 1 unit).
    if (result.stoppedEarly !== undefined) return { ...d, attainment: (total - (d.units - d.met) - result.stoppedEarly) / total, bounded: true };
    let missedHere = 0;
    for (let j = from; j < to; j++) {
      const t = result.timelines[j]!;
      const score = scoreRequest(t, metric, base.requests[j]!.rounds.length);
      d.units += score.units;
      d.met += score.met;
      missedHere += score.units - score.met;
      d.requests++;
      if (t.declined) d.declined++;
      else {
        d.admitted++;
        if (!scoreRequest(t, 'strict').met) d.admittedMissed++;
      }
    }
    allowed -= missedHere;
  }
  d.attainment = d.units > 0 ? d.met / d.units : 1;
  return d;
}

export function attainmentAt(w: Workload, v: Variant, setup: BenchSetup, rate: number, options: { target?: number } = {}): number {
  return attainmentDetail(w, v, setup, rate, options).attainment;
}

/** A start rate that should pass: an eighth of the prefill-bound rate at zero load. */
export function startRate(w: Workload, setup: BenchSetup): number {
  const m = setup.profile.profile.maxTokensPerStep;
  const tokensPerSec = (m / setup.profile.predictRaw({ tokens: m })) * 1000 * (setup.replicas + (setup.remotes ?? 0));
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
  if (search.unbounded) throw new CapacityUnboundedError(w.name, w.traces[0]!.requests.length, search.capacity);
  const at = search.points.find((p) => p.rate === search.capacity);
  // The capacity point once more, run to the end, for its admitted misses and declines.
  const detail = search.capacity > 0 ? attainmentDetail(w, v, setup, search.capacity) : null;
  return {
    scenario: w.name,
    variant: v,
    capacityRps: search.capacity,
    attainment: at?.attainment ?? 0,
    admittedMissRate: detail && detail.admitted > 0 ? detail.admittedMissed / detail.admitted : 0,
    declineRate: detail && detail.requests > 0 ? detail.declined / detail.requests : 0,
    points: search.points,
  };
}
