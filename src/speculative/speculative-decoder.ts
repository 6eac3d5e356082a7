// Draft/verify speculative decoding over the ragged-batch forward. Each step: the draft proposes
// k_i tokens for every request (batched across requests, one draft forward per draft position),
// then the target verifies all k_i + 1 positions of every request in ONE forward, together with
// whatever prefill chunks and plain decodes the caller adds; then acceptance, and rollback of
// rejected tokens from both caches.
//
// Invariant per request: the target's cache holds every token but the last emitted one (the
// "pending" token, input of the next step). A model draft's cache holds a prefix of that.

import type { BatchSequence } from '../runner/batch.js';
import type { ForwardResult } from '../runner/model-runner.js';
import type { PlannedSequence, RunnerSession, Sampling } from '../runner/session.js';
import type { SamplingParams } from '../sampling/params.js';
import { isNeutral, penaltyEntries, type Penalties, type PenaltyEntry } from '../sampling/penalties.js';
import { samplingUniform } from '../sampling/philox.js';
import { warpedDistribution } from '../sampling/warp.js';
import { acceptGreedy, acceptStochastic, drawFrom, STREAM_DRAFT, type Acceptance } from './acceptance.js';
import { AcceptanceStats, GroupedAcceptanceStats } from './stats.js';

export interface OracleView {
  id: number;
  /** Prompt and emitted tokens, the pending one last. */
  tokens: readonly number[];
  promptLength: number;
}

export type DraftSource =
  /** A second, smaller model with the target's vocabulary, in its own session (own KV cache). */
  | { kind: 'model'; session: RunnerSession }
  /** The target's first `layers` layers + final norm + LM head, on the target's weights and KV pages. */
  | { kind: 'self'; layers: number }
  /** Proposals from a function (tests, benchmarks: a draft with a controlled acceptance rate). Greedy only. */
  | { kind: 'oracle'; propose: (req: OracleView, k: number) => number[] | Promise<number[]> }
  /** No draft: every request decodes with k = 0 (the engine without speculation). */
  | { kind: 'none' };

export interface SpecRequestOptions {
  /** Draft tokens per step (0 = plain decoding); can change between steps. */
  k: number;
  /** Greedy when absent. */
  sampling?: Sampling;
  /** Penalties and logit bias on the target's rows (drafts propose without them; acceptance judges with them). */
  penalties?: Penalties;
  /** Statistics group (e.g. the app). */
  group?: string;
}

interface RequestState {
  id: number;
  draftId: number | null;
  tokens: number[];
  promptLength: number;
  k: number;
  sampling: Sampling | null;
  penalties: Penalties | null;
  group: string;
  /** Tokens in the model draft's cache. */
  draftCached: number;
  stats: AcceptanceStats;
}

export interface SpecStepOptions {
  /** Read back the logits of every output row (logprobs), not only when stochastic acceptance needs them. */
  logits?: boolean;
}

/** An extra sequence of the verify batch (a prefill chunk), sampled with `sampling` when it has an output row. */
export interface ExtraSequence extends PlannedSequence {
  sampling?: SamplingParams;
  /** Penalties for its output row, whose context is `context` (the prompt: its first `promptLength` ids). */
  penalties?: { penalties: Penalties; context: readonly number[]; promptLength: number };
}

export interface SpecStepResult {
  /** Tokens emitted this step per request id. */
  emitted: Map<number, number[]>;
  /** The target forward's result (rows of the extra sequences included). */
  verify: ForwardResult;
}

export class SpeculativeDecoder {
  readonly stats = new GroupedAcceptanceStats<string>();
  /** Target forwards run by step(). */
  targetSteps = 0;
  private readonly requests = new Map<number, RequestState>();

  constructor(
    readonly target: RunnerSession,
    readonly draft: DraftSource,
    /** The stochastic acceptance rule (injectable so tests can run broken controls through the same path). */
    private readonly acceptSampled: typeof acceptStochastic = acceptStochastic,
  ) {
    if (draft.kind === 'self' && !(Number.isInteger(draft.layers) && draft.layers >= 1 && draft.layers <= target.runner.numLayers)) {
      throw new RangeError(`self-speculation layers must be 1..${target.runner.numLayers}, got ${draft.layers}`);
    }
    if (draft.kind === 'model' && draft.session.runner.config.vocabSize !== target.runner.config.vocabSize) {
      throw new RangeError(`the draft's vocabulary (${draft.session.runner.config.vocabSize}) differs from the target's (${target.runner.config.vocabSize})`);
    }
  }

  /**
   * Prefill all of the prompt but its last token (target, and a model draft): that token is the
   * pending input of the first step, whose verify yields the first output token. Returns the id.
   */
  async start(prompt: readonly number[], options: SpecRequestOptions): Promise<number> {
    return (await this.startMany(prompt, [options]))[0]!;
  }

