// The SLOs-Serve paper's own baselines, configured as the authors' code configures them, so that our
// SLOs-Serve can be compared with what the paper compared against (the stronger, tuned baselines are
// fcfs.ts). Source: github gulang2019/SLOServe, init commit c9dbc0d (the file is unchanged at HEAD),
// SLOsServe/scheduler/schedule_algs.py; the driver loop is SLOsServe/scheduler/simulator.py
// (Simulator.simulate) and struct.py (Request.set_num_blocks, MemoryInstance, BatchSchedule).
//
// - `vllm-v0` (their `vLLMScheduler.schedule`, tag 'vllm'): vLLM v0 without chunked prefill. Every
//   admitted request that is still prefilling gets a batch of its own with its whole prompt (one
//   prompt per batch, no token budget, no chunking), in order running-then-new (= admission order);
//   after those batches, one batch decodes every request one token each (`next = 0`: it repeats until
//   the next reschedule). Here: a step prefills the first prefilling request's whole remaining prompt
//   whenever there is one, else decodes every running request once. No speculation.
// - `sarathi-paper` (their `SarathiServeScheduler.schedule`, tag 'sarathi'): with no decoding request,
//   one batch prefills every waiting/prefilling prompt in full (no budget). Otherwise the budget is
//   `max(range(1, 2048, 32), key = i if batch_timer(i) <= strongest_tpot else 0)`: the largest of
//   1, 33, 65, ..., 2017 whose step time fits the tightest TPOT, or 1 when none does (see
//   paperSarathiBudget). Every decoding request gets one row (decodes first, never capped by the
//   budget); each prefilling request (running-then-new order) gets
//   min((budget - decodes) // prefilling, its remaining prompt) rows: an even floor split, the
//   remainder of the division and a short prompt's unused share are not handed to anyone. No
//   speculation.
// - Admission, both (`ScheduleALG._decline_requests_mem`, with `MemoryInstance`): a request reserves
//   its whole KV when admitted, ceil((prompt + output) / 16) blocks (Request.set_num_blocks; here
//   the KV budget's page size), held until it finishes (MemoryInstance.optional_alloc / free).
//   New arrivals are taken in arrival order against the free (unreserved) blocks; the first that does
//   not fit is declined *and so is every later arrival of the same scheduling round*, even one that
//   would fit (their code returns reqs[:i], reqs[i:]). A decline is final (a miss). The authors'
//   simulator knows the true output length; ours gives the scheduler only `maxTokens`, so the
//   reservation here is prompt + maxTokens. With every admitted request's KV reserved up front, KV
//   never runs out and nothing is ever preempted (their baselines preempt only best-effort work,
//   which they do not run here), so there is no recompute preemption.
//
// Where their code was unclear, or where our engine differs, the choices made here:
// - Rescheduling: their driver runs the returned batch list until >6 requests finished or 0.1 s
//   passed (problem_runner.py: SchedulerConfig(name, strategy, 0.1, 10, 6); simulator.py never
//   increments its arrival count, so the >10 arrivals trigger never fires there), so
//   arrivals wait up to ~0.1 s for the next schedule() call. Here every step re-decides (arrivals are
//   coalesced per step), as the schedulers of both real systems do. The prefix decline rule therefore
//   applies to the arrivals since the last step.
// - Sarathi returns a single batch with `next = 1`: their loop would index past it (an IndexError)
//   unless a reschedule trigger fired first; each step re-deciding makes that moot.
// - Sarathi when the decodes outnumber the budget: their prefill share is negative (a Python floor
//   division of a negative number) and the prefill rows would be negative; here it is 0 (decodes
//   only). Zero-row prefill entries (their share of 0) are left out of the step.
// - Tightest TPOT: their code takes, every call, the minimum of `req.req.tpot()` over the currently
//   decoding requests (each request's SLA tpot_per_token, a constant per request). Here it is the
//   `tightestTpotMs` option (the caller passes the workload's tightest TPOT), which is the same
//   whenever every decoding request shares one TPOT class, and a tighter cap than theirs while no
//   request of the tightest class is decoding.
// - Step time: their `batch_timer(i)` is the fitted model with no margin; here the budget search uses
//   the planning model `predict({ tokens: i, draftSteps: 0, kvTokensRead: 0 })` (with its margin),
//   the model every webslo policy plans with.
// - Engine limits, which their code has none of: a step never exceeds `maxTokensPerStep` (the
//   runner's largest step). vllm-v0 declines a request whose prompt (less a prefix-cache hit) exceeds
//   it, since it cannot run unchunked (vLLM v0 ignores such prompts too); sarathi-paper caps its budget
//   by it, and its no-decode batch fills whole prompts in order up to it (the last one chunked).
//   At most min(maxSeqs, maxTokensPerStep) requests run at once (others wait, admitted, in order),
//   so a decode-everything step fits one step; maxSeqs is unlimited unless given (their code has no
//   cap).

