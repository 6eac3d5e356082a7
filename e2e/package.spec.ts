// The npm package as a user gets it: `npm pack` of this repository (prepack builds lib/ with
// scripts/build-lib.mjs), installed by npm into fresh copies of examples/ (and one scratch page
// from e2e/package/), then run:
//  - examples/browser (the README's browser quickstart) in Chromium (SwiftShader WebGPU, the engine
//    in the package's worker) as a Vite production build (vite build + vite preview) and on the
//    Vite dev server (the package pre-bundled by its dependency optimizer);
//  - a static page with no bundler (an import map to node_modules/webslo/lib/index.js);
//  - examples/node (the README's Node quickstart) and examples/node-openai (the official client
//    through engineFetch) in Node, in-process on Dawn (the `webgpu` package);
//  - the declarations type-checked in strict browser and Node TypeScript projects.
// The examples name 'Qwen/Qwen2.5-0.5B-Instruct' on the hub and run as written: the browser's
// requests to huggingface.co are answered by the test from the tiny-qwen2 fixture (nothing leaves
// the machine), and Node's go to a local hub server named by HF_ENDPOINT.

import { test as base } from '@playwright/test';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ChatCompletionChunk } from '../src/index.js';
import { fixtureDir } from '../test/helpers/fixtures.js';
import { expect, test, type PageWatch } from './fixtures.js';
import { startHubServer, type HubServer } from '../test/helpers/hub-server.js';
import { cleanEnv, exampleApp, packRepository, ROOT, run, runAsync, scratchApp, staticServer, viteRun, viteServer, type StaticServer } from './package/scratch.js';
import type { Page, TestInfo } from '@playwright/test';

type PageResult =
  | { ok: true; chunks: ChatCompletionChunk[]; model: string; adapter: string; promptEncoding: string; loadMs: number; totalMs: number }
  | { ok: false; error: { name: string; message: string; stack: string } };

declare global {
  interface Window {
    __websloProfile?: unknown;
    __websloResult?: PageResult;
  }
}

const MODEL = 'tiny-qwen2';
// The paper's profile relabelled for the fixture's depth (createEngine refuses a profile measured on
// a model with other layers): the paper's step times, planned for this model.
const PROFILE: unknown = {
  ...(JSON.parse(readFileSync(join(ROOT, 'src/sim/profiles/paper-opt-6.7b.json'), 'utf8')) as object),
  layers: (JSON.parse(readFileSync(join(fixtureDir(MODEL), 'config.json'), 'utf8')) as { num_hidden_layers: number }).num_hidden_layers,
};
/** Chromium logs each fetch answered 404: generation_config.json, which the fixture lacks. */
const LOGGED_404 = /Failed to load resource: the server responded with a status of 404/;

/** The hub repo the examples name; served from the fixture. */
const HUB_REPO = 'Qwen/Qwen2.5-0.5B-Instruct';

interface Scratch {
  dir: string;
  tarball: string;
  browserApp: string;
  staticApp: string;
  nodeApp: string;
  openaiApp: string;
  server: StaticServer;
  hub: HubServer;
}
let scratch: Scratch | null = null;

base.beforeAll(async () => {
  base.setTimeout(400_000);
  const dir = mkdtempSync(join(tmpdir(), 'webslo-package-'));
  try {
    const packDir = join(dir, 'pack');
    mkdirSync(packDir);
    const pack = packRepository(packDir);
    const browser = exampleApp(dir, 'browser', pack.tarball);
    const stat = scratchApp(dir, 'static-app', 'static-app', pack.tarball, { withChatPage: true });
    const node = exampleApp(dir, 'node', pack.tarball);
    const openai = exampleApp(dir, 'node-openai', pack.tarball);
    console.log(`[package] npm pack ${pack.seconds.toFixed(1)} s; npm install ${[browser, stat, node, openai].map((a) => a.seconds.toFixed(1)).join(' + ')} s (${dir})`);
    // The static app's own server also serves the fixture models.
    const server = await staticServer(stat.dir);
    const hub = await startHubServer({ [HUB_REPO]: fixtureDir(MODEL) });
    scratch = { dir, tarball: pack.tarball, browserApp: browser.dir, staticApp: stat.dir, nodeApp: node.dir, openaiApp: openai.dir, server, hub };
  } catch (e) {
    if (!process.env.WEBSLO_KEEP_SCRATCH) rmSync(dir, { recursive: true, force: true });
    throw e;
  }
});

