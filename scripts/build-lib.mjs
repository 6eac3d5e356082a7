#!/usr/bin/env node
// npm run build:lib (and `npm pack`, through prepack): the npm package's files under lib/
// (git-ignored; not dist/, which is the demo's `vite build` output):
//
//   lib/index.js, lib/chunks/*.js   the browser entry (package.json exports '.': browser, default).
//                                   Self-contained: every dependency is bundled and no module
//                                   imports a bare specifier, so a page without a bundler can load
//                                   it as is. createEngine starts the worker from beside it:
//                                   `new URL('./worker.js', import.meta.url)`, which Vite and
//                                   webpack 5 copy into their build as an asset.
//   lib/worker.js                   the engine's module Web Worker (src/worker/engine-worker.ts)
//                                   as one file: comlink, @huggingface/tokenizers and
//                                   @huggingface/jinja, the engine and its WGSL inlined
//                                   (exports './worker').
//   lib/node/index.js, chunks       the Node entry (exports '.': node): the engine in-process on
//                                   Dawn, the optional peer 'webgpu' (imported at run time, never
//                                   bundled); the runtime dependencies stay imports.
//   lib/node/prompt-worker.js       the worker thread that renders chat templates and tokenizes
//                                   for the in-process engine (src/host/prompt-worker-node.ts).
//   lib/node/cli.js                 the `webslo` command (package.json "bin"; src/cli/bin.ts), and
//   lib/node/bench-worker.js        the worker processes its bench-sched starts.
//   lib/types/**/*.d.ts             declarations of the public API (tsc -p tsconfig.lib.json).
//
// Built with Vite's build API (library mode): TypeScript and the `?raw` WGSL imports work exactly
// as in the demo build. Not minified (consumers minify); class names are kept because the error
// classes take their name from their class.
import { spawnSync } from 'node:child_process';
import { chmodSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, relative, resolve } from 'node:path';
import { build } from 'vite';

const root = resolve(import.meta.dirname, '..');
const outDir = resolve(root, 'lib');
const pkg = JSON.parse(readFileSync(resolve(root, 'package.json'), 'utf8'));
const SPAWN_MODULE = resolve(root, 'src/worker/spawn.ts');
const WORKER_FILE = 'worker.js';
/** Stands for the worker's URL string in the browser entry until its chunk's place is known. */
const WORKER_PLACEHOLDER = '__WEBSLO_WORKER_FILE__';

/** The npm package 'webgpu' (Dawn for Node) must never reach a browser bundle. */
function keepDawnOutOfTheBrowser() {
  return {
    name: 'webslo:keep-dawn-out-of-the-browser',
    enforce: 'pre',
    resolveId(source, importer) {
      if (source === 'webgpu' || source.startsWith('webgpu/')) {
        this.error(`'${source}' (Dawn for Node) was imported by ${importer ?? 'an entry'}; browser code must use navigator.gpu`);
      }
      return null;
    },
  };
}

const RUNTIME_SPECIFIER = 'virtual:webslo-runtime-specifier';
const NODE_ONLY_IMPORT = /\bimport\(\s*\/\*\s*@vite-ignore\s*\*\/\s*([A-Za-z_$][\w$]*)\s*\)/g;

/**
 * The sources import Node-only modules (node:fs/promises, node:os, webgpu) through a computed
 * specifier, `const specifier = 'node:os'; await import(specifier)`, so that bundlers leave them
 * alone. Rolldown folds such a constant into the import() when it bundles, which would hand every
 * consumer's bundler a literal `import("node:os")` to resolve for the browser. Passing the
 * specifier through a function keeps it opaque (also to webpack, told to ignore it).
 */
function keepNodeImportsComputed() {
  const resolved = `\0${RUNTIME_SPECIFIER}`;
  return {
    name: 'webslo:keep-node-imports-computed',
    enforce: 'pre',
    resolveId: (id) => (id === RUNTIME_SPECIFIER ? resolved : null),
    load: (id) =>
      id === resolved ? "/** The argument, unchanged: keeps a Node-only import's specifier opaque to bundlers. */\nexport function runtimeSpecifier(specifier) {\n  return specifier;\n}\n" : null,
    transform(code, id) {
      if (!id.startsWith(resolve(root, 'src')) || !NODE_ONLY_IMPORT.test(code)) return null;
      const out = code.replace(NODE_ONLY_IMPORT, 'import(/* @vite-ignore */ /* webpackIgnore: true */ __websloRuntimeSpecifier($1))');
      return { code: `import { runtimeSpecifier as __websloRuntimeSpecifier } from '${RUNTIME_SPECIFIER}';\n${out}`, map: null };
    },
  };
}

/**
 * Replaces a module of the sources with the package's version of it (`code`) in one build
 * (`target`), where `placeholder` (if any) stands for the path of a built file (`file`, in that
 * build's output) relative to the chunk the code lands in. Fails the build if the module was never
 * seen, so a rename cannot ship a broken package. Used for what differs between running from the
 * sources and from lib/.
 */
