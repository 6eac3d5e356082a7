#!/usr/bin/env node
// `npm test`: every tier, in order, each one run even if an earlier one failed, then a summary
// with the count of assertions-bearing tests each tier ran and, last, every failed test by name with
// the first lines of its error (CI keeps only the tail of the output). Exit code 0 only if all passed.
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

const COLOUR = new RegExp(`${String.fromCharCode(27)}\\[[0-9;]*m`, 'g');
/** The first lines of an error message, without colour codes. */
const brief = (text) =>
  String(text ?? '')
    .replace(COLOUR, '')
    .split('\n')
    .filter((l) => l.trim())
    .slice(0, 4)
    .map((l) => `      ${l.slice(0, 240)}`)
    .join('\n');

function vitestCounts(file) {
  if (!existsSync(file)) return null;
  const j = JSON.parse(readFileSync(file, 'utf8'));
  const failures = [];
  for (const f of j.testResults ?? []) {
    const where = f.name.replace(`${process.cwd()}/`, '');
    const bad = (f.assertionResults ?? []).filter((t) => t.status === 'failed');
    for (const t of bad) failures.push(`${where} > ${t.fullName ?? t.title}\n${brief(t.failureMessages?.[0])}`);
    if (f.status === 'failed' && bad.length === 0) failures.push(`${where} (the file failed outside its tests)\n${brief(f.message)}`);
  }
  return { passed: j.numPassedTests, failed: j.numFailedTests + (j.numRuntimeErrorTestSuites ?? 0), skipped: j.numPendingTests + (j.numTodoTests ?? 0), failures };
}

function playwrightCounts(file) {
  if (!existsSync(file)) return null;
  const j = JSON.parse(readFileSync(file, 'utf8'));
  const failures = [];
  const walk = (suite, path) => {
    for (const spec of suite.specs ?? []) {
      for (const t of spec.tests ?? []) {
        if (t.status !== 'unexpected') continue;
        const last = (t.results ?? []).at(-1);
        failures.push(`${spec.file}:${spec.line} > ${[...path, spec.title].join(' > ')} [${t.projectName}]\n${brief(last?.error?.message)}`);
      }
    }
    for (const s of suite.suites ?? []) walk(s, s.title && !s.title.endsWith('.ts') ? [...path, s.title] : path);
  };
  for (const s of j.suites ?? []) walk(s, []);
  return { passed: j.stats.expected + j.stats.flaky, failed: j.stats.unexpected, skipped: j.stats.skipped, failures };
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
const failures = rows.flatMap((r) => (r.counts?.failures ?? []).map((f) => `  [${r.name}] ${f}`));
if (failures.length) console.log(`\n[test] failed tests\n${failures.join('\n')}`);
console.log(`${passed} passed, ${failed} failed${skipped ? `, ${skipped} skipped` : ''}`);
process.exit(failed === 0 && rows.every((r) => r.ok) ? 0 : 1);
