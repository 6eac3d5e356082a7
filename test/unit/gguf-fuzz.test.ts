// Mutation fuzzing of GGUF loading: seeded corruptions of small but complete GGUF files (a fixture's
// weights with its SentencePiece vocabulary, and a Q4_K_M synthetic model with a byte-level one),
// through the whole loader as the engine runs it: parseGguf, the config and tensor mapping, the
// tokenizer built from the metadata. Every outcome must be a load, or a typed ModelError
// (GgufError, ModelConfigError, UnsupportedModelError, ...); anything else, or a slow case, fails.
// Mutations aim at the header, where the parser's decisions are: random bytes, integer fields set to
// boundary values (counts, lengths, types, dims, offsets), cuts, and splices of header bytes.

import { describe, expect, it } from 'vitest';
import { ggufBytes, ggufFromHfFolder, ggufPlan, gpt2VocabFromTokenizerJson } from '../../bench/gguf/from-hf.js';
import { syntheticSource } from '../../bench/synthetic-files.js';
import { ModelError } from '../../src/model/errors.js';
import { parseGguf } from '../../src/model/gguf.js';
import { loadModelFiles } from '../../src/model/load.js';
import type { ModelSource } from '../../src/model/source.js';
import { TextTokenizer } from '../../src/tokenizer/tokenizer.js';
import { fixtureDir } from '../helpers/fixtures.js';
import { rng } from '../helpers/random.js';
import { syntheticQwen2Config } from '../helpers/synthetic-qwen2.js';

type Rand = () => number;
const int = (r: Rand, n: number): number => Math.floor(r() * n);

/** Where the header ends (the data region's start): mutations land before it. */
function headerLength(bytes: Uint8Array): number {
  const f = parseGguf(bytes, 'x.gguf');
  let first = bytes.length;
  for (const t of f.tensors.values()) first = Math.min(first, t.data.byteOffset - bytes.byteOffset);
  return first;
}

const BOUNDARY = [0, 1, 2, 3, 7, 8, 12, 14, 30, 31, 32, 255, 256, 0x7fffffff, 0x80000000, 0xffffffff];

function mutate(r: Rand, base: Uint8Array, header: number): Uint8Array {
  const how = int(r, 5);
  if (how === 4) return base.slice(0, int(r, header + 64));
  const out = base.slice();
  const dv = new DataView(out.buffer);
  const edits = 1 + int(r, 3);
  for (let e = 0; e < edits; e++) {
    const at = int(r, header - 8);
    if (how === 0) out[at] = int(r, 256);
    else if (how === 1) dv.setUint32(at, BOUNDARY[int(r, BOUNDARY.length)]!, true);
    else if (how === 2) dv.setBigUint64(at, BigInt(BOUNDARY[int(r, BOUNDARY.length)]!) << BigInt(int(r, 2) * 32), true);
    else out.copyWithin(at, int(r, header - 8), int(r, header - 8) + 1 + int(r, 16));
  }
  return out;
}

async function load(bytes: Uint8Array): Promise<string> {
  const source: ModelSource = { describe: () => 'fuzz', read: async (f) => (f === 'm.gguf' ? bytes : null), gguf: 'm.gguf' };
  try {
    const m = await loadModelFiles(source);
    if (m.tokenizerJson) new TextTokenizer(m.tokenizerJson, m.tokenizerConfig, m.config.eosTokenIds).encode('Hello wörld 🙂\n\tx');
    return 'ok';
  } catch (e) {
    if (e instanceof ModelError) return e.constructor.name;
    throw new Error(`escaped: ${e instanceof Error ? `${e.name}: ${e.message}` : String(e)}`.slice(0, 400), { cause: e });
  }
}

async function fuzz(base: Uint8Array, n: number, seed: number, what: string): Promise<Map<string, number>> {
  expect(await load(base)).toBe('ok');
  const header = headerLength(base);
  const r = rng(seed);
  const tally = new Map<string, number>();
  let slowest = 0;
  for (let i = 0; i < n; i++) {
    const t0 = performance.now();
    const outcome = await load(mutate(r, base, header));
    slowest = Math.max(slowest, performance.now() - t0);
    tally.set(outcome, (tally.get(outcome) ?? 0) + 1);
  }
  console.log(`[gguf-fuzz] ${what}: ${n} cases (header ${header} bytes), slowest ${slowest.toFixed(0)} ms: ${JSON.stringify(Object.fromEntries([...tally].sort((a, b) => b[1] - a[1])))}`);
  // Both sides exercised; nothing slow (a count taken at face value would allocate or loop for long).
  expect(tally.get('ok') ?? 0).toBeGreaterThan(0);
  expect(n - (tally.get('ok') ?? 0)).toBeGreaterThan(n / 4);
  expect(slowest).toBeLessThan(2000);
  return tally;
}

describe('GGUF fuzzing', () => {
  it("300 mutations of a fixture's F16 file with its SentencePiece vocabulary: a load or a typed ModelError", async () => {
    await fuzz(ggufFromHfFolder(fixtureDir('tiny-qwen2'), 'F16'), 300, 20261208, 'tiny-qwen2 F16');
  }, 300_000);

  it('6,000 mutations of a Q4_K_M file with a byte-level vocabulary: a load or a typed ModelError', async () => {
    const config = syntheticQwen2Config({ hidden: 256, intermediate: 512, layers: 1, heads: 4, tied: false });
    // A byte-level vocabulary of 300: the 256 byte symbols, then merges of a few pairs.
    const byteSymbols = Array.from({ length: 256 }, (_, b) => String.fromCodePoint(b < 33 || (b > 126 && b < 161) || b === 173 ? 256 + b : b));
    const vocab: Record<string, number> = Object.fromEntries(byteSymbols.map((s, i) => [s, i]));
    const merges: string[] = [];
    for (let i = 0; Object.keys(vocab).length < 299; i++) {
      const [a, b] = [byteSymbols[97 + (i % 26)]!, byteSymbols[97 + Math.floor(i / 26)]!];
      vocab[a + b] = Object.keys(vocab).length;
      merges.push(`${a} ${b}`);
    }
    const tokenizer = { model: { type: 'BPE', vocab, merges }, added_tokens: [{ id: 299, content: '<|end|>', special: true }] };
    const plan = ggufPlan(config, syntheticSource(config, 9), 'Q4_K_M', 'fuzz', gpt2VocabFromTokenizerJson(tokenizer, {}, 300, 'qwen2'));
    await fuzz(ggufBytes(plan), 6000, 7, 'synthetic Q4_K_M');
  }, 300_000);
});
