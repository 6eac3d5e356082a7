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
// - Prefix caching (option prefixCaching; see prefix-registry.ts for the hash chain): publish()
//   registers a sequence's full pages under their token prefix; addSequenceWithPrefix() starts a
//   sequence sharing the longest cached prefix. A registered page is never written (a sequence
//   appending into one copies it, or unregisters it when it is the only holder). A registered page
//   nobody references is not freed but becomes evictable (its KV stays valid); allocation takes the
//   lowest free page first, else evicts the least recently used evictable page.
//
// Every method either succeeds or throws having changed nothing: KvCacheFullError (recoverable, out
// of pages) or KvUsageError (a bug in the caller).

import { KvCacheFullError, KvUsageError } from './errors.js';
import { PageAllocator } from './page-allocator.js';
import { checkPrefixArgs, type PrefixEntry } from './prefix-registry.js';
import type { ForkResult, KvCacheSnapshot, KvCacheStats, PageCopy, PagedKvCacheOptions, Reservation } from './types.js';

export type { ForkResult, KvCacheSnapshot, KvCacheStats, PageCopy, PagedKvCacheOptions, Reservation } from './types.js';

interface Sequence {
  /** Invariant: pages.length === ceil(length / pageSize), every page with refcount >= 1. */
  readonly pages: number[];
  length: number;
  /** Prefix caching: the registry links of the published leading pages (pages[i] holds chain[i]). */
  readonly chain: PrefixEntry[];
  /** Prefix caching: set by addSequenceWithPrefix or the first publish, inherited by fork. */
  namespace: string | undefined;
}

export class PagedKvCache {
  readonly numPages: number;
  readonly pageSize: number;
  private readonly alloc: PageAllocator;
  private readonly seqs = new Map<number, Sequence>();
  private readonly onPagesFreed: ((pages: readonly number[]) => void) | undefined;
  private readonly counters = { lookups: 0, hitTokens: 0, missTokens: 0 };

  constructor({ numPages, pageSize = 16, onPagesFreed, prefixCaching = false, prefixHash }: PagedKvCacheOptions) {
    if (!Number.isSafeInteger(numPages) || numPages < 1) {
      throw new KvUsageError(`numPages must be a positive integer, got ${numPages}`, undefined, numPages);
    }
    if (!Number.isSafeInteger(pageSize) || pageSize < 1) {
      throw new KvUsageError(`pageSize must be a positive integer, got ${pageSize}`, undefined, pageSize);
    }
    // Slots are handed to the GPU as i32.
    if (numPages * pageSize > 0x7fffffff) {
      throw new KvUsageError(`numPages * pageSize = ${numPages * pageSize} slots exceeds the i32 slot range`, undefined, numPages * pageSize);
    }
    this.numPages = numPages;
    this.pageSize = pageSize;
    this.alloc = new PageAllocator(numPages, pageSize, prefixCaching, prefixHash);
    this.onPagesFreed = onPagesFreed;
  }

  // ---- sequences --------------------------------------------------------------------------------

