// Model-based randomized test of prefix caching: thousands of seeded random operations (addSequence,
// addSequenceWithPrefix, reserve with the token ids written, publish, fork, truncate, free, lookups
// and misuse) under allocation pressure, each checked against PrefixCacheModel (test/helpers), which
// predicts every block table, refcount, the free list, the LRU order, the cached contents and the
// pages onPagesFreed reports. Token ids are written through the returned slots into a simulated KV
// memory, copies are performed as the GPU would, and reported pages are poisoned with NaN; after
// every operation every sequence reads its tokens back and every cached page must still hold exactly
// its registered token ids, so sharing can never have handed a sequence wrong KV.

import { describe, expect, it } from 'vitest';
import { KvCacheFullError, KvUsageError, PagedKvCache, type KvCacheSnapshot, type PrefixHashFn } from '../../src/kv/index.js';
import { PrefixCacheModel } from '../helpers/kv-prefix-model.js';
import { rng } from '../helpers/random.js';

interface Config {
  numPages: number;
  pageSize: number;
  seed: number;
  ops: number;
  /** A weak hash that collides often: publishing may stop early; everything else stays exact. */
  weakHash?: boolean;
}

const NAMESPACES = ['app-a', 'app-b'];
const MAX_SEQS = 10;

function fail(step: number, what: string): never {
  throw new Error(`step ${step}: ${what}`);
}

// Collides a lot, also between pages with equal tokens and different parents: 4 bits, from the
// parent's hash mod 4 and the page's first token only.
const weak: PrefixHashFn = (parent, tokens) => (parent % 4) * 4 + ((tokens[0] ?? 0) % 4);

