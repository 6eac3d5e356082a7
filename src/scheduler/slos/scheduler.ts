// The SLOs-Serve scheduler (../../../README.md, "Scheduler"): admission by a DP over new requests,
// steps that execute the plan (sized to every admitted request's next deadline) with speculation
// lengths per request, and a best-effort tier that takes leftovers and is preempted first. With
// `admission: false` and no speculation it is the EDF baseline.
//
// Each step():
//   1. Pending arrivals (coalesced since the last step) are decided: the first `window` by TTFT
//      deadline go through the DP (solveAdmission); the rest wait for the next re-plan. Admitted
//      requests reserve KV for prompt + the app's output-length reservation (reservation.ts). The
//      DP's prefill rate and lag carry a margin learned from admitted first tokens
//      (admission-margin.ts).
//   2. The step's length and drafts (step-plan.ts): no longer than the earliest first-token deadline
//      of admitted prefills it can still meet, nor than any on-time decoder's deadline for the tokens
//      its drafts plan on; drafts per request chosen for the most prefill rows per ms, then spent on
//      racing ahead with what prefill leaves. With the model as the clock an admitted request misses
//      only when its reservation or the model was wrong.
//   3. The step: every admitted decode (with its drafts), then admitted prefills in deadline order
//      in the rows the step length leaves, then best-effort work only where it adds no time to the
//      admitted rows (in practice: steps with no admitted work; a prefill only if the whole remaining
//      prompt fits, else one decode row each).
//      KV for admitted work comes first from free pages, then from preempting best-effort requests
//      (recompute), then from the cached prefixes of requests that have computed nothing yet
//      (waiting for admission, or admitted with a later deadline): they lose the hit, not work.
//
// Prefix-cache hits (`cachedTokens`) need nothing special: a request starts with its cached KV and
// prefill progress, so the DP sees only the uncached rest as prefill work (a hit shortens the time to
// the first token) while the pages it asks for still cover the whole prompt.

import { BaseScheduler, type SchedulerOptions } from '../base.js';
import { keysRead, pagesFor, type RequestState } from '../request-state.js';
import { OutputLengthTracker } from '../slo.js';
import type { SchedRequest, SchedulerEvent, StepEntry, StepOutcome } from '../types.js';
import { OutputReservation, type ReservationMode } from './reservation.js';
import { solveAdmission, type AdmissionItem } from './admission.js';
import { AdmissionMargin } from './admission-margin.js';
import { dropUntilPeakFits, type KvTrajectory } from './kv-projection.js';
import { DecodeRateTable, effectiveTier, makeTiers, tierOf, type TierLoad } from './decode-plan.js';
import { planStepDecodes, type StepDecoder } from './step-plan.js';

// The latency a prefill pays past its fluid share: it ends with the step holding its last chunk, and
// steps are cut short by other requests' deadlines. At least a quarter of Plan(inf)'s step, and half
// the steps actually run (a decayed average): with the quarter alone, chatbot under the paper's profile
// at 27.9 req/s (2 seeds x 400) missed 25 admitted first tokens of 608; with half the measured steps,
// 10, and 4 fewer misses in all (a whole measured step: 0 admitted misses, 3x the declines). The
// learned admission margin (admission-margin.ts) then scales this lag up and the prefill rate down
// (or the opposite) until about 1% of admitted first tokens come after their deadline.
const LAG_STEPS = 0.25;
const LAG_MEASURED = 0.5;

export interface SlosOptions extends SchedulerOptions {
  /** Run the admission DP (false: admit everything, the EDF baseline). Default true. */
  admission?: boolean;
  /** Serve declined requests best-effort (false: drop them). Default true. */
  bestEffort?: boolean;
  /** Longest speculation per request (0: no drafts). Default 0. */
  maxSpec?: number;
  /** Every decode verifies exactly maxSpec drafts (the fixed-k ablation) instead of adaptive lengths. Default false. */
  fixedSpec?: boolean;
  /** KV reserved for a request's output (reservation.ts). Default 'adaptive'. */
  reservation?: ReservationMode;
  /** Most requests per DP, earliest deadlines first (the rest wait): a burst's window. Default 32. */
  window?: number;
  /** Requests per DP when no burst waits (new arrivals first, then re-offers). Default 16. */
  steadyWindow?: number;
  /** TPOT tiers at most. Default 4. */
  maxTiers?: number;
  /** Tokens over which slack is spread when choosing an effective tier. Default 10. */
  tierHorizon?: number;
  /**
   * Output lengths already observed per app (an engine keeps them across sessions; the simulator
   * passes a warm-up trace's), so reservations start from data rather than max_tokens.
   */
  lengthHistory?: Readonly<Record<string, readonly number[]>>;
  /**
   * Learn the admission margin from admitted first tokens (admission-margin.ts); false keeps the
   * DP's fluid estimate as it is (the ablation). Default true.
   */
  learnMargin?: boolean;
  /** Re-plan (the DP) at least this often while requests wait for admission, ms. Default 100. */
  replanMs?: number;
  name?: string;
}

