// A model runner plus its KV bookkeeping, for one caller driving sequences by hand: the CLI, tests
// and benchmarks. (The engine drives the runner from its scheduler instead.)

import { PagedKvCache } from '../kv/index.js';
import type { BatchSequence } from './batch.js';
import type { ForwardResult, ModelRunner } from './model-runner.js';

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
    options: { poisonFreedPages?: boolean } = {},
  ) {
    this.kv = new PagedKvCache({
      numPages: runner.numPages,
      pageSize: runner.pageSize,
      onPagesFreed: options.poisonFreedPages ? (pages) => runner.poisonPages(pages) : undefined,
    });
  }

  newSequence(): number {
    const id = this.nextId++;
    this.kv.addSequence(id);
    return id;
  }

  /** Reserve KV for each sequence's new tokens and run them as one ragged batch. */
  async step(seqs: readonly PlannedSequence[], opts: { logits?: boolean } = {}): Promise<ForwardResult> {
    const batch: BatchSequence[] = [];
    for (const s of seqs) {
      const startPos = this.kv.length(s.id);
      const { slots, copies } = this.kv.reserve(s.id, s.tokens.length);
      await this.runner.copyPages(copies);
      batch.push({ blockTable: this.kv.blockTable(s.id), startPos, tokens: s.tokens, slots, outputs: s.outputs ?? 'last' });
    }
    return this.runner.forward(batch, opts);
  }

  /** Prefill `tokens` in chunks of `chunk`; returns the last chunk's result. */
  async prefill(id: number, tokens: readonly number[], chunk = this.runner.maxTokens, opts: { logits?: boolean; outputs?: 'last' | 'all' } = {}): Promise<ForwardResult[]> {
    const results: ForwardResult[] = [];
    for (let i = 0; i < tokens.length; i += chunk) {
      const part = tokens.slice(i, i + chunk);
      const last = i + chunk >= tokens.length;
      results.push(await this.step([{ id, tokens: part, outputs: opts.outputs === 'all' ? 'all' : last ? 'last' : 'none' }], opts));
    }
    return results;
  }

  /** Greedy decoding of `n` tokens after `prompt` (a fresh sequence, freed at the end). */
  async greedy(prompt: readonly number[], n: number, chunk?: number): Promise<number[]> {
    const id = this.newSequence();
    try {
      const res = await this.prefill(id, prompt, chunk);
      const out = [res[res.length - 1]!.argmax[0]!];
      while (out.length < n) {
        const r = await this.step([{ id, tokens: [out[out.length - 1]!] }]);
        out.push(r.argmax[0]!);
      }
      return out;
    } finally {
      this.kv.free(id);
    }
  }

  free(id: number): void {
    this.kv.free(id);
  }
}