  /**
   * Start several requests on one prompt: it is prefilled once, and each request forks its pages
   * (full pages shared, the partial last page copied).
   */
  async startMany(prompt: readonly number[], options: readonly SpecRequestOptions[]): Promise<number[]> {
    if (prompt.length === 0) throw new RangeError('the prompt is empty');
    for (const o of options) {
      checkK(o.k);
      if (o.sampling && this.draft.kind === 'oracle') throw new RangeError('an oracle draft supports greedy requests only');
    }
    const context = prompt.slice(0, -1);
    const template = this.target.newSequence();
    if (context.length > 0) await this.target.prefill(template, context, undefined, { outputs: 'none' });
    const draft = this.draft;
    let draftTemplate: number | null = null;
    if (draft.kind === 'model') {
      draftTemplate = draft.session.newSequence();
      if (context.length > 0) await draft.session.prefill(draftTemplate, context, undefined, { outputs: 'none' });
    }
    try {
      const ids = await this.target.fork(template, options.length);
      const draftIds = draft.kind === 'model' ? await draft.session.fork(draftTemplate!, options.length) : null;
      options.forEach((o, i) => {
        this.requests.set(ids[i]!, {
          id: ids[i]!,
          draftId: draftIds ? draftIds[i]! : null,
          tokens: [...prompt],
          promptLength: prompt.length,
          k: o.k,
          sampling: o.sampling ?? null,
          penalties: isNeutral(o.penalties) ? null : o.penalties!,
          group: o.group ?? 'default',
          draftCached: context.length,
          stats: new AcceptanceStats(),
        });
      });
      return ids;
    } finally {
      this.target.free(template);
      if (draft.kind === 'model') draft.session.free(draftTemplate!);
    }
  }

  /**
   * Take over a sequence of the target session that the caller prefilled: its cache must hold
   * `tokens` but the last (the pending token, which the caller sampled). A model draft catches up on
   * the whole context in its first step.
   */
  adopt(id: number, tokens: readonly number[], promptLength: number, options: SpecRequestOptions): void {
    checkK(options.k);
    if (this.requests.has(id)) throw new RangeError(`speculative request ${id} exists`);
    if (this.target.kv.length(id) !== tokens.length - 1) {
      throw new RangeError(`sequence ${id} caches ${this.target.kv.length(id)} tokens; adopt needs all but the pending one (${tokens.length - 1})`);
    }
    if (options.sampling && this.draft.kind === 'oracle') throw new RangeError('an oracle draft supports greedy requests only');
    const draftId = this.draft.kind === 'model' ? this.draft.session.newSequence() : null;
    this.requests.set(id, {
      id,
      draftId,
      tokens: [...tokens],
      promptLength,
      k: options.k,
      sampling: options.sampling ?? null,
      penalties: isNeutral(options.penalties) ? null : options.penalties!,
      group: options.group ?? 'default',
      draftCached: 0,
      stats: new AcceptanceStats(),
    });
  }

  has(id: number): boolean {
    return this.requests.has(id);
  }

  setK(id: number, k: number): void {
    checkK(k);
    this.get(id).k = k;
  }

  /** Tokens emitted so far. */
  output(id: number): number[] {
    const r = this.get(id);
    return r.tokens.slice(r.promptLength);
  }

  requestStats(id: number): AcceptanceStats {
    return this.get(id).stats;
  }

