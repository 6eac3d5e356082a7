// The `webslo` CLI as a user runs it: a separate process, JSON on stdout, typed errors on stderr.

import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadModelFiles, tensorToFloat64 } from '../../src/model/load.js';
import { nodeDirectorySource } from '../../src/model/source.js';
import { ReferenceModel } from '../../src/reference/model.js';
import { q4WeightLookup } from '../../src/reference/q4.js';
import { fixtureCases, fixtureDir } from '../helpers/fixtures.js';
import { startHubServer } from '../helpers/hub-server.js';
import { gpuConfig, legScope } from './gpu-config.js';

function webslo(...args: string[]): { code: number; out: string; err: string } {
  const config = gpuConfig();
  const extra = config === 'no-f16' ? ['--no-f16'] : config === 'no-subgroups' ? ['--no-subgroups'] : [];
  const r = spawnSync(process.execPath, ['bin/webslo.mjs', ...args, ...(args.length > 1 ? extra : [])], { encoding: 'utf8', timeout: 300_000 });
  return { code: r.status ?? -1, out: r.stdout, err: r.stderr };
}

/** webslo without blocking this process (a server here may be what it talks to). */
function webslo2(...args: string[]): Promise<{ code: number; out: string; err: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['bin/webslo.mjs', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), 120_000);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code: code ?? -1, out, err });
    });
  });
}

