// The admission DP: on small random instances its admitted count equals brute force over every
// subset (same feasibility rules, checked by replaying the chosen plan), it never drops an
// already-admitted request, and what it admits is feasible when replayed.

import { describe, expect, it } from 'vitest';
import { solveAdmission, type AdmissionItem, type AdmissionProblem } from '../../src/scheduler/slos/admission.js';
import { rng } from '../helpers/random.js';

/** Prefill rate with `extra` decoders per tier: falls with load, null past a capacity. */
function rateFn(base: number, perTier: number[], cap: number): AdmissionProblem['rate'] {
  return (extra) => {
    let load = 0;
    extra.forEach((n, k) => (load += n * perTier[k]!));
    if (load > cap) return null;
    return base * (1 - load / (cap + 1));
  };
}

/**
 * Replay a choice: forced always taken (a run of them at the rate of the run's start); returns null
 * if the plan breaks a rule, else the profit.
 */
function replay(p: AdmissionProblem, take: readonly boolean[]): number | null {
  const counts = new Array<number>(p.tiers).fill(0);
  let t = p.nowMs;
  let pages = 0;
  let profit = 0;
  const baseline = baselineFinish(p);
  let runRate: number | null = null;
  for (const [i, it] of p.items.entries()) {
    // A run of already-admitted items prefills at the rate of the run's start (the DP's rule).
    if (it.forced && (i === 0 || !p.items[i - 1]!.forced)) runRate = p.rate(counts);
    if (!it.forced && !take[i]) continue;
    const r = it.forced ? runRate : p.rate(counts);
    t += it.prefillTokens <= 0 ? 0 : r !== null && r > 0 ? it.prefillTokens / r : Infinity;
    counts[it.tier]!++;
    if (it.forced) {
      const allowed = Math.max(it.deadlineMs, baseline[i]!);
      if (!(t <= allowed || !Number.isFinite(allowed))) return null;
      continue;
    }
    pages += it.pages;
    if (t > it.deadlineMs || pages > p.freePages || p.rate(counts) === null) return null;
    profit++;
  }
  return profit;
}

function baselineFinish(p: AdmissionProblem): number[] {
  const counts = new Array<number>(p.tiers).fill(0);
  let t = p.nowMs;
  let runRate: number | null = null;
  return p.items.map((it, i) => {
    if (!it.forced) return NaN;
    if (i === 0 || !p.items[i - 1]!.forced) runRate = p.rate(counts);
    const r = runRate;
    t += it.prefillTokens <= 0 ? 0 : r !== null && r > 0 ? it.prefillTokens / r : Infinity;
    counts[it.tier]!++;
    return t;
  });
}

function randomProblem(seed: number): AdmissionProblem {
  const r = rng(seed);
  const tiers = 1 + Math.floor(r() * 3);
  const n = 3 + Math.floor(r() * 8);
  const items: AdmissionItem[] = [];
  for (let i = 0; i < n; i++) {
    const forced = r() < 0.25;
    items.push({ forced, deadlineMs: 50 + r() * 2000, prefillTokens: 1 + Math.floor(r() * 600), tier: Math.floor(r() * tiers), pages: forced ? 0 : 1 + Math.floor(r() * 40) });
  }
  items.sort((a, b) => a.deadlineMs - b.deadlineMs);
  const perTier = Array.from({ length: tiers }, () => 0.5 + r() * 2);
  return { nowMs: 0, items, tiers, freePages: Math.floor(20 + r() * 200), rate: rateFn(1 + r() * 4, perTier, 4 + r() * 12) };
}

function bruteForce(p: AdmissionProblem): number {
  const free = p.items.map((it, i) => (it.forced ? -1 : i)).filter((i) => i >= 0);
  let best = -1;
  for (let mask = 0; mask < 1 << free.length; mask++) {
    const take = p.items.map(() => false);
    free.forEach((i, b) => (take[i] = ((mask >> b) & 1) === 1));
    const profit = replay(p, take);
    if (profit !== null) best = Math.max(best, profit);
  }
  return best;
}

describe('admission DP', () => {
  it('admits as many as brute force on 300 random instances, and its plan replays feasibly', () => {
    let nonTrivial = 0;
    for (let seed = 1; seed <= 300; seed++) {
      const p = randomProblem(seed);
      const best = bruteForce(p);
      for (const cap of [Infinity, undefined]) {
        const take = solveAdmission(p, cap, cap);
        expect(take.length).toBe(p.items.length);
        p.items.forEach((it, i) => it.forced && expect(take[i]).toBe(false));
        const profit = replay(p, take);
        expect(profit, `seed ${seed} cap ${cap}: the DP's choice must replay feasibly`).not.toBeNull();
        expect(profit, `seed ${seed} cap ${cap}`).toBe(best);
      }
      const newCount = p.items.filter((it) => !it.forced).length;
      if (best > 0 && best < newCount) nonTrivial++;
    }
    // The instances must exercise real choices, not all-or-nothing.
    expect(nonTrivial).toBeGreaterThan(60);
  });

  it('keeps an already-late admitted request without blocking new ones that do not delay it further', () => {
    const p: AdmissionProblem = {
      nowMs: 100,
      tiers: 1,
      freePages: 100,
      // Forced item already past its deadline; a new one with a later deadline.
      items: [
        { forced: true, deadlineMs: 50, prefillTokens: 100, tier: 0, pages: 0 },
        { forced: false, deadlineMs: 1000, prefillTokens: 100, tier: 0, pages: 10 },
      ],
      rate: () => 1,
    };
    expect(solveAdmission(p)).toEqual([false, true]);
  });

  it('refuses a new request that would make an admitted one late', () => {
    const p: AdmissionProblem = {
      nowMs: 0,
      tiers: 1,
      freePages: 100,
      items: [
        { forced: false, deadlineMs: 100, prefillTokens: 90, tier: 0, pages: 10 },
        { forced: true, deadlineMs: 150, prefillTokens: 100, tier: 0, pages: 0 },
      ],
      rate: () => 1,
    };
    expect(solveAdmission(p)).toEqual([false, false]);
  });

  it('respects KV memory and sustainability', () => {
    const items: AdmissionItem[] = [0, 1, 2].map((i) => ({ forced: false, deadlineMs: 1e6 + i, prefillTokens: 1, tier: 0, pages: 10 }));
    expect(solveAdmission({ nowMs: 0, tiers: 1, freePages: 25, items, rate: () => 1 }).filter(Boolean).length).toBe(2);
    expect(solveAdmission({ nowMs: 0, tiers: 1, freePages: 1000, items, rate: (e) => (e[0]! > 1 ? null : 1) }).filter(Boolean).length).toBe(1);
  });

  it('handles a burst: 200 candidates in a 32-wide window within budget', () => {
    const r = rng(9);
    const items: AdmissionItem[] = Array.from({ length: 32 }, () => ({
      forced: false,
      deadlineMs: 200 + r() * 3000,
      prefillTokens: 50 + Math.floor(r() * 900),
      tier: Math.floor(r() * 4),
      pages: 1 + Math.floor(r() * 60),
    }));
    items.sort((a, b) => a.deadlineMs - b.deadlineMs);
    const take = solveAdmission({ nowMs: 0, tiers: 4, freePages: 2000, items, rate: rateFn(3, [1, 0.8, 0.6, 0.4], 40) });
    expect(take.filter(Boolean).length).toBeGreaterThan(0);
  });
});
