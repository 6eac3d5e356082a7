// `webslo serve`: one engine in this process behind an OpenAI-compatible HTTP server
// (http-server.ts). Apps and their SLOs come from --apps (a JSON object: app name -> what
// engine.app() takes); a request names its app by an `app` body field or an `x-webslo-app` header,
// else it runs as the default app (no SLO promise). With --remotes (a JSON array of remote
// OpenAI-compatible replicas), a Router fronts the engine: what the local planner would decline
// goes to a remote predicted to meet the app's SLO (api/router.ts), and /metrics shows where
// requests went. SIGTERM or SIGINT: stop accepting, let running requests finish for --grace-s
// seconds, fail the rest with EngineClosedError, exit 0.

import { readFile } from 'node:fs/promises';
import { createEngine, Router, type AppSloInput, type CreateEngineOptions, type RemoteReplicaConfig } from '../index.js';
import { SCHEDULER_NAMES, type SchedulerName } from '../scheduler/names.js';
import { numberFlag, stringFlag, UsageError, type ParsedArgs } from './args.js';
import { startHttpServer } from './http-server.js';
import { MODEL_SOURCE_FLAGS } from './model-source.js';

export const SERVE_USAGE = `  webslo serve --model M [--port 8000] [--host 127.0.0.1] [--apps apps.json] [--api-key K[,K2...]] [--remotes remotes.json]
               [--draft M | --draft-layers N] [--quantize none|q4] [--scheduler ${SCHEDULER_NAMES.join('|')}]
               [--profile profile.json] [--kv-cache-mb N] [--max-body-bytes N] [--grace-s S]
               [--allowed-origins ORIGIN[,ORIGIN2...] | '*']
               (OpenAI-compatible HTTP: /v1/chat/completions, /v1/completions, /v1/models, /health;
               --api-key also from $WEBSLO_API_KEY; without --allowed-origins no web page may call it)`;

export const SERVE_FLAGS = [
  'model',
  'port',
  'host',
  'apps',
  'api-key',
  'draft',
  'draft-layers',
  'quantize',
  'scheduler',
  'profile',
  'kv-cache-mb',
  'max-body-bytes',
  'grace-s',
  'remotes',
  'allowed-origins',
  'verbose',
  ...MODEL_SOURCE_FLAGS,
] as const;

async function readJson(path: string, what: string): Promise<unknown> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (e) {
    throw new UsageError(`${what} ${path}: cannot be read (${e instanceof Error ? e.message : String(e)})`);
  }
  try {
    return JSON.parse(text) as unknown;
  } catch (e) {
    throw new UsageError(`${what} ${path}: not JSON (${e instanceof Error ? e.message : String(e)})`);
  }
}

/** --apps: { "<name>": { ttftMs, tpotMs | stages, onDecline?, ... } }. */
async function appsFrom(path: string | undefined): Promise<[string, AppSloInput][]> {
  if (path === undefined) return [];
  const json = await readJson(path, '--apps');
  if (typeof json !== 'object' || json === null || Array.isArray(json)) throw new UsageError(`--apps ${path}: expected an object of app name -> SLO ({ "chat": { "ttftMs": 1000, "tpotMs": 100 } })`);
  return Object.entries(json as Record<string, AppSloInput>);
}

