// Where a request goes when the local planner would decline it: the routing policy that the
// package's Router (api/router.ts) and the simulator share. Pure: no I/O, no clock of its own.
//
// Per remote replica it keeps:
// - a latency estimate learned online: first-token time against the prompt work ahead of the
//   first token (this prompt plus the prompts there still waiting for theirs: servers prefill in
//   arrival order) and the replica's concurrency when the request was sent
//   (ttft ~ a + b x (queued + prompt) + c x concurrency), and time per
//   output token against concurrency (tpot ~ d + e x concurrency), each an exponentially weighted
//   least-squares fit (recent requests count more: a replica's load changes);
// - its health: consecutive failures open a circuit for a backoff that doubles per failure
//   (1 s .. 30 s); after it one probe is let through, and a success closes the circuit;
// - its capacity: at most `maxInFlight` requests at once (a remote is someone else's GPU).
// A request goes to the healthy replica under capacity whose predicted TTFT and TPOT meet the app's
// SLO with the most room; an idle replica never measured (or measured long ago) comes first (the
// request is its measurement); one not measured yet but busy is tried after the measured (the operator
// named it as somewhere to send work; its capacity and the Router's first-token timeout bound the
// risk), and any replica where a request has waited longer than this one's TTFT budget for its
// first token is skipped, measured or not (the fits learn only from first tokens that came). Prompt length is whatever unit the caller measures consistently
// (the Router counts characters of the prompt text: it does not tokenize for remote models).
//
// Invariants: predictions are null until a fit has as many observations as parameters; a replica
// whose circuit is open, or at capacity, is never chosen.

import { judgeRequest } from './attainment.js';

/** Exponentially weighted least squares over a few features (ridge-regularised, so never singular). */
export class WeightedFit {
  private readonly xtx: number[];
  private readonly xty: number[];
  private n = 0;

  constructor(
    readonly features: number,
    /** Weight kept by old observations per new one. */
    private readonly decay = 0.97,
    private readonly ridge = 1e-6,
  ) {
    this.xtx = new Array<number>(features * features).fill(0);
    this.xty = new Array<number>(features).fill(0);
  }

  get observations(): number {
    return this.n;
  }

  add(x: readonly number[], y: number): void {
    if (x.length !== this.features || !x.every(Number.isFinite) || !Number.isFinite(y)) return;
    const k = this.features;
    for (let i = 0; i < k * k; i++) this.xtx[i]! *= this.decay;
    for (let i = 0; i < k; i++) this.xty[i]! *= this.decay;
    for (let i = 0; i < k; i++) {
      this.xty[i]! += x[i]! * y;
      for (let j = 0; j < k; j++) this.xtx[i * k + j]! += x[i]! * x[j]!;
    }
    this.n++;
  }

  /** The coefficients, or null before `features` observations. */
  coefficients(): number[] | null {
    const k = this.features;
    if (this.n < k) return null;
    // Gaussian elimination on [XtX + ridge·diag(XtX) | Xty] (a ridge relative to each feature's own
    // scale, so prompt lengths in the thousands do not swamp the intercept), partial pivoting.
    const m = Array.from({ length: k }, (_, i) => [...this.xtx.slice(i * k, i * k + k).map((v, j) => v + (i === j ? this.ridge * v + 1e-12 : 0)), this.xty[i]!]);
    // A feature that has not varied (every prompt the same length so far) cannot be told from the
    // intercept (feature 0): its coefficient is 0 rather than a share of the intercept.
    const w = this.xtx[0]!;
    for (let i = 1; i < k && w > 0; i++) {
      const mean = this.xtx[i]! / w;
      const second = this.xtx[i * k + i]! / w;
      if (second - mean * mean <= 1e-9 * Math.max(second, 1e-300)) {
        for (let j = 0; j < k; j++) m[i]![j] = m[j]![i] = i === j ? 1 : 0;
        m[i]![k] = 0;
      }
    }
    for (let c = 0; c < k; c++) {
      let p = c;
      for (let r = c + 1; r < k; r++) if (Math.abs(m[r]![c]!) > Math.abs(m[p]![c]!)) p = r;
      [m[c], m[p]] = [m[p]!, m[c]!];
      const d = m[c]![c]!;
      if (Math.abs(d) < 1e-300) return null;
      for (let r = 0; r < k; r++) {
        if (r === c) continue;
        const f = m[r]![c]! / d;
        for (let j = c; j <= k; j++) m[r]![j]! -= f * m[c]![j]!;
      }
    }
    return m.map((row, i) => row[k]! / row[i]!);
  }

