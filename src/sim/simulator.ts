// A discrete-event simulator of the engine loop: the clock is a performance profile (each step takes
// the profile's raw predicted time for its shape), and the scheduler is the same object the engine
// drives (any `Scheduler`). Only the simulator sees the truth: output lengths, stage lengths, and
// acceptance draws at each app's alpha. Deterministic per seed; the draws are keyed by (seed,
// request, round, draw index), so every scheduler sees the same random numbers for the same request.
//
// Tool-calling requests run their rounds as separate scheduler requests: round r arrives tool_ms after
// round r-1 finished and its prompt is the whole conversation so far. Without a prefix cache it
// prefills all of it (its KV is not kept across rounds). With `prefixCache` (prefix-cache.ts, one per
// replica) a round's prompt hits the cached conversation of the rounds before it, and any request
// hits its app's shared prefix (prefix_id) once some request has prefilled it: the hit goes to the
// scheduler as `cachedTokens`. The TTFT SLO stays what it is for the whole prompt (a hit makes it
// easier, not tighter).

import type { RequestTimeline, RoundTimeline } from '../scheduler/attainment.js';
import type { PerformanceModel } from '../scheduler/perf-model.js';
import type { SchedRequest, Scheduler, SchedulerEvent, StepOutcome, StepPlan } from '../scheduler/types.js';
import { chooseReplica, queuedLength, remoteState, type RemoteState } from '../scheduler/routing.js';
import { PrefixCache, type PrefixCacheConfig, type PrefixCacheStats } from './prefix-cache.js';
import type { RemoteProfile } from './remote-replica.js';
import type { ResolvedTrace, SimRequestSpec, SimRound } from './trace.js';

export interface SimConfig {
  trace: ResolvedTrace;
  /** The clock: a step lasts clock.predictRaw(its shape). */
  clock: PerformanceModel;
  makeScheduler: (replica: number) => Scheduler;
  /** Replicas (multi-replica routing: each request tries them in turn from a round-robin start). */
  replicas?: number;
  seed: number;
  /** Acceptance rate for apps whose trace gives none (default 0.7). */
  alpha?: number;
  /** Stop simulating at this time, ms (default: when all requests are done). */
  maxTimeMs?: number;
  /**
   * Stop early once more than `max` requests with index in [from, to) are certain misses (declined,
   * or no first token by 1.05x their TTFT budget): a capacity search only needs to know the rate
   * fails. The result then has `stoppedEarly` set and unfinished timelines.
   */
  missBudget?: { from: number; to: number; max: number };
  /** Model the engine's prefix cache (default: none; every prompt is prefilled in full). */
  prefixCache?: PrefixCacheConfig;
  /**
   * Remote replicas behind a Router (remote-replica.ts): a request the local replicas' planners do
   * not admit at once goes to the one the routing policy (scheduler/routing.ts) predicts to meet
   * its SLO; where none is, the last local replica takes it under its own policy.
   */
  remotes?: readonly RemoteProfile[];
}

export interface SimResult {
  timelines: RequestTimeline[];
  steps: number;
  endMs: number;
  /** Mean rows per step and the fraction of steps with drafts, for reports. */
  meanRows: number;
  /** Draft tokens proposed and accepted over the run. */
  drafted: number;
  accepted: number;
  /** Requests whose KV a plan dropped (recompute preemptions; with a prefix cache, also reclaimed hits). */
  preemptions: number;
  /** Certain misses counted by missBudget when the run stopped early (else undefined). */
  stoppedEarly?: number;
  /** With a prefix cache: hit, prompt and reclaimed tokens, and pages evicted, over all replicas. */
  prefixCache?: PrefixCacheStats;
  /** Rounds served by remote replicas (with `remotes`). */
  remoteRounds: number;
}

interface Live {
  spec: SimRequestSpec;
  round: number;
  r: SimRound;
  timeline: RoundTimeline & { tokenTimes: number[]; stageStarts: number[] };
  total: number;
  target: number;
  prefilled: number;
  generated: number;
  draws: number;
  /** Tokens this round prefills: the conversation so far plus the round's own prompt. */
  prompt: number;
  replica: number;
  /** KV tokens held (the scheduler's accounting), tracked only with a prefix cache. */
  kv: number;
}

