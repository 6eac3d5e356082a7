// Model-based randomized test of PagedKvCache: thousands of seeded random operations, each checked
// against a trivial reference model (every sequence is a plain array of token ids). Token ids are
// written through the returned slots into a simulated KV memory, page copies are performed as the
// GPU would, and freed pages are poisoned with NaN through onPagesFreed; after every operation each
// live sequence is read back through its block table and must equal the model.

import { describe, expect, it } from 'vitest';
import { KvCacheFullError, KvUsageError, PagedKvCache, type KvCacheSnapshot, type PageCopy } from '../../src/kv/index.js';
import { rng } from '../helpers/random.js';

interface Config {
  numPages: number;
  pageSize: number;
  seed: number;
  ops: number;
  /** Whether every kind of event (copy-on-write, fork copy, cache full, ...) must have happened. */
  expectCoverage: boolean;
}

type Counter = 'add' | 'reserve' | 'full' | 'cow' | 'fork' | 'forkCopy' | 'truncate' | 'free' | 'freedPages' | 'misuse';

function fail(step: number, what: string): never {
  throw new Error(`step ${step}: ${what}`);
}

function referenced(snap: KvCacheSnapshot): Set<number> {
  const s = new Set<number>();
  for (const seq of snap.sequences) for (const p of seq.pages) s.add(p);
  return s;
}