export class SlosScheduler extends BaseScheduler {
  readonly name: string;
  private readonly admission: boolean;
  private readonly bestEffort: boolean;
  private readonly maxSpec: number;
  private readonly fixedSpec: boolean;
  /** Output KV reservations, and their demotion / memory-decline counts. */
  readonly reservation: OutputReservation;
  private readonly window: number;
  private readonly steadyWindow: number;
  private readonly maxTiers: number;
  private readonly horizon: number;
  readonly lengths = new OutputLengthTracker();
  /** The last admission decision refused someone for memory (steps then race decoders to free KV). */
  private memoryBound = false;
  private readonly replanMs: number;
  private readonly learnMargin: boolean;
  private lastReplanMs = -Infinity;
  private replanDue = false;
  /** Set while offer() decides a single request for routing. */
  private offering: RequestState | null = null;
  private offerTaken = false;

  constructor(options: SlosOptions) {
    super(options);
    this.admission = options.admission ?? true;
    this.bestEffort = options.bestEffort ?? true;
    this.maxSpec = options.maxSpec ?? 0;
    this.fixedSpec = options.fixedSpec ?? false;
    this.reservation = new OutputReservation(options.reservation ?? 'adaptive', this.lengths, this.kvBudget.pages * this.kvBudget.pageSize);
    this.window = options.window ?? 32;
    this.steadyWindow = Math.min(this.window, options.steadyWindow ?? 16);
    this.maxTiers = options.maxTiers ?? 4;
    this.horizon = options.tierHorizon ?? 10;
    this.replanMs = options.replanMs ?? 100;
    this.learnMargin = options.learnMargin ?? true;
    for (const [app, lengths] of Object.entries(options.lengthHistory ?? {})) for (const n of lengths) this.lengths.record(app, n);
    this.name = options.name ?? (this.admission ? 'slos' : 'edf');
  }

  override offer(request: SchedRequest, nowMs: number, fallback: boolean): readonly SchedulerEvent[] | null {
    if (!this.admission) return super.offer(request, nowMs, fallback);
    super.submit(request, nowMs);
    const s = this.pending.pop()!;
    this.offering = s;
    this.offerTaken = false;
    const saved = this.pending;
    this.pending = [s];
    try {
      this.decide(nowMs, fallback);
    } finally {
      this.pending = saved;
      this.offering = null;
    }
    if (!this.offerTaken && !fallback) {
      this.states.delete(s.id);
      return null;
    }
    return this.takeEvents();
  }

