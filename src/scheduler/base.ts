// The mechanics every policy shares: the request table, coalesced arrivals, applying step outcomes,
// KV page accounting with recompute preemption, step features for the performance model, and the
// admission-event log. A policy supplies `decide` (what to do with pending arrivals) and `build`
// (the entries of the next step).

import { AcceptanceEstimator } from './acceptance-model.js';
import type { PerformanceModel } from './perf-model.js';
import { keysRead, pagesFor, RequestState } from './request-state.js';
import type { AdmissionDecision, KvBudget, SchedRequest, Scheduler, SchedulerEvent, StepDecision, StepEntry, StepOutcome, StepPlan } from './types.js';

export interface SchedulerOptions {
  /** Planning model (with its safety margin) and layer count for KV-read features. */
  model: PerformanceModel;
  kv: KvBudget;
  /** Most rows in one step (default: the profile's maxTokensPerStep). */
  maxTokensPerStep?: number;
  /** Most sequences running at once (default 256). */
  maxSeqs?: number;
  /** Acceptance-rate prior for speculation before an app has observations (default 0.7). */
  alphaPrior?: number;
}

export class SchedulerInputError extends Error {
  override name = 'SchedulerInputError';
  constructor(
    readonly field: string,
    readonly problem: string,
  ) {
    super(`scheduler input '${field}' ${problem}`);
  }
}

/** Free KV pages during one step's construction; taking pages for rows, releasing victims. */
export class PageLedger {
  free: number;
  constructor(
    total: number,
    used: number,
    readonly pageSize: number,
  ) {
    this.free = total - used;
  }

  extra(s: RequestState, rows: number): number {
    return pagesFor(s.kv + rows, this.pageSize) - pagesFor(s.kv, this.pageSize);
  }

  take(s: RequestState, rows: number): boolean {
    const need = this.extra(s, rows);
    if (need > this.free) return false;
    this.free -= need;
    return true;
  }

  release(s: RequestState): void {
    this.free += pagesFor(s.kv, this.pageSize);
  }
}

export abstract class BaseScheduler implements Scheduler {
  abstract readonly name: string;
  protected model: PerformanceModel;
  protected readonly kvBudget: KvBudget;
  protected readonly maxTokensPerStep: number;
  protected readonly maxSeqs: number;
  protected readonly layers: number;
  protected readonly acceptance: AcceptanceEstimator;
  /** Every request in the system, in arrival order. */
  protected readonly states = new Map<string, RequestState>();
  protected pending: RequestState[] = [];
  private events: SchedulerEvent[] = [];
  private inFlight = new Map<string, StepEntry>();
  private seq = 0;

  constructor(options: SchedulerOptions) {
    this.model = options.model;
    this.kvBudget = options.kv;
    this.layers = options.model.profile.layers;
    this.maxTokensPerStep = options.maxTokensPerStep ?? options.model.profile.maxTokensPerStep;
    this.maxSeqs = options.maxSeqs ?? 256;
    this.acceptance = new AcceptanceEstimator(options.alphaPrior ?? 0.7);
    if (!(Number.isInteger(options.kv.pages) && options.kv.pages > 0)) throw new SchedulerInputError('kv.pages', `must be a positive integer, got ${options.kv.pages}`);
    if (!(Number.isInteger(options.kv.pageSize) && options.kv.pageSize > 0)) throw new SchedulerInputError('kv.pageSize', `must be a positive integer, got ${options.kv.pageSize}`);
    if (!(Number.isInteger(this.maxTokensPerStep) && this.maxTokensPerStep > 0)) throw new SchedulerInputError('maxTokensPerStep', `must be a positive integer, got ${this.maxTokensPerStep}`);
  }

  get size(): number {
    return this.states.size;
  }

  /** The planning model now (the engine refits it online from measured steps). */
  get performanceModel(): PerformanceModel {
    return this.model;
  }

