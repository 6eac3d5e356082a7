import { describe, expect, it } from 'vitest';
import { KvCacheFullError, KvUsageError, PagedKvCache } from '../../src/kv/index.js';

/** A cache with a recording onPagesFreed hook. */
function cache(numPages: number, pageSize: number): { kv: PagedKvCache; freed: number[][] } {
  const freed: number[][] = [];
  const kv = new PagedKvCache({ numPages, pageSize, onPagesFreed: (pages) => freed.push([...pages]) });
  return { kv, freed };
}

/** Runs fn, expects it to throw `type`, and returns the error for field checks. */
function thrown<E extends Error>(type: new (...args: never[]) => E, fn: () => unknown): E {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(type);
    return e as E;
  }
  throw new Error(`expected ${type.name}`);
}

describe('PagedKvCache construction', () => {
  it('defaults pageSize to 16 and starts empty', () => {
    const kv = new PagedKvCache({ numPages: 10 });
    expect(kv.pageSize).toBe(16);
    expect(kv.capacityTokens()).toBe(160);
    expect(kv.freePages()).toBe(10);
    expect(kv.usedPages()).toBe(0);
    expect(kv.stats()).toEqual({
      numPages: 10,
      pageSize: 16,
      sequences: 0,
      freePages: 10,
      usedPages: 0,
      sharedPages: 0,
      storedTokens: 0,
      capacityTokens: 160,
    });
  });

  it('rejects bad options with KvUsageError naming the value', () => {
    for (const numPages of [0, -1, 1.5, Number.NaN]) {
      expect(thrown(KvUsageError, () => new PagedKvCache({ numPages })).value).toBe(numPages);
    }
    expect(thrown(KvUsageError, () => new PagedKvCache({ numPages: 4, pageSize: 0 })).message).toMatch(/pageSize/);
    // Slots are i32 on the GPU.
    expect(() => new PagedKvCache({ numPages: 2 ** 27, pageSize: 16 })).toThrow(/i32/);
  });
});

describe('reserve', () => {
  it('returns slot = page * pageSize + offset across page boundaries, lowest free page first', () => {
    const { kv } = cache(8, 4);
    kv.addSequence(1);
    expect(kv.pagesNeeded(1, 3)).toBe(1);
    let r = kv.reserve(1, 3);
    expect([...r.slots]).toEqual([0, 1, 2]);
    expect(r.copies).toEqual([]);
    r = kv.reserve(1, 3); // positions 3, 4, 5: crosses into a second page
    expect([...r.slots]).toEqual([3, 4, 5]);
    expect(kv.blockTable(1)).toEqual([0, 1]);

    kv.addSequence(2);
    expect([...kv.reserve(2, 2).slots]).toEqual([8, 9]); // page 2
    expect(kv.pagesNeeded(1, 3)).toBe(1);
    expect([...kv.reserve(1, 3).slots]).toEqual([6, 7, 12]); // rest of page 1, then page 3
    expect(kv.blockTable(1)).toEqual([0, 1, 3]);
    expect(kv.length(1)).toBe(9);
    expect(kv.length(2)).toBe(2);
    expect(kv.usedPages()).toBe(4);
  });

  it('reuses the lowest freed page, whatever the order of frees', () => {
    const { kv } = cache(6, 2);
    for (const id of [1, 2, 3]) {
      kv.addSequence(id);
      kv.reserve(id, 2);
    }
    kv.free(3);
    kv.free(1); // pages 2 then 0 freed; 0 comes back first
    kv.addSequence(4);
    expect(kv.blockTable(4)).toEqual([]);
    kv.reserve(4, 4);
    expect(kv.blockTable(4)).toEqual([0, 2]);
  });

  it('handles n = 0 without allocating, and a long reserve spanning many pages', () => {
    const { kv } = cache(8, 4);
    kv.addSequence(7);
    expect(kv.pagesNeeded(7, 0)).toBe(0);
    expect(kv.reserve(7, 0).slots).toHaveLength(0);
    expect(kv.usedPages()).toBe(0);
    const { slots } = kv.reserve(7, 30);
    expect([...slots]).toEqual(Array.from({ length: 30 }, (_, i) => i));
    expect(kv.blockTable(7)).toEqual([0, 1, 2, 3, 4, 5, 6, 7]);
    expect(kv.canAppend(7, 2)).toBe(true); // room left in page 7
    expect(kv.canAppend(7, 3)).toBe(false);
  });

  it('throws KvCacheFullError and changes nothing when pages run out', () => {
    const { kv, freed } = cache(3, 4);
    kv.addSequence(1);
    kv.reserve(1, 5); // pages 0, 1
    kv.addSequence(2);
    const before = kv.snapshot();
    expect(kv.canAppend(2, 5)).toBe(false);
    const e = thrown(KvCacheFullError, () => kv.reserve(2, 5));
    expect(e).toMatchObject({ op: 'reserve', sequenceId: 2, pagesNeeded: 2, pagesFree: 1 });
    expect(e.message).toMatch(/sequence 2 needs 2 .* only 1/);
    expect(kv.snapshot()).toEqual(before);
    expect(freed).toEqual([]);
    // The same call succeeds once room is made.
    kv.free(1);
    expect([...kv.reserve(2, 5).slots]).toEqual([0, 1, 2, 3, 4]);
  });

  it('rejects unknown sequences and bad counts with KvUsageError', () => {
    const { kv } = cache(4, 4);
    expect(thrown(KvUsageError, () => kv.reserve(9, 1))).toMatchObject({ sequenceId: 9 });
    kv.addSequence(1);
    for (const n of [-1, 1.5, Number.NaN]) {
      const e = thrown(KvUsageError, () => kv.reserve(1, n));
      expect(e.sequenceId).toBe(1);
      expect(e.value).toBe(n);
    }
    expect(() => kv.canAppend(1, -2)).toThrow(KvUsageError);
    expect(() => kv.length(2)).toThrow(/unknown sequence 2/);
    expect(() => kv.blockTable(2)).toThrow(KvUsageError);
    expect(thrown(KvUsageError, () => kv.addSequence(1)).message).toMatch(/already exists/);
    expect(() => kv.addSequence(0.5)).toThrow(KvUsageError);
  });
});

