import { describe, expect, it } from 'vitest';
import { flattenBatch, type BatchSequence } from '../../src/runner/batch.js';
import { ForwardInputError } from '../../src/runner/errors.js';

const LIM = { vocabSize: 100, pageSize: 4, numPages: 10, maxTokens: 16, maxSequences: 3, maxPositions: 64 };

function seq(blockTable: number[], startPos: number, tokens: number[], outputs?: BatchSequence['outputs']): BatchSequence {
  const slots = tokens.map((_, i) => {
    const pos = startPos + i;
    return blockTable[Math.floor(pos / 4)]! * 4 + (pos % 4);
  });
  return outputs ? { blockTable, startPos, tokens, slots, outputs } : { blockTable, startPos, tokens, slots };
}

describe('flattenBatch', () => {
  it('lays out a ragged batch and counts what a performance model needs', () => {
    const f = flattenBatch([seq([7, 2], 0, [1, 2, 3, 4, 5]), seq([3, 9, 1], 9, [6]), seq([5], 1, [7, 8], 'all')], LIM);
    expect(f.T).toBe(8);
    expect(Array.from(f.positions)).toEqual([0, 1, 2, 3, 4, 9, 1, 2]);
    expect(Array.from(f.seqOfToken)).toEqual([0, 0, 0, 0, 0, 1, 2, 2]);
    expect(Array.from(f.slots)).toEqual([28, 29, 30, 31, 8, 5, 21, 22]);
    expect(f.maxBlocks).toBe(3);
    expect(Array.from(f.blockTables)).toEqual([7, 2, 0, 3, 9, 1, 5, 0, 0]);
    expect(Array.from(f.outputRows)).toEqual([4, 5, 6, 7]);
    expect(f.outputOf).toEqual([
      { seq: 0, row: 4 },
      { seq: 1, row: 0 },
      { seq: 2, row: 0 },
      { seq: 2, row: 1 },
    ]);
    expect([f.prefillTokens, f.decodeRows, f.verifyRows]).toEqual([5, 1, 2]);
    expect(f.attendedKeys).toBe(1 + 2 + 3 + 4 + 5 + 10 + 2 + 3);
    expect(f.maxPosition).toBe(9);
  });

  it.each([
    [[], /batch is empty/],
    [[seq([0], 0, [1]), seq([1], 0, [1]), seq([2], 0, [1]), seq([3], 0, [1])], /at most 3 per step/],
    [[seq([0, 1, 2, 3, 4], 0, Array(17).fill(1))], /17 tokens; this runner takes at most 16/],
    [[{ blockTable: [0], startPos: 0, tokens: [1, 2], slots: [0] }], /slots has 1 entries for 2 tokens/],
    [[seq([0], 0, [100])], /tokens\[0\] is 100; token ids are 0..99/],
    [[{ blockTable: [0], startPos: 3, tokens: [1, 2], slots: [3, 4] }], /blockTable has 1 pages; positions 0..4 need 2/],
    [[seq([10], 0, [1])], /blockTable\[0\] is 10; pages are 0..9/],
    [[{ blockTable: [0], startPos: 0, tokens: [1], slots: [2] }], /slots\[0\] is 2; position 0 lives in slot 0/],
    [[seq(Array(17).fill(0), 64, [1])], /reaches position 64; the model allows 64 positions/],
    [[seq([0], 0, [1, 2], [2])], /outputs names row 2; rows are 0..1/],
  ] as [BatchSequence[], RegExp][])('refuses a malformed step with ForwardInputError (%#)', (batch, message) => {
    let err: unknown;
    try {
      flattenBatch(batch, LIM);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ForwardInputError);
    expect((err as Error).message).toMatch(message);
  });
});