  predict(x: readonly number[]): number | null {
    const c = this.coefficients();
    if (!c) return null;
    return c.reduce((s, v, i) => s + v * x[i]!, 0);
  }
}

/** A replica's latency as learned from its requests. */
export class LatencyEstimate {
  private readonly ttft = new WeightedFit(3);
  private readonly tpot = new WeightedFit(2);
  /** The last first-token time and token gap seen: the prediction while the fit is young. */
  private lastTtft = 0;
  private lastTpot = 0;
  /** When the last first token was observed (-Infinity: never). */
  lastObservedMs = -Infinity;

  /**
   * A first token came `ttftMs` after sending a `promptLength` prompt with `concurrency` others in
   * flight, `queued` of prompt length among them still waiting for their first token (observed at `nowMs`).
   */
  firstToken(promptLength: number, concurrency: number, ttftMs: number, nowMs = 0, queued = 0): void {
    this.ttft.add([1, promptLength + queued, concurrency], ttftMs);
    this.lastTtft = ttftMs;
    this.lastObservedMs = Math.max(this.lastObservedMs, nowMs);
  }

  /** A request with `concurrency` others in flight at its start produced tokens `tpotMs` apart. */
  perToken(concurrency: number, tpotMs: number): void {
    this.tpot.add([1, concurrency], tpotMs);
    this.lastTpot = tpotMs;
  }

  get observed(): { ttft: number; tpot: number } {
    return { ttft: this.ttft.observations, tpot: this.tpot.observations };
  }

  /** Predicted TTFT; with too few observations for the fit, the last one seen (null: none). */
  predictTtft(promptLength: number, concurrency: number, queued = 0): number | null {
    if (this.ttft.observations === 0) return null;
    const p = this.ttft.predict([1, promptLength + queued, concurrency]);
    return p === null ? this.lastTtft : Math.max(0, p);
  }

  predictTpot(concurrency: number): number | null {
    if (this.tpot.observations === 0) return null;
    const p = this.tpot.predict([1, concurrency]);
    return p === null ? this.lastTpot : Math.max(0, p);
  }
}

/** A circuit breaker: open after a failure for a backoff doubling per consecutive failure. */
export class ReplicaHealth {
  private consecutive = 0;
  private openUntil = -Infinity;
  private probing = false;
  failures = 0;
  successes = 0;

  constructor(
    private readonly baseMs = 1000,
    private readonly maxMs = 30_000,
  ) {}

  /** Whether a request may go there now (one probe at a time once a backoff has passed). */
  available(nowMs: number): boolean {
    if (this.consecutive === 0) return true;
    return nowMs >= this.openUntil && !this.probing;
  }

  /** A request was sent (a probe while the circuit is half open). */
  sent(nowMs: number): void {
    if (this.consecutive > 0 && nowMs >= this.openUntil) this.probing = true;
  }

  /** A request sent as a probe ended with neither outcome (aborted, refused as a bad request): the next may probe. */
  release(): void {
    this.probing = false;
  }

  success(): void {
    this.successes++;
    this.consecutive = 0;
    this.probing = false;
  }

  failure(nowMs: number): void {
    this.failures++;
    this.consecutive++;
    this.probing = false;
    this.openUntil = nowMs + Math.min(this.maxMs, this.baseMs * 2 ** (this.consecutive - 1));
  }

  /** 'closed' (healthy), 'open' (skipped until the backoff ends) or 'half-open' (one probe allowed). */
  state(nowMs: number): 'closed' | 'open' | 'half-open' {
    return this.consecutive === 0 ? 'closed' : nowMs < this.openUntil ? 'open' : 'half-open';
  }
}

export interface RemoteState {
  name: string;
  /** Requests sent there and not ended. */
  inFlight: number;
  /** Requests there still waiting for their first token: when each was sent (ms) and its prompt length. */
  awaitingFirst: { sentAt: number; length: number }[];
  /** At most this many at once (Infinity: no limit). */
  maxInFlight: number;
  latency: LatencyEstimate;
  health: ReplicaHealth;
}

