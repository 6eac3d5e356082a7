// The OpenAI wire shapes webslo speaks (a subset of the `openai` npm package's types, same field
// names), plus webslo's own extensions: `app`, `conversationId`, `stage`, `ignore_eos`, `top_k` on
// requests and a `webslo` object on responses. Only text is supported: no images, audio or n > 1.

// ---------------------------------------------------------------------------------------------
// Requests

export interface ChatCompletionContentPartText {
  type: 'text';
  text: string;
}

export type ChatMessageContent = string | ChatCompletionContentPartText[];

export interface ChatCompletionMessageToolCall {
  id: string;
  type: 'function';
  function: { name: string; arguments: string };
}

export interface ChatCompletionSystemMessageParam {
  role: 'system';
  content: ChatMessageContent;
  name?: string;
}

export interface ChatCompletionDeveloperMessageParam {
  role: 'developer';
  content: ChatMessageContent;
  name?: string;
}

export interface ChatCompletionUserMessageParam {
  role: 'user';
  content: ChatMessageContent;
  name?: string;
}

export interface ChatCompletionAssistantMessageParam {
  role: 'assistant';
  content?: ChatMessageContent | null;
  name?: string;
  tool_calls?: ChatCompletionMessageToolCall[];
}

export interface ChatCompletionToolMessageParam {
  role: 'tool';
  content: ChatMessageContent;
  tool_call_id: string;
}

export type ChatCompletionMessageParam =
  ChatCompletionSystemMessageParam | ChatCompletionDeveloperMessageParam | ChatCompletionUserMessageParam | ChatCompletionAssistantMessageParam | ChatCompletionToolMessageParam;

export type ChatRole = ChatCompletionMessageParam['role'];

/** A function tool: passed to the chat template as `tools`; calls in the reply come back as `tool_calls` (src/openai/tool-calls.ts). */
export interface ChatCompletionTool {
  type: 'function';
  function: { name: string; description?: string; parameters?: Record<string, unknown>; strict?: boolean | null };
}

export interface ChatCompletionStreamOptions {
  include_usage?: boolean;
}

/** Request extensions webslo reads on both endpoints (the SDK passes them through as extra body fields). */
export interface WebsloRequestExtensions {
  /** Which registered app (and so which SLO) the request belongs to. */
  app?: string;
  /** Requests of one conversation share prefix KV pages. */
  conversationId?: string;
  /** The SLO stage to start in (default: the app's first). */
  stage?: string;
  /** Do not stop at EOS tokens (benchmarks). */
  ignore_eos?: boolean;
  /** Keep the k most likely tokens before top_p (0 or -1 = off), as vLLM accepts it. */
  top_k?: number;
  /** vLLM's and HF's: > 1 divides positive logits (multiplies negative ones) of tokens in the prompt or output; 1 = off. */
  repetition_penalty?: number;
  /** vLLM's: each choice (and each streamed chunk's choice) carries `token_ids`, the ids of its tokens. */
  return_token_ids?: boolean;
  /**
   * Continue a reply begun elsewhere (a replica that failed mid-stream): the output follows these
   * tokens as if the model had produced them. `token_ids` are appended to the prompt's ids; `text`
   * is tokenized on its own (chat and text prompts). The response carries only what follows.
   */
  continuation?: { token_ids: number[] } | { text: string };
}

interface SamplingFields {
  model?: string;
  stream?: boolean | null;
  stream_options?: ChatCompletionStreamOptions | null;
  /** 0..2; webslo's default (absent or null) is greedy, not OpenAI's 1. */
  temperature?: number | null;
  top_p?: number | null;
  seed?: number | null;
  /** -2..2: minus this times each token's count in the output so far. */
  frequency_penalty?: number | null;
  /** -2..2: minus this for every token already in the output. */
  presence_penalty?: number | null;
  /** Token id (as a string key) -> bias in -100..100 added to its logit. */
  logit_bias?: Record<string, number> | null;
  stop?: string | string[] | null;
  /** Only 1. */
  n?: number | null;
}

export interface ChatCompletionCreateParams extends SamplingFields, WebsloRequestExtensions {
  messages: ChatCompletionMessageParam[];
  /** Deprecated by OpenAI in favour of max_completion_tokens; either is accepted. */
  max_tokens?: number | null;
  max_completion_tokens?: number | null;
  logprobs?: boolean | null;
  /** 0..20; needs logprobs: true. */
  top_logprobs?: number | null;
  tools?: ChatCompletionTool[];
  /** 'auto' (default): calls in the reply are parsed; 'none': the text as written. A forced call ('required', a named function) is a 400 for now. */
  tool_choice?: 'auto' | 'none' | 'required' | { type: 'function'; function: { name: string } };
}

export interface CompletionCreateParams extends SamplingFields, WebsloRequestExtensions {
  /** Text, or token ids (the model's vocabulary). Batches (string[] / number[][]) are not supported. */
  prompt: string | number[];
  max_tokens?: number | null;
  /** Legacy: the number of top alternatives per token, 0..5 (the chosen token is always included). */
  logprobs?: number | null;
}

