// The routing policy (scheduler/routing.ts): the online latency fits recover known linear laws and
// follow a change; the circuit breaker backs off, lets one probe through and closes on success;
// chooseReplica takes the replica with the most room and never an open, full or excluded one.

import { describe, expect, it } from 'vitest';
import { chooseReplica, LatencyEstimate, remoteState, ReplicaHealth, routeMet, WeightedFit } from '../../src/scheduler/routing.js';

describe('WeightedFit', () => {
  it('recovers the coefficients of a linear law from noisy observations', () => {
    const f = new WeightedFit(3);
    let seed = 7;
    const rand = (): number => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31 - 0.5;
    expect(f.coefficients()).toBeNull();
    for (let i = 0; i < 200; i++) {
      const p = 100 + 900 * Math.abs(rand() * 2);
      const c = Math.floor(Math.abs(rand()) * 16);
      f.add([1, p, c], 20 + 0.05 * p + 3 * c + rand());
    }
    const [a, b, c] = f.coefficients()!;
    expect(a).toBeCloseTo(20, 0);
    expect(b).toBeCloseTo(0.05, 2);
    expect(c).toBeCloseTo(3, 1);
  });

  it('follows a change in the law (old observations decay)', () => {
    const f = new WeightedFit(2);
    for (let i = 0; i < 100; i++) f.add([1, i % 8], 10 + (i % 8));
    for (let i = 0; i < 200; i++) f.add([1, i % 8], 30 + 2 * (i % 8));
    expect(f.predict([1, 4])!).toBeCloseTo(38, 0);
  });

  it('a feature that has not varied gets no coefficient (every prompt the same length so far)', () => {
    const f = new WeightedFit(2);
    for (const y of [40, 50, 60]) f.add([1, 1000], y);
    // Not a slope through the origin: the mean, whatever the length asked about.
    expect(f.predict([1, 100_000])!).toBeCloseTo(50, 0);
    expect(f.predict([1, 10])!).toBeCloseTo(50, 0);
  });

  it('ignores non-finite observations', () => {
    const f = new WeightedFit(1);
    f.add([1], NaN);
    f.add([Infinity], 1);
    expect(f.observations).toBe(0);
  });
});

describe('LatencyEstimate', () => {
  it('is null without observations, the last value while young, the fit after', () => {
    const e = new LatencyEstimate();
    expect(e.predictTtft(100, 0)).toBeNull();
    expect(e.predictTpot(0)).toBeNull();
    e.firstToken(100, 0, 50);
    expect(e.predictTtft(1000, 3)).toBe(50);
    for (let i = 0; i < 30; i++) e.firstToken(100 * (1 + (i % 5)), i % 3, 10 + 0.1 * 100 * (1 + (i % 5)) + 5 * (i % 3));
    expect(e.predictTtft(300, 2)!).toBeCloseTo(10 + 30 + 10, 0);
    for (let i = 0; i < 20; i++) e.perToken(i % 4, 8 + 2 * (i % 4));
    expect(e.predictTpot(3)!).toBeCloseTo(14, 0);
    // Prompt work queued ahead counts as this prompt's own: 200 queued + 100 = 300 at concurrency 2.
    expect(e.predictTtft(100, 2, 200)!).toBeCloseTo(e.predictTtft(300, 2)!, 6);
  });
});

describe('ReplicaHealth', () => {
  it('opens for a doubling backoff, lets one probe through, closes on success', () => {
    const h = new ReplicaHealth(1000, 30_000);
    expect(h.state(0)).toBe('closed');
    h.failure(0);
    expect(h.available(500)).toBe(false);
    expect(h.state(500)).toBe('open');
    expect(h.available(1000)).toBe(true);
    h.sent(1000);
    // One probe at a time while half open.
    expect(h.available(1001)).toBe(false);
    h.failure(1200);
    // Second failure in a row: 2 s.
    expect(h.available(3100)).toBe(false);
    expect(h.available(3200)).toBe(true);
    h.sent(3200);
    h.success();
    expect(h.state(3300)).toBe('closed');
    expect(h.available(3300)).toBe(true);
    expect([h.failures, h.successes]).toEqual([2, 1]);
    for (let i = 0; i < 20; i++) h.failure(10_000);
    expect(h.available(10_000 + 30_000)).toBe(true);
  });
});

