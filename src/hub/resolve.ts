// One entry point from "the model the user named" to a ModelSource: a hub repo id (cached), a GGUF
// file in a hub repo ('org/name/file.gguf', cached), an http(s) folder or .gguf URL, a directory or
// .gguf file (Node; an existing path always wins over a hub name), files picked in a page, a
// directory handle, or a source.

import type * as FsPromises from 'node:fs/promises';
import { ModelFileError } from '../model/errors.js';
import { checkRepoId, fileListSource, httpSource, nodeDirectorySource, nodeGgufFileSource, type FileLike, type ModelSource } from '../model/source.js';
import { directoryHandleSource, type DirectoryHandleLike } from './directory-handle.js';
import { ModelSourceError } from './errors.js';
import { cachedHubGgufSource, parseHubGgufName } from './hub-gguf.js';
import { cachedHubSource, type CachedHubSourceOptions } from './hub-source.js';

/** What resolveModelSource accepts. */
export type ModelInput = string | ModelSource | ArrayLike<FileLike> | DirectoryHandleLike | { kind: 'directory-handle'; handle: DirectoryHandleLike };

export type ResolveModelOptions = CachedHubSourceOptions;

/**
 * In Node, the hub's own environment variables (huggingface_hub's) for what was not given:
 * $HF_ENDPOINT for the endpoint, and $HF_TOKEN only when `model` names no URL (the token goes to
 * the hub, never to another http(s) host). Elsewhere (a browser) only what was given.
 */
export function hubOptionsFromEnv(model: unknown, given: { endpoint?: string | undefined; accessToken?: string | undefined }): { endpoint?: string; accessToken?: string } {
  const env = (globalThis as { process?: { env?: Record<string, string | undefined> } }).process?.env;
  const endpoint = given.endpoint || env?.['HF_ENDPOINT'];
  const toHub = typeof model === 'string' && !/^[a-z][a-z\d+.-]*:\/\//i.test(model);
  const accessToken = given.accessToken || (toHub ? env?.['HF_TOKEN'] : undefined);
  return { ...(endpoint ? { endpoint } : {}), ...(accessToken ? { accessToken } : {}) };
}

function isRepoId(s: string): boolean {
  try {
    checkRepoId(s);
    return true;
  } catch {
    return false;
  }
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null;
}

function isDirectoryHandle(v: unknown): v is DirectoryHandleLike {
  return isObject(v) && v['kind'] === 'directory' && typeof v['getFileHandle'] === 'function' && typeof v['getDirectoryHandle'] === 'function';
}

function isModelSource(v: unknown): v is ModelSource {
  return isObject(v) && typeof v['read'] === 'function' && typeof v['describe'] === 'function';
}

function isFileLike(v: unknown): v is FileLike {
  return isObject(v) && typeof v['name'] === 'string' && typeof v['arrayBuffer'] === 'function';
}

/** For messages: the input without dumping a whole object. */
function show(v: unknown): string {
  if (typeof v === 'string') return JSON.stringify(v);
  if (Array.isArray(v)) return `an array of ${v.length}`;
  return v === null ? 'null' : typeof v === 'object' ? `an object (${Object.keys(v).slice(0, 4).join(', ') || 'no keys'})` : String(v);
}

const inNode = (): boolean => typeof globalThis.process?.versions?.node === 'string';

/** 'dir', 'file' or null (absent) for a path on disk; only called in Node. */
async function pathKind(path: string): Promise<'dir' | 'file' | null> {
  const specifier = 'node:fs/promises';
  const fs = (await import(/* @vite-ignore */ specifier)) as typeof FsPromises;
  try {
    return (await fs.stat(path)).isDirectory() ? 'dir' : 'file';
  } catch {
    return null;
  }
}

/** A string that can only mean a path on disk, never a hub repo id. */
function looksLikePath(s: string): boolean {
  return /^(\/|\.{1,2}(\/|$)|~)/.test(s) || s.includes('\\') || s.split('/').length > 2;
}

/**
 * In Node, 'a/b/file.gguf' that is no path on disk is read as a hub GGUF file; when the hub has no
 * such repo either, the error says both (the user may have meant a path).
 */
function orNoSuchPath(input: string, source: ModelSource): ModelSource {
  return {
    ...source,
    async read(file) {
      try {
        return await source.read(file);
      } catch (e) {
        if (e instanceof ModelFileError && e.status === 404 && e.problem.includes('RepositoryNotFound')) {
          throw new ModelSourceError(input, `is no existing file, nor a GGUF file of an existing hub repo (${e.message})`);
        }
        throw e;
      }
    },
  };
}

