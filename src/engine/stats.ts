// What engine.stats() reports: per app, requests by outcome, SLO attainment (the simulator's rule,
// src/scheduler/attainment.ts) and TTFT/TPOT percentiles; per step, the batch composition and time.

import { judgeRequest, type RoundTimeline } from '../scheduler/attainment.js';
import type { StageSlo, StepPlan } from '../scheduler/types.js';

export interface LatencySummary {
  count: number;
  p50: number | null;
  p90: number | null;
  p99: number | null;
}

/**
 * A cumulative histogram (Prometheus' shape): `counts[i]` observations <= `bounds[i]` seconds, and
 * `count` in all (the +Inf bucket). Over every completed request since the engine started.
 */
export interface Histogram {
  bounds: readonly number[];
  counts: number[];
  count: number;
  sum: number;
}

/** vLLM's bucket bounds (seconds), so dashboards made for vLLM read webslo's /metrics. */
export const HISTOGRAM_BOUNDS = {
  ttft: [0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10, 20, 40, 80, 160, 640, 2560],
  tpot: [0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75, 1, 2.5, 5, 7.5, 10, 20, 40, 80],
  e2e: [0.3, 0.5, 0.8, 1, 1.5, 2, 2.5, 5, 10, 15, 20, 30, 40, 50, 60, 120, 240, 480, 960, 1920, 7680],
} as const;

function histogram(bounds: readonly number[]): Histogram {
  return { bounds, counts: bounds.map(() => 0), count: 0, sum: 0 };
}

function observe(h: Histogram, seconds: number): void {
  for (let i = 0; i < h.bounds.length; i++) if (seconds <= h.bounds[i]!) h.counts[i]!++;
  h.count++;
  h.sum += seconds;
}

export interface AppStats {
  app: string;
  submitted: number;
  completed: number;
  /** Declined by the planner and failed with SloError. */
  declined: number;
  /** Declined by the planner and served best-effort. */
  bestEffort: number;
  aborted: number;
  failed: number;
  /** Requests still in the engine. */
  running: number;
  /** Of those, requests not started yet: no prompt token computed (waiting for admission or a step; a recomputed preemption waits again). */
  waiting: number;
  /** Finished requests that met their SLO / finished requests (declined ones count as misses); null before any. */
  attainment: number | null;
  /** Completed requests the planner admitted (neither declined nor served best-effort), and those of them that missed their SLO: the planner's broken promises. */
  admitted: number;
  admittedMissed: number;
  /** Over the app's most recent completed requests (LATENCY_WINDOW to twice that). */
  ttftMs: LatencySummary;
  /** Mean time per output token after the first, per request (the same window). */
  tpotMs: LatencySummary;
  /** Prompt tokens submitted, and how many of them the prefix cache (or a kept conversation) held. */
  promptTokens: number;
  cachedPromptTokens: number;
  /** cachedPromptTokens / promptTokens; null before any prompt. */
  prefixHitRate: number | null;
  /** Output tokens of completed requests. */
  outputTokens: number;
  /** Every completed request since the start, in seconds: first token, time per output token, end to end. */
  histograms: { ttft: Histogram; tpot: Histogram; e2e: Histogram };
}

export interface StepRecord {
  atMs: number;
  prefillTokens: number;
  decodeRows: number;
  draftTokens: number;
  sequences: number;
  preempted: number;
  /** Measured step time (submit to tokens on the CPU), ms. */
  ms: number;
  /** The planner's prediction, ms. */
  predictedMs: number;
}

export interface EngineStats {
  apps: AppStats[];
  /** The most recent steps (at most STEP_HISTORY), oldest first. */
  steps: StepRecord[];
  totalSteps: number;
  /** Pages referenced by requests or kept conversations; cached pages (registered prefixes), of which evictable are unreferenced. */
  kv: { pagesTotal: number; pagesUsed: number; pageSize: number; cachedPages: number; evictablePages: number; conversations: number };
  /** Draft tokens proposed and accepted (speculation). */
  speculation: { drafted: number; accepted: number };
  scheduler: string;
}

export const STEP_HISTORY = 512;
/** Requests per app the latency percentiles are over (the most recent): a server's memory stays flat. */
export const LATENCY_WINDOW = 4096;

function keep(window: number[], value: number): void {
  window.push(value);
  if (window.length > 2 * LATENCY_WINDOW) window.splice(0, window.length - LATENCY_WINDOW);
}

function summarize(values: number[]): LatencySummary {
  if (values.length === 0) return { count: 0, p50: null, p90: null, p99: null };
  const s = [...values].sort((a, b) => a - b);
  const q = (p: number): number => s[Math.min(s.length - 1, Math.ceil(p * s.length) - 1)]!;
  return { count: s.length, p50: q(0.5), p90: q(0.9), p99: q(0.99) };
}

