// Whole models in the browser: each fixture model is fetched over HTTP from the preview server
// (e2e/fixture-server.ts, hub URL layout) by the real loader (hubSource -> httpSource ->
// loadModelFiles) inside a module Web Worker, run by ModelRunner on Chromium's SwiftShader WebGPU,
// and compared with HF transformers' reference.json (e2e/models/compare.ts measures; this asserts):
// last logits within 1e-3, top-8 ids where the reference order is well defined, 24 greedy tokens.
// The Node twin is test/gpu/models.test.ts (its swiftshader leg runs the same prompts on Dawn).

import { statSync } from 'node:fs';
import { FIXTURE_MODELS, fixtureCases, fixtureDir, type FixtureModel } from '../test/helpers/fixtures.js';
import { LOGIT_TOLERANCE } from './models/compare.js';
import type { ModelResult, ModelSuccess } from './models/protocol.js';
import { expect, test } from './fixtures.js';

/** The short prompts of reference.json (1, 5 and 37 tokens); 200 and 700 are the Node tier's. */
const PROMPT_LENGTHS = [1, 5, 37];

interface Expected {
  architecture: string;
  weightDtypes: string[];
  hasTokenizer: boolean;
}

const EXPECTED: Record<FixtureModel, Expected> = {
  'tiny-qwen2': { architecture: 'qwen2', weightDtypes: ['F32'], hasTokenizer: true },
  'tiny-llama3': { architecture: 'llama', weightDtypes: ['BF16'], hasTokenizer: false },
  'tiny-qwen3b': { architecture: 'qwen3', weightDtypes: ['F16'], hasTokenizer: false },
  'tiny-mistral': { architecture: 'mistral', weightDtypes: ['BF16'], hasTokenizer: false },
};

const fileSize = (model: FixtureModel, file: string): number => statSync(`${fixtureDir(model)}/${file}`).size;

for (const model of FIXTURE_MODELS) {
  test(`${model} over HTTP in a worker matches HF transformers (prompts of ${PROMPT_LENGTHS.join(', ')} tokens)`, async ({ page, watch }, testInfo) => {
    // SwiftShader compiles the model's pipelines on the CPU (5-10 s), then runs 3 prefills with
    // logits and 3 greedy runs (69 decode steps): 20-30 s per model on 2 cores. Room for 6x that.
    test.setTimeout(180_000);
    await page.goto(`/e2e/models/index.html?model=${model}&lengths=${PROMPT_LENGTHS.join(',')}`);
    await expect(page.getByTestId('model-status')).toHaveAttribute('data-state', /^(done|failed)$/, { timeout: 170_000 });
    const result = (await page.evaluate(() => window.__modelResult)) as ModelResult | undefined;
    if (!result?.ok) throw new Error(`model page failed: ${JSON.stringify(result?.error ?? result)}`);
    const r: ModelSuccess = result;

    // The structured result, for the report: per prompt max |logit - HF|, top-8, greedy, timings.
    await testInfo.attach(`${model}-result.json`, { body: JSON.stringify(r, null, 2), contentType: 'application/json' });
    const summary = r.cases.map((c) => `${c.promptLength}: ${c.maxAbsError.toExponential(2)} (prefill ${Math.round(c.prefillMs)} ms, greedy ${Math.round(c.greedyMs)} ms)`);
    console.log(`[models] ${model} on ${r.summary}: max |logit - HF| ${summary.join('; ')}; load ${Math.round(r.loadMs)} ms, create ${Math.round(r.createMs)} ms, total ${Math.round(r.ms)} ms`);

    // Where and how it ran.
    expect(r.scope).toBe('worker');
    expect(r.adapter.architecture).toMatch(/swiftshader/i);
    expect(r.features.shaderF16).toBe(false);
    expect(r.gpuErrors).toEqual([]);
    expect(r.model).toBe(model);
    expect(r.architecture).toBe(EXPECTED[model].architecture);
    expect(r.weightDtypes).toEqual(EXPECTED[model].weightDtypes);
    expect(r.vocabSize).toBe(32000);

    // Everything came over HTTP from the fixture route, byte for byte the size on disk; absent
    // optional files were a 404 (null), not an error.
    expect(r.baseUrl).toBe(`http://127.0.0.1:4173/models/${model}/resolve/main`);
    const reads = new Map(r.files.map((f) => [f.file, f.bytes]));
    expect(reads.get('config.json')).toBe(fileSize(model, 'config.json'));
    expect(reads.get('model.safetensors')).toBe(fileSize(model, 'model.safetensors'));
    expect(reads.get('reference.json')).toBe(fileSize(model, 'reference.json'));
    expect(reads.get('generation_config.json')).toBeNull();
    expect(reads.get('tokenizer.json')).toBe(EXPECTED[model].hasTokenizer ? fileSize(model, 'tokenizer.json') : null);
    if (EXPECTED[model].hasTokenizer) {
      expect(r.tokenizer).toEqual({ helloWorldIds: [1, 22557, 1526], decoded: 'Hello world' });
    } else {
      expect(r.tokenizer).toBeNull();
    }

    // Exactly the planned prompts came back, and they are the reference's (read here from disk).
    const onDisk = fixtureCases(model).filter((c) => PROMPT_LENGTHS.includes(c.prompt.length));
    expect(r.cases.map((c) => c.promptLength)).toEqual(PROMPT_LENGTHS);
    expect(r.cases.map((c) => c.expectedGreedy)).toEqual(onDisk.map((c) => c.greedy));

    for (const c of r.cases) {
      const name = `${model}, prompt of ${c.promptLength}`;
      // Real logits (HF's have a standard deviation of 2.5 to 4), within 1e-3 of HF's.
      expect(c.vocab, name).toBe(32000);
      expect(c.maxAbsLogit, `${name}: max |logit|`).toBeGreaterThan(1);
      expect(c.maxAbsError, `${name}: max |logit - HF| at the last position (worst at id ${c.maxAbsErrorAt})`).toBeLessThan(LOGIT_TOLERANCE);
      // Top-8 ids wherever HF's top-8 is well ordered; at least half the positions are.
      if (c.top8Last.comparable) expect(c.top8Last.ids, `${name}: top-8 at the last position`).toEqual(c.top8Last.expected);
      expect(c.top8.mismatchedPositions, `${name}: positions whose top-8 ids differ`).toEqual([]);
      expect(c.top8.compared, `${name}: positions with a comparable top-8`).toBeGreaterThan(c.promptLength / 2);
      // All 24 greedy tokens.
      expect(c.greedy, `${name}: greedy tokens`).toEqual(c.expectedGreedy);
      expect(c.greedy).toHaveLength(24);
      expect(c.greedyEqual, name).toBe(true);
    }

    await expect(page.getByTestId('model-status')).toContainText(`Done: ${model}, ${PROMPT_LENGTHS.length} prompts`);
    expect(watch.consoleErrors).toEqual([]);
    expect(watch.blockedRequests).toEqual([]);
  });
}
