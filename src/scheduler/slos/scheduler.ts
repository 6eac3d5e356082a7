// The SLOs-Serve scheduler (../../../README.md, "Scheduler"): admission by a DP over new requests,
// EDF batches with per-tier speculation lengths, and a best-effort tier that takes leftovers and is
// preempted first. With `admission: false` and no speculation it is the EDF baseline.
//
// Each step():
//   1. Pending arrivals (coalesced since the last step) are decided: the first `window` by TTFT
//      deadline go through the DP (solveAdmission); the rest wait for the next re-plan. Admitted
//      requests reserve KV for prompt + min(max_tokens, the app's online p90 output length).
//   2. Decoding admitted requests get an effective tier from their slack (ahead of their curve ->
//      looser, behind -> tighter) and Plan(inf) picks the step length and speculation per tier.
//   3. The step: every admitted decode (with its tier's drafts), then admitted prefills in deadline
//      order in the rows the step length leaves, then best-effort work in what is left (a prefill
//      only if the whole remaining prompt fits, else one decode row each). KV for admitted work comes
//      first from free pages, then from preempting best-effort requests (recompute), then from the
//      cached prefixes of requests that have computed nothing yet (waiting for admission, or admitted
//      with a later deadline): they lose the hit, not work.
//
// Prefix-cache hits (`cachedTokens`) need nothing special: a request starts with its cached KV and
// prefill progress, so the DP sees only the uncached rest as prefill work (a hit shortens the time to
// the first token) while the pages it asks for still cover the whole prompt.

import { BaseScheduler, type SchedulerOptions } from '../base.js';
import { keysRead, pagesFor, type RequestState } from '../request-state.js';
import { OutputLengthTracker } from '../slo.js';
import type { SchedRequest, StepEntry } from '../types.js';
import { solveAdmission, type AdmissionItem } from './admission.js';
import { dropUntilPeakFits, type KvTrajectory } from './kv-projection.js';
import { DecodeRateTable, effectiveTier, makeTiers, planDecoding, plannedTokens, tierOf, type DecodePlan, type TierLoad } from './decode-plan.js';

// A quarter step: a prefill ends with the step holding its last chunk, and arrivals land mid-step
// (half a step on average; EDF steps often end early, so a quarter measured better in the simulator).
const LAG_STEPS = 0.25;

export interface SlosOptions extends SchedulerOptions {
  /** Run the admission DP (false: admit everything, the EDF baseline). Default true. */
  admission?: boolean;
  /** Serve declined requests best-effort (false: drop them). Default true. */
  bestEffort?: boolean;
  /** Longest speculation per tier (0: no drafts). Default 0. */
  maxSpec?: number;
  /** KV reserved for a request's output: min(max_tokens, app p90) or max_tokens. Default 'p90'. */
  reservation?: 'p90' | 'max_tokens';
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
   * passes a warm-up trace's), so p90 reservations start from data rather than max_tokens.
   */
  lengthHistory?: Readonly<Record<string, readonly number[]>>;
  /** Re-plan (the DP) at least this often while requests wait for admission, ms. Default 100. */
  replanMs?: number;
  name?: string;
}