describe('truncate and free', () => {
  it('truncates to mid-page, keeping the partial page, and appends after it', () => {
    const { kv, freed } = cache(8, 4);
    kv.addSequence(1);
    kv.reserve(1, 9); // pages 0, 1, 2
    kv.truncate(1, 5);
    expect(kv.length(1)).toBe(5);
    expect(kv.blockTable(1)).toEqual([0, 1]);
    expect(freed).toEqual([[2]]);
    // Positions 5, 6 overwrite the stale slots in page 1; no copy (page 1 is private).
    expect(kv.reserve(1, 2)).toEqual({ slots: new Int32Array([5, 6]), copies: [] });
    kv.truncate(1, 4); // exactly on a page boundary: page 1 goes
    expect(kv.blockTable(1)).toEqual([0]);
    expect(freed).toEqual([[2], [1]]);
  });

  it('truncates to 0 and to the same length', () => {
    const { kv, freed } = cache(8, 4);
    kv.addSequence(1);
    kv.reserve(1, 10);
    kv.truncate(1, 10);
    expect(freed).toEqual([]); // nothing freed: no hook call
    kv.truncate(1, 0);
    expect(kv.length(1)).toBe(0);
    expect(kv.blockTable(1)).toEqual([]);
    expect(freed.flat().sort()).toEqual([0, 1, 2]);
    expect(kv.freePages()).toBe(8);
    expect(kv.hasSequence(1)).toBe(true);
    expect([...kv.reserve(1, 1).slots]).toEqual([0]);
  });

  it('rejects a truncate beyond the length, naming sequence and value, and changes nothing', () => {
    const { kv } = cache(8, 4);
    kv.addSequence(3);
    kv.reserve(3, 6);
    const before = kv.snapshot();
    for (const bad of [7, -1, 2.5]) {
      const e = thrown(KvUsageError, () => kv.truncate(3, bad));
      expect(e).toMatchObject({ sequenceId: 3, value: bad });
      expect(e.message).toContain(`sequence 3`);
      expect(e.message).toContain(String(bad));
    }
    expect(kv.snapshot()).toEqual(before);
  });

  it('frees all pages, reports exactly them, and rejects a double free', () => {
    const { kv, freed } = cache(8, 4);
    kv.addSequence(1);
    kv.addSequence(2);
    kv.reserve(1, 5); // 0, 1
    kv.reserve(2, 1); // 2
    kv.reserve(1, 4); // 1, 3
    kv.free(1);
    expect(freed).toEqual([[0, 1, 3]]);
    expect(kv.hasSequence(1)).toBe(false);
    expect(kv.sequenceIds()).toEqual([2]);
    expect(kv.freePages()).toBe(7);
    const e = thrown(KvUsageError, () => kv.free(1));
    expect(e).toMatchObject({ sequenceId: 1 });
    expect(e.message).toMatch(/already freed/);
    kv.free(2); // an empty-paged free would not call the hook; this one frees page 2
    expect(freed).toEqual([[0, 1, 3], [2]]);
    kv.addSequence(5);
    kv.free(5);
    expect(freed).toHaveLength(2);
  });
});