  protected decide(nowMs: number, fallback = true): void {
    if (!this.admission) {
      for (const s of this.pending) if (!this.dropIfTooLarge(s, s.remainingPrefill + 1, nowMs)) this.accept(s, nowMs);
      this.pending = [];
      return;
    }
    // Candidates: new arrivals, and requests served best-effort that the DP could not take before
    // but whose first token may still be on time (re-offered at every re-plan until then).
    const tentative = this.offering ? [] : [...this.states.values()].filter((s) => s.service === 'best-effort' && !s.declined && s.firstTokenMs === null && s.ttftDeadlineMs > nowMs);
    // The DP window: `steadyWindow` candidates normally, up to `window` when a burst of new arrivals
    // waits; re-offered requests only fill what new arrivals leave.
    const byDeadline = [...this.pending].sort((a, b) => a.ttftDeadlineMs - b.ttftDeadlineMs || a.seq - b.seq);
    const size = Math.max(this.steadyWindow, Math.min(this.window, byDeadline.length));
    const fresh = byDeadline.slice(0, size);
    const again = tentative.sort((a, b) => a.ttftDeadlineMs - b.ttftDeadlineMs).slice(0, Math.max(0, size - fresh.length));
    const candidates = [...fresh, ...again];
    this.pending = byDeadline.slice(size);
    if (!this.offering) {
      this.lastReplanMs = nowMs;
      this.replanDue = false;
    }

    const admitted = [...this.states.values()].filter((s) => s.service === 'admitted');
    const tiers = makeTiers([...admitted.map((s) => s.tpotMs), ...candidates.map((s) => s.req.stages[0]!.tpotMs)], this.maxTiers);
    const loads = this.decodeLoads(
      admitted.filter((s) => !s.prefilling),
      tiers,
      nowMs,
    );
    // Memory, in two parts: the DP makes sure new prompts fit in the pages free now; after it, the
    // projected peak of every admitted request's reservation (kv-projection.ts) must fit the cache.
    let usedPages = 0;
    for (const s of this.states.values()) if (s.service === 'admitted') usedPages += pagesFor(s.kv, this.kvBudget.pageSize);

    const items: (AdmissionItem & { state: RequestState })[] = [];
    for (const s of admitted) {
      if (!s.prefilling) continue;
      const deadline = s.firstTokenMs === null ? s.ttftDeadlineMs : s.nextDeadlineMs;
      items.push({ state: s, forced: true, deadlineMs: deadline, prefillTokens: s.remainingPrefill, tier: tierOf(tiers, s.tpotMs), pages: 0 });
    }
    const reserve = new Map<RequestState, number>();
    let newKeys = 0;
    for (const s of candidates) {
      const out = this.reservation.tokens(s.req);
      reserve.set(s, s.req.promptTokens + out);
      newKeys += (s.req.promptTokens + out / 2) * this.layers;
      const tpot = s.req.stages[0]!.tpotMs;
      items.push({
        state: s,
        forced: false,
        deadlineMs: s.ttftDeadlineMs,
        prefillTokens: s.remainingPrefill,
        tier: tierOf(tiers, tpot),
        tierAt: (finish) => effectiveTier(tiers, this.horizon, s.ttftDeadlineMs + tpot - finish, tpot),
        pages: pagesFor(s.remainingPrefill + s.kv, this.kvBudget.pageSize),
      });
    }
    const keysPerNew = candidates.length > 0 ? newKeys / candidates.length : 0;
    items.sort((a, b) => a.deadlineMs - b.deadlineMs);

    const table = new DecodeRateTable(this.model, loads, this.maxSpec, this.maxTokensPerStep, keysPerNew, this.fixedSpec);
    // The DP caches per count vector and asks rate() then lag() for the same vector in a row: keep
    // the last answer (compared by value: the DP may reuse one array for several vectors).
    const lastExtra: number[] = [];
    let lastQuery: ReturnType<DecodeRateTable['query']> = null;
    const query = (extra: readonly number[]): ReturnType<DecodeRateTable['query']> => {
      let same = lastExtra.length === extra.length;
      for (let k = 0; same && k < extra.length; k++) same = lastExtra[k] === extra[k];
      if (!same) {
        lastExtra.length = 0;
        lastExtra.push(...extra);
        lastQuery = table.query(extra);
      }
      return lastQuery;
    };
    const margin = this.margin.factor;
    const took = solveAdmission({
      nowMs,
      items,
      tiers: tiers.length,
      freePages: this.kvBudget.pages - usedPages,
      rate: (extra) => {
        const r = query(extra)?.rate;
        return r === undefined || r === null ? null : r / margin;
      },
      lag: (extra) => {
        const q = query(extra);
        const steady = q && Number.isFinite(q.stepMs) ? q.stepMs * LAG_STEPS : 0;
        return Math.max(steady, this.stepEwma * LAG_MEASURED) * margin;
      },
    });
    const byDp = took.slice();
    this.fitProjection(
      admitted,
      items.filter((it, i) => took[i]).map((it) => it.state),
      reserve,
      took,
      items,
    );
    // Refusals memory caused (the adaptive reservation learns from their final declines): the
    // projection dropped it, or its prompt's pages alone did not fit beside the DP's choices.
    let takenPages = 0;
    for (const [i, it] of items.entries()) if (byDp[i] && !it.forced) takenPages += it.pages;
    let memory = false;
    for (const [i, it] of items.entries()) {
      if (it.forced) continue;
      it.state.memoryRefused = !took[i] && (byDp[i]! || it.pages > this.kvBudget.pages - usedPages - takenPages);
      memory ||= it.state.memoryRefused;
    }
    // A routing offer decides one request for one replica: it does not change how this replica runs.
    if (!this.offering) this.memoryBound = memory;
    for (const [i, it] of items.entries()) {
      if (it.forced) continue;
      const s = it.state;
      if (took[i]) {
        s.reservedTokens = reserve.get(s)!;
        this.accept(s, nowMs);
      } else if (this.offering === s && !fallback) {
        // Routing: leave it to the next replica.
      } else if (this.bestEffort && pagesFor(s.req.promptTokens + 1, this.kvBudget.pageSize) <= this.kvBudget.pages) {
        // Served best-effort meanwhile; declined for good once its first token can no longer be on time.
        s.service = 'best-effort';
        if (this.offering === s) this.offerTaken = true;
      } else {
        if (s.memoryRefused) this.reservation.onMemoryDecline(s.req.app);
        this.drop(s, nowMs);
      }
    }
  }

