// The scheduler's performance model: the fit recovers known coefficients (exact, noisy, a max of two
// pieces), the inversion agrees with the prediction, the margin applies, profiles round-trip and
// bad ones are named, degenerate samples give typed errors (never NaN).

import { describe, expect, it } from 'vitest';
import { PerfFitError, PerformanceModel, PerfProfileError, type PerfSample } from '../../src/scheduler/perf-model.js';
import { rng } from '../helpers/random.js';

const INFO = { adapter: 'test adapter', model: 'synthetic', layers: 2, maxTokensPerStep: 512, date: '2025-01-01T00:00:00.000Z' };

/** Gaussian noise (Box-Muller) from a deterministic uniform source. */
function gauss(r: () => number): number {
  return Math.sqrt(-2 * Math.log(1 - r())) * Math.cos(2 * Math.PI * r());
}

function grid(f: (tokens: number, steps: number, kv: number) => number, opts: { steps?: number[]; noise?: number; seed?: number } = {}): PerfSample[] {
  const r = rng(opts.seed ?? 1);
  const out: PerfSample[] = [];
  for (const tokens of [1, 2, 4, 8, 16, 32, 48, 64, 96, 128, 192, 256, 384, 512]) {
    for (const draftSteps of opts.steps ?? [0]) {
      for (const kv of [0, 1000, 20_000, 150_000]) {
        const kvTokensRead = kv + 37 * tokens; // not collinear with tokens
        const ms = f(tokens, draftSteps, kvTokensRead) + (opts.noise ? opts.noise * gauss(r) : 0);
        out.push({ tokens, draftSteps, kvTokensRead, ms });
      }
    }
  }
  return out;
}

