import { describe, expect, it } from 'vitest';
import { defaultPrefixHash, KvCacheFullError, KvUsageError, PagedKvCache, type PrefixHashFn } from '../../src/kv/index.js';

/** A prefix-caching cache with a recording onPagesFreed hook. */
function cache(numPages: number, pageSize: number, prefixHash?: PrefixHashFn): { kv: PagedKvCache; freed: number[][] } {
  const freed: number[][] = [];
  const kv = new PagedKvCache({
    numPages,
    pageSize,
    prefixCaching: true,
    ...(prefixHash ? { prefixHash } : {}),
    onPagesFreed: (pages) => freed.push([...pages]),
  });
  return { kv, freed };
}

/** 1, 2, ..., n. */
const range = (n: number): number[] => Array.from({ length: n }, (_, i) => i + 1);

/** A sequence with `tokens` computed (reserved) and published in namespace `ns`. */
function computed(kv: PagedKvCache, id: number, tokens: number[], ns = 'a'): void {
  kv.addSequence(id);
  kv.reserve(id, tokens.length);
  kv.publish(id, ns, tokens);
}

function thrown<E extends Error>(type: new (...args: never[]) => E, fn: () => unknown): E {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(type);
    return e as E;
  }
  throw new Error(`expected ${type.name}`);
}

describe('prefix caching off (the default)', () => {
  it('behaves as before: nothing is cached, lookups miss, publish only validates', () => {
    const freed: number[][] = [];
    const kv = new PagedKvCache({ numPages: 4, pageSize: 4, onPagesFreed: (p) => freed.push([...p]) });
    kv.addSequence(1);
    kv.reserve(1, 8);
    kv.publish(1, 'a', range(8));
    expect(() => kv.publish(1, 'a', range(9))).toThrow(KvUsageError);
    expect(kv.lookupPrefix('a', range(9))).toBe(0);
    expect(kv.addSequenceWithPrefix(2, 'a', range(9))).toBe(0);
    expect(kv.length(2)).toBe(0);
    expect([kv.cachedPages(), kv.evictablePages()]).toEqual([0, 0]);
    kv.free(1);
    expect(freed).toEqual([[0, 1]]);
    expect(kv.freePages()).toBe(4);
    expect(kv.stats().prefix).toBeUndefined();
    expect('prefix' in kv.snapshot()).toBe(false);
  });
});

