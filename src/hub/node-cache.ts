// The Node model cache: one file per cached URL under a directory, at
// <dir>/<scheme>/<host>/<url path> (e.g. https/huggingface.co/Qwen/Qwen2.5-0.5B/resolve/main/config.json).
// Every path segment is re-encoded with encodeURIComponent, so a key can never name '..', a
// separator or anything outside the directory. Writes go to <dir>/.tmp and are renamed into
// place after an fsync: a crash or a full disk never leaves a partial file under a key.
// node:fs is imported on first use through a computed specifier, as nodeDirectorySource does,
// so browser bundles never see it.

import type { Dirent } from 'node:fs';
import type * as FsPromises from 'node:fs/promises';
import type * as Os from 'node:os';
import type { ModelCacheStore } from './cache.js';
import { CacheQuotaError, isQuotaError } from './errors.js';
import { ModelFileError } from '../model/errors.js';
import { nodeDirectorySource } from '../model/source.js';

const TMP = '.tmp';
const SCHEMES = ['http', 'https'];

async function nodeFs(): Promise<typeof FsPromises> {
  const specifier = 'node:fs/promises';
  return (await import(/* @vite-ignore */ specifier)) as typeof FsPromises;
}

/** `$WEBSLO_CACHE_DIR`, else `~/.cache/webslo`. */
export async function defaultNodeCacheDir(): Promise<string> {
  const fromEnv = globalThis.process?.env?.['WEBSLO_CACHE_DIR'];
  if (fromEnv) return fromEnv;
  const specifier = 'node:os';
  const os = (await import(/* @vite-ignore */ specifier)) as typeof Os;
  return `${os.homedir()}/.cache/webslo`;
}

/** One URL path segment, canonically percent-encoded: only [A-Za-z0-9-_.~%] remain. */
function canonicalSegment(key: string, segment: string): string {
  let decoded: string;
  try {
    decoded = decodeURIComponent(segment);
  } catch {
    throw new ModelFileError(key, 'has malformed percent-encoding, so it cannot be a cache key');
  }
  const encoded = encodeURIComponent(decoded).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
  if (encoded === '' || encoded === '.' || encoded === '..') throw new ModelFileError(key, `has a '${segment}' path segment, so it cannot be a cache key`);
  return encoded;
}

/** The key's path under the cache directory, as segments: [scheme, host, ...path]. */
export function cacheKeyPath(key: string): string[] {
  let url: URL;
  try {
    url = new URL(key);
  } catch {
    throw new ModelFileError(key, 'is not an absolute URL, so it cannot be a cache key');
  }
  const scheme = url.protocol.slice(0, -1);
  if (!SCHEMES.includes(scheme) || url.search || url.hash || url.username || url.password) {
    throw new ModelFileError(key, 'cannot be a cache key (only http(s) URLs without query, fragment or credentials)');
  }
  return [
    scheme,
    canonicalSegment(key, url.host),
    ...url.pathname
      .slice(1)
      .split('/')
      .map((s) => canonicalSegment(key, s)),
  ];
}

/** The inverse of cacheKeyPath (in canonical encoding). */
function pathKey(segments: readonly string[]): string {
  const [scheme, host, ...path] = segments;
  return `${scheme}://${decodeURIComponent(host!)}/${path.join('/')}`;
}

function errorCode(e: unknown): unknown {
  return (e as { code?: unknown }).code;
}

