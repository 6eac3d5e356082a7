// The model cache a load uses when none is given, by where the code runs. Kept apart from cache.ts
// (the store interface and the browser store) because it picks between that and node-cache.ts, which
// implements the interface: one module above both, no cycle.

import { browserCacheStore, type ModelCacheStore } from './cache.js';
import { nodeDirectoryCacheStore } from './node-cache.js';

/**
 * The cache a load uses when none is given: the Cache API where there is one (browsers, workers),
 * the Node cache directory in Node, and otherwise null (no caching).
 */
export function defaultCacheStore(): ModelCacheStore | null {
  if (typeof globalThis.caches !== 'undefined') return browserCacheStore();
  if (typeof globalThis.process?.versions?.node === 'string') return nodeDirectoryCacheStore();
  return null;
}