  /** One engine step for these requests, plus `extra` sequences of the target session in the same verify. */
  async step(ids: readonly number[], extra: readonly ExtraSequence[] = [], options: SpecStepOptions = {}): Promise<SpecStepResult> {
    const reqs = ids.map((id) => this.get(id));
    const selfSlots = new Map<number, Int32Array>();
    if (this.draft.kind === 'self') {
      // The verify's slots, reserved before drafting: the draft writes layers < N into them.
      for (const r of reqs) {
        const { slots, copies } = this.target.kv.reserve(r.id, r.k + 1);
        await this.target.runner.copyPages(copies);
        selfSlots.set(r.id, slots);
      }
    }
    const { drafts, q } = await this.propose(reqs, selfSlots);

    const batch: BatchSequence[] = [];
    for (const r of reqs) {
      const L = r.tokens.length - 1;
      const tokens = [r.tokens[L]!, ...drafts.get(r.id)!];
      const kind = r.k > 0 ? 'verify' : 'decode';
      const slots = selfSlots.get(r.id) ?? (await this.target.plan({ id: r.id, tokens })).slots;
      batch.push({ blockTable: this.target.kv.blockTable(r.id), startPos: L, tokens, slots, outputs: 'all', kind });
    }
    for (const e of extra) batch.push(await this.target.plan(e));
    const stochastic = reqs.some((r) => r.sampling && r.k > 0);
    const gpuSampled = reqs.some((r) => r.sampling && r.k === 0) || extra.some((e) => e.sampling);
    const penalties = this.verifyPenalties(reqs, drafts, batch, extra);
    const verify = await this.target.runner.forward(batch, {
      logits: stochastic || (options.logits ?? false),
      ...(gpuSampled ? { sampling: this.verifySampling(reqs, batch, extra) } : {}),
      ...(penalties.length > 0 ? { penalties } : {}),
    });
    this.targetSteps++;

    const emitted = new Map<number, number[]>();
    const V = this.target.runner.config.vocabSize;
    let row = 0;
    for (const r of reqs) {
      const k = r.k;
      const d = drafts.get(r.id)!;
      const rows = Array.from({ length: k + 1 }, (_, j) => row + j);
      let acc: Acceptance;
      if (!r.sampling || k === 0) {
        acc =
          k === 0
            ? { accepted: 0, emitted: [verify.tokens[row]!] }
            : acceptGreedy(
                d,
                rows.map((i) => verify.tokens[i]!),
              );
      } else {
        const params = { ...r.sampling, tokenIndex: 0 };
        const p = rows.map((i) => warpedDistribution(verify.logits!.subarray(i * V, (i + 1) * V), params));
        acc = this.acceptSampled({ drafts: d, p, q: q.get(r.id)!, seed: r.sampling.seed, firstIndex: r.tokens.length - r.promptLength });
      }
      row += k + 1;
      r.stats.record(k, acc.accepted);
      this.stats.record(r.group, k, acc.accepted);
      this.rollback(r, acc.accepted);
      r.tokens.push(...acc.emitted);
      emitted.set(r.id, acc.emitted);
    }
    return { emitted, verify };
  }

  /**
   * Forget a request but keep its target KV (a conversation kept for its next round); the model
   * draft's cache is freed. The caller owns the target sequence from now on.
   */
  detach(id: number): void {
    const r = this.get(id);
    if (r.draftId !== null && this.draft.kind === 'model') this.draft.session.free(r.draftId);
    this.requests.delete(id);
  }

  /** Free both caches of a request. */
  finish(id: number): void {
    const r = this.get(id);
    this.target.free(id);
    if (r.draftId !== null && this.draft.kind === 'model') this.draft.session.free(r.draftId);
    this.requests.delete(id);
  }

  private get(id: number): RequestState {
    const r = this.requests.get(id);
    if (!r) throw new RangeError(`no speculative request ${id}`);
    return r;
  }

  /** Truncate rejected tokens: the target keeps the pending token and the accepted drafts. */
  private rollback(r: RequestState, accepted: number): void {
    const L = r.tokens.length - 1;
    this.target.kv.truncate(r.id, L + accepted + 1);
    if (this.draft.kind === 'model' && r.draftId !== null) {
      const keep = Math.min(r.draftCached, L + accepted + 1);
      this.draft.session.kv.truncate(r.draftId, keep);
      r.draftCached = keep;
    }
  }

  /** GPU sampling params for every verify row: the k = 0 sampled requests' rows sample, the rest are greedy. */
  private verifySampling(reqs: readonly RequestState[], batch: readonly BatchSequence[], extra: readonly ExtraSequence[]): SamplingParams[] {
    const out: SamplingParams[] = [];
    const greedy: SamplingParams = { temperature: 0, topK: 0, topP: 1, seed: 0, tokenIndex: 0 };
    reqs.forEach((r, i) => {
      const rows = batch[i]!.tokens.length;
      for (let j = 0; j < rows; j++) out.push(r.sampling && r.k === 0 ? { ...r.sampling, tokenIndex: r.tokens.length - r.promptLength } : greedy);
    });
    for (let i = reqs.length; i < batch.length; i++) {
      const b = batch[i]!;
      const o = b.outputs ?? 'last';
      const rows = o === 'all' ? b.tokens.length : o === 'last' ? 1 : o === 'none' ? 0 : o.length;
      for (let j = 0; j < rows; j++) out.push(extra[i - reqs.length]!.sampling ?? greedy);
    }
    return out;
  }

