// The per-step CPU-side invariants of steady-state decoding (tiny-qwen2): after warm-up, a forward
// step of several running sequences records into exactly one command encoder and one queue submit,
// and creates no GPU buffer and no bind group (pooled scratch, cached bind groups, shared params
// pages); the same holds for a whole engine step (scheduler plan -> SpeculativeDecoder -> ModelRunner).
// Counted by wrapping the device's methods (src/reference/gpu-counters.ts), so nothing that goes
// around the runtime escapes, and cross-checked with the runtime's own counters.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EngineCore } from '../../src/engine/engine-core.js';
import type { RequestSink } from '../../src/engine/request.js';
import type { GpuRuntime } from '../../src/gpu/index.js';
import { loadModelFiles, type LoadedModelFiles } from '../../src/model/load.js';
import { nodeDirectorySource } from '../../src/model/source.js';
import { ModelRunner } from '../../src/runner/model-runner.js';
import { RunnerSession } from '../../src/runner/session.js';
import { FcfsScheduler } from '../../src/scheduler/fcfs.js';
import { PerformanceModel } from '../../src/scheduler/perf-model.js';
import { PROFILES } from '../../src/sim/profiles.js';
import { SpeculativeDecoder } from '../../src/speculative/speculative-decoder.js';
import { fixtureDir } from '../helpers/fixtures.js';
import { countGpuCalls, type GpuCallCounts } from '../../src/reference/gpu-counters.js';
import { createTestRuntime, legScope } from './gpu-config.js';

const LIGHT = legScope() === 'light';
const SEQS = LIGHT ? 4 : 8;
const STEPS = LIGHT ? 3 : 6;
let rt: GpuRuntime;
let files: LoadedModelFiles;
const runners: ModelRunner[] = [];

beforeAll(async () => {
  rt = await createTestRuntime();
  files = await loadModelFiles(nodeDirectorySource(fixtureDir('tiny-qwen2')));
});

afterAll(() => {
  for (const r of runners) r.destroy();
  expect(rt.takeErrors()).toEqual([]);
  rt.destroy();
});

const prompt = (i: number, n: number): number[] => Array.from({ length: n }, (_, j) => (17 + 31 * i + 7 * j) % files.config.vocabSize);

/** Run `steps` calls of `step` after `warmups`, counting device calls; returns the counts and runtime-counter deltas. */
async function counted(warmups: number, steps: number, step: () => Promise<unknown>): Promise<{ counts: GpuCallCounts; poolCreated: number; bindGroupsCreated: number; rtSubmits: number }> {
  for (let i = 0; i < warmups; i++) await step();
  await rt.flush();
  const counter = countGpuCalls(rt.device);
  const pool0 = rt.buffers.created;
  const bg0 = rt.bindGroups.created;
  const sub0 = rt.submits;
  try {
    for (let i = 0; i < steps; i++) await step();
  } finally {
    counter.restore();
  }
  return { counts: { ...counter.counts }, poolCreated: rt.buffers.created - pool0, bindGroupsCreated: rt.bindGroups.created - bg0, rtSubmits: rt.submits - sub0 };
}

function expectSteadyState(r: Awaited<ReturnType<typeof counted>>, steps: number): void {
  expect(r.counts.buffers, 'GPU buffers created after warm-up').toBe(0);
  expect(r.poolCreated, 'pooled buffers created after warm-up').toBe(0);
  expect(r.counts.bindGroups, 'bind groups created after warm-up').toBe(0);
  expect(r.bindGroupsCreated, 'bind-group cache misses after warm-up').toBe(0);
  expect(r.counts.commandEncoders, 'command encoders').toBe(steps);
  expect(r.counts.submits, 'queue submits').toBe(steps);
  expect(r.rtSubmits, 'runtime submits').toBe(steps);
}

describe('steady-state step overhead', () => {
  it(`a decode forward of ${SEQS} sequences: one encoder, one submit, no new buffers or bind groups`, async () => {
    const runner = await ModelRunner.create(rt, files, { kvPages: 64, maxTokensPerStep: 128 });
    runners.push(runner);
    const session = new RunnerSession(runner);
    const ids = Array.from({ length: SEQS }, () => session.newSequence());
    await session.step(ids.map((id, i) => ({ id, tokens: prompt(i, 5 + i), outputs: 'none' as const })));
    let next = ids.map((_, i) => i + 1);
    const decode = async (): Promise<void> => {
      const res = await session.step(ids.map((id, i) => ({ id, tokens: [next[i]!] })));
      expect(res.tokens).toHaveLength(SEQS);
      next = Array.from(res.tokens);
    };
    // Warm-up: two steps (the first decode-shaped step fills the pool and the bind-group cache).
    const r = await counted(2, STEPS, decode);
    expectSteadyState(r, STEPS);
  });

  it(`an engine step with ${SEQS} running decodes (FCFS plan, SpeculativeDecoder, runner): one encoder, one submit, nothing created`, async () => {
    const runner = await ModelRunner.create(rt, files, { kvPages: 64, maxTokensPerStep: 128 });
    runners.push(runner);
    const target = new RunnerSession(runner);
    const scheduler = new FcfsScheduler({
      model: PerformanceModel.fromProfile(PROFILES.paper),
      kv: { pages: runner.numPages, pageSize: runner.pageSize },
      maxBatchedTokens: runner.maxTokens,
      maxTokensPerStep: runner.maxTokens,
      maxSeqs: runner.maxSequences,
    });
    const core = new EngineCore({ decoder: new SpeculativeDecoder(target, { kind: 'none' }), scheduler, maxContextTokens: files.config.maxPositionEmbeddings });
    let errors = 0;
    const sink: RequestSink = { onTokens: () => undefined, onFinish: () => undefined, onError: () => void errors++ };
    for (let i = 0; i < SEQS; i++) {
      core.submit(
        {
          id: `r${i}`,
          app: 'a',
          prompt: prompt(i, 6 + i),
          maxTokens: 1000,
          ttftMs: 60_000,
          stages: [{ name: 'answer', tpotMs: 10_000 }],
          sampling: null,
          stopTokenIds: new Set(),
          topLogprobs: null,
          onDecline: 'best-effort',
        },
        sink,
      );
    }
    const step = async (): Promise<void> => {
      expect(await core.runStep()).toBe('ran');
    };
    // Warm-up: the prefill step, then two decode steps.
    await step();
    const r = await counted(2, STEPS, step);
    expect(errors).toBe(0);
    expect(core.size).toBe(SEQS);
    expect(target.kv.usedPages()).toBeGreaterThan(0);
    expectSteadyState(r, STEPS);
  });
});