describe('lookupPrefix, addSequenceWithPrefix, publish', () => {
  it('shares published full pages with a later sequence of the same prefix', () => {
    const { kv } = cache(8, 4);
    const T = range(10);
    computed(kv, 1, T); // pages 0, 1 full, 2 partial
    expect(kv.cachedPages()).toBe(2);
    expect(kv.lookupPrefix('a', T)).toBe(8);
    expect(kv.lookupPrefix('a', [...T.slice(0, 8), 99])).toBe(8);
    expect(kv.lookupPrefix('a', [1, 2, 3, 4, 5, 6, 7, 0, 9])).toBe(4);
    expect(kv.lookupPrefix('a', [1, 2, 3, 0, 5, 6, 7, 8, 9])).toBe(0);
    const before = kv.snapshot();
    const statsBefore = kv.stats();
    expect(kv.addSequenceWithPrefix(2, 'a', [...T.slice(0, 8), 50, 51])).toBe(8);
    expect(kv.blockTable(2)).toEqual([0, 1]);
    expect(kv.length(2)).toBe(8);
    expect([kv.refCount(0), kv.refCount(1), kv.refCount(2)]).toEqual([2, 2, 1]);
    // It appends into a page of its own.
    expect(kv.reserve(2, 2)).toEqual({ slots: new Int32Array([12, 13]), copies: [] });
    expect(kv.stats().prefix).toEqual({ cachedPages: 2, evictablePages: 0, lookups: 1, hitTokens: 8, missTokens: 2, evictions: 0 });
    // lookupPrefix has no side effects (state or counters).
    kv.free(2);
    kv.lookupPrefix('a', T);
    expect(kv.stats().prefix).toMatchObject({ lookups: 1 });
    expect(statsBefore.prefix).toMatchObject({ lookups: 0 });
    expect(kv.snapshot().sequences).toEqual(before.sequences);
  });

  it('never matches the whole prompt: at least one token is left to compute', () => {
    const { kv } = cache(8, 4);
    computed(kv, 1, range(12));
    expect(kv.cachedPages()).toBe(3);
    expect(kv.lookupPrefix('a', range(12))).toBe(8);
    expect(kv.lookupPrefix('a', range(13))).toBe(12);
    expect(kv.lookupPrefix('a', range(9))).toBe(8);
    expect(kv.lookupPrefix('a', range(8))).toBe(4);
    expect(kv.lookupPrefix('a', range(4))).toBe(0);
    expect(kv.lookupPrefix('a', [])).toBe(0);
    expect(kv.addSequenceWithPrefix(2, 'a', range(8))).toBe(4);
    expect(kv.addSequenceWithPrefix(3, 'a', [])).toBe(0);
    expect(kv.stats().prefix).toMatchObject({ lookups: 2, hitTokens: 4, missTokens: 4 });
  });

  it('publishes incrementally: only new full pages, idempotently', () => {
    const { kv } = cache(8, 4);
    const T = range(10);
    kv.addSequence(1);
    kv.reserve(1, 6);
    kv.publish(1, 'a', T.slice(0, 6));
    expect(kv.cachedPages()).toBe(1);
    expect(kv.snapshot().prefix!.sequences).toEqual([{ id: 1, namespace: 'a', publishedPages: 1 }]);
    kv.reserve(1, 4);
    kv.publish(1, 'a', T.slice(0, 3)); // nothing new
    expect(kv.cachedPages()).toBe(1);
    kv.publish(1, 'a', T);
    expect(kv.cachedPages()).toBe(2);
    const snap = kv.snapshot();
    kv.publish(1, 'a', T);
    expect(kv.snapshot()).toEqual(snap);
    expect(snap.prefix!.entries.map((e) => [e.tokens, e.pages])).toEqual([
      [[1, 2, 3, 4], [0]],
      [[5, 6, 7, 8], [1]],
    ]);
    expect(snap.prefix!.entries[1]!.parentHash).toBe(snap.prefix!.entries[0]!.hash);
  });

  it('rejects bad publish and add calls with KvUsageError, changing nothing', () => {
    const { kv } = cache(8, 4);
    kv.addSequence(3);
    kv.reserve(3, 8);
    kv.fork(3, 4); // shares pages 0, 1
    kv.publish(3, 'a', range(8));
    const before = kv.snapshot();
    const statsBefore = kv.stats();
    expect(thrown(KvUsageError, () => kv.publish(3, 'a', range(9)))).toMatchObject({ sequenceId: 3, value: 9 });
    expect(thrown(KvUsageError, () => kv.publish(3, 'b', range(8))).message).toMatch(/namespace 'a'/);
    // Sequence 4 holds the cached page 1: stating other tokens for it is a caller bug.
    expect(thrown(KvUsageError, () => kv.publish(4, 'a', [1, 2, 3, 4, 5, 6, 7, 0])).message).toMatch(/page 1 .*other token ids/);
    expect(() => kv.publish(3, 'a', [1, 2.5])).toThrow(/position 1/);
    expect(() => kv.publish(3, 'a', [-1])).toThrow(KvUsageError);
    expect(() => kv.publish(3, 7 as unknown as string, [])).toThrow(/namespace/);
    expect(() => kv.publish(9, 'a', [])).toThrow(/unknown sequence 9/);
    expect(thrown(KvUsageError, () => kv.addSequenceWithPrefix(3, 'a', range(9))).message).toMatch(/already exists/);
    expect(() => kv.addSequenceWithPrefix(5, 'a', [2 ** 32])).toThrow(KvUsageError);
    expect(() => kv.lookupPrefix('a', [Number.NaN])).toThrow(KvUsageError);
    expect(kv.snapshot()).toEqual(before);
    expect(kv.stats()).toEqual(statsBefore);
    // The truth is accepted: sequence 4 publishes the pages it shares (no new registration).
    kv.publish(4, 'a', range(8));
    expect(kv.cachedPages()).toBe(2);
    expect(kv.snapshot().prefix!.sequences).toEqual([
      { id: 3, namespace: 'a', publishedPages: 2 },
      { id: 4, namespace: 'a', publishedPages: 2 },
    ]);
  });

  it('isolates namespaces: identical tokens never share pages across them', () => {
    const { kv } = cache(8, 4);
    const T = range(9);
    computed(kv, 1, T, 'app-a/model');
    expect(kv.lookupPrefix('app-b/model', T)).toBe(0);
    expect(kv.addSequenceWithPrefix(2, 'app-b/model', T)).toBe(0);
    kv.reserve(2, 9);
    kv.publish(2, 'app-b/model', T);
    expect(kv.cachedPages()).toBe(4);
    expect(kv.addSequenceWithPrefix(3, 'app-a/model', T)).toBe(8);
    expect(kv.addSequenceWithPrefix(4, 'app-b/model', T)).toBe(8);
    expect(kv.blockTable(3)).toEqual(kv.blockTable(1).slice(0, 2));
    expect(kv.blockTable(4)).toEqual(kv.blockTable(2).slice(0, 2));
    expect(kv.blockTable(3)).not.toEqual(kv.blockTable(4));
  });

  it('follows a fork: the new sequence shares the published pages and continues publishing', () => {
    const { kv } = cache(8, 4);
    computed(kv, 1, range(6));
    kv.fork(1, 2);
    expect(kv.snapshot().prefix!.sequences[1]).toEqual({ id: 2, namespace: 'a', publishedPages: 1 });
    kv.reserve(2, 2);
    kv.publish(2, 'a', range(8));
    expect(kv.cachedPages()).toBe(2);
    expect(kv.lookupPrefix('a', range(9))).toBe(8);
  });
});

