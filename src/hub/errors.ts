// Typed errors of the hub loader and its caches. Like src/model/errors.ts, each message says what
// was asked for and what to do about it.

import { ModelError } from '../model/errors.js';

/** How to make room, for every quota message. */
const QUOTA_HINT = 'delete cached models with deleteCachedModel(repoId) (listCachedModels() shows them) or load with cache: false';

/**
 * Storing a downloaded file in the model cache ran out of room: the browser's storage quota
 * (QuotaExceededError) or the disk under the Node cache directory (ENOSPC, EDQUOT).
 */
export class CacheQuotaError extends ModelError {
  constructor(
    /** The cache key (the file's URL). */
    readonly key: string,
    /** Bytes the file needed. */
    readonly bytesNeeded: number,
    /** The store, for the message: 'Cache API cache webslo-models' or a directory. */
    readonly where: string,
    /** Free bytes the store reported, when it can tell (navigator.storage.estimate, statfs). */
    readonly available: number | null = null,
  ) {
    // Estimates can disagree with the failure (Chromium's estimate ignores some quota limits):
    // only a figure that explains it goes into the message.
    const free = available !== null && available < bytesNeeded ? ` (${available} bytes free)` : '';
    super(`caching ${key} needs ${bytesNeeded} bytes, more than ${where} has room for${free}: ${QUOTA_HINT}`);
  }
}

/** What resolveModelSource accepts, for its error message. */
export const VALID_MODEL_INPUTS =
  "a hub repo id ('org/name'), a GGUF file in a hub repo ('org/name/file.gguf'), an http(s) URL of a model folder or .gguf file, " +
  'a directory or .gguf path (Node), an array of File objects (a picked folder or one .gguf file), a FileSystemDirectoryHandle, or a ModelSource';

/** A model argument that names no model source. */
export class ModelSourceError extends ModelError {
  constructor(
    readonly input: string,
    readonly problem: string,
  ) {
    super(`model ${input}: ${problem}; expected ${VALID_MODEL_INPUTS}`);
  }
}

/** True for a storage-full failure: a DOMException QuotaExceededError or Node's ENOSPC/EDQUOT. */
export function isQuotaError(e: unknown): boolean {
  if (typeof e !== 'object' || e === null) return false;
  const { name, code } = e as { name?: unknown; code?: unknown };
  return name === 'QuotaExceededError' || code === 'ENOSPC' || code === 'EDQUOT';
}

/** The default cache does not exist here: no Cache API (an insecure page) and not Node. */
export class CacheUnavailableError extends ModelError {
  constructor(readonly problem: string) {
    super(`model cache unavailable: ${problem}; pass cache: false, or a ModelCacheStore of your own`);
  }
}
