// The simulator's model of an engine's prefix cache (one per replica: replicas share no KV). What is
// cached is full pages of KV, in two kinds of chains, namespaced per app (apps never share):
//
// - a shared prefix (the trace's prefix_id): its full pages, once any request with that prefix has
//   prefilled them;
// - a request's conversation (keyed by request id): when a round finishes, the full pages of its KV
//   (prompt + output, less the last output token, which was never fed back). A tool request's next
//   round starts with exactly that context, so it hits; other requests never look theirs up again,
//   but their pages stay cached until evicted, as in an engine that caches every full block.
//   A conversation that starts with a shared prefix is chained to it: its first pages are the
//   prefix's (counted once) and usable only while the prefix is cached in full.
//
// On arrival a request's hit is the longest usable chain, in full pages, capped so at least one prompt
// token is computed; the request then holds (pins) the chains it uses until it ends or is preempted.
// KV held by live requests is theirs; cached pages nobody holds live in the free part of the KV:
// whenever they exceed `capacityTokens` minus what live requests hold (each live request's own KV,
// plus the held chains once each), the least recently released chain loses pages from its tail
// (whole pages; the chain is dropped when it has none left), as an engine's free-page queue evicts.
// Without `capacityTokens` nothing is evicted.
//
// Deterministic: every order is an insertion order.

import type { SharedPrefix } from './trace.js';

export interface PrefixCacheConfig {
  enabled: boolean;
  /**
   * The KV cache in tokens (the scheduler's KvBudget: pages x pageSize). Cached pages that no live
   * request holds must fit in what live requests leave free of it. Default: unbounded.
   */
  capacityTokens?: number;
  /** Tokens per page (the scheduler's KvBudget.pageSize). Default 16. */
  pageSize?: number;
}

export interface PrefixCacheStats {
  /** Prompt tokens served from the cache (every round's hit). */
  hitTokens: number;
  /** Prompt tokens of every round offered to a scheduler (the hit rate's denominator). */
  promptTokens: number;
  /**
   * Hit tokens lost to a preemption before the request computed anything on them (a scheduler
   * reclaiming the pages of a waiting request's hit): hitTokens - reclaimedTokens were used.
   */
  reclaimedTokens: number;
  /** Pages evicted. */
  evictedPages: number;
}

interface Chain {
  key: string;
  /** Full pages present, from the start of the sequence (a conversation counts its prefix's). */
  pages: number;
  /** Leading pages that are a shared prefix's (a conversation that starts with one): usable only with it. */
  basePages: number;
  holders: number;
}

interface Holder {
  chains: Chain[];
  /** Tokens of the holder's KV that are the held chains' (not its own). */
  covered: number;
  kv: number;
  app: string;
  prefix: SharedPrefix | undefined;
}

export class PrefixCache {
  readonly pageSize: number;
  readonly capacityTokens: number;
  readonly stats: PrefixCacheStats = { hitTokens: 0, promptTokens: 0, reclaimedTokens: 0, evictedPages: 0 };
  private readonly chains = new Map<string, Chain>();
  /** Unheld chains, least recently released first. */
  private readonly lru = new Map<string, Chain>();
  private readonly holders = new Map<string, Holder>();
  /** Tokens of live requests' own KV (not the held chains'). */
  private liveOwn = 0;
  /** Tokens of own pages of held chains, and of unheld chains. */
  private heldTokens = 0;
  private unheldTokens = 0;

  constructor(config: PrefixCacheConfig) {
    this.pageSize = config.pageSize ?? 16;
    this.capacityTokens = config.capacityTokens ?? Infinity;
    if (!(Number.isInteger(this.pageSize) && this.pageSize > 0)) throw new RangeError(`prefix cache pageSize must be a positive integer, got ${this.pageSize}`);
    if (!(this.capacityTokens > 0)) throw new RangeError(`prefix cache capacityTokens must be > 0, got ${this.capacityTokens}`);
  }

  /** Tokens cached and not held by a live request (they occupy free KV). */
  get unheld(): number {
    return this.unheldTokens;
  }

  /** Tokens live requests hold: their own KV and the chains they hold, each chain once. */
  get live(): number {
    return this.liveOwn + this.heldTokens;
  }

  private prefixKey(app: string, prefix: SharedPrefix): string {
    return `${app}\u0000p\u0000${prefix.id}`;
  }

  private conversationKey(app: string, requestId: string): string {
    return `${app}\u0000c\u0000${requestId}`;
  }

  private own(c: Chain): number {
    return (c.pages - c.basePages) * this.pageSize;
  }

  /** The chains a request would use and the tokens they cover (before the cap). */
  private find(app: string, requestId: string, prefix: SharedPrefix | undefined): { chains: Chain[]; tokens: number } {
    const p = prefix ? this.chains.get(this.prefixKey(app, prefix)) : undefined;
    const shared = p?.pages ?? 0;
    const c = this.chains.get(this.conversationKey(app, requestId));
    if (c && c.pages > shared && (c.basePages === 0 || (p !== undefined && shared >= c.basePages))) {
      return { chains: c.basePages > 0 ? [p as Chain, c] : [c], tokens: c.pages * this.pageSize };
    }
    return p && shared > 0 ? { chains: [p], tokens: shared * this.pageSize } : { chains: [], tokens: 0 };
  }

