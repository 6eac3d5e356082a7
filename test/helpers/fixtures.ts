// The HF fixture models (test/fixtures/*) and their reference outputs from HF transformers.

import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

export const FIXTURE_MODELS = ['tiny-qwen2', 'tiny-llama3', 'tiny-qwen3b', 'tiny-mistral'] as const;
export type FixtureModel = (typeof FIXTURE_MODELS)[number];

export interface FixtureCase {
  prompt: number[];
  last_logits: number[];
  top8_ids: number[][];
  top8_logits: number[][];
  greedy: number[];
  f32_vs_f64_max_abs: number;
}

export function fixtureDir(model: FixtureModel): string {
  return fileURLToPath(new URL(`../fixtures/${model}`, import.meta.url));
}

export function fixtureCases(model: FixtureModel): FixtureCase[] {
  const ref = JSON.parse(readFileSync(`${fixtureDir(model)}/reference.json`, 'utf8')) as { cases: FixtureCase[] };
  return ref.cases;
}

/**
 * Positions whose top-8 order is well defined: every neighbouring pair of the reference top-8
 * (and the 8th vs the 9th, unknown, so only pairs inside the 8) differs by more than `gap`.
 */
export function topIdsComparable(topLogits: readonly number[], gap = 1e-3): boolean {
  for (let i = 0; i + 1 < topLogits.length; i++) if (topLogits[i]! - topLogits[i + 1]! <= gap) return false;
  return true;
}

/** The k largest ids of a logits row, best first, ties to the lower id (one linear scan). */
export function topK(logits: ArrayLike<number>, offset: number, vocab: number, k: number): number[] {
  const ids: number[] = [];
  const better = (a: number, b: number): boolean => logits[offset + a]! > logits[offset + b]! || (logits[offset + a] === logits[offset + b] && a < b);
  for (let i = 0; i < vocab; i++) {
    if (ids.length === k && !better(i, ids[k - 1]!)) continue;
    let j = ids.length < k ? ids.length : k - 1;
    ids[j] = i;
    while (j > 0 && better(ids[j]!, ids[j - 1]!)) {
      [ids[j], ids[j - 1]] = [ids[j - 1]!, ids[j]!];
      j--;
    }
  }
  return ids;
}
