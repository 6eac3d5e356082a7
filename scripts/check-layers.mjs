#!/usr/bin/env node
// The layering of src/ (docs/architecture.md), checked from the imports: every import points down
// the list below or stays in its own layer; planning never imports the GPU runtime; the oracle
// (src/reference/) is imported only by tests and benchmarks (it may import anything); benchmarks
// never import tests; and no two modules import each other, directly or through others. Part of
// `npm run lint`.
// Usage: node scripts/check-layers.mjs   (exit 1 with one line per violation)
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';

/** Top to bottom; a module may import its own layer or any below. `.` is src/index.ts. */
export const LAYERS = [
  ['facade', ['.', 'api', 'demo', 'cli']],
  ['boundary', ['worker', 'host']],
  ['protocol', ['openai']],
  ['engine', ['engine']],
  ['execution', ['runner', 'speculative']],
  ['kernels', ['kernels']],
  ['planning', ['scheduler', 'sim']],
  ['foundations', ['kv', 'model', 'tokenizer', 'hub', 'gpu', 'numeric', 'sampling']],
  ['oracle', ['reference']],
];
const PLANNING_NEVER = ['gpu', 'runner', 'kernels'];

const rank = new Map();
LAYERS.forEach(([, folders], i) => folders.forEach((f) => rank.set(f, i)));

function files(dir) {
  const out = [];
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) out.push(...files(p));
    else if (/\.(ts|tsx|mts)$/.test(name) && !name.endsWith('.d.ts')) out.push(p);
  }
  return out;
}

/** Relative imports of a file (static, dynamic, re-exports, `import type`), resolved to repo paths. */
function importsOf(file) {
  const src = readFileSync(file, 'utf8');
  const out = [];
  for (const m of src.matchAll(/(?:\bfrom\s*|\bimport\s*\(\s*|^\s*import\s+)(['"])(\.{1,2}\/[^'"]+)\1/gm)) {
    out.push(relative('.', resolve(dirname(file), m[2])).replace(/\.js$/, '.ts'));
  }
  return out;
}

const folderOf = (path) => {
  const rel = relative('src', path);
  return rel.includes('/') ? rel.split('/')[0] : '.';
};

const problems = [];
const graph = new Map();
for (const file of files('src')) {
  const from = folderOf(file);
  if (!rank.has(from)) problems.push(`${file}: folder src/${from}/ is in no layer (add it to scripts/check-layers.mjs and docs/architecture.md)`);
  const deps = importsOf(file).filter((p) => p.startsWith('src/'));
  graph.set(
    file,
    deps.filter((p) => p.endsWith('.ts') || p.endsWith('.tsx')),
  );
  for (const dep of deps) {
    if (!/\.(ts|tsx)$/.test(dep)) continue; // assets (shaders) and the like
    const to = folderOf(dep);
    // The oracle stands beside the layers: it may use anything it checks.
    if (to === from || from === 'reference' || !rank.has(to) || !rank.has(from)) continue;
    if (to === 'reference') problems.push(`${file} imports ${dep}: the oracle is for tests and benchmarks only`);
    else if (rank.get(to) < rank.get(from)) problems.push(`${file} imports ${dep}: ${from}/ (${LAYERS[rank.get(from)][0]}) may not import ${to}/ (${LAYERS[rank.get(to)][0]}, a layer above)`);
    if ((from === 'scheduler' || from === 'sim') && PLANNING_NEVER.includes(to)) problems.push(`${file} imports ${dep}: planning never touches the GPU (${to}/)`);
  }
}
for (const file of files('bench')) {
  for (const dep of importsOf(file)) if (dep.startsWith('test/')) problems.push(`${file} imports ${dep}: benchmarks do not import tests (share it from src/reference/)`);
}

// Cycles between modules (imports of types included: a type cycle is still a knot to untie).
const state = new Map();
const stack = [];
function visit(f) {
  state.set(f, 1);
  stack.push(f);
  for (const d of graph.get(f) ?? []) {
    if (!graph.has(d)) continue;
    if (state.get(d) === 1) problems.push(`import cycle: ${[...stack.slice(stack.indexOf(d)), d].join(' -> ')}`);
    else if (!state.has(d)) visit(d);
  }
  stack.pop();
  state.set(f, 2);
}
for (const f of graph.keys()) if (!state.has(f)) visit(f);

if (problems.length > 0) {
  for (const p of problems) console.error(p);
  console.error(`[check-layers] ${problems.length} problem(s)`);
  process.exit(1);
}
console.log(`[check-layers] ${graph.size} modules in src/: every import points down the layers, no cycles`);
