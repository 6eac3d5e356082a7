// Typed errors of the paged KV cache's bookkeeping. Each names the sequence and the value that was
// wrong, so a scheduler (or a person reading a log) knows what to change without a debugger.

export class KvError extends Error {
  constructor(message: string) {
    super(message);
    this.name = new.target.name;
  }
}

/** The cache operations that can run out of pages. */
export type KvAllocatingOp = 'reserve' | 'fork';

/**
 * Not enough free pages for an operation (with prefix caching, free plus evictable cached pages:
 * `pagesFree` counts both). Recoverable: the call that threw changed NOTHING (no page
 * allocated, no refcount touched, no hook called), so the scheduler can preempt or evict a sequence
 * and retry the same call.
 */
export class KvCacheFullError extends KvError {
  constructor(
    readonly op: KvAllocatingOp,
    readonly sequenceId: number,
    readonly pagesNeeded: number,
    readonly pagesFree: number,
  ) {
    super(`${op} on sequence ${sequenceId} needs ${pagesNeeded} free KV page(s) but only ${pagesFree} ` + `are free; the cache was left unchanged`);
  }
}

/**
 * A call the cache cannot honour whatever its state: an unknown (or already freed) sequence, a
 * duplicate id, a truncate beyond the length, a negative count, a bad constructor option. The call
 * changed nothing. `sequenceId` is undefined for constructor options.
 */
export class KvUsageError extends KvError {
  constructor(
    message: string,
    readonly sequenceId: number | undefined,
    readonly value: unknown,
  ) {
    super(message);
  }
}
