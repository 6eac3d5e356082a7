// Errors a request or the engine can end with. Each has a fixed `name` (minifiers rename classes)
// and a message that says what to do.

import { SloError } from '../scheduler/slo.js';

export class EngineError extends Error {
  override name = 'EngineError';
}

/** The prompt (plus one output token) does not fit the model's context or the whole KV cache. */
export class PromptTooLongError extends EngineError {
  override name = 'PromptTooLongError';
  constructor(
    readonly promptTokens: number,
    readonly limit: number,
    readonly what: string,
    /** promptTokens is a lower bound (the prompt was refused from a prefix, not counted whole). */
    readonly atLeast = false,
  ) {
    super(`the prompt has ${atLeast ? 'more than ' : ''}${promptTokens} tokens; ${what} holds at most ${limit} (prompt + at least one output token): shorten the prompt or lower max_tokens`);
  }
}

/** The scheduler declined the request (its SLO cannot be met under the current load) and the app's policy is to fail it. */
export class RequestDeclinedError extends SloError {
  constructor(
    app: string,
    readonly requestId: string,
    /** 'not-admitted': offered (RequestOptions.offer) and not admitted at once; nothing of it was queued. */
    readonly reason: 'slo' | 'kv-exhausted' | 'not-admitted',
  ) {
    super(app, 'slo', 'declined');
    this.message =
      reason === 'slo'
        ? `app '${app}': request ${requestId} was declined: its SLO cannot be met under the current load (retry later, relax the app's ttftMs/tpotMs, or set onDecline: 'best-effort')`
        : reason === 'not-admitted'
          ? `app '${app}': request ${requestId} was offered and not admitted: the planner cannot meet its SLO now (send it to another replica, or submit it without offer)`
          : `app '${app}': request ${requestId} was declined: its KV cache need outgrew the whole cache (lower max_tokens or give the engine more kvCacheBytes)`;
  }
}

/** The request was aborted by its caller (an AbortSignal) or by unload(). */
export class AbortError extends EngineError {
  override name = 'AbortError';
  constructor(message = 'the request was aborted') {
    super(message);
  }
}

/** The GPU device was lost: in-flight requests fail; create a new engine to continue. */
export class DeviceLostError extends EngineError {
  override name = 'DeviceLostError';
  constructor(readonly reason: string) {
    super(`the GPU device was lost (${reason}); in-flight requests failed: create a new engine (createEngine) to continue`);
  }
}

/** The engine was unloaded (or failed) and takes no more requests. */
export class EngineClosedError extends EngineError {
  override name = 'EngineClosedError';
  constructor(why = 'the engine was unloaded') {
    super(`${why}; create a new engine (createEngine) to continue`);
  }
}

/** A request parameter the engine cannot honour (names the parameter and what would be valid). */
export class RequestError extends EngineError {
  override name = 'InvalidRequestError';
  constructor(
    readonly param: string,
    problem: string,
  ) {
    super(`'${param}' ${problem}`);
  }
}
