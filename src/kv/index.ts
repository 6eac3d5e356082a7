// Public API of the paged KV cache bookkeeping (CPU only; see paged-kv-cache.ts for the slot layout
// and copy-on-write contract the GPU side relies on).
export { KvError, KvCacheFullError, KvUsageError, type KvAllocatingOp } from './errors.js';
export {
  PagedKvCache,
  type PagedKvCacheOptions,
  type PageCopy,
  type Reservation,
  type ForkResult,
  type KvCacheStats,
  type KvCacheSnapshot,
} from './paged-kv-cache.js';
