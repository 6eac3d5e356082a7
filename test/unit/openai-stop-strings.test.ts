import { describe, expect, it } from 'vitest';
import { StopMatcher } from '../../src/openai/index.js';
import { rng } from '../helpers/random.js';

/** Feed `parts` and return everything emitted, whether it stopped, and on which stop. */
function run(stops: string[], parts: string[]): { text: string; stopped: boolean; stop: string | null } {
  const m = new StopMatcher(stops);
  let text = '';
  for (const p of parts) {
    const r = m.push(p);
    text += r.text;
    if (r.stopped) return { text, stopped: true, stop: r.stop ?? null };
  }
  return { text: text + m.flush(), stopped: false, stop: null };
}

/** The reference: generate one character at a time and stop as soon as the text ends with a stop string. */
function expected(stops: string[], text: string): { text: string; stopped: boolean } {
  for (let end = 1; end <= text.length; end++) {
    const seen = text.slice(0, end);
    // At a tie, the longest stop (starting first) leaves the least text.
    const hit = stops.filter((s) => seen.endsWith(s)).sort((a, b) => b.length - a.length)[0];
    if (hit !== undefined) return { text: seen.slice(0, end - hit.length), stopped: true };
  }
  return { text, stopped: false };
}

describe('StopMatcher', () => {
  it('passes text through without stop strings', () => {
    const m = new StopMatcher([]);
    expect(m.push('abc')).toEqual({ text: 'abc', stopped: false });
    expect(m.flush()).toBe('');
  });

  it('holds back what could start a stop string and releases it when it cannot', () => {
    const m = new StopMatcher(['END']);
    expect(m.push('hello E')).toEqual({ text: 'hello ', stopped: false });
    expect(m.push('N')).toEqual({ text: '', stopped: false });
    expect(m.push('x')).toEqual({ text: 'ENx', stopped: false });
    expect(m.push('E')).toEqual({ text: '', stopped: false });
    expect(m.flush()).toBe('E');
    expect(m.stopped).toBe(false);
  });

  it('stops on a stop string split across deltas and never emits it', () => {
    const m = new StopMatcher(['\n\nUser:']);
    expect(m.push('Sure.\n')).toEqual({ text: 'Sure.', stopped: false });
    expect(m.push('\nUs')).toEqual({ text: '', stopped: false });
    expect(m.push('er: more')).toEqual({ text: '', stopped: true, stop: '\n\nUser:' });
    expect(m.stopped).toBe(true);
    expect(m.stop).toBe('\n\nUser:');
    // Stopped stays stopped.
    expect(m.push('anything')).toEqual({ text: '', stopped: true, stop: '\n\nUser:' });
    expect(m.flush()).toBe('');
  });

  it('emits the text before a stop inside one delta', () => {
    expect(new StopMatcher(['###']).push('abc###def')).toEqual({ text: 'abc', stopped: true, stop: '###' });
  });

  it('takes the stop string that ends first, and the one starting first at a tie, however the text is split', () => {
    for (const parts of [['hello world'], ['hel', 'lo', ' wor', 'ld']]) {
      expect(run(['world', 'lo w'], parts)).toEqual({ text: 'hel', stopped: true, stop: 'lo w' });
    }
    for (const parts of [['xabcd'], ['x', 'a', 'b', 'c', 'd']]) {
      expect(run(['abc', 'ab'], parts)).toEqual({ text: 'x', stopped: true, stop: 'ab' });
      expect(run(['bc', 'abc'], parts)).toEqual({ text: 'x', stopped: true, stop: 'abc' });
    }
    // A longer stop that starts earlier but would end later never completes: generation stopped.
    expect(run(['abcd', 'bc'], ['abcd'])).toEqual({ text: 'a', stopped: true, stop: 'bc' });
    expect(run(['abcd', 'bc'], ['a', 'b', 'c', 'd'])).toEqual({ text: 'a', stopped: true, stop: 'bc' });
  });

  it('handles stop strings that overlap themselves', () => {
    expect(run(['aab'], ['a', 'a', 'a', 'b'])).toEqual({ text: 'a', stopped: true, stop: 'aab' });
    expect(run(['abab'], ['aba', 'bab'])).toEqual({ text: '', stopped: true, stop: 'abab' });
  });

  it('handles non-ASCII stop strings', () => {
    expect(run(['😀'], ['x', '\uD83D', '\uDE00y'])).toEqual({ text: 'x', stopped: true, stop: '😀' });
    expect(run(['€€'], ['a€', '€b'])).toEqual({ text: 'a', stopped: true, stop: '€€' });
  });

  it('rejects an empty stop string', () => {
    expect(() => new StopMatcher(['ok', ''])).toThrow(RangeError);
  });

  it('property: for random texts, stops and splits, the output is the text up to the first stop', () => {
    const alphabet = 'ab c\n€';
    for (let seed = 1; seed <= 2000; seed++) {
      const r = rng(seed);
      const pick = (n: number): string => Array.from({ length: n }, () => alphabet[Math.floor(r() * alphabet.length)]!).join('');
      const stops = Array.from({ length: Math.floor(r() * 4) }, () => pick(1 + Math.floor(r() * 4)));
      const text = pick(Math.floor(r() * 40));
      const parts: string[] = [];
      for (let i = 0; i < text.length;) {
        const n = Math.floor(r() * 6); // empty deltas too
        parts.push(text.slice(i, i + n));
        i += n;
      }
      const got = run(stops, parts);
      const want = expected(stops, text);
      expect({ text: got.text, stopped: got.stopped }, `seed ${seed}: ${JSON.stringify({ stops, parts })}`).toEqual(want);
      if (got.stopped) expect(text.indexOf(got.stop!)).toBe(want.text.length);
    }
  });

  it('property: text that cannot start a stop string is emitted at once', () => {
    for (let seed = 1; seed <= 200; seed++) {
      const r = rng(10_000 + seed);
      const m = new StopMatcher(['STOP']);
      const chunk = Array.from({ length: 1 + Math.floor(r() * 8) }, () => 'abc xyz'[Math.floor(r() * 7)]!).join('');
      expect(m.push(chunk)).toEqual({ text: chunk, stopped: false });
    }
  });
});