interface Replica {
  sched: Scheduler;
  busyUntil: number;
  plan: StepPlan | null;
  /** Decisions its last complete() returned, not yet applied. */
  decided: SchedulerEvent[];
}

export function simulate(cfg: SimConfig): SimResult {
  const nReplicas = cfg.replicas ?? 1;
  const replicas: Replica[] = Array.from({ length: nReplicas }, (_, i) => ({ sched: cfg.makeScheduler(i), busyUntil: 0, plan: null, decided: [] }));
  const caches = cfg.prefixCache?.enabled ? replicas.map(() => new PrefixCache(cfg.prefixCache!)) : null;
  const timelines = cfg.trace.requests.map((spec): RequestTimeline => ({ id: spec.id, app: spec.app, declined: false, rounds: [] }));
  const index = new Map(cfg.trace.requests.map((s, i) => [s.id, i]));
  const live = new Map<string, Live>();
  const history = new Map<string, number>();
  // Arrivals, kept sorted by (time, order).
  const arrivals: { t: number; spec: SimRequestSpec; round: number; order: number }[] = cfg.trace.requests.map((spec, i) => ({ t: spec.arrivalMs, spec, round: 0, order: i }));
  arrivals.sort((a, b) => a.t - b.t || a.order - b.order);
  let head = 0;
  let order = arrivals.length;
  let rr = 0;
  let now = 0;
  let steps = 0;
  let rows = 0;
  let drafted = 0;
  let accepted = 0;
  let preemptions = 0;
  // Default horizon: a day of simulated time after the last arrival (a guard, never reached by a
  // run that makes progress).
  const lastArrival = cfg.trace.requests.reduce((m, r) => Math.max(m, r.arrivalMs), 0);
  const maxTime = cfg.maxTimeMs ?? lastArrival + 86_400_000;
  const budget = cfg.missBudget;
  const missed = new Set<number>();
  const noteMiss = (i: number): void => {
    if (budget && i >= budget.from && i < budget.to) missed.add(i);
  };
  // Rounds waiting for their first token, by TTFT-miss time (checked as the clock advances).
  const firstTokenWatch: { at: number; st: Live }[] = [];
  // Remote replicas: the routing policy's view of each, and their future events (first tokens and
  // ends, when the policy learns of them), sorted by time.
  const remotes = cfg.remotes ?? [];
  const remoteStates: RemoteState[] = remotes.map((r) => remoteState(r.name, r.maxInFlight));
  const remoteEvents: { t: number; order: number; run: () => void }[] = [];
  let remoteRounds = 0;
  const atTime = (t: number, run: () => void): void => {
    const ev = { t, order: order++, run };
    let i = remoteEvents.length;
    while (i > 0 && remoteEvents[i - 1]!.t > t) i--;
    remoteEvents.splice(i, 0, ev);
  };

  const insertArrival = (a: { t: number; spec: SimRequestSpec; round: number; order: number }): void => {
    let i = arrivals.length;
    while (i > head && (arrivals[i - 1]!.t > a.t || (arrivals[i - 1]!.t === a.t && arrivals[i - 1]!.order > a.order))) i--;
    arrivals.splice(i, 0, a);
  };

  const schedId = (spec: SimRequestSpec, round: number): string => (spec.rounds.length > 1 ? `${spec.id}#${round}` : spec.id);

  const arrive = (spec: SimRequestSpec, round: number, t: number): void => {
    const r = spec.rounds[round]!;
    const app = cfg.trace.apps.get(spec.app)!;
    const carried = history.get(spec.id) ?? 0;
    const prompt = carried + r.promptTokens;
    const ttftMs = 'ms' in app.ttft ? app.ttft.ms : app.ttft.slowdown * cfg.clock.zeroLoadPrefillMs(prompt);
    const total = Math.min(
      r.maxTokens,
      r.stageTokens.reduce((a, b) => a + b, 0),
    );
    const id = schedId(spec, round);
    const timeline = { arrivalMs: t, ttftSloMs: ttftMs, stages: r.stages, stageStarts: [0], tokenTimes: [] as number[], finished: false };
    timelines[index.get(spec.id)!]!.rounds.push(timeline);
    // The true length goes along for the benchmark-only 'oracle' reservation (nothing else reads it).
    const req: SchedRequest = { id, app: spec.app, arrivalMs: t, promptTokens: prompt, maxTokens: r.maxTokens, ttftMs, stages: r.stages, oracleOutputTokens: Math.max(1, total) };
    const state: Live = { spec, round, r, timeline, total: Math.max(1, total), target: prompt, prefilled: 0, generated: 0, draws: 0, prompt, replica: 0, kv: 0 };
    // A round without its first token by 1.05x its TTFT budget is a certain miss (missBudget).
    if (budget) firstTokenWatch.push({ at: t + 1.05 * ttftMs, st: state });
    // The request as replica k sees it: with replica k's prefix-cache hit.
    const forReplica = (k: number): SchedRequest => {
      const cached = caches ? caches[k]!.lookup(spec.app, spec.id, spec.prefix, prompt) : 0;
      return cached > 0 ? { ...req, cachedTokens: cached } : req;
    };
    const taken = (k: number, sent: SchedRequest): void => {
      state.replica = k;
      live.set(id, state);
      if (!caches) return;
      const cached = caches[k]!.acquire(id, spec.app, spec.id, spec.prefix, prompt);
      if (cached !== (sent.cachedTokens ?? 0)) throw new Error(`prefix cache: '${id}' was offered ${sent.cachedTokens ?? 0} cached tokens but holds ${cached}`);
      state.prefilled = cached;
      state.kv = cached;
    };
    if (nReplicas === 1 && remotes.length === 0) {
      const sent = forReplica(0);
      replicas[0]!.sched.submit(sent, t);
      taken(0, sent);
      return;
    }
    const start = rr++ % nReplicas;
    for (let i = 0; i < nReplicas; i++) {
      const k = (start + i) % nReplicas;
      const sent = forReplica(k);
      const decisions = replicas[k]!.sched.offer(sent, t, remotes.length === 0 && i === nReplicas - 1);
      if (decisions) {
        taken(k, sent);
        collectEvents(replicas[k]!, decisions);
        return;
      }
    }
    // Remotes the policy predicts to meet it, best first; one whose KV is full refuses (a 429) and the next is tried.
    const refused = new Set<number>();
    for (;;) {
      const choice = chooseReplica(remoteStates, { promptLength: prompt, ttftMs, tpotMs: Math.min(...r.stages.map((x) => x.tpotMs)) }, t, refused);
      if (!choice) break;
      if (sendRemote(choice.index, state, t)) return;
      refused.add(choice.index);
    }
    // No remote is predicted to meet it: the last local replica under its own policy.
    const k = (start + nReplicas - 1) % nReplicas;
    const sent = forReplica(k);
    const decisions = replicas[k]!.sched.offer(sent, t, true)!;
    taken(k, sent);
    collectEvents(replicas[k]!, decisions);
  };

  /** A round sent to remote `j` at `t`: its tokens come on the remote's timing; the policy learns them as they come. */
  const sendRemote = (j: number, st: Live, t: number): boolean => {
    const rs = remoteStates[j]!;
    const k = rs.inFlight;
    const taken = remotes[j]!.take(t, st.prompt, st.r.maxTokens, k);
    if (!taken) return false;
    const { ttftMs, tpotMs } = taken;
    const queued = queuedLength(rs);
    rs.inFlight++;
    const waiting = { sentAt: t, length: st.prompt };
    rs.awaitingFirst.push(waiting);
    rs.health.sent(t);
    remoteRounds++;
    const first = t + ttftMs;
    for (let i = 0; i < st.total; i++) st.timeline.tokenTimes.push(first + i * tpotMs);
    let bound = 0;
    for (let s = 0; s + 1 < st.r.stageTokens.length; s++) {
      bound += st.r.stageTokens[s]!;
      if (bound < st.total) st.timeline.stageStarts.push(bound);
    }
    st.generated = st.total;
    const end = first + (st.total - 1) * tpotMs;
    atTime(first, () => {
      rs.awaitingFirst.splice(rs.awaitingFirst.indexOf(waiting), 1);
      rs.latency.firstToken(st.prompt, k, ttftMs, first, queued);
    });
    atTime(end, () => {
      taken.release();
      rs.inFlight--;
      rs.health.success();
      if (st.total > 1) rs.latency.perToken(k, tpotMs);
      st.timeline.finished = true;
      const next = st.round + 1;
      if (next < st.spec.rounds.length) {
        history.set(st.spec.id, st.prompt + st.generated);
        insertArrival({ t: end + st.r.toolMs, spec: st.spec, round: next, order: order++ });
      }
    });
    return true;
  };

  /** A replica's decisions: those its last complete() returned, then `fresh`. */
  const collectEvents = (rep: Replica, fresh: readonly SchedulerEvent[]): void => {
    const all = rep.decided.length > 0 ? [...rep.decided, ...fresh] : fresh;
    rep.decided = [];
    for (const ev of all) {
      const st = live.get(ev.id);
      if (!st) continue;
      if (ev.decision !== 'admitted') {
        const i = index.get(st.spec.id)!;
        if (!timelines[i]!.declined) noteMiss(i);
        timelines[i]!.declined = true;
      }
      if (ev.decision === 'declined') {
        live.delete(ev.id);
        caches?.[st.replica]!.release(ev.id);
      }
    }
  };

  const result = (): SimResult => {
    const r: SimResult = { timelines, steps, endMs: now, meanRows: steps > 0 ? rows / steps : 0, drafted, accepted, preemptions, remoteRounds };
    if (caches) {
      r.prefixCache = { hitTokens: 0, promptTokens: 0, reclaimedTokens: 0, evictedPages: 0 };
      for (const c of caches) {
        r.prefixCache.hitTokens += c.stats.hitTokens;
        r.prefixCache.promptTokens += c.stats.promptTokens;
        r.prefixCache.reclaimedTokens += c.stats.reclaimedTokens;
        r.prefixCache.evictedPages += c.stats.evictedPages;
      }
    }
    return r;
  };

  const uniform = (st: Live): number => hashUniform(cfg.seed, index.get(st.spec.id)!, st.round, st.draws++);

  const outcomes = (plan: StepPlan, t: number): StepOutcome[] => {
    const out: StepOutcome[] = [];
    for (const e of plan.entries) {
      const st = live.get(e.id);
      if (!st) continue;
      let emitted = 0;
      let acc: number | undefined;
      if (e.kind === 'prefill') {
        st.prefilled += e.tokens;
        if (st.prefilled >= st.target) emitted = 1;
        if (caches) caches[st.replica]!.setKv(e.id, (st.kv += e.tokens));
      } else {
        const alpha = cfg.trace.apps.get(st.spec.app)!.alpha ?? cfg.alpha ?? 0.7;
        let a = 0;
        while (a < e.draftTokens && uniform(st) < alpha) a++;
        acc = a;
        drafted += e.draftTokens;
        accepted += a;
        emitted = a + 1;
      }
      emitted = Math.min(emitted, st.total - st.generated);
      if (caches && e.kind === 'decode') caches[st.replica]!.setKv(e.id, (st.kv += emitted));
      const before = st.generated;
      st.generated += emitted;
      for (let i = 0; i < emitted; i++) st.timeline.tokenTimes.push(t);
      let stageStartedAt: number | undefined;
      let bound = 0;
      for (let s = 0; s + 1 < st.r.stageTokens.length; s++) {
        bound += st.r.stageTokens[s]!;
        // Token `bound` (0-based) is the next stage's first: it came out in this step.
        if (before <= bound && st.generated > bound && st.timeline.stageStarts.length === s + 1) {
          stageStartedAt = bound;
          st.timeline.stageStarts.push(bound);
          break;
        }
      }
      const finished = st.generated >= st.total;
      out.push({ id: e.id, emitted, finished, ...(acc !== undefined ? { accepted: acc } : {}), ...(stageStartedAt !== undefined ? { stageStartedAt } : {}) });
      if (finished) {
        st.timeline.finished = true;
        live.delete(e.id);
        // Its KV (prompt + output, less the last token, never fed back) stays cached as its conversation.
        caches?.[st.replica]!.release(e.id, { requestId: st.spec.id, tokens: st.prompt + st.generated - 1 });
        const next = st.round + 1;
        if (next < st.spec.rounds.length) {
          history.set(st.spec.id, st.prompt + st.generated);
          insertArrival({ t: t + st.r.toolMs, spec: st.spec, round: next, order: order++ });
        }
      }
    }
    return out;
  };

  for (;;) {
    while (head < arrivals.length && arrivals[head]!.t <= now) {
      const a = arrivals[head++]!;
      arrive(a.spec, a.round, a.t);
    }
    for (const rep of replicas) {
      if (rep.plan || rep.sched.size === 0) continue;
      const { plan, decisions } = rep.sched.step(now);
      collectEvents(rep, decisions);
      if (!plan) continue;
      for (const id of plan.preempt) {
        const st = live.get(id);
        if (!st) continue;
        // Recompute: the prompt and the output so far are prefilled again (without the cache).
        st.prefilled = 0;
        st.target = st.prompt + st.generated;
        preemptions++;
        if (caches) {
          st.kv = 0;
          caches[st.replica]!.preempted(id);
        }
      }
      if (plan.entries.length === 0) continue;
      rep.plan = plan;
      rep.busyUntil = now + cfg.clock.predictRaw(plan);
      steps++;
      rows += plan.tokens;
    }
    let next = head < arrivals.length ? arrivals[head]!.t : Infinity;
    for (const rep of replicas) if (rep.plan) next = Math.min(next, rep.busyUntil);
    if (remoteEvents.length > 0) next = Math.min(next, remoteEvents[0]!.t);
    if (!Number.isFinite(next) || next > maxTime) break;
    if (budget) {
      for (let w = firstTokenWatch.length - 1; w >= 0; w--) {
        const { at, st } = firstTokenWatch[w]!;
        if (st.timeline.tokenTimes.length > 0) firstTokenWatch.splice(w, 1);
        else if (at < next) {
          noteMiss(index.get(st.spec.id)!);
          firstTokenWatch.splice(w, 1);
        }
      }
      if (missed.size > budget.max) return { ...result(), stoppedEarly: missed.size };
    }
    now = Math.max(now, next);
    while (remoteEvents.length > 0 && remoteEvents[0]!.t <= now) remoteEvents.shift()!.run();
    for (const rep of replicas) {
      if (!rep.plan || rep.busyUntil > now) continue;
      const plan = rep.plan;
      rep.plan = null;
      // Applied with the replica's next offer or step (the order the simulator has always used).
      rep.decided.push(...rep.sched.complete(now, outcomes(plan, now)));
    }
    // KV grew and conversations were cached: evict what no longer fits beside the live requests.
    if (caches) for (const c of caches) c.enforce();
  }
  return result();
}

/** A uniform in [0, 1) from four integers (a 32-bit integer hash; independent per key). */
export function hashUniform(a: number, b: number, c: number, d: number): number {
  let h = 0x9e3779b9 ^ Math.imul(a | 0, 0x85ebca6b);
  for (const x of [b, c, d]) {
    h = Math.imul(h ^ (x | 0), 0xc2b2ae35);
    h ^= h >>> 15;
    h = Math.imul(h, 0x27d4eb2f);
    h ^= h >>> 13;
  }
  h = Math.imul(h ^ (h >>> 16), 0x85ebca6b);
  h ^= h >>> 13;
  return (h >>> 0) / 4294967296;
}
