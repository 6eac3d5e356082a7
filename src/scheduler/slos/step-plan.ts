// The decode half of one SLOs-Serve step: how long the step may run and how many draft tokens each
// decoding request verifies in it, so that every admitted request's next deadline is met under the
// performance model, and the step that runs is the step that was planned for.
//
// A request with k drafts at acceptance alpha plans on `plannedTokens(k, alpha)` tokens from the
// verify (a discounted expectation, decode-plan.ts), so it tolerates a step that ends by the
// deadline of its (generated + planned)-th token: its *reach* at k. Reaches are read from each
// request's own deadline curve (fractional token indices interpolate it), so slack banked by early
// tokens buys a longer step, and drafts buy a longer step than one TPOT.
//
// Adaptive speculation (per request, not per tier): every reach of every request (k = 0..maxK) is a
// candidate step length T, capped at `capMs` (the earliest first-token deadline of admitted
// prefills). For a T, each request takes the fewest drafts whose reach is >= T (a request that cannot
// reach T with maxK rules T out); the rows left within T go to prefill. The T with the highest prefill
// rate wins (prefill rows actually available, per ms of the step they make); ties go to the highest
// decode rate. Rows the prefill work leaves inside T then buy more drafts (decoders race ahead and
// bank slack, the paper's decode-only rule), never lengthening the step past T.
//
// Fixed speculation (k for everyone, 0 = off): the step is as long as the nearest reach.
//
// A request already behind its curve (its next token late, or due sooner than even a decode-only
// step without drafts can end, whatever it drafts) does not bound the step (a shorter one cannot save
// it) and speculates at its longest (adaptive) to catch up. With every decoder behind and no prefill
// deadline, the step is Plan(inf)'s steady-state length (`steadyMs`). Drafts are trimmed, longest
// first, until the rows fit `maxTokensPerStep`.

import type { PerformanceModel } from '../perf-model.js';
import { keysRead } from '../request-state.js';
import { plannedTokens } from './decode-plan.js';

export interface StepDecoder {
  /** ms from now to the deadline of the request's next `tokens` tokens (fractional: interpolated). */
  reachMs(tokens: number): number;
  alpha: number;
  /** Most drafts this request may verify now (the speculation cap and the tokens it has left). */
  maxK: number;
  /** KV tokens it holds (its rows attend to them). */
  kv: number;
}

export interface StepDecodePlan {
  /** The step may run this long (Infinity: nothing bounds it). */
  stepMs: number;
  /** Drafts per decoder, in input order. */
  spec: number[];
}

export interface StepPlanOptions {
  model: PerformanceModel;
  layers: number;
  maxTokensPerStep: number;
  /** 'adaptive' (per request, up to each maxK) or a fixed k for every decode. */
  speculation: 'adaptive' | number;
  /** Upper bound from admitted prefills' first-token deadlines (Infinity: none). */
  capMs: number;
  /**
   * Prefill rows that must fit in this step (the prefills due by `capMs`, which the next step would
   * finish too late): a step length without room for them is not a candidate. Default 0.
   */
  mustPrefill?: number;
  /** Keys the `mustPrefill` rows read (all layers). Default 0. */
  mustKeys?: number;
  /** Keys all `prefillWork` rows read (all layers). Default 0. */
  prefillKeys?: number;
  /** Prefill rows of admitted requests that could use the step. */
  prefillWork: number;
  /** Plan(inf)'s steady-state step length, for when every decoder is behind. */
  steadyMs: number;
  /**
   * Memory, not compute, limits admission now: prefill rows beyond `needRate` (what admitted
   * prefills need to meet their deadlines, rows per ms) admit nobody, while faster decoding frees
   * KV sooner. Then the plan with the most decode tokens per ms among those reaching `needRate`
   * wins. Default false.
   */
  memoryBound?: boolean;
  needRate?: number;
  /**
   * KV is filling up (half the cache or more): drafts that lengthen the step within its length are
   * worth their time, since decoders that finish sooner free KV. Otherwise only drafts that add no
   * time are added (a longer step delays new arrivals). Default false.
   */
  kvPressure?: boolean;
}

