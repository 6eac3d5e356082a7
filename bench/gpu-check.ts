// A standalone correctness check for a new adapter (no Vitest): each fixture model in test/fixtures/
// loaded from its folder as a user's model is, run through the model runner in f32, its logits
// compared with HF transformers' (reference.json) as test/gpu/models.test.ts compares them: the last
// position's logits within 1e-3, the top-8 ids wherever the reference's neighbouring top-8 logits
// differ by more than 1e-3, and the greedy continuation. Where the adapter has shader-f16, the f16
// math path too (as test/gpu/f16-math.test.ts: the 37-token prompt, within 5e-2 of HF). Prints max
// |diff| per model and PASS/FAIL; exits 1 on any failure.
//
// Options: --fixtures DIR (default test/fixtures, relative to the working directory),
//          --models a,b (default all four), --max-prompt N (longest prompt checked; default all),
//          --no-greedy (skip the greedy continuations), --no-f16 (skip the f16-math check).

import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { readFile } from 'node:fs/promises';
import { describeCapabilities, GpuRuntime } from '../src/gpu/index.js';
import { loadModelFiles } from '../src/model/load.js';
import { nodeDirectorySource } from '../src/model/source.js';
import { ModelRunner } from '../src/runner/model-runner.js';
import { RunnerSession } from '../src/runner/session.js';
import { topIdsComparable, topK } from '../src/reference/logits.js';
import { arg } from './common.js';

const MODELS = ['tiny-qwen2', 'tiny-llama3', 'tiny-qwen3b', 'tiny-mistral'] as const;
/** test/gpu/models.test.ts: |logit - HF| of the last position. */
const F32_TOLERANCE = 1e-3;
/** test/gpu/f16-math.test.ts: |f16-math logit - HF|. */
const F16_TOLERANCE = 5e-2;

interface FixtureCase {
  prompt: number[];
  last_logits: number[];
  top8_ids: number[][];
  top8_logits: number[][];
  greedy: number[];
}

export async function main(args: string[]): Promise<number> {
  const start = performance.now();
  const dir = resolve(arg(args, '--fixtures') ?? 'test/fixtures');
  const models = (arg(args, '--models') ?? MODELS.join(',')).split(',');
  const maxPrompt = Number(arg(args, '--max-prompt') ?? Infinity);
  const greedy = !args.includes('--no-greedy');
  const rt = await GpuRuntime.create();
  const caps = rt.capabilities;
  const f16 = caps.features.shaderF16 && !args.includes('--no-f16');
  console.log(`adapter: ${describeCapabilities(caps)}`);
  console.log(
    `fixtures: ${dir}; f32 logits within ${F32_TOLERANCE} of HF, top-8 ids, ${greedy ? 'greedy tokens' : 'no greedy check'}${f16 ? `; f16 math within ${F16_TOLERANCE} of HF (37-token prompt)` : ''}`,
  );
  const lines: string[] = [];
  let failed = 0;
  for (const model of models) {
    const t0 = performance.now();
    const path = join(dir, model);
    const problems: string[] = [];
    let maxErr = 0;
    let f16Err = NaN;
    let checked = 0;
    try {
      if (!existsSync(join(path, 'reference.json'))) throw new Error(`${path}/reference.json is missing`);
      const all = (JSON.parse(await readFile(join(path, 'reference.json'), 'utf8')) as { cases: FixtureCase[] }).cases;
      const cases = all.filter((c) => c.prompt.length <= maxPrompt);
      const files = await loadModelFiles(nodeDirectorySource(path));
      const runner = await ModelRunner.create(rt, files, { kvPages: 128 });
      const session = new RunnerSession(runner);
      const V = runner.config.vocabSize;
      for (const c of cases) {
        const id = session.newSequence();
        const results = await session.prefill(id, c.prompt, runner.maxTokens, { logits: true, outputs: 'all' });
        session.free(id);
        const logits = new Float32Array(c.prompt.length * V);
        let o = 0;
        for (const r of results) {
          logits.set(r.logits!, o);
          o += r.logits!.length;
        }
        const last = logits.subarray((c.prompt.length - 1) * V);
        let err = 0;
        for (let i = 0; i < V; i++) err = Math.max(err, Math.abs(last[i]! - c.last_logits[i]!));
        if (!(err < F32_TOLERANCE)) problems.push(`prompt ${c.prompt.length}: max |diff| ${err.toExponential(2)}`);
        maxErr = Math.max(maxErr, Number.isNaN(err) ? Infinity : err);
        let bad = 0;
        c.top8_ids.forEach((ids, pos) => {
          if (!topIdsComparable(c.top8_logits[pos]!)) return;
          const got = topK(logits, pos * V, V, 8);
          if (got.some((x, i) => x !== ids[i])) bad++;
        });
        if (bad) problems.push(`prompt ${c.prompt.length}: top-8 ids differ at ${bad} positions`);
        if (greedy) {
          const out = await session.greedy(c.prompt, c.greedy.length);
          const at = out.findIndex((t, i) => t !== c.greedy[i]);
          if (at >= 0) problems.push(`prompt ${c.prompt.length}: greedy token ${at} is ${out[at]}, HF ${c.greedy[at]}`);
        }
        checked++;
      }
      runner.destroy();
      if (f16) {
        const c = all.find((x) => x.prompt.length === 37);
        if (c) {
          const r16 = await ModelRunner.create(rt, files, { kvPages: 16, math: 'f16' });
          const s16 = new RunnerSession(r16);
          const id = s16.newSequence();
          const res = await s16.prefill(id, c.prompt, 64, { logits: true });
          const row = res[res.length - 1]!.logits!;
          f16Err = 0;
          for (let i = 0; i < V; i++) f16Err = Math.max(f16Err, Math.abs(row[i]! - c.last_logits[i]!));
          if (!(f16Err < F16_TOLERANCE)) problems.push(`f16 math: max |diff| ${f16Err.toExponential(2)}`);
          r16.destroy();
        }
      }
    } catch (e) {
      problems.push(`error: ${e instanceof Error ? `${e.name}: ${e.message}` : String(e)}`);
    }
    const ok = problems.length === 0 && checked > 0;
    if (!ok) failed++;
    const line =
      `${ok ? 'PASS' : 'FAIL'} ${model.padEnd(13)} prompts ${checked}, max |logit - HF| ${maxErr.toExponential(2)} (tol ${F32_TOLERANCE})` +
      `${Number.isNaN(f16Err) ? '' : `, f16 math ${f16Err.toExponential(2)} (tol ${F16_TOLERANCE})`}, ${((performance.now() - t0) / 1000).toFixed(1)} s` +
      (problems.length ? `\n     ${problems.join('\n     ')}` : checked === 0 ? '\n     no prompt checked' : '');
    console.log(line);
    lines.push(line);
  }
  const errors = rt.takeErrors();
  rt.destroy();
  if (errors.length) {
    console.log(`FAIL GPU errors: ${errors.join('; ')}`);
    failed++;
  }
  console.log(`gpu-check: ${models.length - Math.min(failed, models.length)}/${models.length} models PASS, ${failed ? 'FAILED' : 'all passed'} (${((performance.now() - start) / 1000).toFixed(1)} s)`);
  return failed ? 1 : 0;
}
