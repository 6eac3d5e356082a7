// Listing and deleting cached models. A store only knows file URLs, so models are recovered from
// the hub layout {endpoint}/{repoId}/resolve/{revision}/{file}. A URL alone cannot tell an endpoint
// with a path ('http://host/models') from a two-part repo id ('models/tiny-qwen2'): without an
// `endpoint` the repo id is taken as the two segments before 'resolve' (one at the origin's root);
// pass the endpoint the model was loaded with to split such URLs as it did.

import { checkRepoId } from '../model/source.js';
import type { ModelCacheStore } from './cache.js';
import { defaultCacheStore } from './default-store.js';
import { nodeDirectoryCacheStore } from './node-cache.js';
import { ABSENT_MARKER, absoluteEndpoint } from './hub-source.js';

export interface CachedFile {
  file: string;
  bytes: number;
}

export interface CachedModel {
  repoId: string;
  revision: string;
  endpoint: string;
  /** Cached files, by name (files the repo lacks are remembered too, but not listed). */
  files: CachedFile[];
  /** Sum of the files' bytes. */
  bytes: number;
}

export interface CachedModelQuery {
  /** Default: the `cacheDir` store when given, else defaultCacheStore(); none there means nothing is cached. */
  store?: ModelCacheStore;
  /** Node: the cache directory an engine was created with (`createEngine({ cacheDir })`). */
  cacheDir?: string;
  /** The endpoint the models were loaded from; only its models are listed. */
  endpoint?: string;
}

export interface DeleteCachedModelOptions extends CachedModelQuery {
  /** Only this revision; default: every cached revision. */
  revision?: string;
}

interface ParsedKey {
  endpoint: string;
  repoId: string;
  revision: string;
  file: string;
}

/** Splits a cache key in the hub layout; null for keys that are not (another app's entries). */
function parseKey(key: string, endpoint: string | undefined): ParsedKey | null {
  let url: URL;
  try {
    url = new URL(key);
  } catch {
    return null;
  }
  let prefix = url.origin;
  let rest = url.pathname.slice(1).split('/');
  if (endpoint !== undefined) {
    let root = endpoint.replace(/\/+$/, '');
    try {
      root = new URL(root).href.replace(/\/+$/, ''); // as the key is: lower-case host, default port dropped
    } catch {
      return null;
    }
    if (!`${url.origin}${url.pathname}`.startsWith(`${root}/`)) return null;
    prefix = root;
    rest = `${url.origin}${url.pathname}`.slice(root.length + 1).split('/');
  }
  const at = rest.indexOf('resolve');
  if (at < 1 || at + 2 >= rest.length || (endpoint !== undefined && at > 2)) return null;
  const repoStart = Math.max(0, at - 2);
  try {
    const repoId = rest.slice(repoStart, at).join('/');
    checkRepoId(repoId);
    return {
      endpoint: [prefix, ...rest.slice(0, repoStart)].join('/'),
      repoId,
      revision: decodeURIComponent(rest[at + 1]!),
      file: rest
        .slice(at + 2)
        .map(decodeURIComponent)
        .join('/'),
    };
  } catch {
    return null;
  }
}

interface Group extends CachedModel {
  keys: string[];
  markers: string[];
}

async function groups(store: ModelCacheStore, endpoint: string | undefined): Promise<Group[]> {
  const byModel = new Map<string, Group>();
  for (const key of await store.keys()) {
    const p = parseKey(key, absoluteEndpoint(endpoint));
    if (!p) continue;
    const id = JSON.stringify([p.endpoint, p.repoId, p.revision]);
    let g = byModel.get(id);
    if (!g) byModel.set(id, (g = { endpoint: p.endpoint, repoId: p.repoId, revision: p.revision, files: [], bytes: 0, keys: [], markers: [] }));
    if (p.file.startsWith(`${ABSENT_MARKER}/`)) {
      g.markers.push(key);
      continue;
    }
    const bytes = (await store.size?.(key)) ?? (await store.get(key))?.length ?? 0;
    g.keys.push(key);
    g.files.push({ file: p.file, bytes });
    g.bytes += bytes;
  }
  const order = (g: Group): string => `${g.endpoint}\u0000${g.repoId}\u0000${g.revision}`;
  return [...byModel.values()].sort((a, b) => (order(a) < order(b) ? -1 : order(a) > order(b) ? 1 : 0));
}

/** The store a query names by its cache directory, else the default one. */
function storeOf(q: CachedModelQuery): ModelCacheStore | undefined {
  return (q.cacheDir !== undefined ? nodeDirectoryCacheStore(q.cacheDir) : defaultCacheStore()) ?? undefined;
}

function query(arg: ModelCacheStore | CachedModelQuery | undefined): CachedModelQuery {
  return arg !== undefined && 'get' in arg && typeof arg.get === 'function' ? { store: arg } : ((arg ?? {}) as CachedModelQuery);
}

/** The models in a cache, with their files and sizes. Accepts a store or { store | cacheDir, endpoint }. */
export async function listCachedModels(options?: ModelCacheStore | CachedModelQuery): Promise<CachedModel[]> {
  const q = query(options);
  const { store = storeOf(q), endpoint } = q;
  if (!store) return [];
  return (await groups(store, endpoint))
    .filter((g) => g.files.length > 0)
    .map(({ endpoint: e, repoId, revision, files, bytes }) => ({
      endpoint: e,
      repoId,
      revision,
      files: files.sort((a, b) => (a.file < b.file ? -1 : a.file > b.file ? 1 : 0)),
      bytes,
    }));
}

/** Deletes a model's cached files (every revision unless one is given); returns how many. */
export async function deleteCachedModel(repoId: string, options: DeleteCachedModelOptions = {}): Promise<number> {
  checkRepoId(repoId);
  const store = options.store ?? storeOf(options);
  if (!store) return 0;
  let deleted = 0;
  for (const g of await groups(store, options.endpoint)) {
    if (g.repoId !== repoId || (options.revision !== undefined && g.revision !== options.revision)) continue;
    for (const key of g.keys) if (await store.delete(key)) deleted++;
    for (const key of g.markers) await store.delete(key);
  }
  return deleted;
}
