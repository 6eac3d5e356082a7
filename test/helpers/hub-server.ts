// A real HTTP server (node:http on 127.0.0.1, a free port) serving model folders in the Hugging Face
// hub's URL layout, for the hub loader's tests: /{repo path}/resolve/{revision}/{file}, where the
// repo path is whatever precedes '/resolve/' ('org/name', or 'mirror/name' for an endpoint with a
// path). It logs every request and can misbehave per file (faults) the way real servers do. A GET
// with one `Range: bytes=a-b` (or `a-`) is answered 206 with Content-Range, as the hub's CDN does,
// or 416 when it starts past the end; the 'no-range' fault answers 200 with the whole file instead.

import { createReadStream } from 'node:fs';
import { copyFile, mkdir, readFile, stat, writeFile } from 'node:fs/promises';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { gzipSync } from 'node:zlib';
import { parseSafetensors } from '../../src/model/safetensors.js';
import { buildSafetensors } from './safetensors-builder.js';

/**
 * How a file is served: 'truncate' declares the full Content-Length, sends half the bytes and
 * destroys the socket; 'chunked' sends no Content-Length; 'gzip' gzips the body (Content-Length is
 * then the compressed size); 'fail' answers 500; 'no-range' ignores Range headers (200, whole file).
 */
export type Fault = 'truncate' | 'chunked' | 'gzip' | 'fail' | 'no-range';

export interface HubRequest {
  method: string;
  /** The path as requested (percent-encoded), e.g. /fixtures/tiny-qwen2/resolve/main/config.json. */
  path: string;
  /** The Authorization header sent, if any. */
  auth: string | null;
  /** The Range header sent, if any. */
  range: string | null;
}

export interface HubServer {
  /** http://127.0.0.1:<port> */
  endpoint: string;
  /** Every request, in order; clear with `requests.length = 0`. */
  requests: HubRequest[];
  /** Faults by '<repo>/<file>' (e.g. 'fixtures/tiny-qwen2/model.safetensors'); edit freely. */
  faults: Map<string, Fault>;
  close(): Promise<void>;
}

function plain(segment: string): boolean {
  return segment !== '' && segment !== '.' && segment !== '..' && !/[\\/\0]/.test(segment);
}

async function handle(repos: Record<string, string>, faults: Map<string, Fault>, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const path = (req.url ?? '/').split('?', 1)[0]!;
  const m = /^\/(.+?)\/resolve\/([^/]+)\/(.+)$/.exec(path);
  if (req.method !== 'GET' && req.method !== 'HEAD') return void res.writeHead(405).end();
  const dir = m ? repos[m[1]!] : undefined;
  if (!m || dir === undefined) return void res.writeHead(404, { 'x-error-code': 'RepositoryNotFound' }).end('Repository not found');
  if (decodeURIComponent(m[2]!) !== 'main') return void res.writeHead(404, { 'x-error-code': 'RevisionNotFound' }).end('Revision not found');
  const segments = m[3]!.split('/').map(decodeURIComponent);
  if (!segments.every(plain)) return void res.writeHead(400).end();
  const file = join(dir, ...segments);
  const st = await stat(file).catch(() => null);
  if (!st?.isFile()) return void res.writeHead(404, { 'x-error-code': 'EntryNotFound' }).end('Entry not found');

  const fault = faults.get(`${m[1]}/${segments.join('/')}`);
  if (fault === 'fail') return void res.writeHead(500).end('boom');
  if (fault === 'gzip') {
    const body = gzipSync(await readFile(file));
    res.writeHead(200, { 'content-encoding': 'gzip', 'content-length': String(body.length) });
    return void res.end(req.method === 'HEAD' ? undefined : body);
  }
  const range = /^bytes=(\d+)-(\d*)$/.exec(req.headers.range ?? '');
  if (range && req.method === 'GET' && fault !== 'no-range') {
    const start = Number(range[1]);
    if (start >= st.size) return void res.writeHead(416, { 'content-range': `bytes */${st.size}` }).end();
    const end = Math.min(range[2] ? Number(range[2]) : st.size - 1, st.size - 1);
    res.writeHead(206, { 'content-type': 'application/octet-stream', 'content-length': String(end - start + 1), 'content-range': `bytes ${start}-${end}/${st.size}` });
    return void (await pipeline(createReadStream(file, { start, end }), res));
  }
  res.writeHead(200, { 'content-type': 'application/octet-stream', ...(fault === 'chunked' ? {} : { 'content-length': String(st.size) }) });
  if (req.method === 'HEAD') return void res.end();
  if (fault === 'truncate') {
    const bytes = await readFile(file);
    res.write(bytes.subarray(0, Math.floor(bytes.length / 2)), () => res.destroy());
    return;
  }
  await pipeline(createReadStream(file), res);
}

/** Serves `repos` (repo path -> folder on disk) until close(). */
export async function startHubServer(repos: Record<string, string>): Promise<HubServer> {
  const requests: HubRequest[] = [];
  const faults = new Map<string, Fault>();
  const server = createServer((req, res) => {
    requests.push({ method: req.method ?? '?', path: (req.url ?? '/').split('?', 1)[0]!, auth: req.headers.authorization ?? null, range: req.headers.range ?? null });
    handle(repos, faults, req, res).catch(() => res.destroy());
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    endpoint: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    requests,
    faults,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** Requests for model files (GET or HEAD), as '<METHOD> <file>' relative to the revision. */
export function fileRequests(requests: readonly HubRequest[]): string[] {
  return requests.map((r) => `${r.method} ${decodeURIComponent(r.path.replace(/^.*?\/resolve\/[^/]+\//, ''))}`);
}

/**
 * A sharded copy of a single-file model folder in `out`: its tensors split in file order over
 * `shards` files model-0000i-of-0000n.safetensors plus model.safetensors.index.json, and the JSON
 * files copied. Returns the shard names.
 */
export async function writeShardedCopy(src: string, out: string, shards = 3): Promise<string[]> {
  await mkdir(out, { recursive: true });
  const parsed = parseSafetensors(new Uint8Array(await readFile(join(src, 'model.safetensors'))), 'model.safetensors');
  const tensors = [...parsed.tensors];
  const names: string[] = [];
  const weightMap: Record<string, string> = {};
  let totalSize = 0;
  for (let i = 0; i < shards; i++) {
    const name = `model-${String(i + 1).padStart(5, '0')}-of-${String(shards).padStart(5, '0')}.safetensors`;
    const part = tensors.slice(Math.floor((i * tensors.length) / shards), Math.floor(((i + 1) * tensors.length) / shards));
    await writeFile(join(out, name), buildSafetensors(part.map(([n, t]) => ({ name: n, dtype: t.dtype, shape: t.shape, data: t.data }))));
    for (const [n, t] of part) {
      weightMap[n] = name;
      totalSize += t.data.length;
    }
    names.push(name);
  }
  await writeFile(join(out, 'model.safetensors.index.json'), JSON.stringify({ metadata: { total_size: totalSize }, weight_map: weightMap }, null, 2));
  for (const file of ['config.json', 'tokenizer.json', 'tokenizer_config.json']) {
    await copyFile(join(src, file), join(out, file)).catch(() => undefined);
  }
  return names;
}