/** Most candidate step lengths evaluated (evenly spaced by rank, always the shortest and the cap). */
const MAX_CANDIDATES = 24;
const EPS = 1e-9;

export function planStepDecodes(decoders: readonly StepDecoder[], o: StepPlanOptions): StepDecodePlan {
  const plan = planUncapped(decoders, o);
  fitRows(plan.spec, o.maxTokensPerStep);
  return plan;
}

/** Drop drafts, from the longest, until every decode row and draft fits `maxRows` (or no drafts are left). */
function fitRows(spec: number[], maxRows: number): void {
  let rows = spec.reduce((a, k) => a + 1 + k, 0);
  while (rows > maxRows) {
    let at = -1;
    for (let i = 0; i < spec.length; i++) if (spec[i]! > 0 && (at < 0 || spec[i]! > spec[at]!)) at = i;
    if (at < 0) return;
    spec[at]!--;
    rows--;
  }
}

function planUncapped(decoders: readonly StepDecoder[], o: StepPlanOptions): StepDecodePlan {
  const n = decoders.length;
  // The shortest step the decodes alone can make: a deadline before it cannot be met.
  const shortest = n > 0 ? o.model.predict({ tokens: Math.min(n, o.maxTokensPerStep), draftSteps: 0, kvTokensRead: 0 }) : 0;
  const late = decoders.map((d) => !(d.reachMs(plannedTokens(d.maxK, d.alpha)) >= shortest));
  const keysOf = (i: number, k: number): number => keysRead(decoders[i]!.kv, 1 + k, o.layers);
  // reach[i][k]
  const reach = decoders.map((d, i) => Array.from({ length: d.maxK + 1 }, (_, k) => (late[i] ? -Infinity : d.reachMs(plannedTokens(k, d.alpha)))));

  if (typeof o.speculation === 'number') {
    const spec = decoders.map((d) => Math.max(0, Math.min(o.speculation as number, d.maxK)));
    let stepMs = o.capMs;
    let bounded = false;
    for (let i = 0; i < n; i++) {
      if (late[i]) continue;
      stepMs = Math.min(stepMs, reach[i]![spec[i]!]!);
      bounded = true;
    }
    if (!bounded && n > 0) stepMs = Math.min(stepMs, o.steadyMs);
    return { stepMs, spec };
  }

  const anyOnTime = late.some((l) => !l);
  if (!anyOnTime) {
    const spec = decoders.map((d) => d.maxK);
    const stepMs = n > 0 ? Math.min(o.capMs, o.steadyMs) : o.capMs;
    return race(decoders, spec, stepMs, o, keysOf);
  }
  // Candidate step lengths: every positive reach at or under the cap, and the cap.
  const all: number[] = [];
  for (let i = 0; i < n; i++) for (const r of reach[i]!) if (r > 0 && r <= o.capMs) all.push(r);
  if (Number.isFinite(o.capMs)) all.push(o.capMs);
  all.sort((a, b) => a - b);
  const uniq = all.filter((t, i) => i === 0 || t > all[i - 1]! + EPS);
  let candidates = uniq;
  if (uniq.length > MAX_CANDIDATES) {
    candidates = [];
    for (let j = 0; j < MAX_CANDIDATES; j++) candidates.push(uniq[Math.round((j * (uniq.length - 1)) / (MAX_CANDIDATES - 1))]!);
  }

  type Choice = { stepMs: number; spec: number[]; prefillRate: number; decodeRate: number };
  let best: Choice | null = null as Choice | null;
  let racing: Choice | null = null as Choice | null;
  const spec = new Array<number>(n).fill(0);
  for (const T of candidates) {
    let rows = 0;
    let draft = 0;
    let keys = 0;
    let tokens = 0;
    let ok = true;
    for (let i = 0; i < n && ok; i++) {
      const d = decoders[i]!;
      let k: number;
      if (late[i]) k = d.maxK;
      else {
        k = 0;
        while (k <= d.maxK && reach[i]![k]! < T - EPS) k++;
        if (k > d.maxK) ok = false;
      }
      spec[i] = k;
      rows += 1 + k;
      draft = Math.max(draft, k);
      keys += keysOf(i, k);
      tokens += plannedTokens(k, d.alpha);
    }
    if (!ok) continue;
    if (o.mustPrefill && Math.min(o.maxTokensPerStep, o.model.maxTokensWithin(T, draft, keys + (o.mustKeys ?? 0))) < rows + o.mustPrefill) continue;
    const fit = Math.min(o.maxTokensPerStep, o.model.maxTokensWithin(T, draft, keys));
    if (fit < rows) continue;
    const prefill = Math.min(o.prefillWork, fit - rows);
    // Prefill rows read keys too, but their context is unknown here: the rate is a ranking only.
    const ms = Math.max(o.model.predict({ tokens: rows + prefill, draftSteps: draft, kvTokensRead: keys }), EPS);
    const prefillRate = prefill / ms;
    const decodeRate = tokens / ms;
    if (!best || prefillRate > best.prefillRate * (1 + 1e-9) + EPS || (prefillRate >= best.prefillRate * (1 - 1e-9) && decodeRate > best.decodeRate * (1 + 1e-9))) {
      best = { stepMs: T, spec: spec.slice(), prefillRate, decodeRate };
    }
    if (o.memoryBound && prefillRate >= (o.needRate ?? 0) && (!racing || decodeRate > racing.decodeRate * (1 + 1e-9))) racing = { stepMs: T, spec: spec.slice(), prefillRate, decodeRate };
  }
  if (racing) best = racing;
  if (!best) {
    // No step length keeps every on-time decoder on time (more decoders than a step can carry):
    // the nearest reach without drafts, the best that can be done.
    const spec0 = decoders.map(() => 0);
    let stepMs = o.capMs;
    for (let i = 0; i < n; i++) if (!late[i]) stepMs = Math.min(stepMs, reach[i]![0]!);
    return { stepMs, spec: spec0 };
  }
  return race(decoders, best.spec, best.stepMs, o, keysOf);
}