async function fromString(model: string, options: ResolveModelOptions): Promise<ModelSource> {
  const input = show(model);
  if (model.trim() === '') throw new ModelSourceError(input, 'is empty');
  if (/^https?:\/\//i.test(model)) {
    const headers: Record<string, string> = options.accessToken ? { authorization: `Bearer ${options.accessToken}` } : {};
    const http = { headers, ...(options.fetch ? { fetch: options.fetch } : {}) };
    // A URL of one .gguf file: the model is that file, read from the folder URL that holds it.
    const path = new URL(model).pathname;
    if (/\.gguf$/i.test(path)) {
      const cut = model.split(/[?#]/, 1)[0]!.lastIndexOf('/');
      return { ...httpSource(model.slice(0, cut), http), gguf: decodeURIComponent(path.slice(path.lastIndexOf('/') + 1)) };
    }
    return httpSource(model, http);
  }
  if (/^[a-z][a-z\d+.-]*:\/\//i.test(model)) throw new ModelSourceError(input, 'is a URL with an unsupported scheme (only http and https)');
  // In Node an existing folder wins over a hub id of the same spelling ('models/qwen' on disk).
  if (inNode()) {
    const kind = await pathKind(model);
    if (kind === 'dir') return nodeDirectorySource(model);
    if (kind === 'file') {
      if (/\.gguf$/i.test(model)) return nodeGgufFileSource(model);
      throw new ModelSourceError(input, 'is a file; pass the model folder that holds it, or a .gguf file');
    }
  }
  // 'org/name/file.gguf' that is no file on disk: that GGUF file of hub repo org/name.
  const hubGguf = parseHubGgufName(model);
  if (hubGguf) {
    const source = cachedHubGgufSource(hubGguf.repoId, hubGguf.file, options);
    return inNode() ? orNoSuchPath(input, source) : source;
  }
  if (inNode() && looksLikePath(model)) throw new ModelSourceError(input, 'is no existing directory');
  if (isRepoId(model)) return cachedHubSource(model, options);
  throw new ModelSourceError(input, inNode() ? 'is neither an existing directory nor a hub repo id' : 'is not a hub repo id or http(s) URL');
}

/**
 * The ModelSource for `model`:
 *  - an http(s) URL: the model folder at that URL (httpSource), or, for a URL ending in .gguf, that one
 *    GGUF file (one plain GET, not cached: downloadGguf reads it header first for a caller that asks);
 *  - in Node, an existing directory: that folder (nodeDirectorySource), even if it also reads as a hub id;
 *  - in Node, an existing .gguf file: that file (nodeGgufFileSource);
 *  - a hub repo id ('org/name'): cachedHubSource with `options` (endpoint, revision, cache, progress);
 *  - a hub repo id and a .gguf file's path in it ('org/name/file-q4_0.gguf', when no such path
 *    exists on disk): that GGUF file, cached like a repo's files and downloaded header first;
 *  - an array or FileList of File objects: fileListSource (one .gguf File: that GGUF file);
 *  - a FileSystemDirectoryHandle, or { kind: 'directory-handle', handle }: directoryHandleSource;
 *  - a ModelSource: itself.
 * Anything else throws ModelSourceError listing these.
 */
export async function resolveModelSource(model: ModelInput, options: ResolveModelOptions = {}): Promise<ModelSource> {
  const input: unknown = model;
  if (typeof input === 'string') return fromString(input, options);
  if (isModelSource(input)) return input;
  if (isDirectoryHandle(input)) return directoryHandleSource(input);
  if (isObject(input) && input['kind'] === 'directory-handle') {
    if (isDirectoryHandle(input['handle'])) return directoryHandleSource(input['handle']);
    throw new ModelSourceError(show(input), "has kind 'directory-handle' but its 'handle' is not a FileSystemDirectoryHandle");
  }
  if (isObject(input) && typeof input['length'] === 'number') {
    const files = Array.from(input as unknown as ArrayLike<unknown>);
    if (files.length === 0) throw new ModelSourceError(show(input), 'is an empty file list');
    const bad = files.findIndex((f) => !isFileLike(f));
    if (bad >= 0) throw new ModelSourceError(show(input), `holds ${show(files[bad])} at index ${bad}, not a File`);
    const list = files as FileLike[];
    // One .gguf file picked or dropped: the model is that file.
    if (list.length === 1 && /\.gguf$/i.test(list[0]!.name)) return { ...fileListSource(list), gguf: list[0]!.name };
    return fileListSource(list);
  }
  throw new ModelSourceError(show(input), 'is not a model');
}
