// Request validation: an untrusted JSON body (or an SDK call's params) -> a normalized request the
// engine facade can act on, or an InvalidRequestError naming the parameter, the bad value and what
// is valid. Unknown parameters are ignored (SDKs send extras); a known OpenAI parameter webslo does
// not implement, set to anything but its default, is an InvalidRequestError naming it: a request
// that asks for JSON, penalties or a forced tool call and silently gets free text has a wrong answer.
//
// Defaults that differ from OpenAI's: an absent (or null) temperature is greedy (OpenAI samples at
// 1), so a request without sampling fields is deterministic; top_p 0 is greedy too.

import { InvalidRequestError } from './errors.js';
import type { ChatCompletionMessageToolCall, ChatCompletionTool, ChatRole } from './types.js';
import { showValue } from '../model/describe.js';

/** A chat message with its content parts joined (text parts by '\n', as vLLM does). */
export interface NormalizedMessage {
  role: ChatRole;
  /** null only for an assistant message without content (tool calls). */
  content: string | null;
  name?: string;
  tool_call_id?: string;
  tool_calls?: ChatCompletionMessageToolCall[];
}

/** OpenAI's frequency_penalty / presence_penalty / logit_bias and vLLM's repetition_penalty. */
export interface NormalizedPenalties {
  frequency: number;
  presence: number;
  repetition: number;
  /** [token id, bias] pairs (ids are checked against the vocabulary by the engine). */
  logitBias: [number, number][];
}

export interface NormalizedSampling {
  /** 0 = greedy argmax; otherwise in (0, 2]. */
  temperature: number;
  /** (0, 1]; 1 = off. */
  topP: number;
  /** 0 = off. */
  topK: number;
  /** A u64 (negative OpenAI seeds wrap as two's complement); null = the engine picks one. */
  seed: bigint | null;
}

interface NormalizedCommon {
  model: string | null;
  /** Output cap; null = up to the context limit. */
  maxTokens: number | null;
  sampling: NormalizedSampling;
  /** Penalties and logit bias (semantics: src/sampling/penalties.ts); null when all are off. */
  penalties: NormalizedPenalties | null;
  /** At most 4 non-empty strings. */
  stop: string[];
  logprobs: boolean;
  /** Alternatives per token (0 with logprobs = the chosen token only). */
  topLogprobs: number;
  stream: boolean;
  /** stream_options.include_usage: a final chunk with usage and no choices. */
  includeUsage: boolean;
  /** null = the caller's default app. */
  app: string | null;
  conversationId: string | null;
  stage: string | null;
  ignoreEos: boolean;
  /** vLLM's `return_token_ids`: each choice (and streamed chunk) carries the ids of its tokens. */
  returnTokenIds: boolean;
  /**
   * webslo's `continuation`: the output continues after these tokens as if the model had produced
   * them (a reply another replica began): the prompt is the request's, then these ids, or this text
   * tokenized on its own. The response carries only what follows; they count against max_tokens.
   */
  continuation: { tokenIds: number[] } | { text: string } | null;
}

export interface NormalizedChatRequest extends NormalizedCommon {
  kind: 'chat';
  messages: NormalizedMessage[];
  tools: ChatCompletionTool[] | null;
  /** 'none': tools reach the template but the reply is not parsed for calls ('auto' otherwise). */
  toolChoice: 'auto' | 'none';
}

export interface NormalizedCompletionRequest extends NormalizedCommon {
  kind: 'completion';
  /** Text, or token ids (checked against the vocabulary by the engine). */
  prompt: string | number[];
}

type Obj = Record<string, unknown>;
const isObject = (x: unknown): x is Obj => typeof x === 'object' && x !== null && !Array.isArray(x);
/** Absent and null mean the same in OpenAI's API. */
const given = (o: Obj, key: string): boolean => o[key] !== undefined && o[key] !== null;

export { showValue };

function bad(param: string, what: string, got: unknown, hint = ''): InvalidRequestError {
  return new InvalidRequestError(param, `${param} must be ${what} (got ${showValue(got)})${hint}`);
}

function optBool(o: Obj, key: string, param = key): boolean | null {
  if (!given(o, key)) return null;
  const v = o[key];
  if (typeof v !== 'boolean') throw bad(param, 'a boolean', v);
  return v;
}

function optString(o: Obj, key: string, param = key): string | null {
  if (!given(o, key)) return null;
  const v = o[key];
  if (typeof v !== 'string' || v === '') throw bad(param, 'a non-empty string', v);
  return v;
}

