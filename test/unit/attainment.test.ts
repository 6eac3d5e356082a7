// SLO attainment on hand-made timelines with known answers: TTFT within 5%, the deadline curve
// checked every 20th token (slack banked by an early first token, 1.05x exactly at the limit, a
// stage switch changing the slope), multi-round, declined and unfinished requests, the summary.

import { describe, expect, it } from 'vitest';
import { judgeRequest, scoreRequest, summarize, type AttainmentMetric, type RequestTimeline, type RoundTimeline } from '../../src/scheduler/attainment.js';
import type { StageSlo } from '../../src/scheduler/types.js';

const DECODE: StageSlo[] = [{ name: 'decode', tpotMs: 50 }];
const REASON: StageSlo[] = [
  { name: 'think', tpotMs: 50 },
  { name: 'answer', tpotMs: 100 },
];

/** `count` tokens: the first at `first`, the rest every `gap` ms after it. */
function steady(first: number, gap: number, count: number): number[] {
  return Array.from({ length: count }, (_, i) => first + i * gap);
}

/** A one-stage round arriving at 0 with a 100 ms TTFT SLO and a 50 ms TPOT (t0 = 100 when on time). */
function round(tokenTimes: number[], extra: Partial<RoundTimeline> = {}): RoundTimeline {
  return { arrivalMs: 0, ttftSloMs: 100, stages: DECODE, stageStarts: [0], tokenTimes, finished: true, ...extra };
}

function request(rounds: RoundTimeline[], extra: Partial<RequestTimeline> = {}): RequestTimeline {
  return { id: 'r', app: 'chat', declined: false, rounds, ...extra };
}

const judge = (r: RoundTimeline, extra: Partial<RequestTimeline> = {}) => judgeRequest(request([r], extra));

