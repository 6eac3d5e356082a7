// The Node cache directory store (paths, atomic writes, listing) and listCachedModels /
// deleteCachedModel over models downloaded from a real local server in the hub layout.

import { mkdtemp, readdir, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  browserCacheStore,
  CacheQuotaError,
  CacheUnavailableError,
  cacheKeyPath,
  cachedHubSource,
  defaultCacheStore,
  defaultNodeCacheDir,
  deleteCachedModel,
  listCachedModels,
  nodeDirectoryCacheStore,
  type CachedModel,
} from '../../src/hub/index.js';
import { ModelFileError } from '../../src/model/errors.js';
import { loadModelFiles } from '../../src/model/load.js';
import { startHubServer, writeShardedCopy, type HubServer } from '../helpers/hub-server.js';

const QWEN = fileURLToPath(new URL('../fixtures/tiny-qwen2', import.meta.url));

let tmp: string;
let server: HubServer;
let shards: string[];
beforeAll(async () => {
  tmp = await mkdtemp(join(tmpdir(), 'webslo-hub-models-'));
  shards = await writeShardedCopy(QWEN, join(tmp, 'sharded'), 2);
  // 'mirror/tiny-qwen2' doubles as the one-part repo 'tiny-qwen2' under the endpoint .../mirror.
  server = await startHubServer({ 'fixtures/tiny-qwen2': QWEN, 'fixtures/tiny-qwen2-sharded': join(tmp, 'sharded'), 'mirror/tiny-qwen2': QWEN });
});
afterAll(async () => {
  await server.close();
  await rm(tmp, { recursive: true, force: true });
});

const size = async (file: string, dir = QWEN): Promise<number> => (await stat(join(dir, file))).size;

describe('nodeDirectoryCacheStore', () => {
  it('keeps each URL at <dir>/<scheme>/<host>/<path>, revision as one segment, and round-trips keys', async () => {
    const dir = join(tmp, 'store');
    const store = nodeDirectoryCacheStore(`${dir}/`);
    const key = 'https://huggingface.co/Qwen/Qwen2.5-0.5B/resolve/refs%2Fpr%2F1/sub/dir/config.json';
    expect(cacheKeyPath(key)).toEqual(['https', 'huggingface.co', 'Qwen', 'Qwen2.5-0.5B', 'resolve', 'refs%2Fpr%2F1', 'sub', 'dir', 'config.json']);
    expect(cacheKeyPath('http://127.0.0.1:8080/a/b(1)')).toEqual(['http', '127.0.0.1%3A8080', 'a', 'b%281%29']);
    await store.put(key, new Uint8Array([1, 2, 3]));
    await store.put('http://127.0.0.1:8080/x/y.bin', new Uint8Array(0));
    expect(await readdir(join(dir, 'https/huggingface.co/Qwen/Qwen2.5-0.5B/resolve/refs%2Fpr%2F1/sub/dir'))).toEqual(['config.json']);
    expect(await store.get(key)).toEqual(new Uint8Array([1, 2, 3]));
    expect(await store.size!(key)).toBe(3);
    expect(await store.get('https://huggingface.co/none')).toBeNull();
    expect(await store.keys()).toEqual(['http://127.0.0.1:8080/x/y.bin', key]);
    expect(await readdir(join(dir, '.tmp'))).toEqual([]); // written and renamed, no leftovers

    expect(await store.delete(key)).toBe(true);
    expect(await store.delete(key)).toBe(false);
    // Emptied folders go too, up to the store's root.
    expect((await readdir(dir)).sort()).toEqual(['.tmp', 'http']);
  });

  it('refuses keys that are not plain http(s) URLs, and none can leave the directory', async () => {
    const store = nodeDirectoryCacheStore(join(tmp, 'strict'));
    for (const bad of ['config.json', 'file:///etc/passwd', 'https://h/a?x=1', 'https://h/a#f', 'https://u:p@h/a', 'https://h/a//b', 'https://h/a/%E0%A4%A']) {
      await expect(store.put(bad, new Uint8Array(1)), bad).rejects.toBeInstanceOf(ModelFileError);
    }
    // The URL parser resolves dot segments, encoded or not, before a path is made.
    expect(cacheKeyPath('https://h/a/../../../etc/passwd')).toEqual(['https', 'h', 'etc', 'passwd']);
    expect(cacheKeyPath('https://h/a/%2e%2e/%2E%2E/b')).toEqual(['https', 'h', 'b']);
    expect(cacheKeyPath('https://h/a%2F..%2Fb')).toEqual(['https', 'h', 'a%2F..%2Fb']);
  });

  it('defaults to $WEBSLO_CACHE_DIR, else ~/.cache/webslo', async () => {
    const saved = process.env['WEBSLO_CACHE_DIR'];
    try {
      process.env['WEBSLO_CACHE_DIR'] = join(tmp, 'from-env');
      expect(await defaultNodeCacheDir()).toBe(join(tmp, 'from-env'));
      const store = nodeDirectoryCacheStore();
      await store.put('https://h/r/resolve/main/f', new Uint8Array([7]));
      expect(await readdir(join(tmp, 'from-env/https/h/r/resolve/main'))).toEqual(['f']);
      delete process.env['WEBSLO_CACHE_DIR'];
      expect(await defaultNodeCacheDir()).toMatch(/\/\.cache\/webslo$/);
    } finally {
      if (saved === undefined) delete process.env['WEBSLO_CACHE_DIR'];
      else process.env['WEBSLO_CACHE_DIR'] = saved;
    }
  });
});

