// Push-to-pull: the backend pushes a request's events as they come; the caller pulls them with
// for await. Unbounded, but a request's events are bounded by its max_tokens.

export class EventQueue<T> implements AsyncIterable<T> {
  private readonly items: T[] = [];
  private waiter: { resolve: (r: IteratorResult<T>) => void; reject: (e: unknown) => void } | null = null;
  private ended = false;
  private failure: Error | null = null;

  push(item: T): void {
    if (this.ended) return;
    if (this.waiter) {
      const w = this.waiter;
      this.waiter = null;
      w.resolve({ value: item, done: false });
    } else this.items.push(item);
  }

  end(): void {
    this.ended = true;
    if (this.waiter && this.items.length === 0) {
      const w = this.waiter;
      this.waiter = null;
      w.resolve({ value: undefined, done: true });
    }
  }

  /** Fail the reader at once (abort): queued items are dropped. */
  fail(error: Error): void {
    if (this.failure !== null) return;
    this.failure = error;
    this.ended = true;
    this.items.length = 0;
    if (this.waiter) {
      const w = this.waiter;
      this.waiter = null;
      w.reject(error);
    }
  }

  next(): Promise<IteratorResult<T>> {
    if (this.failure !== null) return Promise.reject(this.failure);
    if (this.items.length > 0) return Promise.resolve({ value: this.items.shift()!, done: false });
    if (this.ended) return Promise.resolve({ value: undefined, done: true });
    return new Promise((resolve, reject) => (this.waiter = { resolve, reject }));
  }

  [Symbol.asyncIterator](): AsyncIterator<T> {
    return { next: () => this.next(), return: async () => ({ value: undefined, done: true }) };
  }
}