describe('fit', () => {
  it('recovers exact linear coefficients to 1e-6', () => {
    const samples = grid((t, s, kv) => 0.0657 * t + 0.8 * s + 2e-6 * kv + 27.5, { steps: [0, 1, 3, 6] });
    const m = PerformanceModel.fit(samples, INFO, { pieces: 1 });
    const p = m.profile;
    expect(p.pieces).toHaveLength(1);
    expect(Math.abs(p.pieces[0]!.k1 - 0.0657)).toBeLessThan(1e-6);
    expect(Math.abs(p.pieces[0]!.k2 - 0.8)).toBeLessThan(1e-6);
    expect(Math.abs(p.pieces[0]!.b - 27.5)).toBeLessThan(1e-6);
    expect(Math.abs(p.k3 - 2e-6)).toBeLessThan(1e-9);
    expect(p.r2).toBeGreaterThan(1 - 1e-9);
    expect(p.samples).toBe(samples.length);
  });

  it('keeps one piece on exact linear data even when two are allowed', () => {
    const m = PerformanceModel.fit(
      grid((t, _s, kv) => 0.0418 * t + 1e-6 * kv + 27.4),
      INFO,
    );
    expect(m.profile.pieces).toHaveLength(1);
    expect(Math.abs(m.profile.pieces[0]!.k1 - 0.0418)).toBeLessThan(1e-6);
    expect(m.profile.pieces[0]!.k2).toBe(0); // draft steps never vary: no draft term
  });

  it('recovers noisy coefficients within tolerance', () => {
    const samples = grid((t, _s, kv) => 0.05 * t + 3e-6 * kv + 10, { noise: 0.3, seed: 7 });
    const p = PerformanceModel.fit(samples, INFO, { pieces: 1 }).profile;
    expect(p.pieces[0]!.k1).toBeCloseTo(0.05, 2);
    expect(Math.abs(p.pieces[0]!.b - 10)).toBeLessThan(0.3);
    expect(Math.abs(p.k3 - 3e-6) / 3e-6).toBeLessThan(0.1);
    expect(p.r2).toBeGreaterThan(0.99);
  });

  it('recovers a max of two pieces (the design note OPT-6.7B + OPT-125M example)', () => {
    // max(68.8 us*tok + 24.8 ms, 75.2 us*tok + 3.46 ms*steps + 3.0 ms) + k3*kv
    const truth = (t: number, s: number, kv: number): number => Math.max(0.0688 * t + 24.8, 0.0752 * t + 3.46 * s + 3.0) + 1e-6 * kv;
    const samples = grid(truth, { steps: [0, 1, 2, 4, 6, 8, 10], noise: 0.05, seed: 3 });
    const m = PerformanceModel.fit(samples, INFO, { pieces: 2 });
    const p = m.profile;
    expect(p.pieces).toHaveLength(2);
    const [a, b] = [...p.pieces].sort((x, y) => x.k2 - y.k2) as [(typeof p.pieces)[0], (typeof p.pieces)[0]];
    expect(a.k1).toBeCloseTo(0.0688, 2);
    expect(a.k2).toBeLessThan(0.05);
    expect(Math.abs(a.b - 24.8)).toBeLessThan(0.5);
    expect(b.k1).toBeCloseTo(0.0752, 2);
    expect(Math.abs(b.k2 - 3.46)).toBeLessThan(0.05);
    expect(Math.abs(b.b - 3.0)).toBeLessThan(0.5);
    expect(p.r2).toBeGreaterThan(0.99);
    for (const s of samples) expect(Math.abs(m.predictRaw(s) - truth(s.tokens, s.draftSteps, s.kvTokensRead))).toBeLessThan(0.3);
  });

  it('recovers an overhead floor and a compute slope (two pieces in tokens alone)', () => {
    const truth = (t: number): number => Math.max(0.005 * t + 4, 0.04 * t + 0.5);
    const m = PerformanceModel.fit(grid(truth), INFO, { pieces: 2 });
    expect(m.profile.pieces).toHaveLength(2);
    const [flat, steep] = m.profile.pieces as unknown as [{ k1: number; b: number }, { k1: number; b: number }];
    expect(flat.k1).toBeCloseTo(0.005, 4);
    expect(flat.b).toBeCloseTo(4, 3);
    expect(steep.k1).toBeCloseTo(0.04, 4);
    expect(steep.b).toBeCloseTo(0.5, 3);
    expect(m.profile.r2).toBeGreaterThan(0.9999);
  });

  it('never fits a negative per-step cost', () => {
    // kv makes time fall slightly: the fit pins k3 at 0 instead.
    const samples = grid((t, _s, kv) => 0.02 * t + 5 - 1e-7 * kv);
    const p = PerformanceModel.fit(samples, INFO, { pieces: 1 }).profile;
    expect(p.k3).toBe(0);
    expect(p.pieces[0]!.k1).toBeGreaterThan(0);
  });
});

