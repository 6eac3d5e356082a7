// Log-probabilities in OpenAI's two shapes. logSoftmaxTop computes one token's logprob and the top
// alternatives from a logits row (float64, max-subtracted log-sum-exp); TokenTexts turns ids into
// the token text and UTF-8 bytes OpenAI reports; the builders make chat `logprobs.content` entries
// and the legacy completions object. Which row to pass is the caller's choice: the raw logits give
// the model's own distribution (what vLLM reports by default), not the temperature-warped one.
//
// JSON has no -Infinity: a logprob that is -Infinity is reported as -9999, as OpenAI and vLLM do.

import type { ChatCompletionTokenLogprob, CompletionLogprobs, TopLogprob } from './types.js';
import type { TokenLogprob } from '../engine/logprobs.js';

// The math lives with the engine core (it computes logprobs where the logits are).
export { logSoftmaxTop, type TokenLogprob } from '../engine/logprobs.js';

/** A logprob as JSON can carry it. */
export const jsonLogprob = (x: number): number => (x === -Infinity || Number.isNaN(x) ? -9999 : x);

/** How a vocabulary writes token strings. */
export type TokenEncoding = 'sentencepiece' | 'byte-level';

/** byte-level (GPT-2 / Llama 3 / Qwen) when tokenizer.json's decoder (or one in a Sequence) is ByteLevel. */
export function detectTokenEncoding(tokenizerJson: unknown): TokenEncoding {
  const isByteLevel = (d: unknown): boolean => {
    if (typeof d !== 'object' || d === null) return false;
    const o = d as Record<string, unknown>;
    if (o['type'] === 'ByteLevel') return true;
    return o['type'] === 'Sequence' && Array.isArray(o['decoders']) && o['decoders'].some(isByteLevel);
  };
  const decoder = typeof tokenizerJson === 'object' && tokenizerJson !== null ? (tokenizerJson as Record<string, unknown>)['decoder'] : null;
  return isByteLevel(decoder) ? 'byte-level' : 'sentencepiece';
}

/** GPT-2's byte -> printable character table, inverted (character -> byte). */
const BYTE_LEVEL_DECODE: ReadonlyMap<string, number> = (() => {
  const printable: number[] = [];
  for (let b = 0x21; b <= 0x7e; b++) printable.push(b);
  for (let b = 0xa1; b <= 0xac; b++) printable.push(b);
  for (let b = 0xae; b <= 0xff; b++) printable.push(b);
  const m = new Map<string, number>();
  for (const b of printable) m.set(String.fromCharCode(b), b);
  let extra = 0;
  for (let b = 0; b < 256; b++) if (!printable.includes(b)) m.set(String.fromCharCode(256 + extra++), b);
  return m;
})();

const BYTE_TOKEN = /^<0x([0-9A-Fa-f]{2})>$/;
const utf8 = new TextEncoder();
const strictUtf8 = new TextDecoder('utf-8', { fatal: true });

/** What TokenTexts needs of a tokenizer (TextTokenizer has it). */
export interface TokenVocab {
  idToToken(id: number): string | null;
}

/**
 * Token ids -> the text and UTF-8 bytes OpenAI reports per token: ' Hello' for SentencePiece's
 * '▁Hello' and byte-level's 'ĠHello', the single byte for '<0xE2>'. A token that is not valid UTF-8
 * on its own (part of a character) is written `bytes:\xe2\x82`, as OpenAI's legacy API does.
 */
export class TokenTexts {
  private readonly cache = new Map<number, { text: string; bytes: number[] }>();

  constructor(
    private readonly vocab: TokenVocab,
    private readonly encoding: TokenEncoding,
  ) {}

  bytes(id: number): number[] {
    return this.entry(id).bytes;
  }

  text(id: number): string {
    return this.entry(id).text;
  }

  private entry(id: number): { text: string; bytes: number[] } {
    const hit = this.cache.get(id);
    if (hit) return hit;
    const token = this.vocab.idToToken(id);
    const bytes = token === null ? [] : this.tokenBytes(token);
    let text: string;
    try {
      text = strictUtf8.decode(new Uint8Array(bytes));
    } catch {
      text = `bytes:${bytes.map((b) => `\\x${b.toString(16).padStart(2, '0')}`).join('')}`;
    }
    const e = { text: token === null ? '' : text, bytes };
    this.cache.set(id, e);
    return e;
  }

  private tokenBytes(token: string): number[] {
    const byte = BYTE_TOKEN.exec(token);
    if (byte) return [parseInt(byte[1]!, 16)];
    if (this.encoding === 'sentencepiece') return [...utf8.encode(token.replaceAll('\u2581', ' '))];
    // Byte-level: every character stands for one byte; added tokens (<|im_end|>) written with
    // characters outside the table are plain text.
    const out: number[] = [];
    for (const ch of token) {
      const b = BYTE_LEVEL_DECODE.get(ch);
      if (b === undefined) return [...utf8.encode(token)];
      out.push(b);
    }
    return out;
  }
}

/** One emitted token: its id and logprobs (as logSoftmaxTop returns them). */
export interface EmittedLogprob extends TokenLogprob {
  id: number;
}

function topEntry(texts: TokenTexts, id: number, logprob: number): TopLogprob {
  return { token: texts.text(id), logprob: jsonLogprob(logprob), bytes: texts.bytes(id) };
}

/** Chat `choices[].logprobs.content` entries, one per token. */
export function chatLogprobContent(tokens: readonly EmittedLogprob[], texts: TokenTexts): ChatCompletionTokenLogprob[] {
  return tokens.map((t) => ({
    ...topEntry(texts, t.id, t.logprob),
    top_logprobs: t.top.map((a) => topEntry(texts, a.id, a.logprob)),
  }));
}

export interface CompletionLogprobsOptions {
  /** Character offset of each token in the output text (e.g. from the detokenizer's deltas). */
  textOffsets?: readonly number[];
  /** Without textOffsets: where the first token starts (running sum of token text lengths after). */
  startOffset?: number;
}

/**
 * The legacy completions logprobs object. Its top_logprobs hold the top alternatives and, always,
 * the chosen token (so up to N + 1 entries, as OpenAI documents); tokens with equal text collapse.
 */
export function completionLogprobs(tokens: readonly EmittedLogprob[], texts: TokenTexts, options: CompletionLogprobsOptions = {}): CompletionLogprobs {
  if (options.textOffsets && options.textOffsets.length !== tokens.length) {
    throw new RangeError(`completionLogprobs: ${options.textOffsets.length} text offsets for ${tokens.length} tokens`);
  }
  const offsets: number[] = [];
  let at = options.startOffset ?? 0;
  for (let i = 0; i < tokens.length; i++) {
    offsets.push(options.textOffsets?.[i] ?? at);
    at += texts.text(tokens[i]!.id).length;
  }
  return {
    tokens: tokens.map((t) => texts.text(t.id)),
    token_logprobs: tokens.map((t) => jsonLogprob(t.logprob)),
    top_logprobs: tokens.map((t) => {
      const d: Record<string, number> = {};
      for (const a of t.top) {
        const key = texts.text(a.id);
        if (!Object.hasOwn(d, key)) d[key] = jsonLogprob(a.logprob);
      }
      const chosen = texts.text(t.id);
      if (!Object.hasOwn(d, chosen)) d[chosen] = jsonLogprob(t.logprob);
      return d;
    }),
    text_offset: offsets,
  };
}
