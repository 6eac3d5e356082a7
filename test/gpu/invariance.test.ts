// Bitwise equalities of the forward pass in f32: how a sequence is chunked, batched, verified or
// split across storage bindings never changes its logits by a single bit.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { GpuRuntime } from '../../src/gpu/index.js';
import { loadModelFiles, type LoadedModelFiles } from '../../src/model/load.js';
import { nodeDirectorySource } from '../../src/model/source.js';
import { ModelRunner } from '../../src/runner/model-runner.js';
import { RunnerSession } from '../../src/runner/session.js';
import { fixtureCases, fixtureDir, type FixtureModel } from '../helpers/fixtures.js';
import { createTestRuntime, legScope } from './gpu-config.js';

let rt: GpuRuntime;
const SCOPE = legScope();
const FULL = SCOPE === 'full';

beforeAll(async () => {
  rt = await createTestRuntime();
});

afterAll(() => {
  expect(rt.takeErrors()).toEqual([]);
  rt.destroy();
});

const bits = (a: Float32Array): Uint32Array => new Uint32Array(a.buffer, a.byteOffset, a.length);

describe.each((SCOPE === 'light' ? ['tiny-llama3'] : ['tiny-llama3', 'tiny-qwen3b']) as FixtureModel[])('%s', (model) => {
  let files: LoadedModelFiles;
  let runner: ModelRunner;
  let session: RunnerSession;
  const prompt = fixtureCases(model)
    .find((c) => c.prompt.length === 200)!
    .prompt.slice(0, FULL ? 200 : SCOPE === 'reduced' ? 80 : 40);
  const other = fixtureCases(model).find((c) => c.prompt.length === 37)!.prompt;

  beforeAll(async () => {
    files = await loadModelFiles(nodeDirectorySource(fixtureDir(model)));
    runner = await ModelRunner.create(rt, files, { kvPages: 96, poisonKv: true });
    session = new RunnerSession(runner, { poisonFreedPages: true });
  });

  afterAll(() => runner.destroy());

  async function lastLogits(tokens: readonly number[], chunk: number): Promise<Float32Array> {
    const id = session.newSequence();
    const r = await session.prefill(id, tokens, chunk, { logits: true });
    session.free(id);
    return r[r.length - 1]!.logits!;
  }

  it('chunked prefill (chunks of 1, 7, 64, 256) equals one-shot prefill', async () => {
    const once = await lastLogits(prompt, prompt.length);
    for (const chunk of FULL ? [1, 7, 64, 256] : SCOPE === 'reduced' ? [7, 64] : [7]) {
      expect(bits(await lastLogits(prompt, chunk)), `chunk ${chunk}`).toEqual(bits(once));
    }
  });

  it('with the RMSNorms fused into the matvec reads (fuseNorm), steps of 1 and 7 tokens equal one-shot prefill', async () => {
    const fused = await ModelRunner.create(rt, files, { kvPages: 96, poisonKv: true, fuseNorm: true });
    try {
      const fusedSession = new RunnerSession(fused, { poisonFreedPages: true });
      const once = await lastLogits(prompt, prompt.length);
      const short = prompt.slice(0, FULL ? 120 : 40);
      const onceShort = await lastLogits(short, short.length);
      for (const [tokens, chunk, want] of [
        [short, 1, onceShort],
        [prompt, 7, once],
      ] as const) {
        const id = fusedSession.newSequence();
        const r = await fusedSession.prefill(id, tokens, chunk, { logits: true });
        fusedSession.free(id);
        expect(bits(r[r.length - 1]!.logits!), `chunks of ${chunk}`).toEqual(bits(want));
      }
    } finally {
      fused.destroy();
    }
  });

  it('a sequence has the same logits alone and in a ragged batch with others at other positions', async () => {
    const alone = await lastLogits(prompt, 64);
    // Others: one mid-prefill chunk and two decoding sequences at other positions.
    const a = session.newSequence();
    const b = session.newSequence();
    const c = session.newSequence();
    await session.prefill(b, other, 64);
    await session.prefill(c, prompt.slice(0, 50), 64);
    const me = session.newSequence();
    await session.prefill(me, prompt.slice(0, prompt.length - 9), 64);
    const r = await session.step(
      [
        { id: a, tokens: other.slice(0, 30), outputs: 'all' },
        { id: b, tokens: [5] },
        { id: me, tokens: prompt.slice(prompt.length - 9) },
        { id: c, tokens: [7] },
      ],
      { logits: true },
    );
    const V = runner.config.vocabSize;
    const row = r.outputOf.findIndex((o) => o.seq === 2);
    expect(bits(r.logits!.subarray(row * V, (row + 1) * V))).toEqual(bits(alone));
    for (const id of [a, b, c, me]) session.free(id);
  });

  it('the logits of k+1 verify rows equal those of k+1 successive decode steps', async () => {
    const k = 4;
    const draft = [11, 12, 13, 14, 15];
    const V = runner.config.vocabSize;
    const seq1 = session.newSequence();
    await session.prefill(seq1, prompt.slice(0, 40), 64);
    const verify = await session.step([{ id: seq1, tokens: draft.slice(0, k + 1), outputs: 'all' }], { logits: true });
    session.free(seq1);
    const seq2 = session.newSequence();
    await session.prefill(seq2, prompt.slice(0, 40), 64);
    for (let i = 0; i <= k; i++) {
      const r = await session.step([{ id: seq2, tokens: [draft[i]!] }], { logits: true });
      expect(bits(r.logits!), `row ${i}`).toEqual(bits(verify.logits!.subarray(i * V, (i + 1) * V)));
    }
    session.free(seq2);
  });

  it('splitting every matrix and the logits into 1 MiB bindings changes no bit', async () => {
    const split = await createTestRuntime({ maxStorageBindingOverride: 2 ** 20 });
    try {
      const small = await ModelRunner.create(split, files, { kvPages: 32 });
      expect(small.weights.embed.chunks.length).toBeGreaterThan(2);
      expect(small.logitRowsPerChunk).toBeLessThan(10);
      const s2 = new RunnerSession(small);
      const id = s2.newSequence();
      const tokens = prompt.slice(0, 20);
      const r = await s2.prefill(id, tokens, 64, { logits: true, outputs: 'all' });
      const id1 = session.newSequence();
      const ref = await session.prefill(id1, tokens, 64, { logits: true, outputs: 'all' });
      session.free(id1);
      expect(bits(r[0]!.logits!)).toEqual(bits(ref[0]!.logits!));
      expect(Array.from(r[0]!.tokens)).toEqual(Array.from(ref[0]!.tokens));
      small.destroy();
      expect(split.takeErrors()).toEqual([]);
    } finally {
      split.destroy();
    }
  });
});
