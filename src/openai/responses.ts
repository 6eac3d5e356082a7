// Response builders: plain functions that produce OpenAI's objects with its field names, in the
// order the API writes them (id, object, created, model, choices, usage), plus the optional
// `webslo` extension last. One choice (index 0) per response: n is always 1.

import type {
  ChatChoiceLogprobs,
  ChatCompletion,
  ChatCompletionChunk,
  ChatCompletionChunkDelta,
  ChatCompletionChunkToolCall,
  ChatCompletionMessage,
  ChatCompletionMessageToolCall,
  ChatCompletionTokenLogprob,
  Completion,
  CompletionChunk,
  CompletionLogprobs,
  CompletionUsage,
  FinishReason,
  WebsloResponseInfo,
} from './types.js';

const ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';

/** `length` random alphanumerics from the platform CSPRNG (browser and Node alike). */
function randomId(length: number): string {
  const bytes = new Uint8Array(length);
  globalThis.crypto.getRandomValues(bytes);
  let s = '';
  // 248 = 4 * 62: rejecting bytes above keeps the characters uniform.
  for (let i = 0; s.length < length; i++) {
    if (i === bytes.length) {
      globalThis.crypto.getRandomValues(bytes);
      i = 0;
    }
    if (bytes[i]! < 248) s += ALPHABET[bytes[i]! % 62];
  }
  return s;
}

/** A chat completion id, like OpenAI's `chatcmpl-` + 29 characters. */
export const newChatCompletionId = (): string => `chatcmpl-${randomId(29)}`;

/** A legacy completion id: `cmpl-` + 29 characters. */
export const newCompletionId = (): string => `cmpl-${randomId(29)}`;

/** Unix time in whole seconds, as `created` is. */
export const createdAt = (nowMs: number = Date.now()): number => Math.floor(nowMs / 1000);

export function usage(promptTokens: number, completionTokens: number): CompletionUsage {
  return { prompt_tokens: promptTokens, completion_tokens: completionTokens, total_tokens: promptTokens + completionTokens };
}

/** What every response and chunk of one request shares. */
export interface ResponseHeader {
  id: string;
  created: number;
  model: string;
}

const chatLogprobs = (content: ChatCompletionTokenLogprob[] | null | undefined): ChatChoiceLogprobs | null => (content === null || content === undefined ? null : { content, refusal: null });

function withExtension<T extends object>(obj: T, webslo: WebsloResponseInfo | undefined): T & { webslo?: WebsloResponseInfo } {
  return webslo === undefined ? obj : { ...obj, webslo };
}

export interface ChatCompletionInput extends ResponseHeader {
  /** return_token_ids: the ids of the tokens (absent: not asked). */
  tokenIds?: number[];
  /** null when the reply is tool calls only. */
  content: string | null;
  /** Calls parsed from the reply (src/openai/tool-calls.ts); absent or empty: none. */
  toolCalls?: ChatCompletionMessageToolCall[];
  finishReason: FinishReason;
  usage: CompletionUsage;
  /** Present when the request asked for logprobs. */
  logprobs?: ChatCompletionTokenLogprob[] | null;
  webslo?: WebsloResponseInfo;
}

/** A non-streamed chat completion. */
export function chatCompletion(r: ChatCompletionInput): ChatCompletion {
  const message: ChatCompletionMessage = { role: 'assistant', content: r.content, refusal: null };
  if (r.toolCalls && r.toolCalls.length > 0) message.tool_calls = r.toolCalls;
  return withExtension(
    {
      id: r.id,
      object: 'chat.completion',
      created: r.created,
      model: r.model,
      choices: [
        {
          index: 0,
          message,
          logprobs: chatLogprobs(r.logprobs),
          finish_reason: r.finishReason,
          ...(r.tokenIds ? { token_ids: r.tokenIds } : {}),
        },
      ],
      usage: r.usage,
    },
    r.webslo,
  );
}