  /** Plan with a new model from the next decision on (an online refit); same layer count. */
  setModel(model: PerformanceModel): void {
    if (model.profile.layers !== this.layers) throw new SchedulerInputError('model', `has ${model.profile.layers} layers; the scheduler plans for ${this.layers}`);
    this.model = model;
  }

  submit(request: SchedRequest, nowMs: number): void {
    this.enqueue(request, nowMs);
  }

  offer(request: SchedRequest, nowMs: number, fallback: boolean): readonly SchedulerEvent[] | null {
    void fallback; // policies without admission control take everything (decided at the next step)
    this.enqueue(request, nowMs);
    return this.takeEvents();
  }

  step(nowMs: number): StepDecision {
    if (this.inFlight.size > 0) throw new SchedulerInputError('step', 'called before the previous step was completed');
    if (this.shouldDecide(nowMs)) this.decide(nowMs);
    const { entries, preempt } = this.build(nowMs);
    for (const id of preempt) this.states.get(id)!.preempt();
    for (const e of entries) this.inFlight.set(e.id, e);
    const plan = entries.length > 0 || preempt.length > 0 ? this.plan(entries, preempt) : null;
    return { plan, decisions: this.takeEvents() };
  }

  complete(nowMs: number, outcomes: readonly StepOutcome[]): readonly SchedulerEvent[] {
    let finished = 0;
    for (const o of outcomes) {
      const entry = this.inFlight.get(o.id);
      const s = this.states.get(o.id);
      if (!entry || !s) continue; // cancelled while in flight
      if (entry.kind === 'prefill') {
        s.prefilled += entry.tokens;
        s.kv += entry.tokens;
      } else {
        s.kv += o.emitted;
        if (entry.draftTokens > 0) this.acceptance.record(s.req.app, entry.draftTokens, o.accepted ?? Math.max(0, o.emitted - 1));
      }
      s.onEmitted(o.emitted, nowMs, o.stageStartedAt);
      if (o.finished) {
        this.finish(s, nowMs);
        finished++;
      }
    }
    this.inFlight.clear();
    this.afterComplete(nowMs, finished);
    return this.takeEvents();
  }

  cancel(id: string, nowMs: number): void {
    const s = this.states.get(id);
    if (!s) return;
    this.states.delete(id);
    this.pending = this.pending.filter((p) => p !== s);
    this.inFlight.delete(id);
    this.onRemoved(s, nowMs, false);
  }

  /** The decisions made since they were last returned (from step, complete or offer). */
  protected takeEvents(): SchedulerEvent[] {
    const out = this.events;
    this.events = [];
    return out;
  }

  /** Decide about `this.pending` (admit, best-effort, decline or defer). */
  protected abstract decide(nowMs: number): void;
  /** The next step's entries and the requests to preempt first. */
  protected abstract build(nowMs: number): { entries: StepEntry[]; preempt: string[] };
  /** A request left the system (finished, or cancelled when `finished` is false). */
  protected onRemoved(s: RequestState, nowMs: number, finished: boolean): void {
    void s;
    void nowMs;
    void finished;
  }
  protected afterComplete(nowMs: number, finished: number): void {
    void nowMs;
    void finished;
  }

  /** Whether step() runs decide() first (default: when arrivals wait). */
  protected shouldDecide(nowMs: number): boolean {
    void nowMs;
    return this.pending.length > 0;
  }

  protected emit(s: RequestState, decision: AdmissionDecision, nowMs: number): void {
    this.events.push({ id: s.id, decision, atMs: nowMs });
  }

  /** Remove a request the scheduler will not serve (declined without best-effort). */
  protected drop(s: RequestState, nowMs: number): void {
    this.states.delete(s.id);
    this.emit(s, 'declined', nowMs);
    this.onRemoved(s, nowMs, false);
  }

