// Scenario generators and their RNG: deterministic per seed, the same lengths at every rate (common
// random numbers), arrival gaps with the requested mean and CV (Poisson and Gamma), lengths near the
// cited dataset means, the paper's SLOs, and every trace valid and small.

import { describe, expect, it } from 'vitest';
import { Rng, rngFor, streamSeed } from '../../src/sim/rng.js';
import { arrivalTimes, generateScenario, LENGTHS, SCENARIOS, type LengthDist } from '../../src/sim/scenarios.js';
import { parseTrace, resolveTrace, type Trace, type TraceRequest } from '../../src/sim/trace.js';

function stats(xs: readonly number[]): { mean: number; cv: number } {
  const mean = xs.reduce((a, b) => a + b, 0) / xs.length;
  const v = xs.reduce((a, b) => a + (b - mean) ** 2, 0) / (xs.length - 1);
  return { mean, cv: Math.sqrt(v) / mean };
}

const gaps = (t: readonly number[]): number[] => t.slice(1).map((x, i) => x - (t[i] as number));
const lengthsOnly = (t: Trace): Omit<TraceRequest, 't_ms'>[] => t.requests.map(({ t_ms: _t, ...rest }) => rest);
const target = (d: LengthDist): number => d.target ?? d.mean;

describe('rng', () => {
  it('is deterministic, and named streams are independent of each other', () => {
    const a = rngFor(42, 'lengths', 'chat', 3);
    const b = rngFor(42, 'lengths', 'chat', 3);
    const xs = Array.from({ length: 8 }, () => a.nextU32());
    expect(Array.from({ length: 8 }, () => b.nextU32())).toEqual(xs);
    const seeds = [
      streamSeed(42, 'ab', 'c'),
      streamSeed(42, 'a', 'bc'),
      streamSeed(42, 'abc'),
      streamSeed(43, 'abc'),
      streamSeed(42, 1),
      streamSeed(42, '1'),
      streamSeed(-42, 'abc'),
      streamSeed(2 ** 40, 'abc'),
    ];
    expect(new Set(seeds).size).toBe(seeds.length);
    expect(() => new Rng(0.5)).toThrow(RangeError);
  });

  it('draws uniform, exponential, normal, lognormal and gamma with the right moments', () => {
    const r = rngFor(7, 'moments');
    const n = 200_000;
    const draw = (f: () => number): { mean: number; cv: number } => stats(Array.from({ length: n }, f));
    const u = Array.from({ length: n }, () => r.uniform());
    expect(u.every((x) => x >= 0 && x < 1)).toBe(true);
    expect(stats(u).mean).toBeCloseTo(0.5, 2);
    expect(draw(() => r.exponential(4)).mean).toBeCloseTo(0.25, 2);
    const z = Array.from({ length: n }, () => r.normal());
    expect(stats(z).mean).toBeCloseTo(0, 1);
    expect(z.reduce((a, b) => a + b * b, 0) / n).toBeCloseTo(1, 1);
    expect(draw(() => r.lognormal(1, 0.5)).mean / Math.exp(1.125)).toBeCloseTo(1, 1);
    for (const [shape, scale] of [
      [0.3, 2],
      [1, 1],
      [2.5, 0.5],
      [9, 3],
    ] as const) {
      const g = draw(() => r.gamma(shape, scale));
      expect(g.mean / (shape * scale)).toBeCloseTo(1, 1);
      expect(g.cv * Math.sqrt(shape)).toBeCloseTo(1, 1);
    }
    expect(() => r.gamma(0, 1)).toThrow(RangeError);
    expect(() => r.exponential(-1)).toThrow(RangeError);
  });
});

describe('arrivals', () => {
  it('Poisson gaps have mean 1/rate and CV 1', () => {
    const s = stats(gaps(arrivalTimes(50_001, { ratePerSec: 4, seed: 1 })));
    expect(s.mean / 250).toBeCloseTo(1, 1);
    expect(Math.abs(s.mean / 250 - 1)).toBeLessThan(0.03);
    expect(Math.abs(s.cv - 1)).toBeLessThan(0.03);
  });

  it('bursty gaps (a Gamma-modulated Poisson process) have the requested CV (default 3.5)', () => {
    for (const [cv, seed] of [
      [3.5, 2],
      [2, 3],
      [undefined, 4],
    ] as const) {
      const s = stats(gaps(arrivalTimes(100_001, { ratePerSec: 2, seed, arrivals: 'bursty', cv })));
      expect(Math.abs(s.mean / 500 - 1)).toBeLessThan(0.06);
      expect(Math.abs(s.cv / (cv ?? 3.5) - 1)).toBeLessThan(0.1);
    }
  });

  it('arrival times at rate r are exactly those at rate 1 divided by r', () => {
    for (const arrivals of ['poisson', 'bursty'] as const) {
      const one = arrivalTimes(500, { ratePerSec: 1, seed: 9, arrivals });
      const r = 3.7;
      expect(arrivalTimes(500, { ratePerSec: r, seed: 9, arrivals })).toEqual(one.map((t) => t / r));
      expect(one[0]).toBe(0);
    }
  });
});

