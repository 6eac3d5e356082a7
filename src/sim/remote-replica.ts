// A remote replica as the simulator sees it: a latency profile and a capacity, not a scheduler.
// The default (`remoteLike`) is a peer of the local replica: the same performance model behind a
// network round trip. A request sent while k others are in flight there gets one token per decode
// step of k + 1 rows, and its first token after the round trip, its zero-load prefill, and what
// the k decode rows add to each prefill chunk (its prefill shares steps with their decodes). It
// takes at most maxInFlight at once. What it leaves out, and so flatters: queueing behind other
// prefills that arrive at the same moment, and KV limits (a remote never preempts). The Router's
// policy (scheduler/routing.ts) chooses among remotes, learning their latencies from what it
// observes, exactly as the package's Router does.

import type { PerformanceModel } from '../scheduler/perf-model.js';

export interface RemoteProfile {
  name: string;
  maxInFlight: number;
  /** First-token time and token gap of a `promptTokens` prompt sent while `inFlight` others run there, ms. */
  timing(promptTokens: number, inFlight: number): { ttftMs: number; tpotMs: number };
}

/** A peer of the local replica (the same model and GPU, `rttMs` away, at most `maxInFlight` at once): the remote of `bench-sched --remotes N`. */
export function remoteLike(clock: PerformanceModel, name: string, options: { rttMs?: number; maxInFlight?: number } = {}): RemoteProfile {
  const rtt = options.rttMs ?? 20;
  const chunk = clock.profile.maxTokensPerStep;
  const prefill = new Map<number, number>();
  const step = (rows: number): number => clock.predictRaw({ tokens: rows });
  return {
    name,
    maxInFlight: options.maxInFlight ?? 32,
    timing(promptTokens, inFlight) {
      let zero = prefill.get(promptTokens);
      if (zero === undefined) prefill.set(promptTokens, (zero = clock.zeroLoadPrefillMs(promptTokens)));
      const chunks = Math.max(1, Math.ceil(promptTokens / chunk));
      return { ttftMs: rtt + zero + chunks * (step(inFlight + 1) - step(1)), tpotMs: step(inFlight + 1) };
    },
  };
}