base.afterAll(async () => {
  if (!scratch) return;
  await scratch.server.close();
  await scratch.hub.close();
  if (!process.env.WEBSLO_KEEP_SCRATCH) rmSync(scratch.dir, { recursive: true, force: true });
  scratch = null;
});

function ready(): Scratch {
  if (!scratch) throw new Error('the scratch apps were not made (see beforeAll)');
  return scratch;
}

/** Opens url, waits for the page's streamed completion and checks it; the worker URLs it started. */
async function chatInPage(page: Page, watch: PageWatch, url: string, testInfo: TestInfo): Promise<{ workers: string[]; requests: string[] }> {
  const workers: string[] = [];
  const requests: string[] = [];
  page.on('worker', (w) => workers.push(w.url()));
  page.context().on('request', (r) => requests.push(r.url()));
  await page.addInitScript((profile) => {
    window.__websloProfile = profile;
  }, PROFILE);
  await page.goto(url);
  await expect(page.getByTestId('status')).toHaveAttribute('data-state', /^(done|failed)$/, { timeout: 170_000 });
  const result = await page.evaluate(() => window.__websloResult);
  await testInfo.attach('result.json', { body: JSON.stringify({ result, workers, requests }, null, 2), contentType: 'application/json' });
  if (!result?.ok) throw new Error(`the page failed: ${JSON.stringify(result?.error ?? result)}`);

  const { chunks } = result;
  const text = chunks.map((c) => c.choices[0]?.delta.content ?? '').join('');
  console.log(`[package] ${url}: ${chunks.length} chunks, ${JSON.stringify(text)}; load ${Math.round(result.loadMs)} ms, total ${Math.round(result.totalMs)} ms on ${result.adapter}`);
  expect(chunks.length).toBeGreaterThan(1);
  for (const c of chunks) {
    expect(c.object).toBe('chat.completion.chunk');
    expect(c.id).toBe(chunks[0]!.id);
  }
  expect(chunks[0]!.choices[0]!.delta.role).toBe('assistant');
  const withChoices = chunks.filter((c) => c.choices.length > 0);
  expect(withChoices.slice(0, -1).every((c) => c.choices[0]!.finish_reason === null)).toBe(true);
  expect(['stop', 'length']).toContain(withChoices.at(-1)!.choices[0]!.finish_reason);
  expect(typeof text).toBe('string');
  expect(text.length).toBeGreaterThan(0);
  expect(result.model).toBe(`${new URL(url).origin}/models/${MODEL}/resolve/main`);
  // Chat templates and tokenization ran in the engine worker's own prompt worker, off the step loop.
  expect(result.promptEncoding).toBe('worker');

  // The engine ran in the package's worker, which started its prompt worker from the same script;
  // nothing left this machine; no errors but the 404.
  expect(workers).toHaveLength(2);
  expect(workers[1]).toBe(workers[0]);
  expect(watch.blockedRequests).toEqual([]);
  expect(requests.filter((r) => !r.startsWith(new URL(url).origin))).toEqual([]);
  expect(watch.consoleErrors.filter((e) => !LOGGED_404.test(e))).toEqual([]);
  return { workers, requests };
}

/**
 * Opens examples/browser at url as it is written (the hub model), answering its requests to
 * huggingface.co from the fixture, and waits for its status line to say 'done'; the worker URLs.
 */