describe('hash collisions', () => {
  it('never returns a page whose token ids differ (every hash collides)', () => {
    const { kv } = cache(8, 4, () => 7);
    const A = range(12);
    computed(kv, 1, A);
    // Page 1's hash is taken by page 0: the existing registration is kept, publishing stops.
    expect(kv.cachedPages()).toBe(1);
    expect(kv.snapshot().prefix!.sequences[0]!.publishedPages).toBe(1);
    expect(kv.lookupPrefix('a', [...A, 0])).toBe(4);
    expect(kv.lookupPrefix('a', [9, 9, 9, 9, 5])).toBe(0);
    expect(kv.lookupPrefix('b', [...A, 0])).toBe(0); // namespace seeds collide too
    computed(kv, 2, [9, 9, 9, 9, 9]);
    expect(kv.cachedPages()).toBe(1);
    expect(kv.addSequenceWithPrefix(3, 'a', [9, 9, 9, 9, 9])).toBe(0);
  });

  it('checks the parent link, not just the page: equal tokens after a different prefix miss', () => {
    // A hash that ignores the parent: page 1 of both prompts below gets the same hash.
    const { kv } = cache(8, 4, (_parent, tokens) => tokens[0] ?? 0);
    computed(kv, 1, [1, 2, 3, 4, 5, 6, 7, 8]);
    computed(kv, 2, [2, 0, 0, 0, 5, 6, 7, 8]);
    expect(kv.cachedPages()).toBe(3); // sequence 2's page 1 could not be registered
    // Sequence 1's page 1 holds KV computed after [1, 2, 3, 4]: it must not serve this prompt.
    expect(kv.lookupPrefix('a', [2, 0, 0, 0, 5, 6, 7, 8, 9])).toBe(4);
    expect(kv.addSequenceWithPrefix(3, 'a', [2, 0, 0, 0, 5, 6, 7, 8, 9])).toBe(4);
    expect(kv.blockTable(3)).toEqual([kv.blockTable(2)[0]]);
    expect(kv.lookupPrefix('a', [1, 2, 3, 4, 5, 6, 7, 8, 9])).toBe(8);
  });

  it('the default hash is a deterministic safe integer sensitive to parent, tokens and order', () => {
    const h = defaultPrefixHash(12345, [1, 2, 3]);
    expect(Number.isSafeInteger(h) && h >= 0).toBe(true);
    expect(defaultPrefixHash(12345, [1, 2, 3])).toBe(h);
    const others = [defaultPrefixHash(12346, [1, 2, 3]), defaultPrefixHash(12345, [1, 3, 2]), defaultPrefixHash(12345, [1, 2, 3, 0]), defaultPrefixHash(12345 + 2 ** 40, [1, 2, 3])];
    expect(new Set([h, ...others]).size).toBe(5);
  });
});

