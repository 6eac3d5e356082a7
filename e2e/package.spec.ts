// The npm package as a user gets it: `npm pack` of this repository (prepack builds lib/ with
// scripts/build-lib.mjs), installed by npm into fresh scratch apps made from e2e/package/, then a
// streamed chat completion of tiny-qwen2 in Chromium (SwiftShader WebGPU, the engine in the
// package's worker) three ways: a Vite production build (vite build + vite preview), the Vite dev
// server (the package pre-bundled by its dependency optimizer), and a static page with no bundler
// (an import map to node_modules/webslo/lib/index.js, served by a plain file server). The Node
// entry runs a completion in-process on Dawn (the `webgpu` package), and the declarations
// type-check in a strict TypeScript project. Vite is this repository's, run in each scratch app.

import { test as base } from '@playwright/test';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { ChatCompletion, ChatCompletionChunk } from '../src/index.js';
import { fixtureDir } from '../test/helpers/fixtures.js';
import { expect, test, type PageWatch } from './fixtures.js';
import { packRepository, ROOT, run, scratchApp, staticServer, viteRun, viteServer, type StaticServer } from './package/scratch.js';
import type { Page, TestInfo } from '@playwright/test';

type PageResult =
  | { ok: true; chunks: ChatCompletionChunk[]; model: string; adapter: string; loadMs: number; totalMs: number }
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

interface Scratch {
  dir: string;
  tarball: string;
  viteApp: string;
  staticApp: string;
  nodeApp: string;
  server: StaticServer;
}
let scratch: Scratch | null = null;

base.beforeAll(async () => {
  base.setTimeout(300_000);
  const dir = mkdtempSync(join(tmpdir(), 'webslo-package-'));
  try {
    const packDir = join(dir, 'pack');
    mkdirSync(packDir);
    const pack = packRepository(packDir);
    const vite = scratchApp(dir, 'vite-app', 'vite-app', pack.tarball, { withChatPage: true });
    const stat = scratchApp(dir, 'static-app', 'static-app', pack.tarball, { withChatPage: true });
    const node = scratchApp(dir, 'node-app', 'node-app', pack.tarball, { linkWebgpu: true });
    console.log(`[package] npm pack ${pack.seconds.toFixed(1)} s; npm install ${vite.seconds.toFixed(1)} + ${stat.seconds.toFixed(1)} + ${node.seconds.toFixed(1)} s (${dir})`);
    // The static app's own server also serves the fixture models; the Vite apps proxy /models to it.
    const server = await staticServer(stat.dir);
    scratch = { dir, tarball: pack.tarball, viteApp: vite.dir, staticApp: stat.dir, nodeApp: node.dir, server };
  } catch (e) {
    if (!process.env.WEBSLO_KEEP_SCRATCH) rmSync(dir, { recursive: true, force: true });
    throw e;
  }
});

base.afterAll(async () => {
  if (!scratch) return;
  await scratch.server.close();
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

  // The engine ran in the package's worker; nothing left this machine; no errors but the 404.
  expect(workers).toHaveLength(1);
  expect(watch.blockedRequests).toEqual([]);
  expect(requests.filter((r) => !r.startsWith(new URL(url).origin))).toEqual([]);
  expect(watch.consoleErrors.filter((e) => !LOGGED_404.test(e))).toEqual([]);
  return { workers, requests };
}

test.describe('the npm package in Chromium', () => {
  test('a Vite production build (vite build, vite preview)', async ({ page, watch }, testInfo) => {
    test.setTimeout(240_000);
    const s = ready();
    const env = { WEBSLO_FIXTURE_ORIGIN: s.server.origin };
    const built = viteRun(s.viteApp, ['build'], env);
    await testInfo.attach('vite-build.txt', { body: built.stdout + built.stderr, contentType: 'text/plain' });
    // Vite copied the package's worker bundle as an asset (not re-bundled, not inlined).
    const workerAssets = readdirSync(join(s.viteApp, 'dist', 'assets')).filter((f) => /^worker-[\w-]{8}\.js$/.test(f));
    expect(workerAssets).toHaveLength(1);
    const shipped = readFileSync(join(s.viteApp, 'node_modules', 'webslo', 'lib', 'worker.js'), 'utf8');
    expect(readFileSync(join(s.viteApp, 'dist', 'assets', workerAssets[0]!), 'utf8') === shipped).toBe(true);
    expect(built.stdout + built.stderr).not.toMatch(/externalized for browser compatibility|node:fs|webgpu/);
    const server = await viteServer(s.viteApp, 'preview', env);
    try {
      const { workers } = await chatInPage(page, watch, `${server.origin}/`, testInfo);
      expect(workers).toEqual([`${server.origin}/assets/${workerAssets[0]}`]);
    } finally {
      await server.close();
    }
  });

  test('the Vite dev server (the package pre-bundled by the dependency optimizer)', async ({ page, watch }, testInfo) => {
    test.setTimeout(240_000);
    const s = ready();
    const server = await viteServer(s.viteApp, 'dev', { WEBSLO_FIXTURE_ORIGIN: s.server.origin });
    try {
      const { workers, requests } = await chatInPage(page, watch, `${server.origin}/`, testInfo);
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
    expect(workers).toEqual([`${s.server.origin}/node_modules/webslo/lib/worker.js`]);
    // The page loaded only the package's files and the model: no bare specifier needed resolving.
    const files = s.server.paths.filter((p) => !p.startsWith('/models/'));
    expect(files.filter((p) => !['/index.html', '/chat.js', '/favicon.ico'].includes(p) && !p.startsWith('/node_modules/webslo/lib/'))).toEqual([]);
  });
});

base.describe('the npm package in Node', () => {
  base('the node entry runs a completion in-process on Dawn (the webgpu package)', async () => {
    base.setTimeout(120_000);
    const s = ready();
    const profilePath = join(s.dir, 'profile.json');
    writeFileSync(profilePath, JSON.stringify(PROFILE));
    const r = run(process.execPath, ['main.js', fixtureDir(MODEL), profilePath], s.nodeApp, { timeoutMs: 110_000 });
    const out = JSON.parse(r.stdout.trim().split('\n').at(-1)!) as { completion: ChatCompletion; entry: string; adapter: string };
    console.log(`[package] node: ${JSON.stringify(out.completion.choices[0]?.message.content)} in ${r.seconds.toFixed(1)} s on ${out.adapter}`);
    expect(out.entry).toBe(pathToFileURL(join(s.nodeApp, 'node_modules/webslo/lib/node/index.js')).href);
    expect(out.completion.object).toBe('chat.completion');
    const choice = out.completion.choices[0]!;
    expect(choice.message.role).toBe('assistant');
    expect(typeof choice.message.content).toBe('string');
    expect(choice.message.content!.length).toBeGreaterThan(0);
    expect(['stop', 'length']).toContain(choice.finish_reason);
    expect(out.completion.usage?.completion_tokens).toBeGreaterThan(0);
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
    for (const [moduleResolution, env] of [['bundler', browser], ['nodenext', browser], ['nodenext', node]] as const) {
      const compilerOptions = { target: 'es2022', module: moduleResolution === 'bundler' ? 'esnext' : 'nodenext', moduleResolution, strict: true, noEmit: true, skipLibCheck: false, ...env };
      writeFileSync(join(s.nodeApp, 'tsconfig.json'), JSON.stringify({ compilerOptions, files: ['check.ts'] }));
      run(process.execPath, [tsc, '-p', '.'], s.nodeApp);
    }
  });
});
