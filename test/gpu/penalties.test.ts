// Penalties and logit bias on the GPU (shaders/logit_adjust.wgsl) against the float64 reference
// (src/reference/penalties.ts), which applies the documented semantics to whole rows without the
// entry lists: every logit of every row compared, for random contexts, parameters and chunks; then
// through the engine, each greedy token against the float64 model's adjusted argmax.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { GpuRuntime } from '../../src/gpu/index.js';
import { LogitAdjustKernel, packPenaltyEntries } from '../../src/kernels/logit-adjust.js';
import { applyPenaltiesRef } from '../../src/reference/penalties.js';
import { isNeutral, penaltyEntries, PenaltiesError, validatePenalties, type Penalties, type PenaltyEntry } from '../../src/sampling/penalties.js';
import { createEngine } from '../../src/index.js';
import { loadModelFiles, tensorToFloat64 } from '../../src/model/load.js';
import { nodeDirectorySource } from '../../src/model/source.js';
import { toHttpError } from '../../src/openai/sse.js';
import { ReferenceModel } from '../../src/reference/model.js';
import { fixtureCases, fixtureDir } from '../helpers/fixtures.js';
import { paperProfileFor } from '../helpers/profiles.js';
import { randomF32, rng } from '../helpers/random.js';
import { createTestRuntime, legScope } from './gpu-config.js';

let rt: GpuRuntime;
let k: LogitAdjustKernel;

beforeAll(async () => {
  rt = await createTestRuntime();
  k = await LogitAdjustKernel.create(rt);
});

afterAll(() => {
  expect(rt.takeErrors()).toEqual([]);
  rt.destroy();
});

/** Adjust `rows` rows of `logits` on the GPU, the chunk holding output rows firstRow ... */
async function adjust(logits: Float32Array, entries: readonly PenaltyEntry[], rows: number, vocab: number, firstRow = 0): Promise<Float32Array> {
  const lb = rt.upload(logits, 'logits');
  const eb = rt.upload(new Uint8Array(packPenaltyEntries(entries)), 'entries');
  const step = rt.beginStep('logit adjust');
  k.record(step, eb, lb, { entries: entries.length, firstRow, rows, stride: vocab, vocab });
  const got = step.read(lb);
  await step.submit();
  const out = new Float32Array(await got);
  rt.destroyBuffer(lb);
  rt.destroyBuffer(eb);
  return out;
}

