// A GGUF file in a hub repo ('org/name/file.gguf'), against the real local hub
// server (test/helpers/hub-server.ts, with Range support): parseGgufHeader on growing prefixes, the
// header-first download (the first request is a range request; the weights follow as `bytes=N-`),
// byte progress, the cache (a second load makes no request), typed errors for a missing, truncated,
// not-GGUF or unsupported file before the weights are requested, and a server that ignores Range.

import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { ggufFromHfFolder } from '../../bench/gguf/from-hf.js';
import { checkGgufHeader, downloadGguf } from '../../src/hub/gguf-download.js';
import { parseHubGgufName } from '../../src/hub/hub-gguf.js';
import { deleteCachedModel, listCachedModels, ModelSourceError, nodeDirectoryCacheStore, resolveModelSource, type HubLoadProgress } from '../../src/hub/index.js';
import { ModelFileError, UnsupportedModelError } from '../../src/model/errors.js';
import { GgufError, parseGguf, parseGgufHeader } from '../../src/model/gguf.js';
import { loadModelFiles, type LoadedModelFiles } from '../../src/model/load.js';
import { FIXTURE_MODELS, fixtureDir } from '../helpers/fixtures.js';
import { startHubServer, type HubServer } from '../helpers/hub-server.js';

const REPO = 'org/tiny-GGUF';
const FILE = 'tiny-qwen2-q4_0.gguf';

let tmp: string;
let server: HubServer;
let gguf: Uint8Array;
let direct: LoadedModelFiles;
/** The header's length (its data region's start) in `gguf`. */
let headerEnd: number;

beforeAll(async () => {
  tmp = await mkdtemp(join(tmpdir(), 'webslo-hub-gguf-'));
  const repo = join(tmp, 'repo');
  await mkdir(join(repo, 'sub'), { recursive: true });
  gguf = ggufFromHfFolder(fixtureDir('tiny-qwen2'), 'Q4_0');
  const header = parseGgufHeader(gguf, FILE, gguf.length);
  if ('needBytes' in header) throw new Error('the whole file holds no whole header');
  headerEnd = header.dataStart;
  // The architecture renamed in place (same length): a well-formed file of an unsupported model.
  const otherArch = gguf.slice();
  const key = new TextEncoder().encode('general.architecture');
  const at = Buffer.from(otherArch).indexOf(Buffer.from(key)) + key.length + 4 + 8;
  otherArch.set(new TextEncoder().encode('gpt-2'), at);
  await Promise.all([
    writeFile(join(repo, FILE), gguf),
    writeFile(join(repo, 'sub', FILE), gguf),
    writeFile(join(repo, 'cut.gguf'), gguf.subarray(0, headerEnd + Math.floor((gguf.length - headerEnd) / 2))),
    writeFile(join(repo, 'not-gguf.gguf'), new Uint8Array(3 << 20).fill(7)),
    writeFile(join(repo, 'other-arch.gguf'), otherArch),
  ]);
  server = await startHubServer({ [REPO]: repo });
  direct = await loadModelFiles(await resolveModelSource(join(repo, FILE)));
});
afterAll(async () => {
  await server?.close();
  if (tmp) await rm(tmp, { recursive: true, force: true });
});
beforeEach(() => {
  server.requests.length = 0;
  server.faults.clear();
});

let cacheCount = 0;
const freshCache = () => nodeDirectoryCacheStore(join(tmp, `cache-${++cacheCount}`));
const fileUrl = (file: string): string => `${server.endpoint}/${REPO}/resolve/main/${file}`;
/** The Range header of each request, in order ('none' for a plain GET). */
const ranges = (): string[] => server.requests.map((r) => r.range ?? 'none');

function expectSameModel(a: LoadedModelFiles): void {
  expect(a.config).toEqual(direct.config);
  expect([...a.tensors.keys()]).toEqual([...direct.tensors.keys()]);
  for (const [name, t] of direct.tensors) expect(Buffer.compare(Buffer.from(a.tensors.get(name)!.data), Buffer.from(t.data)), name).toBe(0);
}