function optNumber(o: Obj, key: string, lo: number, hi: number): number | null {
  if (!given(o, key)) return null;
  const v = o[key];
  if (typeof v !== 'number' || !(v >= lo && v <= hi)) throw bad(key, `a number in ${lo}..${hi}`, v);
  return v;
}

function optInt(o: Obj, key: string, lo: number, hi: number, hint = ''): number | null {
  if (!given(o, key)) return null;
  const v = o[key];
  if (typeof v !== 'number' || !Number.isInteger(v) || v < lo || v > hi) {
    throw bad(key, hi === Number.MAX_SAFE_INTEGER ? `an integer >= ${lo}` : `an integer in ${lo}..${hi}`, v, hint);
  }
  return v;
}

const MIN_NORMAL_F32 = 2 ** -126;

function penalties(o: Obj): NormalizedPenalties | null {
  const frequency = optNumber(o, 'frequency_penalty', -2, 2) ?? 0;
  const presence = optNumber(o, 'presence_penalty', -2, 2) ?? 0;
  let repetition = 1;
  if (given(o, 'repetition_penalty')) {
    const r = o['repetition_penalty'];
    if (typeof r !== 'number' || !(r > 0 && r <= 10)) throw bad('repetition_penalty', 'a number in (0, 10] (1 = off)', r);
    repetition = r;
  }
  const logitBias: [number, number][] = [];
  if (given(o, 'logit_bias')) {
    const b = o['logit_bias'];
    if (!isObject(b)) throw bad('logit_bias', 'an object mapping token ids to biases in -100..100', b);
    for (const [key, v] of Object.entries(b)) {
      if (!/^(0|[1-9]\d{0,9})$/.test(key)) throw bad('logit_bias', 'keys that are token ids (decimal integers)', key);
      if (typeof v !== 'number' || !(v >= -100 && v <= 100)) throw bad(`logit_bias.${key}`, 'a number in -100..100', v);
      if (v !== 0) logitBias.push([Number(key), v]);
    }
  }
  return frequency === 0 && presence === 0 && repetition === 1 && logitBias.length === 0 ? null : { frequency, presence, repetition, logitBias };
}

function sampling(o: Obj): NormalizedSampling {
  let temperature = optNumber(o, 'temperature', 0, 2) ?? 0;
  // The GPU reads temperature as f32: below its normal range it is greedy in all but name.
  if (Math.fround(temperature) < MIN_NORMAL_F32) temperature = 0;
  let topP = optNumber(o, 'top_p', 0, 1) ?? 1;
  if (topP === 0) [temperature, topP] = [0, 1];
  let topK = 0;
  if (given(o, 'top_k')) {
    const k = o['top_k'];
    if (typeof k !== 'number' || !Number.isInteger(k) || k < -1 || k > 0xffffffff) throw bad('top_k', 'an integer >= -1 (0 or -1 = off)', k);
    topK = Math.max(k, 0);
  }
  let seed: bigint | null = null;
  if (given(o, 'seed')) {
    const s = o['seed'];
    const ok = (typeof s === 'number' && Number.isInteger(s)) || typeof s === 'bigint';
    const b = ok ? BigInt(s) : 0n;
    if (!ok || b < -(1n << 63n) || b >= 1n << 64n) throw bad('seed', 'an integer in -2^63..2^64-1', s);
    seed = BigInt.asUintN(64, b);
  }
  return { temperature, topP, topK, seed };
}

function stops(o: Obj): string[] {
  if (!given(o, 'stop')) return [];
  const v = o['stop'];
  const list = typeof v === 'string' ? [v] : v;
  if (!Array.isArray(list)) throw bad('stop', 'a string or an array of up to 4 strings', v);
  if (list.length > 4) throw bad('stop', 'at most 4 strings', v);
  list.forEach((s: unknown, i) => {
    if (typeof s !== 'string' || s === '') throw bad(Array.isArray(v) ? `stop[${i}]` : 'stop', 'a non-empty string', s);
  });
  return [...(list as string[])];
}

/** What webslo does not implement yet (each is accepted at its default value: 0, absent, 'text', 'auto' or 'none'). */
const UNSUPPORTED: Readonly<Record<string, string>> = {
  response_format: "absent or { type: 'text' } (JSON mode and JSON Schema output are not implemented yet)",
  tool_choice: "'auto' or 'none' (a forced tool call cannot be enforced yet)",
  echo: 'false (echoing the prompt is not implemented)',
  suffix: 'absent (insertion is not implemented)',
  best_of: '1 (webslo generates one sequence per request)',
};

