// Per-app SLOs: validation names the app and field, impossible SLOs are rejected against a known
// performance model, TTFT slowdowns resolve to ms, the deadline curve switches slope per stage, and
// the output-length tracker's p90 and reservations.

import { describe, expect, it } from 'vitest';
import { PerformanceModel } from '../../src/scheduler/perf-model.js';
import { OutputLengthTracker, resolveTtftMs, SloError, tokenDeadline, tokenDeadlines, validateAppSlo } from '../../src/scheduler/slo.js';

// T = 0.05 ms * tokens + 10 ms, no KV term, margin x1.1: a decode step plans at 1.1 * 10.05 = 11.055 ms;
// a 100-token prompt prefills alone in 15 ms, a 1-token one in 10.05 ms.
const MODEL = PerformanceModel.fromProfile({
  format: 'webslo-perf-profile',
  version: 1,
  adapter: 'test',
  model: 'synthetic',
  date: '2025-01-01T00:00:00.000Z',
  layers: 2,
  maxTokensPerStep: 512,
  pieces: [{ k1: 0.05, k2: 0, b: 10 }],
  k3: 0,
  margin: { factor: 1.1, addMs: 0 },
  r2: 1,
  p90ResidualMs: 0,
  samples: 10,
});

function sloError(f: () => unknown): SloError {
  try {
    f();
  } catch (e) {
    expect(e).toBeInstanceOf(SloError);
    return e as SloError;
  }
  throw new Error('expected an SloError');
}