// ---------------------------------------------------------------------------------------------
// Responses

/** 'tool_calls' only on chat replies whose calls were parsed (src/openai/tool-calls.ts). */
export type FinishReason = 'stop' | 'length' | 'tool_calls';

export interface CompletionUsage {
  prompt_tokens: number;
  completion_tokens: number;
  total_tokens: number;
}

/** How webslo served a request (on the response, or the last stream chunk). */
export interface WebsloResponseInfo {
  app: string;
  /** 'best-effort': the scheduler could not promise the SLO and served it without one. */
  decision: 'admitted' | 'best-effort';
  ttft_ms?: number;
  /** Mean time per output token after the first. */
  tpot_ms?: number;
  /** Time from arrival to admission. */
  queue_ms?: number;
  /** Whether every token met its deadline (absent when not measured). */
  slo_met?: boolean;
  conversation_id?: string;
  stage?: string;
  /** Behind a Router: the replica that served it ('local' or a remote's name), and whether another replica continued a broken stream. */
  replica?: string;
  continued_by?: string;
}

export interface TopLogprob {
  token: string;
  logprob: number;
  /** UTF-8 bytes of the token (may be a partial character), or null. */
  bytes: number[] | null;
}

export interface ChatCompletionTokenLogprob extends TopLogprob {
  top_logprobs: TopLogprob[];
}

export interface ChatChoiceLogprobs {
  content: ChatCompletionTokenLogprob[] | null;
  refusal: ChatCompletionTokenLogprob[] | null;
}

export interface ChatCompletionMessage {
  role: 'assistant';
  content: string | null;
  refusal: string | null;
  /** Present when the reply called tools (request `tools`, a model whose template has a known format). */
  tool_calls?: ChatCompletionMessageToolCall[];
}

/** A tool call in a streamed delta: `index` orders the calls of one reply. webslo sends each call whole, in one delta. */
export interface ChatCompletionChunkToolCall {
  index: number;
  id?: string;
  type?: 'function';
  function?: { name?: string; arguments?: string };
}

export interface ChatCompletionChoice {
  index: number;
  message: ChatCompletionMessage;
  logprobs: ChatChoiceLogprobs | null;
  finish_reason: FinishReason;
  /** With return_token_ids (vLLM's extension): the ids of the message's tokens. */
  token_ids?: number[];
}

export interface ChatCompletion {
  id: string;
  object: 'chat.completion';
  /** Unix seconds. */
  created: number;
  model: string;
  choices: ChatCompletionChoice[];
  usage?: CompletionUsage;
  webslo?: WebsloResponseInfo;
}

export interface ChatCompletionChunkDelta {
  /** Only on the first chunk. */
  role?: 'assistant';
  content?: string | null;
  refusal?: string | null;
  tool_calls?: ChatCompletionChunkToolCall[];
}

export interface ChatCompletionChunkChoice {
  index: number;
  delta: ChatCompletionChunkDelta;
  logprobs?: ChatChoiceLogprobs | null;
  finish_reason: FinishReason | null;
  /** With return_token_ids: the ids of this chunk's tokens. */
  token_ids?: number[];
}

export interface ChatCompletionChunk {
  id: string;
  object: 'chat.completion.chunk';
  created: number;
  model: string;
  /** Empty on the usage chunk that stream_options.include_usage adds at the end. */
  choices: ChatCompletionChunkChoice[];
  /** With include_usage: null on every chunk but the last, which carries the totals. */
  usage?: CompletionUsage | null;
  webslo?: WebsloResponseInfo;
}

/** The legacy completions logprobs object (parallel arrays). */
export interface CompletionLogprobs {
  tokens: string[];
  token_logprobs: number[];
  /** Per token: the top alternatives and the chosen token, as token text -> logprob. */
  top_logprobs: Record<string, number>[];
  /** Character offset of each token in the generated text. */
  text_offset: number[];
}

export interface CompletionChoice {
  text: string;
  index: number;
  logprobs: CompletionLogprobs | null;
  finish_reason: FinishReason;
  /** With return_token_ids: the ids of the text's tokens. */
  token_ids?: number[];
}

export interface Completion {
  id: string;
  object: 'text_completion';
  created: number;
  model: string;
  choices: CompletionChoice[];
  usage?: CompletionUsage;
  webslo?: WebsloResponseInfo;
}

/** A streamed legacy completion chunk: the response's shape, finish_reason null before the last. */
export interface CompletionChunk extends Omit<Completion, 'choices' | 'usage'> {
  choices: (Omit<CompletionChoice, 'finish_reason'> & { finish_reason: FinishReason | null })[];
  /** With include_usage: null on every chunk but the last, which carries the totals. */
  usage?: CompletionUsage | null;
}

/** The body of every error response (and of an error event in a stream). */
export interface OpenAIErrorBody {
  error: {
    message: string;
    type: string;
    param: string | null;
    code: string | null;
  };
}
