// Helpers of e2e/package.spec.ts: pack the repository, make scratch apps from examples/ and from the
// templates beside this file and install the tarball into them, serve them (a tiny static server, and Vite from
// this repository's node_modules run as a separate process), and serve the fixture models.
// Node-only; nothing here runs in a page.

import { spawn, spawnSync } from 'node:child_process';
import { cpSync, createReadStream, existsSync, mkdirSync, readdirSync, readFileSync, realpathSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { createServer as createHttpServer, type Server } from 'node:http';
import { createServer as createNetServer, type AddressInfo } from 'node:net';
import { extname, join, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { fixtureModelsMiddleware } from '../fixture-server.js';

/** The repository root (computed, never assumed). */
export const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const TEMPLATES = fileURLToPath(new URL('.', import.meta.url));
const VITE_BIN = join(ROOT, 'node_modules', 'vite', 'bin', 'vite.js');

/**
 * The environment for a nested npm or Vite: without what `npm run` exported for this repository
 * (npm_config_local_prefix would make `npm install` in a scratch folder install into the
 * repository), but with the registry, cache and proxy settings a CI machine may pass.
 */
export function cleanEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const keep = /^npm_config_(registry|cache|userconfig|globalconfig|cafile|ca|proxy|https_proxy|noproxy|strict_ssl|offline|prefer_offline|fetch_.*)$/i;
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) {
    if ((/^npm_/i.test(k) && !keep.test(k)) || k === 'INIT_CWD' || k === 'NODE_OPTIONS') continue;
    env[k] = v;
  }
  return { ...env, ...extra };
}

export interface RunResult {
  stdout: string;
  stderr: string;
  seconds: number;
}

/** Runs a command to completion; throws with its output if it fails. */
export function run(cmd: string, args: string[], cwd: string, options: { timeoutMs?: number; env?: NodeJS.ProcessEnv } = {}): RunResult {
  const started = Date.now();
  const r = spawnSync(cmd, args, { cwd, env: options.env ?? cleanEnv(), encoding: 'utf8', timeout: options.timeoutMs ?? 180_000, maxBuffer: 64 * 1024 * 1024 });
  const out = { stdout: r.stdout ?? '', stderr: r.stderr ?? '', seconds: (Date.now() - started) / 1000 };
  if (r.status !== 0) {
    const why = r.error ? String(r.error) : r.signal ? `signal ${r.signal}` : `exit ${r.status}`;
    throw new Error(`${cmd} ${args.join(' ')} (in ${cwd}) failed: ${why}\n--- stdout\n${out.stdout.slice(-4000)}\n--- stderr\n${out.stderr.slice(-4000)}`);
  }
  return out;
}

/** Runs a command to completion without blocking this process (a server here may be what it talks to). */
export function runAsync(cmd: string, args: string[], cwd: string, options: { timeoutMs?: number; env?: NodeJS.ProcessEnv } = {}): Promise<RunResult> {
  const started = Date.now();
  return new Promise((resolveRun, reject) => {
    const child = spawn(cmd, args, { cwd, env: options.env ?? cleanEnv(), stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), options.timeoutMs ?? 180_000);
    child.once('error', reject);
    child.once('close', (status, signal) => {
      clearTimeout(timer);
      const out = { stdout, stderr, seconds: (Date.now() - started) / 1000 };
      if (status === 0) return resolveRun(out);
      const why = signal ? `signal ${signal} (time limit ${options.timeoutMs ?? 180_000} ms?)` : `exit ${status}`;
      reject(new Error(`${cmd} ${args.join(' ')} (in ${cwd}) failed: ${why}\n--- stdout\n${stdout.slice(-4000)}\n--- stderr\n${stderr.slice(-4000)}`));
    });
  });
}

/** `npm pack` of the repository into dir (prepack builds lib/); the tarball's path. */
export function packRepository(dir: string): { tarball: string; seconds: number } {
  const r = run('npm', ['pack', '--pack-destination', dir], ROOT, { timeoutMs: 300_000 });
  const tarballs = readdirSync(dir).filter((f) => f.endsWith('.tgz'));
  if (tarballs.length !== 1) throw new Error(`npm pack left ${tarballs.length} tarballs in ${dir}: ${tarballs.join(', ')}\n${r.stdout}\n${r.stderr}`);
  return { tarball: join(dir, tarballs[0]!), seconds: r.seconds };
}

/**
 * A fresh app in dir/name from the template e2e/package/<template> (plus e2e/package/chat.js),
 * with the tarball installed by npm. `webgpu` links to this repository's copy (a native addon;
 * it is the package's optional peer, so npm installs nothing for it).
 */
export function scratchApp(dir: string, name: string, template: string, tarball: string, options: { withChatPage?: boolean; linkWebgpu?: boolean } = {}): { dir: string; seconds: number } {
  const app = join(dir, name);
  cpSync(join(TEMPLATES, template), app, { recursive: true });
  if (options.withChatPage) cpSync(join(TEMPLATES, 'chat.js'), join(app, 'chat.js'));
  const r = run('npm', ['install', '--no-audit', '--no-fund', '--prefer-offline', '--no-package-lock', tarball], app, { timeoutMs: 300_000 });
  if (options.linkWebgpu) {
    mkdirSync(join(app, 'node_modules'), { recursive: true });
    symlinkSync(realpathSync(join(ROOT, 'node_modules', 'webgpu')), join(app, 'node_modules', 'webgpu'), 'dir');
  }
  return { dir: app, seconds: r.seconds };
}

const EXAMPLES = join(ROOT, 'examples');

