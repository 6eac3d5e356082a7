// The engine loop: each step, the scheduler's plan becomes one ragged batch (prefill chunks, decodes,
// draft/verify) run through SpeculativeDecoder on the target's RunnerSession; sampled and accepted tokens
// go to each request's sink; the outcomes go back to the scheduler. The core works in token ids and
// never blocks on anything but the GPU; text and the OpenAI shapes live in src/host and src/openai.
// A step is: cancels, schedule (the plan and its admission events), run, postprocess (output.ts turns
// tokens into each request's output; kv-owner.ts publishes, keeps and frees KV), complete.
//
// Per request, the target's KV holds every token but the last emitted one (the pending token), as
// SpeculativeDecoder expects: a prefill's final chunk samples the first (or, after a recompute preemption,
// the next) token, and the request is then adopted by the SpeculativeDecoder for decoding.

import type { SchedRequest, Scheduler, SchedulerEvent, StepOutcome, StepPlan } from '../scheduler/types.js';
import type { ExtraSequence, SpeculativeDecoder } from '../speculative/speculative-decoder.js';
import { wallClock, wallTimer, type Clock, type StepTimer } from './clock.js';
import { AbortError, EngineClosedError, PromptTooLongError, RequestDeclinedError, RequestError } from './errors.js';
import { ConversationStore } from './conversations.js';
import { KvOwner } from './kv-owner.js';
import type { Live } from './live.js';
import { deliver, send, sendable } from './output.js';
import { logSoftmaxTop } from './logprobs.js';
import type { CoreRequestSpec, EmittedToken, FinishReason, RequestSink } from './request.js';
import { StatsCollector, type EngineStats } from './stats.js';

export interface EngineCoreOptions {
  decoder: SpeculativeDecoder;
  scheduler: Scheduler;
  /** Longest sequence (prompt + output) the model takes: its max_position_embeddings. */
  maxContextTokens: number;
  clock?: Clock;
  timer?: StepTimer;
  /**
   * Prefix caching (the target's PagedKvCache must have been created with prefixCaching): prompts
   * start from their longest cached prefix; conversations keep their KV for `conversationTtlMs`.
   */
  prefixCache?: { conversationTtlMs?: number };
  /** Called after every executed step (the perf model's online samples, the demo's charts). */
  onStep?: (plan: StepPlan, measuredMs: number, executed: { tokens: number; kvTokensRead: number }) => void;
}

export class EngineCore {
  readonly stats = new StatsCollector();
  private readonly live = new Map<string, Live>();
  private readonly cancels = new Map<string, Error>();
  private readonly awaiting = new Map<string, { r: Live; reason: FinishReason; atMs: number }>();
  private readonly kv: KvOwner;
  private closedBy: Error | null = null;
  private readonly clock: Clock;
  private readonly timer: StepTimer;
  /** How output handling ends a request (output.ts calls it). */
  private readonly finishFn = (r: Live, reason: FinishReason, atMs: number): void => this.finish(r, reason, atMs);

  constructor(private o: EngineCoreOptions) {
    this.clock = o.clock ?? wallClock;
    this.timer = o.timer ?? wallTimer;
    const conversations = o.prefixCache ? new ConversationStore(o.decoder.target.kv, o.prefixCache.conversationTtlMs ?? 300_000) : null;
    this.kv = new KvOwner(o.decoder, conversations, (app, cached) => this.stats.prompt(app, 0, -cached));
  }

  get scheduler(): Scheduler {
    return this.o.scheduler;
  }

  /** Switch policy; only while the engine holds no request (a scheduler's state is its own). */
  setScheduler(scheduler: Scheduler): void {
    if (this.live.size > 0 || this.o.scheduler.size > 0) throw new RequestError('scheduler', `cannot change while ${this.live.size} requests are in the engine`);
    this.o.scheduler = scheduler;
  }

  /** Requests in the engine (waiting, running). */
  get size(): number {
    return this.live.size;
  }

  now(): number {
    return this.clock.now();
  }