function runModel({ numPages, pageSize: ps, seed, ops, weakHash = false }: Config) {
  const random = rng(seed);
  const int = (lo: number, hi: number): number => lo + Math.floor(random() * (hi - lo + 1)); // inclusive
  const pickOf = <T>(xs: readonly T[]): T => xs[int(0, xs.length - 1)]!;
  const randomTokens = (n: number, vocab: number): number[] => Array.from({ length: n }, () => int(0, vocab - 1));
  const mem = new Float64Array(numPages * ps).fill(Number.NaN);
  const model = new PrefixCacheModel(numPages, ps);
  const count = { full: 0, hits: 0, publishes: 0, blocked: 0, misuse: 0, lookups: 0, maxDup: 1 };

  // Prompts share a "system prompt" that does not end on a page boundary; tails use a tiny vocab,
  // so unrelated sequences sometimes compute identical pages too.
  const system = randomTokens(2 * ps + 1, 50);
  const templates = Array.from({ length: 4 }, () => [...system, ...randomTokens(int(0, 4 * ps), 50)]);
  const newScript = (): number[] => [...pickOf(templates), ...randomTokens(6 * ps, 2)];
  const plan = new Map<number, { script: number[]; namespace: string }>();

  let step = 0;
  let hookCalls: number[][] = [];
  const kv = new PagedKvCache({
    numPages,
    pageSize: ps,
    prefixCaching: true,
    ...(weakHash ? { prefixHash: weak } : {}),
    onPagesFreed: (pages) => {
      const snap = kv.snapshot();
      const cached = new Set(snap.prefix!.entries.flatMap((e) => e.pages));
      for (const p of pages) {
        if (cached.has(p) || snap.prefix!.evictable.includes(p)) fail(step, `hook reported page ${p}, which is still cached`);
      }
      hookCalls.push([...pages]);
      for (const p of pages) mem.fill(Number.NaN, p * ps, (p + 1) * ps);
    },
  });
  let nextId = 100;

  const pick = (): number => pickOf([...model.seqs.keys()]);
  const expectThrows = <E extends Error>(type: new (...a: never[]) => E, fn: () => unknown): E => {
    try {
      fn();
    } catch (e) {
      if (!(e instanceof type)) throw e;
      return e;
    }
    return fail(step, `expected ${type.name}`);
  };
  const applyCopies = (copies: readonly { srcPage: number; dstPage: number; tokens: number }[]): void => {
    for (const c of copies) mem.copyWithin(c.dstPage * ps, c.srcPage * ps, c.srcPage * ps + c.tokens);
  };

  for (step = 0; step < ops; step++) {
    const before = kv.snapshot();
    const statsBefore = kv.stats();
    hookCalls = [];
    model.gone = [];
    let mustBeUnchanged = false;
    const roll = random();

    if (model.seqs.size === 0 || (roll < 0.06 && model.seqs.size < MAX_SEQS)) {
      const id = nextId++;
      kv.addSequence(id);
      model.add(id, null, null);
      plan.set(id, { script: newScript(), namespace: pickOf(NAMESPACES) });
    } else if (roll < 0.18) {
      if (model.seqs.size >= MAX_SEQS) continue;
      // A new request: a fresh prompt, or the prompt of a live (or earlier) sequence.
      const id = nextId++;
      const other = random() < 0.5 ? plan.get(pick())! : undefined;
      const script = other ? other.script.slice() : newScript();
      const namespace = other && random() < 0.8 ? other.namespace : pickOf(NAMESPACES);
      const prompt = script.slice(0, int(0, script.length));
      if (kv.lookupPrefix(namespace, prompt) !== model.lookup(namespace, prompt)) fail(step, 'lookupPrefix before add');
      const got = kv.addSequenceWithPrefix(id, namespace, prompt);
      const want = model.add(id, namespace, prompt);
      if (got !== want) fail(step, `addSequenceWithPrefix matched ${got}, model ${want}`);
      if (got > 0) count.hits++;
      plan.set(id, { script, namespace });
    } else if (roll < 0.48) {
      const id = pick();
      const p = plan.get(id)!;
      const len = model.seq(id).tokens.length;
      const n = random() < 0.6 ? int(0, 3) : int(0, 3 * ps);
      while (p.script.length < len + n) p.script.push(...randomTokens(ps, 2));
      const written = p.script.slice(len, len + n);
      const needed = model.pagesNeeded(id, n);
      if (kv.pagesNeeded(id, n) !== needed) fail(step, `pagesNeeded ${kv.pagesNeeded(id, n)} != ${needed}`);
      if (kv.canAppend(id, n) !== needed <= model.available()) fail(step, 'canAppend');
      const want = model.reserve(id, written);
      if (want === null) {
        const e = expectThrows(KvCacheFullError, () => kv.reserve(id, n));
        expect(e).toMatchObject({ sequenceId: id, pagesNeeded: needed, pagesFree: before.freePages.length + before.prefix!.evictable.length });
        mustBeUnchanged = true;
        count.full++;
      } else {
        const { slots, copies } = kv.reserve(id, n);
        expect(copies).toEqual(want.copies);
        expect([...slots]).toEqual(want.slots);
        applyCopies(copies);
        const cached = new Set(kv.snapshot().prefix!.entries.flatMap((e) => e.pages));
        for (let i = 0; i < n; i++) {
          const page = Math.floor(slots[i]! / ps);
          if (kv.refCount(page) !== 1 || cached.has(page)) fail(step, `slot ${slots[i]} is in a shared or cached page`);
          mem[slots[i]!] = written[i]!;
        }
      }
    } else if (roll < 0.62) {
      const id = pick();
      const s = model.seq(id);
      const namespace = s.namespace ?? plan.get(id)!.namespace;
      const k = random() < 0.7 ? s.tokens.length : int(0, s.tokens.length);
      const stated = s.tokens.slice(0, k);
      const already = s.published;
      kv.publish(id, namespace, stated);
      const published = kv.snapshot().prefix!.sequences.find((q) => q.id === id)!.publishedPages;
      const natural = Math.floor(k / ps);
      model.publish(id, namespace, stated, weakHash ? published : Infinity);
      if (published < Math.max(natural, already)) count.blocked++;
      count.publishes++;
    } else if (roll < 0.72) {
      const id = pick();
      const newLength = int(0, model.seq(id).tokens.length);
      kv.truncate(id, newLength);
      model.truncate(id, newLength);
    } else if (roll < 0.78) {
      if (model.seqs.size >= MAX_SEQS) continue;
      const src = pick();
      const dst = nextId++;
      const want = model.fork(src, dst);
      if (want === null) {
        expectThrows(KvCacheFullError, () => kv.fork(src, dst));
        mustBeUnchanged = true;
        count.full++;
      } else {
        const { copies } = kv.fork(src, dst);
        expect(copies).toEqual(want);
        applyCopies(copies);
        const p = plan.get(src)!;
        const len = model.seq(dst).tokens.length;
        // Half the forks diverge after the fork point (parallel sampling); half recompute the same.
        const script = random() < 0.5 ? p.script.slice() : [...p.script.slice(0, len), ...randomTokens(6 * ps, 2)];
        plan.set(dst, { script, namespace: p.namespace });
      }
    } else if (roll < 0.9) {
      const id = pick();
      kv.free(id);
      model.free(id);
      plan.delete(id);
    } else if (roll < 0.95) {
      const script = random() < 0.5 ? plan.get(pick())!.script : newScript();
      const tokens = script.slice(0, int(0, script.length));
      const namespace = pickOf(NAMESPACES);
      if (kv.lookupPrefix(namespace, tokens) !== model.lookup(namespace, tokens)) fail(step, 'lookupPrefix disagrees');
      count.lookups++;
    } else {
      // Misuse: KvUsageError, nothing changed.
      const id = pick();
      const s = model.seq(id);
      const which = int(0, 4);
      expectThrows(KvUsageError, () => {
        if (which === 0) kv.publish(id, s.namespace ?? 'x', [...s.tokens, 1]);
        else if (which === 1) kv.publish(id, `${s.namespace ?? 'x'}-other`, s.namespace === null ? [-1] : []);
        else if (which === 2) kv.addSequenceWithPrefix(id, 'app-a', []);
        else if (which === 3) kv.lookupPrefix('app-a', [1, 2.5]);
        else kv.truncate(id, s.tokens.length + 1);
      });
      mustBeUnchanged = true;
      count.misuse++;
    }

    // ---- checks after every operation ----
    const snap = kv.snapshot();
    if (mustBeUnchanged) {
      expect(snap).toEqual(before);
      expect(kv.stats()).toEqual(statsBefore);
    }
    if (hookCalls.length > 1) fail(step, `${hookCalls.length} hook calls in one operation`);
    const reported = hookCalls.flat().sort((a, b) => a - b);
    const expected = model.gone.slice().sort((a, b) => a - b);
    if (reported.join() !== expected.join()) fail(step, `hook reported [${reported}], model [${expected}]`);
    checkState(step, kv, snap, model, mem);
    for (const e of snap.prefix!.entries) count.maxDup = Math.max(count.maxDup, e.pages.length);
  }
  return { count, seen: model.seen, stats: kv.stats().prefix! };
}