  addSequence(id: number): void {
    this.checkNewId(id, 'addSequence');
    this.seqs.set(id, { pages: [], length: 0, chain: [], namespace: undefined });
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

  // ---- prefix caching ---------------------------------------------------------------------------

  /**
   * How many leading tokens of `tokens` cached full pages of `namespace` hold: a multiple of
   * pageSize, and never all of them (at least one token is left to compute). No side effects; 0
   * without prefix caching.
   */
  lookupPrefix(namespace: string, tokens: readonly number[]): number {
    checkPrefixArgs(undefined, namespace, tokens, 'lookupPrefix');
    if (this.alloc.prefix === undefined) return 0;
    return this.alloc.prefix.match(namespace, tokens, this.maxMatchPages(tokens)).length * this.pageSize;
  }

  /**
   * Like addSequence, but the new sequence starts with the longest cached prefix of `tokens`
   * (lookupPrefix's count), sharing those pages; returns its length. It counts as published.
   * Without prefix caching it is addSequence and returns 0.
   */
  addSequenceWithPrefix(id: number, namespace: string, tokens: readonly number[]): number {
    this.checkNewId(id, 'addSequenceWithPrefix');
    checkPrefixArgs(id, namespace, tokens, 'addSequenceWithPrefix');
    const reg = this.alloc.prefix;
    if (reg === undefined) {
      this.addSequence(id);
      return 0;
    }
    const chain = reg.match(namespace, tokens, this.maxMatchPages(tokens));
    const pages = chain.map((entry) => this.alloc.share(entry));
    const length = pages.length * this.pageSize;
    this.seqs.set(id, { pages, length, chain, namespace });
    this.counters.lookups++;
    this.counters.hitTokens += length;
    this.counters.missTokens += tokens.length - length;
    return length;
  }

  /**
   * States the token ids at the sequence's first tokens.length positions (<= its length) and
   * registers every full page among them not yet published, so later sequences can share it. Cost:
   * the new pages only. A page whose content is already cached (computed by another sequence)
   * joins that entry. Throws KvUsageError when a page already registered holds other tokens than
   * stated, or the namespace differs from the sequence's. No-op without prefix caching.
   */
  publish(id: number, namespace: string, tokens: readonly number[]): void {
    const seq = this.get(id, 'publish');
    checkPrefixArgs(id, namespace, tokens, 'publish');
    if (tokens.length > seq.length) {
      throw new KvUsageError(`publish: sequence ${id} has ${seq.length} tokens; got ${tokens.length} token ids`, id, tokens.length);
    }
    const reg = this.alloc.prefix;
    if (reg === undefined) return;
    if (seq.namespace !== undefined && seq.namespace !== namespace) {
      throw new KvUsageError(`publish: sequence ${id} belongs to namespace '${seq.namespace}', not '${namespace}'`, id, namespace);
    }
    const full = Math.floor(tokens.length / this.pageSize);
    const bad = reg.firstConflict(seq.pages, tokens, seq.chain.length, full);
    if (bad >= 0) {
      throw new KvUsageError(`publish: page ${seq.pages[bad]} (page ${bad}) of sequence ${id} is cached with other token ids than stated`, id, seq.pages[bad]);
    }
    seq.namespace = namespace;
    for (let i = seq.chain.length; i < full; i++) if (!reg.extend(seq.chain, namespace, tokens, seq.pages[i]!)) break;
  }

  // ---- growing ----------------------------------------------------------------------------------

  /**
   * Pages (free or evictable) that `reserve(id, n)` would take: new pages past the last one, plus
   * one when the last page is partial and shared (it must be copied before it is written).
   */
  pagesNeeded(id: number, n: number): number {
    const seq = this.get(id, 'pagesNeeded');
    this.checkCount(id, n, 'pagesNeeded');
    return this.need(seq, n);
  }

  canAppend(id: number, n: number): boolean {
    return this.pagesNeeded(id, n) <= this.freePages();
  }

  /**
   * Makes room for n more tokens at positions length .. length + n - 1 and returns their slots, plus
   * the page copies to perform first. All or nothing: KvCacheFullError leaves the state unchanged.
   */
  reserve(id: number, n: number): Reservation {
    const seq = this.get(id, 'reserve');
    this.checkCount(id, n, 'reserve');
    const needed = this.need(seq, n);
    const available = this.freePages();
    if (needed > available) throw new KvCacheFullError('reserve', id, needed, available);
    const copies: PageCopy[] = [];
    if (n === 0) return { slots: new Int32Array(0), copies };

    const ps = this.pageSize;
    const pages = seq.pages;
    const gone: number[] = [];
    if (this.lastPageSharedPartial(seq)) {
      // Copy-on-write: the other owners keep the old page (refcount stays >= 1, so not freed).
      const last = pages.length - 1;
      const src = pages[last]!;
      const dst = this.alloc.take(gone);
      this.alloc.unshare(src);
      pages[last] = dst;
      copies.push({ srcPage: src, dstPage: dst, tokens: seq.length % ps });
    } else if (seq.length % ps !== 0) {
      this.alloc.privatize(pages[pages.length - 1]!, gone);
    }
    const end = seq.length + n;
    const target = Math.ceil(end / ps);
    while (pages.length < target) pages.push(this.alloc.take(gone));

    const slots = new Int32Array(n);
    for (let i = 0, pos = seq.length; i < n; i++, pos++) {
      slots[i] = pages[Math.floor(pos / ps)]! * ps + (pos % ps);
    }
    seq.length = end;
    this.notifyFreed(gone);
    return { slots, copies };
  }

  // ---- shrinking --------------------------------------------------------------------------------

  /**
   * Rolls the sequence back to its first newLength tokens (rejected speculative tokens, preemption
   * of a tail). Pages no longer needed lose this sequence's reference; those nobody else holds are
   * freed (or, if cached, become evictable). A now-partial last page that is shared stays shared
   * until the next reserve copies it; a cached one held by this sequence alone is unregistered.
   */
  truncate(id: number, newLength: number): void {
    const seq = this.get(id, 'truncate');
    if (!Number.isSafeInteger(newLength) || newLength < 0 || newLength > seq.length) {
      throw new KvUsageError(`truncate: sequence ${id} has ${seq.length} tokens; newLength must be an integer in [0, ${seq.length}], got ${newLength}`, id, newLength);
    }
    const keep = Math.ceil(newLength / this.pageSize);
    const gone: number[] = [];
    while (seq.pages.length > keep) this.alloc.release(seq.pages.pop()!, gone);
    seq.length = newLength;
    seq.chain.length = Math.min(seq.chain.length, Math.floor(newLength / this.pageSize));
    if (newLength % this.pageSize !== 0) this.alloc.privatize(seq.pages[keep - 1]!, gone);
    this.notifyFreed(gone);
  }

  /** Removes the sequence, releasing its references to all its pages (the last page first). */
  free(id: number): void {
    const seq = this.get(id, 'free');
    this.seqs.delete(id);
    const gone: number[] = [];
    // Deepest first: cached pages become evictable tail first, so the LRU evicts a chain's tail
    // before its head (a head is shared by more prompts).
    for (let i = seq.pages.length - 1; i >= 0; i--) this.alloc.release(seq.pages[i]!, gone);
    this.notifyFreed(gone.reverse());
  }

  // ---- sharing ----------------------------------------------------------------------------------

  /** Pages that fork(srcId, ...) would take: 1 when the source's last page is partial. */
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
    const available = this.freePages();
    if (partial > 0 && available < 1) throw new KvCacheFullError('fork', srcId, 1, available);
    const pages = src.pages.slice(0, full);
    for (const page of pages) this.alloc.retain(page);
    const copies: PageCopy[] = [];
    const gone: number[] = [];
    if (partial > 0) {
      const dst = this.alloc.take(gone);
      copies.push({ srcPage: src.pages[full]!, dstPage: dst, tokens: partial });
      pages.push(dst);
    }
    this.seqs.set(dstId, { pages, length: src.length, chain: src.chain.slice(), namespace: src.namespace });
    this.notifyFreed(gone);
    return { copies };
  }

