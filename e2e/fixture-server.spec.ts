// The fixture route of the preview server (e2e/fixture-server.ts): real files only, in the hub's
// URL layout, with the right Content-Length; the hub's 404 codes; no way out of test/fixtures; and
// nothing of it in the build. Requests go through node:http, which sends the path exactly as
// written ('..' included), unlike fetch and Playwright's request API, which normalise it first.

import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { createServer, request as httpRequest, type IncomingHttpHeaders } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { FIXTURE_MODELS, fixtureDir } from '../test/helpers/fixtures.js';
import { FIXTURE_ROUTE, fixtureModelsMiddleware } from './fixture-server.js';
import { expect, test } from './fixtures.js';

interface RawResponse {
  status: number;
  headers: IncomingHttpHeaders;
  body: Buffer;
}

function raw(baseURL: string, method: string, path: string): Promise<RawResponse> {
  const { hostname, port } = new URL(baseURL);
  return new Promise((resolve, reject) => {
    const req = httpRequest({ host: hostname, port, method, path }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end();
  });
}

const DIST = fileURLToPath(new URL('../dist', import.meta.url));

const fileUrl = (model: string, file: string): string => `${FIXTURE_ROUTE}/${model}/resolve/main/${file}`;

test.describe('fixture models on the preview server', () => {
  let base: string;
  test.beforeEach(({ baseURL }) => {
    if (!baseURL) throw new Error('no baseURL in playwright.config.ts');
    base = baseURL;
  });

  test('serves every fixture file with its size as Content-Length, and its exact bytes', async () => {
    for (const model of FIXTURE_MODELS) {
      for (const file of readdirSync(fixtureDir(model))) {
        const size = statSync(join(fixtureDir(model), file)).size;
        const head = await raw(base, 'HEAD', fileUrl(model, file));
        expect(head.status, `HEAD ${model}/${file}`).toBe(200);
        expect(head.headers['content-length'], `HEAD ${model}/${file}`).toBe(String(size));
        expect(head.body.length).toBe(0);
      }
    }
    for (const [model, file, type] of [
      ['tiny-qwen2', 'config.json', 'application/json; charset=utf-8'],
      ['tiny-llama3', 'model.safetensors', 'application/octet-stream'],
    ] as const) {
      const res = await raw(base, 'GET', fileUrl(model, file));
      expect(res.status).toBe(200);
      expect(res.headers['content-type']).toBe(type);
      expect(res.headers['content-length']).toBe(String(res.body.length));
      expect(res.body.equals(readFileSync(join(fixtureDir(model), file))), `${model}/${file} bytes`).toBe(true);
    }
  });

  test("answers the hub's 404s for a missing file, model or revision", async () => {
    const cases: [string, string][] = [
      [fileUrl('tiny-qwen2', 'generation_config.json'), 'EntryNotFound'],
      [fileUrl('tiny-qwen2', 'model.safetensors.index.json'), 'EntryNotFound'],
      [fileUrl('tiny-llama3', 'tokenizer.json'), 'EntryNotFound'],
      [`${FIXTURE_ROUTE}/tiny-gpt9/resolve/main/config.json`, 'RepositoryNotFound'],
      [`${FIXTURE_ROUTE}/tiny-qwen2/resolve/refs%2Fpr%2F1/config.json`, 'RevisionNotFound'],
      [`${FIXTURE_ROUTE}/tiny-qwen2/resolve/v2/config.json`, 'RevisionNotFound'],
    ];
    for (const [path, code] of cases) {
      const res = await raw(base, 'GET', path);
      expect([res.status, res.headers['x-error-code']], path).toEqual([404, code]);
    }
    // Not the hub layout at all: 404 without a code.
    for (const path of [FIXTURE_ROUTE, `${FIXTURE_ROUTE}/tiny-qwen2`, `${FIXTURE_ROUTE}/tiny-qwen2/blob/main/config.json`]) {
      const res = await raw(base, 'GET', path);
      expect([res.status, res.headers['x-error-code']], path).toEqual([404, undefined]);
    }
  });

  test('never leaves test/fixtures: traversal, directories and odd methods are refused', async () => {
    const refused = [
      `${FIXTURE_ROUTE}/tiny-qwen2/resolve/main/../../../../package.json`,
      `${FIXTURE_ROUTE}/../package.json`,
      `${FIXTURE_ROUTE}/tiny-qwen2/resolve/main/%2e%2e/README.md`,
      `${FIXTURE_ROUTE}/tiny-qwen2/resolve/main/..%2F..%2F..%2Fpackage.json`,
      `${FIXTURE_ROUTE}/..%2Fhelpers/resolve/main/fixtures.ts`,
      `${FIXTURE_ROUTE}/tiny-qwen2/resolve/main/.%2Fconfig.json`,
      `${FIXTURE_ROUTE}/tiny-qwen2/resolve/main/..%5C..%5Cpackage.json`,
      `${FIXTURE_ROUTE}/tiny-qwen2/resolve/main/`,
      `${FIXTURE_ROUTE}/tiny-qwen2/resolve/main//config.json`,
      `${FIXTURE_ROUTE}/tiny-qwen2/resolve/main/%ZZ`,
      `${FIXTURE_ROUTE}/tiny-qwen2/resolve/main/config.json%00`,
    ];
    for (const path of refused) {
      const res = await raw(base, 'GET', path);
      expect(res.status, path).toBe(400);
      expect(res.body.toString(), path).not.toContain('"name"');
    }
    const post = await raw(base, 'POST', fileUrl('tiny-qwen2', 'config.json'));
    expect([post.status, post.headers['allow']]).toEqual([405, 'GET, HEAD']);
    // A folder that is not a model folder's file is not served as one.
    expect((await raw(base, 'GET', fileUrl('tiny-qwen2', 'nested/config.json'))).status).toBe(404);
  });

  test("serves the demo page's generated model as a plain folder, with 404s for missing files", async () => {
    const demo = fileURLToPath(new URL('../public/models/webslo-demo', import.meta.url));
    const config = await raw(base, 'GET', `${FIXTURE_ROUTE}/webslo-demo/config.json`);
    expect(config.status).toBe(200);
    expect(config.body.equals(readFileSync(join(demo, 'config.json')))).toBe(true);
    const head = await raw(base, 'HEAD', `${FIXTURE_ROUTE}/webslo-demo/model.safetensors`);
    expect(head.headers['content-length']).toBe(String(statSync(join(demo, 'model.safetensors')).size));
    // Not the preview server's SPA fallback (index.html with 200): optional files are really absent.
    for (const path of ['generation_config.json', 'model.safetensors.index.json', '../tiny-qwen2/config.json']) {
      expect((await raw(base, 'GET', `${FIXTURE_ROUTE}/webslo-demo/${path}`)).status, path).toBe(path.startsWith('..') ? 400 : 404);
    }
  });

  test('the fixtures are served from disk, not shipped in the build', () => {
    const files: string[] = [];
    const walk = (dir: string): void => {
      for (const e of readdirSync(dir, { withFileTypes: true })) {
        if (e.isDirectory()) walk(join(dir, e.name));
        else files.push(join(dir, e.name));
      }
    };
    walk(DIST);
    expect(files.length).toBeGreaterThan(0);
    // The demo page's own generated model (public/models/webslo-demo) is shipped on purpose: the
    // built page runs offline. No fixture is.
    const demoModel = join(DIST, 'models', 'webslo-demo');
    const shipped = files.filter((f) => !f.startsWith(demoModel + sep));
    // Model files by name (a code chunk may be named after src/model/safetensors.ts: that is code).
    expect(shipped.filter((f) => /\.safetensors$|reference\.json$|tokenizer(_config)?\.json$/.test(f) || f.startsWith(join(DIST, 'models')))).toEqual([]);
    const total = shipped.reduce((sum, f) => sum + statSync(f).size, 0);
    // Code and its source maps (4.3 MB with the scheduler registry and paper baselines): under 5 MiB,
    // still below the smallest fixture (tiny-qwen3b's weights, 6.6 MB) should one slip in unnamed.
    expect(total, 'bytes in dist/').toBeLessThan(5 << 20);
  });
});

test('the middleware serves only regular files inside the model folder (symlinks out are absent)', async () => {
  // The same middleware on a bare node:http server over a scratch folder with links and subfolders.
  const root = mkdtempSync(join(tmpdir(), 'webslo-fixture-server-'));
  const server = createServer((req, res) =>
    fixtureModelsMiddleware(root)(req, res, () => {
      res.statusCode = 418;
      res.end('passed on');
    }),
  );
  try {
    mkdirSync(join(root, 'm', 'sub'), { recursive: true });
    writeFileSync(join(root, 'm', 'config.json'), '{"a":1}');
    writeFileSync(join(root, 'm', 'sub', 'x.bin'), new Uint8Array(1000));
    writeFileSync(join(root, 'secret.txt'), 'outside the model folder');
    symlinkSync(join(root, 'secret.txt'), join(root, 'm', 'escape.txt'));
    symlinkSync(join(root, 'm', 'config.json'), join(root, 'm', 'alias.json'));
    symlinkSync(join(root, 'm', 'missing'), join(root, 'm', 'dangling.json'));
    await new Promise<void>((done) => server.listen(0, '127.0.0.1', done));
    const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    const get = async (path: string): Promise<[number, string | undefined, string | undefined]> => {
      const res = await raw(base, 'GET', path);
      return [res.status, res.headers['content-length'], res.headers['x-error-code'] as string | undefined];
    };
    expect(await get('/models/m/resolve/main/config.json')).toEqual([200, '7', undefined]);
    expect(await get('/models/m/resolve/main/alias.json')).toEqual([200, '7', undefined]);
    expect(await get('/models/m/resolve/main/sub/x.bin')).toEqual([200, '1000', undefined]);
    expect(await get('/models/m/resolve/main/sub')).toEqual([404, expect.any(String), 'EntryNotFound']);
    expect(await get('/models/m/resolve/main/escape.txt')).toEqual([404, expect.any(String), 'EntryNotFound']);
    expect(await get('/models/m/resolve/main/dangling.json')).toEqual([404, expect.any(String), 'EntryNotFound']);
    expect(await get('/models/secret.txt/resolve/main/x')).toEqual([404, expect.any(String), 'RepositoryNotFound']);
    expect(await get('/models/m/resolve/main/../../secret.txt')).toEqual([400, expect.any(String), undefined]);
    // Everything off the route is passed on untouched.
    expect((await get('/modelsfoo/m/resolve/main/config.json'))[0]).toBe(418);
    expect((await get('/index.html'))[0]).toBe(418);
  } finally {
    server.close();
    rmSync(root, { recursive: true, force: true });
  }
});
