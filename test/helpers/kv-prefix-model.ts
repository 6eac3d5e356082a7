// A deliberately simple reference model of PagedKvCache with prefix caching, for the model-based
// test: no hashing at all. A cached page is keyed by its namespace and the WHOLE token prefix up to
// its end, as a string; descendants of a key are the keys it is a string prefix of. Arrays and
// linear scans everywhere: slow, obviously right.

import type { PageCopy } from '../../src/kv/index.js';

export interface ModelSeq {
  /** The token ids written at positions 0 .. length - 1. */
  tokens: number[];
  pages: number[];
  /** Leading pages published (registered or joined) by this sequence. */
  published: number;
  namespace: string | null;
}

export class PrefixCacheModel {
  readonly seqs = new Map<number, ModelSeq>();
  readonly refs: number[];
  private readonly isFree: boolean[];
  /** Evictable cached pages, least recently used first. */
  lru: number[] = [];
  /** Cached content key -> pages holding it, in registration order. */
  readonly keyPages = new Map<string, number[]>();
  readonly pageKey = new Map<number, string>();
  /** Pages that stopped holding valid data during the current operation (what onPagesFreed gets). */
  gone: number[] = [];
  readonly counters = { lookups: 0, hitTokens: 0, missTokens: 0, evictions: 0 };
  /** Coverage of the interesting paths. */
  readonly seen = { evicted: 0, cascade: 0, privatized: 0, joined: 0, cowCached: 0 };

  constructor(
    readonly numPages: number,
    readonly ps: number,
  ) {
    this.refs = new Array<number>(numPages).fill(0);
    this.isFree = new Array<boolean>(numPages).fill(true);
  }

  key(namespace: string, tokens: readonly number[], page: number): string {
    return `${namespace}\u0000${tokens.slice(0, (page + 1) * this.ps).join(',')}`;
  }

  freeList(): number[] {
    return this.isFree.flatMap((f, p) => (f ? [p] : []));
  }

  available(): number {
    return this.freeList().length + this.lru.length;
  }

  seq(id: number): ModelSeq {
    const s = this.seqs.get(id);
    if (s === undefined) throw new Error(`model: no sequence ${id}`);
    return s;
  }

  // ---- page movements ----

  private alloc(): number {
    const free = this.freeList();
    if (free.length > 0) {
      this.isFree[free[0]!] = false;
      this.refs[free[0]!] = 1;
      return free[0]!;
    }
    const page = this.lru.shift();
    if (page === undefined) throw new Error('model: alloc with nothing available');
    if (this.refs[page] !== 0) throw new Error(`model: evicting referenced page ${page}`);
    this.unregister(page);
    this.refs[page] = 1;
    this.gone.push(page);
    this.counters.evictions++;
    this.seen.evicted++;
    return page;
  }

  private release(page: number): void {
    if (--this.refs[page]! > 0) return;
    if (this.pageKey.has(page)) {
      this.lru.push(page);
    } else {
      this.isFree[page] = true;
      this.gone.push(page);
    }
  }

  private unregister(page: number): void {
    const key = this.pageKey.get(page)!;
    this.pageKey.delete(page);
    const pages = this.keyPages.get(key)!;
    pages.splice(pages.indexOf(page), 1);
    if (pages.length > 0) return;
    this.keyPages.delete(key);
    // Nothing can reach the descendants any more: they are dropped (they must be unreferenced).
    for (const [k, ps] of [...this.keyPages]) {
      if (!k.startsWith(`${key},`)) continue;
      this.keyPages.delete(k);
      for (const p of ps) {
        if (this.refs[p] !== 0) throw new Error(`model: dropping referenced descendant page ${p}`);
        this.pageKey.delete(p);
        this.lru.splice(this.lru.indexOf(p), 1);
        this.isFree[p] = true;
        this.gone.push(p);
        this.counters.evictions++;
        this.seen.cascade++;
      }
    }
  }

  private privatize(page: number): void {
    if (this.pageKey.has(page) && this.refs[page] === 1) {
      this.unregister(page);
      this.seen.privatized++;
    }
  }

  // ---- the cache's operations ----

  lookup(namespace: string, tokens: readonly number[]): number {
    const max = tokens.length === 0 ? 0 : Math.floor((tokens.length - 1) / this.ps);
    let m = 0;
    while (m < max && this.keyPages.has(this.key(namespace, tokens, m))) m++;
    return m * this.ps;
  }

