// Tool calls out of a model's text, in the format its chat template teaches it, as OpenAI's
// `tool_calls`: the whole reply (non-streamed) or delta by delta (streamed), with the same result
// either way however the text is split.
//
// Formats, told apart by what the chat template writes (toolCallFormat):
//  - 'hermes' (Qwen2.5, Qwen3, Hermes): `<tool_call>\n{"name": ..., "arguments": {...}}\n</tool_call>`
//    blocks, any number, anywhere in the reply; text around them is content.
//  - 'llama3-json' (Llama 3.1 / 3.2): the whole reply is one JSON object `{"name": ...,
//    "parameters": {...}}` (several separated by ';'), after `<|python_tag|>` when that special
//    token is kept in the text.
//  - 'mistral': the whole reply is `[TOOL_CALLS]` (a special token, usually dropped from the text)
//    and a JSON array of `{"name": ..., "arguments": {...}}`.
// A block or reply that does not parse as a call (bad JSON, no string `name`, arguments that are
// not an object) stays content, byte for byte: nothing the model wrote is lost. Trailing whitespace
// is held until text follows it; once a call was made, whitespace that nothing follows is dropped
// (a reply of calls alone has null content, as OpenAI's does).
//
// Invariants: push() never emits text that a later push could turn into part of a call (a tail
// that may begin a `<tool_call>` tag is held back; a whole-reply format holds everything that
// starts like a call until end()); concatenated content of push()+end() equals the whole-reply
// parse's content; call ids are `call_` + 24 random alphanumerics.

import type { ChatCompletionChunkToolCall, ChatCompletionMessageToolCall, ChatCompletionTool, FinishReason } from './types.js';

export type ToolCallFormat = 'hermes' | 'llama3-json' | 'mistral';

/** The tool-call format a chat template teaches, or null when it shows none this parser knows. */
export function toolCallFormat(template: string | null): ToolCallFormat | null {
  if (!template) return null;
  if (template.includes('<tool_call>')) return 'hermes';
  if (template.includes('[TOOL_CALLS]')) return 'mistral';
  if (template.includes('<|python_tag|>') || (template.includes('"parameters"') && template.includes('ipython'))) return 'llama3-json';
  return null;
}

const ID_CHARS = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';

/** `call_` + 24 random alphanumerics from the platform CSPRNG, as OpenAI's call ids look. */
export function newToolCallId(): string {
  const bytes = new Uint8Array(32);
  let s = 'call_';
  while (s.length < 29) {
    globalThis.crypto.getRandomValues(bytes);
    // 248 = 4 * 62: bytes above it are skipped so the characters stay uniform.
    for (const b of bytes) if (b < 248 && s.length < 29) s += ID_CHARS[b % 62];
  }
  return s;
}

/** What a push or end yields: content to show, and calls completed since the last one. */
export interface ToolCallDelta {
  content: string;
  calls: ChatCompletionMessageToolCall[];
}