  /** Queue a request; its results come through `sink`. Throws (typed) on input that can never run. */
  submit(spec: CoreRequestSpec, sink: RequestSink): void {
    if (this.closedBy) throw this.closedBy;
    if (this.live.has(spec.id)) throw new RequestError('id', `'${spec.id}' is already in the engine`);
    if (spec.prompt.length === 0) throw new RequestError('prompt', 'is empty: give at least one token');
    const runner = this.o.decoder.target.runner;
    const cacheTokens = runner.numPages * runner.pageSize;
    if (spec.prompt.length + 1 > this.o.maxContextTokens) throw new PromptTooLongError(spec.prompt.length, this.o.maxContextTokens, "the model's context");
    if (spec.prompt.length + 1 > cacheTokens) throw new PromptTooLongError(spec.prompt.length, cacheTokens, 'the KV cache');
    if (!(Number.isInteger(spec.maxTokens) && spec.maxTokens >= 1)) throw new RequestError('max_tokens', `must be a positive integer (got ${spec.maxTokens})`);
    const maxTokens = Math.min(spec.maxTokens, this.o.maxContextTokens - spec.prompt.length);
    const now = this.clock.now();
    const arrival = spec.arrivalMs ?? now;
    const timeline = { arrivalMs: arrival, ttftSloMs: spec.ttftMs, stages: spec.stages, stageStarts: [0], tokenTimes: [] as number[], finished: false };
    // A prefix-cache hit (or a kept conversation) pins its pages now, so the scheduler can count on it.
    const { seq, cached } = this.kv.startFromCache(spec, this.clock.now());
    const r: Live = {
      spec: { ...spec, maxTokens },
      sink,
      generated: [],
      seq,
      prefilled: cached,
      decoding: false,
      decision: 'pending',
      timeline,
      stageAt: spec.stageBoundaries?.[0] ?? null,
      boundaries: [...(spec.stageBoundaries ?? []).slice(1)],
      unsent: [],
      sent: 0,
      cached,
      publishedPages: Math.floor(cached / runner.pageSize),
    };
    let offered: readonly SchedulerEvent[] | null = null;
    try {
      const request: SchedRequest = {
        id: spec.id,
        app: spec.app,
        arrivalMs: arrival,
        promptTokens: spec.prompt.length,
        cachedTokens: cached,
        maxTokens,
        ttftMs: spec.ttftMs,
        stages: spec.stages,
        serveDeclined: spec.onDecline !== 'error',
      };
      if (spec.offer) {
        // A router's offer: admitted now, or refused with nothing of it left in the engine.
        offered = this.o.scheduler.offer(request, Math.max(now, arrival), false);
        if (offered === null) throw new RequestDeclinedError(spec.app, spec.id, 'not-admitted');
      } else this.o.scheduler.submit(request, Math.max(now, arrival));
    } catch (e) {
      // Refused by the scheduler (a bad field, or an offer not taken): nothing of it may stay, the pinned pages included.
      r.cached = 0;
      this.kv.drop(r);
      throw e;
    }
    this.live.set(spec.id, r);
    this.stats.submitted(spec.app);
    this.stats.prompt(spec.app, spec.prompt.length, cached);
    if (offered) this.apply(offered);
  }

  /** Abort a request: it fails with `error` at once; its KV is freed before the next step. */
  cancel(id: string, error: Error = new AbortError()): void {
    const r = this.live.get(id);
    if (!r || this.cancels.has(id)) return;
    this.cancels.set(id, error);
  }

  /**
   * Plan and run one step. 'idle' when the scheduler has nothing to run now (no requests, or all
   * waiting for admission); 'ran' otherwise.
   */
  async runStep(): Promise<'ran' | 'idle'> {
    this.applyCancels();
    this.kv.conversations?.expire(this.clock.now());
    if (this.o.scheduler.size === 0) return 'idle';
    const decided = this.o.scheduler.step(this.clock.now());
    this.apply(decided.decisions);
    let plan = decided.plan;
    if (!plan) return 'idle';
    for (const id of plan.preempt) this.kv.drop(this.live.get(id));
    // A request failed by this step's events (a decline under the 'error' policy) leaves the plan.
    if (plan.entries.some((e) => !this.live.has(e.id))) plan = { ...plan, entries: plan.entries.filter((e) => this.live.has(e.id)) };
    if (plan.entries.length === 0) return 'ran';

    this.kv.ensurePages(plan, this.live);
    const { decodeSeqs, extras, wantLogits } = this.buildBatch(plan);
    const t0 = performance.now();
    const res = await this.o.decoder.step(decodeSeqs, extras, { logits: wantLogits });
    const measured = performance.now() - t0;
    this.timer.afterStep(plan, measured);
    const end = this.clock.now();
    const outcomes = this.collect(plan, res, end);
    for (const e of plan.entries) {
      const r = this.live.get(e.id);
      if (r) this.kv.publish(r);
    }
    this.apply(this.o.scheduler.complete(end, outcomes));
    this.settleAwaiting();
    this.stats.step(plan, end, measured);
    this.o.onStep?.(plan, measured, { tokens: res.verify.features.tokens, kvTokensRead: res.verify.features.attendedKeys * this.o.decoder.target.runner.numLayers });
    return 'ran';
  }

