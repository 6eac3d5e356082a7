// CPU-side bookkeeping of the paged KV cache, after vLLM / nano-vllm's block manager: it decides which
// page and slot each token of each sequence goes to; the GPU buffers live elsewhere and this module
// never touches them.
//
// Layout the GPU side relies on:
// - The KV buffers hold `numPages * pageSize` token slots per layer. Token `pos` of a sequence lives
//   in slot `blockTable[floor(pos / pageSize)] * pageSize + pos % pageSize`.
// - A page may be shared by several sequences (fork / parallel sampling). A shared page is never
//   written: before a call returns slots inside a shared page it gives the caller a private copy
//   (copy-on-write), announced as a PageCopy in the call's result. The caller must enqueue every
//   returned copy (K and V, all layers, slots [0, tokens) of srcPage to the same offsets of dstPage)
//   BEFORE writing the returned slots and before enqueueing anything for a later cache call (which
//   could free srcPage and let it be reused).
// - Slots past a sequence's length in its last page hold stale data; attention must mask by length.
//
// Every method either succeeds or throws having changed nothing: KvCacheFullError (recoverable, out
// of pages) or KvUsageError (a bug in the caller).

import { KvCacheFullError, KvUsageError } from './errors.js';
import { PagePool } from './page-pool.js';

export interface PagedKvCacheOptions {
  /** Pages in the GPU KV buffers (positive integer). */
  numPages: number;
  /** Token slots per page (positive integer); 16 as in vLLM. */
  pageSize?: number;
  /**
   * Called after an operation returned pages to the free list (once per operation, only when it
   * freed some), with exactly those pages. The cache is already consistent when it runs; if it
   * throws, the error propagates but the operation has still happened.
   */
  onPagesFreed?: (pages: readonly number[]) => void;
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

export interface KvCacheStats {
  readonly numPages: number;
  readonly pageSize: number;
  readonly sequences: number;
  readonly freePages: number;
  readonly usedPages: number;
  /** Pages referenced by more than one block table. */
  readonly sharedPages: number;
  /** Sum of the sequences' lengths (a shared token counts once per sequence). */
  readonly storedTokens: number;
  readonly capacityTokens: number;
}

/** The complete state, as plain data: two caches with equal snapshots behave identically. */
export interface KvCacheSnapshot {
  readonly numPages: number;
  readonly pageSize: number;
  /** In insertion order. */
  readonly sequences: { readonly id: number; readonly length: number; readonly pages: readonly number[] }[];
  /** Indexed by page id. */
  readonly refCounts: readonly number[];
  /** Ascending. */
  readonly freePages: readonly number[];
}

interface Sequence {
  /** Invariant: pages.length === ceil(length / pageSize), every page with refcount >= 1. */
  readonly pages: number[];
  length: number;
}

export class PagedKvCache {
  readonly numPages: number;
  readonly pageSize: number;
  private readonly pool: PagePool;
  private readonly seqs = new Map<number, Sequence>();
  private readonly onPagesFreed: ((pages: readonly number[]) => void) | undefined;

  constructor({ numPages, pageSize = 16, onPagesFreed }: PagedKvCacheOptions) {
    if (!Number.isSafeInteger(numPages) || numPages < 1) {
      throw new KvUsageError(`numPages must be a positive integer, got ${numPages}`, undefined, numPages);
    }
    if (!Number.isSafeInteger(pageSize) || pageSize < 1) {
      throw new KvUsageError(`pageSize must be a positive integer, got ${pageSize}`, undefined, pageSize);
    }
    // Slots are handed to the GPU as i32.
    if (numPages * pageSize > 0x7fffffff) {
      throw new KvUsageError(
        `numPages * pageSize = ${numPages * pageSize} slots exceeds the i32 slot range`,
        undefined,
        numPages * pageSize,
      );
    }
    this.numPages = numPages;
    this.pageSize = pageSize;
    this.pool = new PagePool(numPages);
    this.onPagesFreed = onPagesFreed;
  }

  // ---- sequences --------------------------------------------------------------------------------

  addSequence(id: number): void {
    this.checkNewId(id, 'addSequence');
    this.seqs.set(id, { pages: [], length: 0 });
  }

