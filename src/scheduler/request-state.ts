// What a scheduler knows about one request while it is in the system: prefill progress, output so
// far, the KV it holds, its stage, and where its TPOT deadline curve stands. Shared by every policy.
//
// KV bookkeeping mirrors the engine's PagedKvCache: a prefill chunk of c tokens appends c slots; a
// decode row plus k drafts appends k + 1 slots for the step and keeps accepted + 1 of them (= the
// tokens emitted). Recompute preemption drops all KV and keeps the output: the request then prefills
// prompt + generated tokens again, and that prefill's last row yields the next token.
//
// A prefix-cache hit (`cachedTokens`) starts the request with that much KV and prefill progress: it
// holds those pages from the start and prefills only the rest. The recompute after a preemption runs
// without the cache (all of prompt + generated).

import type { SchedRequest } from './types.js';

export type Service = 'pending' | 'admitted' | 'best-effort';

export class RequestState {
  /** Tokens to prefill before the next output token (prompt, plus output after a preemption). */
  prefillTarget: number;
  /** Tokens holding KV (prefilled chunks and decoded tokens). */
  kv = 0;
  /** Prefill progress toward prefillTarget; equal once decoding. */
  prefilled = 0;
  generated = 0;
  stage = 0;
  firstTokenMs: number | null = null;
  service: Service = 'pending';
  /** A final decision not to admit it was announced (it may still be served best-effort). */
  declined = false;
  /** The last admission decision refused it for memory (its final decline teaches the reservation). */
  memoryRefused = false;
  /** Tokens of KV the admission reserved (prompt + expected output). */
  reservedTokens = 0;
  /** Tokens of KV that came from the prefix cache and are still held (0 after a preemption). */
  cachedTokens: number;
  /** Deadline of the last token of the previous stage, and that token's 1-based index (curve anchor). */
  private anchorMs = 0;
  private anchorToken = 1;
  preemptions = 0;
  /** Order of arrival (ties in FCFS order). */
  readonly seq: number;

  constructor(
    readonly req: SchedRequest,
    seq: number,
  ) {
    this.prefillTarget = req.promptTokens;
    this.cachedTokens = req.cachedTokens ?? 0;
    this.kv = this.cachedTokens;
    this.prefilled = this.cachedTokens;
    this.seq = seq;
  }

  get id(): string {
    return this.req.id;
  }

  get prefilling(): boolean {
    return this.prefilled < this.prefillTarget;
  }

  get remainingPrefill(): number {
    return this.prefillTarget - this.prefilled;
  }

  /**
   * The request holds KV but has computed none of it yet: all it holds is its cached prefix. Dropping
   * that (a preemption) costs no work already done, only the hit, so policies evict such caches
   * before they preempt computed KV (as an engine reclaims cached pages nobody is computing on).
   */
  get onlyCached(): boolean {
    return this.cachedTokens > 0 && this.kv === this.cachedTokens;
  }

  /** Prefill deadline: arrival + TTFT budget. */
  get ttftDeadlineMs(): number {
    return this.req.arrivalMs + this.req.ttftMs;
  }

  get tpotMs(): number {
    const stages = this.req.stages;
    return stages[Math.min(this.stage, stages.length - 1)]!.tpotMs;
  }

  /** Deadline of output token n (1-based) on the TPOT curve; the first token's is the TTFT deadline. */
  tokenDeadlineMs(n: number): number {
    if (this.firstTokenMs === null || n <= 1) return this.ttftDeadlineMs;
    return this.anchorMs + (n - this.anchorToken) * this.tpotMs;
  }

  /** Deadline of the next output token. */
  get nextDeadlineMs(): number {
    return this.tokenDeadlineMs(this.generated + 1);
  }

  /** The request emitted `count` tokens at `nowMs`, possibly entering its next stage at 0-based index `stageAt`. */
  onEmitted(count: number, nowMs: number, stageAt?: number): void {
    if (count <= 0) return;
    if (this.firstTokenMs === null) {
      this.firstTokenMs = nowMs;
      // Early first tokens bank slack: the curve starts at the later of the TTFT deadline and now.
      this.anchorMs = Math.max(this.ttftDeadlineMs, nowMs);
      this.anchorToken = 1;
    }
    if (stageAt !== undefined && this.stage + 1 < this.req.stages.length) {
      // Token stageAt + 1 (1-based) is the new stage's first: re-anchor at the previous token's deadline.
      const prev = Math.max(1, stageAt);
      this.anchorMs = this.tokenDeadlineMs(prev);
      this.anchorToken = prev;
      this.stage++;
    }
    this.generated += count;
  }

  /** Drop the KV (recompute preemption): keep the output, prefill prompt + output again. */
  preempt(): void {
    this.kv = 0;
    this.prefilled = 0;
    this.cachedTokens = 0;
    this.prefillTarget = this.req.promptTokens + this.generated;
    this.preemptions++;
  }
}

/** Pages a sequence of `tokens` KV slots occupies. */
export function pagesFor(tokens: number, pageSize: number): number {
  return Math.ceil(tokens / pageSize);
}

/**
 * Keys attention reads for `rows` new rows appended after `context` cached tokens, summed over
 * rows and layers: row i attends to context + i + 1 keys.
 */
export function keysRead(context: number, rows: number, layers: number): number {
  return (rows * context + (rows * (rows + 1)) / 2) * layers;
}
