import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { chatLogprobContent, completionLogprobs, detectTokenEncoding, jsonLogprob, logSoftmaxTop, TokenTexts } from '../../src/openai/index.js';
import { TextTokenizer } from '../../src/tokenizer/tokenizer.js';
import { randomF32 } from '../helpers/random.js';

const read = (file: string): Record<string, unknown> => JSON.parse(readFileSync(new URL(`../fixtures/tiny-qwen2/${file}`, import.meta.url), 'utf8')) as Record<string, unknown>;
const tokenizerJson = read('tokenizer.json');
const tok = new TextTokenizer(tokenizerJson, read('tokenizer_config.json'));
const id = (token: string): number => tok.tokenToId(token)!;

describe('logSoftmaxTop', () => {
  it('matches a direct float64 log-softmax and sums to 1', () => {
    const row = randomF32(1000, 7, 8);
    const { logprob, top } = logSoftmaxTop(row, 123, 5);
    let z = 0;
    for (const v of row) z += Math.exp(v);
    expect(logprob).toBeCloseTo(row[123]! - Math.log(z), 12);
    let total = 0;
    for (let i = 0; i < row.length; i++) total += Math.exp(logSoftmaxTop(row, i, 0).logprob);
    expect(total).toBeCloseTo(1, 10);
    const order = [...row.keys()].sort((a, b) => row[b]! - row[a]! || a - b).slice(0, 5);
    expect(top.map((t) => t.id)).toEqual(order);
    for (const t of top) expect(t.logprob).toBeCloseTo(row[t.id]! - Math.log(z), 12);
  });

  it('is stable for huge logits (max-subtracted)', () => {
    const row = new Float32Array([1e30, 1e30, -1e30]);
    const r = logSoftmaxTop(row, 0, 3);
    expect(r.logprob).toBeCloseTo(-Math.LN2, 12);
    expect(r.top).toEqual([
      { id: 0, logprob: r.logprob },
      { id: 1, logprob: r.logprob },
      { id: 2, logprob: row[2]! - row[0]! - Math.LN2 },
    ]);
  });

  it('breaks ties by the lower id and clamps topN to the row', () => {
    const row = new Float32Array([1, 3, 2, 3, 3, 0]);
    expect(logSoftmaxTop(row, 0, 2).top.map((t) => t.id)).toEqual([1, 3]);
    expect(logSoftmaxTop(row, 0, 4).top.map((t) => t.id)).toEqual([1, 3, 4, 2]);
    expect(logSoftmaxTop(row, 0, 20).top.map((t) => t.id)).toEqual([1, 3, 4, 2, 0, 5]);
    expect(logSoftmaxTop(row, 0, 0).top).toEqual([]);
  });

  it('treats NaN as -Infinity and handles rows of infinities', () => {
    const nan = logSoftmaxTop(new Float32Array([NaN, 0, 0]), 0, 3);
    expect(nan.logprob).toBe(-Infinity);
    expect(nan.top.map((t) => t.id)).toEqual([1, 2, 0]);
    expect(nan.top[0]!.logprob).toBeCloseTo(-Math.LN2, 12);
    expect(logSoftmaxTop(new Float32Array([-Infinity, -Infinity, -Infinity, -Infinity]), 2, 1)).toEqual({ logprob: -Math.log(4), top: [{ id: 0, logprob: -Math.log(4) }] });
    const inf = logSoftmaxTop(new Float32Array([Infinity, 5, Infinity]), 1, 2);
    expect(inf).toEqual({
      logprob: -Infinity,
      top: [
        { id: 0, logprob: -Math.LN2 },
        { id: 2, logprob: -Math.LN2 },
      ],
    });
  });

  it('rejects ids outside the row and bad topN', () => {
    expect(() => logSoftmaxTop(new Float32Array(3), 3, 1)).toThrow(RangeError);
    expect(() => logSoftmaxTop(new Float32Array(3), 0, -1)).toThrow(RangeError);
  });
});

