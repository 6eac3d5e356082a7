import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { IncrementalDetokenizer } from '../../src/openai/index.js';
import { TextTokenizer } from '../../src/tokenizer/tokenizer.js';
import { rng } from '../helpers/random.js';

const read = (file: string): Record<string, unknown> => JSON.parse(readFileSync(new URL(`../fixtures/tiny-qwen2/${file}`, import.meta.url), 'utf8')) as Record<string, unknown>;
const tok = new TextTokenizer(read('tokenizer.json'), read('tokenizer_config.json'));
const VOCAB = 32000;
const id = (token: string): number => {
  const i = tok.tokenToId(token);
  if (i === null) throw new Error(`no token ${token}`);
  return i;
};

/** Push `ids` in random-sized groups; returns the deltas and the flushed rest. */
function stream(ids: readonly number[], r: () => number, options: ConstructorParameters<typeof IncrementalDetokenizer>[1] = {}): { deltas: string[]; rest: string } {
  const d = new IncrementalDetokenizer(tok, options);
  const deltas: string[] = [];
  for (let i = 0; i < ids.length;) {
    const n = 1 + Math.floor(r() * 3 * r());
    deltas.push(d.push(ids.slice(i, i + n)));
    i += n;
  }
  expect(d.outputIds).toEqual(ids);
  return { deltas, rest: d.flush() };
}

/** Random ids: anything in the vocabulary, with byte-fallback and special tokens over-represented. */
function randomIds(r: () => number, length: number): number[] {
  return Array.from({ length }, () => {
    const u = r();
    if (u < 0.25) return 3 + Math.floor(r() * 256); // <0x00>..<0xFF>
    if (u < 0.3) return Math.floor(r() * 3); // <unk> <s> </s>
    return Math.floor(r() * VOCAB);
  });
}

const POOL = ['€', '😀', '🦀', '𝄞', '🤖', 'ñ', '中', ' ', '  ', 'a', 'Hello', ' world', '\n', '.', 'é', '한'];
const randomText = (r: () => number, parts: number): string => Array.from({ length: parts }, () => POOL[Math.floor(r() * POOL.length)]!).join('');