/** --remotes: [{ "url": "http://host:8000/v1", "model": "...", "apiKey"?, "name"?, "maxInFlight"?, "tokenIds"?, "firstTokenTimeoutMs"? }]. */
async function remotesFrom(path: string | undefined): Promise<RemoteReplicaConfig[]> {
  if (path === undefined) return [];
  const json = await readJson(path, '--remotes');
  const shape = 'an array of { "url": "http://host:8000/v1", "model": "<name it serves>", "apiKey"?, "name"?, "maxInFlight"? }';
  if (!Array.isArray(json) || json.length === 0) throw new UsageError(`--remotes ${path}: expected ${shape}`);
  return json.map((r: unknown, i) => {
    if (typeof r !== 'object' || r === null || Array.isArray(r)) throw new UsageError(`--remotes ${path}: entry ${i} is not an object; expected ${shape}`);
    const o = r as Record<string, unknown>;
    const known = ['url', 'model', 'apiKey', 'name', 'maxInFlight', 'tokenIds', 'firstTokenTimeoutMs'];
    for (const k of Object.keys(o)) if (!known.includes(k)) throw new UsageError(`--remotes ${path}: entry ${i} has an unknown field '${k}' (known: ${known.join(', ')})`);
    if (typeof o['url'] !== 'string' || !/^https?:\/\//.test(o['url'])) throw new UsageError(`--remotes ${path}: entry ${i}: url must be an http(s) URL, got ${JSON.stringify(o['url'])}`);
    if (typeof o['model'] !== 'string' || o['model'] === '') throw new UsageError(`--remotes ${path}: entry ${i}: model must name the model the replica serves`);
    if (o['maxInFlight'] !== undefined && !(Number.isInteger(o['maxInFlight']) && (o['maxInFlight'] as number) >= 1))
      throw new UsageError(`--remotes ${path}: entry ${i}: maxInFlight must be an integer >= 1`);
    return o as unknown as RemoteReplicaConfig;
  });
}

export async function serveCommand(args: ParsedArgs): Promise<void> {
  const model = stringFlag(args, 'model');
  if (!model) throw new UsageError('serve: --model (a folder, an http(s) URL or a hub repo id) is required');
  const port = numberFlag(args, 'port', (n) => Number.isInteger(n) && n >= 0 && n <= 65535, 'a port number (0: any free port)') ?? 8000;
  const host = stringFlag(args, 'host') ?? '127.0.0.1';
  const keys = (stringFlag(args, 'api-key') ?? process.env['WEBSLO_API_KEY'] ?? '')
    .split(',')
    .map((k) => k.trim())
    .filter((k) => k !== '');
  const maxBodyBytes = numberFlag(args, 'max-body-bytes', (n) => Number.isInteger(n) && n >= 1024, 'an integer >= 1024') ?? 16 << 20;
  // As browsers send them: lowercase, default ports left out (http://LOCALHOST:80 -> http://localhost).
  const allowedOrigins = (stringFlag(args, 'allowed-origins') ?? '')
    .split(',')
    .map((o) => o.trim().replace(/\/+$/, ''))
    .filter((o) => o !== '')
    .map((o) => {
      if (o === '*' || o === 'null') return o;
      if (!/^https?:\/\/[^/]+$/.test(o) || !URL.canParse(o)) throw new UsageError(`--allowed-origins ${o}: expected an origin such as http://localhost:5173 (scheme, host and port, no path), or '*'`);
      return new URL(o).origin;
    });
  const graceS = numberFlag(args, 'grace-s', (n) => n >= 0, 'a number of seconds >= 0') ?? 30;
  const scheduler = stringFlag(args, 'scheduler');
  if (scheduler !== undefined && !(SCHEDULER_NAMES as readonly string[]).includes(scheduler)) throw new UsageError(`--scheduler ${scheduler}: expected one of ${SCHEDULER_NAMES.join(', ')}`);
  const quantize = stringFlag(args, 'quantize');
  if (quantize !== undefined && quantize !== 'none' && quantize !== 'q4') throw new UsageError(`--quantize ${quantize}: expected none or q4`);
  const draft = stringFlag(args, 'draft');
  const draftLayers = numberFlag(args, 'draft-layers', (n) => Number.isInteger(n) && n >= 1, 'a positive integer');
  if (draft !== undefined && draftLayers !== undefined) throw new UsageError('give one of --draft M and --draft-layers N');
  const kvMb = numberFlag(args, 'kv-cache-mb', (n) => n > 0, 'a positive number of MiB');
  const profilePath = stringFlag(args, 'profile');
  const apps = await appsFrom(stringFlag(args, 'apps'));
  const remotes = await remotesFrom(stringFlag(args, 'remotes'));
  const cacheDir = stringFlag(args, 'cache-dir');
  const hubEndpoint = stringFlag(args, 'hub-endpoint');
  const revision = stringFlag(args, 'revision');
  const verbose = args.flags.has('verbose');

  const options: CreateEngineOptions = {
    model,
    worker: false,
    ...(draft !== undefined ? { draftModel: draft } : {}),
    ...(draftLayers !== undefined ? { selfSpeculation: { layers: draftLayers } } : {}),
    ...(quantize ? { quantize } : {}),
    ...(scheduler ? { scheduler: scheduler as SchedulerName } : {}),
    ...(kvMb !== undefined ? { kvCacheBytes: Math.floor(kvMb * 1024 * 1024) } : {}),
    ...(profilePath !== undefined ? { profile: await readJson(profilePath, '--profile') } : {}),
    ...(cacheDir ? { cacheDir } : {}),
    ...(args.flags.has('no-cache') ? { cache: false } : {}),
    ...(hubEndpoint ? { hubEndpoint } : {}),
    ...(revision ? { revision } : {}),
    ...(verbose ? { onProgress: (p) => console.error(`[webslo] ${p.phase}${p.file ? ` ${p.file}` : ''}: ${p.loaded}/${p.total ?? '?'}`) } : {}),
  };
  const engine = await createEngine(options);
  const router = remotes.length > 0 ? new Router({ local: engine, remotes }) : null;
  try {
    // An SLO this model cannot meet stops the server before it listens (exit 1, naming the app).
    for (const [name, slo] of apps) await (router ?? engine).app(name, slo).ready;
  } catch (e) {
    await engine.unload();
    throw e;
  }
  const server = await startHttpServer(engine, { host, port, apiKeys: keys, maxBodyBytes, allowedOrigins, ...(router ? { router } : {}) });
  // The line a supervisor (or a test) waits for.
  console.log(
    `webslo serve: listening on ${server.url} (model ${engine.info.model}; apps ${apps.map(([n]) => n).join(', ') || 'none (the default app)'}; ${keys.length ? 'API keys required' : 'no API key'}${router ? `; remotes ${remotes.map((r) => r.name ?? r.url).join(', ')}` : ''})`,
  );

  const signal = await new Promise<string>((resolve) => {
    process.once('SIGTERM', () => resolve('SIGTERM'));
    process.once('SIGINT', () => resolve('SIGINT'));
  });
  console.error(`[webslo] serve: ${signal}: no new requests; ${server.inFlight} running get ${graceS} s to finish`);
  const drained = await server.drain(graceS * 1000);
  if (drained === 'timed-out') console.error(`[webslo] serve: ${server.inFlight} requests still running after ${graceS} s: they end with EngineClosedError`);
  await engine.unload();
  await server.close();
  console.error('[webslo] serve: stopped');
}
