// The one place where the browser's model outputs meet HF transformers' reference.json (the same
// contract as test/gpu/models.test.ts, which runs it in Node): this measures, the spec asserts.
//   - last-position logits: max |ours - HF| (the spec wants < LOGIT_TOLERANCE);
//   - top-8 ids at every position whose reference top-8 is well ordered (neighbouring logits more
//     than TOP_GAP apart), the last position reported on its own;
//   - the 24 greedy tokens.
// topK/topIdsComparable come from src/reference/logits.ts, which the Node tier uses too.

import type { FixtureCase } from '../../test/helpers/fixtures.js';
import { topIdsComparable, topK } from '../../src/reference/logits.js';

export type ReferenceCase = FixtureCase;

export const LOGIT_TOLERANCE = 1e-3;
export const TOP_K = 8;
export const TOP_GAP = 1e-3;

/** What the engine produced for one prompt. */
export interface ModelOutputs {
  /** Logits at every prompt position, [prompt.length, vocab] row-major. */
  logits: Float32Array;
  vocab: number;
  /** Greedy continuation, as many tokens as the reference has. */
  greedy: number[];
}

export interface CaseComparison {
  promptLength: number;
  vocab: number;
  /** max over the vocabulary of |ours - HF| at the last position (NaN counts as Infinity). */
  maxAbsError: number;
  /** The token id where that maximum is. */
  maxAbsErrorAt: number;
  /** max |logit| of ours at the last position: shows the logits are real, not zeros. */
  maxAbsLogit: number;
  top8Last: { comparable: boolean; equal: boolean; ids: number[]; expected: number[] };
  top8: { positions: number; compared: number; mismatchedPositions: number[] };
  greedy: number[];
  expectedGreedy: number[];
  greedyEqual: boolean;
  /** First index where the greedy tokens differ, or -1. */
  greedyFirstMismatch: number;
}

function sameIds(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((v, i) => v === b[i]);
}

export function compareCase(ref: ReferenceCase, out: ModelOutputs): CaseComparison {
  const T = ref.prompt.length;
  const V = out.vocab;
  if (out.logits.length !== T * V) throw new Error(`expected ${T} x ${V} logits, got ${out.logits.length}`);
  if (ref.last_logits.length !== V) throw new Error(`reference has ${ref.last_logits.length} last logits, the model's vocabulary is ${V}`);

  const lastOffset = (T - 1) * V;
  let maxAbsError = 0;
  let maxAbsErrorAt = 0;
  let maxAbsLogit = 0;
  for (let i = 0; i < V; i++) {
    const ours = out.logits[lastOffset + i]!;
    const err = Math.abs(ours - ref.last_logits[i]!);
    // NaN must not hide behind a comparison that is always false.
    const e = Number.isNaN(err) ? Infinity : err;
    if (e > maxAbsError) {
      maxAbsError = e;
      maxAbsErrorAt = i;
    }
    maxAbsLogit = Math.max(maxAbsLogit, Number.isNaN(ours) ? Infinity : Math.abs(ours));
  }

  let compared = 0;
  const mismatchedPositions: number[] = [];
  for (let pos = 0; pos < T; pos++) {
    if (!topIdsComparable(ref.top8_logits[pos]!, TOP_GAP)) continue;
    compared++;
    if (!sameIds(topK(out.logits, pos * V, V, TOP_K), ref.top8_ids[pos]!)) mismatchedPositions.push(pos);
  }
  const lastIds = topK(out.logits, lastOffset, V, TOP_K);
  const expectedLast = ref.top8_ids[T - 1]!;

  const greedyFirstMismatch = ref.greedy.findIndex((id, i) => out.greedy[i] !== id);
  return {
    promptLength: T,
    vocab: V,
    maxAbsError,
    maxAbsErrorAt,
    maxAbsLogit,
    top8Last: { comparable: topIdsComparable(ref.top8_logits[T - 1]!, TOP_GAP), equal: sameIds(lastIds, expectedLast), ids: lastIds, expected: expectedLast },
    top8: { positions: T, compared, mismatchedPositions },
    greedy: out.greedy,
    expectedGreedy: ref.greedy,
    greedyEqual: out.greedy.length === ref.greedy.length && greedyFirstMismatch === -1,
    greedyFirstMismatch: out.greedy.length !== ref.greedy.length && greedyFirstMismatch === -1 ? Math.min(out.greedy.length, ref.greedy.length) : greedyFirstMismatch,
  };
}