  /** Fail every request with `error` and refuse new ones (unload, device loss). */
  close(error: Error = new EngineClosedError()): void {
    if (!this.closedBy) this.closedBy = error instanceof EngineClosedError ? error : new EngineClosedError(`the engine stopped: ${error.message}`);
    for (const id of [...this.live.keys()]) this.fail(this.live.get(id)!, error, 'failed');
    try {
      this.kv.conversations?.clear();
    } catch {
      // A lost device: the bookkeeping is moot.
    }
  }

  snapshot(): EngineStats {
    const kv = this.o.decoder.target.kv;
    const out = this.stats.snapshot(
      {
        pagesTotal: kv.numPages,
        pagesUsed: kv.usedPages(),
        pageSize: kv.pageSize,
        cachedPages: kv.cachedPages(),
        evictablePages: kv.evictablePages(),
        conversations: this.kv.conversations?.size ?? 0,
      },
      this.o.scheduler.name,
    );
    // Not started: nothing of the prompt computed beyond what the cache held, nothing generated.
    for (const [id, r] of this.live) {
      if (this.cancels.has(id) || r.prefilled > r.cached || r.generated.length > 0) continue;
      const app = out.apps.find((a) => a.app === r.spec.app);
      if (app) app.waiting++;
    }
    // A cancel takes effect at the next step boundary (a step in flight may be using the request),
    // but the caller's promise already failed: count it as ended now, as the caller sees it.
    for (const [id, error] of this.cancels) {
      const r = this.live.get(id);
      const app = r ? out.apps.find((a) => a.app === r.spec.app) : undefined;
      if (!app) continue;
      app.running--;
      if (error instanceof AbortError) app.aborted++;
      else app.failed++;
    }
    return out;
  }

  private applyCancels(): void {
    for (const [id, error] of this.cancels) {
      const r = this.live.get(id);
      if (!r) continue;
      this.o.scheduler.cancel(id, this.clock.now());
      this.fail(r, error, error instanceof AbortError ? 'aborted' : 'failed');
    }
    this.cancels.clear();
  }

  /** The scheduler's admission decisions: settle, fail or flag the requests they name. */
  private apply(decisions: readonly SchedulerEvent[]): void {
    for (const ev of decisions) {
      const waiting = this.awaiting.get(ev.id);
      if (waiting) {
        this.awaiting.delete(ev.id);
        if (ev.decision === 'admitted') {
          waiting.r.decision = 'admitted';
          this.finish(waiting.r, waiting.reason, waiting.atMs);
        } else {
          this.stats.ended(waiting.r.spec.app, 'declined', null);
          waiting.r.sink.onError(new RequestDeclinedError(waiting.r.spec.app, ev.id, 'slo'));
        }
        continue;
      }
      const r = this.live.get(ev.id);
      if (!r) continue;
      if (ev.decision === 'declined') {
        // Declined for good (or KV outgrew the cache): the scheduler has already forgotten it.
        const reason = r.decision === 'pending' ? 'slo' : 'kv-exhausted';
        this.fail(r, new RequestDeclinedError(r.spec.app, r.spec.id, reason), 'declined');
      } else if (ev.decision === 'best-effort' && r.spec.onDecline === 'error') {
        this.o.scheduler.cancel(ev.id, ev.atMs);
        this.fail(r, new RequestDeclinedError(r.spec.app, r.spec.id, 'slo'), 'declined');
      } else if (r.decision === 'pending' || (ev.decision === 'best-effort' && r.decision === 'admitted')) {
        if (ev.decision === 'best-effort') this.stats.bestEffort(r.spec.app);
        r.decision = ev.decision;
        r.sink.onDecision?.(ev.decision, ev.atMs);
      }
    }
  }