function runModel({ numPages, pageSize: ps, seed, ops }: Config): Record<Counter, number> {
  const random = rng(seed);
  const int = (lo: number, hi: number): number => lo + Math.floor(random() * (hi - lo + 1)); // inclusive
  const mem = new Float64Array(numPages * ps).fill(Number.NaN);
  const count: Record<Counter, number> = {
    add: 0,
    reserve: 0,
    full: 0,
    cow: 0,
    fork: 0,
    forkCopy: 0,
    truncate: 0,
    free: 0,
    freedPages: 0,
    misuse: 0,
  };
  let step = 0;
  let hookCalls: number[][] = [];
  const kv = new PagedKvCache({
    numPages,
    pageSize: ps,
    onPagesFreed: (pages) => {
      // The cache must already be consistent: a reported page is free and nobody's.
      for (const p of pages) if (kv.refCount(p) !== 0) fail(step, `hook reported page ${p} with refcount ${kv.refCount(p)}`);
      hookCalls.push([...pages]);
      for (const p of pages) mem.fill(Number.NaN, p * ps, (p + 1) * ps);
    },
  });
  const model = new Map<number, number[]>();
  let nextId = 100;
  let nextToken = 1;

  const liveIds = (): number[] => [...model.keys()];
  const pick = (): number => {
    const ids = liveIds();
    return ids[int(0, ids.length - 1)]!;
  };
  const applyCopies = (copies: readonly PageCopy[], before: KvCacheSnapshot): void => {
    for (const c of copies) {
      if (!before.freePages.includes(c.dstPage)) fail(step, `copy into page ${c.dstPage}, which was not free`);
      if (kv.refCount(c.dstPage) !== 1) fail(step, `copy target ${c.dstPage} is not private`);
      if (kv.refCount(c.srcPage) < 1) fail(step, `copy source ${c.srcPage} was freed by the same call`);
      mem.copyWithin(c.dstPage * ps, c.srcPage * ps, c.srcPage * ps + c.tokens);
    }
  };
  // Pages the call allocated must be the lowest free ones (the documented allocation order).
  const checkAllocOrder = (before: KvCacheSnapshot, taken: number): void => {
    const newly = [...referenced(kv.snapshot())].filter((p) => !referenced(before).has(p)).sort((a, b) => a - b);
    const expected = before.freePages.slice(0, taken);
    if (newly.join() !== expected.join()) fail(step, `allocated [${newly}], expected lowest free [${expected}]`);
  };
  const expectThrows = <E extends Error>(type: new (...a: never[]) => E, fn: () => unknown): E => {
    try {
      fn();
    } catch (e) {
      if (!(e instanceof type)) throw e;
      return e;
    }
    return fail(step, `expected ${type.name}`);
  };

  for (step = 0; step < ops; step++) {
    const before = kv.snapshot();
    hookCalls = [];
    let mustBeUnchanged = false;
    const roll = random();

    if (model.size === 0 || (roll < 0.1 && model.size < 10)) {
      const id = nextId++;
      kv.addSequence(id);
      model.set(id, []);
      count.add++;
    } else if (roll < 0.5) {
      // reserve: mostly decode-sized steps, sometimes a prefill chunk spanning pages.
      const id = pick();
      const toks = model.get(id)!;
      const n = random() < 0.7 ? int(0, 3) : int(0, 3 * ps);
      const len = toks.length;
      const table = before.sequences.find((s) => s.id === id)!.pages;
      const last = table[table.length - 1];
      const cow = n > 0 && len % ps !== 0 && before.refCounts[last!]! > 1;
      const needed = n === 0 ? 0 : Math.ceil((len + n) / ps) - Math.ceil(len / ps) + (cow ? 1 : 0);
      if (kv.pagesNeeded(id, n) !== needed) fail(step, `pagesNeeded ${kv.pagesNeeded(id, n)} != ${needed}`);
      const fits = needed <= before.freePages.length;
      if (kv.canAppend(id, n) !== fits) fail(step, `canAppend disagrees with the model`);
      if (!fits) {
        const e = expectThrows(KvCacheFullError, () => kv.reserve(id, n));
        expect(e).toMatchObject({ sequenceId: id, pagesNeeded: needed, pagesFree: before.freePages.length });
        mustBeUnchanged = true;
        count.full++;
      } else {
        const { slots, copies } = kv.reserve(id, n);
        const expectedCopies = cow ? [{ srcPage: last, dstPage: before.freePages[0], tokens: len % ps }] : [];
        expect(copies).toEqual(expectedCopies);
        applyCopies(copies, before);
        checkAllocOrder(before, needed);
        const after = kv.blockTable(id);
        if (slots.length !== n) fail(step, `got ${slots.length} slots for ${n} tokens`);
        for (let i = 0; i < n; i++) {
          const pos = len + i;
          const page = after[Math.floor(pos / ps)]!;
          if (slots[i] !== page * ps + (pos % ps)) fail(step, `slot ${slots[i]} for position ${pos}`);
          // Never write into a shared page.
          if (kv.refCount(page) !== 1) fail(step, `slot ${slots[i]} is in shared page ${page}`);
          mem[slots[i]!] = nextToken;
          toks.push(nextToken++);
        }
        count.reserve++;
        if (cow) count.cow++;
      }
    } else if (roll < 0.65) {
      const id = pick();
      const toks = model.get(id)!;
      const newLength = int(0, toks.length);
      kv.truncate(id, newLength);
      toks.length = newLength;
      count.truncate++;
    } else if (roll < 0.77) {
      if (model.size >= 10) continue;
      const src = pick();
      const dst = nextId++;
      const len = model.get(src)!.length;
      const needsCopy = len % ps !== 0;
      if (kv.forkPagesNeeded(src) !== (needsCopy ? 1 : 0)) fail(step, 'forkPagesNeeded disagrees');
      if (needsCopy && before.freePages.length === 0) {
        expectThrows(KvCacheFullError, () => kv.fork(src, dst));
        mustBeUnchanged = true;
        count.full++;
      } else {
        const { copies } = kv.fork(src, dst);
        const srcTable = before.sequences.find((s) => s.id === src)!.pages;
        const expectedCopies = needsCopy ? [{ srcPage: srcTable[srcTable.length - 1], dstPage: before.freePages[0], tokens: len % ps }] : [];
        expect(copies).toEqual(expectedCopies);
        applyCopies(copies, before);
        checkAllocOrder(before, needsCopy ? 1 : 0);
        model.set(dst, model.get(src)!.slice());
        count.fork++;
        if (needsCopy) count.forkCopy++;
      }
    } else if (roll < 0.93) {
      const id = pick();
      kv.free(id);
      model.delete(id);
      count.free++;
    } else {
      // Misuse: each must throw KvUsageError and change nothing.
      const id = pick();
      const len = model.get(id)!.length;
      const which = int(0, 3);
      const e = expectThrows(KvUsageError, () => {
        if (which === 0) kv.truncate(id, len + int(1, 5));
        else if (which === 1) kv.free(nextId + 1000);
        else if (which === 2) kv.reserve(id, -int(1, 5));
        else kv.fork(id, pick());
      });
      if (e.sequenceId === undefined) fail(step, 'KvUsageError without a sequence id');
      mustBeUnchanged = true;
      count.misuse++;
    }

    // ---- checks after every operation ----
    const snap = kv.snapshot();
    if (mustBeUnchanged) {
      expect(snap).toEqual(before);
      if (hookCalls.length > 0) fail(step, 'a failed call reported freed pages');
    }
    // onPagesFreed reported exactly the pages that stopped being referenced, each once, in <= 1 call.
    if (hookCalls.length > 1) fail(step, `${hookCalls.length} hook calls in one operation`);
    const reported = hookCalls.flat().sort((a, b) => a - b);
    const refNow = referenced(snap);
    const dropped = [...referenced(before)].filter((p) => !refNow.has(p)).sort((a, b) => a - b);
    if (reported.join() !== dropped.join()) fail(step, `hook reported [${reported}], pages dropped [${dropped}]`);
    count.freedPages += reported.length;

    // Each live sequence reads back its model content through its block table.
    const ids = snap.sequences.map((s) => s.id).sort((a, b) => a - b);
    if (
      ids.join() !==
      liveIds()
        .sort((a, b) => a - b)
        .join()
    )
      fail(step, `live ids [${ids}] != model`);
    const refs = new Array<number>(numPages).fill(0);
    let storedTokens = 0;
    for (const seq of snap.sequences) {
      const toks = model.get(seq.id)!;
      if (seq.length !== toks.length || kv.length(seq.id) !== toks.length) fail(step, `length of ${seq.id}`);
      if (seq.pages.length !== Math.ceil(toks.length / ps)) fail(step, `${seq.pages.length} pages for ${toks.length} tokens`);
      if (new Set(seq.pages).size !== seq.pages.length) fail(step, `sequence ${seq.id} holds a page twice`);
      for (const p of seq.pages) refs[p]!++;
      for (let pos = 0; pos < toks.length; pos++) {
        const v = mem[seq.pages[Math.floor(pos / ps)]! * ps + (pos % ps)];
        if (v !== toks[pos]) fail(step, `sequence ${seq.id} position ${pos}: read ${v}, model ${toks[pos]}`);
      }
      storedTokens += toks.length;
    }
    // Refcounts equal the number of block tables holding each page; the free list is exactly the
    // unreferenced pages (so no page is both free and referenced).
    if (snap.refCounts.join() !== refs.join()) fail(step, `refcounts [${snap.refCounts}] != table counts [${refs}]`);
    const unreferenced = refs.flatMap((r, p) => (r === 0 ? [p] : []));
    if (snap.freePages.join() !== unreferenced.join()) fail(step, `free list [${snap.freePages}] != [${unreferenced}]`);
    if (kv.freePages() + kv.usedPages() !== numPages) fail(step, 'free + used != numPages');
    if (kv.usedPages() !== numPages - unreferenced.length) fail(step, 'usedPages');
    const stats = kv.stats();
    if (stats.storedTokens !== storedTokens || stats.sequences !== model.size) fail(step, 'stats');
    if (stats.sharedPages !== refs.filter((r) => r > 1).length) fail(step, 'stats.sharedPages');
  }
  return count;
}

