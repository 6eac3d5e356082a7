// The model loader under mutation: config.json, generation_config.json, tokenizer.json,
// tokenizer_config.json and the safetensors file of a small model, mutated at the JSON level (a
// value replaced, a key deleted or added, deep nesting, __proto__) and at the byte level (flips,
// truncation, a lying header length, NaN weights), loaded as the engine loads them (the tokenizer
// built before the weights are read). Only the loader's typed errors (ModelError and its
// subclasses) may escape; anything else (a TypeError, a RangeError, a stack overflow) fails.

import { describe, expect, it } from 'vitest';
import { ModelError } from '../../src/model/errors.js';
import { loadModelFiles, type ModelMetadata } from '../../src/model/load.js';
import type { ModelSource } from '../../src/model/source.js';
import { expectedTensors } from '../../src/model/tensors.js';
import { parseModelConfig } from '../../src/model/config.js';
import { TextTokenizer } from '../../src/tokenizer/tokenizer.js';
import { rng } from '../helpers/random.js';
import { buildSafetensors, elementCount } from '../helpers/safetensors-builder.js';

const WORDS = ['[UNK]', '<s>', '</s>', 'hello', 'world', 'the', 'a', 'model', 'loads', 'fast', 'slow', 'token'];
const config = {
  architectures: ['LlamaForCausalLM'],
  model_type: 'llama',
  vocab_size: 16,
  hidden_size: 8,
  intermediate_size: 16,
  num_hidden_layers: 2,
  num_attention_heads: 2,
  num_key_value_heads: 1,
  max_position_embeddings: 64,
  rms_norm_eps: 1e-6,
  rope_theta: 10000,
  tie_word_embeddings: false,
  bos_token_id: 1,
  eos_token_id: 2,
};
const generation = { bos_token_id: 1, eos_token_id: [2], do_sample: false };
const tokenizer = {
  version: '1.0',
  added_tokens: [
    { id: 1, content: '<s>', single_word: false, lstrip: false, rstrip: false, normalized: false, special: true },
    { id: 2, content: '</s>', single_word: false, lstrip: false, rstrip: false, normalized: false, special: true },
  ],
  normalizer: null,
  pre_tokenizer: { type: 'Whitespace' },
  post_processor: null,
  decoder: null,
  model: { type: 'WordLevel', vocab: Object.fromEntries(WORDS.map((w, i) => [w, i])), unk_token: '[UNK]' },
};
const tokenizerConfig = { bos_token: '<s>', eos_token: '</s>', chat_template: "{% for m in messages %}{{ m['content'] }}{% endfor %}" };

/** The model's tensors in F32, F16 and BF16 by turns, small random bytes (finite: exponents kept low). */
function weights(): Uint8Array {
  const dtypes = ['F32', 'F16', 'BF16'] as const;
  const r = rng(7);
  return buildSafetensors(
    [...expectedTensors(parseModelConfig(config))].map(([name, shape], i) => {
      const dtype = dtypes[i % 3]!;
      const data = new Uint8Array(elementCount(shape) * (dtype === 'F32' ? 4 : 2));
      // Little-endian: the high byte of each value below 0x3f keeps its exponent far from all ones.
      for (let b = 0; b < data.length; b++) data[b] = (b + 1) % (dtype === 'F32' ? 4 : 2) === 0 ? int(r, 0x3f) : int(r, 256);
      return { name, dtype, shape, data };
    }),
  );
}

// ---- mutations -----------------------------------------------------------------------------------

type Json = null | boolean | number | string | Json[] | { [k: string]: Json };
const int = (r: () => number, n: number): number => Math.floor(r() * n);
const pick = <T>(r: () => number, xs: readonly T[]): T => xs[int(r, xs.length)]!;

/** A value nested `depth` deep: a marker here, the brackets spliced in by enc() (JSON.stringify recurses). */
function nested(depth: number): Json {
  return `\u0001DEEP${depth}\u0001`;
}

function randomValue(r: () => number): Json {
  return pick(r, [
    () => null,
    () => true,
    () => -1,
    () => 0,
    () => 1.5,
    () => 2 ** 31,
    () => 1e308,
    () => -1e-300,
    () => '',
    () => 'x'.repeat(int(r, 300)),
    () => '<s>',
    () => [],
    () => [1, 'a', null],
    () => ({}),
    () => ({ type: 'BPE' }),
    () => nested(3000 + int(r, 3000)),
    () => Array.from({ length: 1 + int(r, 2000) }, (_, i) => i),
  ])();
}

/** Every path of containers in a JSON value (the root included). */
function containers(v: Json, path: (string | number)[] = [], out: (string | number)[][] = []): (string | number)[][] {
  if (v !== null && typeof v === 'object') {
    out.push(path);
    if (path.length < 6) for (const [k, x] of Object.entries(v)) containers(x, [...path, Array.isArray(v) ? Number(k) : k], out);
  }
  return out;
}