describe('validateAppSlo', () => {
  it('accepts both TTFT forms and returns a clean copy', () => {
    const input = {
      ttftSlowdown: 3,
      stages: [
        { name: 'think', tpotMs: 50 },
        { name: 'answer', tpotMs: 100 },
      ],
    };
    const slo = validateAppSlo('reason', input, MODEL);
    expect(slo).toEqual(input);
    expect(slo.stages).not.toBe(input.stages);
    expect(validateAppSlo('chat', { ttftMs: 500, stages: [{ name: 'decode', tpotMs: 100 }] })).toEqual({ ttftMs: 500, stages: [{ name: 'decode', tpotMs: 100 }] });
    // A key present but undefined counts as absent (optional fields written out in code).
    expect(validateAppSlo('chat', { ttftMs: 500, ttftSlowdown: undefined, stages: [{ name: 'd', tpotMs: 1 }] })).toEqual({ ttftMs: 500, stages: [{ name: 'd', tpotMs: 1 }] });
  });

  it('names the app and field, with the message format apps see', () => {
    const e = sloError(() =>
      validateAppSlo('chat', {
        ttftMs: 100,
        stages: [
          { name: 'a', tpotMs: 50 },
          { name: 'b', tpotMs: -3 },
        ],
      }),
    );
    expect(e.app).toBe('chat');
    expect(e.field).toBe('stages[1].tpotMs');
    expect(e.name).toBe('SloError');
    expect(e.message).toBe("app 'chat': field 'stages[1].tpotMs' must be a positive finite number of ms, got -3");
  });

  it('rejects malformed SLOs, naming the field', () => {
    const stages = [{ name: 'decode', tpotMs: 50 }];
    const cases: [unknown, string][] = [
      [null, '(slo)'],
      [[], '(slo)'],
      [{ stages }, 'ttftMs'], // neither TTFT form
      [{ ttftMs: 100, ttftSlowdown: 3, stages }, 'ttftSlowdown'], // both
      [{ ttftMs: 100, stages, tpotMs: 50 }, 'tpotMs'], // extra field
      [{ ttftMs: 0, stages }, 'ttftMs'],
      [{ ttftMs: Number.POSITIVE_INFINITY, stages }, 'ttftMs'],
      [{ ttftMs: '100', stages }, 'ttftMs'],
      [{ ttftSlowdown: 0.5, stages }, 'ttftSlowdown'],
      [{ ttftSlowdown: Number.NaN, stages }, 'ttftSlowdown'],
      [{ ttftMs: 100 }, 'stages'], // missing
      [{ ttftMs: 100, stages: [] }, 'stages'],
      [{ ttftMs: 100, stages: 'decode' }, 'stages'],
      [{ ttftMs: 100, stages: [42] }, 'stages[0]'],
      [{ ttftMs: 100, stages: [{ name: '', tpotMs: 50 }] }, 'stages[0].name'],
      [{ ttftMs: 100, stages: [{ tpotMs: 50 }] }, 'stages[0].name'],
      [{ ttftMs: 100, stages: [{ name: 'd' }] }, 'stages[0].tpotMs'],
      [{ ttftMs: 100, stages: [{ name: 'd', tpotMs: Number.NaN }] }, 'stages[0].tpotMs'],
      [{ ttftMs: 100, stages: [{ name: 'd', tpotMs: 50, slack: 1 }] }, 'stages[0].slack'],
      [
        {
          ttftMs: 100,
          stages: [
            { name: 'd', tpotMs: 50 },
            { name: 'd', tpotMs: 60 },
          ],
        },
        'stages[1].name',
      ],
    ];
    for (const [slo, field] of cases) expect(sloError(() => validateAppSlo('app', slo)).field, JSON.stringify(slo) ?? String(slo)).toBe(field);
    expect(
      sloError(() =>
        validateAppSlo('app', {
          ttftMs: 100,
          stages: [
            { name: 'd', tpotMs: 5 },
            { name: 'd', tpotMs: 6 },
          ],
        }),
      ).message,
    ).toContain('duplicates stages[0].name');
    expect(sloError(() => validateAppSlo('app', { ttftMs: Number.NaN, stages })).message).toContain('got NaN');
  });

  it('rejects a TPOT below the zero-load decode step, saying what the fastest is', () => {
    const fastest = MODEL.predict({ tokens: 1, kvTokensRead: 0 });
    expect(fastest).toBeCloseTo(11.055, 9);
    const e = sloError(() =>
      validateAppSlo(
        'coder',
        {
          ttftSlowdown: 5,
          stages: [
            { name: 'think', tpotMs: 50 },
            { name: 'answer', tpotMs: 11 },
          ],
        },
        MODEL,
      ),
    );
    expect(e.field).toBe('stages[1].tpotMs');
    expect(e.message).toContain('(11.055 ms at zero load)');
    expect(e.message).toContain('impossible');
    // Without a model only the form is checked; at the limit it is possible.
    expect(validateAppSlo('coder', { ttftSlowdown: 5, stages: [{ name: 'd', tpotMs: 11 }] }).stages[0]!.tpotMs).toBe(11);
    expect(validateAppSlo('coder', { ttftSlowdown: 5, stages: [{ name: 'd', tpotMs: fastest }] }, MODEL).stages[0]!.tpotMs).toBe(fastest);
  });

  it('rejects an absolute TTFT below even a 1-token zero-load prefill', () => {
    const e = sloError(() => validateAppSlo('chat', { ttftMs: 10, stages: [{ name: 'd', tpotMs: 50 }] }, MODEL));
    expect(e.field).toBe('ttftMs');
    expect(e.message).toContain('10.05 ms');
  });
});

describe('resolveTtftMs', () => {
  it('multiplies a slowdown by the zero-load prefill time of the prompt', () => {
    expect(MODEL.zeroLoadPrefillMs(100)).toBeCloseTo(15, 9);
    expect(resolveTtftMs('chat', { ttftSlowdown: 5, stages: [] }, 100, MODEL)).toBeCloseTo(75, 9);
    // Chunked at 512 tokens: 2 * (0.05 * 512 + 10) = 71.2 ms.
    expect(resolveTtftMs('sum', { ttftSlowdown: 3, stages: [] }, 1024, MODEL)).toBeCloseTo(3 * 71.2, 9);
  });

  it('passes an absolute budget through, and rejects one below this prompt’s zero-load prefill', () => {
    expect(resolveTtftMs('chat', { ttftMs: 20, stages: [] }, 100, MODEL)).toBe(20);
    const e = sloError(() => resolveTtftMs('chat', { ttftMs: 20, stages: [] }, 1000, MODEL));
    expect(e.app).toBe('chat');
    expect(e.field).toBe('ttftMs');
    expect(e.message).toMatch(/1000-token prompt \(70 ms\): impossible/);
  });
});