describe('chooseReplica', () => {
  const measured = (name: string, ttftPerToken: number, tpot: number, maxInFlight = Infinity) => {
    const r = remoteState(name, maxInFlight);
    for (let i = 0; i < 10; i++) {
      r.latency.firstToken(100 * (i + 1), i % 3, 5 + ttftPerToken * 100 * (i + 1));
      r.latency.perToken(i % 3, tpot);
    }
    return r;
  };
  const req = { promptLength: 1000, ttftMs: 600, tpotMs: 50 };

  it('takes the replica with the most room, and none when none is predicted to meet the SLO', () => {
    const slow = measured('slow', 0.5, 40); // ttft ~505 of 600, tpot 40 of 50
    const fast = measured('fast', 0.1, 20);
    expect(chooseReplica([slow, fast], req, 0)!.index).toBe(1);
    expect(chooseReplica([slow, fast], req, 0, new Set([1]))!.index).toBe(0);
    const tooSlow = measured('too slow', 1, 20); // ttft ~1005
    const tooSlowTpot = measured('tpot', 0.1, 80);
    expect(chooseReplica([tooSlow, tooSlowTpot], req, 0)).toBeNull();
  });

  it('never chooses an open circuit, a full replica, or one where a request has waited past the budget; an idle unmeasured one first, a busy unmeasured one last', () => {
    const a = measured('a', 0.1, 20, 2);
    a.inFlight = 2;
    const b = measured('b', 0.1, 20);
    b.health.failure(0);
    expect(chooseReplica([a, b], req, 10)).toBeNull();
    const fresh = remoteState('fresh');
    expect(chooseReplica([a, b, fresh], req, 10)!.index).toBe(2);
    fresh.inFlight = 1;
    fresh.awaitingFirst.push({ sentAt: 0, length: 100 });
    expect(chooseReplica([a, b, fresh], req, 500)!.index).toBe(2);
    // Its request sent at 0 has no first token at 700 ms: more than this one's 600 ms budget.
    expect(chooseReplica([a, b, fresh], req, 700)).toBeNull();
    // An idle unmeasured replica comes first (the request measures it); a busy unmeasured one after a measured one that fits.
    const ok = measured('ok', 0.1, 20);
    const unmeasured = remoteState('new');
    expect(chooseReplica([unmeasured, ok], req, 0)!.index).toBe(0);
    unmeasured.inFlight = 1;
    expect(chooseReplica([unmeasured, ok], req, 0)!.index).toBe(1);
    expect(() => remoteState('x', 0)).toThrow(/maxInFlight must be >= 1/);
  });

  it('prefers an idle replica whose estimate has gone stale, so a bad first measurement is not final', () => {
    const fresh = measured('fresh', 0.1, 20);
    fresh.latency.firstToken(100, 0, 15, 5_500);
    const stale = measured('stale', 0.4, 40); // measured at t=0, slower
    expect(chooseReplica([fresh, stale], req, 4_000)!.index).toBe(0);
    expect(chooseReplica([fresh, stale], req, 6_000)!.index).toBe(1);
    stale.inFlight = 1;
    expect(chooseReplica([fresh, stale], req, 6_000)!.index).toBe(0);
  });
});

describe('routeMet (the engine attainment rule on a routed request)', () => {
  const slo = { ttftMs: 100, tpotMs: 10 };
  /** n tokens: the first at `first`, then one every `gap` ms. */
  const even = (first: number, gap: number, n: number): number[] => Array.from({ length: n }, (_, i) => first + i * gap);

  it('meets with the first token in time and every 20th token on the curve', () => {
    expect(routeMet(slo, 0, even(50, 10, 45))).toBe(true);
    // 5% tolerance on TTFT.
    expect(routeMet(slo, 0, even(104, 10, 5))).toBe(true);
    expect(routeMet(slo, 0, even(106, 10, 5))).toBe(false);
  });

  it('misses a late 20th token even when the mean time per token is within the SLO', () => {
    // The first token at the TTFT, tokens 2-20 at 12 ms (token 20 is 20% behind the curve), then 20 more at once: mean 5.8 ms.
    const times = [...even(100, 12, 20), ...Array.from({ length: 20 }, () => 100 + 19 * 12)];
    const meanTpot = (times.at(-1)! - times[0]!) / (times.length - 1);
    expect(meanTpot).toBeLessThan(slo.tpotMs);
    expect(routeMet(slo, 0, times)).toBe(false);
  });

  it('judges a slowdown-based TTFT (null) only on the curve from the first token', () => {
    expect(routeMet({ ttftMs: null, tpotMs: 10 }, 0, even(5000, 10, 30))).toBe(true);
    expect(routeMet({ ttftMs: null, tpotMs: 10 }, 0, even(5000, 12, 30))).toBe(false);
    expect(routeMet(slo, 0, [])).toBe(false);
  });
});