/**
 * Spend the rows the prefill work leaves inside `stepMs` on more drafts, one at a time, to the
 * request nearest its deadline first (a draft buys the most where slack is least).
 */
function race(decoders: readonly StepDecoder[], spec: number[], stepMs: number, o: StepPlanOptions, keysOf: (i: number, k: number) => number): StepDecodePlan {
  const n = decoders.length;
  if (n === 0 || !Number.isFinite(stepMs)) return { stepMs, spec };
  let rows = 0;
  let draft = 0;
  let keys = 0;
  for (let i = 0; i < n; i++) {
    rows += 1 + spec[i]!;
    draft = Math.max(draft, spec[i]!);
    keys += keysOf(i, spec[i]!);
  }
  const time = (r: number, s: number, kv: number): number => o.model.predict({ tokens: r + o.prefillWork, draftSteps: s, kvTokensRead: kv + (o.prefillKeys ?? 0) });
  // Drafts that add no time always; under memory pressure, any that keep the step within stepMs.
  const limit = o.memoryBound || o.kvPressure ? stepMs : Math.min(stepMs, time(rows, draft, keys));
  const fits = (r: number, s: number, kv: number): boolean => r + o.prefillWork <= o.maxTokensPerStep && time(r, s, kv) <= limit;
  if (!fits(rows, draft, keys)) return { stepMs, spec };
  const order = decoders.map((d, i) => i).sort((a, b) => decoders[a]!.reachMs(1) - decoders[b]!.reachMs(1));
  for (let grew = true; grew;) {
    grew = false;
    for (const i of order) {
      if (spec[i]! >= decoders[i]!.maxK) continue;
      const k = spec[i]! + 1;
      const kv = keys - keysOf(i, k - 1) + keysOf(i, k);
      if (!fits(rows + 1, Math.max(draft, k), kv)) continue;
      spec[i] = k;
      rows++;
      draft = Math.max(draft, k);
      keys = kv;
      grew = true;
    }
  }
  return { stepMs, spec };
}