  private buildBatch(plan: StepPlan): { decodeSeqs: number[]; extras: ExtraSequence[]; wantLogits: boolean } {
    const decodeSeqs: number[] = [];
    const extras: ExtraSequence[] = [];
    let wantLogits = false;
    for (const e of plan.entries) {
      const r = this.live.get(e.id)!;
      if (r.spec.topLogprobs !== null) wantLogits = true;
      if (e.kind === 'decode') {
        this.o.decoder.setK(r.seq!, e.draftTokens);
        decodeSeqs.push(r.seq!);
        continue;
      }
      if (r.seq === null) r.seq = this.o.decoder.target.newSequence();
      // The chunk of prompt + output (after a recompute) without copying the whole sequence each step.
      const prompt = r.spec.prompt;
      const total = prompt.length + r.generated.length;
      const tokens: number[] = [];
      for (let i = r.prefilled; i < Math.min(total, r.prefilled + e.tokens); i++) tokens.push(i < prompt.length ? prompt[i]! : r.generated[i - prompt.length]!);
      const final = r.prefilled + e.tokens >= total;
      const extra: ExtraSequence = { id: r.seq, tokens, outputs: final ? 'last' : 'none' };
      if (final && r.spec.sampling) extra.sampling = { ...r.spec.sampling, tokenIndex: r.generated.length };
      if (final && r.spec.penalties) extra.penalties = { penalties: r.spec.penalties, context: [...prompt, ...r.generated], promptLength: prompt.length };
      extras.push(extra);
    }
    return { decodeSeqs, extras, wantLogits };
  }

  private collect(plan: StepPlan, res: Awaited<ReturnType<SpeculativeDecoder['step']>>, atMs: number): StepOutcome[] {
    const outcomes: StepOutcome[] = [];
    const V = this.o.decoder.target.runner.config.vocabSize;
    const logits = res.verify.logits;
    const rowLogprob = (row: number, token: number, r: Live): EmittedToken => {
      const top = r.spec.topLogprobs;
      if (top === null || !logits) return { id: token };
      return { id: token, logprob: logSoftmaxTop(logits.subarray(row * V, (row + 1) * V), token, top) };
    };
    // Output rows: every decode's k + 1 rows in entry order, then one row per finishing prefill.
    let row = 0;
    for (const e of plan.entries) {
      if (e.kind !== 'decode') continue;
      const r = this.live.get(e.id)!;
      const emitted = res.emitted.get(r.seq!)!;
      const tokens = emitted.map((t, i) => rowLogprob(row + i, t, r));
      row += e.draftTokens + 1;
      this.stats.accepted += emitted.length - 1;
      outcomes.push(deliver(r, tokens, atMs, this.finishFn, emitted.length - 1));
    }
    for (const e of plan.entries) {
      if (e.kind !== 'prefill') continue;
      const r = this.live.get(e.id)!;
      const targetLength = r.spec.prompt.length + r.generated.length;
      r.prefilled += e.tokens;
      if (r.prefilled < targetLength) {
        outcomes.push({ id: e.id, emitted: 0, finished: false });
        continue;
      }
      const token = res.verify.tokens[row]!;
      const emitted = rowLogprob(row, token, r);
      row++;
      const all = [...r.spec.prompt, ...r.generated, token];
      this.o.decoder.adopt(r.seq!, all, r.spec.prompt.length, {
        k: 0,
        ...(r.spec.sampling ? { sampling: r.spec.sampling } : {}),
        ...(r.spec.penalties ? { penalties: r.spec.penalties } : {}),
        group: r.spec.app,
      });
      r.decoding = true;
      outcomes.push(deliver(r, [emitted], atMs, this.finishFn));
    }
    return outcomes;
  }

  private finish(r: Live, reason: FinishReason, atMs: number): void {
    this.kv.keepOrDrop(r, atMs);
    this.live.delete(r.spec.id);
    r.timeline.finished = true;
    if (!sendable(r)) {
      // Served before its admission was decided: the decision comes with the step's events.
      this.awaiting.set(r.spec.id, { r, reason, atMs });
      return;
    }
    // Held tokens go out now; a stop string among them makes the reason 'stop'.
    const stopped = send(r, atMs);
    this.stats.ended(r.spec.app, 'completed', { id: r.spec.id, round: r.timeline, declined: r.decision === 'best-effort' });
    r.sink.onFinish(stopped ? 'stop' : reason, atMs);
  }

  /** Requests that finished before their decision: no decline came with the step, so they count as served. */
  private settleAwaiting(): void {
    for (const { r, reason, atMs } of this.awaiting.values()) {
      r.decision = 'admitted';
      this.finish(r, reason, atMs);
    }
    this.awaiting.clear();
  }

  private fail(r: Live, error: Error, how: 'declined' | 'aborted' | 'failed'): void {
    this.kv.drop(r);
    this.live.delete(r.spec.id);
    this.stats.ended(r.spec.app, how, null);
    r.sink.onError(error);
  }
}
