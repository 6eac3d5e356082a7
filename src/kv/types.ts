// The plain-data types of the paged KV cache's API (see paged-kv-cache.ts for the contract).

/** The chain hash: parent link's hash and one page's token ids to a number (a Map key). */
export type PrefixHashFn = (parent: number, tokens: readonly number[]) => number;

export interface PagedKvCacheOptions {
  /** Pages in the GPU KV buffers (positive integer). */
  numPages: number;
  /** Token slots per page (positive integer); 16 as in vLLM. */
  pageSize?: number;
  /**
   * Called once per operation that made pages stop holding valid data, with exactly those pages:
   * pages returned to the free list, and (with prefix caching) cached pages evicted or dropped by
   * this operation. It is never called for a page that merely becomes evictable (its cached KV
   * stays valid). The cache is already consistent when it runs; an evicted page may already belong
   * to a sequence of this call, which writes it only after the call returns. If the hook throws,
   * the error propagates but the operation has still happened.
   */
  onPagesFreed?: (pages: readonly number[]) => void;
  /**
   * Automatic prefix caching (default false: the cache behaves exactly as without it): full pages
   * published by a sequence are kept, keyed by a hash chain over their token ids, and shared by
   * later sequences with the same prefix; unreferenced ones are evicted least recently used first.
   */
  prefixCaching?: boolean;
  /** The chain hash (tests inject a weak one to force collisions); default defaultPrefixHash. */
  prefixHash?: PrefixHashFn;
}

/** A page copy the GPU must perform: slots [0, tokens) of srcPage to the same slots of dstPage. */
export interface PageCopy {
  readonly srcPage: number;
  readonly dstPage: number;
  readonly tokens: number;
}

export interface Reservation {
  /** One slot per new token, for positions length .. length + n - 1 (before the call). */
  readonly slots: Int32Array;
  /** Copies to enqueue before writing `slots` (copy-on-write of a shared partial last page). */
  readonly copies: readonly PageCopy[];
}

export interface ForkResult {
  /** Copies to enqueue before the new sequence is read or written (its private partial page). */
  readonly copies: readonly PageCopy[];
}

/** Prefix-cache counters and gauges (present in KvCacheStats only with prefixCaching). */
export interface PrefixCacheStats {
  /** Registered (cached) pages, referenced or not. */
  readonly cachedPages: number;
  /** Cached pages no sequence references: reclaimable by allocation, least recently used first. */
  readonly evictablePages: number;
  /** addSequenceWithPrefix calls (lookupPrefix has no side effects and is not counted). */
  readonly lookups: number;
  /** Prompt tokens those calls found cached. */
  readonly hitTokens: number;
  /** Prompt tokens they did not (left to compute). */
  readonly missTokens: number;
  /** Cached pages dropped while unreferenced: taken for reuse, or unreachable once an ancestor went. */
  readonly evictions: number;
}

export interface KvCacheStats {
  readonly numPages: number;
  readonly pageSize: number;
  readonly sequences: number;
  /** Pages an allocation can get: free plus evictable cached pages. */
  readonly freePages: number;
  /** Pages referenced by at least one block table. */
  readonly usedPages: number;
  /** Pages referenced by more than one block table. */
  readonly sharedPages: number;
  /** Sum of the sequences' lengths (a shared token counts once per sequence). */
  readonly storedTokens: number;
  readonly capacityTokens: number;
  readonly prefix?: PrefixCacheStats;
}

/** One cached content (a link of a hash chain) and the pages holding it. */
export interface PrefixEntrySnapshot {
  readonly hash: number;
  /** The previous link's hash; null for a namespace's first page. */
  readonly parentHash: number | null;
  readonly namespace: string;
  readonly tokens: readonly number[];
  /** In registration order. */
  readonly pages: readonly number[];
}

export interface PrefixCacheSnapshot {
  /** In registration order. */
  readonly entries: readonly PrefixEntrySnapshot[];
  /** Unreferenced cached pages, least recently used (next to evict) first. */
  readonly evictable: readonly number[];
  /** Per sequence, in insertion order: its namespace and how many leading pages it has published. */
  readonly sequences: readonly { readonly id: number; readonly namespace: string | null; readonly publishedPages: number }[];
}

/** The complete state, as plain data: two caches with equal snapshots behave identically. */
export interface KvCacheSnapshot {
  readonly numPages: number;
  readonly pageSize: number;
  /** In insertion order. */
  readonly sequences: { readonly id: number; readonly length: number; readonly pages: readonly number[] }[];
  /** Indexed by page id. */
  readonly refCounts: readonly number[];
  /** Ascending; the truly free pages (not the evictable cached ones). */
  readonly freePages: readonly number[];
  /** Present only with prefixCaching. */
  readonly prefix?: PrefixCacheSnapshot;
}
