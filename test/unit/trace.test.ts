// The simulator's JSON trace: the example parses and resolves exactly; every validation
// error names the bad field; resolve sorts, defaults and clamps max_tokens; shared prefixes; traceToJson
// round-trips; compressTrace scales arrivals only.

import { describe, expect, it } from 'vitest';
import { compressTrace, parseTrace, resolveTrace, traceToJson, TraceError, type ResolvedTrace } from '../../src/sim/trace.js';

const EXAMPLE = `{"apps": {"chat": {"ttft_ms": 1500, "tpot_ms": 100}, "reason": {"ttft_ms": 1000, "stages": [{"name": "think", "tpot_ms": 50}, {"name": "answer", "tpot_ms": 100}]}, "tool": {"ttft_ms": 1000, "tpot_ms": 50, "final_tpot_ms": 100}},
 "requests": [{"t_ms": 0, "app": "chat", "prompt_tokens": 310, "output_tokens": 120}, {"t_ms": 40, "app": "reason", "prompt_tokens": 90, "stage_tokens": [600, 150]}, {"t_ms": 75, "app": "tool", "rounds": [{"prompt_tokens": 700, "output_tokens": 40, "tool_ms": 300}, {"prompt_tokens": 120, "output_tokens": 150}]}]}`;

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Json = any;
const example = (): Json => JSON.parse(EXAMPLE);
const CTX = { contextTokens: 4096 };

function errorOf(f: () => unknown): TraceError {
  try {
    f();
  } catch (e) {
    expect(e).toBeInstanceOf(TraceError);
    expect((e as TraceError).name).toBe('TraceError');
    return e as TraceError;
  }
  throw new Error('expected a TraceError');
}

