// How much output KV admission reserves for a request (its KV then grows into the reservation; an
// overrun past it is served from free or best-effort pages, and when none are left an admitted
// request is demoted). Modes:
//
// - 'adaptive' (default): an online per-app quantile of observed output lengths, moved by what its
//   mistakes cost. Reserving too much declines requests that memory would have held (each a miss);
//   reserving too little overcommits memory and demotes admitted requests later (each a miss, plus
//   its computed KV thrown away). So every demotion of an app's request raises its quantile by UP,
//   every final decline that memory caused (the KV check refused it) lowers it by DOWN; with UP =
//   2 x DOWN the quantile settles where demotions are about half the memory declines (a demotion
//   wastes work a decline does not). It starts at the 60th percentile and stays in [Q_MIN, Q_MAX]:
//   admission sums many requests' reservations, and a sum of lengths is near the sum of their means,
//   which right-skewed output lengths put near the 60th percentile (per-request p90s summed
//   over-reserve: under the paper profile, reasoning at 0.4 req/s declined 39 of 320 with a start
//   at p90, 36 of them served on time best-effort anyway; 9 with a start at p60).
// - 'p90': the fixed 90th percentile (the engine's former rule; an ablation).
// - 'max_tokens': the request's cap (never overruns; declines the most).
// - 'oracle': the true output length, which only a simulator knows (SchedRequest.oracleOutputTokens).
//   For benchmarks only, to compare with the paper (whose planner assumes known lengths); every table
//   that shows it says so.
//
// Before an app has enough finished requests (OutputLengthTracker.minSamples), 'adaptive' and 'p90'
// reserve a prior: max_tokens, but at most a share of the KV cache (COLD_SHARE). max_tokens alone
// would be the whole context when a request leaves it out, and a cache smaller than the context (the
// usual case: Qwen2.5-0.5B's 32k context against ~11k tokens in 256 MiB) would then decline every
// request of a new app, forever, since declined requests never finish to teach the tracker. A
// request that outgrows the prior is served from free pages, or demoted (which raises its app's
// quantile once it has one).

import type { OutputLengthTracker } from '../slo.js';
import type { SchedRequest } from '../types.js';

export const RESERVATION_MODES = ['adaptive', 'p90', 'max_tokens', 'oracle'] as const;
export type ReservationMode = (typeof RESERVATION_MODES)[number];

/** The share of the KV cache a request of an app without history reserves for its output, at most. */
export const COLD_SHARE = 1 / 8;
const Q_START = 0.6;
const Q_MIN = 0.5;
const Q_MAX = 0.99;
const UP = 0.02;
const DOWN = 0.01;

export class OutputReservation {
  private readonly q = new Map<string, number>();
  /** Demotions and memory declines seen, for reports. */
  demotions = 0;
  memoryDeclines = 0;

  /** Output tokens reserved before an app has history, at most (COLD_SHARE of the cache). */
  readonly coldTokens: number;

  constructor(
    readonly mode: ReservationMode,
    private readonly lengths: OutputLengthTracker,
    kvTokens: number,
  ) {
    if (!(RESERVATION_MODES as readonly string[]).includes(mode)) throw new RangeError(`reservation '${String(mode)}' is not one of ${RESERVATION_MODES.join(', ')}`);
    if (!(kvTokens > 0)) throw new RangeError(`kvTokens must be > 0, got ${kvTokens}`);
    this.coldTokens = Math.max(1, Math.floor(kvTokens * COLD_SHARE));
  }

  /** Output tokens to reserve KV for. */
  tokens(req: SchedRequest): number {
    switch (this.mode) {
      case 'max_tokens':
        return req.maxTokens;
      case 'oracle':
        return Math.min(req.maxTokens, req.oracleOutputTokens ?? req.maxTokens);
      case 'p90':
        return Math.min(req.maxTokens, this.lengths.quantile(req.app, 0.9) ?? this.coldTokens);
      case 'adaptive':
        return Math.min(req.maxTokens, this.lengths.quantile(req.app, this.quantile(req.app)) ?? this.coldTokens);
    }
  }

  /** The quantile reserved for `app` now. */
  quantile(app: string): number {
    return this.mode === 'p90' ? 0.9 : (this.q.get(app) ?? Q_START);
  }

  /** An admitted request of `app` was demoted for pages: its reservation was too small. */
  onDemoted(app: string): void {
    this.demotions++;
    if (this.mode === 'adaptive') this.q.set(app, Math.min(Q_MAX, this.quantile(app) + UP));
  }

  /** A request of `app` was finally declined after the KV check refused it: reservations too large. */
  onMemoryDecline(app: string): void {
    this.memoryDeclines++;
    if (this.mode === 'adaptive') this.q.set(app, Math.max(Q_MIN, this.quantile(app) - DOWN));
  }
}
