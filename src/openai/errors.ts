// Typed errors of the OpenAI layer. Each has a fixed `name` (minifiers rename classes; sse.ts maps
// errors to HTTP statuses by name) and a message that says what would be valid.

import { EngineError } from '../engine/errors.js';

/** A request parameter is missing or invalid (HTTP 400, OpenAI's `invalid_request_error`). */
export class InvalidRequestError extends Error {
  override name = 'InvalidRequestError';

  constructor(
    /** The parameter's path, e.g. `top_logprobs` or `messages[2].content`. */
    readonly param: string,
    message: string,
  ) {
    super(message);
  }
}

/**
 * The chat template could not turn the messages into a prompt.
 * - `missing`: the tokenizer has no chat_template (use completions with a raw prompt);
 * - `raised`: the template called raise_exception (the messages break its rules, e.g. roles must
 *   alternate) — the client's fault;
 * - `syntax`: the template does not parse; `render`: it failed while rendering.
 */
export class ChatTemplateError extends Error {
  override name = 'ChatTemplateError';

  constructor(
    readonly kind: 'missing' | 'raised' | 'syntax' | 'render',
    message: string,
  ) {
    super(message);
  }
}

/** A remote replica failed: before its first token (the Router tries elsewhere) or mid-stream. */
export class RemoteReplicaError extends EngineError {
  override name = 'RemoteReplicaError';
  constructor(
    readonly replica: string,
    /** 'connect': no response; 'status': an HTTP error; 'stream': the stream broke or was malformed; 'timeout': too slow. */
    readonly phase: 'connect' | 'status' | 'stream' | 'timeout',
    readonly detail: string,
    /** The HTTP status, when one came back. */
    readonly status: number | null = null,
  ) {
    super(`remote replica '${replica}': ${phase === 'connect' ? 'could not connect' : phase === 'status' ? `answered HTTP ${status}` : phase === 'timeout' ? 'timed out' : 'stream broke'}: ${detail}`);
  }
}
