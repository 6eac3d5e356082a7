// The scheduler's interface: what the engine and the simulator hand it (requests, step outcomes)
// and what it hands back (one plain step plan per step). Every policy (SLOs-Serve, FCFS, FCFS+SD,
// Sarathi, EDF) implements `Scheduler`; nothing here touches the GPU.
//
// Time is in milliseconds on the caller's clock (performance.now() in the engine, the simulated clock
// in the simulator). Token counts are integers.

import type { PerformanceModel } from './perf-model.js';

/** One decode stage's SLO: token n of the stage is due `tpotMs` after token n-1 (a deadline curve). */
export interface StageSlo {
  name: string;
  tpotMs: number;
}

/**
 * A request as the scheduler sees it. The scheduler knows only `maxTokens` and learns where a request
 * ends from step outcomes (`oracleOutputTokens` is for benchmarks' oracle reservation only).
 */
export interface SchedRequest {
  id: string;
  app: string;
  arrivalMs: number;
  /** Tokens to prefill before the first output token. */
  promptTokens: number;
  /**
   * Leading prompt tokens already in KV when the request arrives (a prefix-cache hit; default 0).
   * The engine pins those pages at submit, so they are the request's from the start: it holds their
   * pages, prefills only the rest (its chunks attend to the cached context), and its TTFT feasibility
   * counts only the rest. A recompute preemption drops them (the recompute runs without the cache).
   * An integer in [0, promptTokens).
   */
  cachedTokens?: number;
  /** Output cap over all stages (the request never emits more). */
  maxTokens: number;
  /** Absolute TTFT budget, ms after arrival (slowdown SLOs are resolved before submit). */
  ttftMs: number;
  /** Decode stages in order (one for plain apps; think, answer for reasoning). */
  stages: readonly StageSlo[];
  /**
   * Whether a request the planner refuses is served best-effort meanwhile (default true). False for
   * an app that fails declined requests (onDecline 'error'): serving it would be wasted work, since a
   * first token produced before admission ends it as declined. It then only waits to be re-offered
   * at each re-plan, and is declined once its first token can no longer be on time.
   */
  serveDeclined?: boolean;
  /**
   * Benchmarks only: the true output length, which a simulator knows and an engine never does. Read
   * by nothing but the 'oracle' reservation (slos/reservation.ts), which exists to compare with the
   * paper's planner (it assumes known lengths); the engine never sets it.
   */
  oracleOutputTokens?: number;
}

/** What one request does in a step. */
export type StepEntry =
  | { id: string; kind: 'prefill'; tokens: number }
  /** One decode row plus `draftTokens` speculative rows verified with it. */
  | { id: string; kind: 'decode'; draftTokens: number };

/** The scheduler's decision for one step: the engine executes exactly this. */
export interface StepPlan {
  /** Requests whose KV is dropped before the step (recompute preemption: generated tokens are kept). */
  preempt: string[];
  entries: StepEntry[];
  /** Forward rows (prefill tokens + decode rows + draft rows). */
  tokens: number;
  /** Longest speculation length (sequential draft passes). */
  draftSteps: number;
  /** Keys attention reads, summed over rows and layers (the perf model's kvTokensRead). */
  kvTokensRead: number;
  /** The performance model's planning prediction for the step, ms. */
  predictedMs: number;
}

/** What came of one entry of the step just executed. */
export interface StepOutcome {
  id: string;
  /** Output tokens appended (0 for a prefill chunk that does not finish the prompt). */
  emitted: number;
  /** Draft tokens accepted, for decode entries with drafts (feeds the acceptance estimate). */
  accepted?: number;
  /** The request is done (EOS, stop string, max_tokens, or the simulator's true length). */
  finished: boolean;
  /**
   * Output-token index (0-based) at which the next decode stage began during this step, when it did
   * (thinking -> answer).
   */
  stageStartedAt?: number;
}

/**
 * How the scheduler decided about a submitted request. 'declined' can also come later for a request
 * whose KV alone outgrew the whole cache: the engine fails it and frees its KV.
 */
export type AdmissionDecision = 'admitted' | 'best-effort' | 'declined';

export interface SchedulerEvent {
  id: string;
  decision: AdmissionDecision;
  atMs: number;
}

/** The scheduler's view of KV memory: pages of `pageSize` tokens (the engine's PagedKvCache geometry). */
export interface KvBudget {
  pages: number;
  pageSize: number;
}

/**
 * What one step() decided: the step to run (null when there is nothing to run now) and the
 * admission decisions made since the scheduler last returned any (this step's arrivals, coalesced,
 * and whatever cancel() or a re-plan decided).
 */
export interface StepDecision {
  plan: StepPlan | null;
  decisions: readonly SchedulerEvent[];
}

export interface Scheduler {
  readonly name: string;
  /** Queue a request; its decision comes back from the next step() (arrivals are coalesced). */
  submit(request: SchedRequest, nowMs: number): void;
  /**
   * Try to admit now, for multi-replica routing: the decisions made (the request's own among them)
   * when the request is taken (admitted, or best-effort when `fallback`); null when it is not taken
   * and left with the caller.
   */
  offer(request: SchedRequest, nowMs: number, fallback: boolean): readonly SchedulerEvent[] | null;
  /** Plan the next step; the plan comes back with the admission decisions made before it. */
  step(nowMs: number): StepDecision;
  /**
   * Outcomes of the step returned by the last step() call, at its end; the decisions that came of
   * them (a request declined because its KV outgrew the cache, a best-effort one admitted).
   */
  complete(nowMs: number, outcomes: readonly StepOutcome[]): readonly SchedulerEvent[];
  /** Forget a request (aborted by its caller): its memory is free at once. */
  cancel(id: string, nowMs: number): void;
  /** Requests in the system (waiting, running, best-effort). */
  readonly size: number;
  /** The planning model now. */
  readonly performanceModel: PerformanceModel;
  /** Plan with a new model from the next decision on (an online refit). */
  setModel(model: PerformanceModel): void;
}