  protected override shouldDecide(nowMs: number): boolean {
    if (!this.admission) return this.pending.length > 0;
    // Final declines: best-effort requests whose TTFT deadline passed, or that got their first token.
    for (const s of this.states.values()) {
      if (s.service === 'best-effort' && !s.declined && (s.firstTokenMs !== null || s.ttftDeadlineMs <= nowMs)) this.declineFinally(s, nowMs);
    }
    return this.pending.length > 0 || this.replanDue || nowMs - this.lastReplanMs >= this.replanMs;
  }

  protected override afterComplete(nowMs: number, finished: number): void {
    void nowMs;
    if (finished > 0) this.replanDue = true;
  }

  /** Decayed average of the steps' actual lengths (the admission's lag), and when the current one began. */
  private stepEwma = 0;
  private stepStart = 0;
  /** How optimistic admission may be, learned from admitted first tokens (admission-margin.ts). */
  readonly margin = new AdmissionMargin();

  override complete(nowMs: number, outcomes: readonly StepOutcome[]): readonly SchedulerEvent[] {
    this.stepEwma = 0.9 * this.stepEwma + 0.1 * (nowMs - this.stepStart);
    // Admitted first tokens teach the admission margin (before super.complete records them).
    if (this.learnMargin) {
      for (const o of outcomes) {
        const s = o.emitted > 0 ? this.states.get(o.id) : undefined;
        if (s && s.firstTokenMs === null && s.service === 'admitted') this.margin.record(nowMs, s.ttftDeadlineMs);
      }
    }
    return super.complete(nowMs, outcomes);
  }

