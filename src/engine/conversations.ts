// Conversations kept between rounds: when a request with a conversationId finishes, its sequence
// (all of its KV, the partial last page included) stays in the cache for the next round, which
// continues it if its prompt starts with the same tokens. Kept sequences are bounded by a TTL and
// by memory: the engine releases the least recently used one whenever a step needs the pages
// (their full pages stay in the prefix cache as evictable pages, so a later round still finds
// them there).

import type { PagedKvCache } from '../kv/index.js';

interface Kept {
  seq: number;
  /** Token ids of the sequence's KV, in order. */
  tokens: number[];
  namespace: string;
  lastUsedMs: number;
}

export class ConversationStore {
  private readonly kept = new Map<string, Kept>();

  constructor(
    private readonly kv: PagedKvCache,
    private readonly ttlMs: number,
  ) {}

  get size(): number {
    return this.kept.size;
  }

  /** Keep `seq` (whose KV holds `tokens`) for the conversation's next round; replaces an older one. */
  keep(id: string, seq: number, tokens: number[], namespace: string, nowMs: number): void {
    this.release(id);
    this.kept.set(id, { seq, tokens, namespace, lastUsedMs: nowMs });
  }

  /**
   * The kept sequence of a conversation for its next round: truncated to the longest common prefix
   * with `prompt` (at least one prompt token is left to compute). Null (and the sequence freed)
   * when nothing is shared or the namespace differs.
   */
  take(id: string, namespace: string, prompt: readonly number[], nowMs: number): { seq: number; cached: number } | null {
    const k = this.kept.get(id);
    if (!k) return null;
    this.kept.delete(id);
    if (nowMs - k.lastUsedMs > this.ttlMs) {
      this.kv.free(k.seq);
      return null;
    }
    let common = 0;
    const limit = Math.min(k.tokens.length, prompt.length - 1);
    while (common < limit && k.tokens[common] === prompt[common]) common++;
    if (common === 0 || k.namespace !== namespace) {
      this.kv.free(k.seq);
      return null;
    }
    if (common < this.kv.length(k.seq)) this.kv.truncate(k.seq, common);
    return { seq: k.seq, cached: common };
  }

  release(id: string): void {
    const k = this.kept.get(id);
    if (!k) return;
    this.kept.delete(id);
    this.kv.free(k.seq);
  }

  /** Free conversations idle longer than the TTL. */
  expire(nowMs: number): void {
    for (const [id, k] of this.kept) if (nowMs - k.lastUsedMs > this.ttlMs) this.release(id);
  }

  /** Free the least recently used conversations until `pages` pages are free; false when all are gone and still short. */
  releaseUntil(pages: number): boolean {
    while (this.kv.freePages() < pages) {
      let oldest: [string, Kept] | null = null;
      for (const e of this.kept) if (!oldest || e[1].lastUsedMs < oldest[1].lastUsedMs) oldest = e;
      if (!oldest) return false;
      this.release(oldest[0]);
    }
    return true;
  }

  clear(): void {
    for (const id of [...this.kept.keys()]) this.release(id);
  }
}
