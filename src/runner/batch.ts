// The ragged batch a model runner executes in one step, and its flattening into the fixed-capacity
// arrays the kernels read. Nothing here knows about requests: a sequence is a block table, a start
// position, new tokens and their KV slots, and which rows need an output.

import { ForwardInputError } from './errors.js';

export interface BatchSequence {
  /** Pages of the sequence, covering positions 0 .. startPos + tokens.length - 1. */
  blockTable: readonly number[];
  /** Absolute position of the first new token (= tokens already in the cache). */
  startPos: number;
  /** New token ids. */
  tokens: ArrayLike<number>;
  /** KV-cache slot of each new token (page * pageSize + offset). */
  slots: ArrayLike<number>;
  /** Rows (indexes into `tokens`) that need logits / a next token: default 'last'. */
  outputs?: 'last' | 'all' | 'none' | readonly number[];
  /**
   * What these tokens are, for the step's features (the performance model's inputs). Default:
   * one token is 'decode'; several with every row an output are 'verify'; otherwise 'prefill'.
   */
  kind?: 'prefill' | 'decode' | 'verify';
}

export interface FlatBatch {
  T: number;
  S: number;
  tokens: Uint32Array;
  positions: Uint32Array;
  seqOfToken: Uint32Array;
  slots: Uint32Array;
  blockTables: Uint32Array;
  maxBlocks: number;
  /** Token index of each output row, in batch order. */
  outputRows: Uint32Array;
  /** (sequence, row within its tokens) of each output row. */
  outputOf: { seq: number; row: number }[];
  maxPosition: number;
  /** Sum over tokens of the keys each attends to (pos + 1). */
  attendedKeys: number;
  prefillTokens: number;
  decodeRows: number;
  verifyRows: number;
}

export interface BatchLimits {
  vocabSize: number;
  pageSize: number;
  numPages: number;
  maxTokens: number;
  maxSequences: number;
  maxPositions: number;
}

function outputRowsOf(s: BatchSequence, n: number): number[] {
  const o = s.outputs ?? 'last';
  if (o === 'last') return n > 0 ? [n - 1] : [];
  if (o === 'none') return [];
  if (o === 'all') return Array.from({ length: n }, (_, i) => i);
  return [...o];
}

/** Validate a batch and lay it out flat; every bad field is a ForwardInputError naming it. */
export function flattenBatch(batch: readonly BatchSequence[], lim: BatchLimits): FlatBatch {
  const S = batch.length;
  if (S === 0) throw new ForwardInputError('batch', 'is empty');
  if (S > lim.maxSequences) throw new ForwardInputError('batch', `has ${S} sequences; this runner takes at most ${lim.maxSequences} per step`);
  const T = batch.reduce((n, s) => n + s.tokens.length, 0);
  if (T > lim.maxTokens) throw new ForwardInputError('batch', `has ${T} tokens; this runner takes at most ${lim.maxTokens} per step`);
  const maxBlocks = Math.max(1, ...batch.map((s) => s.blockTable.length));
  const flat: FlatBatch = {
    T,
    S,
    tokens: new Uint32Array(T),
    positions: new Uint32Array(T),
    seqOfToken: new Uint32Array(T),
    slots: new Uint32Array(T),
    blockTables: new Uint32Array(S * maxBlocks),
    maxBlocks,
    outputRows: new Uint32Array(0),
    outputOf: [],
    maxPosition: 0,
    attendedKeys: 0,
    prefillTokens: 0,
    decodeRows: 0,
    verifyRows: 0,
  };
  const rows: number[] = [];
  let t0 = 0;
  batch.forEach((s, si) => {
    const n = s.tokens.length;
    const where = `batch[${si}]`;
    if (n === 0) throw new ForwardInputError(`${where}.tokens`, 'is empty');
    if (s.slots.length !== n) throw new ForwardInputError(`${where}.slots`, `has ${s.slots.length} entries for ${n} tokens`);
    if (!Number.isInteger(s.startPos) || s.startPos < 0) throw new ForwardInputError(`${where}.startPos`, `is ${s.startPos}; must be an integer >= 0`);
    const end = s.startPos + n;
    if (end > lim.maxPositions) throw new ForwardInputError(`${where}`, `reaches position ${end - 1}; the model allows ${lim.maxPositions} positions`);
    const needBlocks = Math.ceil(end / lim.pageSize);
    if (s.blockTable.length < needBlocks) {
      throw new ForwardInputError(`${where}.blockTable`, `has ${s.blockTable.length} pages; positions 0..${end - 1} need ${needBlocks}`);
    }
    s.blockTable.forEach((page, b) => {
      if (!Number.isInteger(page) || page < 0 || page >= lim.numPages) throw new ForwardInputError(`${where}.blockTable[${b}]`, `is ${page}; pages are 0..${lim.numPages - 1}`);
      flat.blockTables[si * maxBlocks + b] = page;
    });
    for (let i = 0; i < n; i++) {
      const tok = s.tokens[i]!;
      if (!Number.isInteger(tok) || tok < 0 || tok >= lim.vocabSize) throw new ForwardInputError(`${where}.tokens[${i}]`, `is ${tok}; token ids are 0..${lim.vocabSize - 1}`);
      const pos = s.startPos + i;
      const slot = s.slots[i]!;
      const expected = s.blockTable[Math.floor(pos / lim.pageSize)]! * lim.pageSize + (pos % lim.pageSize);
      if (slot !== expected) throw new ForwardInputError(`${where}.slots[${i}]`, `is ${slot}; position ${pos} lives in slot ${expected} of the block table`);
      flat.tokens[t0 + i] = tok;
      flat.positions[t0 + i] = pos;
      flat.seqOfToken[t0 + i] = si;
      flat.slots[t0 + i] = slot;
      flat.attendedKeys += pos + 1;
    }
    for (const r of outputRowsOf(s, n)) {
      if (!Number.isInteger(r) || r < 0 || r >= n) throw new ForwardInputError(`${where}.outputs`, `names row ${r}; rows are 0..${n - 1}`);
      rows.push(t0 + r);
      flat.outputOf.push({ seq: si, row: r });
    }
    const outs = outputRowsOf(s, n);
    const kind = s.kind ?? (n === 1 ? 'decode' : outs.length === n ? 'verify' : 'prefill');
    if (kind === 'prefill') flat.prefillTokens += n;
    else if (kind === 'decode') flat.decodeRows += n;
    else flat.verifyRows += n;
    flat.maxPosition = Math.max(flat.maxPosition, end - 1);
    t0 += n;
  });
  flat.outputRows = Uint32Array.from(rows);
  return flat;
}