  /**
   * Penalty entries for every verify row of a penalized request (row j's context: the request's
   * tokens, then its first j drafts) and for the output row of a penalized extra sequence.
   */
  private verifyPenalties(reqs: readonly RequestState[], drafts: Map<number, number[]>, batch: readonly BatchSequence[], extra: readonly ExtraSequence[]): PenaltyEntry[] {
    const out: PenaltyEntry[] = [];
    let row = 0;
    reqs.forEach((r, i) => {
      const rows = batch[i]!.tokens.length;
      if (r.penalties) penaltyEntries(r.penalties, r.tokens, r.promptLength, row, out, drafts.get(r.id)!.slice(0, rows - 1));
      row += rows;
    });
    for (let i = reqs.length; i < batch.length; i++) {
      const b = batch[i]!;
      const o = b.outputs ?? 'last';
      const rows = o === 'all' ? b.tokens.length : o === 'last' ? 1 : o === 'none' ? 0 : o.length;
      const e = extra[i - reqs.length]!;
      if (e.penalties && rows > 0) {
        if (rows !== 1) throw new RangeError('penalties on an extra sequence need exactly one output row (its last)');
        penaltyEntries(e.penalties.penalties, e.penalties.context, e.penalties.promptLength, row, out);
      }
      row += rows;
    }
    return out;
  }

  /** Draft k_r tokens per request: one batched draft forward per draft position. */
  private async propose(reqs: readonly RequestState[], selfSlots: Map<number, Int32Array>): Promise<{ drafts: Map<number, number[]>; q: Map<number, Float64Array[]> }> {
    const drafts = new Map<number, number[]>(reqs.map((r) => [r.id, []]));
    const q = new Map<number, Float64Array[]>(reqs.map((r) => [r.id, []]));
    const draft = this.draft;
    if (draft.kind === 'oracle') {
      for (const r of reqs) {
        const d = r.k > 0 ? await draft.propose({ id: r.id, tokens: r.tokens, promptLength: r.promptLength }, r.k) : [];
        if (d.length !== r.k) throw new RangeError(`the oracle proposed ${d.length} tokens, ${r.k} asked`);
        drafts.set(r.id, d);
      }
      return { drafts, q };
    }
    const kMax = Math.max(0, ...reqs.map((r) => r.k));
    if (draft.kind === 'none') {
      if (kMax > 0) throw new RangeError('speculation needs a draft (k > 0 asked of a session without one)');
      return { drafts, q };
    }
    if (draft.kind === 'model') {
      // A model draft that has not seen a long context yet (an adopted request) prefills it in chunks
      // first, so the first draft pass stays one small row group per request; and when the first
      // pass would still exceed the draft runner's step, every request catches up first.
      const firstPass = reqs.filter((r) => r.k > 0).reduce((n, r) => n + r.tokens.length - r.draftCached, 0);
      const limit = firstPass > draft.session.runner.maxTokens ? 0 : 16;
      for (const r of reqs) {
        const unseen = r.tokens.length - 1 - r.draftCached;
        if (r.k > 0 && unseen > limit) {
          await draft.session.prefill(r.draftId!, r.tokens.slice(r.draftCached, r.tokens.length - 1), undefined, { outputs: 'none' });
          r.draftCached = r.tokens.length - 1;
        }
      }
    }
    for (let j = 0; j < kMax; j++) {
      const active = reqs.filter((r) => r.k > j);
      const batch: BatchSequence[] = [];
      for (const r of active) {
        const L = r.tokens.length - 1;
        const prev = j === 0 ? r.tokens[L]! : drafts.get(r.id)![j - 1]!;
        if (draft.kind === 'self') {
          batch.push({ blockTable: this.target.kv.blockTable(r.id), startPos: L + j, tokens: [prev], slots: [selfSlots.get(r.id)![j]!], outputs: 'last' });
        } else {
          // j = 0 catches the draft up: tokens it has not seen (a fully accepted last draft) + the pending one.
          const tokens = j === 0 ? r.tokens.slice(r.draftCached) : [prev];
          batch.push(await draft.session.plan({ id: r.draftId!, tokens }));
          r.draftCached += tokens.length;
        }
      }
      const sampled = active.some((r) => r.sampling);
      const res = draft.kind === 'self' ? await this.target.runner.forward(batch, { logits: sampled, layers: draft.layers }) : await draft.session.runner.forward(batch, { logits: sampled });
      const V = this.target.runner.config.vocabSize;
      active.forEach((r, i) => {
        let token: number;
        if (!r.sampling) {
          token = res.tokens[i]!;
        } else {
          const qj = warpedDistribution(res.logits!.subarray(i * V, (i + 1) * V), { ...r.sampling, tokenIndex: 0 });
          token = drawFrom(qj, samplingUniform(r.sampling.seed, r.tokens.length - r.promptLength + j, STREAM_DRAFT));
          q.get(r.id)!.push(qj);
        }
        drafts.get(r.id)!.push(token);
      });
    }
    return { drafts, q };
  }
}

function checkK(k: number): void {
  if (!Number.isInteger(k) || k < 0 || k > 16) throw new RangeError(`speculation length k must be an integer in 0..16, got ${k}`);
}
