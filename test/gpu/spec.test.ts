// Speculative decoding: greedy output identical to plain greedy decoding (HF's tokens) with a real
// second draft, with self-speculation and with an oracle, for k = 1..8 batched with a prefill chunk;
// rollback keeps page accounting exact; stochastic acceptance samples exactly the target's
// distribution (and broken rules do not); alpha = A / (A + R) recovers a known acceptance rate.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { GpuRuntime } from '../../src/gpu/index.js';
import { loadModelFiles, type LoadedModelFiles } from '../../src/model/load.js';
import { nodeDirectorySource } from '../../src/model/source.js';
import { warpedDistribution } from '../../src/reference/sampling.js';
import { ModelRunner } from '../../src/runner/model-runner.js';
import { RunnerSession, type Sampling } from '../../src/runner/session.js';
import { acceptStochastic } from '../../src/speculative/acceptance.js';
import { SpeculativeDecoder, type DraftSource } from '../../src/speculative/speculative-decoder.js';
import { chiSquare } from '../helpers/chi-square.js';
import { fixtureCases, fixtureDir } from '../helpers/fixtures.js';
import { rng } from '../helpers/random.js';
import { writeTinyModel } from '../helpers/tiny-model.js';
import { createTestRuntime, legScope } from './gpu-config.js';

const SCOPE = legScope();
const FULL = SCOPE === 'full';
const LIGHT = SCOPE === 'light';
// On SwiftShader (~10x slower) only the greedy exactness runs: the rest exercises CPU logic over the
// same forward, which the lavapipe legs cover.
const heavy = LIGHT ? it.skip : it;
let rt: GpuRuntime;
const runners: ModelRunner[] = [];

async function runnerFor(files: LoadedModelFiles, kvPages = 512, maxSequencesPerStep = 64): Promise<ModelRunner> {
  const r = await ModelRunner.create(rt, files, { kvPages, poisonKv: true, maxSequencesPerStep });
  runners.push(r);
  return r;
}

beforeAll(async () => {
  rt = await createTestRuntime();
});

afterAll(() => {
  for (const r of runners) r.destroy();
  expect(rt.takeErrors()).toEqual([]);
  rt.destroy();
});

