// Capacity search and the KV projection admission uses; and `webslo bench-sched` end to end on a
// small run (its JSON rows, a trace file as a scenario, --prefix-cache).

import { execFileSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { projectedPeakPages } from '../../src/scheduler/slos/kv-projection.js';
import { PerformanceModel } from '../../src/scheduler/perf-model.js';
import { capacityOf, traceWorkload, variantsFor, type BenchSetup } from '../../src/sim/bench-sched.js';
import { CapacityUnboundedError, findCapacity } from '../../src/sim/capacity.js';
import { PROFILES } from '../../src/sim/profiles.js';
import { parseTrace } from '../../src/sim/trace.js';

describe('findCapacity', () => {
  it('brackets with a geometric grid, then bisects to within 2^(1/32) of the true threshold', () => {
    for (const threshold of [0.013, 0.7, 3.3, 41]) {
      const seen: number[] = [];
      const { capacity, points } = findCapacity((r) => (seen.push(r), r <= threshold ? 0.95 : 0.5), { start: 1 });
      expect(capacity).toBeLessThanOrEqual(threshold);
      expect(capacity).toBeGreaterThan(threshold / 2 ** (1 / 16));
      expect(points.map((p) => p.rate)).toEqual([...seen].sort((a, b) => a - b));
    }
  });

  it('reports 0 when even the lowest rate fails', () => {
    expect(findCapacity(() => 0, { start: 1, maxGridSteps: 3 }).capacity).toBe(0);
  });

  it('says when no rate failed: the capacity is then only the ceiling of the search', () => {
    const s = findCapacity(() => 1, { start: 1, maxGridSteps: 4 });
    expect(s.unbounded).toBe(true);
    expect(s.capacity).toBe(16);
    expect(findCapacity((r) => (r <= 3 ? 1 : 0), { start: 1 }).unbounded).toBe(false);
  });

  it('bench-sched refuses to call a trace too small to load the scheduler a capacity; an app may be named __proto__', () => {
    // Once: a one-request trace crashed, and a three-request one reported 54,603 req/s (the search's
    // ceiling) as its capacity.
    const setup: BenchSetup = {
      profile: PerformanceModel.fromProfile(PROFILES.paper),
      kvTokens: 100_000,
      pageSize: 16,
      seeds: [1],
      requests: 3,
      replicas: 1,
      arrivals: 'poisson',
      contextTokens: 4096,
      alpha: 0.7,
    };
    const small = { apps: { chat: { ttft_ms: 5000, tpot_ms: 500 } }, requests: [0, 1000, 2000].map((t) => ({ t_ms: t, app: 'chat', prompt_tokens: 20, output_tokens: 10 })) };
    const slos = variantsFor('slos', setup)[0]!;
    for (const requests of [small.requests.slice(0, 1), small.requests]) {
      expect(() => capacityOf(traceWorkload('small', { ...small, requests }, setup), slos, setup)).toThrow(CapacityUnboundedError);
    }
    const proto = {
      apps: JSON.parse('{"__proto__": {"ttft_ms": 500, "tpot_ms": 50}}') as unknown,
      requests: Array.from({ length: 200 }, (_, i) => ({ t_ms: i * 50, app: '__proto__', prompt_tokens: 20 + (i % 50), output_tokens: 10 + (i % 20) })),
    };
    expect(Object.keys(parseTrace(proto).apps)).toEqual(['__proto__']);
    expect(capacityOf(traceWorkload('proto', proto, setup), slos, setup).capacityRps).toBeGreaterThan(0);
  });
});

describe('projectedPeakPages', () => {
  it('is the static sum when nothing ends before the others fill up', () => {
    // Two requests growing from 0 to 32 tokens at 1 token/ms, both ending at 32 ms: peak 2 pages each.
    expect(
      projectedPeakPages(
        [
          { now: 0, reserved: 32, paceMs: 1 },
          { now: 0, reserved: 32, paceMs: 1 },
        ],
        16,
      ),
    ).toBe(4);
  });

  it('releases a request that ends before another reaches its reservation', () => {
    // A: 16 -> 32 tokens, ends at 16 ms. B: 0 -> 64 tokens at 1/ms, ends at 64 ms (16 tokens at 16 ms).
    // Peak: at 16 ms, A 2 pages + B 1 page = 3; at 64 ms, B alone 4 pages. Static sum would be 6.
    expect(
      projectedPeakPages(
        [
          { now: 16, reserved: 32, paceMs: 1 },
          { now: 0, reserved: 64, paceMs: 1 },
        ],
        16,
      ),
    ).toBe(4);
    expect(
      projectedPeakPages(
        [
          { now: 16, reserved: 32, paceMs: 1 },
          { now: 0, reserved: 40, paceMs: 1 },
        ],
        16,
      ),
    ).toBe(3);
  });
});

describe('webslo bench-sched', () => {
  it('prints JSON rows for a generated scenario and for a trace file', () => {
    const dir = mkdtempSync(join(tmpdir(), 'webslo-bench-'));
    const trace = join(dir, 'tiny.json');
    const requests = Array.from({ length: 40 }, (_, i) => ({ t_ms: i * 500, app: 'chat', prompt_tokens: 100 + i, output_tokens: 20 }));
    writeFileSync(trace, JSON.stringify({ apps: { chat: { ttft_slowdown: 5, tpot_ms: 100 } }, requests }));
    const out = execFileSync(
      process.execPath,
      ['bin/webslo.mjs', 'bench-sched', '--scenario', 'coder', '--trace', trace, '--requests', '60', '--seeds', '1', '--scheduler', 'slos,fcfs', '--profile', 'paper', '--json', '--workers', '1'],
      { encoding: 'utf8', timeout: 240_000, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    const rows = JSON.parse(out) as { scenario: string; scheduler: string; capacity_rps: number; attainment: number }[];
    expect(rows.map((r) => `${r.scenario}/${r.scheduler}`).sort()).toEqual(['coder/fcfs', 'coder/slos', 'tiny.json/fcfs', 'tiny.json/slos']);
    for (const r of rows) {
      expect(r.capacity_rps).toBeGreaterThan(0);
      expect(r.attainment).toBeGreaterThanOrEqual(0.9);
    }
  }, 300_000);

  it("--prefix-cache raises the tool-calling scenario's capacity, and is refused with --real", () => {
    const capacity = (extra: string[]): number => {
      const out = execFileSync(
        process.execPath,
        ['bin/webslo.mjs', 'bench-sched', '--scenario', 'toolllm', '--requests', '40', '--seeds', '1', '--scheduler', 'fcfs', '--profile', 'paper', '--json', '--workers', '1', ...extra],
        { encoding: 'utf8', timeout: 120_000, stdio: ['ignore', 'pipe', 'pipe'] },
      );
      return (JSON.parse(out) as { capacity_rps: number }[])[0]!.capacity_rps;
    };
    expect(capacity(['--prefix-cache'])).toBeGreaterThan(2 * capacity([]));
    let err = '';
    try {
      execFileSync(process.execPath, ['bin/webslo.mjs', 'bench-sched', '--real', '--prefix-cache'], { encoding: 'utf8', stdio: 'pipe' });
    } catch (e) {
      err = String((e as { stderr?: string }).stderr);
    }
    expect(err).toMatch(/--prefix-cache .* does not apply to --real/);
  }, 240_000);

  it('names a bad trace field and exits non-zero', () => {
    const dir = mkdtempSync(join(tmpdir(), 'webslo-bench-'));
    const trace = join(dir, 'bad.json');
    writeFileSync(trace, JSON.stringify({ apps: { chat: { ttft_ms: 100, tpot_ms: -1 } }, requests: [{ t_ms: 0, app: 'chat', prompt_tokens: 5, output_tokens: 5 }] }));
    let err = '';
    try {
      execFileSync(process.execPath, ['bin/webslo.mjs', 'bench-sched', '--trace', trace, '--workers', '1'], { encoding: 'utf8', stdio: 'pipe' });
    } catch (e) {
      err = String((e as { stderr?: string }).stderr);
    }
    expect(err).toMatch(/tpot_ms/);
  }, 120_000);
});
