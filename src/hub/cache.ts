// Where downloaded model files are kept between loads: the Cache API in browsers (keyed by the
// file's URL), a directory in Node (src/hub/node-cache.ts). A store holds complete files only:
// the hub source puts a file after its download was checked whole, and each store's put is atomic
// (a Cache API put commits at once; the directory store writes a temp file and renames it).

import { CacheQuotaError, CacheUnavailableError, isQuotaError } from './errors.js';

export interface ModelCacheStore {
  /** The store, for messages ('Cache API cache webslo-models', a directory). */
  describe?(): string;
  /** A cached file's bytes, or null when it is not cached. */
  get(key: string): Promise<Uint8Array | null>;
  /** Stores a complete file; a full store throws CacheQuotaError (or a raw quota error). */
  put(key: string, bytes: Uint8Array): Promise<void>;
  /** Every cached key (file URL). */
  keys(): Promise<string[]>;
  /** Removes a key; false when it was not cached. */
  delete(key: string): Promise<boolean>;
  /** A cached file's size without reading it (for listing); null when it is not cached. */
  size?(key: string): Promise<number | null>;
}

export const DEFAULT_BROWSER_CACHE = 'webslo-models';

/** Bytes per chunk when a file is streamed into the Cache API. */
const PUT_CHUNK = 1 << 20;

/**
 * The file as a stream of views into its own buffer, so that Cache.put copies one chunk at a
 * time instead of the browser first copying the whole file into a second buffer.
 */
function chunked(bytes: Uint8Array): ReadableStream<Uint8Array> {
  let at = 0;
  return new ReadableStream<Uint8Array>(
    {
      pull(controller) {
        if (at >= bytes.length) return controller.close();
        const end = Math.min(at + PUT_CHUNK, bytes.length);
        controller.enqueue(bytes.subarray(at, end));
        at = end;
      },
    },
    { highWaterMark: 0 },
  );
}

/** Free bytes of this origin's storage quota, or null when the browser does not say. */
async function browserFreeBytes(): Promise<number | null> {
  try {
    const estimate = await globalThis.navigator?.storage?.estimate?.();
    if (estimate?.quota === undefined || estimate.usage === undefined) return null;
    return Math.max(0, estimate.quota - estimate.usage);
  } catch {
    return null;
  }
}

/** A store in the Cache API (browsers, workers): one Response per file, keyed by its URL. */
export function browserCacheStore(name: string = DEFAULT_BROWSER_CACHE): ModelCacheStore {
  const where = `Cache API cache '${name}'`;
  let opened: Promise<Cache> | undefined;
  const open = (): Promise<Cache> => {
    if (typeof globalThis.caches === 'undefined') {
      // Only secure contexts (https, localhost) have the Cache API.
      return Promise.reject(new CacheUnavailableError(`this context has no Cache API (${where}); it needs https or localhost`));
    }
    return (opened ??= globalThis.caches.open(name));
  };
  return {
    describe: () => where,
    async get(key) {
      const res = await (await open()).match(key);
      return res ? new Uint8Array(await res.arrayBuffer()) : null;
    },
    async put(key, bytes) {
      const cache = await open();
      const headers = { 'content-type': 'application/octet-stream', 'content-length': String(bytes.length) };
      try {
        await cache.put(key, new Response(chunked(bytes), { headers }));
      } catch (e) {
        if (isQuotaError(e)) throw new CacheQuotaError(key, bytes.length, where, await browserFreeBytes());
        throw e;
      }
    },
    async keys() {
      return (await (await open()).keys()).map((req) => req.url);
    },
    async delete(key) {
      return (await open()).delete(key);
    },
    async size(key) {
      const res = await (await open()).match(key);
      if (!res) return null;
      const declared = Number(res.headers.get('content-length') ?? NaN);
      if (Number.isSafeInteger(declared) && declared >= 0) {
        await res.body?.cancel().catch(() => undefined);
        return declared;
      }
      return (await res.blob()).size;
    },
  };
}
