// KV ownership: which KV pages each request holds in the target session, and what happens to them.
// A request starts from a kept conversation or its longest cached prefix (pinned at submit); its
// full pages are published to the prefix cache as they fill; when it finishes its KV is kept for
// its conversation's next round or freed; a recompute preemption or a failure frees it. Kept
// conversations are released when a step needs their pages (the scheduler does not see them).
//
// Invariants: a request holds KV iff `seq` is not null; `prefilled` counts the tokens in it; freeing
// resets `seq`, `prefilled`, `decoding` and `publishedPages` together.

import type { StepPlan } from '../scheduler/types.js';
import type { SpeculativeDecoder } from '../speculative/speculative-decoder.js';
import type { ConversationStore } from './conversations.js';
import type { Live } from './live.js';
import type { CoreRequestSpec } from './request.js';

export class KvOwner {
  constructor(
    private readonly decoder: SpeculativeDecoder,
    /** Null without prefix caching: no hits, no publishing, no kept conversations. */
    readonly conversations: ConversationStore | null,
    /** A prefix hit was dropped before any of it was used: it saved nothing (stats correct it). */
    private readonly onHitLost: (app: string, cached: number) => void,
  ) {}

  /** The prefix-cache namespace of a request (its app unless it names one). */
  private namespace(spec: CoreRequestSpec): string {
    return spec.cacheNamespace ?? spec.app;
  }

  /** A new request's starting KV: a kept conversation, else its longest cached prefix, else none. */
  startFromCache(spec: CoreRequestSpec, nowMs: number): { seq: number | null; cached: number } {
    if (!this.conversations) return { seq: null, cached: 0 };
    const ns = this.namespace(spec);
    const kept = spec.conversationId ? this.conversations.take(spec.conversationId, ns, spec.prompt, nowMs) : null;
    if (kept) return kept;
    const target = this.decoder.target;
    if (target.kv.lookupPrefix(ns, spec.prompt) === 0) return { seq: null, cached: 0 };
    const { id, cached } = target.newSequenceWithPrefix(ns, spec.prompt);
    return { seq: id, cached };
  }

  /** Register the request's newly full KV pages in the prefix cache. */
  publish(r: Live): void {
    if (!this.conversations || r.seq === null) return;
    const kv = this.decoder.target.kv;
    const inKv = kv.length(r.seq);
    const full = Math.floor(inKv / kv.pageSize);
    if (full <= r.publishedPages) return;
    kv.publish(r.seq, this.namespace(r.spec), [...r.spec.prompt, ...r.generated].slice(0, full * kv.pageSize));
    r.publishedPages = full;
  }

  /** Free kept conversations until the plan's new pages fit. */
  ensurePages(plan: StepPlan, live: ReadonlyMap<string, Live>): void {
    if (!this.conversations || this.conversations.size === 0) return;
    const kv = this.decoder.target.kv;
    let need = 0;
    for (const e of plan.entries) {
      const r = live.get(e.id)!;
      const rows = e.kind === 'prefill' ? e.tokens : 1 + e.draftTokens;
      need += r.seq === null ? Math.ceil(rows / kv.pageSize) : kv.pagesNeeded(r.seq, rows);
    }
    this.conversations.releaseUntil(need);
  }

  /** A finished request's KV: published, then kept for its conversation's next round or freed. */
  keepOrDrop(r: Live, atMs: number): void {
    this.publish(r);
    const conv = r.spec.conversationId;
    if (!this.conversations || !conv || r.seq === null) return this.drop(r);
    const kv = this.decoder.target.kv;
    if (this.decoder.has(r.seq)) this.decoder.detach(r.seq);
    this.conversations.keep(conv, r.seq, [...r.spec.prompt, ...r.generated].slice(0, kv.length(r.seq)), this.namespace(r.spec), atMs);
    r.seq = null;
    r.prefilled = 0;
    r.decoding = false;
  }

  /** Free a request's KV (finish, failure, recompute preemption): it prefills prompt + output again. */
  drop(r: Live | undefined): void {
    if (!r || r.seq === null) return;
    // A hit dropped before any of it was used (preempted or failed before its first chunk) saved nothing.
    if (r.cached > 0 && r.prefilled === r.cached && !r.decoding && r.generated.length === 0) {
      this.onHitLost(r.spec.app, r.cached);
      r.cached = 0;
    }
    if (this.decoder.has(r.seq)) this.decoder.finish(r.seq);
    else this.decoder.target.free(r.seq);
    r.seq = null;
    r.prefilled = 0;
    r.decoding = false;
    r.publishedPages = 0;
  }
}
