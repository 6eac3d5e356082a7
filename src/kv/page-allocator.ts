// Where PagedKvCache's pages come from and go to: the free list (PagePool) and, with prefix caching,
// the registry of cached pages and its LRU of evictable ones. Internal; arguments are pre-validated.
//
// - take: the lowest free page, else the least recently used evictable cached page (evicted: its
//   registration and any descendants' go, the latter to the free list).
// - release: a page nobody references any more goes to the free list, or, if cached, to the LRU
//   (still valid: a later prompt with the same prefix can share it).
// `gone` collects the pages that stopped holding valid data (freed or evicted), for onPagesFreed.

import { PagePool } from './page-pool.js';
import { PrefixRegistry, type PrefixEntry, type PrefixHashFn } from './prefix-registry.js';

export class PageAllocator {
  readonly pool: PagePool;
  /** Undefined without prefix caching. */
  readonly prefix: PrefixRegistry | undefined;
  /** Cached pages dropped while unreferenced (evicted, or unreachable descendants). */
  evictions = 0;

  constructor(numPages: number, pageSize: number, prefixCaching: boolean, hash: PrefixHashFn | undefined) {
    this.pool = new PagePool(numPages);
    this.prefix = prefixCaching ? new PrefixRegistry(numPages, pageSize, hash) : undefined;
  }

  /** Pages take() can return without failing: free plus evictable. */
  get available(): number {
    return this.pool.freeCount + this.evictable;
  }

  get evictable(): number {
    return this.prefix?.lru.size ?? 0;
  }

  refCount(page: number): number {
    return this.pool.refCount(page);
  }

  /** Another block table points at a referenced page. */
  retain(page: number): void {
    this.pool.retain(page);
  }

  /** A page for a block table (refcount 1). The caller checked `available`. */
  take(gone: number[]): number {
    const reg = this.prefix;
    if (reg === undefined || this.pool.freeCount > 0) return this.pool.allocate();
    const page = reg.lru.popOldest();
    this.drop(reg.unregister(page), gone);
    this.pool.claim(page);
    gone.push(page);
    this.evictions++;
    return page;
  }

  /** A new sharer of a cached entry: the page it maps (referenced now; out of the LRU if it was there). */
  share(entry: PrefixEntry): number {
    const reg = this.prefix!;
    const page = reg.pick(entry);
    if (reg.lru.has(page)) {
      reg.lru.remove(page);
      this.pool.claim(page);
    } else {
      this.pool.retain(page);
    }
    return page;
  }

  /** One block table lets go of `page`. */
  release(page: number, gone: number[]): void {
    const reg = this.prefix;
    if (reg?.entryOf(page) !== undefined) {
      if (this.pool.unref(page) === 0) reg.lru.push(page);
    } else if (this.pool.release(page)) {
      gone.push(page);
    }
  }

  /** Copy-on-write source: one block table lets go of a page others still hold. */
  unshare(page: number): void {
    this.pool.unref(page);
  }

  /**
   * `page` is (or may become) written by its holder: if it is cached and that holder is its only
   * one, it stops being cached (a cached page is never written).
   */
  privatize(page: number, gone: number[]): void {
    const reg = this.prefix;
    if (reg === undefined || reg.entryOf(page) === undefined || this.pool.refCount(page) !== 1) return;
    this.drop(reg.unregister(page), gone);
  }

  /** Cached pages dropped from the LRU (unreachable descendants) go to the free list. */
  private drop(pages: readonly number[], gone: number[]): void {
    for (const p of pages) {
      this.pool.addFree(p);
      gone.push(p);
    }
    this.evictions += pages.length;
  }
}