import { BaseScheduler, SchedulerInputError, type SchedulerOptions } from './base.js';
import { pagesFor, type RequestState } from './request-state.js';
import type { PerformanceModel } from './perf-model.js';
import type { StepEntry } from './types.js';

/** The authors' Sarathi budget grid: range(1, 2048, 32), i.e. 1, 33, ..., 2017. */
export const PAPER_SARATHI_GRID = { start: 1, stop: 2048, step: 32 } as const;

/**
 * The authors' Sarathi token budget: the largest candidate of range(1, 2048, 32) whose planned step
 * time (no drafts, no KV reads) is within `tightestTpotMs`, or 1 when none is (Python's max() returns
 * the first of equal keys, and every non-fitting candidate has key 0).
 */
export function paperSarathiBudget(model: { predict(step: { tokens: number; draftSteps: number; kvTokensRead: number }): number }, tightestTpotMs: number): number {
  let best = PAPER_SARATHI_GRID.start;
  for (let i = PAPER_SARATHI_GRID.start; i < PAPER_SARATHI_GRID.stop; i += PAPER_SARATHI_GRID.step) {
    if (model.predict({ tokens: i, draftSteps: 0, kvTokensRead: 0 }) <= tightestTpotMs) best = i;
  }
  return best;
}

/**
 * What both baselines share: whole-KV reservations at admission with the authors' prefix decline
 * rule, and the running set (started, in start order) fed from the admitted queue.
 */
abstract class PaperBaseline extends BaseScheduler {
  /** Started requests, in start (= admission) order. */
  protected running: RequestState[] = [];
  /** Admitted, not started (only when the running set is full), in admission order. */
  protected waiting: RequestState[] = [];
  /** KV pages reserved by admitted requests (prompt + maxTokens each). */
  protected reservedPages = 0;
  /** Most requests running at once. */
  protected readonly runningCap: number;

  constructor(options: SchedulerOptions) {
    super(options);
    if (options.maxSeqs !== undefined && !(Number.isInteger(options.maxSeqs) && options.maxSeqs > 0)) throw new SchedulerInputError('maxSeqs', `must be a positive integer, got ${options.maxSeqs}`);
    this.runningCap = Math.min(options.maxSeqs ?? Infinity, this.maxTokensPerStep);
  }

  /** Whether a request can never be served by this policy whatever else runs (declined on its own). */
  protected unservable(s: RequestState): boolean {
    void s;
    return false;
  }

  protected decide(nowMs: number): void {
    const pageSize = this.kvBudget.pageSize;
    let full = false; // the authors decline every arrival after the first that does not fit
    for (const s of this.pending) {
      if (this.unservable(s)) {
        this.drop(s, nowMs);
        continue;
      }
      const pages = pagesFor(s.req.promptTokens + s.req.maxTokens, pageSize);
      if (full || this.reservedPages + pages > this.kvBudget.pages) {
        full = true;
        this.drop(s, nowMs);
        continue;
      }
      this.reservedPages += pages;
      s.reservedTokens = s.req.promptTokens + s.req.maxTokens;
      s.service = 'admitted';
      this.emit(s, 'admitted', nowMs);
      this.waiting.push(s);
    }
    this.pending = [];
  }