describe('parse and resolve', () => {
  it('resolves the example exactly', () => {
    const r = resolveTrace(parseTrace(example()), CTX);
    expect([...r.apps.values()]).toStrictEqual([
      { name: 'chat', ttft: { ms: 1500 }, stages: [{ name: 'decode', tpotMs: 100 }], kind: 'plain' },
      {
        name: 'reason',
        ttft: { ms: 1000 },
        stages: [
          { name: 'think', tpotMs: 50 },
          { name: 'answer', tpotMs: 100 },
        ],
        kind: 'staged',
      },
      { name: 'tool', ttft: { ms: 1000 }, stages: [{ name: 'inner', tpotMs: 50 }], finalStages: [{ name: 'final', tpotMs: 100 }], kind: 'tool' },
    ]);
    expect(r.requests).toStrictEqual([
      { id: 'r0', app: 'chat', arrivalMs: 0, rounds: [{ promptTokens: 310, maxTokens: 4096 - 310, stageTokens: [120], stages: [{ name: 'decode', tpotMs: 100 }], toolMs: 0 }] },
      {
        id: 'r1',
        app: 'reason',
        arrivalMs: 40,
        rounds: [
          {
            promptTokens: 90,
            maxTokens: 4096 - 90,
            stageTokens: [600, 150],
            stages: [
              { name: 'think', tpotMs: 50 },
              { name: 'answer', tpotMs: 100 },
            ],
            toolMs: 0,
          },
        ],
      },
      {
        id: 'r2',
        app: 'tool',
        arrivalMs: 75,
        rounds: [
          { promptTokens: 700, maxTokens: 4096 - 700, stageTokens: [40], stages: [{ name: 'inner', tpotMs: 50 }], toolMs: 300 },
          // The second round's context holds the first round's prompt and output too.
          { promptTokens: 120, maxTokens: 4096 - 700 - 40 - 120, stageTokens: [150], stages: [{ name: 'final', tpotMs: 100 }], toolMs: 0 },
        ],
      },
    ]);
  });

  it('sorts by arrival stably and names requests in that order', () => {
    const t = example();
    t.requests[0].t_ms = 75; // ties with the tool request, which came later in the file
    const r = resolveTrace(parseTrace(t), CTX);
    expect(r.requests.map((q) => [q.id, q.app, q.arrivalMs])).toEqual([
      ['r0', 'reason', 40],
      ['r1', 'chat', 75],
      ['r2', 'tool', 75],
    ]);
  });

  it('takes max_tokens from the request, else the app, and clamps the truth to it', () => {
    const t = example();
    t.apps.chat.max_tokens = 100;
    t.apps.reason.max_tokens = 650;
    t.requests.push({ t_ms: 90, app: 'chat', prompt_tokens: 10, output_tokens: 50, max_tokens: 30 });
    t.requests.push({
      t_ms: 95,
      app: 'tool',
      max_tokens: 100,
      rounds: [
        { prompt_tokens: 3900, output_tokens: 200, tool_ms: 5 },
        { prompt_tokens: 10, output_tokens: 9 },
      ],
    });
    const r = resolveTrace(t, CTX);
    expect(r.requests[0]?.rounds[0]).toMatchObject({ maxTokens: 100, stageTokens: [100] });
    expect(r.requests[1]?.rounds[0]).toMatchObject({ maxTokens: 650, stageTokens: [600, 50] });
    expect(r.requests[3]?.rounds[0]).toMatchObject({ maxTokens: 30, stageTokens: [30] });
    // The request's cap, then never more than the context leaves: 4096 - 3900 - 100 - 10 = 86.
    expect(r.requests[4]?.rounds.map((x) => [x.maxTokens, x.stageTokens])).toEqual([
      [100, [100]],
      [86, [9]],
    ]);
  });

  it('refuses a round that leaves no room in the context, naming it', () => {
    const t = example();
    t.requests.push({
      t_ms: 95,
      app: 'tool',
      rounds: [
        { prompt_tokens: 4000, output_tokens: 90, tool_ms: 5 },
        { prompt_tokens: 10, output_tokens: 9 },
      ],
    });
    const e = errorOf(() => resolveTrace(t, CTX));
    expect(e.path).toBe('requests[3].rounds[1].prompt_tokens');
    expect(errorOf(() => resolveTrace(example(), { contextTokens: 300 })).path).toBe('requests[0].prompt_tokens');
    expect(() => resolveTrace(example(), { contextTokens: 1.5 })).toThrow(RangeError);
  });

  it('returns a copy, and defaults a tool app without final_tpot_ms to tpot_ms', () => {
    const t = example();
    delete t.apps.tool.final_tpot_ms;
    const parsed = parseTrace(t);
    t.requests[0].prompt_tokens = 1;
    expect(parsed.requests[0]?.prompt_tokens).toBe(310);
    const tool = resolveTrace(parsed, CTX).apps.get('tool');
    expect(tool).toMatchObject({ kind: 'tool', finalStages: [{ name: 'final', tpotMs: 50 }] });
  });

  it('takes shared prefixes (prefix_id, prefix_tokens), per app', () => {
    const t = example();
    Object.assign(t.requests[0], { prefix_id: 'sys', prefix_tokens: 300 });
    Object.assign(t.requests[1], { prefix_id: 'sys', prefix_tokens: 90 }); // another app: another prefix
    Object.assign(t.requests[2], { prefix_id: 'tools', prefix_tokens: 650 });
    const r = resolveTrace(parseTrace(t), CTX);
    expect(r.requests.map((q) => q.prefix)).toEqual([
      { id: 'sys', tokens: 300 },
      { id: 'sys', tokens: 90 },
      { id: 'tools', tokens: 650 },
    ]);
    expect(resolveTrace(example(), CTX).requests.every((q) => !('prefix' in q))).toBe(true);
  });

  it('accepts ttft_slowdown and alpha', () => {
    const t = example();
    t.apps.chat = { ttft_slowdown: 5, tpot_ms: 100, alpha: 0.7 };
    expect(resolveTrace(t, CTX).apps.get('chat')).toMatchObject({ ttft: { slowdown: 5 }, alpha: 0.7 });
  });
});

