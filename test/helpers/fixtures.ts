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

export { topIdsComparable, topK } from '../../src/reference/logits.js';
