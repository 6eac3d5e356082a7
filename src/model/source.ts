// Where a model folder's files come from: a directory (Node), an HTTP server laid out like a folder,
// the Hugging Face hub, or File objects a user dropped into the page. Sources only fetch bytes;
// validating them is load.ts's job.

import type * as FsPromises from 'node:fs/promises';
import { ModelFileError } from './errors.js';

export interface ModelSource {
  /** The folder, base URL or file set, for messages; `${describe()}/${file}` names a file. */
  describe(): string;
  /** The file's bytes, or null when the folder has no such file; other failures throw ModelFileError. */
  read(file: string): Promise<Uint8Array | null>;
  /** Set when the model is one GGUF file (llama.cpp's format) of this name, not a folder of HF files. */
  readonly gguf?: string;
}

/**
 * File names reach sources from untrusted JSON (an index's weight_map), so only plain relative
 * paths are allowed: no absolute paths, `..`/`.` segments, backslashes or control characters.
 */
export function checkFileName(file: string, where: string): void {
  const segments = file.split('/');
  const ok =
    file.length > 0 && file.length <= 1024 && ![...file].some((c) => c === '\\' || c.charCodeAt(0) < 0x20 || c.charCodeAt(0) === 0x7f) && segments.every((s) => s !== '' && s !== '.' && s !== '..');
  if (!ok) throw new ModelFileError(`${where}/${file}`, 'is not a plain relative file name inside the model folder');
}

