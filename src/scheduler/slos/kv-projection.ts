// Projected KV occupancy of admitted requests, for admission. Each request reserves KV up to
// `reservedTokens` (prompt + the app's output reservation, reservation.ts), but it fills that reservation only
// as it decodes and gives all of it back when it ends: its reserved trajectory grows from its current
// KV by one token per TPOT (the slowest pace its SLO allows: the longest life, so the conservative
// choice) up to the reservation, and drops to zero at the end. The admission needs the peak of the sum
// of those trajectories to fit the cache. A sum of rising ramps that each end with a drop peaks just
// before one of the drops (or now), so the peak is the max over those instants.

export interface KvTrajectory {
  /** Tokens of KV held now (for a request not yet prefilled: its prompt, allocated when it starts). */
  now: number;
  /** Tokens it may grow to (its reservation; an overrun's current KV plus a little). */
  reserved: number;
  /** ms per output token. */
  paceMs: number;
}

/** Peak over future time of the summed trajectories, in pages of `pageSize` tokens. */
export function projectedPeakPages(trajectories: readonly KvTrajectory[], pageSize: number): number {
  const ends = trajectories.map((t) => Math.max(0, t.reserved - t.now) * t.paceMs);
  const instants = [0, ...ends].sort((a, b) => a - b);
  let peak = 0;
  for (const at of instants) {
    let pages = 0;
    for (const [i, t] of trajectories.entries()) {
      if (ends[i]! < at) continue; // already ended (and released) by then
      pages += Math.ceil(Math.min(t.reserved, t.now + at / t.paceMs) / pageSize);
    }
    peak = Math.max(peak, pages);
  }
  return peak;
}

/**
 * Admission's second memory check: drop candidates, largest reservation first, until the projected
 * peak of `admitted` plus the remaining candidates fits `pages`. Returns the dropped ones. The
 * static sum of reservations is tried first (it bounds the peak from above).
 */
export function dropUntilPeakFits<T>(admitted: readonly KvTrajectory[], candidates: readonly { key: T; trajectory: KvTrajectory }[], pages: number, pageSize: number): T[] {
  let staticPages = 0;
  for (const t of admitted) staticPages += Math.ceil(t.reserved / pageSize);
  for (const c of candidates) staticPages += Math.ceil(c.trajectory.reserved / pageSize);
  if (staticPages <= pages) return [];
  const order = [...candidates].sort((a, b) => b.trajectory.reserved - a.trajectory.reserved);
  const dropped: T[] = [];
  while (order.length > 0 && projectedPeakPages([...admitted, ...order.map((c) => c.trajectory)], pageSize) > pages) dropped.push(order.shift()!.key);
  return dropped;
}