  /** Prompt tokens a request (a round of `requestId`) would find cached now, at most promptTokens - 1. */
  lookup(app: string, requestId: string, prefix: SharedPrefix | undefined, promptTokens: number): number {
    return Math.max(0, Math.min(this.find(app, requestId, prefix).tokens, promptTokens - 1));
  }

  /**
   * A request (scheduler id `liveId`, a round of `requestId`) was taken with the hit lookup() gave:
   * it holds the chains it uses until release(). Returns the cached tokens.
   */
  acquire(liveId: string, app: string, requestId: string, prefix: SharedPrefix | undefined, promptTokens: number): number {
    if (this.holders.has(liveId)) throw new Error(`prefix cache: '${liveId}' already holds KV`);
    const { chains, tokens } = this.find(app, requestId, prefix);
    const cached = Math.max(0, Math.min(tokens, promptTokens - 1));
    const h: Holder = { chains: [], covered: cached, kv: cached, app, prefix };
    if (cached > 0) for (const c of chains) this.hold(h, c);
    this.holders.set(liveId, h);
    this.stats.hitTokens += cached;
    this.stats.promptTokens += promptTokens;
    return cached;
  }

  /** The request's KV is now `kv` tokens (prefill chunks, decoded tokens); caches a shared prefix it has just computed. */
  setKv(liveId: string, kv: number): void {
    const h = this.holders.get(liveId);
    if (!h) return;
    this.liveOwn += kv - h.kv;
    h.kv = kv;
    if (!h.prefix) return;
    const full = Math.floor(h.prefix.tokens / this.pageSize);
    if (full === 0 || kv < full * this.pageSize) return;
    const key = this.prefixKey(h.app, h.prefix);
    let p = this.chains.get(key);
    if (p && p.pages >= full) return; // cached already (by someone else, or this request's own hit)
    if (!p) {
      p = { key, pages: 0, basePages: 0, holders: 0 };
      this.chains.set(key, p);
    }
    if (!h.chains.includes(p)) this.hold(h, p);
    // The request's own pages become the prefix's.
    const grow = (full - p.pages) * this.pageSize;
    p.pages = full;
    this.heldTokens += grow;
    const covered = Math.max(h.covered, full * this.pageSize);
    this.liveOwn -= covered - h.covered;
    h.covered = covered;
  }

  /** The request lost its KV (recompute preemption): it holds nothing now and recomputes from scratch. */
  preempted(liveId: string): void {
    const h = this.holders.get(liveId);
    if (!h) return;
    if (h.covered > 0 && h.kv === h.covered) this.stats.reclaimedTokens += h.covered;
    this.liveOwn -= h.kv - h.covered;
    h.kv = 0;
    h.covered = 0;
    this.unholdAll(h);
  }

  /**
   * The request ends (finished, declined): it holds nothing. With `conversation`, it finished a round
   * and the full pages of its KV (`tokens`) are cached as its conversation.
   */
  release(liveId: string, conversation?: { requestId: string; tokens: number }): void {
    const h = this.holders.get(liveId);
    if (!h) return;
    this.holders.delete(liveId);
    this.liveOwn -= h.kv - h.covered;
    if (conversation) {
      const key = this.conversationKey(h.app, conversation.requestId);
      const basePages = h.prefix ? Math.floor(h.prefix.tokens / this.pageSize) : 0;
      const pages = Math.floor(conversation.tokens / this.pageSize);
      let c = this.chains.get(key);
      if (!c) {
        c = { key, pages: basePages, basePages, holders: 0 };
        this.chains.set(key, c);
        this.hold(h, c);
      } else if (!h.chains.includes(c)) this.hold(h, c);
      if (pages > c.pages) {
        this.heldTokens += (pages - c.pages) * this.pageSize;
        c.pages = pages;
      }
    }
    this.unholdAll(h);
  }

  /** Evict unheld pages, least recently released first, until they fit what live requests leave free. */
  enforce(): void {
    let excess = this.unheldTokens - Math.max(0, this.capacityTokens - this.live);
    while (excess > 0) {
      const first = this.lru.values().next();
      if (first.done) break;
      const c = first.value;
      const pages = Math.min(c.pages - c.basePages, Math.ceil(excess / this.pageSize));
      if (pages <= 0) {
        this.remove(c);
        continue;
      }
      c.pages -= pages;
      this.unheldTokens -= pages * this.pageSize;
      excess -= pages * this.pageSize;
      this.stats.evictedPages += pages;
      if (c.pages <= c.basePages) this.remove(c);
    }
  }

  private hold(h: Holder, c: Chain): void {
    h.chains.push(c);
    if (c.holders++ === 0) {
      this.lru.delete(c.key);
      this.unheldTokens -= this.own(c);
      this.heldTokens += this.own(c);
    }
  }

  /** Release every chain `h` holds; a released chain with no pages of its own is dropped. */
  private unholdAll(h: Holder): void {
    for (const c of h.chains) {
      if (--c.holders > 0) continue;
      this.heldTokens -= this.own(c);
      if (c.pages <= c.basePages) {
        this.chains.delete(c.key);
        continue;
      }
      this.unheldTokens += this.own(c);
      this.lru.set(c.key, c); // most recently released: evicted last
    }
    h.chains = [];
  }

  private remove(c: Chain): void {
    this.lru.delete(c.key);
    this.chains.delete(c.key);
  }
}
