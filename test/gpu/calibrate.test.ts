// Calibration on a real runner: a small sweep over tiny-qwen2 gives a profile with a positive
// per-token cost and a finite R^2 that survives JSON; `webslo calibrate` writes a valid profile.

import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { GpuRuntime } from '../../src/gpu/index.js';
import { loadModelFiles } from '../../src/model/load.js';
import { nodeDirectorySource } from '../../src/model/source.js';
import { ModelRunner } from '../../src/runner/model-runner.js';
import { RunnerSession } from '../../src/runner/session.js';
import { adapterName, calibrate, CalibrationError } from '../../src/runner/calibrate.js';
import { PerformanceModel } from '../../src/scheduler/perf-model.js';
import { fixtureDir } from '../helpers/fixtures.js';
import { createTestRuntime, gpuConfig, legScope } from './gpu-config.js';

let rt: GpuRuntime;
let runner: ModelRunner;
const tmp = mkdtempSync(join(tmpdir(), 'webslo-calibrate-'));

beforeAll(async () => {
  rt = await createTestRuntime();
  runner = await ModelRunner.create(rt, await loadModelFiles(nodeDirectorySource(fixtureDir('tiny-qwen2'))), { kvPages: 256 });
});

afterAll(() => {
  runner?.destroy();
  rt?.destroy();
  rmSync(tmp, { recursive: true, force: true });
});

describe('calibrate', () => {
  it('fits a profile from a small sweep on tiny-qwen2 and round-trips it', async () => {
    const session = new RunnerSession(runner);
    const free = session.kv.freePages();
    const light = legScope() === 'light';
    const { model, samples } = await calibrate(session, {
      adapter: adapterName(rt.capabilities),
      model: 'tiny-qwen2',
      prefillChunks: light ? [8, 64] : [16, 64, 128],
      prefillContexts: [0, 64],
      decodeBatches: light ? [1, 4] : [1, 4, 8],
      decodeContexts: [32, 128],
      verifyKs: [2],
      verifyBatches: [2],
      repeats: 2,
    });
    expect(session.kv.freePages()).toBe(free); // every sequence rolled back and freed
    expect(samples.length).toBeGreaterThan(10);
    for (const s of samples) {
      expect(s.ms).toBeGreaterThan(0);
      expect(s.draftSteps).toBe(0);
      expect(s.kvTokensRead).toBeGreaterThan(0);
    }
    // Decodes at context 128 read 129 keys per layer each.
    const d = samples.find((s) => s.shape === 'decode x4 @128')!;
    expect(d.tokens).toBe(4);
    expect(d.kvTokensRead).toBe(4 * 129 * runner.numLayers);
    const p = model.profile;
    expect(Math.max(...p.pieces.map((q) => q.k1))).toBeGreaterThan(0);
    expect(Number.isFinite(p.r2)).toBe(true);
    expect(p.samples).toBe(samples.length);
    expect(p.adapter).toBe(adapterName(rt.capabilities));
    expect(p.layers).toBe(runner.numLayers);
    expect(model.maxTokensWithin(model.predict({ tokens: 64 }))).toBeGreaterThanOrEqual(64);
    const file = join(tmp, 'profile.json');
    await import('node:fs/promises').then((fs) => fs.writeFile(file, model.toJson()));
    expect(PerformanceModel.fromJson(readFileSync(file, 'utf8')).profile).toEqual(p);
    console.log(`[calibrate] ${gpuConfig()}: ${model.summary()}`);
  });

  it('refuses a sweep that does not fit the KV cache, naming what it needs', async () => {
    const session = new RunnerSession(runner);
    await expect(calibrate(session, { decodeBatches: [16], decodeContexts: [4000], prefillChunks: [16] })).rejects.toThrow(CalibrationError);
  });

  // A spawned process compiles every pipeline again: the lavapipe legs cover the CLI.
  it.skipIf(legScope() === 'light')('webslo calibrate writes a profile that validates', () => {
    const out = join(tmp, 'cli-profile.json');
    const extra = gpuConfig() === 'no-f16' ? ['--no-f16'] : gpuConfig() === 'no-subgroups' ? ['--no-subgroups'] : [];
    const args = ['bin/webslo.mjs', 'calibrate', '--model', fixtureDir('tiny-qwen2'), '--out', out, '--repeats', '1', '--decode-contexts', '32,128', ...extra];
    const r = spawnSync(process.execPath, args, { encoding: 'utf8', timeout: 300_000 });
    expect(r.status, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/\[webslo\] calibrated: T = .+ R\^2 -?\d\.\d{4}; margin x1\.1/);
    const m = PerformanceModel.fromJson(readFileSync(out, 'utf8'));
    expect(m.profile.model).toBe('tiny-qwen2');
    expect(m.profile.pieces.some((q) => q.k1 > 0)).toBe(true);
    const bad = spawnSync(process.execPath, ['bin/webslo.mjs', 'calibrate', '--model', fixtureDir('tiny-qwen2'), '--decode-contexts', '0'], { encoding: 'utf8' });
    expect(bad.status).toBe(2);
    expect(bad.stderr).toMatch(/--decode-contexts 0/);
  });
});