  hasSequence(id: number): boolean {
    return this.seqs.has(id);
  }

  /** Ids of the live sequences, in insertion order. */
  sequenceIds(): number[] {
    return [...this.seqs.keys()];
  }

  /** Tokens stored for the sequence. */
  length(id: number): number {
    return this.get(id, 'length').length;
  }

  /** The sequence's page ids in position order (a copy). */
  blockTable(id: number): readonly number[] {
    return this.get(id, 'blockTable').pages.slice();
  }

  // ---- growing ----------------------------------------------------------------------------------

  /**
   * Free pages that `reserve(id, n)` would take: new pages past the last one, plus one when the last
   * page is partial and shared (it must be copied before it is written).
   */
  pagesNeeded(id: number, n: number): number {
    const seq = this.get(id, 'pagesNeeded');
    this.checkCount(id, n, 'pagesNeeded');
    return this.need(seq, n);
  }

  canAppend(id: number, n: number): boolean {
    return this.pagesNeeded(id, n) <= this.pool.freeCount;
  }

  /**
   * Makes room for n more tokens at positions length .. length + n - 1 and returns their slots, plus
   * the page copies to perform first. All or nothing: KvCacheFullError leaves the state unchanged.
   */
  reserve(id: number, n: number): Reservation {
    const seq = this.get(id, 'reserve');
    this.checkCount(id, n, 'reserve');
    const needed = this.need(seq, n);
    if (needed > this.pool.freeCount) throw new KvCacheFullError('reserve', id, needed, this.pool.freeCount);
    const copies: PageCopy[] = [];
    if (n === 0) return { slots: new Int32Array(0), copies };

    const ps = this.pageSize;
    const pages = seq.pages;
    if (this.lastPageSharedPartial(seq)) {
      // Copy-on-write: the other owners keep the old page (refcount stays >= 1, so not freed).
      const last = pages.length - 1;
      const src = pages[last]!;
      const dst = this.pool.allocate();
      this.pool.release(src);
      pages[last] = dst;
      copies.push({ srcPage: src, dstPage: dst, tokens: seq.length % ps });
    }
    const end = seq.length + n;
    const target = Math.ceil(end / ps);
    while (pages.length < target) pages.push(this.pool.allocate());

    const slots = new Int32Array(n);
    for (let i = 0, pos = seq.length; i < n; i++, pos++) {
      slots[i] = pages[Math.floor(pos / ps)]! * ps + (pos % ps);
    }
    seq.length = end;
    return { slots, copies };
  }

  // ---- shrinking --------------------------------------------------------------------------------

  /**
   * Rolls the sequence back to its first newLength tokens (rejected speculative tokens, preemption
   * of a tail). Pages no longer needed lose this sequence's reference; those nobody else holds are
   * freed. A now-partial last page that is shared stays shared until the next reserve copies it.
   */
  truncate(id: number, newLength: number): void {
    const seq = this.get(id, 'truncate');
    if (!Number.isSafeInteger(newLength) || newLength < 0 || newLength > seq.length) {
      throw new KvUsageError(
        `truncate: sequence ${id} has ${seq.length} tokens; newLength must be an integer in [0, ${seq.length}], got ${newLength}`,
        id,
        newLength,
      );
    }
    const keep = Math.ceil(newLength / this.pageSize);
    const freed: number[] = [];
    while (seq.pages.length > keep) {
      const page = seq.pages.pop()!;
      if (this.pool.release(page)) freed.push(page);
    }
    seq.length = newLength;
    this.notifyFreed(freed);
  }

  /** Removes the sequence, releasing its references to all its pages. */
  free(id: number): void {
    const seq = this.get(id, 'free');
    this.seqs.delete(id);
    const freed: number[] = [];
    for (const page of seq.pages) if (this.pool.release(page)) freed.push(page);
    this.notifyFreed(freed);
  }

  // ---- sharing ----------------------------------------------------------------------------------

  /** Free pages that fork(srcId, ...) would take: 1 when the source's last page is partial. */
  forkPagesNeeded(srcId: number): number {
    return this.get(srcId, 'forkPagesNeeded').length % this.pageSize === 0 ? 0 : 1;
  }