/** Throws naming the first OpenAI parameter set to a value webslo does not implement. */
function refuseUnsupported(o: Obj): void {
  const set: string[] = [];
  if (given(o, 'response_format') && !(isObject(o['response_format']) && o['response_format']['type'] === 'text')) set.push('response_format');
  if (given(o, 'tool_choice') && o['tool_choice'] !== 'auto' && o['tool_choice'] !== 'none') set.push('tool_choice');
  if (given(o, 'echo') && o['echo'] !== false) set.push('echo');
  if (given(o, 'suffix') && o['suffix'] !== '') set.push('suffix');
  if (given(o, 'best_of') && o['best_of'] !== 1) set.push('best_of');
  const first = set[0];
  if (first !== undefined) throw bad(first, UNSUPPORTED[first]!, o[first]);
}

const isTokenId = (t: unknown): t is number => typeof t === 'number' && Number.isInteger(t) && t >= 0 && t < 2 ** 31;

function continuation(o: Obj): NormalizedCommon['continuation'] {
  if (!given(o, 'continuation')) return null;
  const c = o['continuation'];
  const what = 'an object { token_ids: integer[] } or { text: string }';
  if (!isObject(c)) throw bad('continuation', what, c);
  const ids = c['token_ids'];
  const text = c['text'];
  if (ids !== undefined && text !== undefined) throw bad('continuation', `${what}, not both`, c);
  if (ids !== undefined) {
    if (!Array.isArray(ids) || !ids.every(isTokenId)) throw bad('continuation.token_ids', 'an array of token ids (integers >= 0)', ids);
    return { tokenIds: [...ids] };
  }
  if (typeof text === 'string') return { text };
  throw bad('continuation', what, c);
}

/** Fields both endpoints share; logprobs are endpoint-specific and filled in by the caller. */
function common(o: Obj, maxTokens: number | null): Omit<NormalizedCommon, 'logprobs' | 'topLogprobs'> {
  refuseUnsupported(o);
  if (given(o, 'n') && o['n'] !== 1) throw bad('n', '1', o['n'], ': webslo generates one choice per request');
  const stream = optBool(o, 'stream') ?? false;
  let includeUsage = false;
  if (given(o, 'stream_options')) {
    const so = o['stream_options'];
    if (!stream) throw new InvalidRequestError('stream_options', 'stream_options is only allowed when stream is true');
    if (!isObject(so)) throw bad('stream_options', 'an object { include_usage?: boolean }', so);
    includeUsage = optBool(so, 'include_usage', 'stream_options.include_usage') ?? false;
  }
  return {
    model: optString(o, 'model'),
    maxTokens,
    sampling: sampling(o),
    penalties: penalties(o),
    stop: stops(o),
    stream,
    includeUsage,
    app: optString(o, 'app'),
    conversationId: optString(o, 'conversationId'),
    stage: optString(o, 'stage'),
    ignoreEos: optBool(o, 'ignore_eos') ?? false,
    returnTokenIds: optBool(o, 'return_token_ids') ?? false,
    continuation: continuation(o),
  };
}

const ROLES: readonly ChatRole[] = ['system', 'developer', 'user', 'assistant', 'tool'];

function content(v: unknown, param: string): string {
  if (typeof v === 'string') return v;
  if (!Array.isArray(v)) throw bad(param, "a string or an array of { type: 'text', text } parts", v);
  return v
    .map((part: unknown, i) => {
      const at = `${param}[${i}]`;
      if (!isObject(part) || part['type'] !== 'text') {
        throw bad(`${at}.type`, "'text'", isObject(part) ? part['type'] : part, ': only text content is supported');
      }
      if (typeof part['text'] !== 'string') throw bad(`${at}.text`, 'a string', part['text']);
      return part['text'];
    })
    .join('\n');
}

function toolCalls(v: unknown, param: string): ChatCompletionMessageToolCall[] {
  if (!Array.isArray(v)) throw bad(param, 'an array of tool calls', v);
  return v.map((c: unknown, i) => {
    const at = `${param}[${i}]`;
    const f = isObject(c) ? c['function'] : undefined;
    if (!isObject(c) || typeof c['id'] !== 'string' || c['type'] !== 'function' || !isObject(f) || typeof f['name'] !== 'string' || typeof f['arguments'] !== 'string') {
      throw bad(at, "{ id, type: 'function', function: { name, arguments } } with string fields", c);
    }
    return { id: c['id'], type: 'function', function: { name: f['name'], arguments: f['arguments'] } };
  });
}

