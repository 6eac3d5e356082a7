// A GGUF file's tokenizer (`tokenizer.ggml.*`) as the tokenizer.json and tokenizer_config.json that
// webslo's TextTokenizer builds from, so a GGUF model encodes, decodes and applies its chat
// template as llama.cpp does on the same file (and as the model's HF folder does).
//
// Built: SentencePiece vocabularies (`tokenizer.ggml.model` 'llama': Llama-2, Mistral; gguf-spm.ts
// derives the BPE merges from the scores and says when they cannot equal llama.cpp's), and
// byte-level BPE ('gpt2') with a pre-tokenizer this file knows by its `tokenizer.ggml.pre` name:
// each regex is the one llama.cpp's llama-vocab.cpp applies for that name (its original form from
// the model's tokenizer.json where llama.cpp lists an adapted one). Anything else (other tokenizer
// models, other pre-tokenizers, an SPM file gguf-spm.ts refuses) gives null with the reason: the
// model still serves token-id prompts.
//
// Invariants: token ids are GGUF's array indices; control (3), user-defined (4) and, for SPM,
// unknown (2) tokens are added tokens, matched before BPE as llama.cpp's special-token partition
// does; every array is checked for its type and length against the token count; add_bos_token is
// what llama.cpp would do (the file's flag, else true for SPM and the Llama 3 names, else none).

import type { GgufValue } from './gguf.js';
import { GgufError } from './gguf.js';
import { spmTokenizerJson } from './gguf-spm.js';

// The GPT-2 regex, as HF's ByteLevel pre-tokenizer applies it (llama.cpp lists it without the final
// `|\\s+`; whitespace that no alternative takes is a piece of its own in both).
const GPT2_REGEX = "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+";
const QWEN2_REGEX = "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
const LLAMA3_REGEX = "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";

/**
 * Pre-tokenizers by `tokenizer.ggml.pre`: llama.cpp's regexes for the name, applied in turn (each
 * splits the pieces of the one before), the normalizer the model's tokenizer.json has, and what
 * llama.cpp sets with the name: `ignoreMerges` (a piece that is a token is that token, merges or
 * not: Llama 3's tokenizer.json says the same) and BOS added unless the file says otherwise.
 */
const LLAMA3 = { regexes: [LLAMA3_REGEX], normalizer: null, ignoreMerges: true, addBos: true };
const PRE_TOKENIZERS: Record<string, { regexes: string[]; normalizer: unknown; ignoreMerges?: boolean; addBos?: boolean; cleanSpaces?: false }> = {
  qwen2: { regexes: [QWEN2_REGEX], normalizer: { type: 'NFC' }, cleanSpaces: false },
  // DeepSeek-R1's Qwen distills: Qwen2's regex; no normalizer, as llama.cpp.
  'deepseek-r1-qwen': { regexes: [QWEN2_REGEX], normalizer: null, cleanSpaces: false },
  // Llama 3's, under the names llama.cpp gives it.
  'llama-bpe': LLAMA3,
  llama3: LLAMA3,
  'llama-v3': LLAMA3,
  // GPT-2's, and SmolLM's and StarCoder's (digits one by one, then GPT-2's).
  'gpt-2': { regexes: [GPT2_REGEX], normalizer: null },
  smollm: { regexes: ['\\p{N}', GPT2_REGEX], normalizer: null, cleanSpaces: false },
  starcoder: { regexes: ['\\p{N}', GPT2_REGEX], normalizer: null },
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
  if (model === 'llama') return spmTokenizer(meta, fileName);
  if (model !== 'gpt2') return { tokenizerJson: null, reason: `tokenizer.ggml.model '${String(model)}' is not built (known: 'llama', SentencePiece; 'gpt2', byte-level BPE)` };
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
    pre_tokenizer: { type: 'Sequence', pretokenizers: [...pre.regexes.map((r) => ({ type: 'Split', pattern: { Regex: r }, behavior: 'Isolated', invert: false })), byteLevel] },
    post_processor: byteLevel,
    decoder: byteLevel,
    model: {
      type: 'BPE',
      dropout: null,
      unk_token: null,
      continuing_subword_prefix: '',
      end_of_word_suffix: '',
      fuse_unk: false,
      byte_fallback: false,
      ignore_merges: pre.ignoreMerges ?? false,
      vocab,
      merges,
    },
  };
  const flags = pre.addBos ? { add_bos_token: true, add_eos_token: false } : null;
  return { tokenizerJson, tokenizerConfig: tokenizerConfig(meta, tokens, flags, pre.cleanSpaces ?? true) };
}

/**
 * tokenizer_config.json: BOS/EOS by id, the chat template, add_bos/eos_token (the file's, else
 * `defaults`), and whether decoding drops the space before punctuation and contractions (llama.cpp's
 * clean_spaces for the vocabulary: off for SPM and for Qwen2's and SmolLM's names, else on).
 */
function tokenizerConfig(meta: Map<string, GgufValue>, tokens: readonly string[], defaults: { add_bos_token: boolean; add_eos_token: boolean } | null, cleanSpaces: boolean): Record<string, unknown> {
  const special = (key: string): string | null => {
    const id = meta.get(key);
    return typeof id === 'number' && id >= 0 && id < tokens.length ? tokens[id]! : null;
  };
  const flag = (key: 'add_bos_token' | 'add_eos_token'): Record<string, boolean> => {
    const v = meta.get(`tokenizer.ggml.${key}`);
    return typeof v === 'boolean' ? { [key]: v } : defaults ? { [key]: defaults[key] } : {};
  };
  const template = meta.get('tokenizer.chat_template');
  return {
    bos_token: special('tokenizer.ggml.bos_token_id'),
    eos_token: special('tokenizer.ggml.eos_token_id'),
    ...(typeof template === 'string' ? { chat_template: template } : {}),
    ...flag('add_bos_token'),
    ...flag('add_eos_token'),
    clean_up_tokenization_spaces: cleanSpaces,
  };
}

/** A SentencePiece ('llama') vocabulary: tokens, scores and types, one per id (gguf-spm.ts builds it). */
function spmTokenizer(meta: Map<string, GgufValue>, fileName: string): GgufTokenizer {
  const tokens = strings(meta, 'tokenizer.ggml.tokens', fileName);
  const numbers = (key: string): number[] => {
    const v = meta.get(key);
    if (!Array.isArray(v) || v.length !== tokens.length || !v.every((x) => typeof x === 'number' && Number.isFinite(x))) {
      throw new GgufError(fileName, `${key} is not ${tokens.length} finite numbers (one per token)`);
    }
    return v as number[];
  };
  const scores = numbers('tokenizer.ggml.scores');
  const types = numbers('tokenizer.ggml.token_type');
  const prefix = meta.get('tokenizer.ggml.add_space_prefix');
  if (prefix !== undefined && typeof prefix !== 'boolean') throw new GgufError(fileName, `tokenizer.ggml.add_space_prefix is ${String(prefix)}; expected a boolean`);
  const built = spmTokenizerJson(tokens, scores, types, prefix ?? true);
  if ('reason' in built) return { tokenizerJson: null, reason: `SentencePiece vocabulary: ${built.reason}` };
  // llama.cpp's SPM defaults: BOS added, EOS not.
  return { tokenizerJson: built.tokenizerJson, tokenizerConfig: tokenizerConfig(meta, tokens, { add_bos_token: true, add_eos_token: false }, false) };
}
