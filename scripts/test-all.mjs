#!/usr/bin/env node
// `npm test`: every tier, in order, each one run even if an earlier one failed, then a summary
// with the count of assertions-bearing tests each tier ran. Exit code 0 only if all passed.
//   typecheck (tsc) -> lint (eslint, the layer check) -> unit (Vitest, Node) -> gpu (Vitest on Dawn, 4 configs)
//   -> browser (Playwright in Debian's Chromium on a Vite preview build)
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, rmSync } from 'node:fs';

const GPU_CONFIGS = ['all-features', 'no-f16', 'no-subgroups', 'swiftshader'];
rmSync('test-results', { recursive: true, force: true });

function run(cmd, args) {
  const start = Date.now();
  const r = spawnSync(cmd, args, { stdio: 'inherit', env: process.env });
  return { ok: r.status === 0, seconds: (Date.now() - start) / 1000 };
}

function vitestCounts(file) {
  if (!existsSync(file)) return null;
  const j = JSON.parse(readFileSync(file, 'utf8'));
  return { passed: j.numPassedTests, failed: j.numFailedTests + (j.numRuntimeErrorTestSuites ?? 0), skipped: j.numPendingTests + (j.numTodoTests ?? 0) };
}

function playwrightCounts(file) {
  if (!existsSync(file)) return null;
  const s = JSON.parse(readFileSync(file, 'utf8')).stats;
  return { passed: s.expected + s.flaky, failed: s.unexpected, skipped: s.skipped };
}

const rows = [];
const step = (name, cmd, args, counts) => {
  console.log(`\n[test] ===== ${name} =====`);
  const r = run(cmd, args);
  const c = counts ? counts() : null;
  rows.push({ name, ok: r.ok && (!c || c.failed === 0), seconds: r.seconds, counts: c });
};

step('typecheck', 'npx', ['tsc', '-p', '.']);
step('lint', 'npm', ['run', 'lint']);
step('unit', 'npx', ['vitest', 'run', '--project', 'unit', '--reporter=default', '--reporter=json', '--outputFile.json=test-results/unit.json'], () => vitestCounts('test-results/unit.json'));
for (const config of GPU_CONFIGS) {
  step(`gpu:${config}`, 'node', ['scripts/test-gpu.mjs', config], () => vitestCounts(`test-results/gpu-${config}.json`));
}
step('browser', 'npm', ['run', 'test:e2e'], () => playwrightCounts('test-results/e2e.json'));

let passed = 0;
let failed = 0;
let skipped = 0;
console.log('\n[test] summary');
for (const r of rows) {
  const c = r.counts;
  // A tier that should have counted tests but wrote no report failed before running any.
  const missing = r.name !== 'typecheck' && r.name !== 'lint' && !c;
  const ok = r.ok && !missing;
  if (c) {
    passed += c.passed;
    failed += c.failed;
    skipped += c.skipped;
  }
  if (!ok && (!c || c.failed === 0)) failed += 1;
  const detail = c ? `${c.passed} passed, ${c.failed} failed, ${c.skipped} skipped` : missing ? 'no report (did not run)' : '';
  console.log(`  ${ok ? 'ok  ' : 'FAIL'} ${r.name.padEnd(18)} ${String(r.seconds.toFixed(0)).padStart(5)} s  ${detail}`);
}
console.log(`${passed} passed, ${failed} failed${skipped ? `, ${skipped} skipped` : ''}`);
process.exit(failed === 0 && rows.every((r) => r.ok) ? 0 : 1);