  // ---- accounting -------------------------------------------------------------------------------

  /** Pages an allocation can get: free pages plus evictable cached pages. */
  freePages(): number {
    return this.alloc.available;
  }

  /** Pages referenced by at least one sequence. */
  usedPages(): number {
    return this.numPages - this.freePages();
  }

  /** Cached pages no sequence references (reclaimable, least recently used first). */
  evictablePages(): number {
    return this.alloc.evictable;
  }

  /** Registered (cached) pages, referenced or not. */
  cachedPages(): number {
    return this.alloc.prefix?.cachedPages ?? 0;
  }

  /** Total token slots (numPages * pageSize), whatever is in use. */
  capacityTokens(): number {
    return this.numPages * this.pageSize;
  }

  /** How many block tables hold `page` (0: free, or an evictable cached page). */
  refCount(page: number): number {
    if (!Number.isSafeInteger(page) || page < 0 || page >= this.numPages) {
      throw new KvUsageError(`refCount: page must be an integer in [0, ${this.numPages}), got ${page}`, undefined, page);
    }
    return this.alloc.refCount(page);
  }

  stats(): KvCacheStats {
    let sharedPages = 0;
    for (let p = 0; p < this.numPages; p++) if (this.alloc.refCount(p) > 1) sharedPages++;
    let storedTokens = 0;
    for (const seq of this.seqs.values()) storedTokens += seq.length;
    const stats: KvCacheStats = {
      numPages: this.numPages,
      pageSize: this.pageSize,
      sequences: this.seqs.size,
      freePages: this.freePages(),
      usedPages: this.usedPages(),
      sharedPages,
      storedTokens,
      capacityTokens: this.capacityTokens(),
    };
    if (this.alloc.prefix === undefined) return stats;
    return { ...stats, prefix: { cachedPages: this.cachedPages(), evictablePages: this.evictablePages(), ...this.counters, evictions: this.alloc.evictions } };
  }

  snapshot(): KvCacheSnapshot {
    const snap: KvCacheSnapshot = {
      numPages: this.numPages,
      pageSize: this.pageSize,
      sequences: [...this.seqs].map(([id, s]) => ({ id, length: s.length, pages: s.pages.slice() })),
      refCounts: this.alloc.pool.refCounts(),
      freePages: this.alloc.pool.freeList(),
    };
    if (this.alloc.prefix === undefined) return snap;
    const sequences = [...this.seqs].map(([id, s]) => ({ id, namespace: s.namespace ?? null, publishedPages: s.chain.length }));
    const prefix = { entries: this.alloc.prefix.snapshotEntries(), evictable: this.alloc.prefix.lru.list(), sequences };
    return { ...snap, prefix };
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

  /** Pages a lookup may match: all but the last token's page, so at least one token is computed. */
  private maxMatchPages(tokens: readonly number[]): number {
    return tokens.length === 0 ? 0 : Math.floor((tokens.length - 1) / this.pageSize);
  }

  private lastPageSharedPartial(seq: Sequence): boolean {
    if (seq.length % this.pageSize === 0) return false;
    return this.alloc.refCount(seq.pages[seq.pages.length - 1]!) > 1;
  }

  private need(seq: Sequence, n: number): number {
    if (n === 0) return 0;
    const grow = Math.ceil((seq.length + n) / this.pageSize) - seq.pages.length;
    return grow + (this.lastPageSharedPartial(seq) ? 1 : 0);
  }

  private notifyFreed(gone: number[]): void {
    if (gone.length > 0 && this.onPagesFreed !== undefined) this.onPagesFreed(gone);
  }
}