describe('greedy speculation is exact (tiny-llama3 target, HF greedy tokens)', () => {
  let targetFiles: LoadedModelFiles;
  let target: RunnerSession;
  const cases = fixtureCases('tiny-llama3');
  const N = 24;

  beforeAll(async () => {
    targetFiles = await loadModelFiles(nodeDirectorySource(fixtureDir('tiny-llama3')));
    target = new RunnerSession(await runnerFor(targetFiles), { poisonFreedPages: true });
  });

  async function runAll(draft: DraftSource, ks: number[]): Promise<{ session: SpeculativeDecoder; alpha: number | null }> {
    const session = new SpeculativeDecoder(target, draft);
    const prompts = ks.map((_, i) => cases[i % 3 === 2 ? 2 : i % 3]!); // prompts of 1, 5 and 37 tokens
    const ids: number[] = [];
    for (let i = 0; i < ks.length; i++) ids.push(await session.start(prompts[i]!.prompt, { k: ks[i]!, group: 'g' }));
    // A long prompt prefilled in chunks of 16 rides along in the same verifies.
    const long = cases.find((c) => c.prompt.length === 200)!;
    const extra = target.newSequence();
    let fed = 0;
    let extraFirst: number | null = null;
    while (ids.some((id) => session.output(id).length < N)) {
      const active = ids.filter((id) => session.output(id).length < N);
      const chunk = fed < long.prompt.length ? long.prompt.slice(fed, fed + 16) : null;
      const { verify } = await session.step(active, chunk ? [{ id: extra, tokens: chunk, outputs: 'last' }] : []);
      if (chunk) {
        fed += chunk.length;
        if (fed === long.prompt.length) extraFirst = verify.tokens[verify.tokens.length - 1]!;
      }
    }
    ids.forEach((id, i) => expect(session.output(id).slice(0, N), `request ${i} (k=${ks[i]})`).toEqual(prompts[i]!.greedy));
    if (fed === long.prompt.length) expect(extraFirst).toBe(long.greedy[0]);
    target.free(extra);
    for (const id of ids) session.finish(id);
    expect(target.kv.freePages(), 'no page leaked').toBe(target.kv.numPages);
    return { session, alpha: session.stats.get('g')!.alpha };
  }

  it('with a genuinely different second model as the draft (tiny-mistral), k = 1..8', async () => {
    const draftSession = new RunnerSession(await runnerFor(await loadModelFiles(nodeDirectorySource(fixtureDir('tiny-mistral')))), { poisonFreedPages: true });
    await runAll({ kind: 'model', session: draftSession }, FULL ? [1, 2, 3, 4, 5, 6, 7, 8] : LIGHT ? [3] : [1, 4]);
    expect(draftSession.kv.freePages()).toBe(draftSession.kv.numPages);
  });

  heavy('with a perfect model draft (the target itself): every draft accepted, the draft catching up', async () => {
    const same = new RunnerSession(await runnerFor(targetFiles), { poisonFreedPages: true });
    const { alpha, session } = await runAll({ kind: 'model', session: same }, FULL ? [1, 3, 8] : [3]);
    expect(alpha).toBe(1);
    expect(session.stats.get('g')!.tokensPerVerify).toBeGreaterThan(2);
  });

  it('with self-speculation (first 1 layer, and all 3 layers = a perfect draft), k = 1..8', async () => {
    await runAll({ kind: 'self', layers: 1 }, FULL ? [1, 2, 3, 4, 5, 6, 7, 8] : LIGHT ? [3] : [2, 5]);
    if (!LIGHT) expect((await runAll({ kind: 'self', layers: 3 }, FULL ? [2, 8] : [4])).alpha).toBe(1);
  });

  heavy('with an oracle draft that is right 60% of the time (partial acceptances)', async () => {
    const r = rng(5);
    const byPrompt = new Map(cases.map((c) => [c.prompt.length, c]));
    const { alpha } = await runAll(
      {
        kind: 'oracle',
        propose: (req, k) => {
          const c = byPrompt.get(req.promptLength)!;
          const done = req.tokens.length - req.promptLength;
          return Array.from({ length: k }, (_, j) => {
            const truth = c.greedy[done + j] ?? 0;
            return r() < 0.6 ? truth : (truth + 1) % 32000;
          });
        },
      },
      LIGHT ? [2, 8] : [1, 2, 4, 8],
    );
    expect(alpha).toBeGreaterThan(0.3);
    expect(alpha).toBeLessThan(0.9);
  });

  heavy('self-speculation uses exactly the pages plain decoding uses, after every step', async () => {
    const session = new SpeculativeDecoder(target, { kind: 'self', layers: 1 });
    const c = cases.find((x) => x.prompt.length === 37)!;
    const id = await session.start(c.prompt, { k: 6 });
    const before = target.kv.usedPages();
    expect(before).toBe(Math.ceil((c.prompt.length - 1) / 16));
    while (session.output(id).length < 40) {
      await session.step([id]);
      const len = c.prompt.length + session.output(id).length - 1;
      expect(target.kv.length(id)).toBe(len);
      expect(target.kv.usedPages()).toBe(Math.ceil(len / target.kv.pageSize));
    }
    session.finish(id);
    expect(target.kv.freePages()).toBe(target.kv.numPages);
  });
});

