// A GGUF file as the model of a whole engine on the GPU: the fixtures written as GGUF (bench/gguf/,
// checked against llama.cpp) and opened by path serve HF's greedy tokens through createEngine, the
// scheduler and the kernels (tiny-llama3: q/k rows permuted back and Llama-3 RoPE scaling from the
// file's rope_freqs; tiny-qwen3b: q/k norms and a head size of 40). No tokenizer is built from the
// file: the prompts are token ids and the reply's ids are compared.

import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ggufFromHfFolder } from '../../bench/gguf/from-hf.js';
import { createEngine } from '../../src/index.js';
import { fixtureCases, fixtureDir, type FixtureModel } from '../helpers/fixtures.js';
import { paperProfileFor } from '../helpers/profiles.js';
import { legScope } from './gpu-config.js';

const SCOPE = legScope();
let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'webslo-gguf-gpu-'));
});
afterAll(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
});

// Each engine compiles every kernel on its own device: on the all-features leg only.
describe.skipIf(SCOPE !== 'full').each(['tiny-llama3', 'tiny-qwen3b'] as FixtureModel[])('%s from a GGUF file', (model) => {
  it("createEngine({ model: 'x.gguf' }) serves HF's greedy tokens", async () => {
    const path = join(dir, `${model}.gguf`);
    writeFileSync(path, ggufFromHfFolder(fixtureDir(model), 'F32'));
    const engine = await createEngine({ model: path, worker: false, cache: false, profile: paperProfileFor(model), kvCacheBytes: 2 * 1024 * 1024 });
    try {
      for (const c of fixtureCases(model).filter((x) => x.prompt.length === 5 || x.prompt.length === 37)) {
        const r = await engine.completions.create({ prompt: c.prompt, max_tokens: 8, temperature: 0, ignore_eos: true, return_token_ids: true });
        expect(r.choices[0]!.token_ids, `${c.prompt.length}-token prompt`).toEqual(c.greedy.slice(0, 8));
      }
    } finally {
      await engine.unload();
    }
  }, 180_000);
});