function checkState(step: number, kv: PagedKvCache, snap: KvCacheSnapshot, model: PrefixCacheModel, mem: Float64Array): void {
  const { numPages, pageSize: ps } = snap;
  const prefix = snap.prefix!;
  // Block tables, lengths and refcounts as predicted, and refcounts = tables holding each page.
  const ids = snap.sequences.map((s) => s.id);
  if (ids.join() !== [...model.seqs.keys()].join()) fail(step, `sequences [${ids}] != model`);
  const refs = new Array<number>(numPages).fill(0);
  const position = new Map<number, number>();
  for (const seq of snap.sequences) {
    const m = model.seq(seq.id);
    if (seq.length !== m.tokens.length || seq.pages.join() !== m.pages.join()) {
      fail(step, `sequence ${seq.id}: length ${seq.length} pages [${seq.pages}], model ${m.tokens.length} [${m.pages}]`);
    }
    seq.pages.forEach((p, i) => {
      refs[p]!++;
      // A page shared by several tables sits at the same position in each.
      if ((position.get(p) ?? i) !== i) fail(step, `page ${p} at positions ${position.get(p)} and ${i}`);
      position.set(p, i);
    });
    // Every sequence reads its own tokens back.
    for (let pos = 0; pos < m.tokens.length; pos++) {
      const v = mem[seq.pages[Math.floor(pos / ps)]! * ps + (pos % ps)];
      if (v !== m.tokens[pos]) fail(step, `sequence ${seq.id} position ${pos}: read ${v}, wrote ${m.tokens[pos]}`);
    }
  }
  if (snap.refCounts.join() !== refs.join()) fail(step, `refcounts [${snap.refCounts}] != tables [${refs}]`);
  if (snap.refCounts.join() !== model.refs.join()) fail(step, `refcounts [${snap.refCounts}] != model [${model.refs}]`);

  // Exact accounting: free + evictable + referenced = numPages, pairwise disjoint; the LRU order.
  if (snap.freePages.join() !== model.freeList().join()) fail(step, `free [${snap.freePages}] != model [${model.freeList()}]`);
  if (prefix.evictable.join() !== model.lru.join()) fail(step, `LRU [${prefix.evictable}] != model [${model.lru}]`);
  const referenced = refs.filter((r) => r > 0).length;
  if (snap.freePages.length + prefix.evictable.length + referenced !== numPages) fail(step, 'free + evictable + referenced != numPages');
  for (const p of [...snap.freePages, ...prefix.evictable]) if (refs[p] !== 0) fail(step, `free/evictable page ${p} is referenced`);
  if (new Set([...snap.freePages, ...prefix.evictable]).size !== snap.freePages.length + prefix.evictable.length) fail(step, 'a page both free and evictable');
  if (kv.freePages() !== snap.freePages.length + prefix.evictable.length || kv.usedPages() !== referenced) fail(step, 'freePages/usedPages');

  // Cached contents: the same keys and holder pages as the model; every cached page holds exactly
  // its registered token ids, and so does every sequence holding it, at those positions.
  const byHash = new Map(prefix.entries.map((e) => [e.hash, e]));
  const keyOf = (e: (typeof prefix.entries)[number]): string => {
    const parts: string[] = [];
    for (let x: typeof e | undefined = e; x !== undefined; x = x.parentHash === null ? undefined : byHash.get(x.parentHash)) {
      if (x.parentHash !== null && !byHash.has(x.parentHash)) fail(step, `entry ${x.hash}'s parent is not cached`);
      parts.unshift(x.tokens.join(','));
    }
    return `${e.namespace}\u0000${parts.join(',')}`;
  };
  const got = prefix.entries.map((e) => `${keyOf(e)} -> ${e.pages.join(' ')}`).sort();
  const want = [...model.keyPages].map(([k, pages]) => `${k} -> ${pages.join(' ')}`).sort();
  if (got.join('\n') !== want.join('\n')) fail(step, `cached contents differ:\n${got.join('\n')}\nmodel:\n${want.join('\n')}`);
  let cachedPages = 0;
  for (const e of prefix.entries) {
    for (const p of e.pages) {
      cachedPages++;
      for (let j = 0; j < ps; j++) if (mem[p * ps + j] !== e.tokens[j]) fail(step, `cached page ${p} slot ${j}: ${mem[p * ps + j]} != ${e.tokens[j]}`);
      if (refs[p] === 0 && !prefix.evictable.includes(p)) fail(step, `unreferenced cached page ${p} is not evictable`);
      for (const seq of snap.sequences) {
        const i = seq.pages.indexOf(p);
        const toks = model.seq(seq.id).tokens;
        for (let j = 0; i >= 0 && j < ps && i * ps + j < toks.length; j++) {
          if (toks[i * ps + j] !== e.tokens[j]) fail(step, `sequence ${seq.id} holds cached page ${p} with other tokens`);
        }
      }
    }
  }
  for (const p of prefix.evictable) if (!prefix.entries.some((e) => e.pages.includes(p))) fail(step, `evictable page ${p} is not cached`);
  // Published pages: a sequence's first publishedPages pages are cached under its own tokens.
  for (const q of prefix.sequences) {
    const m = model.seq(q.id);
    if (q.publishedPages !== m.published || q.namespace !== m.namespace) fail(step, `sequence ${q.id} published ${q.publishedPages} in ${q.namespace}, model ${m.published} in ${m.namespace}`);
    for (let i = 0; i < q.publishedPages; i++) {
      if (model.pageKey.get(m.pages[i]!) !== model.key(m.namespace!, m.tokens, i)) fail(step, `sequence ${q.id} published page ${i} is not cached under its tokens`);
    }
  }
  const stats = kv.stats();
  expect(stats.prefix).toEqual({ cachedPages, evictablePages: prefix.evictable.length, ...model.counters });
  if (stats.sharedPages !== refs.filter((r) => r > 1).length) fail(step, 'stats.sharedPages');
}

