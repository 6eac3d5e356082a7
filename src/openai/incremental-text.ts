// Streaming detokenization: token ids arrive a few at a time, text deltas leave. Decoding each new
// token alone is wrong for SentencePiece vocabularies (the decoder strips the leading space of the
// first token of whatever it decodes, and byte-fallback tokens such as <0xE2> <0x82> <0xAC> only
// form a character together), and re-decoding everything each step is quadratic. So, as HF TGI and
// vLLM do, decode a short window: ids[prefixOffset:] against ids[prefixOffset:readOffset], and emit
// the difference. The window keeps at least one token of context before the new ones, so the
// start-of-text strip falls on text already emitted.
//
// Two guards make the concatenated deltas equal decode(all ids):
// - text ending in U+FFFD (an incomplete byte sequence) is held until a later token completes it;
//   flush() gives it up as it decodes (a truly invalid sequence stays U+FFFD);
// - the context must decode to non-empty text, else the window keeps its older start: a decoder
//   that trims all leading whitespace would otherwise eat the space of the next token. (SentencePiece's
//   Strip removes one space, which the context token itself absorbs; a skipped special token never
//   starts a window alone, since it brings no text and so no advance.)

/** What the detokenizer needs of a tokenizer (TextTokenizer has it). */
export interface TokenDecoder {
  decode(ids: readonly number[], opts?: { skipSpecialTokens?: boolean }): string;
}

export interface IncrementalDetokenizerOptions {
  /**
   * Ids before the output (the prompt): context only, never emitted. With them the first output
   * token keeps its leading space, as it has after the prompt. Only the last few are used.
   */
  promptIds?: readonly number[];
  /** Drop special tokens (EOS, ...) from the text (default true, as vLLM). */
  skipSpecialTokens?: boolean;
}

/** Prompt tokens used as context (vLLM uses 5: enough to cover a byte sequence or a strip). */
const PROMPT_CONTEXT = 5;
const REPLACEMENT = '\uFFFD';

export class IncrementalDetokenizer {
  /** The prompt context, then the output. */
  private readonly ids: number[];
  private readonly contextLength: number;
  private readonly skip: boolean;
  /** Start of the decoded window. */
  private prefixOffset: number;
  /** End of what has been emitted: ids[prefixOffset:readOffset] decode to `prefixText`. */
  private readOffset: number;
  private prefixText: string;
  private flushed = false;

  constructor(
    private readonly tokenizer: TokenDecoder,
    options: IncrementalDetokenizerOptions = {},
  ) {
    this.skip = options.skipSpecialTokens ?? true;
    this.ids = (options.promptIds ?? []).slice(-PROMPT_CONTEXT);
    this.contextLength = this.ids.length;
    this.prefixOffset = 0;
    this.readOffset = this.ids.length;
    this.prefixText = this.decodeFrom(0, this.readOffset);
  }

  /** All ids pushed so far (without the prompt context). */
  get outputIds(): number[] {
    return this.ids.slice(this.contextLength);
  }

  private decodeFrom(start: number, end = this.ids.length): string {
    return this.tokenizer.decode(this.ids.slice(start, end), { skipSpecialTokens: this.skip });
  }

  /** Append tokens; returns the text they complete (possibly ''). */
  push(tokenIds: readonly number[]): string {
    if (this.flushed) throw new Error('IncrementalDetokenizer: push after flush');
    if (tokenIds.length === 0) return '';
    this.ids.push(...tokenIds);
    const text = this.decodeFrom(this.prefixOffset);
    // Nothing new (a skipped special token), or an incomplete character at the end: hold.
    if (text.length <= this.prefixText.length || text.endsWith(REPLACEMENT)) return '';
    const delta = text.slice(this.prefixText.length);
    this.advance(text);
    return delta;
  }

  /** Everything emitted so far is up to ids.length: move the window to start at the old read offset. */
  private advance(windowText: string): void {
    const start = this.readOffset;
    const tail = this.decodeFrom(start);
    if (tail !== '') {
      this.prefixOffset = start;
      this.prefixText = tail;
    } else {
      this.prefixText = windowText;
    }
    this.readOffset = this.ids.length;
  }

  /** End of output: the held text, as it decodes. push() may not be called after. */
  flush(): string {
    if (this.flushed) return '';
    this.flushed = true;
    if (this.readOffset === this.ids.length) return '';
    const text = this.decodeFrom(this.prefixOffset);
    return text.length > this.prefixText.length ? text.slice(this.prefixText.length) : '';
  }
}
