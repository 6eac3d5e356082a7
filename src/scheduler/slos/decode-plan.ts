// Plan(inf, decoding set) of SLOs-Serve: how long a steady-state step may take given the decoding
// requests per TPOT tier, which speculation length each tier gets, and how many prefill rows are left
// per step. A tier of TPOT tau whose requests emit E(s) tokens per verify of s drafts tolerates steps
// of up to E(s) * tau. Pick a bottleneck tier i and a length j (or no speculation); every other tier
// k takes the smallest s_k with E(s_k) * tau_k >= E(j) * tau_i; keep the choice with the highest
// prefill rate (rows per ms). No choice with room for the decode rows = the set is not sustainable.
// One implementation (DecodeRateTable) serves the admission DP and the step builder's steady state;
// the step builder's per-step choice (step-plan.ts) uses the same plannedTokens and the same model.

import { expectedTokens } from '../acceptance-model.js';
import type { PerformanceModel } from '../perf-model.js';

export interface TierLoad {
  tpotMs: number;
  /** Decoding requests in the tier. */
  requests: number;
  /** Keys one decode row of each request reads, summed over the tier's requests (all layers). */
  keys: number;
  /** Acceptance rate of the tier's drafts. */
  alpha: number;
}

/** Share of a verify's expected extra tokens (beyond the one it always yields) that plans count on. */
const SPEC_CREDIT = 0.5;

/**
 * Tokens per verify the plan counts on: the expectation, discounted. Planning to the bare mean puts a
 * request's 20th token on its deadline half the time (acceptance is random), so only SPEC_CREDIT of
 * the expected extra tokens is counted. Fractional: a request with k drafts tolerates a step that
 * ends at the (interpolated) deadline of its (generated + plannedTokens)-th token.
 */
export function plannedTokens(k: number, alpha: number): number {
  return 1 + (expectedTokens(k, alpha) - 1) * SPEC_CREDIT;
}

/**
 * TPOT tiers: the distinct TPOTs, at most `maxTiers` (the closest neighbours merged into the tighter
 * one), ascending. A request belongs to the loosest tier not looser than its TPOT (the tightest when
 * none is).
 */
export function makeTiers(tpots: Iterable<number>, maxTiers: number): number[] {
  const tiers = [...new Set(tpots)].sort((a, b) => a - b);
  while (tiers.length > maxTiers) {
    let at = 1;
    for (let i = 2; i < tiers.length; i++) if (tiers[i]! / tiers[i - 1]! < tiers[at]! / tiers[at - 1]!) at = i;
    tiers.splice(at, 1);
  }
  return tiers;
}

/**
 * Effective tier from the slack to the next token's deadline: that slack spread over the next
 * `horizon` tokens loosens (or, when negative, tightens) the request's own TPOT.
 */
export function effectiveTier(tiers: readonly number[], horizon: number, slackMs: number, tpotMs: number): number {
  const bound = slackMs / horizon + ((horizon - 1) * tpotMs) / horizon;
  return bound >= tiers[0]! ? tierOf(tiers, bound) : 0;
}

export function tierOf(tiers: readonly number[], tpotMs: number): number {
  let t = 0;
  for (let i = 0; i < tiers.length; i++) if (tiers[i]! <= tpotMs * (1 + 1e-9)) t = i;
  return t;
}

/**
 * Plan(inf) for the admission DP, which asks for thousands of decoding sets that differ only in how
 * many requests each tier has: the speculation choices (a step length and a draft length per tier)
 * depend only on the tiers' TPOTs and alphas, so they are built once, and each query is a few
 * multiply-adds per choice with the performance model's closed-form inversion (no rounding fix-ups;
 * the executing step re-plans exactly).
 */
export class DecodeRateTable {
  private readonly choices: { stepMs: number | null; spec: number[] }[] = [];
  private readonly pieces: readonly { k1: number; k2: number; b: number }[];
  private readonly k3: number;
  private readonly factor: number;
  private readonly addMs: number;
  private readonly n: Float64Array;