  add(id: number, namespace: string | null, tokens: readonly number[] | null): number {
    const length = namespace === null ? 0 : this.lookup(namespace, tokens!);
    const pages: number[] = [];
    for (let i = 0; i < length / this.ps; i++) {
      const holders = this.keyPages.get(this.key(namespace!, tokens!, i))!;
      // A referenced holder if any, else the most recently released.
      let page = holders.find((p) => this.refs[p]! > 0);
      if (page === undefined) {
        page = holders.reduce((a, b) => (this.lru.indexOf(a) > this.lru.indexOf(b) ? a : b));
        this.lru.splice(this.lru.indexOf(page), 1);
      }
      this.refs[page]!++;
      pages.push(page);
    }
    this.seqs.set(id, { tokens: tokens?.slice(0, length) ?? [], pages, published: pages.length, namespace });
    if (namespace !== null) {
      this.counters.lookups++;
      this.counters.hitTokens += length;
      this.counters.missTokens += tokens!.length - length;
    }
    return length;
  }

  /** `limit`: stop after that many published pages (the implementation's hash collisions). */
  publish(id: number, namespace: string, stated: readonly number[], limit = Infinity): void {
    const s = this.seq(id);
    s.namespace = namespace;
    const full = Math.floor(stated.length / this.ps);
    for (let i = s.published; i < full && i < limit; i++) {
      if (i > 0 && !this.keyPages.has(this.key(namespace, stated, i - 1))) return;
      const key = this.key(namespace, stated, i);
      const page = s.pages[i]!;
      const own = this.pageKey.get(page);
      if (own !== undefined && own !== key) return;
      if (own === undefined) {
        const holders = this.keyPages.get(key);
        if (holders === undefined) this.keyPages.set(key, [page]);
        else {
          holders.push(page);
          this.seen.joined++;
        }
        this.pageKey.set(page, key);
      }
      s.published = i + 1;
    }
  }

  pagesNeeded(id: number, n: number): number {
    const s = this.seq(id);
    if (n === 0) return 0;
    const grow = Math.ceil((s.tokens.length + n) / this.ps) - s.pages.length;
    return grow + (this.sharedPartial(s) ? 1 : 0);
  }

  /** null: does not fit (the cache must throw KvCacheFullError and change nothing). */
  reserve(id: number, written: readonly number[]): { slots: number[]; copies: PageCopy[] } | null {
    const s = this.seq(id);
    const n = written.length;
    if (this.pagesNeeded(id, n) > this.available()) return null;
    const copies: PageCopy[] = [];
    if (n === 0) return { slots: [], copies };
    const len = s.tokens.length;
    const ps = this.ps;
    if (this.sharedPartial(s)) {
      const src = s.pages[s.pages.length - 1]!;
      const dst = this.alloc();
      this.refs[src]!--;
      s.pages[s.pages.length - 1] = dst;
      copies.push({ srcPage: src, dstPage: dst, tokens: len % ps });
      if (this.pageKey.has(src)) this.seen.cowCached++;
    } else if (len % ps !== 0) {
      this.privatize(s.pages[s.pages.length - 1]!);
    }
    while (s.pages.length < Math.ceil((len + n) / ps)) s.pages.push(this.alloc());
    const slots = written.map((_, i) => s.pages[Math.floor((len + i) / ps)]! * ps + ((len + i) % ps));
    s.tokens.push(...written);
    return { slots, copies };
  }

  truncate(id: number, newLength: number): void {
    const s = this.seq(id);
    const keep = Math.ceil(newLength / this.ps);
    while (s.pages.length > keep) this.release(s.pages.pop()!);
    s.tokens.length = newLength;
    s.published = Math.min(s.published, Math.floor(newLength / this.ps));
    if (newLength % this.ps !== 0) this.privatize(s.pages[keep - 1]!);
  }

  free(id: number): void {
    const s = this.seq(id);
    this.seqs.delete(id);
    for (let i = s.pages.length - 1; i >= 0; i--) this.release(s.pages[i]!);
  }

  /** null: no page for the partial copy. */
  fork(srcId: number, dstId: number): PageCopy[] | null {
    const src = this.seq(srcId);
    const full = Math.floor(src.tokens.length / this.ps);
    const partial = src.tokens.length % this.ps;
    if (partial > 0 && this.available() < 1) return null;
    const pages = src.pages.slice(0, full);
    for (const p of pages) this.refs[p]!++;
    const copies: PageCopy[] = [];
    if (partial > 0) {
      const dst = this.alloc();
      copies.push({ srcPage: src.pages[full]!, dstPage: dst, tokens: partial });
      pages.push(dst);
    }
    this.seqs.set(dstId, { tokens: src.tokens.slice(), pages, published: src.published, namespace: src.namespace });
    return copies;
  }

  private sharedPartial(s: ModelSeq): boolean {
    return s.tokens.length % this.ps !== 0 && this.refs[s.pages[s.pages.length - 1]!]! > 1;
  }
}