describe('unreferenced cached pages and eviction', () => {
  it('keeps freed cached pages (no onPagesFreed) and evicts them least recently used first', () => {
    const { kv, freed } = cache(6, 2);
    computed(kv, 1, [1, 2, 3, 4]); // pages 0, 1
    computed(kv, 2, [5, 6, 7, 8]); // pages 2, 3
    kv.free(1);
    kv.free(2);
    expect(freed).toEqual([]); // still valid KV
    // Deepest first: a prompt's tail is evicted before its head.
    expect(kv.snapshot().prefix!.evictable).toEqual([1, 0, 3, 2]);
    expect([kv.freePages(), kv.usedPages(), kv.evictablePages(), kv.cachedPages()]).toEqual([6, 0, 4, 4]);
    expect(kv.refCount(0)).toBe(0);

    kv.addSequence(3);
    kv.reserve(3, 4); // truly free pages first: 4, 5
    expect(kv.blockTable(3)).toEqual([4, 5]);
    expect(freed).toEqual([]);
    kv.reserve(3, 2); // evicts the least recently used: page 1
    expect(kv.blockTable(3)).toEqual([4, 5, 1]);
    expect(freed).toEqual([[1]]);
    expect(kv.lookupPrefix('a', [1, 2, 3, 4, 9])).toBe(2);
    expect(kv.lookupPrefix('a', [5, 6, 7, 8, 9])).toBe(4);

    // Using a prefix makes it recent again.
    expect(kv.addSequenceWithPrefix(4, 'a', [5, 6, 7, 8, 9])).toBe(4);
    expect(kv.snapshot().prefix!.evictable).toEqual([0]);
    kv.free(4);
    expect(kv.snapshot().prefix!.evictable).toEqual([0, 3, 2]);
    kv.reserve(3, 2);
    expect(kv.blockTable(3)).toEqual([4, 5, 1, 0]);
    expect(freed).toEqual([[1], [0]]);
    expect(kv.lookupPrefix('a', [1, 2, 3, 4, 9])).toBe(0);
    expect(kv.stats().prefix).toMatchObject({ cachedPages: 2, evictablePages: 2, evictions: 2 });
  });

  it('never evicts a referenced cached page', () => {
    const { kv, freed } = cache(3, 2);
    computed(kv, 1, [1, 2, 3, 4]); // pages 0, 1, cached and held by sequence 1
    kv.addSequence(2);
    kv.reserve(2, 1); // page 2, partial
    const before = kv.snapshot();
    expect(kv.freePages()).toBe(0);
    expect(kv.canAppend(2, 2)).toBe(false);
    expect(thrown(KvCacheFullError, () => kv.reserve(2, 2))).toMatchObject({ pagesNeeded: 1, pagesFree: 0 });
    expect(thrown(KvCacheFullError, () => kv.fork(2, 3))).toMatchObject({ op: 'fork' });
    expect(kv.snapshot()).toEqual(before);
    kv.free(1);
    expect(kv.freePages()).toBe(2);
    kv.reserve(2, 5);
    expect(kv.blockTable(2)).toEqual([2, 1, 0]);
    expect(freed).toEqual([[1, 0]]); // reported once, at eviction
    expect(kv.cachedPages()).toBe(0);
  });

  it('frees unpublished pages at once and keeps the published ones', () => {
    const { kv, freed } = cache(6, 2);
    computed(kv, 1, [1, 2, 3, 4, 5]); // pages 0, 1 cached; 2 partial
    kv.free(1);
    expect(freed).toEqual([[2]]);
    expect(kv.snapshot().prefix!.evictable).toEqual([1, 0]);
    expect(kv.snapshot().freePages).toEqual([2, 3, 4, 5]);
  });

  it('gives a new sharer a referenced copy of duplicated content first, else the most recently used', () => {
    const { kv, freed } = cache(8, 2);
    // Two requests computed the same prompt at once: both pages join one entry.
    computed(kv, 1, [1, 2, 3]); // pages 0, 1
    computed(kv, 2, [1, 2, 3]); // pages 2, 3
    expect(kv.snapshot().prefix!.entries).toMatchObject([{ tokens: [1, 2], pages: [0, 2] }]);
    expect(kv.cachedPages()).toBe(2);
    expect(kv.addSequenceWithPrefix(3, 'a', [1, 2, 9])).toBe(2);
    expect(kv.blockTable(3)).toEqual([0]);
    kv.free(1);
    kv.free(3);
    expect(freed).toEqual([[1]]);
    expect(kv.snapshot().prefix!.evictable).toEqual([0]);
    kv.addSequenceWithPrefix(4, 'a', [1, 2, 9]);
    expect(kv.blockTable(4)).toEqual([2]); // the referenced one, not the evictable 0
    kv.free(2);
    kv.free(4);
    expect(kv.snapshot().prefix!.evictable).toEqual([0, 2]);
    kv.addSequenceWithPrefix(5, 'a', [1, 2, 9]);
    expect(kv.blockTable(5)).toEqual([2]); // the most recently used
    expect(kv.snapshot().prefix!.evictable).toEqual([0]);
  });
});