function message(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

/** Free bytes on the file system holding `dir`, or null when it cannot be told. */
async function freeBytes(fs: typeof FsPromises, dir: string): Promise<number | null> {
  try {
    const s = await fs.statfs(dir);
    return s.bavail * s.bsize;
  } catch {
    return null;
  }
}

/** Files under `dir`/`prefix`, as path segments relative to `dir` (the temp folder skipped). */
async function walk(fs: typeof FsPromises, dir: string, prefix: string[]): Promise<string[][]> {
  let entries: Dirent[];
  try {
    entries = await fs.readdir([dir, ...prefix].join('/'), { withFileTypes: true });
  } catch (e) {
    if (errorCode(e) === 'ENOENT') return [];
    throw e;
  }
  const out: string[][] = [];
  for (const entry of entries) {
    const path = [...prefix, entry.name];
    if (entry.isDirectory()) out.push(...(await walk(fs, dir, path)));
    else if (entry.isFile()) out.push(path);
  }
  return out;
}

/** A cache directory (Node). Without `dir`: $WEBSLO_CACHE_DIR, else ~/.cache/webslo. */
export function nodeDirectoryCacheStore(dir?: string): ModelCacheStore {
  let root: string | undefined = dir === undefined ? undefined : dir.replace(/\/+$/, '') || '/';
  const resolveRoot = async (): Promise<string> => (root ??= (await defaultNodeCacheDir()).replace(/\/+$/, ''));
  const where = (): string => `cache directory ${root ?? dir ?? '$WEBSLO_CACHE_DIR or ~/.cache/webslo'}`;

  return {
    describe: where,
    async get(key) {
      return nodeDirectorySource(await resolveRoot()).read(cacheKeyPath(key).join('/'));
    },
    async put(key, bytes) {
      const segments = cacheKeyPath(key);
      const base = await resolveRoot();
      const fs = await nodeFs();
      const path = `${base}/${segments.join('/')}`;
      const tmp = `${base}/${TMP}/${globalThis.crypto.randomUUID()}`;
      let handle: FsPromises.FileHandle | undefined;
      try {
        await fs.mkdir(path.slice(0, path.lastIndexOf('/')), { recursive: true });
        await fs.mkdir(`${base}/${TMP}`, { recursive: true });
        handle = await fs.open(tmp, 'wx');
        for (let at = 0; at < bytes.length;) {
          const { bytesWritten } = await handle.write(bytes, at, Math.min(bytes.length - at, 1 << 30), at);
          at += bytesWritten;
        }
        // Durable before it is visible under its key: after a power loss the key holds all or nothing.
        await handle.sync();
        await handle.close();
        handle = undefined;
        await fs.rename(tmp, path);
      } catch (e) {
        await handle?.close().catch(() => undefined);
        await fs.rm(tmp, { force: true }).catch(() => undefined);
        if (isQuotaError(e)) throw new CacheQuotaError(key, bytes.length, where(), await freeBytes(fs, base));
        throw new ModelFileError(path, `cannot write to the model cache: ${message(e)}`);
      }
    },
    async keys() {
      const base = await resolveRoot();
      const fs = await nodeFs();
      const found: string[] = [];
      for (const scheme of SCHEMES) {
        for (const path of await walk(fs, base, [scheme])) {
          if (path.length >= 3) found.push(pathKey(path));
        }
      }
      return found.sort();
    },
    async delete(key) {
      const segments = cacheKeyPath(key);
      const base = await resolveRoot();
      const fs = await nodeFs();
      try {
        await fs.unlink(`${base}/${segments.join('/')}`);
      } catch (e) {
        if (errorCode(e) === 'ENOENT') return false;
        throw new ModelFileError(`${base}/${segments.join('/')}`, `cannot delete from the model cache: ${message(e)}`);
      }
      // Empty folders left behind would list as nothing but clutter; rmdir stops at the first non-empty one.
      for (let n = segments.length - 1; n > 0; n--) {
        try {
          await fs.rmdir(`${base}/${segments.slice(0, n).join('/')}`);
        } catch {
          break;
        }
      }
      return true;
    },
    async size(key) {
      const segments = cacheKeyPath(key);
      const fs = await nodeFs();
      try {
        const st = await fs.stat(`${await resolveRoot()}/${segments.join('/')}`);
        return st.isFile() ? st.size : null;
      } catch (e) {
        if (errorCode(e) === 'ENOENT') return null;
        throw e;
      }
    },
  };
}