/** Prompt length at a replica still waiting for its first token. */
export function queuedLength(r: RemoteState): number {
  let n = 0;
  for (const w of r.awaitingFirst) n += w.length;
  return n;
}

export function remoteState(name: string, maxInFlight = Infinity, backoffMs = 1000): RemoteState {
  if (!(maxInFlight >= 1)) throw new RangeError(`replica '${name}': maxInFlight must be >= 1, got ${maxInFlight}`);
  if (!(backoffMs > 0 && backoffMs <= 30_000)) throw new RangeError(`replica '${name}': the circuit's first backoff must be in (0, 30000] ms, got ${backoffMs}`);
  return { name, inFlight: 0, awaitingFirst: [], maxInFlight, latency: new LatencyEstimate(), health: new ReplicaHealth(backoffMs) };
}

/** What a request needs of a replica: its prompt length and its SLO. */
export interface RouteRequest {
  promptLength: number;
  /** First-token budget from now, ms. */
  ttftMs: number;
  /** The tightest TPOT of its stages, ms. */
  tpotMs: number;
}

export interface RouteChoice {
  index: number;
  /** Predicted TTFT and TPOT there (null: no observation yet, an idle replica's probe). */
  ttftMs: number | null;
  tpotMs: number | null;
}

/**
 * The replica predicted to meet `req` with the most room (the smallest of predicted / budget,
 * worst of TTFT and TPOT), skipping `exclude`d indices, open circuits and full replicas; null when
 * none is predicted to meet it. An idle replica whose estimate is older than `staleMs` is preferred:
 * its request refreshes the estimate (without this a replica measured once at a bad moment would
 * never be chosen again while another looks better).
 */
export function chooseReplica(replicas: readonly RemoteState[], req: RouteRequest, nowMs: number, exclude: ReadonlySet<number> = new Set(), staleMs = 5000): RouteChoice | null {
  let best: RouteChoice | null = null;
  let bestScore = Infinity;
  replicas.forEach((r, index) => {
    if (exclude.has(index) || r.inFlight >= r.maxInFlight || !r.health.available(nowMs)) return;
    // A request there has waited longer than this one's whole budget: this one would too.
    if (r.awaitingFirst.some((w) => nowMs - w.sentAt > req.ttftMs)) return;
    const ttft = r.latency.predictTtft(req.promptLength, r.inFlight, queuedLength(r));
    const tpot = r.latency.predictTpot(r.inFlight);
    let score: number;
    if (r.inFlight === 0 && nowMs - r.latency.lastObservedMs > staleMs) {
      // Idle and never measured, or measured long ago: this request is its measurement.
      score = 0;
    } else if (ttft === null) {
      // Never measured and busy with its first requests: after every measured one that fits.
      score = 1;
    } else {
      score = Math.max(ttft / req.ttftMs, tpot === null ? 0 : tpot / req.tpotMs);
      if (score > 1) return;
    }
    if (score < bestScore) {
      bestScore = score;
      best = { index, ttftMs: ttft, tpotMs: tpot };
    }
  });
  return best;
}

/**
 * Did a routed request meet its app's SLO, by the engine's own rule (attainment.ts): its first token
 * within 1.05x the TTFT, and every 20th token on the TPOT deadline curve within 5%.
 * `tokenTimes`: when each output token reached the router (tokens of one chunk share its time).
 * `ttftMs` null (a slowdown-based TTFT, which a remote's speed cannot be judged against): the TTFT
 * counts as met and the curve starts at the first token. One TPOT for all tokens: the router does
 * not see stage boundaries (`</think>`), so a staged app is judged at its tightest stage's TPOT.
 */
export function routeMet(slo: { ttftMs: number | null; tpotMs: number }, arrivalMs: number, tokenTimes: readonly number[]): boolean {
  const first = tokenTimes[0];
  if (first === undefined) return false;
  const ttftSloMs = slo.ttftMs ?? first - arrivalMs;
  return judgeRequest({ id: 'routed', app: 'routed', declined: false, rounds: [{ arrivalMs, ttftSloMs, stages: [{ name: 'all', tpotMs: slo.tpotMs }], stageStarts: [0], tokenTimes, finished: true }] })
    .met;
}
