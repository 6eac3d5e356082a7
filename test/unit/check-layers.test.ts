// scripts/check-layers.mjs (part of `npm run lint`) fails on each rule it enforces, on a small tree
// written for the purpose, and passes on the repository itself.

import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';

const script = resolve('scripts/check-layers.mjs');
const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

function check(files: Record<string, string>): { status: number | null; out: string } {
  const root = mkdtempSync(join(tmpdir(), 'webslo-layers-'));
  dirs.push(root);
  mkdirSync(join(root, 'src'), { recursive: true });
  mkdirSync(join(root, 'bench'), { recursive: true });
  for (const [path, text] of Object.entries(files)) {
    mkdirSync(dirname(join(root, path)), { recursive: true });
    writeFileSync(join(root, path), text);
  }
  const r = spawnSync(process.execPath, [script], { cwd: root, encoding: 'utf8' });
  return { status: r.status, out: r.stdout + r.stderr };
}

describe('the layer check', () => {
  it('passes on a tree that imports down', () => {
    const r = check({ 'src/engine/a.ts': "import { b } from '../scheduler/b.js';\n", 'src/scheduler/b.ts': 'export const b = 1;\n' });
    expect(r.out).toMatch(/every import points down/);
    expect(r.status).toBe(0);
  });

  it('fails an upward import, naming both files and layers', () => {
    const r = check({ 'src/scheduler/b.ts': "import type { A } from '../engine/a.js';\n", 'src/engine/a.ts': 'export type A = 1;\n' });
    expect(r.status).toBe(1);
    expect(r.out).toContain('src/scheduler/b.ts imports src/engine/a.ts: scheduler/ (planning) may not import engine/ (engine, a layer above)');
  });

  it('fails planning code that imports the GPU runtime, and production code that imports the oracle', () => {
    const r = check({
      'src/sim/s.ts': "import { g } from '../gpu/g.js';\n",
      'src/gpu/g.ts': 'export const g = 1;\n',
      'src/kernels/k.ts': "export { r } from '../reference/r.js';\n",
      'src/reference/r.ts': "import { g } from '../gpu/g.js';\nexport const r = g;\n",
    });
    expect(r.status).toBe(1);
    expect(r.out).toContain('src/sim/s.ts imports src/gpu/g.ts: planning never touches the GPU (gpu/)');
    expect(r.out).toContain('src/kernels/k.ts imports src/reference/r.ts: the oracle is for tests and benchmarks only');
    expect(r.out).not.toContain('src/reference/r.ts imports');
  });

  it('fails a cycle (type imports included), a benchmark importing a test, and a folder in no layer', () => {
    const r = check({
      'src/kv/a.ts': "import type { B } from './b.js';\nexport type A = B;\n",
      'src/kv/b.ts': "import type { A } from './a.js';\nexport type B = A | 1;\n",
      'bench/x.ts': "import { h } from '../test/helpers/h.js';\n",
      'src/extra/e.ts': 'export const e = 1;\n',
    });
    expect(r.status).toBe(1);
    expect(r.out).toMatch(/import cycle: src\/kv\/a\.ts -> src\/kv\/b\.ts -> src\/kv\/a\.ts/);
    expect(r.out).toContain('bench/x.ts imports test/helpers/h.ts: benchmarks do not import tests');
    expect(r.out).toContain('src/extra/e.ts: folder src/extra/ is in no layer');
  });

  it('passes on this repository', () => {
    const r = spawnSync(process.execPath, [script], { encoding: 'utf8' });
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
  });
});
