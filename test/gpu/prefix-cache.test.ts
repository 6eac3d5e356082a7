// Prefix caching on a real forward (tiny-qwen2): a prompt continued from cached pages gives logits
// bitwise equal to a cold prefill; a conversation's second round computes only its new tokens and
// equals a cold run of the whole history, bitwise; apps share cached pages only when asked.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EngineCore } from '../../src/engine/engine-core.js';
import type { CoreRequestSpec, EmittedToken, RequestSink } from '../../src/engine/request.js';
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
import { rng } from '../helpers/random.js';
import { createTestRuntime } from './gpu-config.js';

let rt: GpuRuntime;
let files: LoadedModelFiles;
const runners: ModelRunner[] = [];
const paper = PerformanceModel.fromProfile(PROFILES.paper);
const random = rng(5);
const tokens = (n: number): number[] => Array.from({ length: n }, () => 3 + Math.floor(random() * 31000));

beforeAll(async () => {
  rt = await createTestRuntime();
  files = await loadModelFiles(nodeDirectorySource(fixtureDir('tiny-qwen2')));
});

afterAll(() => {
  for (const r of runners) r.destroy();
  expect(rt.takeErrors()).toEqual([]);
  rt.destroy();
});

async function session(prefixCaching: boolean): Promise<RunnerSession> {
  const runner = await ModelRunner.create(rt, files, { kvPages: 64, poisonKv: true, maxTokensPerStep: 128 });
  runners.push(runner);
  return new RunnerSession(runner, { poisonFreedPages: true, prefixCaching });
}

interface Engine {
  core: EngineCore;
  target: RunnerSession;
  rows: number[];
}

async function engine(prefixCaching: boolean): Promise<Engine> {
  const target = await session(prefixCaching);
  const rows: number[] = [];
  const scheduler = new FcfsScheduler({ model: paper, kv: { pages: target.runner.numPages, pageSize: target.runner.pageSize }, maxBatchedTokens: 128, maxTokensPerStep: 128, maxSeqs: 64 });
  const core = new EngineCore({
    decoder: new SpeculativeDecoder(target, { kind: 'none' }),
    scheduler,
    maxContextTokens: files.config.maxPositionEmbeddings,
    ...(prefixCaching ? { prefixCache: {} } : {}),
    onStep: (_plan, _ms, executed) => void rows.push(executed.tokens),
  });
  return { core, target, rows };
}

async function run(e: Engine, spec: Partial<CoreRequestSpec> & { id: string; prompt: readonly number[] }): Promise<EmittedToken[]> {
  const out: EmittedToken[] = [];
  let error = null as Error | null; // set by the sink's callback
  const sink: RequestSink = { onTokens: (t) => void out.push(...t), onFinish: () => {}, onError: (err) => void (error = err) };
  e.core.submit(
    { app: 'a', maxTokens: 6, ttftMs: 60_000, stages: [{ name: 'answer', tpotMs: 10_000 }], sampling: null, stopTokenIds: new Set(), topLogprobs: 5, onDecline: 'best-effort', ...spec },
    sink,
  );
  for (let i = 0; i < 1000 && e.core.size > 0; i++) await e.core.runStep();
  if (error) throw error;
  return out;
}

describe('prefix caching', () => {
  it('a prompt continued from cached pages has logits bitwise equal to a cold prefill', async () => {
    const prompt = tokens(40);
    const longer = [...prompt, ...tokens(13)];
    const warm = await session(true);
    const a = warm.newSequence();
    await warm.prefill(a, prompt, 64, { outputs: 'none' });
    warm.kv.publish(a, 'ns', prompt);
    warm.free(a);
    const { id: b, cached } = warm.newSequenceWithPrefix('ns', longer);
    expect(cached).toBe(32);
    const hot = await warm.prefill(b, longer.slice(cached), 64, { logits: true, outputs: 'all' });
    const cold = await session(false);
    const c = cold.newSequence();
    const full = await cold.prefill(c, longer, 64, { logits: true, outputs: 'all' });
    const V = files.config.vocabSize;
    const coldRows = full.flatMap((r) => Array.from({ length: r.logits!.length / V }, (_, i) => r.logits!.subarray(i * V, (i + 1) * V)));
    const hotRows = hot.flatMap((r) => Array.from({ length: r.logits!.length / V }, (_, i) => r.logits!.subarray(i * V, (i + 1) * V)));
    expect(hotRows).toHaveLength(longer.length - cached);
    hotRows.forEach((row, i) =>
      expect(Buffer.from(row.buffer, row.byteOffset, row.byteLength).equals(Buffer.from(coldRows[cached + i]!.buffer, coldRows[cached + i]!.byteOffset, coldRows[cached + i]!.byteLength))).toBe(true),
    );
  });

  it("a conversation's second round computes only its new tokens and equals a cold run, bitwise", async () => {
    const e = await engine(true);
    const round1 = tokens(37);
    const out1 = await run(e, { id: 'r1', prompt: round1, conversationId: 'c' });
    expect(out1).toHaveLength(6);
    const round2 = [...round1, ...out1.map((t) => t.id), ...tokens(11)];
    const before = e.rows.reduce((a, b) => a + b, 0);
    const out2 = await run(e, { id: 'r2', prompt: round2, conversationId: 'c' });
    const computed = e.rows.reduce((a, b) => a + b, 0) - before;
    // The kept KV holds round 1's prompt and all but its last output token.
    const kept = round1.length + out1.length - 1;
    expect(computed).toBe(round2.length - kept + (6 - 1));
    const stats = e.core.snapshot();
    expect(stats.apps[0]!.cachedPromptTokens).toBe(kept);
    const cold = await engine(false);
    const coldOut = await run(cold, { id: 'cold', prompt: round2 });
    expect(out2).toEqual(coldOut);
    expect(e.target.kv.usedPages()).toBeGreaterThan(0); // the conversation is still kept
  });

  it('two apps with the same system prompt share pages only when their namespace is shared; outputs unchanged', async () => {
    const system = tokens(48);
    const ask = (n: number): number[] => [...system, ...tokens(n)];
    const q1 = ask(5);
    const q2 = ask(7);
    const outputs: EmittedToken[][][] = [];
    for (const shared of [false, true]) {
      const e = await engine(true);
      const ns = (app: string): string => (shared ? 'm|*' : `m|${app}`);
      const a = await run(e, { id: 'a', app: 'chat', prompt: q1, cacheNamespace: ns('chat') });
      const b = await run(e, { id: 'b', app: 'code', prompt: q2, cacheNamespace: ns('code') });
      const stats = e.core.snapshot();
      const code = stats.apps.find((x) => x.app === 'code')!;
      expect(code.cachedPromptTokens).toBe(shared ? 48 : 0);
      expect(code.prefixHitRate).toBe(shared ? 48 / q2.length : 0);
      outputs.push([a, b]);
      expect(e.target.kv.usedPages()).toBe(0);
      expect(e.target.kv.evictablePages()).toBeGreaterThan(0);
    }
    expect(outputs[1]).toEqual(outputs[0]);
  });
});