// The CLI's behaviour does not depend on the adapter or its features (its forward is the runner's,
// which every leg tests directly), and each spawned process compiles its pipelines afresh: the full
// lavapipe leg runs it, the others leave it to that leg.
describe.skipIf(legScope() !== 'full')('webslo CLI', () => {
  it('logits prints the top ids per position (--full: and the whole last row), matching HF', () => {
    const c = fixtureCases('tiny-llama3').find((x) => x.prompt.length === 5)!;
    const top = webslo('logits', '--model', fixtureDir('tiny-llama3'), '--tokens', c.prompt.join(','), '--top', '3');
    expect(top.code, top.err).toBe(0);
    const t = JSON.parse(top.out) as Record<string, number[][]>;
    // Only the top 3 (once, the whole 32,000-entry row came with them).
    expect(Object.keys(t).sort()).toEqual(['top_ids', 'top_logits']);
    expect(t['top_ids']![4]).toEqual(c.top8_ids[4]!.slice(0, 3));
    const r = webslo('logits', '--model', fixtureDir('tiny-llama3'), '--tokens', c.prompt.join(','), '--top', '8', '--full');
    expect(r.code, r.err).toBe(0);
    const j = JSON.parse(r.out) as { last_logits: number[]; top_ids: number[][]; top_logits: number[][] };
    expect(j.last_logits).toHaveLength(32000);
    expect(Math.max(...j.last_logits.map((v, i) => Math.abs(v - c.last_logits[i]!)))).toBeLessThan(1e-3);
    expect(j.top_ids).toHaveLength(5);
    expect(j.top_ids[4]).toEqual(c.top8_ids[4]);
    expect(j.top_logits[4]![0]).toBeCloseTo(c.top8_logits[4]![0]!, 3);
  });

  it('logits --quantize q4 matches the float64 model on the dequantized weights; a bad value exits 2', async () => {
    const c = fixtureCases('tiny-llama3').find((x) => x.prompt.length === 5)!;
    const r = webslo('logits', '--model', fixtureDir('tiny-llama3'), '--tokens', c.prompt.join(','), '--quantize', 'q4', '--full');
    expect(r.code, r.err).toBe(0);
    const j = JSON.parse(r.out) as { last_logits: number[] };
    const files = await loadModelFiles(nodeDirectorySource(fixtureDir('tiny-llama3')));
    const ref = new ReferenceModel(
      files.config,
      q4WeightLookup(files.config, (name) => tensorToFloat64(files.tensors.get(name)!)),
    ).forward(c.prompt);
    expect(Math.max(...j.last_logits.map((v, i) => Math.abs(v - ref[i]!)))).toBeLessThan(1e-3);
    const bad = webslo('logits', '--model', fixtureDir('tiny-llama3'), '--tokens', '1', '--quantize', 'q8');
    expect(bad.code).toBe(2);
    expect(bad.err).toMatch(/--quantize q8: expected none or q4/);
  });

  it('generate --json decodes greedily by default, like HF generate', () => {
    const c = fixtureCases('tiny-mistral').find((x) => x.prompt.length === 37)!;
    const r = webslo('generate', '--model', fixtureDir('tiny-mistral'), '--tokens', c.prompt.join(','), '--max-tokens', '12', '--json', '--ignore-eos');
    expect(r.code, r.err).toBe(0);
    expect(JSON.parse(r.out)).toEqual({ token_ids: c.greedy.slice(0, 12), text: null });
  });

  it('generate --prompt encodes with the model tokenizer and decodes the answer', () => {
    const r = webslo('generate', '--model', fixtureDir('tiny-qwen2'), '--prompt', 'Hello world', '--max-tokens', '4', '--json');
    expect(r.code, r.err).toBe(0);
    const j = JSON.parse(r.out) as { token_ids: number[]; text: string };
    expect(j.token_ids).toHaveLength(4);
    expect(typeof j.text).toBe('string');
    expect(j.text.length).toBeGreaterThan(0);
  });

  it('generate --temperature --seed samples reproducibly; sampling flags need --temperature', () => {
    const args = ['generate', '--model', fixtureDir('tiny-qwen2'), '--tokens', '1,22557,1526', '--max-tokens', '6', '--json', '--ignore-eos', '--temperature', '1.2', '--top-p', '0.9'];
    const a = webslo(...args, '--seed', '42');
    expect(a.code, a.err).toBe(0);
    expect(webslo(...args, '--seed', '42').out).toBe(a.out);
    expect((JSON.parse(a.out) as { token_ids: number[] }).token_ids).toHaveLength(6);
    const bad = webslo('generate', '--model', fixtureDir('tiny-qwen2'), '--tokens', '1', '--max-tokens', '2', '--seed', '3');
    expect(bad.code).toBe(2);
    expect(bad.err).toMatch(/need --temperature/);
  });

  it('generate with --draft-layers / --draft and --spec-k gives the greedy tokens and reports alpha', () => {
    const c = fixtureCases('tiny-llama3').find((x) => x.prompt.length === 5)!;
    const base = ['generate', '--model', fixtureDir('tiny-llama3'), '--tokens', c.prompt.join(','), '--max-tokens', '10', '--json', '--ignore-eos'];
    const self = webslo(...base, '--draft-layers', '3', '--spec-k', '4');
    expect(self.code, self.err).toBe(0);
    const j = JSON.parse(self.out) as { token_ids: number[]; speculative: { tokens_per_target_step: number; alpha: number; target_steps: number } };
    expect(j.token_ids).toEqual(c.greedy.slice(0, 10));
    expect(j.speculative.alpha).toBe(1); // all layers: the draft is the target
    expect(j.speculative.tokens_per_target_step).toBeGreaterThan(3);
    const model = webslo(...base, '--draft', fixtureDir('tiny-mistral'), '--spec-k', '2');
    expect(model.code, model.err).toBe(0);
    expect((JSON.parse(model.out) as { token_ids: number[] }).token_ids).toEqual(c.greedy.slice(0, 10));
    expect(model.err).toMatch(/\[webslo\] speculative: .*"alpha":/);
    const bad = webslo('generate', '--model', fixtureDir('tiny-llama3'), '--tokens', '1', '--max-tokens', '2', '--spec-k', '2');
    expect(bad.code).toBe(2);
    expect(bad.err).toMatch(/--spec-k needs --draft DIR or --draft-layers N/);
  });

  it('bench-sched --real runs a trace on the real engine next to the simulator', () => {
    const dir = mkdtempSync(join(tmpdir(), 'webslo-real-'));
    const trace = {
      apps: { chat: { ttft_ms: 4000, tpot_ms: 400 } },
      requests: Array.from({ length: 12 }, (_, i) => ({ t_ms: i * 150, app: 'chat', prompt_tokens: 20 + 7 * i, output_tokens: 4 + (i % 5) })),
    };
    writeFileSync(join(dir, 'trace.json'), JSON.stringify(trace));
    const r = webslo(
      'bench-sched',
      '--real',
      '--model',
      fixtureDir('tiny-qwen2'),
      '--trace',
      join(dir, 'trace.json'),
      '--calibration-s',
      '3',
      '--loads',
      '1',
      '--kv-tokens',
      '16384',
      '--json',
      '--out',
      dir,
    );
    expect(r.code, r.err).toBe(0);
    const j = JSON.parse(r.out) as { rows: { load: number; requests: number; realAttainment: number; simAttainment: number; admittedMissRate: number; realSteps: number }[] };
    expect(j.rows).toHaveLength(1);
    expect(j.rows[0]!.requests).toBe(12);
    for (const a of [j.rows[0]!.realAttainment, j.rows[0]!.simAttainment, j.rows[0]!.admittedMissRate]) expect(a >= 0 && a <= 1).toBe(true);
    expect(j.rows[0]!.realSteps).toBeGreaterThan(12);
    expect(readFileSync(join(dir, 'bench-real.md'), 'utf8')).toMatch(/\| 1 \| 12 \|/);
  });

  it('--model takes a hub repo id: downloaded from --hub-endpoint into --cache-dir once, then read from there', async () => {
    const hub = await startHubServer({ 'org/tiny-qwen2': fixtureDir('tiny-qwen2') });
    const cache = mkdtempSync(join(tmpdir(), 'webslo-cli-cache-'));
    try {
      const args = ['generate', '--model', 'org/tiny-qwen2', '--hub-endpoint', hub.endpoint, '--cache-dir', cache, '--prompt', 'Hello world', '--max-tokens', '4', '--json'];
      const first = await webslo2(...args);
      expect(first.code, first.err).toBe(0);
      const local = webslo('generate', '--model', fixtureDir('tiny-qwen2'), '--prompt', 'Hello world', '--max-tokens', '4', '--json');
      expect(JSON.parse(first.out)).toEqual(JSON.parse(local.out));
      expect(hub.requests.some((q) => q.path.endsWith('/model.safetensors') && q.method === 'GET')).toBe(true);
      hub.requests.length = 0;
      const again = await webslo2(...args);
      expect(again.code, again.err).toBe(0);
      expect(hub.requests.filter((q) => q.method === 'GET' && q.path.endsWith('/model.safetensors'))).toEqual([]);
    } finally {
      await hub.close();
    }
  });

  it('fails clearly on a bad folder (exit 1) and on bad usage (exit 2)', () => {
    const bad = webslo('logits', '--model', '/nonexistent-model-dir', '--tokens', '1');
    expect(bad.code).toBe(1);
    expect(bad.err).toMatch(/ModelSourceError: model "\/nonexistent-model-dir": is no existing directory/);
    // An option the command does not take is named (once, generate ran on with its defaults).
    const unknown = webslo('generate', '--model', fixtureDir('tiny-qwen2'), '--tokens', '1', '--max-tokens', '2', '--max-token', '3');
    expect(unknown.code).toBe(2);
    expect(unknown.err).toMatch(/generate: unknown option --max-token \(expected one of .*--max-tokens/);
    const usage = webslo('generate', '--model', fixtureDir('tiny-qwen2'), '--tokens', '1,x', '--max-tokens', '2');
    expect(usage.code).toBe(2);
    expect(usage.err).toMatch(/--tokens '1,x': expected comma-separated token ids/);
    const noTok = webslo('generate', '--model', fixtureDir('tiny-llama3'), '--prompt', 'hi', '--max-tokens', '2');
    expect(noTok.code).toBe(2);
    expect(noTok.err).toMatch(/no tokenizer.json: use --tokens/);
  });
});