describe('logit_adjust', () => {
  it('random rows, contexts and parameters: every logit within f32 rounding of the float64 reference', async () => {
    const r = rng(42);
    const vocab = 300;
    const rows = 37;
    const logits = randomF32(rows * vocab, 42, 8);
    const entries: PenaltyEntry[] = [];
    const cases: { p: Penalties; context: number[]; promptLength: number }[] = [];
    for (let row = 0; row < rows; row++) {
      const bias = new Map<number, number>();
      for (let i = 0; i < Math.floor(r() * 5); i++) bias.set(Math.floor(r() * vocab), Math.round((r() * 200 - 100) * 100) / 100);
      const p: Penalties = {
        frequency: row % 5 === 0 ? 0 : r() * 4 - 2,
        presence: row % 3 === 0 ? 0 : r() * 4 - 2,
        repetition: row % 4 === 0 ? 1 : 0.5 + r() * 1.5,
        logitBias: bias,
      };
      // Small ids repeat: counts above 1 in the output, tokens in both prompt and output.
      const promptLength = Math.floor(r() * 30);
      const context = Array.from({ length: promptLength + Math.floor(r() * 40) }, () => Math.floor(r() * (r() < 0.5 ? 12 : vocab)));
      validatePenalties(p, vocab);
      penaltyEntries(p, context, promptLength, row, entries);
      cases.push({ p, context, promptLength });
    }
    expect(entries.length).toBeGreaterThan(rows * 5);
    const got = await adjust(logits, entries, rows, vocab);
    let worst = 0;
    cases.forEach((c, row) => {
      const ref = applyPenaltiesRef(logits.subarray(row * vocab, (row + 1) * vocab), c.p, c.context, c.promptLength);
      for (let t = 0; t < vocab; t++) worst = Math.max(worst, Math.abs(got[row * vocab + t]! - ref[t]!) / Math.max(1, Math.abs(ref[t]!)));
    });
    expect(worst).toBeLessThan(2e-6);
  });

  it("a chunk adjusts only its own rows; other chunks' entries and unnamed logits are untouched", async () => {
    const vocab = 50;
    const logits = randomF32(4 * vocab, 7, 3);
    const p: Penalties = { frequency: 0.5, presence: 0.25, repetition: 1.3, logitBias: new Map([[9, -100]]) };
    const entries: PenaltyEntry[] = [];
    for (let row = 0; row < 8; row++) penaltyEntries(p, [1, 2, 3, 3, 4], 2, row, entries);
    // The buffer holds output rows 4..7 (a second chunk).
    const got = await adjust(logits, entries, 4, vocab, 4);
    for (let row = 0; row < 4; row++) {
      const ref = applyPenaltiesRef(logits.subarray(row * vocab, (row + 1) * vocab), p, [1, 2, 3, 3, 4], 2);
      for (let t = 0; t < vocab; t++) expect(got[row * vocab + t]).toBeCloseTo(ref[t]!, 5);
    }
    for (let t = 10; t < vocab; t++) expect(got[t]).toBe(logits[t]);
  });

  it("a verify's rows: row j counts the first j drafts, as the reference does on the context they extend", async () => {
    const vocab = 40;
    const context = [1, 2, 3, 3, 4, 5, 5, 5];
    const drafts = [5, 6, 1, 6];
    const p: Penalties = { frequency: 0.7, presence: 0.3, repetition: 1.4, logitBias: new Map([[6, 2]]) };
    const logits = randomF32((drafts.length + 1) * vocab, 11, 4);
    const entries: PenaltyEntry[] = [];
    penaltyEntries(p, context, 3, 0, entries, drafts);
    const got = await adjust(logits, entries, drafts.length + 1, vocab);
    for (let j = 0; j <= drafts.length; j++) {
      const ref = applyPenaltiesRef(logits.subarray(j * vocab, (j + 1) * vocab), p, [...context, ...drafts.slice(0, j)], 3);
      for (let t = 0; t < vocab; t++) expect(got[j * vocab + t], `row ${j}, token ${t}`).toBeCloseTo(ref[t]!, 5);
    }
  });

  it('a neutral request makes no entries; out-of-range parameters are PenaltiesErrors naming the field', () => {
    const out: PenaltyEntry[] = [];
    const neutral: Penalties = { frequency: 0, presence: 0, repetition: 1, logitBias: new Map() };
    expect(isNeutral(neutral)).toBe(true);
    penaltyEntries(neutral, [1, 2, 3], 1, 0, out);
    expect(out).toEqual([]);
    for (const [bad, field] of [
      [{ frequency: 2.5 }, 'frequency'],
      [{ presence: Number.NaN }, 'presence'],
      [{ repetition: 0 }, 'repetition'],
      [{ logitBias: new Map([[300, 1]]) }, 'logitBias'],
      [{ logitBias: new Map([[3, 101]]) }, 'logitBias'],
    ] as const) {
      const err = (() => {
        try {
          validatePenalties({ ...neutral, ...bad }, 300);
        } catch (e) {
          return e;
        }
        return null;
      })();
      expect(err).toBeInstanceOf(PenaltiesError);
      expect((err as PenaltiesError).field).toBe(field);
    }
  });
});

