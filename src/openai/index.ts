// The OpenAI-compatible protocol layer: pure TypeScript (no GPU, no engine). An engine facade
// composes it: validate -> chat template -> (engine) -> incremental text -> stop strings ->
// logprobs -> response objects -> SSE.

export type * from './types.js';
export { ChatTemplateError, InvalidRequestError } from './errors.js';
export { normalizeChatParams, normalizeCompletionParams, showValue } from './validate.js';
export type { NormalizedChatRequest, NormalizedCompletionRequest, NormalizedMessage, NormalizedPenalties, NormalizedSampling } from './validate.js';
export { newToolCallId, parseToolCalls, ToolCallParser, toolCallFormat } from './tool-calls.js';
export type { ToolCallDelta, ToolCallFormat } from './tool-calls.js';
export { chatTemplateOf, renderChat } from './chat-template.js';
export type { ChatTokenizer, RenderChatOptions, TemplateMessage } from './chat-template.js';
export { IncrementalDetokenizer } from './incremental-text.js';
export type { IncrementalDetokenizerOptions, TokenDecoder } from './incremental-text.js';
export { StopMatcher } from './stop-strings.js';
export type { StopPush } from './stop-strings.js';
export { chatLogprobContent, completionLogprobs, detectTokenEncoding, jsonLogprob, logSoftmaxTop, TokenTexts } from './logprobs.js';
export type { CompletionLogprobsOptions, EmittedLogprob, TokenEncoding, TokenLogprob, TokenVocab } from './logprobs.js';
export { chatChunk, chatCompletion, chatUsageChunk, completion, completionChunk, completionUsageChunk, createdAt, newChatCompletionId, newCompletionId, usage } from './responses.js';
export type { ChatChunkInput, ChatCompletionInput, CompletionChunkInput, CompletionInput, ResponseHeader } from './responses.js';
export { errorHeaders, errorResponse, jsonResponse, DECLINE_RETRY_AFTER_S, SSE_DONE, SSE_HEADERS, sseEvent, sseEvents, sseResponse, sseStream, toHttpError } from './sse.js';
export type { HttpError, SseStreamOptions } from './sse.js';