  constructor(
    model: PerformanceModel,
    private readonly base: readonly TierLoad[],
    maxSpec: number,
    private readonly maxTokensPerStep: number,
    /** Keys one new decoder's row reads (all layers). */
    private readonly keysPerNew: number,
    /** Every decode verifies exactly maxSpec drafts (fixed speculation) instead of a choice per tier. */
    private readonly fixed = false,
  ) {
    const p = model.profile;
    this.pieces = p.pieces;
    this.k3 = p.k3;
    this.factor = p.margin.factor;
    this.addMs = p.margin.addMs;
    this.n = new Float64Array(base.length);
    if (fixed) {
      // One choice: k = maxSpec everywhere; the step is as long as the tightest active tier allows.
      this.choices.push({ stepMs: null, spec: base.map(() => maxSpec) });
      return;
    }
    this.choices.push({ stepMs: null, spec: base.map(() => 0) });
    for (let j = 1; j <= maxSpec; j++) {
      for (const bottleneck of base) {
        const target = plannedTokens(j, bottleneck.alpha) * bottleneck.tpotMs;
        const spec = base.map((t) => {
          let s = 0;
          while (s <= maxSpec && plannedTokens(s, t.alpha) * t.tpotMs < target) s++;
          return s > maxSpec ? -1 : s; // -1: this tier cannot keep up at that step length
        });
        this.choices.push({ stepMs: target, spec });
      }
    }
  }

  /** Prefill rows per ms and the step length with `extra` more decoders per tier; null: unsustainable. */
  query(extra: readonly number[]): { rate: number; stepMs: number } | null {
    const n = this.n;
    let minTpot = Infinity;
    for (let k = 0; k < this.base.length; k++) {
      n[k] = this.base[k]!.requests + extra[k]!;
      const t = this.base[k]!;
      if (n[k]! > 0) minTpot = Math.min(minTpot, this.fixed ? plannedTokens(this.choices[0]!.spec[k]!, t.alpha) * t.tpotMs : t.tpotMs);
    }
    if (minTpot === Infinity) {
      const m = this.maxTokensPerStep;
      const ms = this.predict(m, 0, 0);
      return { rate: m / ms, stepMs: Infinity };
    }
    let best: { rate: number; stepMs: number } | null = null;
    for (const c of this.choices) {
      const stepMs = c.stepMs ?? minTpot;
      let rows = 0;
      let keys = 0;
      let draft = 0;
      let ok = true;
      for (let k = 0; k < this.base.length; k++) {
        if (n[k] === 0) continue;
        const t = this.base[k]!;
        const s = c.spec[k]!;
        if (s < 0) {
          ok = false;
          break;
        }
        rows += n[k]! * (1 + s);
        keys += (t.keys + extra[k]! * this.keysPerNew) * (1 + s);
        draft = Math.max(draft, s);
      }
      if (!ok) continue;
      const fit = Math.min(this.maxTokensPerStep, this.maxRows(stepMs, draft, keys));
      const budget = fit - rows;
      if (budget < 0) continue;
      const rate = budget / Math.max(this.predict(fit, draft, keys), 1e-9);
      if (!best || rate > best.rate) best = { rate, stepMs };
    }
    return best;
  }

  private predict(tokens: number, draft: number, keys: number): number {
    let raw = -Infinity;
    for (const p of this.pieces) raw = Math.max(raw, p.k1 * tokens + p.k2 * draft + p.b);
    return this.factor * (raw + this.k3 * keys) + this.addMs;
  }

  private maxRows(ms: number, draft: number, keys: number): number {
    const t = (ms - this.addMs) / this.factor - this.k3 * keys;
    let n = Infinity;
    for (const p of this.pieces) {
      const room = t - p.b - p.k2 * draft;
      if (p.k1 > 0) n = Math.min(n, Math.floor(room / p.k1));
      else if (room < 0) n = -1;
    }
    return Math.max(0, n === Infinity ? this.maxTokensPerStep : n);
  }
}
