// Whole models against HF transformers: the four fixture models, loaded from their folders as a
// user's model would be, run in f32 on this adapter. Reference: test/fixtures/*/reference.json.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { GpuRuntime } from '../../src/gpu/index.js';
import { loadModelFiles } from '../../src/model/load.js';
import { nodeDirectorySource } from '../../src/model/source.js';
import { ModelRunner } from '../../src/runner/model-runner.js';
import { RunnerSession } from '../../src/runner/session.js';
import { FIXTURE_MODELS, fixtureCases, fixtureDir, topIdsComparable, topK } from '../helpers/fixtures.js';
import { createTestRuntime, gpuConfig, legScope } from './gpu-config.js';

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

// All five prompts on lavapipe with every feature; the short ones on the other lavapipe legs; on
// SwiftShader (whose models also run in the browser tier) prompts of 1 and 5 tokens.
const MAX_PROMPT = { full: Infinity, reduced: 37, light: 5 }[legScope()];

describe.each(FIXTURE_MODELS)('%s', (model) => {
  const cases = fixtureCases(model).filter((c) => c.prompt.length <= MAX_PROMPT);
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