  /** Start admitted requests while the running set has room. */
  protected promote(): void {
    while (this.waiting.length > 0 && this.running.length < this.runningCap) this.running.push(this.waiting.shift()!);
  }

  protected override onRemoved(s: RequestState): void {
    if (s.service === 'admitted') this.reservedPages -= pagesFor(s.reservedTokens, this.kvBudget.pageSize);
    this.running = this.running.filter((r) => r !== s);
    this.waiting = this.waiting.filter((r) => r !== s);
  }
}

/** vLLM v0 without chunked prefill, as the SLOs-Serve authors' `vLLMScheduler`. */
export class VllmV0Scheduler extends PaperBaseline {
  readonly name = 'vllm-v0';

  /** A prompt longer than the largest step can never run unchunked. */
  protected override unservable(s: RequestState): boolean {
    return s.remainingPrefill > this.maxTokensPerStep;
  }

  protected build(): { entries: StepEntry[]; preempt: string[] } {
    this.promote();
    const prefill = this.running.find((s) => s.prefilling);
    if (prefill) return { entries: [{ id: prefill.id, kind: 'prefill', tokens: prefill.remainingPrefill }], preempt: [] };
    return { entries: this.running.map((s): StepEntry => ({ id: s.id, kind: 'decode', draftTokens: 0 })), preempt: [] };
  }
}

export interface SarathiPaperOptions extends SchedulerOptions {
  /** The TPOT the budget must fit (the authors' strongest_tpot), ms. */
  tightestTpotMs: number;
}

/** Sarathi-Serve as the SLOs-Serve authors' `SarathiServeScheduler`. */
export class SarathiPaperScheduler extends PaperBaseline {
  readonly name = 'sarathi-paper';
  private readonly tightestTpotMs: number;
  private budgetFor: { model: PerformanceModel; budget: number } | null = null;

  constructor(options: SarathiPaperOptions) {
    super(options);
    if (!(typeof options.tightestTpotMs === 'number' && options.tightestTpotMs > 0 && Number.isFinite(options.tightestTpotMs)))
      throw new SchedulerInputError('tightestTpotMs', `must be a positive finite number, got ${options.tightestTpotMs}`);
    this.tightestTpotMs = options.tightestTpotMs;
  }

  /** The step's token budget when decodes run: the authors' grid search, capped by the largest step. */
  get budget(): number {
    if (this.budgetFor?.model !== this.model) this.budgetFor = { model: this.model, budget: Math.min(this.maxTokensPerStep, paperSarathiBudget(this.model, this.tightestTpotMs)) };
    return this.budgetFor.budget;
  }

  protected build(): { entries: StepEntry[]; preempt: string[] } {
    this.promote();
    const decoding = this.running.filter((s) => !s.prefilling);
    const prefilling = this.running.filter((s) => s.prefilling);
    const entries: StepEntry[] = decoding.map((s): StepEntry => ({ id: s.id, kind: 'decode', draftTokens: 0 }));
    if (decoding.length === 0) {
      // Every prompt in full (the engine's largest step permitting, in order).
      let left = this.maxTokensPerStep;
      for (const s of prefilling) {
        const tokens = Math.min(s.remainingPrefill, left);
        if (tokens <= 0) break;
        entries.push({ id: s.id, kind: 'prefill', tokens });
        left -= tokens;
      }
      return { entries, preempt: [] };
    }
    if (prefilling.length > 0) {
      const share = Math.floor(Math.max(0, this.budget - decoding.length) / prefilling.length);
      for (const s of prefilling) {
        const tokens = Math.min(share, s.remainingPrefill);
        if (tokens > 0) entries.push({ id: s.id, kind: 'prefill', tokens });
      }
    }
    return { entries, preempt: [] };
  }
}
