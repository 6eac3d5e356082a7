// Serving capacity: the highest request rate at which at least `target` (90%) of requests meet their
// SLOs. A geometric grid of rates (doubling up from a start that passes, halving down if it does
// not) brackets it, then bisection in log space narrows the bracket. `evaluate(rate)` returns the
// attainment at that rate (the caller averages seeds and excludes warm-up and drain).

export interface CapacityPoint {
  rate: number;
  attainment: number;
}

export interface CapacitySearch {
  /** Highest rate seen passing (0 if even the lowest tried fails). */
  capacity: number;
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
  return { capacity: lo, points };
}
