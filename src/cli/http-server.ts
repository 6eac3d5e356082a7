// `webslo serve`'s HTTP front: OpenAI's API on node:http, answered by api/openai-handler.ts (the
// routes engineFetch, the in-page `openai` client's fetch, also answers: validation, error objects,
// 429 + Retry-After for a decline), plus /health and /metrics (Prometheus; metrics.ts). What this
// file adds is what a network server needs and an in-process fetch does not: API keys compared in
// constant time, a body size limit, the app named by an `x-webslo-app` header, CORS for the origins
// --allowed-origins names, a client that disconnects aborting its request (its KV freed), and a
// drain that stops accepting and lets running requests finish.
//
// node:http and no framework: five routes and one handler. Replies are written to the socket
// directly (JSON once, SSE events as the chunks come), not through Fetch API Request/Response
// objects: those cost about as much again as the rest of the HTTP path (bench/serve-latency.ts).

import { timingSafeEqual, createHash } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Engine, Router } from '../index.js';
import { answerOpenAi } from '../api/openai-handler.js';
import { SSE_HEADERS, sseEvents } from '../openai/sse.js';
import { renderMetrics } from './metrics.js';

export interface HttpServerOptions {
  host: string;
  port: number;
  /** Accepted bearer keys; none: no authentication. */
  apiKeys: readonly string[];
  /** Largest request body, bytes (413 beyond). */
  maxBodyBytes: number;
  /** Origins whose pages may call this server (CORS), or '*' for any; none: no cross-origin caller (a request with another Origin is a 403). */
  allowedOrigins?: readonly string[];
  /** A Router in front of the engine (--remotes): requests go through it, and /metrics shows its routes. */
  router?: Router;
}

export interface RunningServer {
  /** http://host:port */
  url: string;
  /** Requests being answered now. */
  readonly inFlight: number;
  /** Stop accepting connections; resolves when every response has ended or `graceMs` passed. */
  drain(graceMs: number): Promise<'drained' | 'timed-out'>;
  /** Close every connection at once. */
  close(): Promise<void>;
}

/** An OpenAI error object as JSON. */
function sendError(res: ServerResponse, status: number, type: string, code: string, message: string, param: string | null = null): void {
  const body = JSON.stringify({ error: { message, type, param, code } });
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) }).end(body);
}

/** Constant-time membership of `given` in `keys` (hashes first, so lengths do not leak either). */
function keyAccepted(given: string, keys: readonly string[]): boolean {
  const h = (s: string): Buffer => createHash('sha256').update(s).digest();
  const g = h(given);
  let ok = false;
  for (const k of keys) ok = timingSafeEqual(g, h(k)) || ok;
  return ok;
}

/**
 * The CORS headers for a request from `origin`: none for a caller that is not a page (no Origin
 * header), the allowing ones for an allowed origin, null for another origin (answered 403, so a
 * page on another site cannot make this server generate even where it could not read the reply).
 */
export function corsHeaders(origin: string | undefined, allowed: readonly string[] = [], host?: string): Record<string, string> | null {
  if (origin === undefined) return {};
  // A page served from this same host (a reverse proxy in front): same-origin, no CORS involved.
  if (host !== undefined && URL.canParse(origin) && new URL(origin).host === host.toLowerCase()) return {};
  if (!allowed.includes('*') && !allowed.includes(origin)) return null;
  return { 'access-control-allow-origin': allowed.includes('*') ? '*' : origin, vary: 'origin', 'access-control-expose-headers': 'retry-after' };
}

/** The body, or null when it passed `limit` (the connection is then answered 413 by the caller). */
function readBody(req: IncomingMessage, limit: number): Promise<Buffer | null> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let over = false;
    req.on('data', (c: Buffer) => {
      if (over) return;
      size += c.length;
      if (size > limit) {
        over = true;
        resolve(null);
        return;
      }
      chunks.push(c);
    });
    req.on('end', () => {
      if (!over) resolve(Buffer.concat(chunks));
    });
    req.on('error', reject);
  });
}

