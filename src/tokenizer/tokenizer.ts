// Text <-> token ids through @huggingface/tokenizers, built from a model folder's tokenizer.json and
// tokenizer_config.json. The wrapper owns the BOS/EOS policy: the library's post-processor always
// applies tokenizer.json's template and ignores tokenizer_config's add_bos_token, so encoding here
// runs the library without special tokens and adds them itself, exactly once.

import { Tokenizer } from '@huggingface/tokenizers';
import { TokenizerError } from '../model/errors.js';
import { describeValue } from '../model/describe.js';

export interface EncodeOptions {
  /** Add BOS/EOS as the tokenizer config asks (default true). Chat-template output already has them. */
  addSpecialTokens?: boolean;
}

export interface DecodeOptions {
  /** Drop special tokens (BOS, EOS, ...) from the text (default false). */
  skipSpecialTokens?: boolean;
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** tokenizer_config writes special tokens as a string or as an AddedToken object `{content: ...}`. */
function tokenContent(v: unknown): string | null {
  if (typeof v === 'string') return v;
  if (isObject(v) && typeof v['content'] === 'string') return v['content'];
  return null;
}

/** Characters of a text tokenized to judge whether it is over a token limit (see encodeWithin). */
export const PREFIX_CHARS_PER_TOKEN = 8;
const CUT_MARGIN_TOKENS = 16;

export class TextTokenizer {
  readonly bosTokenId: number | null;
  readonly eosTokenIds: number[];
  /** Whether encode(…, {addSpecialTokens: true}) prepends BOS / appends EOS. */
  readonly addBos: boolean;
  readonly addEos: boolean;
  /** The raw tokenizer_config.json (chat_template lives there), or {} when there was none. */
  readonly config: Readonly<Record<string, unknown>>;
  private readonly tokenizer: Tokenizer;
  /** tokenizer_config's eos_token: the one EOS that add_eos_token appends. */
  private readonly eosForAppend: number | null;

  /**
   * @param extraEosTokenIds ids that also end generation (config.json / generation_config.json
   *   eos_token_id lists, e.g. Llama 3 instruct's <|eot_id|>), merged after the tokenizer's own EOS.
   */
  constructor(tokenizerJson: unknown, tokenizerConfig: unknown | null, extraEosTokenIds: readonly number[] = []) {
    if (!isObject(tokenizerJson) || !isObject(tokenizerJson['model'])) {
      throw new TokenizerError("tokenizer.json is not a tokenizer (no 'model' object)");
    }
    if (tokenizerConfig !== null && !isObject(tokenizerConfig)) {
      throw new TokenizerError('tokenizer_config.json is not a JSON object');
    }
    this.config = tokenizerConfig ?? {};
    const template = this.config['chat_template'];
    if (
      template !== undefined &&
      template !== null &&
      typeof template !== 'string' &&
      !(Array.isArray(template) && template.every((e) => isObject(e) && typeof e['name'] === 'string' && typeof e['template'] === 'string'))
    ) {
      const shown = describeValue(template);
      throw new TokenizerError(
        `tokenizer_config.json chat_template is ${Array.isArray(template) ? 'a list with an entry that is not { name, template }' : shown}; expected a template string or a list of { name, template }`,
      );
    }
    try {
      this.tokenizer = new Tokenizer(tokenizerJson, this.config);
    } catch (e) {
      throw new TokenizerError(`cannot build the tokenizer from tokenizer.json: ${e instanceof Error ? e.message : String(e)}`);
    }

    this.bosTokenId = this.specialId('bos_token');
    const eos = this.specialId('eos_token');
    this.eosTokenIds = [...new Set([...(eos === null ? [] : [eos]), ...extraEosTokenIds])];

    // Without an explicit add_bos_token/add_eos_token (Llama 3, Qwen), what the library's
    // post-processor adds is the model's convention: probe it once.
    const probe = this.tokenizer.encode('a', { add_special_tokens: true }).ids;
    const plain = this.tokenizer.encode('a', { add_special_tokens: false }).ids;
    const added = probe.length > plain.length;
    const flag = (key: string, inferred: boolean): boolean => {
      const v = this.config[key];
      return typeof v === 'boolean' ? v : inferred;
    };
    this.addBos = this.bosTokenId !== null && flag('add_bos_token', added && probe[0] === this.bosTokenId && plain[0] !== this.bosTokenId);
    this.addEos = eos !== null && flag('add_eos_token', added && probe[probe.length - 1] === eos && plain[plain.length - 1] !== eos);
    this.eosForAppend = eos;
  }