describe('TokenTexts', () => {
  it('detects the vocabulary style from tokenizer.json', () => {
    expect(detectTokenEncoding(tokenizerJson)).toBe('sentencepiece');
    expect(detectTokenEncoding({ decoder: { type: 'ByteLevel' } })).toBe('byte-level');
    expect(detectTokenEncoding({ decoder: { type: 'Sequence', decoders: [{ type: 'Strip' }, { type: 'ByteLevel' }] } })).toBe('byte-level');
    expect(detectTokenEncoding({ decoder: null })).toBe('sentencepiece');
    expect(detectTokenEncoding(null)).toBe('sentencepiece');
  });

  it('gives SentencePiece tokens their spaces, byte tokens their byte', () => {
    const t = new TokenTexts(tok, 'sentencepiece');
    expect(t.text(id('▁Hello'))).toBe(' Hello');
    expect(t.bytes(id('▁Hello'))).toEqual([32, 72, 101, 108, 108, 111]);
    expect(t.text(id('▁€'))).toBe(' €');
    expect(t.bytes(id('▁€'))).toEqual([32, 0xe2, 0x82, 0xac]);
    expect(t.text(id('<0xE2>'))).toBe('bytes:\\xe2');
    expect(t.bytes(id('<0xE2>'))).toEqual([0xe2]);
    expect(t.text(id('<0x0A>'))).toBe('\n');
    expect(t.text(2)).toBe('</s>');
    expect(t.text(99_999)).toBe('');
    expect(t.bytes(99_999)).toEqual([]);
  });

  it('decodes byte-level (GPT-2 alphabet) tokens to their bytes', () => {
    const vocab = ['ĠHello', 'âĤ¬', 'âĤ', 'Ċ', '<|im_end|>', 'naïve▁'];
    const t = new TokenTexts({ idToToken: (i) => vocab[i] ?? null }, 'byte-level');
    expect([t.text(0), t.bytes(0)]).toEqual([' Hello', [32, 72, 101, 108, 108, 111]]);
    expect([t.text(1), t.bytes(1)]).toEqual(['€', [0xe2, 0x82, 0xac]]);
    expect([t.text(2), t.bytes(2)]).toEqual(['bytes:\\xe2\\x82', [0xe2, 0x82]]);
    expect(t.text(3)).toBe('\n');
    expect(t.text(4)).toBe('<|im_end|>');
    // A character outside the table: the token is plain text.
    expect([t.text(5), t.bytes(5)]).toEqual(['naïve▁', [...new TextEncoder().encode('naïve▁')]]);
  });
});

describe('logprobs builders', () => {
  const texts = new TokenTexts(tok, 'sentencepiece');
  const hello = id('▁Hello');
  const world = id('▁world');
  const emitted = [
    {
      id: hello,
      logprob: -0.5,
      top: [
        { id: hello, logprob: -0.5 },
        { id: world, logprob: -1.5 },
      ],
    },
    { id: world, logprob: -Infinity, top: [{ id: hello, logprob: -0.1 }] },
  ];

  it("builds chat logprobs.content in OpenAI's shape", () => {
    expect(chatLogprobContent(emitted, texts)).toEqual([
      {
        token: ' Hello',
        logprob: -0.5,
        bytes: [32, 72, 101, 108, 108, 111],
        top_logprobs: [
          { token: ' Hello', logprob: -0.5, bytes: [32, 72, 101, 108, 108, 111] },
          { token: ' world', logprob: -1.5, bytes: [32, 119, 111, 114, 108, 100] },
        ],
      },
      { token: ' world', logprob: -9999, bytes: [32, 119, 111, 114, 108, 100], top_logprobs: [{ token: ' Hello', logprob: -0.1, bytes: [32, 72, 101, 108, 108, 111] }] },
    ]);
    expect(Object.keys(chatLogprobContent(emitted, texts)[0]!)).toEqual(['token', 'logprob', 'bytes', 'top_logprobs']);
  });

  it('builds the legacy completions object, the chosen token always among top_logprobs', () => {
    expect(completionLogprobs(emitted, texts)).toEqual({
      tokens: [' Hello', ' world'],
      token_logprobs: [-0.5, -9999],
      top_logprobs: [
        { ' Hello': -0.5, ' world': -1.5 },
        { ' Hello': -0.1, ' world': -9999 },
      ],
      text_offset: [0, 6],
    });
    expect(completionLogprobs(emitted, texts, { startOffset: 10 }).text_offset).toEqual([10, 16]);
    expect(completionLogprobs(emitted, texts, { textOffsets: [0, 5] }).text_offset).toEqual([0, 5]);
    expect(() => completionLogprobs(emitted, texts, { textOffsets: [0] })).toThrow(RangeError);
    expect(completionLogprobs([], texts)).toEqual({ tokens: [], token_logprobs: [], top_logprobs: [], text_offset: [] });
  });

  it('writes -Infinity and NaN as -9999 (JSON has neither)', () => {
    expect([jsonLogprob(-Infinity), jsonLogprob(NaN), jsonLogprob(-3)]).toEqual([-9999, -9999, -3]);
    expect(JSON.parse(JSON.stringify(chatLogprobContent(emitted, texts)))[1].logprob).toBe(-9999);
  });
});