function packagedModule(target, module, code, placeholder = null, file = null) {
  let swapped = false;
  return {
    name: `webslo:packaged:${target}:${relative(root, module)}`,
    enforce: 'pre',
    load(id) {
      if (id.split('?')[0] !== module) return null;
      swapped = true;
      return { code, moduleSideEffects: false };
    },
    renderChunk(chunkCode, chunk) {
      if (placeholder === null || !chunkCode.includes(placeholder)) return null;
      let rel = relative(dirname(chunk.fileName), file).split('\\').join('/');
      if (!rel.startsWith('.')) rel = `./${rel}`;
      return { code: chunkCode.split(placeholder).join(JSON.stringify(rel)), map: null };
    },
    buildEnd(error) {
      if (!error && !swapped) this.error(`${relative(root, module)} was not part of the ${target} build: update scripts/build-lib.mjs`);
    },
  };
}

/**
 * src/worker/spawn.ts (whose `new Worker(new URL('./engine-worker.ts', ...))` is for Vite builds of
 * this repository): in the browser build, the package's worker bundle beside the entry; in the Node
 * build, an error (the engine runs in-process there).
 */
function packagedWorkerSpawn(target) {
  const code =
    target === 'browser'
      ? [
          '// The self-contained worker bundle beside the entry. A separate `new URL` (not inside',
          '// `new Worker(...)`): bundlers copy the file as an asset instead of bundling it again.',
          'export function spawnEngineWorker() {',
          `  const url = new URL(${WORKER_PLACEHOLDER}, import.meta.url);`,
          "  return new Worker(url, { type: 'module', name: 'webslo-engine' });",
          '}',
        ].join('\n')
      : ['export function spawnEngineWorker() {', '  throw new Error("webslo\'s Node build runs the engine in-process: pass worker: false, or use the browser build");', '}'].join('\n');
  return packagedModule(target, SPAWN_MODULE, code, WORKER_PLACEHOLDER, WORKER_FILE);
}

/** host/node-prompt-spawn.ts: start lib/node/prompt-worker.js on a worker thread (none from the sources). */
const NODE_PROMPT_SPAWN = packagedModule(
  'node',
  resolve(root, 'src/host/node-prompt-spawn.ts'),
  [
    "import { Worker } from 'node:worker_threads';",
    'export async function nodePromptWorkerSpawner() {',
    '  const url = new URL(__WEBSLO_NODE_PROMPT_WORKER__, import.meta.url);',
    '  return () => {',
    '    const w = new Worker(url);',
    '    // Holds the process open only while it has a job: a program that never unloads still exits.',
    '    w.unref();',
    '    return {',
    '      postMessage: (m) => w.postMessage(m),',
    "      addEventListener: (_type, listener) => void w.on('message', (data) => listener({ data })),",
    '      onFailure: (listener) => {',
    "        w.once('error', (e) => listener(String(e?.message ?? e)));",
    "        w.once('exit', (code) => listener(`the prompt worker exited (${code})`));",
    '      },',
    '      busy: (busy) => (busy ? w.ref() : w.unref()),',
    '      terminate: () => void w.terminate(),',
    '    };',
    '  };',
    '}',
  ].join('\n'),
  '__WEBSLO_NODE_PROMPT_WORKER__',
  'prompt-worker.js',
);

/** cli/bench-worker-process.ts: bench-sched's workers run lib/node/bench-worker.js (run-ts.mjs from the sources). */
const BENCH_WORKER_PROCESS = packagedModule(
  'node',
  resolve(root, 'src/cli/bench-worker-process.ts'),
  [
    "import { fileURLToPath } from 'node:url';",
    'export function benchWorkerProcess() {',
    '  return { args: [fileURLToPath(new URL(__WEBSLO_BENCH_WORKER__, import.meta.url))], cwd: process.cwd() };',
    '}',
  ].join('\n'),
  '__WEBSLO_BENCH_WORKER__',
  'bench-worker.js',
);

const common = {
  configFile: false,
  root,
  logLevel: 'warn',
  publicDir: false,
  // Dependencies read process.env.NODE_ENV; a page without a bundler has no `process`.
  define: { 'process.env.NODE_ENV': JSON.stringify('production') },
};
const buildCommon = {
  outDir,
  emptyOutDir: false,
  minify: false,
  sourcemap: false,
  copyPublicDir: false,
  reportCompressedSize: false,
};
const banner = `/* webslo ${pkg.version} (${pkg.license}). Generated by scripts/build-lib.mjs: do not edit. */`;

const started = Date.now();
rmSync(outDir, { recursive: true, force: true });

// 1. The worker: one file, everything inlined (a worker cannot share the page's chunks).
await build({
  ...common,
  plugins: [keepDawnOutOfTheBrowser(), keepNodeImportsComputed()],
  build: {
    ...buildCommon,
    target: 'es2022',
    lib: { entry: resolve(root, 'src/worker/engine-worker.ts'), formats: ['es'], fileName: () => WORKER_FILE },
    rolldownOptions: { optimization: { inlineConst: false }, output: { codeSplitting: false, keepNames: true, banner } },
  },
});

