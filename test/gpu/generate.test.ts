// Sampled generation through the model runner: the GPU's pick is the reference's pick for the
// same logits, (seed, token index) makes it reproducible, and a sequence's samples do not depend
// on what else is in its batch.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { GpuRuntime } from '../../src/gpu/index.js';
import { loadModelFiles } from '../../src/model/load.js';
import { nodeDirectorySource } from '../../src/model/source.js';
import { sampleDetails } from '../../src/reference/sampling.js';
import { ModelRunner } from '../../src/runner/model-runner.js';
import { RunnerSession, type Sampling } from '../../src/runner/session.js';
import { ForwardInputError } from '../../src/runner/errors.js';
import { fixtureCases, fixtureDir } from '../helpers/fixtures.js';
import { createTestRuntime } from './gpu-config.js';

let rt: GpuRuntime;
let runner: ModelRunner;
let session: RunnerSession;
const prompt = fixtureCases('tiny-qwen2').find((c) => c.prompt.length === 37)!.prompt;
const WARM: Sampling = { temperature: 1.3, topK: 0, topP: 0.95, seed: 1234n };

beforeAll(async () => {
  rt = await createTestRuntime();
  runner = await ModelRunner.create(rt, await loadModelFiles(nodeDirectorySource(fixtureDir('tiny-qwen2'))), { kvPages: 64 });
  session = new RunnerSession(runner);
});

afterAll(() => {
  runner.destroy();
  expect(rt.takeErrors()).toEqual([]);
  rt.destroy();
});

describe('step times', () => {
  it('a step with no output rows returns after its GPU work, so its time is the step, not the submit', async () => {
    const id = session.newSequence();
    // outputs 'none': no token comes back, nothing to wait for but the GPU itself.
    const [r] = await session.prefill(id, prompt, 64, { outputs: 'none' });
    expect(r!.features.outputRows).toBe(0);
    expect(rt.inFlightCount).toBe(0);
    session.free(id);
  });
});

describe('sampled generation', () => {
  it('picks what the float64 reference picks from the same logits, for many token indexes', async () => {
    const id = session.newSequence();
    const [r] = await session.prefill(id, prompt, 64, { logits: true });
    session.free(id);
    const logits = r!.logits!;
    let exact = 0;
    for (let tokenIndex = 0; tokenIndex < 40; tokenIndex++) {
      const params = { ...WARM, tokenIndex };
      const s = session.newSequence();
      const [g] = await session.prefill(s, prompt, 64, { sampling: params });
      session.free(s);
      const ref = sampleDetails(logits, params);
      if (ref.margin > 1e-5) {
        expect(g!.tokens[0], `token index ${tokenIndex}`).toBe(ref.id);
        exact++;
      }
    }
    expect(exact).toBeGreaterThan(30);
  });

  it('temperature 0 is greedy; a seed reproduces a run; another seed changes it', async () => {
    const greedy = await session.greedy(prompt, 10);
    expect(await session.generate(prompt, 10, { sampling: { ...WARM, temperature: 0 } })).toEqual(greedy);
    const a = await session.generate(prompt, 12, { sampling: WARM });
    expect(await session.generate(prompt, 12, { sampling: WARM })).toEqual(a);
    expect(await session.generate(prompt, 12, { sampling: { ...WARM, seed: 99n } })).not.toEqual(a);
  });

  it('a seeded sequence samples the same tokens alone and batched with others', async () => {
    const alone = await session.generate(prompt, 6, { sampling: WARM });
    const me = session.newSequence();
    const other = session.newSequence();
    await session.prefill(other, prompt.slice(0, 20), 64);
    const [first] = await session.prefill(me, prompt, 64, { sampling: { ...WARM, tokenIndex: 0 } });
    const out = [first!.tokens[0]!];
    while (out.length < 6) {
      const r = await session.step(
        [
          { id: other, tokens: [3, 4, 5], outputs: 'all' },
          { id: me, tokens: [out[out.length - 1]!] },
        ],
        { sampling: [0, 1, 2, 3].map((i) => (i < 3 ? { temperature: 0.7, topK: 5, topP: 1, seed: 7n, tokenIndex: i } : { ...WARM, tokenIndex: out.length })) },
      );
      out.push(r.tokens[3]!);
    }
    expect(out).toEqual(alone);
    session.free(me);
    session.free(other);
  });

  it('refuses sampling params that do not match the output rows', async () => {
    const id = session.newSequence();
    await expect(session.step([{ id, tokens: [1, 2] }], { sampling: [] })).rejects.toBeInstanceOf(ForwardInputError);
    session.free(id);
  });
});
