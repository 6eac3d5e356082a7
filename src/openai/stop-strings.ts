// Stop strings over streamed text. A stop string can span deltas (and so token boundaries), so the
// matcher holds back the longest suffix of what it has that could still grow into a stop string,
// and emits the rest. When one completes, it emits the text before it and never the stop string
// itself (OpenAI's behaviour), and stays stopped. "First" is the occurrence that ends first, as
// generation one character at a time would hit it (at a tie, the one that starts first), so the
// result does not depend on how the text was split into deltas.
//
// Why this is exact: text is emitted at position k only if no stop string starts at k within the
// text seen so far and the rest of that text is not a prefix of one, so no later text can make a
// stop string start at k.

export interface StopPush {
  /** Text safe to emit now. */
  text: string;
  /** A stop string matched: end the request; `text` is the last of its output. */
  stopped: boolean;
  /** The stop string that matched (the one ending first; the longest at a tie). */
  stop?: string;
}

export class StopMatcher {
  private readonly stops: readonly string[];
  private held = '';
  private done = false;
  private matched: string | null = null;

  constructor(stops: readonly string[]) {
    for (const s of stops) if (typeof s !== 'string' || s === '') throw new RangeError(`StopMatcher: stop strings must be non-empty strings (got ${JSON.stringify(s)})`);
    this.stops = [...new Set(stops)];
  }

  /** Whether a stop string has matched. */
  get stopped(): boolean {
    return this.matched !== null;
  }

  /** The matched stop string, or null. */
  get stop(): string | null {
    return this.matched;
  }

  push(delta: string): StopPush {
    if (this.done) return this.matched === null ? { text: '', stopped: false } : { text: '', stopped: true, stop: this.matched };
    if (this.stops.length === 0) return { text: delta, stopped: false };
    const buf = this.held + delta;
    let at = -1;
    let which = '';
    for (const s of this.stops) {
      const i = buf.indexOf(s);
      if (i < 0) continue;
      const end = i + s.length;
      const bestEnd = at + which.length;
      if (at < 0 || end < bestEnd || (end === bestEnd && i < at)) [at, which] = [i, s];
    }
    if (at >= 0) {
      this.done = true;
      this.held = '';
      this.matched = which;
      return { text: buf.slice(0, at), stopped: true, stop: which };
    }
    const keep = this.partialSuffix(buf);
    this.held = buf.slice(buf.length - keep);
    return { text: buf.slice(0, buf.length - keep), stopped: false };
  }

  /** The length of the longest suffix of `buf` that is a proper prefix of a stop string. */
  private partialSuffix(buf: string): number {
    let best = 0;
    for (const s of this.stops) {
      for (let n = Math.min(s.length - 1, buf.length); n > best; n--) {
        if (buf.endsWith(s.slice(0, n))) {
          best = n;
          break;
        }
      }
    }
    return best;
  }

  /** Generation ended without a stop string: the held text. The matcher is done after. */
  flush(): string {
    if (this.done) return '';
    this.done = true;
    const out = this.held;
    this.held = '';
    return out;
  }
}
