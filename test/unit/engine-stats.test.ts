// StatsCollector (engine.stats()'s per-app numbers): attainment counts declines as misses, and the
// admitted requests that missed are counted apart (the planner's broken promises), best-effort ones not among them.

import { describe, expect, it } from 'vitest';
import { StatsCollector } from '../../src/engine/stats.js';
import type { RoundTimeline } from '../../src/scheduler/attainment.js';

const round = (firstMs: number, gapMs: number, n: number): RoundTimeline => ({
  arrivalMs: 0,
  ttftSloMs: 100,
  stages: [{ name: 'all', tpotMs: 10 }],
  stageStarts: [0],
  tokenTimes: Array.from({ length: n }, (_, i) => firstMs + i * gapMs),
  finished: true,
});

describe('StatsCollector', () => {
  it('counts admitted requests that missed apart from declines and best-effort ones', () => {
    const s = new StatsCollector();
    for (let i = 0; i < 5; i++) s.submitted('chat');
    s.ended('chat', 'completed', { id: 'a', round: round(50, 10, 30), declined: false }); // admitted, met
    s.ended('chat', 'completed', { id: 'b', round: round(300, 10, 30), declined: false }); // admitted, first token late
    s.ended('chat', 'completed', { id: 'c', round: round(50, 30, 30), declined: false }); // admitted, 20th token late
    s.ended('chat', 'completed', { id: 'd', round: round(400, 10, 30), declined: true }); // best-effort: a miss, not a broken promise
    s.ended('chat', 'declined', null);
    const a = s.snapshot({ pagesTotal: 1, pagesUsed: 0, pageSize: 16, cachedPages: 0, evictablePages: 0, conversations: 0 }, 'slos').apps[0]!;
    expect([a.completed, a.declined, a.admitted, a.admittedMissed]).toEqual([4, 1, 3, 2]);
    expect(a.attainment).toBeCloseTo(1 / 5);
  });
});