describe('prediction and inversion', () => {
  const twoPiece = PerformanceModel.fit(
    grid((t, s, kv) => Math.max(0.0688 * t + 24.8, 0.0752 * t + 3.46 * s + 3.0) + 1e-6 * kv, { steps: [0, 2, 5, 8, 10] }),
    INFO,
  );

  it('applies the margin: factor * raw + addMs', () => {
    const step = { tokens: 100, draftSteps: 2, kvTokensRead: 5000 };
    expect(twoPiece.predict(step)).toBeCloseTo(1.1 * twoPiece.predictRaw(step), 9);
    const samples = grid((t) => 0.01 * t + 3, { noise: 0.2, seed: 5 });
    const m = PerformanceModel.fit(samples, INFO, { pieces: 1, marginFactor: 1.25, addP90Residual: true });
    expect(m.profile.margin.factor).toBe(1.25);
    expect(m.profile.margin.addMs).toBeGreaterThan(0);
    expect(m.profile.margin.addMs).toBe(m.profile.p90ResidualMs);
    expect(m.predict({ tokens: 50 })).toBeCloseTo(1.25 * m.predictRaw({ tokens: 50 }) + m.profile.margin.addMs, 9);
    // Raw residuals: about 10% of samples above the p90 line.
    const above = samples.filter((s) => s.ms > m.predictRaw(s) + m.profile.p90ResidualMs).length;
    expect(above / samples.length).toBeLessThanOrEqual(0.11);
  });

  it('maxTokensWithin agrees with predict: predict(n) <= t < predict(n + 1)', () => {
    const r = rng(11);
    for (let i = 0; i < 500; i++) {
      const t = 1 + 200 * r();
      const s = Math.floor(11 * r());
      const kv = Math.floor(1e6 * r());
      const n = twoPiece.maxTokensWithin(t, s, kv);
      expect(Number.isInteger(n) && n >= 0).toBe(true);
      const shape = { draftSteps: s, kvTokensRead: kv };
      if (n > 0) expect(twoPiece.predict({ tokens: n, ...shape })).toBeLessThanOrEqual(t);
      expect(twoPiece.predict({ tokens: n + 1, ...shape })).toBeGreaterThan(t);
    }
    expect(twoPiece.maxTokensWithin(0)).toBe(0);
    expect(twoPiece.maxTokensWithin(-5, 3, 100)).toBe(0);
  });

  it('zeroLoadPrefillMs sums chunked prefill steps with their KV reads', () => {
    const m = PerformanceModel.fit(
      grid((t, _s, kv) => 0.05 * t + 1e-5 * kv + 2),
      INFO,
      { pieces: 1 },
    );
    // 1000 tokens in chunks of 512: 512 then 488; keys = sum of positions + 1, times 2 layers.
    const kvA = (512 * 513) / 2;
    const kvB = 488 * 512 + (488 * 489) / 2;
    const expected = 0.05 * 1000 + 2 * 2 + 1e-5 * 2 * (kvA + kvB);
    expect(m.zeroLoadPrefillMs(1000)).toBeCloseTo(expected, 6);
    expect(m.zeroLoadPrefillMs(0)).toBe(0);
    expect(m.zeroLoadPrefillMs(100, 1000)).toBeCloseTo(m.predictRaw({ tokens: 100, kvTokensRead: 2 * 5050 }), 9);
    expect(() => m.zeroLoadPrefillMs(-1)).toThrow(RangeError);
  });

  it('summary names the pieces, R^2 and the margin', () => {
    expect(twoPiece.summary()).toMatch(/^T = max\(.+us\*tok.+\) \+ .+ns\*kv; R\^2 \d\.\d{4}; margin x1\.1 \+ 0\.000 ms; \d+ samples$/);
  });
});

