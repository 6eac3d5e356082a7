// Serves the fixture model folders (test/fixtures/<name>/<file>) from the Vite dev and preview
// servers in the Hugging Face hub's URL layout, so browser code loads them exactly as it would a
// hub repo or a mirror: hubSource(name, { endpoint: `${origin}/models` }) or
// httpSource(`${origin}/models/<name>/resolve/main`). Nothing is copied into public/ or dist/.
//
//   GET|HEAD /models/<name>/resolve/main/<file>   200 with Content-Length, streamed from disk
//   unknown <name>                                404, x-error-code: RepositoryNotFound
//   a revision other than main                    404, x-error-code: RevisionNotFound
//   a missing file (or a directory)               404, x-error-code: EntryNotFound
//   '..', '.', empty or encoded-slash segments    400 (never resolved against the disk)
//   other methods                                 405
//   GET|HEAD /models/<name>/<file>                  a plain folder public/models/<name> (the demo's
//                                                 generated model) when no fixture has that name
//
// Node-only: vite.config.ts imports it; browser code never does.

import { createReadStream } from 'node:fs';
import { realpath, stat } from 'node:fs/promises';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { join, sep } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { fileURLToPath } from 'node:url';
import type { Connect, Plugin } from 'vite';

/** The URL path the fixtures live under: `${FIXTURE_ROUTE}/<name>/resolve/main/<file>`. */
export const FIXTURE_ROUTE = '/models';
/** The one revision served (what hubSource asks for by default). */
export const FIXTURE_REVISION = 'main';
/** test/fixtures, relative to this file. */
export const FIXTURES_DIR = fileURLToPath(new URL('../test/fixtures', import.meta.url));
/** public/models: the demo's generated model folder(s), served as plain folders at /models/<name>/<file>. */
export const PUBLIC_MODELS_DIR = fileURLToPath(new URL('../public/models', import.meta.url));

const CONTENT_TYPES: Record<string, string> = {
  json: 'application/json; charset=utf-8',
  md: 'text/markdown; charset=utf-8',
  txt: 'text/plain; charset=utf-8',
};

/** A decoded path segment that may be joined onto a directory: no traversal, no separators. */
function plainSegment(s: string): boolean {
  return s !== '' && s !== '.' && s !== '..' && s.length <= 255 && ![...s].some((c) => c === '/' || c === '\\' || c.charCodeAt(0) < 0x20 || c.charCodeAt(0) === 0x7f);
}

function reply(res: ServerResponse, status: number, message: string, headers: Record<string, string> = {}): void {
  const body = `${message}\n`;
  res.writeHead(status, {
    'content-type': 'text/plain; charset=utf-8',
    'content-length': String(Buffer.byteLength(body)),
    'cache-control': 'no-store',
    ...headers,
  });
  res.end(body);
}

async function isDirectory(path: string): Promise<boolean> {
  try {
    return (await stat(path)).isDirectory();
  } catch {
    return false;
  }
}

/** The real path of a regular file, or null when there is none (missing, a directory, a dangling link). */
async function regularFile(path: string): Promise<{ real: string; size: number } | null> {
  try {
    const real = await realpath(path);
    const st = await stat(real);
    return st.isFile() ? { real, size: st.size } : null;
  } catch {
    return null;
  }
}

