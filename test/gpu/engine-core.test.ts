// The engine core on a real forward (tiny-qwen2): scheduled greedy decoding reproduces HF's tokens;
// a request's tokens and logprobs are bitwise those of the same request run alone; abort frees its
// pages; a burst from four apps ends every request exactly once with zero pages in use; a trace
// replayed on a virtual clock gives exactly the simulator's timeline (same scheduler code).

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { profileTimer, VirtualClock } from '../../src/engine/clock.js';
import { EngineCore } from '../../src/engine/engine-core.js';
import type { CoreRequestSpec, EmittedToken, FinishReason, RequestSink } from '../../src/engine/request.js';
import { replayTrace } from '../../src/cli/replay.js';
import type { GpuRuntime } from '../../src/gpu/index.js';
import { loadModelFiles, type LoadedModelFiles } from '../../src/model/load.js';
import { nodeDirectorySource } from '../../src/model/source.js';
import { ModelRunner } from '../../src/runner/model-runner.js';
import { RunnerSession } from '../../src/runner/session.js';
import { FcfsScheduler } from '../../src/scheduler/fcfs.js';
import { PerformanceModel } from '../../src/scheduler/perf-model.js';
import { SlosScheduler } from '../../src/scheduler/slos/scheduler.js';
import { createScheduler, SCHEDULER_NAMES } from '../../src/scheduler/registry.js';
import type { Scheduler } from '../../src/scheduler/types.js';
import { PROFILES } from '../../src/sim/profiles.js';
import { simulate } from '../../src/sim/simulator.js';
import { resolveTrace } from '../../src/sim/trace.js';
import { SpeculativeDecoder } from '../../src/speculative/speculative-decoder.js';
import { fixtureCases, fixtureDir } from '../helpers/fixtures.js';
import { rng } from '../helpers/random.js';
import { createTestRuntime, legScope } from './gpu-config.js';

const SCOPE = legScope();
const LIGHT = SCOPE === 'light';
let rt: GpuRuntime;
let files: LoadedModelFiles;
const runners: ModelRunner[] = [];
const paper = PerformanceModel.fromProfile(PROFILES.paper);

beforeAll(async () => {
  rt = await createTestRuntime();
  files = await loadModelFiles(nodeDirectorySource(fixtureDir('tiny-qwen2')));
});

afterAll(() => {
  for (const r of runners) r.destroy();
  expect(rt.takeErrors()).toEqual([]);
  rt.destroy();
});

interface Harness {
  core: EngineCore;
  target: RunnerSession;
  runner: ModelRunner;
}

async function harness(make: (kv: { pages: number; pageSize: number }, runner: ModelRunner) => Scheduler, extra: { clock?: VirtualClock; kvPages?: number } = {}): Promise<Harness> {
  const runner = await ModelRunner.create(rt, files, { kvPages: extra.kvPages ?? 256, poisonKv: true, maxTokensPerStep: 256 });
  runners.push(runner);
  const target = new RunnerSession(runner, { poisonFreedPages: true });
  const spec = new SpeculativeDecoder(target, { kind: 'none' });
  const scheduler = make({ pages: runner.numPages, pageSize: runner.pageSize }, runner);
  const core = new EngineCore({
    decoder: spec,
    scheduler,
    maxContextTokens: files.config.maxPositionEmbeddings,
    ...(extra.clock ? { clock: extra.clock, timer: profileTimer(extra.clock, paper) } : {}),
  });
  return { core, target, runner };
}

const fcfs = (kv: { pages: number; pageSize: number }, runner: ModelRunner): Scheduler =>
  new FcfsScheduler({ model: paper, kv, maxBatchedTokens: 96, maxTokensPerStep: runner.maxTokens, maxSeqs: runner.maxSequences });

interface Collected {
  tokens: EmittedToken[];
  finish: FinishReason | null;
  error: Error | null;
  decisions: string[];
  terminal: number;
}

function collector(stopAfter?: (all: EmittedToken[]) => number | null): { sink: RequestSink; out: Collected } {
  const out: Collected = { tokens: [], finish: null, error: null, decisions: [], terminal: 0 };
  const sink: RequestSink = {
    onDecision: (d) => void out.decisions.push(d),
    onTokens: (tokens) => {
      const before = out.tokens.length;
      out.tokens.push(...tokens);
      const n = stopAfter?.(out.tokens) ?? null;
      if (n !== null && n < out.tokens.length) {
        out.tokens.length = n;
        return { stopAfter: n - before };
      }
    },
    onFinish: (reason) => {
      out.finish = reason;
      out.terminal++;
    },
    onError: (e) => {
      out.error = e;
      out.terminal++;
    },
  };
  return { sink, out };
}