describe('judgeRequest: one round', () => {
  it('on time: tokens exactly on the curve', () => {
    const v = judge(round(steady(100, 50, 45)));
    expect(v).toEqual({ id: 'r', app: 'chat', met: true, declined: false, rounds: [{ met: true, ttftMet: true, ttftMs: 100, stages: [{ name: 'decode', met: true }] }] });
  });

  it('TTFT 4% over passes, 6% over fails', () => {
    const ok = judge(round(steady(104, 50, 40)));
    expect(ok.met).toBe(true);
    expect(ok.rounds[0]!.ttftMs).toBe(104);
    const late = judge(round(steady(106, 50, 40)));
    expect(late.met).toBe(false);
    expect(late.rounds[0]!.ttftMet).toBe(false);
  });

  it('a late first token moves t0: the curve starts from it', () => {
    // First token at 104 (within 5%): t0 = 104, token 20 due at 104 + 950; at 104 + 997.5 it passes.
    expect(judge(round([...steady(104, 50, 19), 104 + 997.5])).met).toBe(true);
  });

  it('an early first token banks slack', () => {
    // First token at 20, but t0 = max(0 + 100, 20) = 100: token 20 at 100 + 997.5 = 1097.5 is on time.
    // Measured from the first token (1077.5 ms > 1.05 * 950) it would have been late.
    const v = judge(round([...steady(20, 50, 19), 1097.5]));
    expect(v.met).toBe(true);
    expect(v.rounds[0]!.ttftMs).toBe(20);
  });

  it('a token exactly at 1.05x passes; just after fails', () => {
    const at = steady(100, 50, 20);
    at[19] = 100 + 1.05 * 950;
    expect(judge(round(at)).met).toBe(true);
    const after = [...at];
    after[19] = 100 + 997.6;
    const v = judge(round(after));
    expect(v.met).toBe(false);
    expect(v.rounds[0]!.ttftMet).toBe(true);
    expect(v.rounds[0]!.stages).toEqual([{ name: 'decode', met: false }]);
  });

  it('only every 20th token is checked', () => {
    // Token 19 is very late, token 20 is back on the curve.
    const times = steady(100, 50, 20);
    times[18] = times[19]!;
    expect(judge(round(times)).met).toBe(true);
    // A late 40th token fails even with an on-time 20th.
    const later = steady(100, 50, 40);
    later[39] = 100 + 1.05 * 39 * 50 + 1;
    expect(judge(round(later)).met).toBe(false);
  });

  it('a stage switch changes the slope', () => {
    // Answer (100 ms) from token 11: token 20 is due at t0 + 9*50 + 10*100 = t0 + 1450. At t0 + 1400 it
    // is on time; under the thinking TPOT alone (due t0 + 950, limit 997.5) it would be late.
    const times = [...steady(100, 50, 10), ...steady(100 + 9 * 50 + 95, 95, 9), 100 + 1400];
    const v = judge(round(times, { stages: REASON, stageStarts: [0, 10] }));
    expect(v.met).toBe(true);
    expect(v.rounds[0]!.stages).toEqual([
      { name: 'think', met: true }, // no checked token: met with the TTFT
      { name: 'answer', met: true },
    ]);
    expect(judge(round(times)).met).toBe(false); // one 50 ms stage throughout
  });

  it('judges each stage by its own checked tokens; one without any goes with the TTFT', () => {
    // 25 tokens, answer from token 22: token 20 (thinking) is checked, the answer has none.
    const times = steady(100, 50, 25);
    times[19] = 100 + 998; // late 20th token
    const v = judge(round(times, { stages: REASON, stageStarts: [0, 21] }));
    expect(v.met).toBe(false);
    expect(v.rounds[0]!.stages).toEqual([
      { name: 'think', met: false },
      { name: 'answer', met: true },
    ]);
    // Late TTFT: the unchecked answer misses with it; the thinking stage's on-time token 20 meets.
    const w = judge(round(steady(110, 50, 25), { stages: REASON, stageStarts: [0, 21] }));
    expect(w.rounds[0]!.stages.map((s) => s.met)).toEqual([true, false]);
    // A stage never begun in a finished round (thinking only) goes with the TTFT too.
    expect(judge(round(steady(100, 50, 25), { stages: REASON, stageStarts: [0] })).rounds[0]!.stages.map((s) => s.met)).toEqual([true, true]);
  });

  it('unfinished misses, and so does the stage it stopped in', () => {
    const v = judge(round(steady(100, 50, 30), { finished: false, stages: REASON, stageStarts: [0, 10] }));
    expect(v.met).toBe(false);
    expect(v.rounds[0]!.met).toBe(false);
    expect(v.rounds[0]!.stages).toEqual([
      { name: 'think', met: true }, // completed: the answer began
      { name: 'answer', met: false },
    ]);
  });

  it('no first token misses, with a null TTFT', () => {
    const v = judge(round([], { finished: false }));
    expect(v.met).toBe(false);
    expect(v.rounds[0]).toEqual({ met: false, ttftMet: false, ttftMs: null, stages: [{ name: 'decode', met: false }] });
    expect(judgeRequest(request([])).met).toBe(false); // no round at all
  });

  it('declined misses even when best-effort finished it on time', () => {
    const v = judge(round(steady(100, 50, 40)), { declined: true });
    expect(v.met).toBe(false);
    expect(v.declined).toBe(true);
    expect(v.rounds[0]!.met).toBe(true); // the round's verdict is timing only
  });

  it('rejects malformed timelines', () => {
    expect(() => judge(round([100, 90]))).toThrow(RangeError);
    expect(() => judge(round([Number.NaN]))).toThrow(RangeError);
    expect(() => judge(round([100], { stageStarts: [1] }))).toThrow(RangeError);
    expect(() => judge(round([100], { stageStarts: [0, 1] }))).toThrow(RangeError); // more starts than stages
    expect(() => judge(round([100], { stages: [] }))).toThrow(RangeError);
  });
});