describe('fork and copy-on-write', () => {
  it('shares full pages and copies a partial last page', () => {
    const { kv } = cache(8, 4);
    kv.addSequence(1);
    kv.reserve(1, 6); // pages 0 (full), 1 (2 tokens)
    expect(kv.forkPagesNeeded(1)).toBe(1);
    const { copies } = kv.fork(1, 2);
    expect(copies).toEqual([{ srcPage: 1, dstPage: 2, tokens: 2 }]);
    expect(kv.blockTable(2)).toEqual([0, 2]);
    expect(kv.length(2)).toBe(6);
    expect([kv.refCount(0), kv.refCount(1), kv.refCount(2)]).toEqual([2, 1, 1]);
    expect(kv.stats().sharedPages).toBe(1);
    // Both append into their private partial pages without further copies.
    expect(kv.reserve(1, 1)).toEqual({ slots: new Int32Array([6]), copies: [] });
    expect(kv.reserve(2, 1)).toEqual({ slots: new Int32Array([10]), copies: [] });
  });

  it('forks a page-aligned sequence with no copy, and an empty one', () => {
    const { kv, freed } = cache(4, 4);
    kv.addSequence(1);
    kv.reserve(1, 8);
    expect(kv.fork(1, 2).copies).toEqual([]);
    expect(kv.blockTable(2)).toEqual([0, 1]);
    expect(kv.usedPages()).toBe(2);
    kv.free(1);
    expect(freed).toEqual([]); // still held by 2
    expect(kv.refCount(0)).toBe(1);
    kv.addSequence(3);
    expect(kv.fork(3, 4).copies).toEqual([]);
    expect(kv.length(4)).toBe(0);
  });

  it('copies a shared partial last page before reserve writes into it', () => {
    const { kv } = cache(8, 4);
    kv.addSequence(1);
    kv.reserve(1, 8); // 0, 1 full
    kv.fork(1, 2); // shares both
    kv.truncate(2, 6); // 2's last page (1) is now partial and still shared with 1
    expect(kv.refCount(1)).toBe(2);
    expect(kv.pagesNeeded(2, 1)).toBe(1);
    expect(kv.pagesNeeded(2, 3)).toBe(2); // the copy plus a new page
    const r = kv.reserve(2, 3);
    expect(r.copies).toEqual([{ srcPage: 1, dstPage: 2, tokens: 2 }]);
    expect([...r.slots]).toEqual([10, 11, 12]);
    expect(kv.blockTable(2)).toEqual([0, 2, 3]);
    expect(kv.refCount(1)).toBe(1);
    expect(kv.blockTable(1)).toEqual([0, 1]); // the source is untouched
  });

  it('throws KvCacheFullError with no change when the copy-on-write or fork page is missing', () => {
    const { kv, freed } = cache(3, 4);
    kv.addSequence(1);
    kv.reserve(1, 8); // 0, 1
    kv.fork(1, 2);
    kv.truncate(2, 6);
    kv.addSequence(3);
    kv.reserve(3, 1); // page 2: none free now
    let before = kv.snapshot();
    expect(kv.canAppend(2, 1)).toBe(false);
    expect(thrown(KvCacheFullError, () => kv.reserve(2, 1))).toMatchObject({ pagesNeeded: 1, pagesFree: 0 });
    expect(kv.snapshot()).toEqual(before);
    expect(thrown(KvCacheFullError, () => kv.fork(3, 4))).toMatchObject({ op: 'fork', sequenceId: 3, pagesFree: 0 });
    expect(kv.snapshot()).toEqual(before);
    expect(kv.hasSequence(4)).toBe(false);
    // One free page: enough for the copy, not for the copy plus a new page. All or nothing.
    kv.free(3);
    before = kv.snapshot();
    expect(thrown(KvCacheFullError, () => kv.reserve(2, 3))).toMatchObject({ pagesNeeded: 2, pagesFree: 1 });
    expect(kv.snapshot()).toEqual(before);
    expect(freed).toEqual([[2]]);
  });

  it('rejects forks from unknown sources and onto existing ids', () => {
    const { kv } = cache(4, 4);
    kv.addSequence(1);
    kv.addSequence(2);
    expect(thrown(KvUsageError, () => kv.fork(5, 6))).toMatchObject({ sequenceId: 5 });
    expect(thrown(KvUsageError, () => kv.fork(1, 2))).toMatchObject({ sequenceId: 2 });
    expect(thrown(KvUsageError, () => kv.fork(1, 1))).toMatchObject({ sequenceId: 1 });
  });

  it('reports a shared page as freed only when its last owner lets go', () => {
    const { kv, freed } = cache(8, 2);
    kv.addSequence(1);
    kv.reserve(1, 5); // 0, 1 full, 2 partial
    kv.fork(1, 2); // shares 0, 1; copy of 2 into 3
    kv.fork(2, 3); // shares 0, 1; copy of 3 into 4
    expect(kv.refCount(0)).toBe(3);
    kv.truncate(1, 1); // 1 drops pages 1 and 2: only 2 is freed
    expect(freed).toEqual([[2]]);
    kv.free(2);
    expect(freed).toEqual([[2], [3]]);
    kv.free(3);
    expect(freed).toEqual([[2], [3], [1, 4]]);
    kv.free(1);
    expect(freed).toEqual([[2], [3], [1, 4], [0]]);
    expect(kv.freePages()).toBe(8);
    expect(kv.snapshot().refCounts).toEqual(new Array(8).fill(0));
  });
});
