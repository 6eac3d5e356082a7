// Baselines without SLO awareness, implemented as their systems do it:
//
// - `fcfs` (vLLM's continuous batching with chunked prefill, as in its v1 scheduler): every step
//   first serves the running requests in the order they started (a decode row, or the next prefill
//   chunk), then starts waiting requests in arrival order, all under `maxBatchedTokens` rows and
//   `maxSeqs` sequences. When a running request needs a KV page and none is free, the most recently
//   started running request is preempted (recompute) and goes back to the front of the queue; no new
//   request starts in a step that preempted. Prefix-cache hits (`cachedTokens`) of waiting requests
//   hold pages too; they are reclaimed first, from the back of the queue (the request loses its hit
//   and will prefill its whole prompt), before anything running is preempted, and also to start a
//   request (vLLM evicts cached blocks nobody runs on before it preempts).
// - `fcfs+sd`: the same with speculative decoding at a fixed k for every decode.
// - `sarathi` (Sarathi-Serve's stall-free batching): decodes first, then ongoing (partial) prefills,
//   then new prefills, under a fixed token budget, the largest whose step time fits the tightest
//   TPOT (see sarathiBudget); the same recompute preemption.

import { BaseScheduler, SchedulerInputError, type SchedulerOptions } from './base.js';
import { pagesFor, type RequestState } from './request-state.js';
import type { StepEntry } from './types.js';

export interface FcfsOptions extends SchedulerOptions {
  /** Rows per step (vLLM's max_num_batched_tokens; Sarathi's token budget). */
  maxBatchedTokens: number;
  /** Draft tokens per decode (0 = no speculation). */
  specK?: number;
  /** Row order within a step: vLLM's (running in start order) or Sarathi's (decodes first). */
  order?: 'vllm' | 'sarathi';
  name?: string;
}

export class FcfsScheduler extends BaseScheduler {
  readonly name: string;
  private readonly budget: number;
  private readonly specK: number;
  private readonly order: 'vllm' | 'sarathi';
  /** Started requests, in start order (vLLM's running list). */
  private running: RequestState[] = [];
  /** Not started, or preempted (at the front), in service order. */
  private waiting: RequestState[] = [];

  constructor(options: FcfsOptions) {
    super(options);
    if (!(Number.isInteger(options.maxBatchedTokens) && options.maxBatchedTokens > 0)) throw new SchedulerInputError('maxBatchedTokens', `must be a positive integer, got ${options.maxBatchedTokens}`);
    this.budget = Math.min(options.maxBatchedTokens, this.maxTokensPerStep);
    this.specK = options.specK ?? 0;
    this.order = options.order ?? 'vllm';
    this.name = options.name ?? (this.order === 'sarathi' ? 'sarathi' : this.specK > 0 ? 'fcfs+sd' : 'fcfs');
  }

  protected decide(nowMs: number): void {
    for (const s of this.pending) {
      if (pagesFor(s.req.promptTokens + 1, this.kvBudget.pageSize) > this.kvBudget.pages) {
        this.drop(s, nowMs); // can never fit, whatever else runs
        continue;
      }
      s.service = 'admitted';
      this.emit(s, 'admitted', nowMs);
      this.waiting.push(s);
    }
    this.pending = [];
  }

  protected build(nowMs: number): { entries: StepEntry[]; preempt: string[] } {
    const ledger = this.ledger();
    const entries: StepEntry[] = [];
    const preempt: string[] = [];
    let budget = this.budget;
    const scheduled = new Set<RequestState>();
    // Waiting requests whose cached prefix was reclaimed in this step (their KV goes with the step's
    // preemptions), and whether anything running was preempted.
    const evicted = new Set<RequestState>();
    let preemptedRunning = false;
    const evictCache = (s: RequestState): boolean => {
      for (let i = this.waiting.length - 1; i >= 0; i--) {
        const w = this.waiting[i]!;
        if (w === s || !w.onlyCached || evicted.has(w)) continue;
        ledger.release(w);
        preempt.push(w.id);
        evicted.add(w);
        return true;
      }
      return false;
    };

    const serve = (s: RequestState, mayPreempt: boolean): boolean => {
      const decoding = !s.prefilling;
      const k = decoding ? Math.min(this.specK, Math.max(0, s.req.maxTokens - s.generated - 1)) : 0;
      const rows = decoding ? 1 + k : Math.min(s.remainingPrefill, budget);
      if (rows <= 0 || rows > budget) return false;
      if (this.dropIfTooLarge(s, rows, nowMs)) {
        this.running = this.running.filter((r) => r !== s);
        this.waiting = this.waiting.filter((r) => r !== s);
        return false;
      }
      while (!ledger.take(s, rows)) {
        if (evictCache(s)) continue;
        if (!mayPreempt) return false;
        // Preempt the most recently started running request that is not already in this step.
        const victim = [...this.running].reverse().find((r) => !scheduled.has(r));
        if (!victim) return false;
        ledger.release(victim);
        preempt.push(victim.id);
        preemptedRunning = true;
        this.running = this.running.filter((r) => r !== victim);
        this.waiting.unshift(victim);
        if (victim === s) return false;
      }
      budget -= rows;
      scheduled.add(s);
      entries.push(decoding ? { id: s.id, kind: 'decode', draftTokens: k } : { id: s.id, kind: 'prefill', tokens: rows });
      return true;
    };

    const runningOrder = this.order === 'sarathi' ? [...this.running.filter((s) => !s.prefilling), ...this.running.filter((s) => s.prefilling)] : [...this.running];
    const preempted = new Set<string>();
    for (const s of runningOrder) {
      if (budget <= 0) break;
      if (preempted.has(s.id)) continue; // preempted earlier in this step
      serve(s, true);
      for (let i = preempted.size; i < preempt.length; i++) preempted.add(preempt[i]!);
    }
    if (!preemptedRunning) {
      while (budget > 0 && this.waiting.length > 0 && this.running.length < this.maxSeqs) {
        const s = this.waiting[0]!;
        if (evicted.has(s) || !serve(s, false)) break;
        this.waiting.shift();
        this.running.push(s);
      }
    }
    return { entries, preempt };
  }

  protected override onRemoved(s: RequestState): void {
    this.running = this.running.filter((r) => r !== s);
    this.waiting = this.waiting.filter((r) => r !== s);
  }
}

/**
 * Sarathi-Serve's best budget: the most rows whose planned step time (no drafts, the decodes' KV
 * reads ignored) fits the tightest TPOT; at least 1.
 */
export function sarathiBudget(model: { maxTokensWithin(budgetMs: number): number }, tightestTpotMs: number, maxTokensPerStep: number): number {
  return Math.max(1, Math.min(maxTokensPerStep, model.maxTokensWithin(tightestTpotMs)));
}