describe.skipIf(legScope() === 'light')('penalties through the engine (tiny-qwen2, greedy)', () => {
  // A request that leans on all four at once; each output token is checked against the argmax of
  // the float64 model's logits for its context, adjusted by the float64 reference.
  // Token 11's bias alone makes a reply of 11s; the penalties then push it down as it repeats.
  const biasOnly = { logit_bias: { '11': 8 } };
  const request = { frequency_penalty: 1.5, presence_penalty: 0.5, repetition_penalty: 1.3, logit_bias: { '11': 8, '12': -100 } };
  const penalties: Penalties = {
    frequency: 1.5,
    presence: 0.5,
    repetition: 1.3,
    logitBias: new Map([
      [11, 8],
      [12, -100],
    ]),
  };

  async function referenceCheck(prompt: number[], out: number[]): Promise<number> {
    const files = await loadModelFiles(nodeDirectorySource(fixtureDir('tiny-qwen2')));
    const ref = new ReferenceModel(files.config, (name) => tensorToFloat64(files.tensors.get(name)!));
    let logits = ref.forward(prompt);
    let checked = 0;
    for (let i = 0; i < out.length; i++) {
      const adjusted = applyPenaltiesRef(logits, penalties, [...prompt, ...out.slice(0, i)], prompt.length);
      const order = [...adjusted.keys()].sort((a, b) => adjusted[b]! - adjusted[a]!);
      // Where the top two are within f32 noise of the GPU forward, either is right.
      if (adjusted[order[0]!]! - adjusted[order[1]!]! > 1e-3) {
        expect(out[i], `token ${i}`).toBe(order[0]);
        checked++;
      }
      logits = ref.forward([out[i]!]);
    }
    return checked;
  }

  it('every output token is the argmax of the adjusted float64 logits; self-speculation gives the same tokens', async () => {
    const prompt = fixtureCases('tiny-qwen2').find((c) => c.prompt.length >= 5)!.prompt;
    const outputs: number[][] = [];
    for (const selfSpeculation of [undefined, { layers: 1 }]) {
      const engine = await createEngine({
        model: fixtureDir('tiny-qwen2'),
        worker: false,
        profile: paperProfileFor('tiny-qwen2'),
        kvCacheBytes: 2 * 1024 * 1024,
        ...(selfSpeculation ? { selfSpeculation } : {}),
      });
      try {
        const biased = (await engine.completions.create({ prompt, max_tokens: 16, temperature: 0, ignore_eos: true, return_token_ids: true, ...biasOnly })).choices[0]!.token_ids!;
        const r = (await engine.completions.create({ prompt, max_tokens: 16, temperature: 0, ignore_eos: true, return_token_ids: true, ...request })).choices[0]!.token_ids!;
        outputs.push(r);
        const elevens = (ids: number[]): number => ids.filter((t) => t === 11).length;
        console.log(`[penalties] 11s: bias only ${elevens(biased)} of 16, with penalties ${elevens(r)}`);
        expect(elevens(biased)).toBeGreaterThanOrEqual(4);
        expect(elevens(r)).toBeGreaterThan(0);
        expect(elevens(r)).toBeLessThan(elevens(biased));
        expect(r).not.toContain(12);
      } finally {
        await engine.unload();
      }
    }
    expect(outputs[1]).toEqual(outputs[0]);
    expect(await referenceCheck(prompt, outputs[0]!)).toBeGreaterThanOrEqual(12);
  }, 180_000);

  it('a logit_bias id outside the vocabulary and a penalty out of range are 400s naming the parameter', async () => {
    const engine = await createEngine({ model: fixtureDir('tiny-qwen2'), worker: false, profile: paperProfileFor('tiny-qwen2'), kvCacheBytes: 1024 * 1024 });
    try {
      const V = engine.info.vocabSize;
      for (const [params, param] of [
        [{ logit_bias: { [String(V)]: 1 } }, 'logit_bias'],
        [{ frequency_penalty: 3 }, 'frequency_penalty'],
        [{ repetition_penalty: 0 }, 'repetition_penalty'],
        [{ logit_bias: { x: 1 } }, 'logit_bias'],
      ] as const) {
        const err = await engine.completions.create({ prompt: [1, 2], max_tokens: 2, ...params }).catch((e: unknown) => e);
        expect(toHttpError(err).status, param).toBe(400);
        expect((err as { param?: string }).param, param).toBe(param);
      }
    } finally {
      await engine.unload();
    }
  }, 120_000);
});