  protected build(nowMs: number): { entries: StepEntry[]; preempt: string[] } {
    this.stepStart = nowMs;
    const all = [...this.states.values()].filter((s) => s.service !== 'pending');
    const admitted = all.filter((s) => s.service === 'admitted');
    // The runner takes at most maxSeqs sequences a step: the most urgent decode first.
    const decoders = admitted
      .filter((s) => !s.prefilling)
      .sort((a, b) => a.nextDeadlineMs - b.nextDeadlineMs || a.seq - b.seq)
      .slice(0, this.maxSeqs);
    const prefills = admitted.filter((s) => s.prefilling).sort((a, b) => deadlineOf(a) - deadlineOf(b) || a.seq - b.seq);
    const bestEffort = all.filter((s) => s.service === 'best-effort' && s.req.serveDeclined !== false).sort((a, b) => a.seq - b.seq);

    // The step length: every admitted request's next deadline, under the model. Prefills first: the
    // earliest first-token deadline this step can still meet (all prefills due before it, in deadline
    // order, after the decode rows) caps the step. A prefill that cannot finish by its deadline in one
    // step does not cap it (a shorter step would not save it).
    // Prefills due before the step after this one could end (the cap plus the shortest step) must be
    // whole in this one, when they fit within the cap: the next step would finish them too late.
    let capMs = Infinity;
    let mustPrefill = 0;
    let mustKeys = 0;
    let keysSoFar = 0;
    let work = decoders.length;
    const shortest = this.model.predict({ tokens: decoders.length + 1 });
    for (const s of prefills) {
      work += s.remainingPrefill;
      keysSoFar += keysRead(s.kv, s.remainingPrefill, this.layers);
      const left = deadlineOf(s) - nowMs;
      const fits = left > 0 && work <= this.maxTokensPerStep && this.model.predict({ tokens: work }) <= Math.min(left, capMs);
      if (!Number.isFinite(capMs)) {
        if (!fits) continue;
        capMs = left;
        mustPrefill = work - decoders.length;
        mustKeys = keysSoFar;
      } else if (left < capMs + shortest) {
        if (fits) {
          mustPrefill = work - decoders.length;
          mustKeys = keysSoFar;
        }
      } else break;
    }
    let prefillWork = 0;
    let prefillKeys = 0;
    // Rows per ms the admitted prefills need to meet their deadlines (EDF: the worst prefix).
    let needRate = 0;
    for (const s of prefills) {
      prefillWork += s.remainingPrefill;
      if (prefillWork <= this.maxTokensPerStep) prefillKeys += keysRead(s.kv, s.remainingPrefill, this.layers);
      const left = deadlineOf(s) - nowMs;
      if (left > 0) needRate = Math.max(needRate, prefillWork / left);
    }
    const memoryBound = this.memoryBound;
    const tiers = makeTiers(
      admitted.map((s) => s.tpotMs),
      this.maxTiers,
    );
    const loads = this.decodeLoads(decoders, tiers, nowMs);
    const steady = decoders.length > 0 ? new DecodeRateTable(this.model, loads, this.maxSpec, this.maxTokensPerStep, 0, this.fixedSpec).query(loads.map(() => 0)) : null;
    const views: StepDecoder[] = decoders.map((s) => ({
      reachMs: (tokens: number) => s.tokenDeadlineMs(s.generated + tokens) - nowMs,
      alpha: this.acceptance.alpha(s.req.app),
      maxK: Math.max(0, Math.min(this.maxSpec, s.req.maxTokens - s.generated - 1)),
      kv: s.kv,
    }));
    // Pages in use now (the ledger the rows below take pages from).
    const ledger = this.ledger();
    const decodePlan = planStepDecodes(views, {
      model: this.model,
      layers: this.layers,
      maxTokensPerStep: this.maxTokensPerStep,
      speculation: this.fixedSpec ? this.maxSpec : 'adaptive',
      capMs,
      mustPrefill,
      mustKeys,
      prefillWork: Math.min(prefillWork, this.maxTokensPerStep),
      prefillKeys,
      steadyMs: steady && Number.isFinite(steady.stepMs) ? steady.stepMs : (tiers[0] ?? Infinity),
      memoryBound,
      needRate: needRate * 1.2,
      kvPressure: (this.kvBudget.pages - ledger.free) * 2 >= this.kvBudget.pages,
    });
    const stepMs = decodePlan.stepMs;

    const entries: StepEntry[] = [];
    const preempt: string[] = [];
    const inStep = new Set<RequestState>();
    // Pages come from free pages, then from preempting best-effort KV (latest first). Only a decode
    // may go further and demote an admitted request, preferring one past its reservation (an
    // overrun), then the one with the most slack; a prefill waits instead.
    const victims = (demote: boolean, self: RequestState): RequestState[] => {
      const pool = all.filter((s) => s !== self && s.kv > 0 && !inStep.has(s) && !preempt.includes(s.id) && s.service === 'best-effort');
      pool.sort((a, b) => b.seq - a.seq);
      if (pool.length > 0) return pool;
      // Cached prefixes nobody has computed on yet (only with prefix caching): those of requests
      // waiting for admission, and of admitted ones due after `self` (ties: arrived after it, so two
      // tied requests never block each other), latest deadline first. They
      // keep their service; only admitted work reclaims them.
      if (self.service === 'admitted') {
        const cached = [...this.states.values()].filter(
          (s) =>
            s !== self &&
            s.onlyCached &&
            !inStep.has(s) &&
            !preempt.includes(s.id) &&
            (s.service === 'pending' || (s.service === 'admitted' && (deadlineOf(s) > deadlineOf(self) || (deadlineOf(s) === deadlineOf(self) && s.seq > self.seq)))),
        );
        if (cached.length > 0) return cached.sort((a, b) => deadlineOf(b) - deadlineOf(a) || b.seq - a.seq);
      }
      if (!demote) return pool;
      const adm = all.filter((s) => s !== self && s.kv > 0 && !inStep.has(s) && !preempt.includes(s.id) && s.service === 'admitted');
      const overrun = (s: RequestState): number => (s.kv >= s.reservedTokens ? 1 : 0);
      adm.sort((a, b) => overrun(b) - overrun(a) || b.nextDeadlineMs - a.nextDeadlineMs);
      return adm;
    };
    /** Pages best-effort victims could free (a dry run before preempting anyone). */
    const releasable = (self: RequestState): number => victims(false, self).reduce((n, v) => n + pagesFor(v.kv, this.kvBudget.pageSize), 0);
    const take = (s: RequestState, rows: number, demote: boolean): boolean => {
      const need = ledger.extra(s, rows);
      if (!demote && need > ledger.free && need > ledger.free + releasable(s)) return false;
      while (!ledger.take(s, rows)) {
        const v = victims(demote, s)[0];
        if (!v) return false;
        ledger.release(v);
        preempt.push(v.id);
        if (v.service === 'admitted' && !v.onlyCached) {
          v.service = 'best-effort';
          v.declined = true;
          this.reservation.onDemoted(v.req.app);
          this.emit(v, 'best-effort', nowMs);
        }
      }
      return true;
    };

    let rows = 0;
    let draftSteps = 0;
    let keys = 0;
    /** Whether `extraRows` more rows reading `extraKeys` keys keep the step within `limitMs`. */
    const fits = (extraRows: number, extraKeys: number, limitMs: number): boolean =>
      rows + extraRows <= this.maxTokensPerStep && (!Number.isFinite(limitMs) || this.model.predict({ tokens: rows + extraRows, draftSteps, kvTokensRead: keys + extraKeys }) <= limitMs);
    /** The longest chunk of `s`'s prefill (up to `most`) that fits within `limitMs`. */
    const chunkWithin = (s: RequestState, most: number, limitMs: number): number => {
      const chunk = Math.min(most, this.maxTokensPerStep - rows);
      if (chunk <= 0 || fits(chunk, keysRead(s.kv, chunk, this.layers), limitMs)) return Math.max(0, chunk);
      let lo = 0;
      let hi = chunk;
      while (hi - lo > 1) {
        const mid = (lo + hi) >> 1;
        if (fits(mid, keysRead(s.kv, mid, this.layers), limitMs)) lo = mid;
        else hi = mid;
      }
      return lo;
    };

    for (const [i, s] of decoders.entries()) {
      if (preempt.includes(s.id)) continue; // demoted and preempted for an earlier decode's pages
      if (this.dropIfTooLarge(s, 1, nowMs)) continue;
      if (rows >= this.maxTokensPerStep) break;
      let k = Math.min(decodePlan.spec[i]!, this.maxTokensPerStep - rows - 1);
      // Short of pages: drop the drafts before taking anyone else's pages.
      if (!take(s, 1 + k, false)) {
        k = 0;
        if (!take(s, 1, s.kv < s.reservedTokens)) continue;
      }
      entries.push({ id: s.id, kind: 'decode', draftTokens: k });
      inStep.add(s);
      rows += 1 + k;
      draftSteps = Math.max(draftSteps, k);
      keys += keysRead(s.kv, 1 + k, this.layers);
    }
    for (const s of prefills) {
      if (entries.length >= this.maxSeqs || rows >= this.maxTokensPerStep) break;
      if (preempt.includes(s.id)) continue;
      let chunk = chunkWithin(s, s.remainingPrefill, stepMs);
      if (chunk <= 0) break;
      // Shrink the chunk to the pages free (plus best-effort KV) rather than stall every later prefill.
      if (ledger.extra(s, chunk) > ledger.free) {
        const room = (ledger.free + releasable(s)) * this.kvBudget.pageSize + (pagesFor(s.kv, this.kvBudget.pageSize) * this.kvBudget.pageSize - s.kv);
        chunk = Math.min(chunk, room);
      }
      if (chunk <= 0 || !take(s, chunk, false)) continue;
      entries.push({ id: s.id, kind: 'prefill', tokens: chunk });
      inStep.add(s);
      rows += chunk;
      keys += keysRead(s.kv, chunk, this.layers);
    }

    // Best-effort: rows inside the admitted rows' own predicted time only, never lengthening the step.
    // Every row costs time under the model, so in practice best-effort work runs in steps with no
    // admitted work (then up to a full step). Filling best-effort rows up to the deadline-sized
    // length instead made every step as long as its deadlines allow: arrivals waited longer for
    // admission and decoders held KV longer (paper profile, 2 seeds x 400: summarizer at 1.45 req/s
    // fell from 0.87 to 0.67 attainment, reasoning at 0.49 from 0.93 to 0.67).
    const idle = entries.length === 0;
    const limitMs = idle ? Infinity : this.model.predict({ tokens: rows, draftSteps, kvTokensRead: keys });
    for (const s of bestEffort) {
      if (entries.length >= this.maxSeqs || rows >= this.maxTokensPerStep) break;
      if (preempt.includes(s.id)) continue;
      let n: number;
      if (!s.prefilling) {
        if (!fits(1, keysRead(s.kv, 1, this.layers), limitMs)) continue;
        n = 1;
      } else if (fits(s.remainingPrefill, keysRead(s.kv, s.remainingPrefill, this.layers), limitMs)) n = s.remainingPrefill;
      else if (idle && entries.length === 0)
        n = chunkWithin(s, s.remainingPrefill, limitMs); // nothing admitted to protect: chunk it
      else continue;
      if (n <= 0 || !take(s, n, false)) continue;
      entries.push(s.prefilling ? { id: s.id, kind: 'prefill', tokens: n } : { id: s.id, kind: 'decode', draftTokens: 0 });
      inStep.add(s);
      rows += n;
      keys += keysRead(s.kv, n, this.layers);
    }
    return { entries, preempt };
  }