function at(v: Json, path: readonly (string | number)[]): Json {
  let x = v;
  for (const k of path) x = (x as Record<string | number, Json>)[k]!;
  return x;
}

function mutateJson(r: () => number, base: Json): Json {
  const v = structuredClone(base);
  for (let k = 1 + int(r, 3); k > 0; k--) {
    const holder = at(v, pick(r, containers(v))) as Record<string, Json> | Json[];
    const keys = Object.keys(holder);
    const kind = int(r, 4);
    if (kind === 0 && keys.length > 0) {
      const key = pick(r, keys);
      if (Array.isArray(holder)) holder.splice(Number(key), 1);
      else delete holder[key];
    } else if (kind === 1 && !Array.isArray(holder)) {
      // defineProperty: '__proto__' becomes an own key, as JSON.parse makes it.
      Object.defineProperty(holder, pick(r, ['__proto__', 'constructor', 'extra', 'num_hidden_layers', 'chat_template', 'model', 'type']), {
        value: randomValue(r),
        enumerable: true,
        writable: true,
        configurable: true,
      });
    } else if (keys.length > 0) {
      const key = pick(r, keys);
      (holder as Record<string, Json>)[key] = randomValue(r);
    }
  }
  return v;
}

function mutateBytes(r: () => number, bytes: Uint8Array): Uint8Array {
  const out = bytes.slice();
  const kind = int(r, 4);
  if (kind === 0) {
    for (let k = 1 + int(r, 8); k > 0; k--) out[int(r, out.length)]! ^= 1 << int(r, 8);
    return out;
  }
  if (kind === 1) return out.subarray(0, int(r, out.length));
  if (kind === 2) {
    // A lying header length.
    new DataView(out.buffer).setBigUint64(0, BigInt(pick(r, [0, 1, 7, int(r, 2 ** 20), 2 ** 40, out.length])), true);
    return out;
  }
  // A NaN or an infinity in the data (the last bytes belong to some tensor).
  const i = out.length - 2 - 2 * int(r, 64);
  out[i] = 0x80;
  out[i + 1] = 0x7f;
  return out;
}

// ---- the loader as the engine runs it ------------------------------------------------------------

const enc = (v: unknown): Uint8Array =>
  new TextEncoder().encode((typeof v === 'string' ? v : JSON.stringify(v)).replace(/"\\u0001DEEP(\d+)\\u0001"/g, (_, d: string) => '['.repeat(Number(d)) + ']'.repeat(Number(d))));

async function load(files: Map<string, Uint8Array>): Promise<'ok' | string> {
  const source: ModelSource = { describe: () => 'fuzz', read: async (f) => files.get(f) ?? null };
  const beforeWeights = (m: ModelMetadata): void => {
    if (m.tokenizerJson) new TextTokenizer(m.tokenizerJson, m.tokenizerConfig, m.config.eosTokenIds);
  };
  try {
    await loadModelFiles(source, { beforeWeights });
    return 'ok';
  } catch (e) {
    if (e instanceof ModelError) return e.constructor.name;
    throw new Error(`escaped: ${e instanceof Error ? `${e.name}: ${e.message}` : String(e)}`.slice(0, 400), { cause: e });
  }
}

describe('loader fuzzing', () => {
  it('30,000 mutations of a small model folder: it loads or gives a typed ModelError, nothing else', async () => {
    const base = new Map<string, Uint8Array>([
      ['config.json', enc(config)],
      ['generation_config.json', enc(generation)],
      ['tokenizer.json', enc(tokenizer)],
      ['tokenizer_config.json', enc(tokenizerConfig)],
      ['model.safetensors', weights()],
    ]);
    expect(await load(base)).toBe('ok');
    const jsons: Record<string, Json> = { 'config.json': config, 'generation_config.json': generation, 'tokenizer.json': tokenizer, 'tokenizer_config.json': tokenizerConfig };
    const r = rng(20261207);
    const tally = new Map<string, number>();
    const N = 30_000;
    for (let i = 0; i < N; i++) {
      const files = new Map(base);
      const file = pick(r, [...Object.keys(jsons), 'model.safetensors']);
      const how = int(r, 3);
      if (file === 'model.safetensors') files.set(file, mutateBytes(r, base.get(file)!));
      else if (how === 0) files.set(file, mutateBytes(r, base.get(file)!).subarray(8));
      else if (how === 1 && file !== 'config.json') files.delete(file);
      else files.set(file, enc(mutateJson(r, jsons[file]!)));
      const outcome = await load(files);
      tally.set(outcome, (tally.get(outcome) ?? 0) + 1);
    }
    console.log(`[loader-fuzz] ${N} cases: ${JSON.stringify(Object.fromEntries([...tally].sort((a, b) => b[1] - a[1])))}`);
    // Both sides exercised: some mutations still load, most are refused.
    expect(tally.get('ok') ?? 0).toBeGreaterThan(100);
    expect(N - (tally.get('ok') ?? 0)).toBeGreaterThan(3000);
  }, 300_000);
});