describe('scenarios', () => {
  it('are deterministic per seed', () => {
    for (const name of SCENARIOS) {
      const opts = { requests: 50, ratePerSec: 2, seed: 11, arrivals: 'bursty' } as const;
      expect(generateScenario(name, opts)).toStrictEqual(generateScenario(name, opts));
      expect(generateScenario(name, { ...opts, seed: 12 })).not.toStrictEqual(generateScenario(name, opts));
    }
  });

  it('keep the same lengths at every rate and arrival mode, and a shorter trace is a prefix', () => {
    for (const name of SCENARIOS) {
      const base = generateScenario(name, { requests: 200, ratePerSec: 1, seed: 5 });
      const fast = generateScenario(name, { requests: 200, ratePerSec: 8, seed: 5, arrivals: 'bursty', cv: 2 });
      expect(lengthsOnly(fast)).toStrictEqual(lengthsOnly(base));
      expect(fast.requests.map((r) => r.t_ms)).not.toEqual(base.requests.map((r) => r.t_ms));
      const short = generateScenario(name, { requests: 60, ratePerSec: 1, seed: 5 });
      expect(short.requests).toStrictEqual(base.requests.slice(0, 60));
    }
  });

  it('carry the paper SLOs, with tight and loose TPOT as options', () => {
    const t = generateScenario('mixed', { requests: 10, ratePerSec: 1, seed: 1, tightTpotMs: 20, looseTpotMs: 40 });
    expect(t.apps).toStrictEqual({
      chat: { ttft_slowdown: 5, tpot_ms: 40 },
      code: { ttft_slowdown: 5, tpot_ms: 20 },
      summarize: { ttft_slowdown: 3, tpot_ms: 40 },
      reason: {
        ttft_slowdown: 3,
        stages: [
          { name: 'think', tpot_ms: 20 },
          { name: 'answer', tpot_ms: 40 },
        ],
      },
      tool: { ttft_slowdown: 3, tpot_ms: 20, final_tpot_ms: 40 },
    });
    expect(Object.keys(generateScenario('coder', { requests: 1, ratePerSec: 1, seed: 1 }).apps)).toEqual(['code']);
    expect(generateScenario('toolllm', { requests: 1, ratePerSec: 1, seed: 1 }).apps.tool).toEqual({ ttft_slowdown: 3, tpot_ms: 50, final_tpot_ms: 100 });
  });

  it('every trace parses, resolves and stays small', () => {
    for (const name of SCENARIOS) {
      for (const arrivals of ['poisson', 'bursty'] as const) {
        const t = generateScenario(name, { requests: 600, ratePerSec: 3, seed: 21, arrivals });
        const json = JSON.stringify(t);
        expect(json.length).toBeLessThan(300_000);
        expect(parseTrace(JSON.parse(json))).toStrictEqual(t);
        const r = resolveTrace(t, { contextTokens: 16_384 });
        expect(r.requests).toHaveLength(600);
        for (const q of t.requests) {
          if (q.prompt_tokens !== undefined) expect(q.prompt_tokens).toBeLessThanOrEqual(8192);
          if (q.rounds) {
            const ctx = q.rounds.reduce((a, x) => a + x.prompt_tokens, 0) + q.rounds.slice(0, -1).reduce((a, x) => a + x.output_tokens, 0);
            expect(ctx).toBeLessThanOrEqual(8192);
          }
        }
      }
    }
    const mixed = generateScenario('mixed', { requests: 600, ratePerSec: 3, seed: 21 });
    expect(new Set(mixed.requests.map((r) => r.app)).size).toBe(5);
  });

  it('draw lengths near the cited dataset means', () => {
    const n = 4000;
    const near = (xs: number[], d: LengthDist | number, tol = 0.08): void => {
      const want = typeof d === 'number' ? d : target(d);
      expect(Math.abs(stats(xs).mean / want - 1)).toBeLessThan(tol);
    };
    const gen = (name: (typeof SCENARIOS)[number]): TraceRequest[] => generateScenario(name, { requests: n, ratePerSec: 1, seed: 3, maxPromptTokens: 1 << 20 }).requests;
    for (const [name, app] of [
      ['chatbot', 'chat'],
      ['coder', 'code'],
      ['summarizer', 'summarize'],
    ] as const) {
      const reqs = gen(name);
      near(
        reqs.map((r) => r.prompt_tokens as number),
        LENGTHS[app].prompt,
      );
      near(
        reqs.map((r) => r.output_tokens as number),
        LENGTHS[app].output,
      );
    }
    const reason = gen('reasoning');
    near(
      reason.map((r) => r.prompt_tokens as number),
      LENGTHS.reason.prompt,
    );
    near(
      reason.map((r) => (r.stage_tokens as number[])[0] as number),
      LENGTHS.reason.think,
    );
    near(
      reason.map((r) => (r.stage_tokens as number[])[1] as number),
      LENGTHS.reason.answer,
    );
    const tool = gen('toolllm').map((r) => r.rounds ?? []);
    near(
      tool.map((rs) => rs.length - 1),
      LENGTHS.tool.callsMean,
      0.06,
    ); // calls = rounds - 1 (clipped at 12)
    near(
      tool.map((rs) => rs[0]?.prompt_tokens as number),
      LENGTHS.tool.firstPrompt,
    );
    near(
      tool.flatMap((rs) => rs.slice(1).map((x) => x.prompt_tokens)),
      LENGTHS.tool.appended,
    );
    near(
      tool.flatMap((rs) => rs.slice(0, -1).map((x) => x.output_tokens)),
      LENGTHS.tool.innerOutput,
    );
    near(
      tool.map((rs) => rs.at(-1)?.output_tokens as number),
      LENGTHS.tool.finalOutput,
    );
    near(
      tool.flatMap((rs) => rs.slice(0, -1).map((x) => x.tool_ms as number)),
      LENGTHS.tool.toolMs,
    );
  });

  it("mark the tool app's shared system prompt only when asked, drawing nothing more", () => {
    for (const name of ['toolllm', 'mixed'] as const) {
      const plain = generateScenario(name, { requests: 200, ratePerSec: 1, seed: 9 });
      const marked = generateScenario(name, { requests: 200, ratePerSec: 1, seed: 9, prefixes: true });
      expect(plain.requests.some((r) => 'prefix_id' in r || 'prefix_tokens' in r)).toBe(false);
      expect(marked.apps).toStrictEqual(plain.apps);
      for (const [i, r] of marked.requests.entries()) {
        const { prefix_id, prefix_tokens, ...rest } = r;
        expect(rest).toStrictEqual(plain.requests[i]);
        if (r.app === 'tool') {
          expect(prefix_id).toBe('toolbench-system');
          expect(prefix_tokens).toBe(Math.min(LENGTHS.tool.systemPrompt, r.rounds![0]!.prompt_tokens));
        } else expect(prefix_id).toBeUndefined();
      }
      expect(parseTrace(JSON.parse(JSON.stringify(marked)))).toStrictEqual(marked);
    }
    // Other scenarios have no shared prefix to mark.
    expect(generateScenario('chatbot', { requests: 50, ratePerSec: 1, seed: 9, prefixes: true })).toStrictEqual(generateScenario('chatbot', { requests: 50, ratePerSec: 1, seed: 9 }));
  });

  it('clip prompts at maxPromptTokens and reject bad options', () => {
    const t = generateScenario('summarizer', { requests: 300, ratePerSec: 1, seed: 2, maxPromptTokens: 2048 });
    expect(Math.max(...t.requests.map((r) => r.prompt_tokens as number))).toBe(2048);
    const ok = { requests: 10, ratePerSec: 1, seed: 1 };
    expect(() => generateScenario('chatbot', { ...ok, requests: 0 })).toThrow(RangeError);
    expect(() => generateScenario('chatbot', { ...ok, ratePerSec: 0 })).toThrow(RangeError);
    expect(() => generateScenario('chatbot', { ...ok, seed: 1.5 })).toThrow(RangeError);
    expect(() => generateScenario('chatbot', { ...ok, arrivals: 'bursty', cv: 0 })).toThrow(RangeError);
    expect(() => generateScenario('chatbot', { ...ok, arrivals: 'bursty', cv: 1 })).toThrow(/> 1/);
    expect(() => generateScenario('chatbot', { ...ok, tightTpotMs: -1 })).toThrow(RangeError);
    expect(() => generateScenario('chatbot', { ...ok, maxPromptTokens: 100 })).toThrow(RangeError);
    expect(() => generateScenario('nope' as never, ok)).toThrow(RangeError);
  });
});