// 2. The browser entry: dependencies bundled; what only `worker: false` or the worker path needs
// is loaded on demand (chunks/).
await build({
  ...common,
  plugins: [keepDawnOutOfTheBrowser(), keepNodeImportsComputed(), packagedWorkerSpawn('browser')],
  build: {
    ...buildCommon,
    target: 'es2022',
    lib: { entry: resolve(root, 'src/index.ts'), formats: ['es'], fileName: () => 'index.js' },
    // 'strict': the entry exports its public API only; shared code goes to a chunk, not the entry.
    rolldownOptions: { preserveEntrySignatures: 'strict', optimization: { inlineConst: false }, output: { keepNames: true, banner, chunkFileNames: 'chunks/[name].js' } },
  },
});

// 3. The Node entry: runtime dependencies and the optional peer 'webgpu' stay imports.
const external = [...Object.keys(pkg.dependencies ?? {}), ...Object.keys(pkg.peerDependencies ?? {})];
const isExternal = (id) => id.startsWith('node:') || external.some((d) => id === d || id.startsWith(`${d}/`));
await build({
  ...common,
  define: {},
  plugins: [keepNodeImportsComputed(), packagedWorkerSpawn('node'), NODE_PROMPT_SPAWN, BENCH_WORKER_PROCESS],
  ssr: { target: 'node', external },
  build: {
    ...buildCommon,
    outDir: resolve(outDir, 'node'),
    target: 'node20',
    ssr: true,
    rolldownOptions: {
      // The entry; the prompt worker a worker thread runs (host/prompt-worker-node.ts); the `webslo`
      // command (cli/bin.ts) and the bench-sched worker process it starts (sim/bench-worker-main.ts).
      input: {
        index: resolve(root, 'src/index.ts'),
        'prompt-worker': resolve(root, 'src/host/prompt-worker-node.ts'),
        cli: resolve(root, 'src/cli/bin.ts'),
        'bench-worker': resolve(root, 'src/sim/bench-worker-main.ts'),
      },
      preserveEntrySignatures: 'strict',
      external: isExternal,
      output: { format: 'esm', entryFileNames: '[name].js', chunkFileNames: 'chunks/[name].js', keepNames: true, banner },
    },
  },
});

// The `webslo` command (package.json "bin") is run as a program: a shebang, and executable.
const cli = join(outDir, 'node', 'cli.js');
writeFileSync(cli, `#!/usr/bin/env node\n${readFileSync(cli, 'utf8')}`);
chmodSync(cli, 0o755);

// 4. Declarations.
const tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc');
const types = spawnSync(process.execPath, [tsc, '-p', resolve(root, 'tsconfig.lib.json')], { cwd: root, stdio: 'inherit' });
if (types.status !== 0) {
  console.error('build-lib: tsc -p tsconfig.lib.json failed');
  process.exit(1);
}

// The entries export the public API only (once, the Node entry also exported internals under
// minified names, `parseSafetensors as _`, because chunks imported shared code from it).
for (const entry of ['index.js', 'node/index.js']) {
  const text = readFileSync(join(outDir, entry), 'utf8');
  const names = [...text.matchAll(/^export \{([^}]*)\}/gm)].flatMap((m) =>
    m[1].split(',').map((x) =>
      x
        .trim()
        .split(/\s+as\s+/)
        .pop(),
    ),
  );
  const odd = names.filter((n) => n && !/^[A-Z][A-Za-z0-9]+$|^[a-z][A-Za-z0-9]{3,}$|^DEFAULT_APP$|^SCHEDULER_[A-Z_]+$/.test(n));
  if (odd.length > 0) {
    console.error(`build-lib: lib/${entry} exports internal names: ${odd.join(', ')} (shared code must go to a chunk)`);
    process.exit(1);
  }
}

// The browser files must import nothing bare (no bundler, no import map needed), not even a
// Node-only module that is never loaded in a browser.
const bare = /(?:^|[\s;})])(?:import|export)\s[^'"]*?from\s*['"]([^'"./][^'"]*)['"]|\bimport\s*\(\s*(?:\/\*[\s\S]*?\*\/\s*)*['"]([^'"./][^'"]*)['"]\s*\)/gm;
const listJs = (dir) => readdirSync(dir).flatMap((f) => (statSync(join(dir, f)).isDirectory() ? (f === 'node' || f === 'types' ? [] : listJs(join(dir, f))) : f.endsWith('.js') ? [join(dir, f)] : []));
for (const file of listJs(outDir)) {
  for (const m of readFileSync(file, 'utf8').matchAll(bare)) {
    console.error(`build-lib: ${relative(root, file)} imports '${m[1] ?? m[2]}': the browser build must be self-contained`);
    process.exit(1);
  }
}

const kib = (f) => `${(statSync(resolve(outDir, f)).size / 1024).toFixed(0)} KiB`;
console.log(`lib/index.js ${kib('index.js')}, lib/worker.js ${kib(WORKER_FILE)}, lib/node/index.js ${kib('node/index.js')}, lib/types/; built in ${((Date.now() - started) / 1000).toFixed(1)} s`);