const configs: Config[] = [
  { numPages: 16, pageSize: 4, seed: 11, ops: 6000 },
  { numPages: 24, pageSize: 4, seed: 12, ops: 6000 },
  { numPages: 12, pageSize: 2, seed: 13, ops: 6000 },
  { numPages: 20, pageSize: 3, seed: 14, ops: 6000 },
  { numPages: 16, pageSize: 4, seed: 15, ops: 6000, weakHash: true },
  { numPages: 10, pageSize: 1, seed: 16, ops: 3000 },
];

describe('prefix caching against a reference model', () => {
  it.each(configs)('numPages $numPages, pageSize $pageSize, seed $seed, weak hash $weakHash: $ops operations', (cfg) => {
    const { count, seen, stats } = runModel(cfg);
    // The interesting paths must actually have been exercised.
    expect(count.hits).toBeGreaterThan(0);
    expect(count.full).toBeGreaterThan(0);
    expect(count.misuse).toBeGreaterThan(0);
    expect(stats.hitTokens).toBeGreaterThan(0);
    expect(seen.evicted).toBeGreaterThan(0);
    expect(seen.joined).toBeGreaterThan(0);
    expect(count.maxDup).toBeGreaterThan(1);
    if (cfg.pageSize > 1) {
      expect(seen.privatized).toBeGreaterThan(0);
      expect(seen.cowCached).toBeGreaterThan(0);
    }
    if (cfg.weakHash) expect(count.blocked).toBeGreaterThan(0);
    else expect(count.blocked).toBe(0);
  });

  it('is deterministic: the same seed gives the same run', () => {
    const cfg = { ...configs[0]!, ops: 500 };
    expect(runModel(cfg)).toEqual(runModel(cfg));
  });
});