describe('default stores and quota errors', () => {
  it('Node gets the cache directory; the Cache API store says what to do where there is none', async () => {
    expect(defaultCacheStore()?.describe?.()).toMatch(/^cache directory /);
    const e = await browserCacheStore()
      .get('https://h/x')
      .catch((err: unknown) => err);
    expect(e).toBeInstanceOf(CacheUnavailableError);
    expect((e as Error).message).toMatch(/needs https or localhost; pass cache: false/);
  });

  it('CacheQuotaError names the bytes, and shows free space only when it explains the failure', () => {
    const tight = new CacheQuotaError('https://h/r/resolve/main/model.safetensors', 5000, 'cache directory /c', 1200);
    expect(tight.message).toBe(
      'caching https://h/r/resolve/main/model.safetensors needs 5000 bytes, more than cache directory /c has room for (1200 bytes free): ' +
        'delete cached models with deleteCachedModel(repoId) (listCachedModels() shows them) or load with cache: false',
    );
    expect(new CacheQuotaError('k', 5000, 'w', 10 ** 10).message).not.toMatch(/bytes free/);
  });
});

describe('listCachedModels and deleteCachedModel', () => {
  it('list what was downloaded, with sizes, and delete by repo id', async () => {
    const store = nodeDirectoryCacheStore(join(tmp, 'models'));
    const { endpoint } = server;
    await loadModelFiles(cachedHubSource('fixtures/tiny-qwen2', { endpoint, cache: store }));
    await loadModelFiles(cachedHubSource('fixtures/tiny-qwen2-sharded', { endpoint, cache: store }));
    await cachedHubSource('fixtures/tiny-qwen2', { endpoint, cache: store, revision: 'refs/pr/1' })
      .read('config.json')
      .catch(() => undefined);

    const qwenFiles = ['config.json', 'model.safetensors', 'tokenizer.json', 'tokenizer_config.json'];
    const shardedFiles = ['config.json', 'model.safetensors.index.json', ...shards, 'tokenizer.json', 'tokenizer_config.json'].sort();
    const expected = async (repoId: string, files: string[], dir: string): Promise<CachedModel> => {
      const listed = await Promise.all(files.map(async (file) => ({ file, bytes: await size(file, dir) })));
      return { endpoint, repoId, revision: 'main', files: listed, bytes: listed.reduce((a, f) => a + f.bytes, 0) };
    };
    const models = await listCachedModels(store);
    expect(models).toEqual([await expected('fixtures/tiny-qwen2', qwenFiles, QWEN), await expected('fixtures/tiny-qwen2-sharded', shardedFiles, join(tmp, 'sharded'))]);
    // The absent generation_config.json is remembered (a marker key) but not listed as a file.
    expect((await store.keys()).some((k) => k.includes('.webslo-absent/generation_config.json'))).toBe(true);

    expect(await deleteCachedModel('fixtures/tiny-qwen2', { store, revision: 'v1' })).toBe(0);
    expect(await deleteCachedModel('fixtures/tiny-qwen2', { store })).toBe(4);
    expect((await listCachedModels({ store })).map((m) => m.repoId)).toEqual(['fixtures/tiny-qwen2-sharded']);
    expect((await store.keys()).some((k) => k.includes('/fixtures/tiny-qwen2/'))).toBe(false); // markers gone too
    expect(await deleteCachedModel('fixtures/tiny-qwen2-sharded', { store, revision: 'main' })).toBe(shardedFiles.length);
    expect(await listCachedModels(store)).toEqual([]);
    await expect(deleteCachedModel('../x', { store })).rejects.toBeInstanceOf(ModelFileError);
  });

  it('lists and deletes by the cache directory an engine was created with (once: the default cache was read instead)', async () => {
    const cacheDir = join(tmp, 'engine-dir');
    await loadModelFiles(cachedHubSource('fixtures/tiny-qwen2', { endpoint: server.endpoint, cache: nodeDirectoryCacheStore(cacheDir) }));
    // The default cache points at an empty directory: a fallback to it lists nothing and deletes
    // nothing (and never touches the user's real cache).
    const saved = process.env['WEBSLO_CACHE_DIR'];
    process.env['WEBSLO_CACHE_DIR'] = join(tmp, 'default-empty');
    try {
      expect((await listCachedModels({ cacheDir })).map((m) => m.repoId)).toEqual(['fixtures/tiny-qwen2']);
      expect(await deleteCachedModel('fixtures/tiny-qwen2', { cacheDir })).toBe(4);
      expect(await listCachedModels({ cacheDir })).toEqual([]);
    } finally {
      if (saved === undefined) delete process.env['WEBSLO_CACHE_DIR'];
      else process.env['WEBSLO_CACHE_DIR'] = saved;
    }
  });

  it('split URLs by the endpoint they were loaded with when it has a path', async () => {
    const store = nodeDirectoryCacheStore(join(tmp, 'mirror'));
    const mirror = `${server.endpoint}/mirror`;
    await cachedHubSource('tiny-qwen2', { endpoint: mirror, cache: store }).read('config.json');
    const config = await size('config.json');
    // Without the endpoint the URL reads as repo 'mirror/tiny-qwen2' at the origin...
    expect(await listCachedModels(store)).toEqual([{ endpoint: server.endpoint, repoId: 'mirror/tiny-qwen2', revision: 'main', files: [{ file: 'config.json', bytes: config }], bytes: config }]);
    // ...with it, as the one-part repo it was loaded as.
    expect(await listCachedModels({ store, endpoint: `${mirror}/` })).toEqual([
      { endpoint: mirror, repoId: 'tiny-qwen2', revision: 'main', files: [{ file: 'config.json', bytes: config }], bytes: config },
    ]);
    expect(await listCachedModels({ store, endpoint: 'https://elsewhere.example' })).toEqual([]);
    expect(await deleteCachedModel('tiny-qwen2', { store, endpoint: mirror })).toBe(1);
    expect(await store.keys()).toEqual([]);
  });
});
