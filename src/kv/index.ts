// Public API of the paged KV cache bookkeeping (CPU only; see paged-kv-cache.ts for the slot layout
// and copy-on-write contract the GPU side relies on, and prefix-registry.ts for prefix caching).
export { KvError, KvCacheFullError, KvUsageError, type KvAllocatingOp } from './errors.js';
export { PagedKvCache } from './paged-kv-cache.js';
export { defaultPrefixHash, type PrefixHashFn } from './prefix-registry.js';
export type { PagedKvCacheOptions, PageCopy, Reservation, ForkResult, KvCacheStats, KvCacheSnapshot, PrefixCacheStats, PrefixCacheSnapshot, PrefixEntrySnapshot } from './types.js';