/**
 * examples/<name> as a user runs it: copied to dir/name, its `webslo` dependency pointed at the
 * tarball (the committed one names `npm pack`'s output at the repository root), and `npm install`.
 * Its `webgpu` dependency (Dawn, a 130 MB native addon) links to this repository's copy instead of a
 * second install of the same version.
 */
export function exampleApp(dir: string, name: string, tarball: string): { dir: string; seconds: number } {
  const app = join(dir, name);
  cpSync(join(EXAMPLES, name), app, { recursive: true, filter: (src) => !src.includes(`${sep}node_modules`) });
  const pkgPath = join(app, 'package.json');
  const pkg = JSON.parse(readFileSync(pkgPath, 'utf8')) as { dependencies: Record<string, string> };
  if (!pkg.dependencies['webslo']) throw new Error(`examples/${name}/package.json does not depend on webslo`);
  pkg.dependencies['webslo'] = `file:${tarball}`;
  const linkWebgpu = 'webgpu' in pkg.dependencies;
  delete pkg.dependencies['webgpu'];
  writeFileSync(pkgPath, JSON.stringify(pkg, null, 2));
  const r = run('npm', ['install', '--no-audit', '--no-fund', '--prefer-offline', '--no-package-lock'], app, { timeoutMs: 300_000 });
  if (linkWebgpu) symlinkSync(realpathSync(join(ROOT, 'node_modules', 'webgpu')), join(app, 'node_modules', 'webgpu'), 'dir');
  return { dir: app, seconds: r.seconds };
}

const MIME: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.json': 'application/json; charset=utf-8',
  '.map': 'application/json; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
};

export interface StaticServer {
  origin: string;
  /** Paths requested, in order. */
  paths: string[];
  close(): Promise<void>;
}

/**
 * A plain file server (what any static host does: files with their MIME type, nothing rewritten)
 * for root, plus the fixture models at /models/<name>/resolve/main/<file> (e2e/fixture-server.ts).
 */
export async function staticServer(root: string): Promise<StaticServer> {
  const base = realpathSync(root);
  const models = fixtureModelsMiddleware();
  const paths: string[] = [];
  const server: Server = createHttpServer((req, res) => {
    paths.push((req.url ?? '/').split('?')[0]!);
    models(req, res, () => {
      let path: string;
      try {
        path = decodeURIComponent(new URL(req.url ?? '/', 'http://x').pathname);
      } catch {
        res.writeHead(400).end();
        return;
      }
      let file = resolve(base, `.${path}`);
      try {
        if (statSync(file).isDirectory()) file = join(file, 'index.html');
        file = realpathSync(file);
      } catch {
        res.writeHead(404, { 'content-type': 'text/plain' }).end('not found\n');
        return;
      }
      if (file !== base && !file.startsWith(base + sep)) {
        res.writeHead(403).end();
        return;
      }
      res.writeHead(200, { 'content-type': MIME[extname(file)] ?? 'application/octet-stream', 'content-length': String(statSync(file).size), 'cache-control': 'no-store' });
      if (req.method === 'HEAD') res.end();
      else createReadStream(file).pipe(res);
    });
  });
  await new Promise<void>((ok) => server.listen(0, '127.0.0.1', ok));
  const { port } = server.address() as AddressInfo;
  return {
    origin: `http://127.0.0.1:${port}`,
    paths,
    close: () =>
      new Promise<void>((ok) => {
        server.closeAllConnections();
        server.close(() => ok());
      }),
  };
}

async function freePort(): Promise<number> {
  const s = createNetServer();
  await new Promise<void>((ok) => s.listen(0, '127.0.0.1', ok));
  const { port } = s.address() as AddressInfo;
  await new Promise<void>((ok) => s.close(() => ok()));
  return port;
}

/** Vite's CLI: the app's own when it installed one (an example), else this repository's. */
function viteBin(app: string): string {
  const own = join(app, 'node_modules', 'vite', 'bin', 'vite.js');
  return existsSync(own) ? own : VITE_BIN;
}

/** Runs Vite's CLI in app (e.g. ['build']); throws with its output if it fails. */
export function viteRun(app: string, args: string[], env: Record<string, string> = {}): RunResult {
  return run(process.execPath, [viteBin(app), ...args], app, { env: cleanEnv(env) });
}

export interface ViteServer {
  origin: string;
  output(): string;
  close(): Promise<void>;
}

/** `vite` (dev) or `vite preview` in app on a free port, once it answers. */
export async function viteServer(app: string, mode: 'dev' | 'preview', env: Record<string, string> = {}): Promise<ViteServer> {
  const port = await freePort();
  const args = [viteBin(app), ...(mode === 'preview' ? ['preview'] : []), '--host', '127.0.0.1', '--port', String(port), '--strictPort'];
  const child = spawn(process.execPath, args, { cwd: app, env: cleanEnv(env), stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout.on('data', (d: Buffer) => (output += d.toString()));
  child.stderr.on('data', (d: Buffer) => (output += d.toString()));
  const exited = new Promise<void>((ok) => child.once('exit', () => ok()));
  const origin = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 60_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`vite ${mode} exited (${child.exitCode}):\n${output}`);
    try {
      if ((await fetch(origin)).ok) break;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) {
      child.kill('SIGTERM');
      throw new Error(`vite ${mode} did not answer on ${origin} within 60 s:\n${output}`);
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  return {
    origin,
    output: () => output,
    async close() {
      if (child.exitCode === null) child.kill('SIGTERM');
      await exited;
    },
  };
}