  /**
   * Creates dstId with the same tokens as srcId: it shares srcId's full pages (refcount + 1) and
   * gets a private copy of a partial last page, so both can append at once without copying again.
   */
  fork(srcId: number, dstId: number): ForkResult {
    const src = this.get(srcId, 'fork');
    this.checkNewId(dstId, 'fork');
    const ps = this.pageSize;
    const full = Math.floor(src.length / ps);
    const partial = src.length % ps;
    if (partial > 0 && this.pool.freeCount < 1) {
      throw new KvCacheFullError('fork', srcId, 1, this.pool.freeCount);
    }
    const pages = src.pages.slice(0, full);
    for (const page of pages) this.pool.retain(page);
    const copies: PageCopy[] = [];
    if (partial > 0) {
      const dst = this.pool.allocate();
      copies.push({ srcPage: src.pages[full]!, dstPage: dst, tokens: partial });
      pages.push(dst);
    }
    this.seqs.set(dstId, { pages, length: src.length });
    return { copies };
  }

  // ---- accounting -------------------------------------------------------------------------------

  freePages(): number {
    return this.pool.freeCount;
  }

  usedPages(): number {
    return this.numPages - this.pool.freeCount;
  }

  /** Total token slots (numPages * pageSize), whatever is in use. */
  capacityTokens(): number {
    return this.numPages * this.pageSize;
  }

  /** How many block tables hold `page` (0: free). */
  refCount(page: number): number {
    if (!Number.isSafeInteger(page) || page < 0 || page >= this.numPages) {
      throw new KvUsageError(`refCount: page must be an integer in [0, ${this.numPages}), got ${page}`, undefined, page);
    }
    return this.pool.refCount(page);
  }

  stats(): KvCacheStats {
    let sharedPages = 0;
    for (let p = 0; p < this.numPages; p++) if (this.pool.refCount(p) > 1) sharedPages++;
    let storedTokens = 0;
    for (const seq of this.seqs.values()) storedTokens += seq.length;
    return {
      numPages: this.numPages,
      pageSize: this.pageSize,
      sequences: this.seqs.size,
      freePages: this.freePages(),
      usedPages: this.usedPages(),
      sharedPages,
      storedTokens,
      capacityTokens: this.capacityTokens(),
    };
  }

  snapshot(): KvCacheSnapshot {
    return {
      numPages: this.numPages,
      pageSize: this.pageSize,
      sequences: [...this.seqs].map(([id, s]) => ({ id, length: s.length, pages: s.pages.slice() })),
      refCounts: this.pool.refCounts(),
      freePages: this.pool.freeList(),
    };
  }

  // ---- internals --------------------------------------------------------------------------------

  private get(id: number, op: string): Sequence {
    const seq = this.seqs.get(id);
    if (seq === undefined) {
      throw new KvUsageError(`${op}: unknown sequence ${id} (never added, or already freed)`, id, id);
    }
    return seq;
  }

  private checkNewId(id: number, op: string): void {
    if (!Number.isSafeInteger(id)) {
      throw new KvUsageError(`${op}: sequence id must be a safe integer, got ${id}`, id, id);
    }
    if (this.seqs.has(id)) throw new KvUsageError(`${op}: sequence ${id} already exists`, id, id);
  }

  private checkCount(id: number, n: number, op: string): void {
    if (!Number.isSafeInteger(n) || n < 0) {
      throw new KvUsageError(`${op}: token count for sequence ${id} must be a non-negative integer, got ${n}`, id, n);
    }
  }

  private lastPageSharedPartial(seq: Sequence): boolean {
    if (seq.length % this.pageSize === 0) return false;
    return this.pool.refCount(seq.pages[seq.pages.length - 1]!) > 1;
  }

  private need(seq: Sequence, n: number): number {
    if (n === 0) return 0;
    const grow = Math.ceil((seq.length + n) / this.pageSize) - seq.pages.length;
    return grow + (this.lastPageSharedPartial(seq) ? 1 : 0);
  }

  private notifyFreed(freed: number[]): void {
    if (freed.length > 0 && this.onPagesFreed !== undefined) this.onPagesFreed(freed);
  }
}