  /** The id of tokenizer_config's bos_token/eos_token, if it names a token in the vocabulary. */
  private specialId(key: string): number | null {
    const content = tokenContent(this.config[key]);
    if (content === null) return null;
    const id = this.tokenizer.token_to_id(content);
    if (id === undefined) throw new TokenizerError(`tokenizer_config.json ${key} '${content}' is not in the vocabulary`);
    return id;
  }

  /**
   * Token ids of `text`. With special tokens, BOS is prepended only if the text does not already
   * start with it (a rendered chat template usually does) — transformers would add a second one.
   */
  encode(text: string, options: EncodeOptions = {}): number[] {
    const ids = text === '' ? [] : this.tokenizer.encode(text, { add_special_tokens: false }).ids;
    if (options.addSpecialTokens ?? true) {
      if (this.addBos && this.bosTokenId !== null && ids[0] !== this.bosTokenId) ids.unshift(this.bosTokenId);
      if (this.addEos && this.eosForAppend !== null) ids.push(this.eosForAppend);
    }
    return ids;
  }

  /**
   * encode(), unless the text certainly holds more than `maxTokens` tokens: then `{ atLeast }`, judged
   * from a prefix of PREFIX_CHARS_PER_TOKEN x maxTokens characters, so a megabyte prompt against a
   * 4k context is refused after tokenizing 32k characters of it (once, a 1 MB prompt held the step
   * loop for 11.9 s before its PromptTooLongError). A cut changes tokens only near it (pre-tokenizers
   * split at whitespace; BPE merges are local), so the prefix must exceed the limit by a margin.
   */
  encodeWithin(text: string, maxTokens: number, options: EncodeOptions = {}): { ids: number[] } | { atLeast: number } {
    const cutAt = PREFIX_CHARS_PER_TOKEN * maxTokens;
    if (text.length > cutAt) {
      // Not inside a surrogate pair.
      const cut = /[\uD800-\uDBFF]/.test(text[cutAt - 1]!) ? cutAt - 1 : cutAt;
      const prefix = this.encode(text.slice(0, cut), options).length;
      if (prefix > maxTokens + CUT_MARGIN_TOKENS) return { atLeast: prefix - CUT_MARGIN_TOKENS };
    }
    return { ids: this.encode(text, options) };
  }

  /** Text of `ids`; the library throws on an empty list, this returns ''. */
  decode(ids: readonly number[], options: DecodeOptions = {}): string {
    if (ids.length === 0) return '';
    return this.tokenizer.decode([...ids], { skip_special_tokens: options.skipSpecialTokens ?? false });
  }

  /** The token string of one id (e.g. '▁Hello', '<0x0A>'), or null outside the vocabulary. */
  idToToken(id: number): string | null {
    return this.tokenizer.id_to_token(id) ?? null;
  }

  tokenToId(token: string): number | null {
    return this.tokenizer.token_to_id(token) ?? null;
  }

  /** The chat template from tokenizer_config.json (the default one when it holds several), or null. */
  get chatTemplate(): string | null {
    const t = this.config['chat_template'];
    if (typeof t === 'string') return t;
    if (Array.isArray(t)) {
      const named = t.find((e): e is { name: string; template: string } => isObject(e) && e['name'] === 'default' && typeof e['template'] === 'string');
      return named?.template ?? null;
    }
    return null;
  }
}