describe('judgeRequest: multi-round', () => {
  // Tool calling: round 2 is issued at 5000 after the tool ran, with its own TTFT and curve.
  const inner = round(steady(100, 50, 20));
  const final = (first: number, last: number): RoundTimeline => ({
    arrivalMs: 5000,
    ttftSloMs: 200,
    stages: [{ name: 'final', tpotMs: 100 }],
    stageStarts: [0],
    tokenTimes: [...steady(first, 100, 19), last],
    finished: true,
  });

  it('meets when every round meets, each on its own timeline', () => {
    const v = judgeRequest(request([inner, final(5200, 5200 + 1900)]));
    expect(v.met).toBe(true);
    expect(v.rounds.map((r) => r.ttftMs)).toEqual([100, 200]);
  });

  it('misses when one round misses', () => {
    // Round 2's 20th token: due at 5200 + 1900, limit 5200 + 1995.
    const v = judgeRequest(request([inner, final(5200, 5200 + 1996)]));
    expect(v.met).toBe(false);
    expect(v.rounds.map((r) => r.met)).toEqual([true, false]);
    // Round 2's TTFT 6% over.
    expect(judgeRequest(request([inner, final(5212, 5212 + 1900)])).met).toBe(false);
  });
});

describe('summarize', () => {
  it('an empty set attains 1 with requests = 0', () => {
    expect(summarize([])).toEqual({ requests: 0, met: 0, attainment: 1, declined: 0, perApp: {} });
  });

  it('counts per app and per stage; declined misses in both', () => {
    const timelines: RequestTimeline[] = [
      request([round(steady(100, 50, 21))], { id: 'a' }), // met, gaps 50
      request([round(steady(100, 60, 21))], { id: 'b' }), // token 20 at 1240 > 1097.5: late
      request([round(steady(100, 50, 21))], { id: 'c', declined: true }), // on time but declined
      // Thinking to token 20 (on time), answer after: token 40 due at 100 + 19*50 + 20*100, limit 3197.5.
      request([round([...steady(100, 50, 39), 3198], { stages: REASON, stageStarts: [0, 20] })], { id: 'd', app: 'reason' }),
    ];
    const verdicts = timelines.map(judgeRequest);
    expect(verdicts.map((v) => v.met)).toEqual([true, false, false, false]);
    const s = summarize(verdicts, timelines);
    expect(s).toMatchObject({ requests: 4, met: 1, attainment: 0.25, declined: 1 });
    expect(s.perApp.chat).toMatchObject({ requests: 3, met: 1, declined: 1, stages: { decode: { requests: 3, met: 1, attainment: 1 / 3 } } });
    expect(s.perApp.chat!.attainment).toBeCloseTo(1 / 3, 12);
    expect(s.perApp.chat!.ttftMs).toEqual({ p50: 100, p90: 100, p99: 100 });
    expect(s.perApp.chat!.tpotMs.p50).toBe(50);
    expect(s.perApp.chat!.tpotMs.p90).toBeCloseTo(58, 9); // interpolated between 50 and 60
    expect(verdicts[3]!.rounds[0]!.stages.map((x) => x.met)).toEqual([true, false]);
    expect(s.perApp.reason!.stages).toEqual({ think: { requests: 1, met: 1, attainment: 1 }, answer: { requests: 1, met: 0, attainment: 0 } });
    expect(judgeRequest({ ...timelines[3]!, rounds: [{ ...timelines[3]!.rounds[0]!, tokenTimes: [...steady(100, 50, 39), 3197.5] }] }).met).toBe(true);
  });

  it('per-stage: a stage meets only if it met in every round that had it', () => {
    const tool = request([round(steady(100, 50, 20)), { ...round(steady(5100, 50, 20)), arrivalMs: 5000, tokenTimes: [...steady(5100, 50, 19), 5100 + 998] }], { id: 't', app: 'tool' });
    const s = summarize([judgeRequest(tool)]);
    expect(s.perApp.tool!.stages.decode).toEqual({ requests: 1, met: 0, attainment: 0 });
    // Without timelines TTFT comes from the verdicts, and TPOT has no samples.
    expect(s.perApp.tool!.ttftMs.p50).toBe(100);
    expect(Number.isNaN(s.perApp.tool!.tpotMs.p50)).toBe(true);
  });
});