function message(m: unknown, i: number): NormalizedMessage {
  const at = `messages[${i}]`;
  if (!isObject(m)) throw bad(at, 'an object { role, content }', m);
  const role = m['role'];
  if (typeof role !== 'string' || !(ROLES as readonly string[]).includes(role)) throw bad(`${at}.role`, `one of ${ROLES.join(', ')}`, role);
  const out: NormalizedMessage = { role: role as ChatRole, content: null };
  if (role === 'assistant' && !given(m, 'content')) {
    if (!given(m, 'tool_calls')) throw bad(`${at}.content`, 'given when an assistant message has no tool_calls', m['content']);
  } else {
    out.content = content(m['content'], `${at}.content`);
  }
  const name = optString(m, 'name', `${at}.name`);
  if (name !== null) out.name = name;
  if (role === 'tool') {
    const id = m['tool_call_id'];
    if (typeof id !== 'string' || id === '') throw bad(`${at}.tool_call_id`, 'a non-empty string', id);
    out.tool_call_id = id;
  }
  if (role === 'assistant' && given(m, 'tool_calls')) out.tool_calls = toolCalls(m['tool_calls'], `${at}.tool_calls`);
  return out;
}

function tools(o: Obj): ChatCompletionTool[] | null {
  if (!given(o, 'tools')) return null;
  const v = o['tools'];
  if (!Array.isArray(v)) throw bad('tools', 'an array of function tools', v);
  return v.map((t: unknown, i) => {
    const f = isObject(t) ? t['function'] : undefined;
    if (!isObject(t) || t['type'] !== 'function' || !isObject(f) || typeof f['name'] !== 'string' || f['name'] === '') {
      throw bad(`tools[${i}]`, "{ type: 'function', function: { name, description?, parameters? } }", t);
    }
    return structuredClone(t) as unknown as ChatCompletionTool;
  });
}

function body(p: unknown): Obj {
  if (!isObject(p)) throw bad('(body)', 'a JSON object', p);
  return p;
}

/** Validate chat.completions.create params. */
export function normalizeChatParams(p: unknown): NormalizedChatRequest {
  const o = body(p);
  const msgs = o['messages'];
  if (!Array.isArray(msgs) || msgs.length === 0) throw bad('messages', 'a non-empty array of messages', msgs);
  const messages = msgs.map(message);
  const a = optInt(o, 'max_completion_tokens', 1, Number.MAX_SAFE_INTEGER);
  const b = optInt(o, 'max_tokens', 1, Number.MAX_SAFE_INTEGER);
  if (a !== null && b !== null && a !== b) {
    throw new InvalidRequestError('max_tokens', `max_tokens (${b}) and max_completion_tokens (${a}) disagree: give one of them`);
  }
  const logprobs = optBool(o, 'logprobs') ?? false;
  const top = optInt(o, 'top_logprobs', 0, 20);
  if (top !== null && !logprobs) throw new InvalidRequestError('top_logprobs', `top_logprobs (${top}) needs logprobs: true`);
  const toolChoice = o['tool_choice'] === 'none' ? 'none' : 'auto';
  return { kind: 'chat', messages, tools: tools(o), toolChoice, ...common(o, a ?? b), logprobs, topLogprobs: top ?? 0 };
}

function prompt(v: unknown): string | number[] {
  // A batch of one is accepted; the SDK types allow string[] and number[][].
  const one = Array.isArray(v) && v.length === 1 && (typeof v[0] === 'string' || Array.isArray(v[0])) ? (v[0] as unknown) : v;
  if (typeof one === 'string') return one;
  if (Array.isArray(one) && one.length > 0 && one.every(isTokenId)) {
    return [...(one as number[])];
  }
  const hint = Array.isArray(v) && v.length > 1 && (typeof v[0] === 'string' || Array.isArray(v[0])) ? ': batched prompts are not supported' : '';
  throw bad('prompt', 'a string or a non-empty array of token ids (integers >= 0)', v, hint);
}

/** Validate completions.create (legacy) params. */
export function normalizeCompletionParams(p: unknown): NormalizedCompletionRequest {
  const o = body(p);
  if (!Object.hasOwn(o, 'prompt') || o['prompt'] === null || o['prompt'] === undefined) throw bad('prompt', 'given', o['prompt']);
  const promptValue = prompt(o['prompt']);
  const top = optInt(o, 'logprobs', 0, 5, ': the number of alternatives per token; null for none');
  return {
    kind: 'completion',
    prompt: promptValue,
    ...common(o, optInt(o, 'max_tokens', 1, Number.MAX_SAFE_INTEGER)),
    logprobs: top !== null,
    topLogprobs: top ?? 0,
  };
}
