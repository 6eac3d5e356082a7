import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { TokenizerError } from '../../src/model/errors.js';
import { loadModelFiles, type ModelMetadata } from '../../src/model/load.js';
import type { ModelSource } from '../../src/model/source.js';
import { TextTokenizer } from '../../src/tokenizer/tokenizer.js';

const read = (file: string): Record<string, unknown> => JSON.parse(readFileSync(new URL(`../fixtures/tiny-qwen2/${file}`, import.meta.url), 'utf8')) as Record<string, unknown>;
const tokenizerJson = read('tokenizer.json');
const tokenizerConfig = read('tokenizer_config.json');
const tok = new TextTokenizer(tokenizerJson, tokenizerConfig);

describe('TextTokenizer on the tiny-qwen2 (Llama-2/Mistral vocabulary) tokenizer', () => {
  it('knows BOS and EOS from tokenizer_config.json', () => {
    expect(tok.bosTokenId).toBe(1);
    expect(tok.eosTokenIds).toEqual([2]);
    expect([tok.addBos, tok.addEos]).toEqual([true, false]);
    expect(tok.idToToken(1)).toBe('<s>');
    expect(tok.tokenToId('</s>')).toBe(2);
    expect(tok.idToToken(99999)).toBeNull();
  });

  it('encodes with one BOS when asked, none otherwise', () => {
    expect(tok.encode('Hello world')).toEqual([1, 22557, 1526]);
    expect(tok.encode('Hello world', { addSpecialTokens: false })).toEqual([22557, 1526]);
    expect(tok.encode('')).toEqual([1]);
    expect(tok.encode('', { addSpecialTokens: false })).toEqual([]);
  });

  it('does not add a second BOS to text that already starts with one (rendered chat templates)', () => {
    const prompt = '<s>[INST] hi [/INST]';
    const ids = tok.encode(prompt);
    expect(ids.filter((id) => id === 1)).toHaveLength(1);
    expect(ids).toEqual(tok.encode(prompt, { addSpecialTokens: false }));
    expect(ids[0]).toBe(1);
    // Special-token text in the middle is one token, not characters.
    expect(tok.encode('a</s>b', { addSpecialTokens: false })).toContain(2);
  });

  it('honours add_bos_token: false and add_eos_token: true', () => {
    const noBos = new TextTokenizer(tokenizerJson, { ...tokenizerConfig, add_bos_token: false });
    expect(noBos.encode('Hello world')).toEqual([22557, 1526]);
    const withEos = new TextTokenizer(tokenizerJson, { ...tokenizerConfig, add_eos_token: true });
    expect(withEos.encode('Hello world')).toEqual([1, 22557, 1526, 2]);
  });

  it("infers BOS from tokenizer.json's post-processor when the config has no add_bos_token", () => {
    const config = { ...tokenizerConfig };
    delete config['add_bos_token'];
    delete config['add_eos_token'];
    expect(new TextTokenizer(tokenizerJson, config).encode('Hello')).toEqual([1, 22557]);
    const noTemplate = new TextTokenizer({ ...tokenizerJson, post_processor: null }, config);
    expect(noTemplate.encode('Hello')).toEqual([22557]);
    expect(noTemplate.bosTokenId).toBe(1);
  });

  it('round-trips text, including bytes through byte fallback', () => {
    for (const text of ['Hello world', 'héllo 😀 日本', 'a\nb\tc', '  two leading spaces', 'x = [1, 2];']) {
      expect(tok.decode(tok.encode(text, { addSpecialTokens: false }))).toBe(text);
      expect(tok.decode(tok.encode(text), { skipSpecialTokens: true })).toBe(text);
    }
    expect(tok.decode([1, 22557, 2])).toBe('<s> Hello</s>');
    expect(tok.decode([])).toBe('');
  });

  it('exposes the chat template', () => {
    expect(tok.chatTemplate).toContain('[INST]');
    expect(new TextTokenizer(tokenizerJson, null).chatTemplate).toBeNull();
    const named = new TextTokenizer(tokenizerJson, {
      ...tokenizerConfig,
      chat_template: [
        { name: 'default', template: 'T' },
        { name: 'tool_use', template: 'U' },
      ],
    });
    expect(named.chatTemplate).toBe('T');
  });

  it('works without tokenizer_config.json (no BOS/EOS known)', () => {
    const bare = new TextTokenizer(tokenizerJson, null);
    expect(bare.bosTokenId).toBeNull();
    expect(bare.eosTokenIds).toEqual([]);
    expect(bare.encode('Hello')).toEqual([22557]);
    expect(new TextTokenizer(tokenizerJson, null, [2, 7]).eosTokenIds).toEqual([2, 7]);
  });

  it('refuses what is not a tokenizer with TokenizerError', () => {
    expect(() => new TextTokenizer({}, null)).toThrow(TokenizerError);
    expect(() => new TextTokenizer(null, null)).toThrow(TokenizerError);
    expect(() => new TextTokenizer(tokenizerJson, [1])).toThrow(TokenizerError);
    expect(() => new TextTokenizer(tokenizerJson, { ...tokenizerConfig, bos_token: '<nope>' })).toThrow(/not in the vocabulary/);
    expect(() => new TextTokenizer({ model: { type: 'Nonsense' } }, null)).toThrow(TokenizerError);
  });

  it('a chat_template that is not a template is a TokenizerError saying what it is', () => {
    // Once: chat_template 5 was reported as "has no chat_template", at the first chat request.
    expect(() => new TextTokenizer(tokenizerJson, { ...tokenizerConfig, chat_template: 5 })).toThrow(/chat_template is 5; expected a template string or a list of \{ name, template \}/);
    expect(() => new TextTokenizer(tokenizerJson, { ...tokenizerConfig, chat_template: [{ name: 'default' }] })).toThrow(TokenizerError);
    expect(new TextTokenizer(tokenizerJson, { ...tokenizerConfig, chat_template: [{ name: 'default', template: 'x' }] }).chatTemplate).toBe('x');
  });

  it('a broken tokenizer is found before any weight file is read', async () => {
    // Once: only after the weights were uploaded (minutes on a real model).
    const dir = new URL('../fixtures/tiny-qwen2/', import.meta.url);
    const reads: string[] = [];
    const source: ModelSource = {
      describe: () => 'tiny-qwen2 (tokenizer broken)',
      read: async (file) => {
        reads.push(file);
        if (file === 'tokenizer.json') return new TextEncoder().encode('{"model": {"type": "Nonsense"}}');
        try {
          return new Uint8Array(readFileSync(new URL(file, dir)));
        } catch {
          return null;
        }
      },
    };
    const beforeWeights = (m: ModelMetadata): void => void new TextTokenizer(m.tokenizerJson, m.tokenizerConfig);
    await expect(loadModelFiles(source, { beforeWeights })).rejects.toThrow(TokenizerError);
    expect(reads.filter((f) => f.endsWith('.safetensors') || f.endsWith('.index.json'))).toEqual([]);
  });

  it('encodeWithin refuses a text far over the limit from a prefix, and is encode() otherwise', () => {
    // Once: a 1 MB prompt against a 4k context was tokenized whole (11.9 s of the step loop) before
    // its PromptTooLongError.
    const huge = 'the quick brown fox jumps over the lazy dog. '.repeat(25_000);
    const r = tok.encodeWithin(huge, 4096);
    expect('atLeast' in r && r.atLeast > 4096).toBe(true);
    const short = 'Hello, world: a short prompt.';
    expect(tok.encodeWithin(short, 4096)).toEqual({ ids: tok.encode(short) });
    // Longer than the prefix (8 characters a token) but within the limit in tokens (a run of spaces,
    // 38 tokens for 576 characters): counted whole.
    const sparse = ' '.repeat(576);
    expect(tok.encode(sparse).length).toBeLessThan(64);
    expect(tok.encodeWithin(sparse, 64)).toEqual({ ids: tok.encode(sparse) });
  });

  it('accepts special tokens written as AddedToken objects', () => {
    const t = new TextTokenizer(tokenizerJson, { ...tokenizerConfig, bos_token: { content: '<s>', __type: 'AddedToken' }, eos_token: { content: '</s>' } });
    expect([t.bosTokenId, t.eosTokenIds]).toEqual([1, [2]]);
  });
});