describe('profiles', () => {
  const m = PerformanceModel.fit(
    grid((t, s, kv) => Math.max(0.0688 * t + 24.8, 0.0752 * t + 3.46 * s + 3.0) + 1e-6 * kv, { steps: [0, 3, 9] }),
    INFO,
  );

  it('round-trip through JSON', () => {
    const back = PerformanceModel.fromJson(m.toJson());
    expect(back.profile).toEqual(m.profile);
    expect(back.predict({ tokens: 77, draftSteps: 3, kvTokensRead: 1234 })).toBe(m.predict({ tokens: 77, draftSteps: 3, kvTokensRead: 1234 }));
    expect(m.profile).toMatchObject({ format: 'webslo-perf-profile', version: 1, adapter: 'test adapter', model: 'synthetic', date: INFO.date, layers: 2, maxTokensPerStep: 512 });
  });

  it('validation names the bad field', () => {
    const good = m.toProfile();
    const bad = (mutate: (p: Record<string, unknown>) => void, field: string): void => {
      const p = structuredClone(good) as unknown as Record<string, unknown>;
      mutate(p);
      let err: unknown;
      try {
        PerformanceModel.fromProfile(p);
      } catch (e) {
        err = e;
      }
      expect(err, field).toBeInstanceOf(PerfProfileError);
      expect((err as PerfProfileError).field).toBe(field);
    };
    bad((p) => (p.format = 'other'), 'format');
    bad((p) => (p.version = 2), 'version');
    bad((p) => (p.date = 'yesterday'), 'date');
    bad((p) => delete p.adapter, 'adapter');
    bad((p) => (p.layers = 0), 'layers');
    bad((p) => (p.maxTokensPerStep = 1.5), 'maxTokensPerStep');
    bad((p) => (p.pieces = []), 'pieces');
    bad((p) => ((p.pieces as { k1: unknown }[])[1]!.k1 = 'fast'), 'pieces[1].k1');
    bad((p) => ((p.pieces as { k2: number }[])[0]!.k2 = -1), 'pieces[0].k2');
    bad((p) => ((p.pieces as { b: unknown }[])[0]!.b = null), 'pieces[0].b');
    bad((p) => (p.pieces = [{ k1: 0, k2: 0, b: 1 }]), 'pieces');
    bad((p) => (p.k3 = Number.NaN), 'k3');
    bad((p) => (p.margin = 1.1), 'margin');
    bad((p) => ((p.margin as { factor: number }).factor = 0), 'margin.factor');
    bad((p) => (p.r2 = 1.5), 'r2');
    bad((p) => (p.samples = 0), 'samples');
    expect(() => PerformanceModel.fromJson('{')).toThrow(PerfProfileError);
    expect(() => PerformanceModel.fromProfile([])).toThrow(PerfProfileError);
  });
});

describe('degenerate samples', () => {
  const fitErr = (samples: PerfSample[], options = {}): PerfFitError => {
    try {
      PerformanceModel.fit(samples, INFO, options);
    } catch (e) {
      expect(e).toBeInstanceOf(PerfFitError);
      return e as PerfFitError;
    }
    throw new Error('fit did not throw');
  };

  it('too few samples', () => {
    expect(fitErr([]).field).toBe('samples');
    expect(
      fitErr([
        { tokens: 1, draftSteps: 0, kvTokensRead: 0, ms: 1 },
        { tokens: 2, draftSteps: 0, kvTokensRead: 0, ms: 2 },
      ]).field,
    ).toBe('samples');
  });

  it('all-equal tokens', () => {
    const s = Array.from({ length: 10 }, (_, i) => ({ tokens: 8, draftSteps: 0, kvTokensRead: i * 100, ms: 3 + i * 0.01 }));
    expect(fitErr(s).field).toBe('tokens');
  });

  it('time that does not grow with tokens', () => {
    const s = Array.from({ length: 10 }, (_, i) => ({ tokens: i + 1, draftSteps: 0, kvTokensRead: 0, ms: 5 }));
    expect(fitErr(s).field).toBe('tokens');
  });

  it('non-finite or negative values, bad options', () => {
    const s = grid((t) => t + 1);
    expect(fitErr([...s, { tokens: 3, draftSteps: 0, kvTokensRead: 0, ms: Number.NaN }]).field).toBe(`samples[${s.length}].ms`);
    expect(fitErr([{ tokens: -1, draftSteps: 0, kvTokensRead: 0, ms: 1 }, ...s]).field).toBe('samples[0].tokens');
    expect(fitErr(s, { pieces: 0 }).field).toBe('pieces');
    expect(fitErr(s, { marginFactor: -1 }).field).toBe('marginFactor');
  });

  it('all-equal draft steps and KV reads are fine: those terms are 0, nothing is NaN', () => {
    const s = [1, 5, 9, 20].map((tokens) => ({ tokens, draftSteps: 4, kvTokensRead: 500, ms: 0.1 * tokens + 2 }));
    const p = PerformanceModel.fit(s, INFO).profile;
    expect(p.pieces[0]!.k1).toBeCloseTo(0.1, 9);
    expect(p.pieces[0]!.k2).toBe(0);
    expect(p.k3).toBe(0);
    expect(Number.isFinite(p.r2)).toBe(true);
  });
});