const configs: Config[] = [
  { numPages: 12, pageSize: 4, seed: 1, ops: 4000, expectCoverage: true },
  { numPages: 12, pageSize: 4, seed: 2, ops: 4000, expectCoverage: true },
  { numPages: 24, pageSize: 16, seed: 3, ops: 4000, expectCoverage: true },
  { numPages: 32, pageSize: 1, seed: 4, ops: 4000, expectCoverage: false }, // never partial: no copies
  { numPages: 40, pageSize: 5, seed: 5, ops: 4000, expectCoverage: true },
  { numPages: 6, pageSize: 3, seed: 6, ops: 4000, expectCoverage: true },
  { numPages: 1, pageSize: 3, seed: 7, ops: 2000, expectCoverage: false },
];

describe('PagedKvCache against a reference model', () => {
  it.each(configs)('numPages $numPages, pageSize $pageSize, seed $seed: $ops random operations', (cfg) => {
    const count = runModel(cfg);
    expect(count.reserve).toBeGreaterThan(0);
    expect(count.free).toBeGreaterThan(0);
    expect(count.freedPages).toBeGreaterThan(0);
    expect(count.misuse).toBeGreaterThan(0);
    if (cfg.expectCoverage) {
      // The interesting paths must actually have been exercised, not just the easy ones.
      expect(count.cow).toBeGreaterThan(0);
      expect(count.forkCopy).toBeGreaterThan(0);
      expect(count.full).toBeGreaterThan(0);
      expect(count.fork - count.forkCopy).toBeGreaterThan(0);
    }
  });

  it('is deterministic: the same seed gives the same run', () => {
    const cfg = configs[0]!;
    expect(runModel({ ...cfg, ops: 500 })).toEqual(runModel({ ...cfg, ops: 500 }));
  });
});