describe('IncrementalDetokenizer on the tiny-qwen2 SentencePiece tokenizer', () => {
  it('emits words with their leading spaces, never the first one (as decode)', () => {
    const ids = tok.encode('Hello world, how are you?', { addSpecialTokens: false });
    const d = new IncrementalDetokenizer(tok);
    const deltas = ids.map((i) => d.push([i]));
    expect(deltas.join('') + d.flush()).toBe('Hello world, how are you?');
    expect(deltas.slice(0, 2)).toEqual(['Hello', ' world']);
  });

  it('holds byte-fallback tokens until the character is complete', () => {
    const euro = [id('<0xE2>'), id('<0x82>'), id('<0xAC>')];
    const d = new IncrementalDetokenizer(tok);
    expect(d.push([id('▁a')])).toBe('a');
    expect(d.push([euro[0]!])).toBe('');
    expect(d.push([euro[1]!])).toBe('');
    expect(d.push([euro[2]!])).toBe('€');
    expect(d.push([id('▁b')])).toBe(' b');
    expect(d.flush()).toBe('');

    const crab = tok.encode('🦀!', { addSpecialTokens: false });
    expect(crab.map((i) => tok.idToToken(i))).toEqual(['▁', '<0xF0>', '<0x9F>', '<0xA6>', '<0x80>', '!']);
    const c = new IncrementalDetokenizer(tok);
    expect(crab.map((i) => c.push([i]))).toEqual(['', '', '', '', '🦀', '!']);
  });

  it('gives up an incomplete character at flush as U+FFFD', () => {
    const d = new IncrementalDetokenizer(tok);
    expect(d.push([id('▁x'), id('<0xF0>'), id('<0x9F>')])).toBe('');
    expect(d.flush()).toBe('x\uFFFD');
    expect(d.flush()).toBe('');
    expect(() => d.push([5])).toThrow(/after flush/);
  });

  it('keeps the leading space of the first output token after a prompt', () => {
    const prompt = tok.encode('<s>[INST] hi [/INST]');
    const d = new IncrementalDetokenizer(tok, { promptIds: prompt });
    expect(d.push([id('▁Hello')])).toBe(' Hello');
    expect(d.push([id('▁there')])).toBe(' there');
    expect(d.outputIds).toEqual([id('▁Hello'), id('▁there')]);
  });

  it('skips special tokens by default, without losing the space after one', () => {
    const d = new IncrementalDetokenizer(tok);
    const ids = [id('▁Hi'), 2, id('▁there'), 1, 1, id('▁you')];
    const text = ids.map((i) => d.push([i])).join('') + d.flush();
    expect(text).toBe(tok.decode(ids, { skipSpecialTokens: true }));
    expect(text).toBe('Hi there you');
    // A skipped special token first: the strip falls on the next token, as in decode.
    const e = new IncrementalDetokenizer(tok);
    expect([e.push([2]), e.push([id('▁Hi')]), e.push([id('▁you')])]).toEqual(['', 'Hi', ' you']);
    const keep = new IncrementalDetokenizer(tok, { skipSpecialTokens: false });
    expect([keep.push([id('▁Hi')]), keep.push([2])].join('')).toBe('Hi</s>');
  });

  it('property: the deltas and flush concatenate to decode(ids), for random ids', () => {
    for (let seed = 1; seed <= 300; seed++) {
      const r = rng(seed);
      const ids = randomIds(r, 1 + Math.floor(r() * 40));
      for (const skipSpecialTokens of [true, false]) {
        const { deltas, rest } = stream(ids, r, { skipSpecialTokens });
        expect(deltas.join('') + rest, `seed ${seed} ids ${JSON.stringify(ids)}`).toBe(tok.decode(ids, { skipSpecialTokens }));
        // Nothing but flush may end in an incomplete character.
        for (const delta of deltas) expect(delta.endsWith('\uFFFD')).toBe(false);
      }
    }
  });

  it('property: valid text streams without any U+FFFD, whatever the grouping', () => {
    for (let seed = 1; seed <= 200; seed++) {
      const r = rng(1000 + seed);
      const text = randomText(r, 1 + Math.floor(r() * 12));
      const ids = tok.encode(text, { addSpecialTokens: false });
      const { deltas, rest } = stream(ids, r);
      expect(deltas.join('') + rest).toBe(tok.decode(ids));
      for (const delta of [...deltas, rest]) expect(delta).not.toContain('\uFFFD');
    }
  });

  it('property: after a prompt, the output text is what decode adds to the prompt', () => {
    for (let seed = 1; seed <= 100; seed++) {
      const r = rng(5000 + seed);
      const prompt = tok.encode(`[INST] ${randomText(r, 3)} [/INST]`);
      const out = tok.encode(randomText(r, 1 + Math.floor(r() * 8)), { addSpecialTokens: false });
      const { deltas, rest } = stream(out, r, { promptIds: prompt });
      const whole = tok.decode([...prompt, ...out], { skipSpecialTokens: true });
      const before = tok.decode(prompt, { skipSpecialTokens: true });
      expect(deltas.join('') + rest, `seed ${seed}`).toBe(whole.slice(before.length));
    }
  });

  it('keeps an older window start when the new one would decode to nothing (a decoder that trims all leading spaces)', () => {
    const pieces = ['a', ' ', ' b', ' c'];
    const trimming = {
      decode: (ids: readonly number[]): string =>
        ids
          .map((i) => pieces[i])
          .join('')
          .trimStart(),
    };
    const d = new IncrementalDetokenizer(trimming);
    const deltas = [0, 1, 2, 3].map((i) => d.push([i]));
    expect(deltas.join('') + d.flush()).toBe(trimming.decode([0, 1, 2, 3]));
    expect(deltas).toEqual(['a', ' ', ' b', ' c']);
  });

  it('decodes a bounded window: the work per token does not grow with the output', () => {
    const lengths: number[] = [];
    const counting = { decode: (ids: readonly number[], o?: { skipSpecialTokens?: boolean }): string => (lengths.push(ids.length), tok.decode(ids, o)) };
    const d = new IncrementalDetokenizer(counting);
    const ids = tok.encode('word '.repeat(200), { addSpecialTokens: false });
    for (const i of ids) d.push([i]);
    expect(Math.max(...lengths)).toBeLessThanOrEqual(3);
  });
});
