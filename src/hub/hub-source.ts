// A hub repository as a ModelSource that keeps what it downloads: each file is served from the
// cache when it is there (no request at all), else downloaded whole (download.ts, or a GGUF file
// header first through hub-gguf.ts's downloader) and stored.
// Files the repo lacks (404, e.g. an optional generation_config.json) are remembered too, as empty
// markers, so a cached model loads with no network. Cached files are not revalidated: pin a
// commit as `revision`, or deleteCachedModel() to pick up a moved branch.

import { checkFileName, fileUrl, hubBaseUrl, type HubSourceOptions, type ModelSource } from '../model/source.js';
import type { ModelCacheStore } from './cache.js';
import { defaultCacheStore } from './default-store.js';
import { downloadFile, headFileSize, type DownloadOptions } from './download.js';
import { CacheQuotaError, isQuotaError } from './errors.js';

/** Path segment under a revision's folder URL where absent-file markers are kept. */
export const ABSENT_MARKER = '.webslo-absent';

const INDEX = 'model.safetensors.index.json';

export interface HubLoadProgress {
  file: string;
  /** Bytes of this file so far. */
  fileLoaded: number;
  /** This file's size, or null while the server has not said. */
  fileTotal: number | null;
  /** Bytes of every file so far, this one included. */
  loaded: number;
  /**
   * The sizes known so far: files read, the one being read, and the shards an index named (from
   * the cache or a HEAD request). It grows as files become known and ends equal to `loaded`.
   */
  total: number;
  /** Served from the cache, not downloaded. */
  fromCache: boolean;
}

export interface CachedHubSourceOptions extends HubSourceOptions {
  /** Where files are kept; false for none. Default: defaultCacheStore() (Cache API or ~/.cache/webslo). */
  cache?: ModelCacheStore | false;
  onProgress?: (ev: HubLoadProgress) => void;
  signal?: AbortSignal;
}

/** The endpoint as an absolute URL (a page may say '/models'); cache keys must be absolute. */
export function absoluteEndpoint(endpoint: string | undefined): string | undefined {
  const here = globalThis.location?.href;
  return endpoint === undefined || here === undefined ? endpoint : new URL(endpoint, here).href;
}

/** Shard names from an index's weight_map; anything malformed is left for load.ts to report. */
function shardNames(bytes: Uint8Array, base: string): string[] {
  try {
    const json = JSON.parse(new TextDecoder().decode(bytes)) as { weight_map?: unknown };
    const map = json.weight_map;
    if (typeof map !== 'object' || map === null) return [];
    const names = new Set<string>();
    for (const shard of Object.values(map)) {
      if (typeof shard !== 'string') continue;
      checkFileName(shard, base);
      names.add(shard);
    }
    return [...names];
  } catch {
    return [];
  }
}

/** How a file that is not cached is fetched: downloadFile, or downloadGguf for a GGUF file (hub-gguf.ts). */
export type FileDownloader = (url: string, options: DownloadOptions) => Promise<Uint8Array | null>;

export function cachedHubSource(repoId: string, options: CachedHubSourceOptions = {}, download: FileDownloader = downloadFile): ModelSource {
  const endpoint = absoluteEndpoint(options.endpoint);
  const base = hubBaseUrl(repoId, { ...options, ...(endpoint === undefined ? {} : { endpoint }) });
  const store = options.cache === false ? null : (options.cache ?? defaultCacheStore());
  const headers: Record<string, string> = options.accessToken ? { authorization: `Bearer ${options.accessToken}` } : {};
  const unreachable = `the hub at ${new URL(base).origin} could not be reached (no network, or the endpoint is wrong): set hubEndpoint to a reachable hub or mirror, or load the model from a local folder`;
  const net = { headers, unreachable, ...(options.fetch ? { fetch: options.fetch } : {}), ...(options.signal ? { signal: options.signal } : {}) };
  const where = store?.describe?.() ?? 'the model cache';

  let done = 0;
  /** Sizes of files announced but not read yet (shards named by an index). */
  const pending = new Map<string, number>();
  const totalWith = (file: string, size: number): number => {
    let sum = done + size;
    for (const [name, bytes] of pending) if (name !== file) sum += bytes;
    return sum;
  };
  const emit = (file: string, fileLoaded: number, fileTotal: number | null, fromCache: boolean): void => {
    options.onProgress?.({ file, fileLoaded, fileTotal, loaded: done + fileLoaded, total: totalWith(file, Math.max(fileTotal ?? 0, fileLoaded)), fromCache });
  };
  const finish = (file: string, bytes: number): void => {
    done += bytes;
    pending.delete(file);
  };

  async function keep(key: string, bytes: Uint8Array): Promise<void> {
    if (!store) return;
    try {
      await store.put(key, bytes);
    } catch (e) {
      if (e instanceof CacheQuotaError || !isQuotaError(e)) throw e;
      throw new CacheQuotaError(key, bytes.length, where);
    }
  }

  /** Learns the shards' sizes up front, so `total` covers the whole model from here on. */
  async function announceShards(index: Uint8Array): Promise<void> {
    const shards = shardNames(index, base).filter((s) => !pending.has(s));
    const sizes = await Promise.all(
      shards.map(async (shard) => {
        const url = fileUrl(base, shard);
        return (store ? await store.size?.(url) : null) ?? (await headFileSize(url, net));
      }),
    );
    shards.forEach((shard, i) => {
      const size = sizes[i];
      if (size !== null && size !== undefined) pending.set(shard, size);
    });
  }

  return {
    describe: () => base,
    async read(file) {
      checkFileName(file, base);
      const url = fileUrl(base, file);
      const marker = fileUrl(base, `${ABSENT_MARKER}/${file}`);
      let bytes: Uint8Array | null = null;
      let fromCache = false;
      if (store) {
        bytes = await store.get(url);
        if (bytes === null && (await store.get(marker)) !== null) return null;
        fromCache = bytes !== null;
      }
      if (bytes === null) {
        bytes = await download(url, { ...net, file, onProgress: (ev) => emit(file, ev.loaded, ev.total, false) });
        if (bytes === null) {
          await keep(marker, new Uint8Array(0));
          return null;
        }
        await keep(url, bytes);
      }
      if (file === INDEX) await announceShards(bytes);
      // The file's last event: whole, and (for an index) with its shards now in `total`.
      emit(file, bytes.length, bytes.length, fromCache);
      finish(file, bytes.length);
      return bytes;
    },
  };
}
