// Serving capacity: the highest request rate at which at least `target` (90%) of requests meet their
// SLOs. A geometric grid of rates (doubling up from a start that passes, halving down if it does
// not) brackets it, then bisection in log space narrows the bracket. `evaluate(rate)` returns the
// attainment at that rate (the caller averages seeds and excludes warm-up and drain).

export interface CapacityPoint {
  rate: number;
  attainment: number;
}

/**
 * Every rate the search tried met the target: the workload is too small to load the scheduler (a
 * trace of a few requests stays easy however compressed), so its capacity is not measured; the
 * last rate tried is a lower bound, not a capacity.
 */
export class CapacityUnboundedError extends Error {
  override name = 'CapacityUnboundedError';

  constructor(
    readonly workload: string,
    readonly requests: number,
    readonly highestRate: number,
  ) {
    super(
      `${workload}: every rate tried up to ${highestRate.toPrecision(4)} req/s met the target, so its capacity is not measured (${requests} requests are too few to load the scheduler at any rate): use a trace with more requests`,
    );
  }
}

export interface CapacitySearch {
  /** Highest rate seen passing (0 if even the lowest tried fails). */
  capacity: number;
  /** No rate tried failed: `capacity` is only the search's ceiling. */
  unbounded: boolean;
  /** Every evaluated point, by rate. */
  points: CapacityPoint[];
}

export interface CapacityOptions {
  start: number;
  target?: number;
  /** Bisection steps after bracketing (default 5: the bracket shrinks to 2^(1/32) ~ 2%). */
  bisections?: number;
  /** Doublings or halvings while bracketing (default 12). */
  maxGridSteps?: number;
}

export function findCapacity(evaluate: (rate: number) => number, options: CapacityOptions): CapacitySearch {
  const target = options.target ?? 0.9;
  const points: CapacityPoint[] = [];
  const at = (rate: number): boolean => {
    const attainment = evaluate(rate);
    points.push({ rate, attainment });
    return attainment >= target;
  };
  if (!(options.start > 0) || !Number.isFinite(options.start)) throw new RangeError(`capacity search start rate must be positive, got ${options.start}`);
  const steps = options.maxGridSteps ?? 12;
  let lo = 0;
  let hi = Infinity;
  let r = options.start;
  if (at(r)) {
    lo = r;
    for (let i = 0; i < steps; i++) {
      r *= 2;
      if (at(r)) lo = r;
      else {
        hi = r;
        break;
      }
    }
  } else {
    hi = r;
    for (let i = 0; i < steps; i++) {
      r /= 2;
      if (at(r)) {
        lo = r;
        break;
      }
      hi = r;
    }
  }
  if (lo > 0 && Number.isFinite(hi)) {
    for (let i = 0; i < (options.bisections ?? 5); i++) {
      const mid = Math.sqrt(lo * hi);
      if (at(mid)) lo = mid;
      else hi = mid;
    }
  }
  points.sort((a, b) => a.rate - b.rate);
  return { capacity: lo, unbounded: hi === Infinity, points };
}