describe('token deadlines', () => {
  it('follow one slope from t0; token 1 is due at t0', () => {
    expect(tokenDeadline(100, [50], [0], 1)).toBe(100);
    expect(tokenDeadline(100, [50], [0], 20)).toBe(100 + 19 * 50);
    expect(tokenDeadlines(100, [50], [0], 4)).toEqual([100, 150, 200, 250]);
    expect(tokenDeadlines(100, [50], [0], 0)).toEqual([]);
  });

  it('switch slope where the next stage starts', () => {
    // answer (100 ms) starts at 0-based index 10 = token 11: tokens 2..10 at 50, 11..20 at 100.
    expect(tokenDeadline(0, [50, 100], [0, 10], 20)).toBe(9 * 50 + 10 * 100);
    expect(tokenDeadline(0, [50, 100], [0, 10], 10)).toBe(9 * 50);
    expect(tokenDeadline(0, [50, 100], [0, 10], 11)).toBe(9 * 50 + 100);
    // A stage not begun yet: the first stage's slope continues.
    expect(tokenDeadline(0, [50, 100], [0], 20)).toBe(19 * 50);
    // An empty first stage (thinking skipped): the second slope from token 2.
    expect(tokenDeadline(0, [50, 100], [0, 0], 3)).toBe(200);
    const all = tokenDeadlines(7, [50, 20, 100], [0, 3, 5], 30);
    all.forEach((d, i) => expect(d).toBe(tokenDeadline(7, [50, 20, 100], [0, 3, 5], i + 1)));
  });

  it('reject malformed stage starts', () => {
    expect(() => tokenDeadline(0, [50], [1], 3)).toThrow(RangeError);
    expect(() => tokenDeadline(0, [50], [], 3)).toThrow(RangeError);
    expect(() => tokenDeadline(0, [50], [0, 4], 3)).toThrow(RangeError);
    expect(() => tokenDeadline(0, [50, 60], [0, -1], 3)).toThrow(RangeError);
    expect(() => tokenDeadline(0, [50], [0], 0)).toThrow(RangeError);
    expect(() => tokenDeadlines(0, [50], [0], -1)).toThrow(RangeError);
  });
});

describe('OutputLengthTracker', () => {
  it('has no p90 (no quantile) before 8 observations', () => {
    const t = new OutputLengthTracker();
    for (let i = 1; i <= 7; i++) t.record('chat', i * 10);
    expect(t.p90('chat')).toBeNull();
    expect(t.quantile('chat', 0.5)).toBeNull();
    t.record('chat', 80);
    expect(t.p90('chat')).toBe(80); // nearest rank: ceil(0.9 * 8) = 8th of 10..80
    expect(t.p90('other')).toBeNull();
  });

  it('is the nearest-rank p90 (and any quantile) per app', () => {
    const t = new OutputLengthTracker();
    for (let i = 1; i <= 100; i++) t.record('chat', i);
    for (let i = 0; i < 10; i++) t.record('code', 1000);
    expect(t.p90('chat')).toBe(90);
    expect(t.p90('code')).toBe(1000);
    expect(t.quantile('chat', 0.6)).toBe(60);
    expect(t.quantile('chat', 1)).toBe(100);
    expect(t.quantile('chat', 0.001)).toBe(1);
    expect(() => t.quantile('chat', 0)).toThrow(RangeError);
  });

  it('keeps only the last 256 observations per app', () => {
    const t = new OutputLengthTracker();
    for (let i = 0; i < 256; i++) t.record('chat', 5000);
    expect(t.p90('chat')).toBe(5000);
    for (let i = 0; i < 256; i++) t.record('chat', 1 + (i % 100));
    expect(t.count('chat')).toBe(256);
    expect(t.p90('chat')).toBeLessThanOrEqual(100); // the old long outputs are gone
    t.record('chat', 5000);
    expect(t.count('chat')).toBe(256);
  });

  it('rejects bad lengths and options', () => {
    const t = new OutputLengthTracker();
    expect(() => t.record('chat', -1)).toThrow(RangeError);
    expect(() => t.record('chat', 1.5)).toThrow(RangeError);
    expect(() => new OutputLengthTracker(0)).toThrow(RangeError);
    expect(() => new OutputLengthTracker(4, 8)).toThrow(RangeError);
  });
});