describe("scoreRequest: ours ('strict') beside the authors' ('paper')", () => {
  const both = (t: RequestTimeline): Record<AttainmentMetric, { units: number; met: number }> => ({ strict: scoreRequest(t, 'strict'), paper: scoreRequest(t, 'paper') });
  // A reasoning round: `think` tokens then `answer` tokens, the first token on time at 100 (t0 = 100).
  const reasoning = (think: number, thinkGap: number, answer: number, answerGap: number): RequestTimeline =>
    request([round([...steady(100, thinkGap, think), ...steady(100 + (think - 1) * thinkGap + answerGap, answerGap, answer)], { stages: REASON, stageStarts: [0, think] })], { app: 'reason' });

  it('on time: 1 of 1 either way', () => {
    expect(both(request([round(steady(100, 50, 45))]))).toEqual({ strict: { units: 1, met: 1 }, paper: { units: 1, met: 1 } });
  });

  it('tool calling: each round is its own unit under paper, each on its own SLO', () => {
    const inner = round(steady(100, 50, 20));
    // Round 2: issued at 5000, TTFT 200, its own (final-round) TPOT of 100 ms: token 20 limit 5200 + 1995.
    const final = (last: number): RoundTimeline => ({
      arrivalMs: 5000,
      ttftSloMs: 200,
      stages: [{ name: 'final', tpotMs: 100 }],
      stageStarts: [0],
      tokenTimes: [...steady(5200, 100, 19), last],
      finished: true,
    });
    // On time on its own 100 ms TPOT (it would be late on round 1's 50 ms).
    expect(both(request([inner, final(5200 + 1900)]))).toEqual({ strict: { units: 1, met: 1 }, paper: { units: 2, met: 2 } });
    // Round 2 misses: 1 of 2 under paper, 0 of 1 under ours.
    expect(both(request([inner, final(5200 + 1996)]))).toEqual({ strict: { units: 1, met: 0 }, paper: { units: 2, met: 1 } });
    // Round 1 misses (late TTFT) and round 2 meets: still 1 of 2.
    expect(scoreRequest(request([round(steady(106, 50, 20)), final(5200 + 1900)]), 'paper')).toEqual({ units: 2, met: 1 });
  });

  it('reasoning is scored at the answer TPOT (their tpot_per_token) for every token: thinking late vs its own TPOT meets', () => {
    // Thinking at 80 ms against a 50 ms TPOT: ours misses at token 20 (t0 + 1520 > 997.5). The paper
    // checks every token against 100 ms: token n at t0 + 80 (n - 1) < 105 (n - 1) always.
    const t = reasoning(30, 80, 10, 80);
    expect(both(t)).toEqual({ strict: { units: 1, met: 0 }, paper: { units: 1, met: 1 } });
    // Not the thinking (first-stage) TPOT: under 50 ms for all tokens it would have missed.
    expect(scoreRequest({ ...t, rounds: [{ ...t.rounds[0]!, stages: [{ name: 'think', tpotMs: 50 }], stageStarts: [0] }] }, 'paper')).toEqual({ units: 1, met: 0 });
  });

  it('reasoning late only in its answer meets under paper: the fast thinking banked slack on the one curve', () => {
    // 40 thinking tokens on time (50 ms), 20 answer tokens at 140 ms against 100: token 60 at t0 + 4750.
    // Ours: due t0 + 39*50 + 20*100 = t0 + 3950, limit 4147.5: late. Paper: limit 1.05 * 100 * 59 = 6195.
    expect(both(reasoning(40, 50, 20, 140))).toEqual({ strict: { units: 1, met: 0 }, paper: { units: 1, met: 1 } });
    // An answer slower than the paper's curve too (300 ms: token 60 at t0 + 7950 > 6195) misses both.
    expect(both(reasoning(40, 50, 20, 300))).toEqual({ strict: { units: 1, met: 0 }, paper: { units: 1, met: 0 } });
  });

  it('the final token is checked too under paper', () => {
    // 45 tokens: 20 and 40 on time; token 45 (not a 20th) past its limit 1.05 * 44 * 50 = 2310.
    const times = steady(100, 50, 45);
    times[44] = 100 + 2311;
    expect(both(request([round(times)]))).toEqual({ strict: { units: 1, met: 1 }, paper: { units: 1, met: 0 } });
    times[44] = 100 + 2309;
    expect(scoreRequest(request([round(times)]), 'paper')).toEqual({ units: 1, met: 1 });
    // Fewer than 20 tokens: only the last is checked (ours checks none).
    const short = steady(100, 50, 10);
    short[9] = 100 + 1.05 * 9 * 50 + 1;
    expect(both(request([round(short)]))).toEqual({ strict: { units: 1, met: 1 }, paper: { units: 1, met: 0 } });
  });

  it("their limits: TTFT at exactly 1.05x passes; a token exactly at 1.05x the curve misses (theirs is '<=' a violation)", () => {
    const at = steady(100, 50, 20);
    at[19] = 100 + 997.5; // 1.05 * 50 * 19 after t0 = 100
    expect(both(request([round(at)]))).toEqual({ strict: { units: 1, met: 1 }, paper: { units: 1, met: 0 } });
    at[19] = 100 + 997.4;
    expect(scoreRequest(request([round(at)]), 'paper').met).toBe(1);
    expect(scoreRequest(request([round(steady(105, 50, 20))]), 'paper').met).toBe(1);
    expect(scoreRequest(request([round(steady(105.01, 50, 20))]), 'paper').met).toBe(0);
  });

  it('a speculative step is checked once, at the token count it reached (their timestamps are per step)', () => {
    // Tokens 19-21 come out together at t0 + 1000: they check the step at n = 21 (limit 1.05 * 50 * 20 = 1050),
    // ours checks token 20 (limit 997.5).
    const times = [...steady(100, 50, 18), 1100, 1100, 1100, ...steady(1150, 50, 9)];
    expect(times).toHaveLength(30);
    expect(both(request([round(times)]))).toEqual({ strict: { units: 1, met: 0 }, paper: { units: 1, met: 1 } });
    // Token 21 one step later: token 20 is a step of its own, checked at n = 20, and late.
    const apart = [...times];
    apart[20] = 1101;
    expect(scoreRequest(request([round(apart)]), 'paper').met).toBe(0);
  });

  it('declined, unfinished and token-less rounds miss', () => {
    const ok = round(steady(100, 50, 40));
    expect(both(request([ok, { ...ok, arrivalMs: 5000, tokenTimes: steady(5100, 50, 40) }], { declined: true }))).toEqual({ strict: { units: 1, met: 0 }, paper: { units: 2, met: 0 } });
    expect(both(request([], { declined: true }))).toEqual({ strict: { units: 1, met: 0 }, paper: { units: 1, met: 0 } });
    expect(both(request([round(steady(100, 50, 30), { finished: false })]))).toEqual({ strict: { units: 1, met: 0 }, paper: { units: 1, met: 0 } });
    expect(both(request([round([], { finished: false })]))).toEqual({ strict: { units: 1, met: 0 }, paper: { units: 1, met: 0 } });
    expect(scoreRequest(request([]), 'paper')).toEqual({ units: 1, met: 0 });
  });

  it('rejects malformed timelines and unknown metrics', () => {
    expect(() => scoreRequest(request([round([100, 90])]), 'paper')).toThrow(RangeError);
    expect(() => scoreRequest(request([round([100], { stageStarts: [1] })]), 'paper')).toThrow(RangeError);
    expect(() => scoreRequest(request([round([100])]), 'typo' as AttainmentMetric)).toThrow(RangeError);
  });
});