describe('stochastic speculation samples the target distribution exactly (vocab 32)', () => {
  let target: RunnerSession;
  let draft: RunnerSession;
  const prompt = [0, 5, 7, 11];
  const sampling = (seed: number): Sampling => ({ temperature: 0.7, topK: 0, topP: 0.9, seed: BigInt(seed) });

  beforeAll(async () => {
    const spec = { vocab: 32, hidden: 32, intermediate: 64, layers: 2, heads: 4, kvHeads: 2 };
    const t = await loadModelFiles(nodeDirectorySource(writeTinyModel({ ...spec, seed: 1, headScale: 3 })));
    const d = await loadModelFiles(nodeDirectorySource(writeTinyModel({ ...spec, seed: 2, headScale: 3 })));
    target = new RunnerSession(await runnerFor(t, 2048, 160));
    draft = new RunnerSession(await runnerFor(d, 2048, 160));
  });

  /** Exact joint distribution of the first two tokens, from the target's own logits. */
  async function exactJoint(): Promise<Float64Array> {
    const V = 32;
    const logitsAfter = async (tokens: number[]): Promise<Float32Array> => {
      const id = target.newSequence();
      const r = await target.prefill(id, tokens, undefined, { logits: true });
      target.free(id);
      return r[r.length - 1]!.logits!;
    };
    const p0 = warpedDistribution(await logitsAfter(prompt), { ...sampling(0), tokenIndex: 0 });
    const joint = new Float64Array(V * V);
    for (let a = 0; a < V; a++) {
      if (p0[a]! === 0) continue;
      const p1 = warpedDistribution(await logitsAfter([...prompt, a]), { ...sampling(0), tokenIndex: 0 });
      for (let b = 0; b < V; b++) joint[a * V + b] = p0[a]! * p1[b]!;
    }
    return joint;
  }

  async function sampleJoint(n: number, accept: typeof acceptStochastic, seedBase: number): Promise<Uint32Array> {
    const counts = new Uint32Array(32 * 32);
    const session = new SpeculativeDecoder(target, { kind: 'model', session: draft }, accept);
    const batch = 150;
    for (let s = 0; s < n; s += batch) {
      const m = Math.min(batch, n - s);
      const ids = await session.startMany(
        prompt,
        Array.from({ length: m }, (_, i) => ({ k: 2, sampling: sampling(seedBase + s + i) })),
      );
      let open = ids;
      while (open.length > 0) {
        await session.step(open);
        open = open.filter((id) => session.output(id).length < 2);
      }
      for (const id of ids) {
        const [a, b] = session.output(id);
        counts[a! * 32 + b!]!++;
        session.finish(id);
      }
    }
    expect(target.kv.freePages()).toBe(target.kv.numPages);
    expect(draft.kv.freePages()).toBe(draft.kv.numPages);
    return counts;
  }

  heavy('passes chi-square on the joint of the first two tokens; broken rules fail it', async () => {
    const joint = await exactJoint();
    const n = FULL ? 20_000 : LIGHT ? 1_000 : 3_000;
    const good = chiSquare(await sampleJoint(n, acceptStochastic, 0), joint);
    console.log(`[spec] exact rule: chi2 ${good.statistic.toFixed(1)} on ${good.dof} dof, p = ${good.p.toExponential(2)} (${n} samples)`);
    expect(good.p).toBeGreaterThan(1e-3);
    const nBroken = FULL ? 5_000 : LIGHT ? 1_000 : 3_000;
    for (const broken of ['accept-always', 'resample-from-p'] as const) {
      const bad = chiSquare(await sampleJoint(nBroken, (input) => acceptStochastic(input, { broken }), 1_000_000), joint);
      console.log(`[spec] ${broken}: chi2 ${bad.statistic.toFixed(1)} on ${bad.dof} dof, p = ${bad.p.toExponential(2)}`);
      expect(bad.p).toBeLessThan(1e-6);
    }
  });
});

describe.skipIf(LIGHT)('alpha = A / (A + R) recovers the acceptance rate of a controlled draft', () => {
  it.each(FULL ? [2, 4, 8] : [4])('k = %i, alpha 0.6 / 0.8 / 0.9, 500 verifies each: within 0.03', async (k) => {
    const spec = { vocab: 32, hidden: 32, intermediate: 64, layers: 2, heads: 4, kvHeads: 2 };
    const files = await loadModelFiles(nodeDirectorySource(writeTinyModel({ ...spec, seed: 3, headScale: 3 })));
    const target = new RunnerSession(await runnerFor(files, 2048));
    const prompt = [0, 3, 9];
    const truth = await target.greedy(prompt, 120);
    for (const alpha of [0.6, 0.8, 0.9]) {
      const r = rng(1000 * k + Math.round(alpha * 100));
      const session = new SpeculativeDecoder(target, {
        kind: 'oracle',
        propose: (req, kk) => {
          const done = req.tokens.length - req.promptLength;
          return Array.from({ length: kk }, (_, j) => (r() < alpha ? truth[done + j]! : (truth[done + j]! + 1 + Math.floor(r() * 31)) % 32));
        },
      });
      const ids = await session.startMany(
        prompt,
        Array.from({ length: 50 }, () => ({ k, group: 'app' })),
      );
      for (let s = 0; s < 10; s++) await session.step(ids);
      const stats = session.stats.get('app')!;
      expect(stats.verifies).toBe(500);
      for (const id of ids) expect(session.output(id)).toEqual(truth.slice(0, session.output(id).length));
      console.log(`[spec] k=${k} alpha=${alpha}: estimated ${stats.alpha!.toFixed(3)}, tokens/verify ${stats.tokensPerVerify!.toFixed(2)}`);
      expect(Math.abs(stats.alpha! - alpha)).toBeLessThanOrEqual(0.03);
      for (const id of ids) session.finish(id);
    }
    expect(target.kv.freePages()).toBe(target.kv.numPages);
  });
});