  /**
   * A request whose KV alone would exceed the whole cache can never be served: it is dropped with a
   * 'declined' event (the engine fails it with a KV-exhausted error) instead of preempting itself
   * forever. True when dropped.
   */
  protected dropIfTooLarge(s: RequestState, rows: number, nowMs: number): boolean {
    if (pagesFor(s.kv + rows, this.kvBudget.pageSize) <= this.kvBudget.pages) return false;
    this.drop(s, nowMs);
    return true;
  }

  protected ledger(): PageLedger {
    let used = 0;
    for (const s of this.states.values()) used += pagesFor(s.kv, this.kvBudget.pageSize);
    return new PageLedger(this.kvBudget.pages, used, this.kvBudget.pageSize);
  }

  /** Rows an entry adds to the forward pass. */
  protected static rows(e: StepEntry): number {
    return e.kind === 'prefill' ? e.tokens : 1 + e.draftTokens;
  }

  /** Keys an entry's rows read (all layers). */
  protected entryKeys(e: StepEntry): number {
    const s = this.states.get(e.id)!;
    return keysRead(s.kv, BaseScheduler.rows(e), this.layers);
  }

  private plan(entries: StepEntry[], preempt: string[]): StepPlan {
    let tokens = 0;
    let draftSteps = 0;
    let kvTokensRead = 0;
    for (const e of entries) {
      tokens += BaseScheduler.rows(e);
      if (e.kind === 'decode') draftSteps = Math.max(draftSteps, e.draftTokens);
      kvTokensRead += this.entryKeys(e);
    }
    const predictedMs = tokens > 0 ? this.model.predict({ tokens, draftSteps, kvTokensRead }) : 0;
    return { preempt, entries, tokens, draftSteps, kvTokensRead, predictedMs };
  }

  private enqueue(request: SchedRequest, nowMs: number): RequestState {
    checkRequest(request, this.states);
    const s = new RequestState(request, this.seq++);
    void nowMs;
    this.states.set(request.id, s);
    this.pending.push(s);
    return s;
  }

  private finish(s: RequestState, nowMs: number): void {
    this.states.delete(s.id);
    this.onRemoved(s, nowMs, true);
  }
}

function checkRequest(r: SchedRequest, states: ReadonlyMap<string, RequestState>): void {
  if (typeof r.id !== 'string' || r.id === '') throw new SchedulerInputError('id', 'must be a non-empty string');
  if (states.has(r.id)) throw new SchedulerInputError('id', `'${r.id}' is already in the system`);
  const count = (field: string, v: number, min: number): void => {
    if (!Number.isInteger(v) || v < min) throw new SchedulerInputError(field, `of request '${r.id}' must be an integer >= ${min}, got ${v}`);
  };
  count('promptTokens', r.promptTokens, 1);
  count('maxTokens', r.maxTokens, 1);
  if (r.cachedTokens !== undefined) {
    count('cachedTokens', r.cachedTokens, 0);
    if (r.cachedTokens >= r.promptTokens)
      throw new SchedulerInputError('cachedTokens', `of request '${r.id}' must be < promptTokens (${r.promptTokens}): at least one prompt token is computed, got ${r.cachedTokens}`);
  }
  if (!Number.isFinite(r.arrivalMs)) throw new SchedulerInputError('arrivalMs', `of request '${r.id}' must be finite, got ${r.arrivalMs}`);
  if (!(r.ttftMs > 0) || !Number.isFinite(r.ttftMs)) throw new SchedulerInputError('ttftMs', `of request '${r.id}' must be a positive finite number, got ${r.ttftMs}`);
  if (r.stages.length === 0) throw new SchedulerInputError('stages', `of request '${r.id}' must name at least one decode stage`);
  for (const [i, st] of r.stages.entries()) {
    if (!(st.tpotMs > 0) || !Number.isFinite(st.tpotMs)) throw new SchedulerInputError(`stages[${i}].tpotMs`, `of request '${r.id}' must be a positive finite number, got ${st.tpotMs}`);
  }
}