export interface ChatChunkInput extends ResponseHeader {
  /** return_token_ids: the ids of the tokens (absent: not asked). */
  tokenIds?: number[];
  /** The first chunk carries role 'assistant' (and content ''), as OpenAI's does. */
  role?: boolean;
  content?: string;
  /** Tool calls completed in this chunk (each whole, with its index in the reply). */
  toolCalls?: ChatCompletionChunkToolCall[];
  logprobs?: ChatCompletionTokenLogprob[] | null;
  /** Set on the last content chunk, whose delta is then usually empty. */
  finishReason?: FinishReason | null;
  /** stream_options.include_usage: every chunk carries `usage: null` until the usage chunk. */
  includeUsage?: boolean;
  webslo?: WebsloResponseInfo;
}

/** One streamed chat chunk with one choice. */
export function chatChunk(r: ChatChunkInput): ChatCompletionChunk {
  const delta: ChatCompletionChunkDelta = {};
  if (r.role) delta.role = 'assistant';
  if (r.content !== undefined) delta.content = r.content;
  if (r.toolCalls && r.toolCalls.length > 0) delta.tool_calls = r.toolCalls;
  const chunk: ChatCompletionChunk = {
    id: r.id,
    object: 'chat.completion.chunk',
    created: r.created,
    model: r.model,
    choices: [{ index: 0, delta, logprobs: chatLogprobs(r.logprobs), finish_reason: r.finishReason ?? null, ...(r.tokenIds ? { token_ids: r.tokenIds } : {}) }],
  };
  if (r.includeUsage) chunk.usage = null;
  return withExtension(chunk, r.webslo);
}

/** The final chunk of a stream with include_usage: no choices, the usage totals. */
export function chatUsageChunk(r: ResponseHeader & { usage: CompletionUsage; webslo?: WebsloResponseInfo }): ChatCompletionChunk {
  return withExtension({ id: r.id, object: 'chat.completion.chunk', created: r.created, model: r.model, choices: [], usage: r.usage }, r.webslo);
}

export interface CompletionInput extends ResponseHeader {
  /** return_token_ids: the ids of the tokens (absent: not asked). */
  tokenIds?: number[];
  text: string;
  finishReason: FinishReason;
  usage: CompletionUsage;
  logprobs?: CompletionLogprobs | null;
  webslo?: WebsloResponseInfo;
}

/** A non-streamed legacy completion. */
export function completion(r: CompletionInput): Completion {
  return withExtension(
    {
      id: r.id,
      object: 'text_completion',
      created: r.created,
      model: r.model,
      choices: [{ text: r.text, index: 0, logprobs: r.logprobs ?? null, finish_reason: r.finishReason, ...(r.tokenIds ? { token_ids: r.tokenIds } : {}) }],
      usage: r.usage,
    },
    r.webslo,
  );
}

export interface CompletionChunkInput extends ResponseHeader {
  /** return_token_ids: the ids of the tokens (absent: not asked). */
  tokenIds?: number[];
  text: string;
  logprobs?: CompletionLogprobs | null;
  finishReason?: FinishReason | null;
  includeUsage?: boolean;
  webslo?: WebsloResponseInfo;
}

/** One streamed legacy completion chunk (same object as the response; finish_reason null until the end). */
export function completionChunk(r: CompletionChunkInput): CompletionChunk {
  const chunk: CompletionChunk = {
    id: r.id,
    object: 'text_completion',
    created: r.created,
    model: r.model,
    choices: [{ text: r.text, index: 0, logprobs: r.logprobs ?? null, finish_reason: r.finishReason ?? null, ...(r.tokenIds ? { token_ids: r.tokenIds } : {}) }],
  };
  if (r.includeUsage) chunk.usage = null;
  return withExtension(chunk, r.webslo);
}

/** The final legacy chunk with include_usage: no choices, the usage totals. */
export function completionUsageChunk(r: ResponseHeader & { usage: CompletionUsage; webslo?: WebsloResponseInfo }): CompletionChunk {
  return withExtension({ id: r.id, object: 'text_completion', created: r.created, model: r.model, choices: [], usage: r.usage }, r.webslo);
}