async function exampleInPage(page: Page, watch: PageWatch, url: string, testInfo: TestInfo): Promise<{ workers: string[]; requests: string[] }> {
  const workers: string[] = [];
  const requests: string[] = [];
  const served: string[] = [];
  page.on('worker', (w) => workers.push(w.url()));
  page.context().on('request', (r) => requests.push(r.url()));
  // Registered after the offline guard (e2e/fixtures.ts), so it answers first; workers included.
  await page.context().route('https://huggingface.co/**', async (route) => {
    const m = new RegExp(`^/${HUB_REPO}/resolve/main/([\\w.-]+)$`).exec(new URL(route.request().url()).pathname);
    const file = m ? join(fixtureDir(MODEL), m[1]!) : null;
    if (!file || !existsSync(file)) return route.fulfill({ status: 404, headers: { 'x-error-code': 'EntryNotFound' }, body: 'Entry not found' });
    served.push(m![1]!);
    return route.fulfill({ status: 200, headers: { 'content-type': 'application/octet-stream', 'access-control-allow-origin': '*' }, body: readFileSync(file) });
  });
  // A module's uncaught error reaches 'pageerror' as its name only: the page logs it whole first.
  let logged = '';
  page.on('console', (m) => (logged += `${m.type()}: ${m.text()}\n`));
  await page.addInitScript(() => {
    addEventListener('error', (e) => console.log(`uncaught ${String(e.error?.name)}: ${String(e.error?.message)}`));
  });
  const pageError = new Promise<never>((_, reject) => page.on('pageerror', (e) => reject(new Error(`the example failed: ${e.name}: ${e.message}\n${logged}`))));
  pageError.catch(() => {});
  await page.goto(url);
  await Promise.race([
    page
      .locator('#status')
      .filter({ hasText: /^done$/ })
      .waitFor({ timeout: 170_000 }),
    pageError,
  ]);
  const text = (await page.locator('#output').textContent()) ?? '';
  await testInfo.attach('result.json', { body: JSON.stringify({ text, served, workers, requests }, null, 2), contentType: 'application/json' });
  console.log(`[package] ${url}: ${JSON.stringify(text)}`);
  expect(text.length).toBeGreaterThan(0);
  expect(served).toEqual(expect.arrayContaining(['config.json', 'tokenizer.json', 'model.safetensors']));
  // The engine ran in the package's worker (and its prompt worker, the same script); nothing left
  // this machine; no errors but 404s.
  expect(workers).toHaveLength(2);
  expect(workers[1]).toBe(workers[0]);
  expect(watch.blockedRequests).toEqual([]);
  expect(requests.filter((r) => !r.startsWith(new URL(url).origin) && !r.startsWith('https://huggingface.co/'))).toEqual([]);
  expect(watch.consoleErrors.filter((e) => !LOGGED_404.test(e))).toEqual([]);
  return { workers, requests };
}

test.describe('the npm package in Chromium', () => {
  test('examples/browser as a Vite production build (vite build, vite preview)', async ({ page, watch }, testInfo) => {
    test.setTimeout(240_000);
    const s = ready();
    const built = viteRun(s.browserApp, ['build']);
    await testInfo.attach('vite-build.txt', { body: built.stdout + built.stderr, contentType: 'text/plain' });
    // Vite copied the package's worker bundle as an asset (not re-bundled, not inlined).
    const workerAssets = readdirSync(join(s.browserApp, 'dist', 'assets')).filter((f) => /^worker-[\w-]{8}\.js$/.test(f));
    expect(workerAssets).toHaveLength(1);
    const shipped = readFileSync(join(s.browserApp, 'node_modules', 'webslo', 'lib', 'worker.js'), 'utf8');
    expect(readFileSync(join(s.browserApp, 'dist', 'assets', workerAssets[0]!), 'utf8') === shipped).toBe(true);
    expect(built.stdout + built.stderr).not.toMatch(/externalized for browser compatibility|node:fs|webgpu/);
    const server = await viteServer(s.browserApp, 'preview');
    try {
      const { workers } = await exampleInPage(page, watch, `${server.origin}/`, testInfo);
      expect(workers[0]).toBe(`${server.origin}/assets/${workerAssets[0]}`);
    } finally {
      await server.close();
    }
  });

  test('examples/browser on the Vite dev server (the package pre-bundled by the dependency optimizer)', async ({ page, watch }, testInfo) => {
    test.setTimeout(240_000);
    const s = ready();
    const server = await viteServer(s.browserApp, 'dev');
    try {
      const { workers, requests } = await exampleInPage(page, watch, `${server.origin}/`, testInfo);
      // Served from the optimizer's bundle, the worker still comes from the package's folder.
      expect(requests.some((r) => new URL(r).pathname === '/node_modules/.vite/deps/webslo.js')).toBe(true);
      expect(new URL(workers[0]!).pathname).toBe('/node_modules/webslo/lib/worker.js');
    } finally {
      await testInfo.attach('vite-dev.txt', { body: server.output(), contentType: 'text/plain' });
      await server.close();
    }
  });

  test('a static page with no bundler (an import map to node_modules/webslo/lib/index.js)', async ({ page, watch }, testInfo) => {
    test.setTimeout(240_000);
    const s = ready();
    const { workers } = await chatInPage(page, watch, `${s.server.origin}/index.html`, testInfo);
    expect(workers[0]).toBe(`${s.server.origin}/node_modules/webslo/lib/worker.js`);
    // The page loaded only the package's files and the model: no bare specifier needed resolving.
    const files = s.server.paths.filter((p) => !p.startsWith('/models/'));
    expect(files.filter((p) => !['/index.html', '/chat.js', '/favicon.ico'].includes(p) && !p.startsWith('/node_modules/webslo/lib/'))).toEqual([]);
  });
});

