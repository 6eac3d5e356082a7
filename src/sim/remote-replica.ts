// A remote replica as the simulator sees it: a latency profile and a capacity, not a scheduler.
// The default (`remoteLike`) is a peer of the local replica: the same performance model and KV
// cache behind a network round trip, serving in arrival order:
// - prefills one after another (a prompt waits for those sent before it), each chunk sharing its
//   step with the requests decoding there (what their decode rows add to the chunk's step);
// - then one token per decode step of (requests decoding there + 1) rows;
// - a request whose prompt and max_tokens do not fit beside the KV its requests hold is refused
//   (as a 429 would be), and at most maxInFlight run at once.
// Left out, so it flatters the remote somewhat: decode steps slowed by the prefills they share steps
// with, and preemption. The Router's policy (scheduler/routing.ts) chooses among remotes, learning
// their latencies from what it observes, exactly as the package's Router does.

import type { PerformanceModel } from '../scheduler/perf-model.js';

export interface RemoteProfile {
  name: string;
  maxInFlight: number;
  /**
   * Take a request at `nowMs` (`inFlight` others there): its first-token time and token gap, or
   * null when its KV does not fit there now. `release` when it ends.
   */
  take(nowMs: number, promptTokens: number, maxTokens: number, inFlight: number): { ttftMs: number; tpotMs: number; release: () => void } | null;
}

/** A peer of the local replica (its performance model and KV cache, `rttMs` away, at most `maxInFlight` at once): the remote of `bench-sched --remotes N`. */
export function remoteLike(clock: PerformanceModel, name: string, options: { rttMs?: number; maxInFlight?: number; kvTokens: number }): RemoteProfile {
  const rtt = options.rttMs ?? 20;
  const chunk = clock.profile.maxTokensPerStep;
  const prefill = new Map<number, number>();
  const step = (rows: number): number => clock.predictRaw({ tokens: rows });
  let prefillBusyUntil = 0;
  let kvHeld = 0;
  return {
    name,
    maxInFlight: options.maxInFlight ?? 256,
    take(nowMs, promptTokens, maxTokens, inFlight) {
      const need = promptTokens + maxTokens;
      if (kvHeld + need > options.kvTokens) return null;
      kvHeld += need;
      let zero = prefill.get(promptTokens);
      if (zero === undefined) prefill.set(promptTokens, (zero = clock.zeroLoadPrefillMs(promptTokens)));
      const chunks = Math.max(1, Math.ceil(promptTokens / chunk));
      const arrive = nowMs + rtt / 2;
      const start = Math.max(arrive, prefillBusyUntil);
      prefillBusyUntil = start + zero + chunks * (step(inFlight + 1) - step(1));
      let released = false;
      return {
        ttftMs: prefillBusyUntil + rtt / 2 - nowMs,
        tpotMs: step(inFlight + 1),
        release: () => {
          if (released) return;
          released = true;
          kvHeld -= need;
        },
      };
    },
  };
}