describe('parseGgufHeader', () => {
  it('parses the header from a growing prefix, as parseGguf does from the whole file, and says how much more it needs', () => {
    let n = 16;
    let header = parseGgufHeader(gguf.subarray(0, n), FILE, gguf.length);
    const asked: number[] = [];
    while ('needBytes' in header) {
      expect(header.needBytes).toBeGreaterThan(n);
      asked.push(header.needBytes);
      n = Math.max(header.needBytes, n * 2);
      header = parseGgufHeader(gguf.subarray(0, n), FILE, gguf.length);
    }
    expect(asked.length).toBeGreaterThan(3);
    const full = parseGguf(gguf, FILE);
    expect(header.metadata).toEqual(full.metadata);
    expect(header.tensors.map((t) => [t.name, t.type, t.shape])).toEqual([...full.tensors.values()].map((t) => [t.name, t.type, t.shape]));
    expect(header.dataStart).toBeLessThan(gguf.length);
  });

  it('refuses what the first bytes show, and tensors past the end of a file of known size', () => {
    expect(() => parseGgufHeader(new TextEncoder().encode('{"not": "gguf"}'), 'x.gguf')).toThrow(/x.gguf: is not a GGUF file/);
    expect(() => parseGgufHeader(gguf.subarray(0, headerEnd), FILE, gguf.length - 1)).toThrow(GgufError);
    expect(() => parseGgufHeader(gguf.subarray(0, headerEnd), FILE, gguf.length - 1)).toThrow(/a truncated file\?/);
    expect('needBytes' in parseGgufHeader(gguf.subarray(0, headerEnd), FILE, null)).toBe(false);
  });
});

describe('checkGgufHeader', () => {
  it.each(FIXTURE_MODELS)('accepts the header of %s (F32 and F16) and refuses an unsupported architecture', (model) => {
    for (const type of ['F32', 'F16'] as const) {
      const bytes = ggufFromHfFolder(fixtureDir(model), type);
      const header = parseGgufHeader(bytes, `${model}.gguf`, bytes.length);
      if ('needBytes' in header) throw new Error('the whole file holds no whole header');
      expect(() => checkGgufHeader(header, `${model}.gguf`)).not.toThrow();
      const other = { ...header, metadata: new Map(header.metadata).set('general.architecture', 'bert') };
      expect(() => checkGgufHeader(other, `${model}.gguf`)).toThrow(UnsupportedModelError);
    }
  });
});

describe('hub GGUF names', () => {
  it("reads 'org/name/path.gguf' as a repo id and a file path, and nothing else", () => {
    expect(parseHubGgufName('Qwen/Qwen2.5-0.5B-Instruct-GGUF/qwen2.5-0.5b-instruct-q4_0.gguf')).toEqual({ repoId: 'Qwen/Qwen2.5-0.5B-Instruct-GGUF', file: 'qwen2.5-0.5b-instruct-q4_0.gguf' });
    expect(parseHubGgufName('org/name/sub/dir/f.GGUF')).toEqual({ repoId: 'org/name', file: 'sub/dir/f.GGUF' });
    for (const s of ['org/name', 'org/f.gguf', '/abs/dir/f.gguf', './org/name/f.gguf', '../a/b/f.gguf', '~/a/f.gguf', 'org/name/../f.gguf', 'org/name//f.gguf', 'org/name/f.safetensors']) {
      expect(parseHubGgufName(s), s).toBeNull();
    }
  });

  it('in Node, a name that is neither a path nor a file of an existing repo says both', async () => {
    const source = await resolveModelSource('no-org/no-repo/f.gguf', { endpoint: server.endpoint, cache: false });
    await expect(loadModelFiles(source)).rejects.toThrow(ModelSourceError);
    await expect(loadModelFiles(source)).rejects.toThrow(/model "no-org\/no-repo\/f.gguf": is no existing file, nor a GGUF file of an existing hub repo .*RepositoryNotFound/);
  });

  it('an existing path of the same spelling stays a file on disk', async () => {
    const local = join('node_modules', `.webslo-hub-gguf-${process.pid}`);
    await mkdir(local, { recursive: true });
    try {
      await writeFile(join(local, FILE), gguf);
      const source = await resolveModelSource(`${local}/${FILE}`, { endpoint: server.endpoint, cache: false });
      expect(source.describe()).toBe(local);
      expectSameModel(await loadModelFiles(source));
      expect(server.requests).toEqual([]);
    } finally {
      await rm(local, { recursive: true, force: true });
    }
  });
});