describe('truncate and copy-on-write with cached pages', () => {
  it('unregisters a cached page a sole holder truncates into, and drops what hung below it', () => {
    const { kv, freed } = cache(8, 2);
    computed(kv, 1, range(6)); // pages 0, 1, 2, all cached
    expect(kv.cachedPages()).toBe(3);
    kv.truncate(1, 3); // page 2 released; page 1 becomes partial: it will be written
    expect(kv.blockTable(1)).toEqual([0, 1]);
    expect(kv.cachedPages()).toBe(1);
    // Page 2 could never be reached again without page 1: freed, reported.
    expect(freed).toEqual([[2]]);
    expect(kv.evictablePages()).toBe(0);
    expect(kv.lookupPrefix('a', range(7))).toBe(2);
    expect(kv.snapshot().prefix!.sequences[0]!.publishedPages).toBe(1);
    expect(kv.reserve(1, 1)).toEqual({ slots: new Int32Array([3]), copies: [] });
    // Recomputing and publishing again re-registers the same prefix.
    kv.reserve(1, 2);
    kv.publish(1, 'a', range(6));
    expect(kv.cachedPages()).toBe(3);
    expect(kv.lookupPrefix('a', range(7))).toBe(6);
  });

  it('keeps a shared cached page registered and copies it before the truncated sharer appends', () => {
    const { kv } = cache(8, 4);
    computed(kv, 1, range(8)); // pages 0, 1
    expect(kv.addSequenceWithPrefix(2, 'a', range(9))).toBe(8);
    kv.truncate(2, 6); // page 1 partial for 2, still full (and cached) for 1
    expect(kv.cachedPages()).toBe(2);
    expect(kv.pagesNeeded(2, 1)).toBe(1);
    const r = kv.reserve(2, 1);
    expect(r.copies).toEqual([{ srcPage: 1, dstPage: 2, tokens: 2 }]);
    expect([...r.slots]).toEqual([10]);
    expect(kv.refCount(1)).toBe(1);
    expect(kv.lookupPrefix('a', range(9))).toBe(8);
  });

  it('unregisters instead of copying when the truncated sharer became the only holder', () => {
    const { kv, freed } = cache(8, 4);
    computed(kv, 1, range(8));
    kv.addSequenceWithPrefix(2, 'a', range(9));
    kv.truncate(2, 6);
    kv.free(1);
    expect(freed).toEqual([]);
    expect(kv.refCount(1)).toBe(1);
    expect(kv.pagesNeeded(2, 1)).toBe(0);
    expect(kv.reserve(2, 1)).toEqual({ slots: new Int32Array([6]), copies: [] });
    expect(kv.cachedPages()).toBe(1);
    expect(kv.lookupPrefix('a', range(9))).toBe(4);
  });

  it('keeps a cached page whole when a sole holder truncates to its end', () => {
    const { kv } = cache(8, 4);
    computed(kv, 1, range(10));
    kv.truncate(1, 8);
    expect(kv.cachedPages()).toBe(2);
    kv.truncate(1, 4);
    expect(kv.cachedPages()).toBe(2);
    expect(kv.evictablePages()).toBe(1);
    expect(kv.snapshot().prefix!.sequences[0]!.publishedPages).toBe(1);
  });
});