async function serve(root: string, req: IncomingMessage, res: ServerResponse): Promise<void> {
  // req.url is the raw request target (a client that does not normalise may send '..' as is).
  const pathname = (req.url ?? '/').split(/[?#]/, 1)[0]!;
  if (pathname === FIXTURE_ROUTE || pathname === `${FIXTURE_ROUTE}/`) return reply(res, 404, 'no model named');

  if (req.method !== 'GET' && req.method !== 'HEAD') return reply(res, 405, `${req.method ?? '?'} not allowed`, { allow: 'GET, HEAD' });

  let segments: string[];
  try {
    segments = pathname
      .slice(FIXTURE_ROUTE.length + 1)
      .split('/')
      .map(decodeURIComponent);
  } catch {
    return reply(res, 400, 'malformed percent-encoding');
  }
  // The revision is only compared, never joined onto a path: the hub sends 'refs/pr/1' encoded
  // as one segment. Every other segment must be plain.
  if (!segments.every((s, i) => (i === 2 ? s !== '' : plainSegment(s)))) {
    return reply(res, 400, 'not a plain path (empty, ".", ".." or separator segments)');
  }

  const [name, resolve, revision, ...file] = segments;
  // Not the hub layout and no fixture of that name: a plain folder under public/models/ (the demo
  // page's generated model, scripts/make-demo-model.mjs). Served here, not by Vite's static
  // handler, so a missing file is a 404 (the preview server's SPA fallback would answer index.html).
  if (name !== undefined && resolve !== 'resolve' && !(await isDirectory(join(root, name)))) {
    const folder = join(PUBLIC_MODELS_DIR, name);
    const inFolder = segments.slice(1);
    const hit = inFolder.length > 0 && (await isDirectory(folder)) ? await regularFile(join(folder, ...inFolder)) : null;
    if (!hit || !hit.real.startsWith((await realpath(folder)) + sep)) return reply(res, 404, `no file '${inFolder.join('/')}' in ${name}`);
    return sendFile(req, res, hit);
  }
  if (name === undefined || resolve !== 'resolve' || revision === undefined || file.length === 0) {
    return reply(res, 404, `expected ${FIXTURE_ROUTE}/<model>/resolve/${FIXTURE_REVISION}/<file>`);
  }
  const modelDir = join(root, name);
  if (!(await isDirectory(modelDir))) return reply(res, 404, `no fixture model '${name}'`, { 'x-error-code': 'RepositoryNotFound' });
  if (revision !== FIXTURE_REVISION) return reply(res, 404, `only revision '${FIXTURE_REVISION}'`, { 'x-error-code': 'RevisionNotFound' });

  const found = await regularFile(join(modelDir, ...file));
  // A symlink leading out of the model folder is served as absent, like any other non-file.
  const realModelDir = await realpath(modelDir);
  if (!found || !found.real.startsWith(realModelDir + sep)) {
    return reply(res, 404, `${name} has no file '${file.join('/')}'`, { 'x-error-code': 'EntryNotFound' });
  }

  return sendFile(req, res, found);
}

async function sendFile(req: IncomingMessage, res: ServerResponse, found: { real: string; size: number }): Promise<void> {
  const ext = found.real.slice(found.real.lastIndexOf('.') + 1).toLowerCase();
  res.writeHead(200, {
    'content-type': CONTENT_TYPES[ext] ?? 'application/octet-stream',
    'content-length': String(found.size),
    'cache-control': 'no-cache',
  });
  if (req.method === 'HEAD') {
    res.end();
    return;
  }
  await pipeline(createReadStream(found.real), res);
}

/** Connect middleware for FIXTURE_ROUTE; passes every other request on. */
export function fixtureModelsMiddleware(root: string = FIXTURES_DIR): Connect.NextHandleFunction {
  return (req, res, next) => {
    const url = req.url ?? '/';
    if (url !== FIXTURE_ROUTE && !url.startsWith(`${FIXTURE_ROUTE}/`) && !url.startsWith(`${FIXTURE_ROUTE}?`)) return next();
    serve(root, req, res).catch((e: unknown) => {
      if (res.headersSent) res.destroy();
      else reply(res, 500, `fixture server: ${e instanceof Error ? e.message : String(e)}`);
    });
  };
}

/** The Vite plugin: the same middleware on the dev server (npm start) and on vite preview (e2e). */
export function serveFixtureModels(root: string = FIXTURES_DIR): Plugin {
  return {
    name: 'webslo:serve-fixture-models',
    // Added directly (not from a returned hook), so it runs before Vite's own static handlers.
    configureServer(server) {
      server.middlewares.use(fixtureModelsMiddleware(root));
    },
    configurePreviewServer(server) {
      server.middlewares.use(fixtureModelsMiddleware(root));
    },
  };
}