describe('validation names the bad field', () => {
  const cases: [string, (t: Json) => unknown, string, RegExp][] = [
    ['not an object', () => 42, 'trace', /must be an object/],
    ['unknown top-level key', (t) => (t.request = []), 'request', /unknown key.*apps, requests/],
    ['empty requests', (t) => (t.requests = []), 'requests', /at least one request/],
    ['no apps', (t) => (t.apps = {}), 'apps', /at least one app/],
    ['unknown app', (t) => (t.requests[0].app = 'chta'), 'requests[0].app', /unknown app 'chta'; apps are: chat, reason, tool/],
    ['negative tokens', (t) => (t.requests[0].prompt_tokens = -3), 'requests[0].prompt_tokens', /integer >= 1, got -3/],
    ['fractional tokens', (t) => (t.requests[0].output_tokens = 2.5), 'requests[0].output_tokens', /integer >= 1, got 2.5/],
    ['string tokens', (t) => (t.requests[2].rounds[1].output_tokens = '9'), 'requests[2].rounds[1].output_tokens', /integer >= 1/],
    ['missing output', (t) => delete t.requests[0].output_tokens, 'requests[0].output_tokens', /is required: app 'chat' is plain/],
    ['non-finite time', (t) => (t.requests[1].t_ms = Infinity), 'requests[1].t_ms', /finite number >= 0/],
    ['NaN time', (t) => (t.requests[1].t_ms = NaN), 'requests[1].t_ms', /finite number/],
    ['negative time', (t) => (t.requests[0].t_ms = -1), 'requests[0].t_ms', />= 0, got -1/],
    ['stage count', (t) => (t.requests[1].stage_tokens = [600]), 'requests[1].stage_tokens', /one count per stage.*\(2: think, answer\), got 1/],
    ['negative stage tokens', (t) => (t.requests[1].stage_tokens = [-1, 5]), 'requests[1].stage_tokens[0]', /integer >= 0/],
    ['zero stage tokens', (t) => (t.requests[1].stage_tokens = [0, 0]), 'requests[1].stage_tokens', /sum to at least 1/],
    ['output on a staged app', (t) => (t.requests[1].output_tokens = 5), 'requests[1].output_tokens', /staged \(stages think, answer\): give prompt_tokens and stage_tokens/],
    ['stages on a plain app', (t) => (t.requests[0].stage_tokens = [5]), 'requests[0].stage_tokens', /is plain/],
    ['prompt on a tool app', (t) => (t.requests[2].prompt_tokens = 5), 'requests[2].prompt_tokens', /tool app.*give rounds/],
    ['empty rounds', (t) => (t.requests[2].rounds = []), 'requests[2].rounds', /at least one round/],
    ['tool_ms on the last round', (t) => (t.requests[2].rounds[1].tool_ms = 5), 'requests[2].rounds[1].tool_ms', /last round/],
    ['negative tool_ms', (t) => (t.requests[2].rounds[0].tool_ms = -5), 'requests[2].rounds[0].tool_ms', />= 0/],
    ['unknown request key', (t) => (t.requests[0].output_token = 5), 'requests[0].output_token', /unknown key.*output_tokens/],
    ['unknown round key', (t) => (t.requests[2].rounds[0].toolms = 5), 'requests[2].rounds[0].toolms', /unknown key.*tool_ms/],
    ['unknown app key', (t) => (t.apps.chat.tpot = 5), 'apps.chat.tpot', /unknown key.*tpot_ms/],
    ['unknown stage key', (t) => (t.apps.reason.stages[0].tpot = 5), 'apps.reason.stages[0].tpot', /unknown key/],
    ['both ttft', (t) => (t.apps.chat.ttft_slowdown = 3), 'apps.chat', /exactly one of ttft_ms .* and ttft_slowdown/],
    ['neither ttft', (t) => delete t.apps.chat.ttft_ms, 'apps.chat', /needs ttft_ms .* or ttft_slowdown/],
    ['slowdown below 1', (t) => (t.apps.reason = { ttft_slowdown: 0.5, tpot_ms: 10 }), 'apps.reason.ttft_slowdown', />= 1, got 0.5/],
    ['zero ttft', (t) => (t.apps.chat.ttft_ms = 0), 'apps.chat.ttft_ms', /> 0/],
    ['zero tpot', (t) => (t.apps.chat.tpot_ms = 0), 'apps.chat.tpot_ms', /> 0, got 0/],
    ['missing tpot', (t) => delete t.apps.chat.tpot_ms, 'apps.chat.tpot_ms', /is required/],
    ['negative stage tpot', (t) => (t.apps.reason.stages[1].tpot_ms = -1), 'apps.reason.stages[1].tpot_ms', /> 0/],
    ['zero final tpot', (t) => (t.apps.tool.final_tpot_ms = 0), 'apps.tool.final_tpot_ms', /> 0/],
    ['tpot with stages', (t) => (t.apps.reason.tpot_ms = 5), 'apps.reason.tpot_ms', /per stage/],
    ['final tpot with stages', (t) => (t.apps.reason.final_tpot_ms = 5), 'apps.reason.final_tpot_ms', /only tool apps/],
    ['empty stages', (t) => (t.apps.reason.stages = []), 'apps.reason.stages', /at least one stage/],
    ['duplicate stage', (t) => (t.apps.reason.stages[1].name = 'think'), 'apps.reason.stages[1].name', /duplicate/],
    ['alpha of 1', (t) => (t.apps.chat.alpha = 1), 'apps.chat.alpha', />= 0 and < 1, got 1/],
    ['negative alpha', (t) => (t.apps.chat.alpha = -0.1), 'apps.chat.alpha', />= 0 and < 1/],
    ['zero max_tokens', (t) => (t.requests[0].max_tokens = 0), 'requests[0].max_tokens', /integer >= 1/],
    ['app max_tokens', (t) => (t.apps.chat.max_tokens = 1.5), 'apps.chat.max_tokens', /integer >= 1/],
    ['odd app name', (t) => (t.apps['my app'] = { ttft_ms: 1 }), 'apps["my app"].tpot_ms', /is required/],
    ['prefix id without tokens', (t) => (t.requests[0].prefix_id = 'sys'), 'requests[0].prefix_tokens', /is required with prefix_id/],
    ['prefix tokens without id', (t) => (t.requests[0].prefix_tokens = 5), 'requests[0].prefix_id', /is required with prefix_tokens/],
    ['empty prefix id', (t) => Object.assign(t.requests[0], { prefix_id: '', prefix_tokens: 5 }), 'requests[0].prefix_id', /non-empty string, got ''/],
    ['numeric prefix id', (t) => Object.assign(t.requests[0], { prefix_id: 7, prefix_tokens: 5 }), 'requests[0].prefix_id', /non-empty string, got 7/],
    ['zero prefix tokens', (t) => Object.assign(t.requests[0], { prefix_id: 'sys', prefix_tokens: 0 }), 'requests[0].prefix_tokens', /integer >= 1, got 0/],
    ['prefix past the prompt', (t) => Object.assign(t.requests[0], { prefix_id: 'sys', prefix_tokens: 311 }), 'requests[0].prefix_tokens', /<= the prompt_tokens \(310\), got 311/],
    ['prefix past the first round', (t) => Object.assign(t.requests[2], { prefix_id: 'sys', prefix_tokens: 701 }), 'requests[2].prefix_tokens', /<= the first round's prompt_tokens \(700\), got 701/],
    [
      'one prefix id, two lengths',
      (t) => {
        Object.assign(t.requests[0], { prefix_id: 'sys', prefix_tokens: 100 });
        t.requests.push({ t_ms: 5, app: 'chat', prompt_tokens: 200, output_tokens: 5, prefix_id: 'sys', prefix_tokens: 50 });
      },
      'requests[3].prefix_tokens',
      /prefix 'sys' of app 'chat' has 100 tokens \(requests\[0\]\); got 50/,
    ],
  ];
  for (const [what, mutate, path, problem] of cases) {
    it(what, () => {
      const t = example();
      const out = mutate(t);
      const e = errorOf(() => parseTrace(what === 'not an object' ? out : t));
      expect(e.path).toBe(path);
      expect(e.problem).toMatch(problem);
      expect(e.message).toBe(`${path}: ${e.problem}`);
    });
  }
});

describe('round trip and compression', () => {
  function roundTrip(r: ResolvedTrace, contextTokens: number): ResolvedTrace {
    return resolveTrace(parseTrace(JSON.parse(JSON.stringify(traceToJson(r)))), { contextTokens });
  }

  it('traceToJson then resolve gives the same trace back', () => {
    const t = example();
    t.apps.chat = { ttft_slowdown: 5, tpot_ms: 100, alpha: 0.5, max_tokens: 100 };
    delete t.apps.tool.final_tpot_ms;
    t.requests.push({
      t_ms: 10,
      app: 'tool',
      max_tokens: 100,
      rounds: [
        { prompt_tokens: 3900, output_tokens: 200, tool_ms: 5 },
        { prompt_tokens: 10, output_tokens: 9 },
      ],
    });
    t.requests.push({ t_ms: 5, app: 'reason', prompt_tokens: 8, stage_tokens: [5000, 10] });
    t.requests.push({
      t_ms: 7,
      app: 'tool',
      prefix_id: 'sys',
      prefix_tokens: 20,
      rounds: [
        { prompt_tokens: 30, output_tokens: 3, tool_ms: 1 },
        { prompt_tokens: 10, output_tokens: 9 },
      ],
    });
    Object.assign(t.requests[0], { prefix_id: 'sys', prefix_tokens: 300 });
    const r = resolveTrace(t, CTX);
    expect(r.requests.filter((q) => q.prefix).length).toBe(2);
    expect(roundTrip(r, 4096)).toStrictEqual(r);
    expect(roundTrip(roundTrip(r, 4096), 4096)).toStrictEqual(r);
  });

  it('compressTrace divides arrivals and keeps everything else', () => {
    const r = resolveTrace(example(), CTX);
    const before = structuredClone(r);
    const c = compressTrace(r, 4);
    expect(c.requests.map((q) => q.arrivalMs)).toEqual([0, 10, 18.75]);
    expect(c.requests.map((q) => q.id)).toEqual(['r0', 'r1', 'r2']);
    expect(c.requests[2]?.rounds[0]?.toolMs).toBe(300);
    expect(c.apps).toStrictEqual(r.apps);
    expect(r).toStrictEqual(before); // the input is untouched
    expect(compressTrace(c, 0.25)).toStrictEqual(r);
    c.requests[0]!.rounds[0]!.stageTokens[0] = 1; // no shared arrays
    expect(r.requests[0]?.rounds[0]?.stageTokens[0]).toBe(120);
    const t = example();
    Object.assign(t.requests[0], { prefix_id: 'sys', prefix_tokens: 30 });
    const withPrefix = resolveTrace(t, CTX);
    const cp = compressTrace(withPrefix, 2);
    expect(cp.requests[0]?.prefix).toEqual({ id: 'sys', tokens: 30 });
    cp.requests[0]!.prefix!.tokens = 1; // no shared objects
    expect(withPrefix.requests[0]?.prefix?.tokens).toBe(30);
    expect(() => compressTrace(r, 0)).toThrow(RangeError);
    expect(() => compressTrace(r, Infinity)).toThrow(RangeError);
  });
});