interface AppRecord {
  submitted: number;
  completed: number;
  declined: number;
  bestEffort: number;
  aborted: number;
  failed: number;
  running: number;
  met: number;
  judged: number;
  admitted: number;
  admittedMissed: number;
  ttft: number[];
  tpot: number[];
  prompt: number;
  cached: number;
  output: number;
  hist: { ttft: Histogram; tpot: Histogram; e2e: Histogram };
}

export class StatsCollector {
  private readonly apps = new Map<string, AppRecord>();
  private readonly steps: StepRecord[] = [];
  totalSteps = 0;
  drafted = 0;
  accepted = 0;

  private app(name: string): AppRecord {
    let a = this.apps.get(name);
    if (!a) {
      const hist = { ttft: histogram(HISTOGRAM_BOUNDS.ttft), tpot: histogram(HISTOGRAM_BOUNDS.tpot), e2e: histogram(HISTOGRAM_BOUNDS.e2e) };
      this.apps.set(
        name,
        (a = {
          submitted: 0,
          completed: 0,
          declined: 0,
          bestEffort: 0,
          aborted: 0,
          failed: 0,
          running: 0,
          met: 0,
          judged: 0,
          admitted: 0,
          admittedMissed: 0,
          ttft: [],
          tpot: [],
          prompt: 0,
          cached: 0,
          output: 0,
          hist,
        }),
      );
    }
    return a;
  }

  submitted(app: string): void {
    const a = this.app(app);
    a.submitted++;
    a.running++;
  }

  prompt(app: string, tokens: number, cached: number): void {
    const a = this.app(app);
    a.prompt += tokens;
    a.cached += cached;
  }

  bestEffort(app: string): void {
    this.app(app).bestEffort++;
  }

  /** A request left the engine. `timeline` is judged for finished requests. */
  ended(app: string, how: 'completed' | 'declined' | 'aborted' | 'failed', timeline: { round: RoundTimeline; declined: boolean; id: string } | null): void {
    const a = this.app(app);
    a.running--;
    a[how]++;
    if (how === 'declined') a.judged++;
    if (how !== 'completed' || !timeline) return;
    const t = timeline.round.tokenTimes;
    a.output += t.length;
    if (t.length > 0) {
      keep(a.ttft, t[0]! - timeline.round.arrivalMs);
      observe(a.hist.ttft, (t[0]! - timeline.round.arrivalMs) / 1000);
      observe(a.hist.e2e, (t[t.length - 1]! - timeline.round.arrivalMs) / 1000);
    }
    if (t.length > 1) {
      keep(a.tpot, (t[t.length - 1]! - t[0]!) / (t.length - 1));
      observe(a.hist.tpot, (t[t.length - 1]! - t[0]!) / (t.length - 1) / 1000);
    }
    const verdict = judgeRequest({ id: timeline.id, app, declined: timeline.declined, rounds: [timeline.round] });
    a.judged++;
    if (verdict.met) a.met++;
    if (!timeline.declined) {
      a.admitted++;
      if (!verdict.met) a.admittedMissed++;
    }
  }

  step(plan: StepPlan, atMs: number, ms: number): void {
    let prefill = 0;
    let decode = 0;
    let draft = 0;
    for (const e of plan.entries) {
      if (e.kind === 'prefill') prefill += e.tokens;
      else {
        decode++;
        draft += e.draftTokens;
      }
    }
    this.drafted += draft;
    this.totalSteps++;
    this.steps.push({ atMs, prefillTokens: prefill, decodeRows: decode, draftTokens: draft, sequences: plan.entries.length, preempted: plan.preempt.length, ms, predictedMs: plan.predictedMs });
    if (this.steps.length > STEP_HISTORY) this.steps.splice(0, this.steps.length - STEP_HISTORY);
  }

  snapshot(kv: EngineStats['kv'], scheduler: string): EngineStats {
    const apps = [...this.apps.entries()].map(([app, a]): AppStats => ({
      app,
      submitted: a.submitted,
      completed: a.completed,
      declined: a.declined,
      bestEffort: a.bestEffort,
      aborted: a.aborted,
      failed: a.failed,
      running: a.running,
      waiting: 0,
      attainment: a.judged > 0 ? a.met / a.judged : null,
      admitted: a.admitted,
      admittedMissed: a.admittedMissed,
      ttftMs: summarize(a.ttft),
      tpotMs: summarize(a.tpot),
      promptTokens: a.prompt,
      cachedPromptTokens: a.cached,
      prefixHitRate: a.prompt > 0 ? a.cached / a.prompt : null,
      outputTokens: a.output,
      histograms: structuredClone(a.hist),
    }));
    return { apps, steps: [...this.steps], totalSteps: this.totalSteps, kv, speculation: { drafted: this.drafted, accepted: this.accepted }, scheduler };
  }
}

export type { StageSlo };
