// The f16-math path: where shader-f16 exists, matmul group products run in f16 (norms, softmax and
// accumulation stay f32). It must stay within 5e-2 of the f32 path on whole models, keep matvec and
// tiled bitwise equal, and be refused with a typed error where shader-f16 is absent.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GpuLimitError, type GpuRuntime } from '../../src/gpu/index.js';
import { MatmulKernels } from '../../src/kernels/matmul.js';
import { loadModelFiles } from '../../src/model/load.js';
import { nodeDirectorySource } from '../../src/model/source.js';
import { matmulAbsReference, matmulReference } from '../../src/reference/matmul.js';
import { ModelRunner } from '../../src/runner/model-runner.js';
import { RunnerSession } from '../../src/runner/session.js';
import { fixtureCases, fixtureDir, type FixtureModel } from '../helpers/fixtures.js';
import { randomF32 } from '../helpers/random.js';
import { createTestRuntime } from './gpu-config.js';

let rt: GpuRuntime;

beforeAll(async () => {
  rt = await createTestRuntime();
});

afterAll(() => {
  expect(rt.takeErrors()).toEqual([]);
  rt.destroy();
});

describe('f16 math', () => {
  it('is refused with GpuLimitError without shader-f16, and otherwise tracks the reference', async () => {
    if (!rt.capabilities.features.shaderF16) {
      await expect(MatmulKernels.create(rt, 'f32', true)).rejects.toBeInstanceOf(GpuLimitError);
      return;
    }
    const k = await MatmulKernels.create(rt, 'f32', true);
    const c = { M: 11, N: 37, K: 300 };
    const x = randomF32(c.M * c.K, 1);
    const w = randomF32(c.N * c.K, 2, 0.5);
    const xb = rt.upload(x, 'x');
    const wb = rt.upload(w, 'w');
    const outs: Promise<ArrayBuffer>[] = [];
    const step = rt.beginStep('f16 math');
    for (const path of ['matvec', 'tiled'] as const) {
      const y = rt.createBuffer(4 * c.M * c.N, GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC, 'y');
      k.record(step, xb, wb, y, c, path);
      outs.push(step.read(y));
    }
    await step.submit();
    const [mv, tiled] = await Promise.all(outs);
    expect(new Uint32Array(tiled!)).toEqual(new Uint32Array(mv!));
    const got = new Float32Array(mv!);
    const ref = matmulReference(x, w, c);
    const abs = matmulAbsReference(x, w, c);
    for (let i = 0; i < ref.length; i++) {
      // Products rounded to f16 (2^-11 relative) plus the f16 group sums: well under 2e-3 of sum|xw|.
      expect(Math.abs(got[i]! - ref[i]!)).toBeLessThan(2e-3 * abs[i]!);
    }
  });

  it.each(['tiny-llama3', 'tiny-qwen2'] as FixtureModel[])('%s: logits within 5e-2 of f32 and of HF', async (model) => {
    if (!rt.capabilities.features.shaderF16) return; // covered by the refusal test above
    const files = await loadModelFiles(nodeDirectorySource(fixtureDir(model)));
    const c = fixtureCases(model).find((x) => x.prompt.length === 37)!;
    const logitsOf = async (math: 'f32' | 'f16'): Promise<Float32Array> => {
      const runner = await ModelRunner.create(rt, files, { kvPages: 16, math });
      const s = new RunnerSession(runner);
      const id = s.newSequence();
      const r = await s.prefill(id, c.prompt, 64, { logits: true });
      runner.destroy();
      return r[r.length - 1]!.logits!;
    };
    const f32 = await logitsOf('f32');
    const f16 = await logitsOf('f16');
    let vsF32 = 0;
    let vsHf = 0;
    for (let i = 0; i < f32.length; i++) {
      vsF32 = Math.max(vsF32, Math.abs(f16[i]! - f32[i]!));
      vsHf = Math.max(vsHf, Math.abs(f16[i]! - c.last_logits[i]!));
    }
    console.log(`[f16-math] ${model}: max |f16 - f32| ${vsF32.toExponential(2)}, max |f16 - HF| ${vsHf.toExponential(2)}`);
    expect(vsF32).toBeGreaterThan(0); // it really ran a different path
    expect(vsF32).toBeLessThan(5e-2);
    expect(vsHf).toBeLessThan(5e-2);
  });
});