function message(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

/** One GGUF file on disk (`path` ends in .gguf): the whole model, config and weights. */
export function nodeGgufFileSource(path: string): ModelSource {
  const cut = path.lastIndexOf('/');
  const dir = cut < 0 ? '.' : path.slice(0, cut) || '/';
  const name = path.slice(cut + 1);
  const folder = nodeDirectorySource(dir);
  return { describe: () => folder.describe(), read: (file) => folder.read(file), gguf: name };
}

/**
 * A model folder on disk. node:fs is imported on first read, through a computed specifier that
 * bundlers leave alone (as src/gpu/device.ts does for Dawn), so browser bundles never see it.
 */
export function nodeDirectorySource(dir: string): ModelSource {
  const base = dir.replace(/\/+$/, '') || '/';
  return {
    describe: () => base,
    async read(file) {
      checkFileName(file, base);
      const specifier = 'node:fs/promises';
      const fs = (await import(/* @vite-ignore */ specifier)) as typeof FsPromises;
      const path = `${base}/${file}`;
      let handle: FsPromises.FileHandle;
      try {
        handle = await fs.open(path, 'r');
      } catch (e) {
        if ((e as { code?: unknown }).code === 'ENOENT') return null;
        throw new ModelFileError(path, `cannot open: ${message(e)}`);
      }
      try {
        // Read into one Uint8Array of the stat'ed size: fs.readFile refuses files over 2 GiB,
        // and a plain Uint8Array (not a pooled Buffer) is what the rest of the engine expects.
        const { size } = await handle.stat();
        const bytes = new Uint8Array(size);
        let filled = 0;
        while (filled < size) {
          const { bytesRead } = await handle.read(bytes, filled, Math.min(size - filled, 1 << 30), filled);
          if (bytesRead === 0) throw new Error(`file shrank to ${filled} bytes while being read`);
          filled += bytesRead;
        }
        return bytes;
      } catch (e) {
        throw new ModelFileError(path, `cannot read: ${message(e)}`);
      } finally {
        await handle.close();
      }
    },
  };
}

export interface HttpSourceOptions {
  /** Extra request headers (an Authorization bearer token for a gated hub repo). */
  headers?: Record<string, string>;
  /** A fetch to use instead of the global one. */
  fetch?: typeof fetch;
}

/** `${base}/${file}` with each path segment percent-encoded (checkFileName first). */
export function fileUrl(baseUrl: string, file: string): string {
  return `${baseUrl.replace(/\/+$/, '')}/${file.split('/').map(encodeURIComponent).join('/')}`;
}

/**
 * Reads an HTTP answer for a model file: true when it carries the file, false when the file is
 * absent (404). A 404 for a missing repo or revision, and every other failure, throws
 * ModelFileError. The body is cancelled whenever false is returned or an error thrown.
 */
export async function checkFileResponse(url: string, res: Response): Promise<boolean> {
  if (res.status === 404) {
    // The hub answers 404 for a missing repo or revision too; only a missing file is "absent".
    const code = res.headers.get('x-error-code');
    await res.body?.cancel().catch(() => undefined);
    if (code === 'RepositoryNotFound' || code === 'RevisionNotFound') {
      throw new ModelFileError(url, `HTTP 404 (${code})`, 404);
    }
    return false;
  }
  if (!res.ok) {
    await res.body?.cancel().catch(() => undefined);
    const hint = res.status === 401 || res.status === 403 ? ' (a gated or private repo needs an access token)' : '';
    throw new ModelFileError(url, `HTTP ${res.status} ${res.statusText}${hint}`, res.status);
  }
  return true;
}

/** A model folder served over HTTP: `${baseUrl}/${file}`. 404 means absent; other errors throw. */
export function httpSource(baseUrl: string, options: HttpSourceOptions = {}): ModelSource {
  const base = baseUrl.replace(/\/+$/, '');
  const doFetch = options.fetch ?? ((input: RequestInfo | URL, init?: RequestInit) => fetch(input, init));
  return {
    describe: () => base,
    async read(file) {
      checkFileName(file, base);
      const url = fileUrl(base, file);
      let res: Response;
      try {
        res = await doFetch(url, { headers: options.headers ?? {} });
      } catch (e) {
        throw new ModelFileError(url, `request failed: ${message(e)}`);
      }
      if (!(await checkFileResponse(url, res))) return null;
      try {
        return new Uint8Array(await res.arrayBuffer());
      } catch (e) {
        throw new ModelFileError(url, `download failed: ${message(e)}`, res.status);
      }
    },
  };
}

export interface HubSourceOptions {
  endpoint?: string;
  revision?: string;
  /** A Hugging Face access token, sent as a bearer token (gated and private repos). */
  accessToken?: string;
  fetch?: typeof fetch;
}

export const DEFAULT_HUB_ENDPOINT = 'https://huggingface.co';

/** Throws ModelFileError unless `repoId` is a hub repo id ('org/name', or a legacy 'name'). */
export function checkRepoId(repoId: string): void {
  if (!/^[\w.-]+(\/[\w.-]+)?$/.test(repoId) || repoId.split('/').some((s) => s === '.' || s === '..')) {
    throw new ModelFileError(repoId, "is not a hub repo id ('org/name')");
  }
}

/** `${endpoint}/${repoId}/resolve/${revision}`: the folder URL hubSource reads from. */
export function hubBaseUrl(repoId: string, options: Pick<HubSourceOptions, 'endpoint' | 'revision'> = {}): string {
  const { endpoint = DEFAULT_HUB_ENDPOINT, revision = 'main' } = options;
  checkRepoId(repoId);
  // The hub expects the revision as one path segment: 'refs/pr/1' travels as 'refs%2Fpr%2F1'.
  return `${endpoint.replace(/\/+$/, '')}/${repoId}/resolve/${encodeURIComponent(revision)}`;
}

/** The URL of one file of a hub repo (the file name is checked like every source's). */
export function hubFileUrl(repoId: string, file: string, options: Pick<HubSourceOptions, 'endpoint' | 'revision'> = {}): string {
  const base = hubBaseUrl(repoId, options);
  checkFileName(file, base);
  return fileUrl(base, file);
}

/** A repository on the Hugging Face hub (or a mirror with the same URL layout). */
export function hubSource(repoId: string, options: HubSourceOptions = {}): ModelSource {
  const base = hubBaseUrl(repoId, options);
  const headers: Record<string, string> = options.accessToken ? { authorization: `Bearer ${options.accessToken}` } : {};
  return httpSource(base, { headers, ...(options.fetch ? { fetch: options.fetch } : {}) });
}

/** The part of a browser File this needs (Node's File lacks webkitRelativePath). */
export interface FileLike {
  name: string;
  webkitRelativePath?: string;
  arrayBuffer(): Promise<ArrayBuffer>;
}

/**
 * Files picked or dropped in a browser. A requested name matches a file's webkitRelativePath
 * suffix, or its basename; two files matching the same name (a parent folder holding two models)
 * is an error rather than a guess.
 */
export function fileListSource(files: Iterable<FileLike> | ArrayLike<FileLike>): ModelSource {
  const list = Array.from(files as ArrayLike<FileLike>);
  const where = `${list.length} selected files`;
  return {
    describe: () => where,
    async read(file) {
      checkFileName(file, where);
      const base = file.slice(file.lastIndexOf('/') + 1);
      const byPath = list.filter((f) => f.webkitRelativePath && (f.webkitRelativePath === file || f.webkitRelativePath.endsWith(`/${file}`)));
      const matches = byPath.length > 0 ? byPath : list.filter((f) => f.name === base);
      if (matches.length === 0) return null;
      if (matches.length > 1) {
        const paths = matches.map((f) => f.webkitRelativePath || f.name).join(', ');
        throw new ModelFileError(`${where}/${file}`, `matches ${matches.length} files (${paths}); select one model folder`);
      }
      try {
        return new Uint8Array(await matches[0]!.arrayBuffer());
      } catch (e) {
        throw new ModelFileError(`${where}/${file}`, `cannot read: ${message(e)}`);
      }
    },
  };
}