function request(id: string, prompt: readonly number[], maxTokens: number, extra: Partial<CoreRequestSpec> = {}): CoreRequestSpec {
  return {
    id,
    app: 'a',
    prompt,
    maxTokens,
    ttftMs: 60_000,
    stages: [{ name: 'answer', tpotMs: 10_000 }],
    sampling: null,
    stopTokenIds: new Set(),
    topLogprobs: null,
    onDecline: 'best-effort',
    ...extra,
  };
}

async function drain(core: EngineCore, limit = 10_000): Promise<void> {
  for (let i = 0; i < limit && core.size > 0; i++) await core.runStep();
  expect(core.size).toBe(0);
}

describe('engine core', () => {
  it("scheduled greedy decoding gives HF's tokens; batched tokens and logprobs equal each request alone, bitwise", async () => {
    const cases = fixtureCases('tiny-qwen2').filter((c) => c.prompt.length <= (LIGHT ? 40 : 200));
    const n = LIGHT ? 8 : 24;
    const alone: Collected[] = [];
    for (const [i, c] of cases.entries()) {
      const h = await harness(fcfs);
      const { sink, out } = collector();
      h.core.submit(request(`solo${i}`, c.prompt, n, { topLogprobs: 3 }), sink);
      await drain(h.core);
      alone.push(out);
      expect(h.target.kv.usedPages()).toBe(0);
    }
    const h = await harness(fcfs);
    const together = cases.map((c, i) => {
      const { sink, out } = collector();
      h.core.submit(request(`r${i}`, c.prompt, n, { topLogprobs: 3 }), sink);
      return out;
    });
    await drain(h.core);
    cases.forEach((c, i) => {
      const ids = together[i]!.tokens.map((t) => t.id);
      expect(ids).toEqual(c.greedy.slice(0, n));
      expect(together[i]!.finish).toBe('length');
      expect(together[i]!.tokens).toEqual(alone[i]!.tokens);
      const lp = together[i]!.tokens[0]!.logprob!;
      expect(lp.top).toHaveLength(3);
      expect(lp.top[0]!.id).toBe(ids[0]);
      expect(lp.logprob).toBe(lp.top[0]!.logprob);
      expect(lp.logprob).toBeLessThan(0);
    });
    // Steps really were shared: fewer steps than the requests' tokens one by one.
    expect(h.core.stats.totalSteps).toBeLessThan(cases.length * n);
    expect(h.target.kv.usedPages()).toBe(0);
  });

  it('stops on an EOS id (not delivered), on a sink stop, and on max_tokens', async () => {
    const c = fixtureCases('tiny-qwen2')[1]!;
    const h = await harness(fcfs);
    const eos = collector();
    h.core.submit(request('eos', c.prompt, 20, { stopTokenIds: new Set([c.greedy[3]!]) }), eos.sink);
    const stop = collector((all) => (all.length >= 5 ? 5 : null));
    h.core.submit(request('stop', c.prompt, 20), stop.sink);
    const len = collector();
    h.core.submit(request('len', c.prompt, 7), len.sink);
    await drain(h.core);
    expect(eos.out.tokens.map((t) => t.id)).toEqual(c.greedy.slice(0, 3));
    expect(eos.out.finish).toBe('stop');
    expect(stop.out.tokens.map((t) => t.id)).toEqual(c.greedy.slice(0, 5));
    expect(stop.out.finish).toBe('stop');
    expect(len.out.tokens).toHaveLength(7);
    expect(len.out.finish).toBe('length');
    for (const o of [eos.out, stop.out, len.out]) expect(o.terminal).toBe(1);
    expect(h.target.kv.usedPages()).toBe(0);
  });

  it('abort mid-stream fails the request with AbortError and frees its pages before the next step', async () => {
    const c = fixtureCases('tiny-qwen2')[2]!;
    const h = await harness(fcfs);
    const a = collector();
    const b = collector();
    h.core.submit(request('a', c.prompt, 50), a.sink);
    h.core.submit(request('b', c.prompt.slice(0, 10), 6), b.sink);
    while (a.out.tokens.length < 3) await h.core.runStep();
    expect(h.target.kv.usedPages()).toBeGreaterThan(0);
    h.core.cancel('a');
    await drain(h.core);
    expect(a.out.error?.name).toBe('AbortError');
    expect(a.out.terminal).toBe(1);
    expect(b.out.finish).toBe('length');
    expect(h.target.kv.usedPages()).toBe(0);
  });

  it('recompute preemption when pages run out: every request still gets exactly its greedy tokens', async () => {
    const cases = fixtureCases('tiny-qwen2').filter((c) => c.prompt.length <= 40);
    const n = 24;
    // 4 pages of 16 tokens: each request fits alone (at most 37 + 24 tokens), never all at once.
    const h = await harness(fcfs, { kvPages: 4 });
    let preempted = 0;
    const outs = cases.flatMap((c, i) =>
      [0, 1].map((j) => {
        const { sink, out } = collector();
        h.core.submit(request(`p${i}.${j}`, c.prompt, n), sink);
        return { c, out };
      }),
    );
    for (let i = 0; i < 5000 && h.core.size > 0; i++) {
      await h.core.runStep();
      preempted = h.core.snapshot().steps.reduce((a, s) => a + s.preempted, 0);
    }
    expect(h.core.size).toBe(0);
    expect(preempted).toBeGreaterThan(0);
    for (const { c, out } of outs) expect(out.tokens.map((t) => t.id)).toEqual(c.greedy.slice(0, n));
    expect(h.target.kv.usedPages()).toBe(0);
  });

  it("a stage marker token moves the request to its next stage (the scheduler's stageStartedAt)", async () => {
    const c = fixtureCases('tiny-qwen2')[1]!;
    const seen: number[] = [];
    const h = await harness((kv, runner) => {
      const inner = fcfs(kv, runner);
      const complete = inner.complete.bind(inner);
      inner.complete = (now, outcomes) => {
        for (const o of outcomes) if (o.stageStartedAt !== undefined) seen.push(o.stageStartedAt);
        return complete(now, outcomes);
      };
      return inner;
    });
    const { sink, out } = collector();
    const stages = [
      { name: 'think', tpotMs: 10_000 },
      { name: 'answer', tpotMs: 20_000 },
    ];
    // The marker is the greedy output's 3rd token (0-based 2): the answer starts at index 3.
    h.core.submit(request('think', c.prompt, 8, { stages, stageMarkerIds: new Set([c.greedy[2]!]) }), sink);
    await drain(h.core);
    expect(out.tokens.map((t) => t.id)).toEqual(c.greedy.slice(0, 8));
    expect(seen).toEqual([c.greedy.indexOf(c.greedy[2]!) + 1]);
  });

  it('speculation inside the engine (self draft, SLOs-Serve picks k): greedy tokens unchanged', async () => {
    const cases = fixtureCases('tiny-qwen2').filter((c) => c.prompt.length <= 40);
    const n = LIGHT ? 8 : 20;
    const runner = await ModelRunner.create(rt, files, { kvPages: 256, poisonKv: true, maxTokensPerStep: 256 });
    runners.push(runner);
    const target = new RunnerSession(runner, { poisonFreedPages: true });
    const spec = new SpeculativeDecoder(target, { kind: 'self', layers: 1 });
    const scheduler = new SlosScheduler({ model: paper, kv: { pages: runner.numPages, pageSize: runner.pageSize }, maxTokensPerStep: runner.maxTokens, maxSeqs: runner.maxSequences, maxSpec: 4 });
    const core = new EngineCore({ decoder: spec, scheduler, maxContextTokens: files.config.maxPositionEmbeddings });
    const outs = cases.map((c, i) => {
      const { sink, out } = collector();
      // A TPOT the paper profile's plain decode step (~25 ms) misses: only speculation meets it.
      core.submit(request(`s${i}`, c.prompt, n, { topLogprobs: 0, stages: [{ name: 'answer', tpotMs: 15 }] }), sink);
      return out;
    });
    await drain(core);
    cases.forEach((c, i) => expect(outs[i]!.tokens.map((t) => t.id)).toEqual(c.greedy.slice(0, n)));
    const stats = core.snapshot();
    expect(stats.speculation.drafted).toBeGreaterThan(0);
    expect(stats.speculation.accepted).toBeLessThanOrEqual(stats.speculation.drafted);
    expect(target.kv.usedPages()).toBe(0);
  });

  it('an over-long prompt fails fast with PromptTooLongError', async () => {
    const h = await harness(fcfs, { kvPages: 4 });
    expect(() =>
      h.core.submit(
        request(
          'long',
          Array.from({ length: 64 }, () => 5),
          4,
        ),
        collector().sink,
      ),
    ).toThrow(expect.objectContaining({ name: 'PromptTooLongError' }));
    expect(h.core.size).toBe(0);
  });

  // Bookkeeping under a burst is the engine's logic, the same on every driver: the lavapipe legs run
  // it (each with its own kernels); SwiftShader (~10x slower) leaves it to them and to the browser tier.
  it.skipIf(LIGHT)('a burst of 200 requests from 4 apps: each ends exactly once (completed, declined, aborted), zero pages in use after', async () => {
    const count = 200;
    // Tight TTFTs on the paper profile's clock: the planner has to decline some of the burst.
    const h = await harness((kv, runner) => new SlosScheduler({ model: paper, kv, maxTokensPerStep: runner.maxTokens, maxSeqs: runner.maxSequences }), { kvPages: 96 });
    const random = rng(7);
    const outs: Collected[] = [];
    const apps = ['chat', 'code', 'sum', 'agent'];
    for (let i = 0; i < count; i++) {
      const app = apps[i % 4]!;
      const { sink, out } = collector();
      outs.push(out);
      const prompt = Array.from({ length: 4 + Math.floor(random() * 40) }, () => 3 + Math.floor(random() * 31000));
      h.core.submit(
        request(`b${i}`, prompt, 2 + Math.floor(random() * 8), {
          app,
          ttftMs: i % 4 === 0 ? 200 : 2000,
          stages: [{ name: 'answer', tpotMs: 100 + 50 * (i % 4) }],
          onDecline: i % 2 ? 'error' : 'best-effort',
        }),
        sink,
      );
    }
    let steps = 0;
    while (h.core.size > 0 && steps < 5000) {
      if (steps === 3) for (let i = 3; i < count; i += 17) h.core.cancel(`b${i}`);
      await h.core.runStep();
      steps++;
    }
    expect(h.core.size).toBe(0);
    const kinds = { completed: 0, declined: 0, aborted: 0 };
    for (const o of outs) {
      expect(o.terminal).toBe(1);
      if (o.finish) kinds.completed++;
      else if (o.error?.name === 'SloError') kinds.declined++;
      else if (o.error?.name === 'AbortError') kinds.aborted++;
      else throw new Error(`unexpected ending: ${o.error?.name}: ${o.error?.message}`);
    }
    expect(kinds.completed + kinds.declined + kinds.aborted).toBe(count);
    expect(kinds.completed).toBeGreaterThan(0);
    expect(kinds.aborted).toBeGreaterThan(0);
    expect(h.target.kv.usedPages()).toBe(0);
    expect(h.core.scheduler.size).toBe(0);
    const stats = h.core.snapshot();
    expect(stats.apps.map((a) => a.submitted).reduce((a, b) => a + b)).toBe(count);
    expect(stats.apps.reduce((a, s) => a + s.completed + s.declined + s.aborted, 0)).toBe(count);
    expect(stats.kv.pagesUsed).toBe(0);
  });

  it("a trace replayed on a virtual clock gives exactly the simulator's timeline", async () => {
    const random = rng(3);
    const n = LIGHT ? 12 : 40;
    const trace = resolveTrace(
      {
        apps: {
          chat: { ttft_ms: 400, tpot_ms: 60 },
          think: {
            ttft_ms: 800,
            stages: [
              { name: 'think', tpot_ms: 40 },
              { name: 'answer', tpot_ms: 90 },
            ],
          },
        },
        requests: Array.from({ length: n }, (_, i) =>
          i % 3 === 2
            ? { t_ms: i * 35, app: 'think', prompt_tokens: 8 + Math.floor(random() * 60), stage_tokens: [2 + Math.floor(random() * 6), 2 + Math.floor(random() * 6)] }
            : { t_ms: i * 35, app: 'chat', prompt_tokens: 8 + Math.floor(random() * 120), output_tokens: 1 + Math.floor(random() * 12) },
        ),
      },
      { contextTokens: 4096 },
    );
    // Every scheduler of the registry, as the engine builds it, except fcfs+sd: speculation's
    // acceptance is the model's on the engine and random draws in the simulator, so their timelines
    // cannot be equal (the engine's draft/verify is tested against the simulator's rules elsewhere).
    // Which scheduler decides is independent of the driver: the full leg runs them all, the other
    // legs the engine's default (they check that the engine's steps run on their kernels).
    const names = SCOPE === 'full' ? SCHEDULER_NAMES.filter((n) => n !== 'fcfs+sd') : (['slos'] as const);
    for (const name of names) {
      const make = (kv: { pages: number; pageSize: number }): Scheduler => createScheduler(name, { model: paper, kv, maxTokensPerStep: 256, maxSeqs: 64, maxSpec: 0, tightestTpotMs: 40 });
      const clock = new VirtualClock();
      const h = await harness(make, { clock, kvPages: 64 });
      const engine = await replayTrace(h.core, trace, { virtual: clock, model: paper, vocabSize: files.config.vocabSize });
      const sim = simulate({ trace, clock: paper, makeScheduler: () => make({ pages: h.runner.numPages, pageSize: h.runner.pageSize }), seed: 1 });
      expect(engine, name).toEqual(sim.timelines);
      expect(h.target.kv.usedPages()).toBe(0);
    }
  });
});
