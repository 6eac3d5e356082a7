// The prefix cache's registry, after vLLM's automatic prefix caching: which pages hold which full
// page of which token prefix. Internal to PagedKvCache, which owns the refcounts and the free list.
//
// - Content key: page i of a token sequence in namespace ns has the chain hash
//   h_i = H(h_{i-1}, tokens[i*P, (i+1)*P)), h_{-1} = H(0, [length, ...code points of ns]).
// - An entry (one link of a chain) records its hash, namespace, token ids, parent entry, and the
//   pages holding that content (several when sequences computed the same prefix independently;
//   the first registration is never re-pointed). The hash only FINDS a candidate: a lookup accepts
//   it only if its token ids equal the query's and its parent is the very entry matched for the
//   previous page (for page 0: no parent and the same namespace). By induction a match certifies
//   the whole token prefix, so a hash collision can cause a miss but never wrong KV.
// - Closure: an entry lives while some page holds it; when its last page goes, every descendant
//   entry goes too (it could never match again). Descendants are unreferenced then (a sequence
//   holding a descendant page holds a page of each ancestor entry), so their pages are evictable
//   and are dropped to the free list rather than left to clutter the LRU.
// - The LRU holds the registered pages no block table references.

import { KvUsageError } from './errors.js';
import { PageLru } from './page-lru.js';
import type { PrefixEntrySnapshot, PrefixHashFn } from './types.js';

export type { PrefixHashFn } from './types.js';

const TWO32 = 0x100000000;

function round(h: number, k: number): number {
  k = Math.imul(k, 0xcc9e2d51);
  k = (k << 15) | (k >>> 17);
  k = Math.imul(k, 0x1b873593);
  h ^= k;
  h = (h << 13) | (h >>> 19);
  return (Math.imul(h, 5) + 0xe6546b64) | 0;
}