export async function startHttpServer(engine: Engine, options: HttpServerOptions): Promise<RunningServer> {
  const served = options.router ?? engine;
  let inFlight = 0;
  let draining = false;
  const idle: (() => void)[] = [];
  const settle = (): void => {
    if (inFlight === 0) for (const f of idle.splice(0)) f();
  };

  async function serve(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const path = (req.url ?? '/').split('?')[0]!.replace(/\/+$/, '') || '/';
    // Cross-origin callers (a page in a browser): only the origins --allowed-origins names.
    const cors = corsHeaders(req.headers.origin, options.allowedOrigins, (req.headers['x-forwarded-host'] as string | undefined) ?? req.headers.host);
    if (cors === null) {
      return sendError(
        res,
        403,
        'invalid_request_error',
        'origin_not_allowed',
        `requests from the origin ${req.headers.origin} are not allowed: start webslo serve with --allowed-origins ${req.headers.origin} (or '*')`,
      );
    }
    for (const [k, v] of Object.entries(cors)) res.setHeader(k, v);
    if (req.method === 'OPTIONS') {
      // A preflight: the methods, and the headers the page asked for (content-type, authorization, x-webslo-app, an SDK's own).
      const asked = req.headers['access-control-request-headers'];
      res.writeHead(204, { 'access-control-allow-methods': 'GET, POST, OPTIONS', ...(asked ? { 'access-control-allow-headers': asked } : {}), 'access-control-max-age': '600' }).end();
      return;
    }
    if (draining) return sendError(res, 503, 'server_error', 'shutting_down', 'the server is shutting down; retry on another replica');
    if (path === '/health') {
      // 200 while the engine answers; what it holds now, for a glance (/metrics is for monitoring).
      const st = await engine.stats();
      const running = st.apps.reduce((n, a) => n + a.running, 0);
      res
        .writeHead(200, { 'content-type': 'application/json' })
        .end(JSON.stringify({ status: 'ok', model: engine.info.model, running, kv: { pagesUsed: st.kv.pagesUsed, pagesTotal: st.kv.pagesTotal } }));
      return;
    }
    if (path === '/metrics') {
      res
        .writeHead(200, { 'content-type': 'text/plain; version=0.0.4; charset=utf-8' })
        .end(renderMetrics(await engine.stats(), engine.info.model, options.router ? await options.router.stats() : null));
      return;
    }
    if (!path.startsWith('/v1/'))
      return sendError(res, 404, 'invalid_request_error', 'not_found', `no route for ${req.method} ${path} (POST /v1/chat/completions or /v1/completions, GET /v1/models, GET /health, GET /metrics)`);
    if (options.apiKeys.length > 0) {
      const auth = req.headers.authorization ?? '';
      const m = /^Bearer\s+(.+)$/i.exec(auth);
      if (!m || !keyAccepted(m[1]!.trim(), options.apiKeys)) {
        return sendError(res, 401, 'invalid_request_error', 'invalid_api_key', m ? 'the API key is not valid' : 'an API key is required: send Authorization: Bearer <key>');
      }
    }
    let body: Buffer | null = null;
    if (req.method === 'POST') {
      body = await readBody(req, options.maxBodyBytes);
      if (body === null) return sendError(res, 413, 'invalid_request_error', 'request_too_large', `the request body is larger than ${options.maxBodyBytes} bytes (--max-body-bytes)`);
    }
    // The body parsed once; the app from the x-webslo-app header unless the body names one.
    const app = req.headers['x-webslo-app'];
    const parse = async (): Promise<unknown> => {
      // A leading byte-order mark is not JSON, but clients send one (Request.json() strips it too).
      const json = JSON.parse(body ? body.toString('utf8').replace(/^\uFEFF/, '') : '') as unknown;
      if (typeof app === 'string' && app !== '' && typeof json === 'object' && json !== null && !Array.isArray(json) && !('app' in json)) return { ...json, app };
      return json;
    };
    // A client that goes away aborts its request: the engine frees its KV at the next step.
    const abort = new AbortController();
    res.on('close', () => {
      if (!res.writableFinished) abort.abort();
    });
    const reply = await answerOpenAi(served, req.method ?? 'GET', path, parse, abort.signal);
    if (reply.kind === 'json') {
      const text = JSON.stringify(reply.body);
      res.writeHead(reply.status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text), ...reply.headers }).end(text);
      return;
    }
    // A stream: each chunk's event written as it comes, waiting for the socket when it is full.
    res.writeHead(200, SSE_HEADERS);
    const events = sseEvents(reply.chunks);
    try {
      for await (const event of events) {
        if (abort.signal.aborted) break;
        if (!res.write(event)) {
          // Wait for room, or for the client to go: whichever comes, the other listener goes too.
          await new Promise<void>((resolve) => {
            const done = (): void => {
              res.off('drain', done).off('close', done);
              resolve();
            };
            res.on('drain', done).on('close', done);
          });
        }
      }
    } finally {
      if (abort.signal.aborted) reply.chunks.abort();
      res.end();
    }
  }

  const server: Server = createServer((req, res) => {
    inFlight++;
    res.on('close', () => {
      inFlight--;
      settle();
    });
    serve(req, res).catch((e: unknown) => {
      if (!res.headersSent) sendError(res, 500, 'server_error', 'internal_error', e instanceof Error ? `${e.name}: ${e.message}` : String(e));
      else res.destroy();
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, options.host, () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  const host = options.host.includes(':') ? `[${options.host}]` : options.host;
  return {
    url: `http://${host}:${port}`,
    get inFlight() {
      return inFlight;
    },
    drain(graceMs) {
      draining = true;
      server.close();
      // Idle keep-alive connections would hold close() open: end them; busy ones finish first.
      server.closeIdleConnections();
      return new Promise((resolve) => {
        if (inFlight === 0) return resolve('drained');
        const timer = setTimeout(() => resolve('timed-out'), graceMs);
        idle.push(() => {
          clearTimeout(timer);
          resolve('drained');
        });
      });
    },
    close() {
      server.closeAllConnections();
      return new Promise((resolve) => server.close(() => resolve()));
    },
  };
}
