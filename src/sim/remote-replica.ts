// A remote replica as the simulator sees it: a latency profile and a capacity, not a scheduler.
// Someone else's server (a vLLM cluster, a llama.cpp server) answers a request sent with k others
// in flight after rttMs + (its zero-load prefill) x (1 + contention x k), then one token every
// (its zero-load decode step) x (1 + contention x k), and takes at most maxInFlight at once. The
// Router's policy (scheduler/routing.ts) decides which one a request goes to, learning these
// latencies from what it observes exactly as the package's Router does.

import type { PerformanceModel } from '../scheduler/perf-model.js';

export interface RemoteProfile {
  name: string;
  /** Network round trip added to the first token, ms. */
  rttMs: number;
  /** Slowdown per request already in flight (0.03: 30 in flight run 1.9x slower). */
  contention: number;
  maxInFlight: number;
  /** Zero-load prefill time of a prompt, and decode step, ms. */
  prefillMs: (promptTokens: number) => number;
  decodeMs: number;
}

/**
 * A remote with the local profile's speed (the same model on the same kind of GPU behind a
 * network): 20 ms round trip, 3% slower per request in flight, 32 at once. The defaults of
 * `bench-sched --remotes N`.
 */
export function remoteLike(clock: PerformanceModel, name: string, options: Partial<Omit<RemoteProfile, 'name' | 'prefillMs' | 'decodeMs'>> = {}): RemoteProfile {
  const cache = new Map<number, number>();
  return {
    name,
    rttMs: options.rttMs ?? 20,
    contention: options.contention ?? 0.03,
    maxInFlight: options.maxInFlight ?? 32,
    prefillMs: (p) => {
      let v = cache.get(p);
      if (v === undefined) cache.set(p, (v = clock.zeroLoadPrefillMs(p)));
      return v;
    },
    decodeMs: clock.predictRaw({ tokens: 1 }),
  };
}

/** When a request sent now with `inFlight` others there gets its first token, and its token gap. */
export function remoteTiming(r: RemoteProfile, promptTokens: number, inFlight: number): { ttftMs: number; tpotMs: number } {
  const slow = 1 + r.contention * inFlight;
  return { ttftMs: r.rttMs + r.prefillMs(promptTokens) * slow, tpotMs: r.decodeMs * slow };
}