const OPEN = '<tool_call>';
const CLOSE = '</tool_call>';

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/** One `{name, arguments | parameters}` object as a call, or null when it is not one. */
function callOf(v: unknown): ChatCompletionMessageToolCall | null {
  if (!isObject(v) || typeof v['name'] !== 'string' || v['name'] === '') return null;
  const args = 'arguments' in v ? v['arguments'] : 'parameters' in v ? v['parameters'] : {};
  // Some models write the arguments already encoded as a JSON string.
  if (typeof args === 'string') {
    try {
      if (!isObject(JSON.parse(args))) return null;
    } catch {
      return null;
    }
    return { id: newToolCallId(), type: 'function', function: { name: v['name'], arguments: args } };
  }
  if (!isObject(args)) return null;
  return { id: newToolCallId(), type: 'function', function: { name: v['name'], arguments: JSON.stringify(args) } };
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

/** A whole reply in a whole-reply format as calls, or null when it is not entirely calls. */
function wholeReplyCalls(format: 'llama3-json' | 'mistral', text: string): ChatCompletionMessageToolCall[] | null {
  let t = text.trim();
  if (format === 'mistral') {
    if (t.startsWith('[TOOL_CALLS]')) t = t.slice('[TOOL_CALLS]'.length).trim();
    const v = parseJson(t);
    if (!Array.isArray(v) || v.length === 0) return null;
    const calls = v.map(callOf);
    return calls.every((c) => c !== null) ? (calls as ChatCompletionMessageToolCall[]) : null;
  }
  if (t.startsWith('<|python_tag|>')) t = t.slice('<|python_tag|>'.length).trim();
  const whole = parseJson(t);
  const parts = whole !== undefined ? [whole] : t.split(';').map((s) => parseJson(s.trim()));
  const calls = parts.map(callOf);
  return calls.length > 0 && calls.every((c) => c !== null) ? (calls as ChatCompletionMessageToolCall[]) : null;
}

/** Could this reply's start still be a call in a whole-reply format? */
function mayStartCall(format: 'llama3-json' | 'mistral', text: string): boolean {
  const t = text.trimStart();
  const starts = format === 'mistral' ? ['[TOOL_CALLS]', '['] : ['<|python_tag|>', '{'];
  return t === '' || starts.some((s) => t.startsWith(s) || s.startsWith(t));
}

/** The length of the longest suffix of `text` that is a proper prefix of `tag`. */
function partialTagSuffix(text: string, tag: string): number {
  for (let n = Math.min(tag.length - 1, text.length); n > 0; n--) if (tag.startsWith(text.slice(text.length - n))) return n;
  return 0;
}

/** Splits a reply, streamed in pieces, into content and tool calls (see the file header). */
export class ToolCallParser {
  private pending = '';
  private inCall = false;
  /** Whitespace content held until something follows it (dropped at the end if a call was made). */
  private heldSpace = '';
  private callCount = 0;
  /** Whole-reply formats: still holding the reply because it may be calls. */
  private holding: boolean;

  constructor(readonly format: ToolCallFormat) {
    this.holding = format !== 'hermes';
  }

  /** Calls made so far. */
  get calls(): number {
    return this.callCount;
  }

  /** The next piece of the reply's text. */
  push(text: string): ToolCallDelta {
    this.pending += text;
    if (this.format !== 'hermes') {
      if (this.holding && mayStartCall(this.format, this.pending)) return { content: '', calls: [] };
      this.holding = false;
      const content = this.pending;
      this.pending = '';
      return { content, calls: [] };
    }
    return this.scanHermes(false);
  }

  /** The reply ended: whatever was held is resolved into calls or content. */
  end(): ToolCallDelta {
    if (this.format !== 'hermes') {
      const text = this.pending;
      this.pending = '';
      if (this.holding) {
        const calls = wholeReplyCalls(this.format, text);
        if (calls) {
          this.callCount += calls.length;
          return { content: '', calls };
        }
      }
      return { content: text, calls: [] };
    }
    const out = this.scanHermes(true);
    if (this.callCount === 0) out.content += this.heldSpace;
    this.heldSpace = '';
    return out;
  }

  private scanHermes(final: boolean): ToolCallDelta {
    const out: ToolCallDelta = { content: '', calls: [] };
    for (;;) {
      if (!this.inCall) {
        const at = this.pending.indexOf(OPEN);
        if (at >= 0) {
          this.emit(out, this.pending.slice(0, at));
          this.pending = this.pending.slice(at + OPEN.length);
          this.inCall = true;
          continue;
        }
        const keep = final ? 0 : partialTagSuffix(this.pending, OPEN);
        this.emit(out, this.pending.slice(0, this.pending.length - keep));
        this.pending = this.pending.slice(this.pending.length - keep);
        return out;
      }
      const at = this.pending.indexOf(CLOSE);
      if (at < 0) {
        // An unterminated block at the end is what the model wrote: content.
        if (final) {
          this.emit(out, OPEN + this.pending);
          this.pending = '';
          this.inCall = false;
        }
        return out;
      }
      const body = this.pending.slice(0, at);
      this.pending = this.pending.slice(at + CLOSE.length);
      this.inCall = false;
      const call = callOf(parseJson(body.trim()));
      if (call) {
        this.callCount++;
        out.calls.push(call);
      } else this.emit(out, OPEN + body + CLOSE);
    }
  }

  /** Content, its trailing whitespace held until non-space content follows (so cuts never matter). */
  private emit(out: ToolCallDelta, text: string): void {
    const body = text.trimEnd();
    if (body === '') {
      this.heldSpace += text;
      return;
    }
    out.content += this.heldSpace + body;
    this.heldSpace = text.slice(body.length);
  }
}

/** A whole reply's content (null when only calls and whitespace) and calls. */
export function parseToolCalls(format: ToolCallFormat, text: string): { content: string | null; calls: ChatCompletionMessageToolCall[] } {
  const p = new ToolCallParser(format);
  const a = p.push(text);
  const b = p.end();
  const content = a.content + b.content;
  const calls = [...a.calls, ...b.calls];
  return { content: calls.length > 0 && content.trim() === '' ? null : content, calls };
}

/** The format a chat request's reply is parsed in: tools offered, tool_choice 'auto' and a known format; else null. */
export function replyToolFormat(req: { tools: readonly ChatCompletionTool[] | null; toolChoice: 'auto' | 'none' }, format: ToolCallFormat | null): ToolCallFormat | null {
  return req.tools && req.tools.length > 0 && req.toolChoice === 'auto' ? format : null;
}

/**
 * One reply's tool calls as the response builders need them (the engine's and the Router's):
 * streamed, push/end give the content and the calls as indexed deltas; whole, one call gives the
 * message's content and calls; either way the finish reason becomes 'tool_calls' when the model
 * stopped on its own after a call. With a null format the text passes through untouched.
 */
export class ReplyToolCalls {
  private readonly parser: ToolCallParser | null;
  private index = 0;

  constructor(format: ToolCallFormat | null) {
    this.parser = format ? new ToolCallParser(format) : null;
  }

  push(text: string): { content: string; toolCalls: ChatCompletionChunkToolCall[] } {
    return this.indexed(this.parser ? this.parser.push(text) : { content: text, calls: [] });
  }

  end(): { content: string; toolCalls: ChatCompletionChunkToolCall[] } {
    return this.indexed(this.parser ? this.parser.end() : { content: '', calls: [] });
  }

  /** The finish reason of the reply streamed so far. */
  finishReason(reason: FinishReason): FinishReason {
    return withCalls(reason, this.parser?.calls ?? 0);
  }

  /** A whole reply: its content (null when only calls), calls and finish reason. */
  whole(text: string, reason: FinishReason): { content: string | null; toolCalls: ChatCompletionMessageToolCall[]; finishReason: FinishReason } {
    if (!this.parser) return { content: text, toolCalls: [], finishReason: reason };
    const { content, calls } = parseToolCalls(this.parser.format, text);
    return { content, toolCalls: calls, finishReason: withCalls(reason, calls.length) };
  }

  private indexed(d: ToolCallDelta): { content: string; toolCalls: ChatCompletionChunkToolCall[] } {
    return { content: d.content, toolCalls: d.calls.map((c) => ({ index: this.index++, ...c })) };
  }
}

/** A reply that made calls and stopped on its own ends with 'tool_calls', as OpenAI's does (one cut by max_tokens keeps 'length'). */
const withCalls = (reason: FinishReason, calls: number): FinishReason => (calls > 0 && reason === 'stop' ? 'tool_calls' : reason);