export class SlosScheduler extends BaseScheduler {
  readonly name: string;
  private readonly admission: boolean;
  private readonly bestEffort: boolean;
  private readonly maxSpec: number;
  private readonly reservation: 'p90' | 'max_tokens';
  private readonly window: number;
  private readonly steadyWindow: number;
  private readonly maxTiers: number;
  private readonly horizon: number;
  readonly lengths = new OutputLengthTracker();
  private readonly replanMs: number;
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
    this.reservation = options.reservation ?? 'p90';
    this.window = options.window ?? 32;
    this.steadyWindow = Math.min(this.window, options.steadyWindow ?? 16);
    this.maxTiers = options.maxTiers ?? 4;
    this.horizon = options.tierHorizon ?? 10;
    this.replanMs = options.replanMs ?? 100;
    for (const [app, lengths] of Object.entries(options.lengthHistory ?? {})) for (const n of lengths) this.lengths.record(app, n);
    this.name = options.name ?? (this.admission ? 'slos' : 'edf');
  }

  override offer(request: SchedRequest, nowMs: number, fallback: boolean): boolean {
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
    if (!this.offerTaken && !fallback) this.states.delete(s.id);
    return this.offerTaken || fallback;
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
    const loads = this.decodeLoads(admitted.filter((s) => !s.prefilling), tiers, nowMs);
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
      const out = this.lengths.reservation(s.req.app, s.req.maxTokens, this.reservation);
      reserve.set(s, s.req.promptTokens + out);
      newKeys += (s.req.promptTokens + out / 2) * this.layers;
      const tpot = s.req.stages[0]!.tpotMs;
      items.push({ state: s, forced: false, deadlineMs: s.ttftDeadlineMs, prefillTokens: s.remainingPrefill, tier: tierOf(tiers, tpot), tierAt: (finish) => effectiveTier(tiers, this.horizon, s.ttftDeadlineMs + tpot - finish, tpot), pages: pagesFor(s.remainingPrefill + s.kv, this.kvBudget.pageSize) });
    }
    const keysPerNew = candidates.length > 0 ? newKeys / candidates.length : 0;
    items.sort((a, b) => a.deadlineMs - b.deadlineMs);

    const table = new DecodeRateTable(this.model, loads, this.maxSpec, this.maxTokensPerStep, keysPerNew);
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
    const took = solveAdmission({
      nowMs,
      items,
      tiers: tiers.length,
      freePages: this.kvBudget.pages - usedPages,
      rate: (extra) => query(extra)?.rate ?? null,
      lag: (extra) => {
        const q = query(extra);
        return q && Number.isFinite(q.stepMs) ? q.stepMs * LAG_STEPS : 0;
      },
    });
    this.fitProjection(admitted, items.filter((it, i) => took[i]).map((it) => it.state), reserve, took, items);
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
        this.drop(s, nowMs);
      }
    }
  }

  protected override shouldDecide(nowMs: number): boolean {
    if (!this.admission) return this.pending.length > 0;
    // Final declines: best-effort requests whose TTFT deadline passed, or that got their first token.
    for (const s of this.states.values()) {
      if (s.service === 'best-effort' && !s.declined && (s.firstTokenMs !== null || s.ttftDeadlineMs <= nowMs)) {
        s.declined = true;
        this.emit(s, 'best-effort', nowMs);
      }
    }
    return this.pending.length > 0 || this.replanDue || nowMs - this.lastReplanMs >= this.replanMs;
  }

  protected override afterComplete(nowMs: number, finished: number): void {
    void nowMs;
    if (finished > 0) this.replanDue = true;
  }

  protected build(nowMs: number): { entries: StepEntry[]; preempt: string[] } {
    const all = [...this.states.values()].filter((s) => s.service !== 'pending');
    const admitted = all.filter((s) => s.service === 'admitted');
    const decoders = admitted.filter((s) => !s.prefilling);
    const tiers = makeTiers(admitted.map((s) => s.tpotMs), this.maxTiers);
    const tierIndex = new Map<RequestState, number>();
    const loads = this.decodeLoads(decoders, tiers, nowMs, tierIndex);
    // The prefill rate the admitted prefills need to meet their deadlines (EDF: the worst prefix).
    let needRate = 0;
    let work = 0;
    for (const s of admitted.filter((x) => x.prefilling).sort((a, b) => deadlineOf(a) - deadlineOf(b))) {
      work += s.remainingPrefill;
      const left = deadlineOf(s) - nowMs;
      needRate = Math.max(needRate, left > 0 ? work / left : Infinity);
    }
    const plan: DecodePlan = planDecoding(this.model, loads, this.maxSpec, this.maxTokensPerStep, needRate * 1.2) ?? {
      // Overloaded (admissions misjudged, or overruns): decode everyone without drafts, no prefill.
      stepMs: 0, spec: loads.map(() => 0), decodeRows: decoders.length, draftSteps: 0, decodeKeys: 0, prefillBudget: 0, prefillRate: 0,
    };
    // EDF: the batch is as large as fits before the earliest next-token deadline still ahead, so
    // slack banked by early tokens buys prefill rows (a token already late does not stall prefill
    // for the rest of its request's life). Plan(inf)'s step length only sizes the speculation.
    let stepMs = Infinity;
    // A decode with s drafts emits E(s) tokens in expectation: its step may run to the deadline of
    // its E(s)-th next token (what Plan(inf)'s step length assumes), not just the next one.
    for (const s of decoders) {
      const k = plan.spec[tierIndex.get(s)!] ?? 0;
      const ahead = Math.max(1, Math.floor(plannedTokens(k, this.acceptance.alpha(s.req.app))));
      const slack = s.tokenDeadlineMs(s.generated + ahead) - nowMs;
      if (slack > 0) stepMs = Math.min(stepMs, slack);
    }
    if (stepMs === Infinity && decoders.length > 0) stepMs = plan.stepMs; // all behind: steady-state length
    const bounded = Number.isFinite(stepMs);
    let rowsLeft = bounded ? Math.min(this.maxTokensPerStep, this.model.maxTokensWithin(stepMs, plan.draftSteps, plan.decodeKeys)) : this.maxTokensPerStep;

    const ledger = this.ledger();
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
        const cached = [...this.states.values()].filter((s) => s !== self && s.onlyCached && !inStep.has(s) && !preempt.includes(s.id) && (s.service === 'pending' || (s.service === 'admitted' && (deadlineOf(s) > deadlineOf(self) || (deadlineOf(s) === deadlineOf(self) && s.seq > self.seq)))));
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
          this.emit(v, 'best-effort', nowMs);
        }
      }
      return true;
    };

    let draftSteps = 0;
    let keys = 0;
    for (const s of decoders) {
      // The runner takes at most maxSeqs sequences per step: the rest decode next step.
      if (entries.length >= this.maxSeqs) break;
      if (preempt.includes(s.id)) continue; // demoted and preempted for an earlier decode's pages
      if (this.dropIfTooLarge(s, 1, nowMs)) continue;
      let k = Math.min(plan.spec[tierIndex.get(s)!] ?? 0, Math.max(0, s.req.maxTokens - s.generated - 1));
      // Short of pages: drop the drafts before taking anyone else's pages.
      if (!take(s, 1 + k, false)) {
        k = 0;
        if (!take(s, 1, s.kv < s.reservedTokens)) continue;
      }
      entries.push({ id: s.id, kind: 'decode', draftTokens: k });
      inStep.add(s);
      rowsLeft -= 1 + k;
      draftSteps = Math.max(draftSteps, k);
      keys += keysRead(s.kv, 1 + k, this.layers);
    }
    const prefills = admitted.filter((s) => s.prefilling).sort((a, b) => deadlineOf(a) - deadlineOf(b));
    let rowsUsed = entries.reduce((n, e) => n + (e.kind === 'decode' ? 1 + e.draftTokens : e.tokens), 0);
    for (const s of prefills) {
      if (rowsLeft <= 0 || entries.length >= this.maxSeqs) break;
      if (preempt.includes(s.id)) continue;
      let chunk = Math.min(s.remainingPrefill, rowsLeft);
      // Prefill rows read keys too: shrink the chunk until the step fits its length.
      if (bounded) {
        const fits = (c: number): boolean => this.model.predict({ tokens: rowsUsed + c, draftSteps, kvTokensRead: keys + keysRead(s.kv, c, this.layers) }) <= stepMs;
        if (!fits(chunk)) {
          let lo = 0;
          let hi = chunk;
          while (hi - lo > 1) {
            const mid = (lo + hi) >> 1;
            if (fits(mid)) lo = mid;
            else hi = mid;
          }
          chunk = lo;
        }
        if (chunk <= 0) break;
      }
      // Shrink the chunk to the pages free (plus best-effort KV) rather than stall every later prefill.
      if (ledger.extra(s, chunk) > ledger.free) {
        const room = (ledger.free + releasable(s)) * this.kvBudget.pageSize + (pagesFor(s.kv, this.kvBudget.pageSize) * this.kvBudget.pageSize - s.kv);
        chunk = Math.min(chunk, room);
      }
      if (chunk <= 0 || !take(s, chunk, false)) continue;
      entries.push({ id: s.id, kind: 'prefill', tokens: chunk });
      inStep.add(s);
      rowsLeft -= chunk;
      rowsUsed += chunk;
      keys += keysRead(s.kv, chunk, this.layers);
    }

    // Best-effort: leftovers only; it never preempts admitted work.
    const idle = entries.length === 0;
    for (const s of all.filter((x) => x.service === 'best-effort').sort((a, b) => a.seq - b.seq)) {
      if (rowsLeft <= 0 || entries.length >= this.maxSeqs) break;
      if (preempt.includes(s.id)) continue;
      let rows: number;
      if (!s.prefilling) rows = 1;
      else if (s.remainingPrefill <= rowsLeft) rows = s.remainingPrefill;
      else if (idle) rows = rowsLeft; // nothing admitted to protect: chunk it
      else continue;
      if (!take(s, rows, false)) continue;
      entries.push(s.prefilling ? { id: s.id, kind: 'prefill', tokens: rows } : { id: s.id, kind: 'decode', draftTokens: 0 });
      inStep.add(s);
      rowsLeft -= rows;
    }
    return { entries, preempt };
  }

  protected override onRemoved(s: RequestState, nowMs: number, finished: boolean): void {
    // Served best-effort to the end before its decline was announced (a 1-token answer): announce it.
    if (finished && s.service === 'best-effort' && !s.declined) {
      s.declined = true;
      this.emit(s, 'best-effort', nowMs);
    }
    if (finished) this.lengths.record(s.req.app, s.generated);
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
