// Whole models against HF transformers: the four fixture models, loaded from their folders as a
// user's model would be, run in f32 on this adapter. Reference: test/fixtures/*/reference.json.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { GpuRuntime } from '../../src/gpu/index.js';
import { loadModelFiles } from '../../src/model/load.js';
import { nodeDirectorySource } from '../../src/model/source.js';
import { ModelRunner } from '../../src/runner/model-runner.js';
import { RunnerSession } from '../../src/runner/session.js';
import { FIXTURE_MODELS, fixtureCases, fixtureDir, topIdsComparable, topK } from '../helpers/fixtures.js';
import { createTestRuntime, gpuConfig } from './gpu-config.js';

let rt: GpuRuntime;
const measured: string[] = [];

beforeAll(async () => {
  rt = await createTestRuntime();
});

afterAll(() => {
  console.log(`[models] ${gpuConfig()}: max |logit - HF| per model and prompt length\n  ${measured.join('\n  ')}`);
  expect(rt.takeErrors()).toEqual([]);
  rt.destroy();
});

// The full matrix on lavapipe with every feature; the other legs (and SwiftShader) run the short prompts.
const FULL = gpuConfig() === 'all-features';

describe.each(FIXTURE_MODELS)('%s', (model) => {
  const cases = fixtureCases(model).filter((c) => FULL || c.prompt.length <= 37);
  let runner: ModelRunner;
  let session: RunnerSession;

  beforeAll(async () => {
    const files = await loadModelFiles(nodeDirectorySource(fixtureDir(model)));
    runner = await ModelRunner.create(rt, files, { kvPages: 128, poisonKv: true });
    session = new RunnerSession(runner, { poisonFreedPages: true });
  });

  afterAll(() => runner.destroy());

  it.each(cases.map((c) => [c.prompt.length, c] as const))('prompt of %i tokens: logits within 1e-3, top-8 ids, 24 greedy tokens', async (_len, c) => {
    const id = session.newSequence();
    const results = await session.prefill(id, c.prompt, runner.maxTokens, { logits: true, outputs: 'all' });
    session.free(id);
    const V = runner.config.vocabSize;
    const logits = new Float32Array(c.prompt.length * V);
    let o = 0;
    for (const r of results) {
      logits.set(r.logits!, o);
      o += r.logits!.length;
    }
    const last = logits.subarray((c.prompt.length - 1) * V);
    let maxErr = 0;
    for (let i = 0; i < V; i++) maxErr = Math.max(maxErr, Math.abs(last[i]! - c.last_logits[i]!));
    measured.push(`${model} ${c.prompt.length}: ${maxErr.toExponential(2)}`);
    expect(maxErr).toBeLessThan(1e-3);
    let compared = 0;
    c.top8_ids.forEach((ids, pos) => {
      if (!topIdsComparable(c.top8_logits[pos]!)) return;
      compared++;
      expect(topK(logits, pos * V, V, 8), `top-8 at position ${pos}`).toEqual(ids);
    });
    expect(compared).toBeGreaterThan(c.prompt.length / 2);
    expect(await session.greedy(c.prompt, c.greedy.length)).toEqual(c.greedy);
  });
});
