// cachedHubSource against a real local HTTP server in the hub layout: the fixture tiny-qwen2 and a
// sharded copy of it, a cache directory, progress, a server that breaks off mid-download, and a
// full cache.

import { mkdtemp, readdir, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { CacheQuotaError, cachedHubSource, nodeDirectoryCacheStore, type HubLoadProgress, type ModelCacheStore } from '../../src/hub/index.js';
import { ModelFileError } from '../../src/model/errors.js';
import { loadModelFiles, type LoadedModelFiles } from '../../src/model/load.js';
import { nodeDirectorySource } from '../../src/model/source.js';
import { fileRequests, startHubServer, writeShardedCopy, type HubServer } from '../helpers/hub-server.js';

const QWEN = fileURLToPath(new URL('../fixtures/tiny-qwen2', import.meta.url));
const SINGLE = 'fixtures/tiny-qwen2';
const SHARDED = 'fixtures/tiny-qwen2-sharded';

let tmp: string;
let shardedDir: string;
let shards: string[];
let server: HubServer;
let direct: LoadedModelFiles;

beforeAll(async () => {
  tmp = await mkdtemp(join(tmpdir(), 'webslo-hub-'));
  shardedDir = join(tmp, 'sharded');
  shards = await writeShardedCopy(QWEN, shardedDir, 3);
  server = await startHubServer({ [SINGLE]: QWEN, [SHARDED]: shardedDir });
  direct = await loadModelFiles(nodeDirectorySource(QWEN));
});
afterAll(async () => {
  await server.close();
  await rm(tmp, { recursive: true, force: true });
});
beforeEach(() => {
  server.requests.length = 0;
  server.faults.clear();
});

let cacheCount = 0;
const freshCacheDir = (): string => join(tmp, `cache-${++cacheCount}`);

function expectSameTensors(a: LoadedModelFiles, b: LoadedModelFiles): void {
  expect([...b.tensors.keys()]).toEqual([...a.tensors.keys()]);
  for (const [name, t] of a.tensors) {
    const u = b.tensors.get(name)!;
    expect([u.dtype, u.shape]).toEqual([t.dtype, t.shape]);
    expect(Buffer.compare(Buffer.from(u.data.buffer, u.data.byteOffset, u.data.byteLength), Buffer.from(t.data.buffer, t.data.byteOffset, t.data.byteLength))).toBe(0);
  }
}

/** loaded and total never go down, loaded never passes total, and the last event is complete. */
function expectMonotonic(events: readonly HubLoadProgress[], expectedTotal: number): void {
  expect(events.length).toBeGreaterThan(0);
  for (let i = 0; i < events.length; i++) {
    const e = events[i]!;
    expect(e.loaded).toBeLessThanOrEqual(e.total);
    if (e.fileTotal !== null) expect(e.fileLoaded).toBeLessThanOrEqual(e.fileTotal);
    if (i > 0) {
      expect(e.loaded).toBeGreaterThanOrEqual(events[i - 1]!.loaded);
      expect(e.total).toBeGreaterThanOrEqual(events[i - 1]!.total);
    }
  }
  const last = events.at(-1)!;
  expect([last.loaded, last.total]).toEqual([expectedTotal, expectedTotal]);
}

const sizeOf = async (dir: string, files: readonly string[]): Promise<number> => (await Promise.all(files.map(async (f) => (await stat(join(dir, f))).size))).reduce((a, b) => a + b, 0);
const QWEN_FILES = ['config.json', 'tokenizer.json', 'tokenizer_config.json', 'model.safetensors'];

describe('cachedHubSource', () => {
  it('downloads tiny-qwen2 into the cache, byte-identical to the folder, then loads it with no requests', async () => {
    const cache = nodeDirectoryCacheStore(freshCacheDir());
    const events: HubLoadProgress[] = [];
    const first = await loadModelFiles(cachedHubSource(SINGLE, { endpoint: server.endpoint, cache, onProgress: (e) => events.push(e) }));
    expectSameTensors(direct, first);
    expect(first.config).toEqual(direct.config);
    expect(first.tokenizerJson).toEqual(direct.tokenizerJson);
    expect(fileRequests(server.requests)).toEqual(['GET config.json', 'GET generation_config.json', 'GET tokenizer.json', 'GET tokenizer_config.json', 'GET model.safetensors']);
    expectMonotonic(events, await sizeOf(QWEN, QWEN_FILES));
    expect(events.every((e) => !e.fromCache)).toBe(true);
    // Weights arrive in chunks: many events for the 8.5 MB file, its last one complete.
    const weights = events.filter((e) => e.file === 'model.safetensors');
    expect(weights.length).toBeGreaterThan(3);
    expect(weights.at(-1)!.fileLoaded).toBe(weights.at(-1)!.fileTotal);

    server.requests.length = 0;
    const again: HubLoadProgress[] = [];
    const second = await loadModelFiles(cachedHubSource(SINGLE, { endpoint: server.endpoint, cache, onProgress: (e) => again.push(e) }));
    expect(server.requests).toEqual([]); // the absent generation_config.json is remembered too
    expectSameTensors(direct, second);
    expect(second.generationConfig).toBeNull();
    expect(again.map((e) => [e.file, e.fromCache])).toEqual(QWEN_FILES.map((f) => [f, true]));
    expectMonotonic(again, await sizeOf(QWEN, QWEN_FILES));
  });

  it('loads a sharded copy: shards sized up front by HEAD, total known before the first shard', async () => {
    const cache = nodeDirectoryCacheStore(freshCacheDir());
    const events: HubLoadProgress[] = [];
    const loaded = await loadModelFiles(cachedHubSource(SHARDED, { endpoint: server.endpoint, cache, onProgress: (e) => events.push(e) }));
    expectSameTensors(direct, loaded);
    expect(loaded.weightFiles).toEqual(shards);
    // The HEADs go out together, so their order is not fixed.
    const requests = fileRequests(server.requests);
    const heads = requests.filter((r) => r.startsWith('HEAD ')).sort();
    expect([...requests.filter((r) => !r.startsWith('HEAD ')).slice(0, 6), ...heads, ...requests.filter((r) => !r.startsWith('HEAD ')).slice(6)]).toEqual([
      'GET config.json',
      'GET generation_config.json',
      'GET tokenizer.json',
      'GET tokenizer_config.json',
      'GET model.safetensors',
      'GET model.safetensors.index.json',
      ...shards.map((s) => `HEAD ${s}`),
      ...shards.map((s) => `GET ${s}`),
    ]);
    const all = await sizeOf(shardedDir, ['config.json', 'tokenizer.json', 'tokenizer_config.json', 'model.safetensors.index.json', ...shards]);
    expectMonotonic(events, all);
    expect(events.find((e) => e.file === shards[0])!.total).toBe(all);

    server.requests.length = 0;
    const cachedEvents: HubLoadProgress[] = [];
    expectSameTensors(direct, await loadModelFiles(cachedHubSource(SHARDED, { endpoint: server.endpoint, cache, onProgress: (e) => cachedEvents.push(e) })));
    expect(server.requests).toEqual([]);
    // From the cache the shard sizes come from the store, so the total is known just as early.
    expect(cachedEvents.find((e) => e.file === shards[0])!.total).toBe(all);
  });

  it('a server that breaks off mid-file fails with ModelFileError and caches nothing of that file; a retry works', async () => {
    const dir = freshCacheDir();
    const cache = nodeDirectoryCacheStore(dir);
    const url = `${server.endpoint}/${SINGLE}/resolve/main/model.safetensors`;
    const size = (await stat(join(QWEN, 'model.safetensors'))).size;
    server.faults.set(`${SINGLE}/model.safetensors`, 'truncate');
    const error = await loadModelFiles(cachedHubSource(SINGLE, { endpoint: server.endpoint, cache })).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ModelFileError);
    expect((error as ModelFileError).path).toBe(url);
    expect((error as Error).message).toMatch(new RegExp(`after \\d+ of ${size} bytes`));
    expect((error as Error).message).toMatch(/nothing was cached/);
    expect(await cache.get(url)).toBeNull();
    expect(await cache.keys()).not.toContain(url);
    expect(await readdir(join(dir, '.tmp')).catch(() => [])).toEqual([]); // no temp file left either

    server.faults.clear();
    server.requests.length = 0;
    expectSameTensors(direct, await loadModelFiles(cachedHubSource(SINGLE, { endpoint: server.endpoint, cache })));
    // Only the weights came over the wire: the JSON files were cached by the failed load.
    expect(fileRequests(server.requests)).toEqual(['GET model.safetensors']);
    expect((await cache.get(url))!.length).toBe(size);
  });

  it('a full cache is a CacheQuotaError saying how many bytes and what to do', async () => {
    const size = (await stat(join(QWEN, 'model.safetensors'))).size;
    const stored = new Map<string, Uint8Array>();
    // A browser-style store at its quota: small files fit, the weights do not.
    const full: ModelCacheStore = {
      describe: () => 'a nearly full test cache',
      get: async (key) => stored.get(key) ?? null,
      put: async (key, bytes) => {
        if (bytes.length > 4 << 20) throw new DOMException('Quota exceeded.', 'QuotaExceededError');
        stored.set(key, bytes);
      },
      keys: async () => [...stored.keys()],
      delete: async (key) => stored.delete(key),
    };
    const error = await loadModelFiles(cachedHubSource(SINGLE, { endpoint: server.endpoint, cache: full })).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(CacheQuotaError);
    const q = error as CacheQuotaError;
    expect([q.key, q.bytesNeeded, q.where]).toEqual([`${server.endpoint}/${SINGLE}/resolve/main/model.safetensors`, size, 'a nearly full test cache']);
    expect(q.message).toContain(`needs ${size} bytes`);
    expect(q.message).toMatch(/deleteCachedModel/);
    expect(q.message).toMatch(/cache: false/);
    expect(q.name).toBe('CacheQuotaError');

    // Node's disk-full errors become the same error.
    const diskFull: ModelCacheStore = { ...full, get: async () => null, put: async () => Promise.reject(Object.assign(new Error('ENOSPC: no space left on device'), { code: 'ENOSPC' })) };
    await expect(cachedHubSource(SINGLE, { endpoint: server.endpoint, cache: diskFull }).read('config.json')).rejects.toBeInstanceOf(CacheQuotaError);
  });

  it('cache: false downloads every time; unknown repos and revisions are errors that cache nothing', async () => {
    for (let i = 0; i < 2; i++) expectSameTensors(direct, await loadModelFiles(cachedHubSource(SINGLE, { endpoint: server.endpoint, cache: false })));
    expect(fileRequests(server.requests).filter((r) => r === 'GET model.safetensors')).toHaveLength(2);

    const cache = nodeDirectoryCacheStore(freshCacheDir());
    await expect(loadModelFiles(cachedHubSource('fixtures/nope', { endpoint: server.endpoint, cache }))).rejects.toThrow(/RepositoryNotFound/);
    await expect(loadModelFiles(cachedHubSource(SINGLE, { endpoint: server.endpoint, revision: 'v2', cache }))).rejects.toThrow(/RevisionNotFound/);
    server.faults.set(`${SINGLE}/config.json`, 'fail');
    await expect(loadModelFiles(cachedHubSource(SINGLE, { endpoint: server.endpoint, cache }))).rejects.toThrow(/HTTP 500/);
    expect(await cache.keys()).toEqual([]);
    expect(() => cachedHubSource('../etc', { cache })).toThrow(ModelFileError);
  });

  it('a hub that cannot be reached says so and names hubEndpoint (once: "request failed: fetch failed")', async () => {
    // Port 1 on the loopback: nothing listens, the connection is refused at once.
    const err = await loadModelFiles(cachedHubSource(SINGLE, { endpoint: 'http://127.0.0.1:1', cache: false })).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ModelFileError);
    expect((err as Error).message).toMatch(
      /the hub at http:\/\/127\.0\.0\.1:1 could not be reached \(no network, or the endpoint is wrong\): set hubEndpoint to a reachable hub or mirror, or load the model from a local folder \(fetch failed\)/,
    );
  });

  it('sends the access token, and names the hub folder in describe()', async () => {
    const seen: (string | null)[] = [];
    const spy: typeof fetch = async (input, init) => {
      seen.push(new Headers(init?.headers).get('authorization'));
      return fetch(input, init);
    };
    const source = cachedHubSource(SINGLE, { endpoint: `${server.endpoint}/`, accessToken: 'hf_test', fetch: spy, cache: false });
    expect(source.describe()).toBe(`${server.endpoint}/${SINGLE}/resolve/main`);
    expect(await source.read('config.json')).not.toBeNull();
    expect(seen).toEqual(['Bearer hf_test']);
  });
});