base.describe('the npm package in Node', () => {
  /** Runs an example's script as written, its hub being the local one; stdout. */
  async function runExample(app: string, cacheName: string): Promise<string> {
    const s = ready();
    s.hub.requests.length = 0;
    // Playwright's FORCE_COLOR would make console.log colour the numbers it prints.
    const env = cleanEnv({ HF_ENDPOINT: s.hub.endpoint, WEBSLO_CACHE_DIR: join(s.dir, cacheName), FORCE_COLOR: '0', NO_COLOR: '1' });
    const r = await runAsync(process.execPath, ['chat.mjs'], app, { timeoutMs: 150_000, env });
    console.log(`[package] ${app}: ${r.seconds.toFixed(1)} s\n${r.stdout.trim()}`);
    // It downloaded the model from the hub it was pointed at (HF_ENDPOINT), into its cache directory.
    const files = s.hub.requests.filter((q) => q.method === 'GET').map((q) => q.path.split('/resolve/main/')[1]);
    expect(files).toEqual(expect.arrayContaining(['config.json', 'tokenizer.json', 'model.safetensors']));
    expect(s.hub.requests.every((q) => q.path.startsWith(`/${HUB_REPO}/resolve/main/`))).toBe(true);
    expect(existsSync(join(s.dir, cacheName))).toBe(true);
    return r.stdout;
  }

  base('examples/node runs a streamed completion in-process on Dawn (the webgpu package)', async () => {
    base.setTimeout(180_000);
    const out = await runExample(ready().nodeApp, 'cache-node');
    const lines = out.trimEnd().split('\n');
    // The streamed text, then the app's numbers from engine.stats().
    expect(lines.slice(0, -1).join('\n').length).toBeGreaterThan(0);
    expect(lines.at(-1)).toMatch(/^TTFT \d+ ms, TPOT \d+\.\d ms, SLO attainment (1|0(\.\d+)?)$/);
  });

  base('examples/node-openai: the official openai client through engineFetch', async () => {
    base.setTimeout(180_000);
    const out = await runExample(ready().openaiApp, 'cache-openai');
    // The message's content, then the usage object as console.log prints it.
    const usageAt = out.lastIndexOf('\n{');
    expect(out.slice(usageAt)).toMatch(/completion_tokens: [1-9]\d*/);
    expect(out.slice(0, usageAt).trim().length).toBeGreaterThan(0);
  });

  base('the Node entry encodes prompts on a worker thread (lib/node/prompt-worker.js); the process exits, unloaded or not', async () => {
    base.setTimeout(120_000);
    const s = ready();
    writeFileSync(join(s.dir, 'profile.json'), JSON.stringify(PROFILE));
    writeFileSync(
      join(s.nodeApp, 'probe.mjs'),
      [
        "import { readFileSync } from 'node:fs';",
        "import { createEngine } from 'webslo';",
        'const [model, profile, mode] = process.argv.slice(2);',
        "const engine = await createEngine({ model, profile: JSON.parse(readFileSync(profile, 'utf8')), cache: false });",
        "engine.app('chat', { ttftMs: 60000, tpotMs: 10000 });",
        "const c = await engine.chat.completions.create({ app: 'chat', messages: [{ role: 'user', content: 'Hello' }], max_tokens: 4 });",
        "if (mode !== 'no-unload') await engine.unload();",
        'console.log(JSON.stringify({ promptEncoding: engine.info.promptEncoding, usage: c.usage }));',
        '',
      ].join('\n'),
    );
    // No process.exit in the script: it must end by itself once the engine is unloaded.
    const r = await runAsync(process.execPath, ['probe.mjs', fixtureDir(MODEL), join(s.dir, 'profile.json')], s.nodeApp, { timeoutMs: 100_000 });
    const out = JSON.parse(r.stdout.trim().split('\n').at(-1)!) as { promptEncoding: string; usage: { prompt_tokens: number; completion_tokens: number } };
    expect(out.promptEncoding).toBe('worker');
    expect(out.usage.prompt_tokens).toBeGreaterThan(0);
    expect(out.usage.completion_tokens).toBe(4);
    // A program that never unloads its engine still ends: the idle prompt worker holds nothing open.
    const kept = await runAsync(process.execPath, ['probe.mjs', fixtureDir(MODEL), join(s.dir, 'profile.json'), 'no-unload'], s.nodeApp, { timeoutMs: 60_000 });
    expect(JSON.parse(kept.stdout.trim().split('\n').at(-1)!)).toMatchObject({ promptEncoding: 'worker' });
  });

  base('the `webslo` command runs from the installed package (npx webslo): help, generate, bench-sched', async () => {
    base.setTimeout(180_000);
    const s = ready();
    const npx = (...args: string[]): Promise<{ stdout: string; stderr: string }> => runAsync('npx', ['--no-install', 'webslo', ...args], s.nodeApp, { timeoutMs: 120_000 });
    expect((await npx('--help')).stdout).toMatch(/^usage:\n {2}webslo logits/);
    // Built JavaScript: no Vite, no TypeScript at run time (the package ships neither).
    const generated = JSON.parse((await npx('generate', '--model', fixtureDir(MODEL), '--prompt', 'Hello world', '--max-tokens', '4', '--json')).stdout) as { token_ids: number[]; text: string };
    expect(generated.token_ids).toHaveLength(4);
    const bench = await npx('bench-sched', '--scenario', 'chatbot', '--requests', '40', '--seeds', '1', '--workers', '1', '--scheduler', 'slos,fcfs', '--json');
    const rows = JSON.parse(bench.stdout) as { scenario: string; scheduler: string; capacity_rps: number }[];
    expect(rows.map((r) => r.scheduler).sort()).toEqual(['fcfs', 'slos']);
    const bad = await npx('bench-sched', '--profle', 'paper').catch((e: Error) => e.message);
    expect(bad).toMatch(/exit 2[\s\S]*unknown option --profle/);
  });

  base('the declarations type-check in a strict TypeScript project', () => {
    const s = ready();
    writeFileSync(
      join(s.nodeApp, 'check.ts'),
      [
        "import { createEngine, Engine, RequestDeclinedError, type ChatCompletionChunk } from 'webslo';",
        "const engine: Engine = await createEngine({ model: 'org/model', profile: {}, cache: false });",
        "engine.app('chat', { ttftMs: 1000, tpotMs: 50 });",
        "const stream = await engine.chat.completions.create({ app: 'chat', messages: [{ role: 'user', content: 'Hi' }], stream: true });",
        'for await (const chunk of stream) {',
        '  const c: ChatCompletionChunk = chunk;',
        '  const text: string | null | undefined = c.choices[0]?.delta.content;',
        '  console.log(text, RequestDeclinedError.name);',
        '}',
        '',
      ].join('\n'),
    );
    const tsc = join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc');
    // A consumer's usual settings, but strict about the package's own declarations (skipLibCheck
    // off): a browser project (the DOM lib, no ambient types such as @webgpu/types to lean on),
    // and a Node project (no DOM lib, only @types/node; once: "Cannot find name 'Worker'").
    const browser = { lib: ['es2022', 'dom', 'dom.iterable'], types: [] };
    const node = { lib: ['es2022'], types: ['node'], typeRoots: [join(ROOT, 'node_modules', '@types')] };
    for (const [moduleResolution, env] of [
      ['bundler', browser],
      ['nodenext', browser],
      ['nodenext', node],
    ] as const) {
      const compilerOptions = { target: 'es2022', module: moduleResolution === 'bundler' ? 'esnext' : 'nodenext', moduleResolution, strict: true, noEmit: true, skipLibCheck: false, ...env };
      writeFileSync(join(s.nodeApp, 'tsconfig.json'), JSON.stringify({ compilerOptions, files: ['check.ts'] }));
      run(process.execPath, [tsc, '-p', '.'], s.nodeApp);
    }
  });
});