function fmix(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/** Two murmur3-style 32-bit lanes folded into a 53-bit safe integer. Not cryptographic. */
export const defaultPrefixHash: PrefixHashFn = (parent, tokens) => {
  const lo = parent >>> 0;
  const hi = Math.floor(parent / TWO32) >>> 0;
  let a = round(round(0x3243f6a8, lo), hi);
  let b = round(round(0x2b7e1516, hi), lo);
  for (let i = 0; i < tokens.length; i++) {
    const t = tokens[i]!;
    a = round(a, t);
    b = round(b, (t ^ Math.imul(i + 1, 0x9e3779b9)) | 0);
  }
  a = fmix(a ^ tokens.length);
  b = fmix(b ^ Math.imul(tokens.length, 0x27d4eb2f) ^ a);
  return a * 0x200000 + (b >>> 11);
};

/** Validates a prefix call's namespace and token ids (integers in [0, 2^32)). */
export function checkPrefixArgs(id: number | undefined, namespace: string, tokens: readonly number[], op: string): void {
  if (typeof namespace !== 'string') throw new KvUsageError(`${op}: namespace must be a string, got ${String(namespace)}`, id, namespace);
  if (!Array.isArray(tokens)) throw new KvUsageError(`${op}: tokens must be an array of token ids`, id, tokens);
  for (let i = 0; i < tokens.length; i++) {
    const t: unknown = tokens[i];
    if (typeof t !== 'number' || !Number.isInteger(t) || t < 0 || t > 0xffffffff) {
      throw new KvUsageError(`${op}: token id at position ${i} must be an integer in [0, 2^32), got ${String(t)}`, id, t);
    }
  }
}

export interface PrefixEntry {
  readonly hash: number;
  readonly parent: PrefixEntry | null;
  readonly namespace: string;
  readonly tokens: Uint32Array;
  /** Pages holding this content, in registration order. */
  readonly pages: number[];
  readonly children: Set<PrefixEntry>;
  alive: boolean;
}

export class PrefixRegistry {
  readonly lru: PageLru;
  private readonly byHash = new Map<number, PrefixEntry>();
  private readonly byPage: (PrefixEntry | undefined)[];
  private registered = 0;

  constructor(
    numPages: number,
    private readonly pageSize: number,
    private readonly hash: PrefixHashFn = defaultPrefixHash,
  ) {
    this.lru = new PageLru(numPages);
    this.byPage = new Array<PrefixEntry | undefined>(numPages);
  }

  /** Registered pages, referenced or not. */
  get cachedPages(): number {
    return this.registered;
  }

  entryOf(page: number): PrefixEntry | undefined {
    return this.byPage[page];
  }

  /** The entries of the longest cached chain equal to tokens' first pages, at most maxPages. */
  match(namespace: string, tokens: readonly number[], maxPages: number): PrefixEntry[] {
    const chain: PrefixEntry[] = [];
    let parent: PrefixEntry | null = null;
    let h = this.seed(namespace);
    for (let i = 0; i < maxPages; i++) {
      h = this.pageHash(h, tokens, i);
      const entry = this.byHash.get(h);
      if (entry === undefined || !this.matches(entry, parent, namespace, tokens, i)) break;
      chain.push(entry);
      parent = entry;
    }
    return chain;
  }

  /** The page a new sharer of `entry` should map: a referenced one if any, else the most recently used. */
  pick(entry: PrefixEntry): number {
    let best = -1;
    for (const p of entry.pages) {
      if (!this.lru.has(p)) return p;
      if (best < 0 || this.lru.stamp(p) > this.lru.stamp(best)) best = p;
    }
    return best;
  }

  /**
   * Registers `page`, holding page i = chain.length of `tokens`, as the next link of `chain` (a
   * sequence's published entries) and appends the link to `chain`. Returns false, changing
   * nothing, when it cannot: the chain's last link is gone, the page is registered as other
   * content, or the hash is taken by other content (a collision: the existing entry is kept).
   */
  extend(chain: PrefixEntry[], namespace: string, tokens: readonly number[], page: number): boolean {
    const i = chain.length;
    const parent = i > 0 ? chain[i - 1]! : null;
    if (parent !== null && !parent.alive) return false;
    const h = this.pageHash(parent === null ? this.seed(namespace) : parent.hash, tokens, i);
    const own = this.byPage[page];
    if (own !== undefined) {
      if (own.hash !== h || !this.matches(own, parent, namespace, tokens, i)) return false;
      chain.push(own);
      return true;
    }
    let entry = this.byHash.get(h);
    if (entry !== undefined) {
      if (!this.matches(entry, parent, namespace, tokens, i)) return false;
      entry.pages.push(page);
    } else {
      const ps = this.pageSize;
      entry = {
        hash: h,
        parent,
        namespace,
        tokens: Uint32Array.from(tokens.slice(i * ps, (i + 1) * ps)),
        pages: [page],
        children: new Set(),
        alive: true,
      };
      parent?.children.add(entry);
      this.byHash.set(h, entry);
    }
    this.byPage[page] = entry;
    this.registered++;
    chain.push(entry);
    return true;
  }

  /**
   * Unregisters `page` (not evictable: the caller popped it or holds it). If it was its entry's
   * last page, the entry and all its descendants go; returns the descendants' pages that were
   * evictable, now out of the LRU, for the caller to free.
   */
  unregister(page: number): number[] {
    const entry = this.byPage[page]!;
    entry.pages.splice(entry.pages.indexOf(page), 1);
    this.byPage[page] = undefined;
    this.registered--;
    const dropped: number[] = [];
    if (entry.pages.length === 0) {
      entry.parent?.children.delete(entry);
      this.kill(entry, dropped);
    }
    return dropped;
  }

  /** The first page in pages[from, to) registered with other token ids than `tokens` states; -1: none. */
  firstConflict(pages: readonly number[], tokens: readonly number[], from: number, to: number): number {
    const ps = this.pageSize;
    for (let i = from; i < to; i++) {
      const held = this.byPage[pages[i]!]?.tokens;
      if (held !== undefined && held.some((t, j) => t !== tokens[i * ps + j])) return i;
    }
    return -1;
  }

  /** Cached contents in registration order. */
  snapshotEntries(): PrefixEntrySnapshot[] {
    return [...this.byHash.values()].map((e) => ({
      hash: e.hash,
      parentHash: e.parent?.hash ?? null,
      namespace: e.namespace,
      tokens: Array.from(e.tokens),
      pages: e.pages.slice(),
    }));
  }

  private kill(entry: PrefixEntry, dropped: number[]): void {
    entry.alive = false;
    this.byHash.delete(entry.hash);
    for (const child of entry.children) {
      for (const p of child.pages) {
        this.byPage[p] = undefined;
        this.registered--;
        // A referenced descendant cannot exist (see the header); were one found, it would simply
        // stay with its holders, unregistered.
        if (this.lru.has(p)) {
          this.lru.remove(p);
          dropped.push(p);
        }
      }
      child.pages.length = 0;
      this.kill(child, dropped);
    }
    entry.children.clear();
  }

  private seed(namespace: string): number {
    const codes = [namespace.length];
    for (const ch of namespace) codes.push(ch.codePointAt(0)!);
    return this.hash(0, codes);
  }

  private pageHash(parent: number, tokens: readonly number[], i: number): number {
    return this.hash(parent, tokens.slice(i * this.pageSize, (i + 1) * this.pageSize));
  }

  private matches(entry: PrefixEntry, parent: PrefixEntry | null, namespace: string, tokens: readonly number[], i: number): boolean {
    if (entry.parent !== parent || entry.namespace !== namespace) return false;
    const base = i * this.pageSize;
    for (let j = 0; j < this.pageSize; j++) if (entry.tokens[j] !== tokens[base + j]) return false;
    return true;
  }
}