/** Node's fetch as a browser sees a cross-origin answer that does not expose Content-Range. */
const hidingContentRange: typeof fetch = async (input, init) => {
  const res = await fetch(input, init);
  const headers = new Headers(res.headers);
  headers.delete('content-range');
  return new Response(res.body, { status: res.status, statusText: res.statusText, headers });
};

/** Node's fetch as a browser whose CORS preflight for a Range request the server refused. */
const refusingRange: typeof fetch = (input, init) => {
  if (new Headers(init?.headers).has('range')) return Promise.reject(new TypeError('Failed to fetch'));
  return fetch(input, init);
};

describe('a GGUF file in a hub repo', () => {
  it('downloads header first with byte progress, loads the same model as the file on disk, and loads again from the cache with no request', async () => {
    const cache = freshCache();
    const events: HubLoadProgress[] = [];
    const source = await resolveModelSource(`${REPO}/${FILE}`, { endpoint: server.endpoint, cache, onProgress: (e) => events.push(e) });
    expect(source.gguf).toBe(FILE);
    expectSameModel(await loadModelFiles(source));
    // One range request covered the header (1 MiB asked for), then the rest of the file.
    expect(ranges()).toEqual(['bytes=0-1048575', 'bytes=1048576-']);
    expect(events.every((e) => e.file === FILE && !e.fromCache && e.fileTotal === gguf.length)).toBe(true);
    expect(events[0]!.fileLoaded).toBe(1 << 20);
    for (let i = 1; i < events.length; i++) expect(events[i]!.loaded).toBeGreaterThanOrEqual(events[i - 1]!.loaded);
    expect(events.at(-1)).toMatchObject({ loaded: gguf.length, total: gguf.length });

    server.requests.length = 0;
    const again: HubLoadProgress[] = [];
    expectSameModel(await loadModelFiles(await resolveModelSource(`${REPO}/${FILE}`, { endpoint: server.endpoint, cache, onProgress: (e) => again.push(e) })));
    expect(server.requests).toEqual([]);
    expect(again).toEqual([{ file: FILE, fileLoaded: gguf.length, fileTotal: gguf.length, loaded: gguf.length, total: gguf.length, fromCache: true }]);
    // Listed and deleted under its repo, like a folder's files.
    expect(await listCachedModels({ store: cache, endpoint: server.endpoint })).toEqual([
      { repoId: REPO, revision: 'main', endpoint: server.endpoint, files: [{ file: FILE, bytes: gguf.length }], bytes: gguf.length },
    ]);
    expect(await deleteCachedModel(REPO, { store: cache, endpoint: server.endpoint })).toBe(1);
    expect(await cache.keys()).toEqual([]);
  });

  it('takes a file in a folder of the repo', async () => {
    const source = await resolveModelSource(`${REPO}/sub/${FILE}`, { endpoint: server.endpoint, cache: false });
    expectSameModel(await loadModelFiles(source));
    expect(server.requests[0]!.path).toBe(`/${REPO}/resolve/main/sub/${FILE}`);
  });

  it('grows the header request until the header fits, asking for contiguous ranges', async () => {
    const bytes = await downloadGguf(fileUrl(FILE), { headerBytes: 4096 });
    expect(Buffer.compare(Buffer.from(bytes!), Buffer.from(gguf))).toBe(0);
    const asked = ranges();
    expect(asked.length).toBeGreaterThan(3);
    expect(asked[0]).toBe('bytes=0-4095');
    let next = 0;
    for (const r of asked.slice(0, -1)) {
      const [start, end] = /^bytes=(\d+)-(\d+)$/.exec(r)!.slice(1).map(Number) as [number, number];
      expect(start).toBe(next);
      next = end + 1;
    }
    expect(next).toBeGreaterThanOrEqual(headerEnd);
    expect(asked.at(-1)).toBe(`bytes=${next}-`);
  });

  it.each([
    ['a missing file', 'missing.gguf', ModelFileError, /missing.gguf: not found/],
    ['a file that is not GGUF', 'not-gguf.gguf', GgufError, /not-gguf.gguf: is not a GGUF file/],
    ['a truncated file', 'cut.gguf', GgufError, /cut.gguf: tensor .*\(a truncated file\?\)/],
    ['an unsupported architecture', 'other-arch.gguf', UnsupportedModelError, /unsupported GGUF architecture "gpt-2"/],
  ])('refuses %s with a typed error before the weights are requested, and caches nothing', async (_what, file, type, message) => {
    const cache = freshCache();
    const events: HubLoadProgress[] = [];
    const source = await resolveModelSource(`${REPO}/${file}`, { endpoint: server.endpoint, cache, onProgress: (e) => events.push(e) });
    const error = await loadModelFiles(source).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(type);
    expect(String(error)).toMatch(message);
    expect(ranges()).toEqual(['bytes=0-1048575']);
    expect(events.every((e) => e.loaded <= 1 << 20)).toBe(true);
    expect((await cache.keys()).filter((k) => !k.includes('.webslo-absent'))).toEqual([]);
  });

  it('loads header first when the Content-Range header cannot be read (a browser, cross-origin), and refuses a bad file after its first range', async () => {
    const events: HubLoadProgress[] = [];
    const options = { endpoint: server.endpoint, cache: false as const, fetch: hidingContentRange };
    expectSameModel(await loadModelFiles(await resolveModelSource(`${REPO}/${FILE}`, { ...options, onProgress: (e) => events.push(e) })));
    expect(ranges()).toEqual(['bytes=0-1048575', 'bytes=1048576-']);
    expect(events.at(-1)).toMatchObject({ loaded: gguf.length, total: gguf.length });
    server.requests.length = 0;
    await expect(loadModelFiles(await resolveModelSource(`${REPO}/not-gguf.gguf`, options))).rejects.toThrow(GgufError);
    expect(ranges()).toEqual(['bytes=0-1048575']);
  });

  it('falls back to one plain GET when the range request itself is refused (a CORS preflight); a missing file is still a missing file', async () => {
    expectSameModel(await loadModelFiles(await resolveModelSource(`${REPO}/${FILE}`, { endpoint: server.endpoint, cache: false, fetch: refusingRange })));
    expect(ranges()).toEqual(['none']);
    // The plain GET's 404 is read as a 404, not parsed (and cached) as the file's bytes.
    const missing = await loadModelFiles(await resolveModelSource(`${REPO}/missing.gguf`, { endpoint: server.endpoint, cache: false, fetch: refusingRange })).catch((e: unknown) => e);
    expect(missing).toBeInstanceOf(ModelFileError);
    expect((missing as Error).message).toMatch(/not found/);
  });

  it('refuses a weights answer that stops short of the end of the file (nothing short is returned or cached)', async () => {
    // A server whose 206 to 'bytes=N-' ends one byte early, with a Content-Range that says so.
    const short: typeof fetch = async (input, init) => {
      const range = new Headers(init?.headers).get('range');
      const res = await fetch(input, init);
      if (!range?.endsWith('-') || res.status !== 206) return res;
      const [, start, end, size] = /bytes (\d+)-(\d+)\/(\d+)/.exec(res.headers.get('content-range')!)!;
      const body = new Uint8Array(await res.arrayBuffer()).subarray(0, -1);
      return new Response(body, { status: 206, headers: { 'content-range': `bytes ${start}-${Number(end) - 1}/${size}`, 'content-length': String(body.length) } });
    };
    const error = await loadModelFiles(await resolveModelSource(`${REPO}/${FILE}`, { endpoint: server.endpoint, cache: false, fetch: short })).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ModelFileError);
  });

  it('works with a server that ignores Range (200, the whole file), and still refuses a bad file early', async () => {
    server.faults.set(`${REPO}/${FILE}`, 'no-range');
    const events: HubLoadProgress[] = [];
    expectSameModel(await loadModelFiles(await resolveModelSource(`${REPO}/${FILE}`, { endpoint: server.endpoint, cache: false, onProgress: (e) => events.push(e) })));
    expect(ranges()).toEqual(['bytes=0-1048575']);
    expect(events.at(-1)).toMatchObject({ loaded: gguf.length, total: gguf.length });

    server.faults.set(`${REPO}/not-gguf.gguf`, 'no-range');
    const bad: HubLoadProgress[] = [];
    const error = await loadModelFiles(await resolveModelSource(`${REPO}/not-gguf.gguf`, { endpoint: server.endpoint, cache: false, onProgress: (e) => bad.push(e) })).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(GgufError);
    // The download ended at the first chunk, not after the 3 MiB body.
    expect(bad.at(-1)!.loaded).toBeLessThan(3 << 20);
  });
});