  protected override onRemoved(s: RequestState, nowMs: number, finished: boolean): void {
    // Served best-effort to the end before its decline was announced (a 1-token answer): announce it.
    if (finished && s.service === 'best-effort' && !s.declined) this.declineFinally(s, nowMs);
    if (finished) this.lengths.record(s.req.app, s.generated);
  }

  /** Announce that a request served best-effort will not be admitted. */
  private declineFinally(s: RequestState, nowMs: number): void {
    s.declined = true;
    if (s.memoryRefused) this.reservation.onMemoryDecline(s.req.app);
    this.emit(s, 'best-effort', nowMs);
  }

  private accept(s: RequestState, nowMs: number): void {
    s.service = 'admitted';
    if (s.reservedTokens === 0) s.reservedTokens = s.req.promptTokens + s.req.maxTokens;
    this.emit(s, 'admitted', nowMs);
    if (this.offering === s) this.offerTaken = true;
  }

  /** Drop the DP's new admissions whose reservations would push the projected KV peak over the cache. */
  private fitProjection(admitted: readonly RequestState[], chosen: RequestState[], reserve: ReadonlyMap<RequestState, number>, took: boolean[], items: readonly { state: RequestState }[]): void {
    const trajectory = (s: RequestState, reserved: number): KvTrajectory => ({
      now: s.prefilling ? s.prefillTarget : s.kv,
      // An overrun (past its reservation) may still grow: give it a page of room.
      reserved: Math.max(reserved, s.kv + this.kvBudget.pageSize),
      paceMs: s.tpotMs,
    });
    const dropped = dropUntilPeakFits(
      admitted.map((s) => trajectory(s, s.reservedTokens)),
      chosen.map((s) => ({ key: s, trajectory: trajectory(s, reserve.get(s)!) })),
      this.kvBudget.pages,
      this.kvBudget.pageSize,
    );
    for (const s of dropped) took[items.findIndex((it) => it.state === s)] = false;
  }

  /** Decode load per tier, each decoder in its effective tier (slack spread over the horizon). */
  private decodeLoads(decoders: readonly RequestState[], tiers: readonly number[], nowMs: number, out?: Map<RequestState, number>): TierLoad[] {
    const loads: TierLoad[] = tiers.map((tpotMs) => ({ tpotMs, requests: 0, keys: 0, alpha: 0 }));
    const alphaSum = tiers.map(() => 0);
    for (const s of decoders) {
      const k = effectiveTier(tiers, this.horizon, s.nextDeadlineMs - nowMs, s.tpotMs);
      out?.set(s, k);
      loads[k]!.requests++;
      loads[k]!.keys += (s.kv + 1) * this.layers;
      alphaSum[k]! += this.acceptance.alpha(s.req.app);
    }
    for (const [k, l] of loads.entries()) l.alpha = l.requests > 0 ? alphaSum[k]! / l.requests : this.acceptance.prior;
    return loads;
  }
}

function deadlineOf(s: RequestState): number {
  return s.firstTokenMs === null ? s.ttftDeadlineMs : s.nextDeadlineMs;
}
