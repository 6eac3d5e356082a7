// A GGUF file's tokenizer (`tokenizer.ggml.*`) as the tokenizer.json and tokenizer_config.json that
// webslo's TextTokenizer builds from, so a GGUF model encodes, decodes and applies its chat
// template exactly as the same model's HF folder does.
//
// Built today: byte-level BPE (`tokenizer.ggml.model` 'gpt2') with a pre-tokenizer this file knows
// by its `tokenizer.ggml.pre` name (Qwen2's, checked token for token against Qwen2.5's own
// tokenizer.json). Anything else (SentencePiece 'llama' vocabularies, other pre-tokenizers) gives
// null with the reason: the model still serves token-id prompts.
//
// Invariants: token ids are GGUF's array indices; control tokens (type 3) and user-defined ones
// (type 4) are added tokens, matched before BPE as HF's tokenizers do; every array is checked for
// its type and length against the token count.

import type { GgufValue } from './gguf.js';
import { GgufError } from './gguf.js';

/** Pre-tokenizer regexes by `tokenizer.ggml.pre`, with the normalizer the model's tokenizer.json has. */
const PRE_TOKENIZERS: Record<string, { regex: string; normalizer: unknown }> = {
  qwen2: {
    regex: "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+",
    normalizer: { type: 'NFC' },
  },
};

export type GgufTokenizer = { tokenizerJson: unknown; tokenizerConfig: Record<string, unknown> } | { tokenizerJson: null; reason: string };

function strings(meta: Map<string, GgufValue>, key: string, fileName: string): string[] {
  const v = meta.get(key);
  if (!Array.isArray(v) || !v.every((x) => typeof x === 'string')) throw new GgufError(fileName, `${key} is not an array of strings`);
  return v as string[];
}

/** The tokenizer files of a GGUF file's metadata, or null and why not. */
export function ggufTokenizer(meta: Map<string, GgufValue>, fileName: string): GgufTokenizer {
  const model = meta.get('tokenizer.ggml.model');
  if (model === undefined) return { tokenizerJson: null, reason: 'the file has no tokenizer (tokenizer.ggml.model)' };
  if (model !== 'gpt2') return { tokenizerJson: null, reason: `tokenizer.ggml.model '${String(model)}' is not built yet (only 'gpt2', byte-level BPE)` };
  const preName = meta.get('tokenizer.ggml.pre');
  const pre = typeof preName === 'string' ? PRE_TOKENIZERS[preName] : undefined;
  if (!pre) return { tokenizerJson: null, reason: `tokenizer.ggml.pre '${String(preName)}' is not known (known: ${Object.keys(PRE_TOKENIZERS).join(', ')})` };
  const tokens = strings(meta, 'tokenizer.ggml.tokens', fileName);
  const merges = strings(meta, 'tokenizer.ggml.merges', fileName);
  const types = meta.get('tokenizer.ggml.token_type');
  if (!Array.isArray(types) || types.length !== tokens.length || !types.every((t) => typeof t === 'number')) {
    throw new GgufError(fileName, `tokenizer.ggml.token_type is not ${tokens.length} integers (one per token)`);
  }
  const vocab: Record<string, number> = {};
  const added: Record<string, unknown>[] = [];
  tokens.forEach((content, id) => {
    const type = types[id] as number;
    if (type === 3 || type === 4) added.push({ id, content, single_word: false, lstrip: false, rstrip: false, normalized: false, special: type === 3 });
    else if (!(content in vocab)) vocab[content] = id;
  });
  const byteLevel = { type: 'ByteLevel', add_prefix_space: false, trim_offsets: false, use_regex: false };
  const tokenizerJson = {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: added,
    normalizer: pre.normalizer,
    pre_tokenizer: { type: 'Sequence', pretokenizers: [{ type: 'Split', pattern: { Regex: pre.regex }, behavior: 'Isolated', invert: false }, byteLevel] },
    post_processor: byteLevel,
    decoder: byteLevel,
    model: { type: 'BPE', dropout: null, unk_token: null, continuing_subword_prefix: '', end_of_word_suffix: '', fuse_unk: false, byte_fallback: false, vocab, merges },
  };
  const special = (key: string): string | null => {
    const id = meta.get(key);
    return typeof id === 'number' && id >= 0 && id < tokens.length ? tokens[id]! : null;
  };
  const template = meta.get('tokenizer.chat_template');
  const tokenizerConfig: Record<string, unknown> = {
    bos_token: special('tokenizer.ggml.bos_token_id'),
    eos_token: special('tokenizer.ggml.eos_token_id'),
    ...(typeof template === 'string' ? { chat_template: template } : {}),
    ...(typeof meta.get('tokenizer.ggml.add_bos_token') === 'boolean' ? { add_bos_token: meta.get('tokenizer.ggml.add_bos_token') } : {}),
  };
  return { tokenizerJson, tokenizerConfig };
}
