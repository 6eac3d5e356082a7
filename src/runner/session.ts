// A model runner plus its KV bookkeeping: sequences by id, prefill and decode steps, greedy or
// sampled generation. The CLI, tests and benchmarks drive it by hand; the engine drives the same
// sessions from its scheduler's plans, through the speculative decoder (src/speculative/).

import { PagedKvCache } from '../kv/index.js';
import type { BatchSequence } from './batch.js';
import type { SamplingParams } from '../kernels/sampling.js';
import type { ForwardOptions, ForwardResult, ModelRunner } from './model-runner.js';

/** How to pick each next token: greedy by default; the RNG counter is the token's output index. */
export type Sampling = Omit<SamplingParams, 'tokenIndex'>;

export interface GenerateOptions {
  /** Prefill chunk size (default: the runner's maximum step). */
  chunk?: number;
  sampling?: Sampling;
  /** Stop after emitting any of these (the token is included, as HF generate does). */
  stopTokens?: ReadonlySet<number>;
}

export interface PlannedSequence {
  id: number;
  tokens: readonly number[];
  outputs?: BatchSequence['outputs'];
}

export class RunnerSession {
  readonly kv: PagedKvCache;
  private nextId = 1;

  constructor(
    readonly runner: ModelRunner,
    options: { poisonFreedPages?: boolean; prefixCaching?: boolean } = {},
  ) {
    this.kv = new PagedKvCache({
      numPages: runner.numPages,
      pageSize: runner.pageSize,
      prefixCaching: options.prefixCaching ?? false,
      onPagesFreed: options.poisonFreedPages ? (pages) => runner.poisonPages(pages) : undefined,
    });
  }

  newSequence(): number {
    const id = this.nextId++;
    this.kv.addSequence(id);
    return id;
  }

  /** A new sequence starting from the longest cached prefix of `tokens` in `namespace` (prefix caching). */
  newSequenceWithPrefix(namespace: string, tokens: readonly number[]): { id: number; cached: number } {
    const id = this.nextId++;
    return { id, cached: this.kv.addSequenceWithPrefix(id, namespace, tokens) };
  }

  /** `n` new sequences sharing `src`'s cached tokens (full pages shared, the partial one copied). */
  async fork(src: number, n = 1): Promise<number[]> {
    const ids: number[] = [];
    const copies = [];
    for (let i = 0; i < n; i++) {
      const id = this.nextId++;
      copies.push(...this.kv.fork(src, id).copies);
      ids.push(id);
    }
    await this.runner.copyPages(copies);
    return ids;
  }

  /** Reserve KV for a sequence's new tokens (copying a shared page first if needed): its batch entry. */
  async plan(s: PlannedSequence): Promise<BatchSequence> {
    const startPos = this.kv.length(s.id);
    const { slots, copies } = this.kv.reserve(s.id, s.tokens.length);
    await this.runner.copyPages(copies);
    return { blockTable: this.kv.blockTable(s.id), startPos, tokens: s.tokens, slots, outputs: s.outputs ?? 'last' };
  }

  /** Reserve KV for each sequence's new tokens and run them as one ragged batch. */
  async step(seqs: readonly PlannedSequence[], opts: ForwardOptions = {}): Promise<ForwardResult> {
    const batch: BatchSequence[] = [];
    for (const s of seqs) batch.push(await this.plan(s));
    return this.runner.forward(batch, opts);
  }

  /** Prefill `tokens` in chunks of `chunk`; returns the last chunk's result. */
  async prefill(
    id: number,
    tokens: readonly number[],
    chunk = this.runner.maxTokens,
    opts: { logits?: boolean; outputs?: 'last' | 'all' | 'none'; sampling?: SamplingParams } = {},
  ): Promise<ForwardResult[]> {
    const results: ForwardResult[] = [];
    for (let i = 0; i < tokens.length; i += chunk) {
      const part = tokens.slice(i, i + chunk);
      const last = i + chunk >= tokens.length;
      const outputs = opts.outputs === 'all' ? 'all' : last && opts.outputs !== 'none' ? 'last' : 'none';
      const rows = outputs === 'all' ? part.length : outputs === 'last' ? 1 : 0;
      const forward: ForwardOptions = { logits: opts.logits ?? false };
      if (opts.sampling && rows > 0) forward.sampling = Array.from({ length: rows }, () => opts.sampling!);
      results.push(await this.step([{ id, tokens: part, outputs }], forward));
    }
    return results;
  }

  /** Decode up to `n` tokens after `prompt` (a fresh sequence, freed at the end). */
  async generate(prompt: readonly number[], n: number, opts: GenerateOptions = {}): Promise<number[]> {
    const id = this.newSequence();
    const sampling = (tokenIndex: number): SamplingParams | undefined => (opts.sampling ? { ...opts.sampling, tokenIndex } : undefined);
    const done = (out: number[]): boolean => out.length >= n || (opts.stopTokens?.has(out[out.length - 1]!) ?? false);
    try {
      const first = sampling(0);
      const res = await this.prefill(id, prompt, opts.chunk, first ? { sampling: first } : {});
      const out = [res[res.length - 1]!.tokens[0]!];
      while (!done(out)) {
        const params = sampling(out.length);
        const r = await this.step([{ id, tokens: [out[out.length - 1]!] }], params ? { sampling: [params] } : {});
        out.push(r.tokens[0]!);
      }
      return out;
    } finally {
      this.kv.free(id);
    }
  }

  /** Greedy decoding of `n` tokens after `prompt`. */
  greedy(prompt: readonly number[], n: number, chunk?: number): Promise<number[]> {
    return this.generate(prompt, n, chunk === undefined ? {} : { chunk });
  }

  free(id: number): void {
    this.kv.free(id);
  }
}
