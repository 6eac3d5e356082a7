// SLO attainment (SLOs-Serve, arXiv 2504.08784; README "Scheduler"): did each request meet its SLO, given
// when its tokens came out? The paper's rule: TTFT <= 1.05 x TTFT SLO, and the output tokens, checked
// every 20th, meet the TPOT deadline curve within 5%. Declined requests miss even when best-effort
// finishes them; a round that never produced a token, or did not finish, misses. A multi-round
// (tool-calling) request meets iff every round does, each round on its own timeline.

import { tokenDeadlines } from './slo.js';
import type { StageSlo } from './types.js';

/** The 5% tolerance on TTFT and on the elapsed part of each checked token's deadline. */
export const SLO_TOLERANCE = 1.05;
/** Tokens n (1-based) with n % CHECK_EVERY === 0 are checked against the curve. */
export const CHECK_EVERY = 20;
/** Absorbs floating-point rounding of 1.05 x (a token exactly at the limit passes), ms. */
const EPS_MS = 1e-9;

/** One round of a request as it happened: its SLO and the time of each output token. */
export interface RoundTimeline {
  /** When the round was issued (the request's arrival for round 1, after the tool call for later ones). */
  arrivalMs: number;
  /** Absolute TTFT budget of this round, ms after arrivalMs. */
  ttftSloMs: number;
  stages: readonly StageSlo[];
  /** 0-based output-token index where each begun stage starts; stageStarts[0] = 0. */
  stageStarts: readonly number[];
  /** ms of each output token, in order. */
  tokenTimes: readonly number[];
  finished: boolean;
}

export interface RequestTimeline {
  id: string;
  app: string;
  declined: boolean;
  rounds: RoundTimeline[];
}

/** Timing only: a round's verdict ignores whether the request was declined (the request's does not). */
export interface RoundVerdict {
  met: boolean;
  ttftMet: boolean;
  /** First token - arrival, ms; null when no token came. */
  ttftMs: number | null;
  stages: { name: string; met: boolean }[];
}

export interface RequestVerdict {
  id: string;
  app: string;
  met: boolean;
  declined: boolean;
  rounds: RoundVerdict[];
}

const within = (actual: number, budget: number): boolean => actual <= SLO_TOLERANCE * budget + EPS_MS;

function checkRound(r: RoundTimeline, where: string): void {
  const finite = (x: number, what: string): void => {
    if (!Number.isFinite(x)) throw new RangeError(`${where}: ${what} must be finite, got ${x}`);
  };
  finite(r.arrivalMs, 'arrivalMs');
  finite(r.ttftSloMs, 'ttftSloMs');
  if (r.stages.length === 0) throw new RangeError(`${where}: no stages`);
  r.tokenTimes.forEach((t, i) => {
    finite(t, `tokenTimes[${i}]`);
    if (i > 0 && t < r.tokenTimes[i - 1]!) throw new RangeError(`${where}: tokenTimes must be non-decreasing (index ${i})`);
  });
}

function judgeRound(r: RoundTimeline, where: string): RoundVerdict {
  checkRound(r, where);
  const n = r.tokenTimes.length;
  // tokenDeadlines also validates stageStarts against the stages.
  const first = r.tokenTimes[0];
  const t0 = Math.max(r.arrivalMs + r.ttftSloMs, first ?? -Infinity);
  const deadlines = tokenDeadlines(
    t0,
    r.stages.map((s) => s.tpotMs),
    r.stageStarts,
    n,
  );
  if (first === undefined) return { met: false, ttftMet: false, ttftMs: null, stages: r.stages.map((s) => ({ name: s.name, met: false })) };

  const ttftMs = first - r.arrivalMs;
  const ttftMet = within(ttftMs, r.ttftSloMs);
  const checked = r.stages.map(() => 0);
  const late = r.stages.map(() => 0);
  let stage = 0;
  for (let k = CHECK_EVERY; k <= n; k += CHECK_EVERY) {
    while (stage + 1 < r.stageStarts.length && r.stageStarts[stage + 1]! <= k - 1) stage++;
    checked[stage]!++;
    // Only the elapsed part of the curve gets the 5%: time(n) - t0 <= 1.05 (deadline(n) - t0).
    if (!within(r.tokenTimes[k - 1]! - t0, deadlines[k - 1]! - t0)) late[stage]!++;
  }
  const stages = r.stages.map((s, i) => {
    // A round cut short did not serve the stage it stopped in, nor any later one.
    const completed = r.finished || (i + 1 < r.stageStarts.length && r.stageStarts[i + 1]! <= n);
    const timely = checked[i]! > 0 ? late[i] === 0 : ttftMet;
    return { name: s.name, met: completed && timely };
  });
  const met = r.finished && ttftMet && late.every((x) => x === 0);
  return { met, ttftMet, ttftMs, stages };
}

/** The verdict on one request; throws RangeError on a malformed timeline (a caller bug). */
export function judgeRequest(t: RequestTimeline): RequestVerdict {
  const rounds = t.rounds.map((r, i) => judgeRound(r, `request '${t.id}' round ${i}`));
  // No rounds means no first token: a miss.
  const met = !t.declined && rounds.length > 0 && rounds.every((r) => r.met);
  return { id: t.id, app: t.app, met, declined: t.declined, rounds };
}

export interface Percentiles {
  p50: number;
  p90: number;
  p99: number;
}

export interface StageAttainment {
  requests: number;
  met: number;
  attainment: number;
}

export interface AppAttainment {
  requests: number;
  met: number;
  attainment: number;
  declined: number;
  /** Per stage name: requests with that stage in some round; met = not declined and met in every such round. */
  stages: Record<string, StageAttainment>;
  /** Over rounds that produced a first token. */
  ttftMs: Percentiles;
  /** Over rounds with at least 2 tokens: mean gap between consecutive tokens (NaN without timelines). */
  tpotMs: Percentiles;
}

export interface AttainmentSummary {
  requests: number;
  met: number;
  attainment: number;
  declined: number;
  perApp: Record<string, AppAttainment>;
}

/** Met / requests; an empty set attains 1 (nothing was missed), with requests = 0 showing it is empty. */
function ratio(met: number, requests: number): number {
  return requests === 0 ? 1 : met / requests;
}

/** Linear-interpolated percentiles; NaN when there is no sample (0 would read as "instant"). */
function percentiles(values: number[]): Percentiles {
  if (values.length === 0) return { p50: Number.NaN, p90: Number.NaN, p99: Number.NaN };
  const sorted = [...values].sort((a, b) => a - b);
  const q = (p: number): number => {
    const pos = p * (sorted.length - 1);
    const lo = Math.floor(pos);
    const hi = Math.min(sorted.length - 1, lo + 1);
    return sorted[lo]! + (pos - lo) * (sorted[hi]! - sorted[lo]!);
  };
  return { p50: q(0.5), p90: q(0.9), p99: q(0.99) };
}

/**
 * Attainment overall and per app (and per stage). TTFT percentiles come from the timelines when
 * given, else from the verdicts (the same numbers); TPOT needs the timelines, matched by request id.
 */
export function summarize(verdicts: readonly RequestVerdict[], timelines?: readonly RequestTimeline[]): AttainmentSummary {
  const byId = new Map((timelines ?? []).map((t) => [t.id, t]));
  interface Acc {
    requests: number;
    met: number;
    declined: number;
    stages: Map<string, { requests: number; met: number }>;
    ttft: number[];
    tpot: number[];
  }
  const apps = new Map<string, Acc>();
  let met = 0;
  let declined = 0;
  for (const v of verdicts) {
    let a = apps.get(v.app);
    if (!a) apps.set(v.app, (a = { requests: 0, met: 0, declined: 0, stages: new Map(), ttft: [], tpot: [] }));
    a.requests++;
    if (v.met) {
      a.met++;
      met++;
    }
    if (v.declined) {
      a.declined++;
      declined++;
    }

    const stageMet = new Map<string, boolean>();
    for (const r of v.rounds) for (const s of r.stages) stageMet.set(s.name, (stageMet.get(s.name) ?? true) && s.met && !v.declined);
    for (const [name, ok] of stageMet) {
      let s = a.stages.get(name);
      if (!s) a.stages.set(name, (s = { requests: 0, met: 0 }));
      s.requests++;
      if (ok) s.met++;
    }

    const t = byId.get(v.id);
    if (t) {
      for (const r of t.rounds) {
        const times = r.tokenTimes;
        if (times.length >= 1) a.ttft.push(times[0]! - r.arrivalMs);
        if (times.length >= 2) a.tpot.push((times[times.length - 1]! - times[0]!) / (times.length - 1));
      }
    } else {
      for (const r of v.rounds) if (r.ttftMs !== null) a.ttft.push(r.ttftMs);
    }
  }
  const perApp: Record<string, AppAttainment> = {};
  for (const [app, a] of apps) {
    const stages: Record<string, StageAttainment> = {};
    for (const [name, s] of a.stages) stages[name] = { ...s, attainment: ratio(s.met, s.requests) };
    perApp[app] = {
      requests: a.requests,
      met: a.met,
      attainment: ratio(a.met, a.requests),
      declined: a.declined,
      stages,
      ttftMs: percentiles(a.ttft),
      tpotMs: percentiles(a.tpot),
    };
  }
  return { requests: verdicts.length, met, attainment: ratio(met, verdicts.length), declined, perApp };
}

/**
 * How requests are scored. 'strict' (the default everywhere): one unit per request, met as
 * judgeRequest says. 'paper': the rule the SLOs-Serve authors' code scores with (gulang2019/SLOServe,
 * init commit c9dbc0d, SLOsServe/scheduler/struct.py; unchanged at their HEAD), to compare like the
 * paper does (design/slos-serve.md, "What the authors' code actually compares").
 */
export type AttainmentMetric = 'strict' | 'paper';

/** Their tolerances: satisfy_sla(ttft_tolerance = 0.05, tpot_tolerance = 0.05), struct.py L649 (L790-791, L1279-1280). */
const PAPER_TTFT_TOLERANCE = 0.05;
const PAPER_TPOT_TOLERANCE = 0.05;
/** Their check interval: range(20, output_length, 20) plus output_length, struct.py L657-661 (hard-coded 20). */
const PAPER_CHECK_EVERY = 20;

/**
 * One round under the authors' rule, RequestOutput.satisfy_sla (struct.py L649-671), which is what
 * their attainment averages (Schedule._update L999, over RequestOutput.from_instance of every
 * instance, L861):
 * - TTFT: misses iff first token > arrival + TTFT SLO x 1.05 (L654; at exactly 1.05x it passes).
 * - TPOT: ONE TPOT for every token, `tpot_slo` = req.tpot() = sla.tpot_per_token (L693, L459-464).
 *   For reasoning their SLO string is 'ttft:answer|thinking' (e.g. FastThink '3.0:0.1|0.05', L29):
 *   the first TPOT listed is tpot_per_token, the answer's; the thinking TPOT (tpot_per_token_thinking,
 *   used by ttnt() for tokens up to generation_start, L466-471) is only used for scheduling, never for
 *   scoring. So in our stages (think, answer) the paper's TPOT is the LAST stage's: the thinking
 *   stage is judged at the answer's (looser) TPOT, and the answer may spend slack the fast thinking
 *   banked. Their model has at most these two stages; with more we take the last one too.
 * - Curve: t0 = max(arrival + TTFT SLO, first token) (L663); token n misses iff
 *   tpot x (n - 1) x 1.05 <= time - t0 (L668: exactly at the limit MISSES, unlike 'strict').
 * - Checked: their timestamps are (tokens so far, time), the first at the first token, then one per
 *   decode step (simulator.py L57, L65). Walking the steps after the first, a step whose token count
 *   reaches the next checkpoint is checked at its own count, and the pointer moves on by one (L664-670).
 *   We rebuild those steps from our per-token times: the first token alone, then each run of equal
 *   times after it is one step (a speculative step emits several tokens at once), counted at its
 *   last token. The checkpoints are every 20th token below the output length, and the last token.
 * - Not checked by them, our choice: a round that did not finish (or produced no token) misses; their
 *   simulator runs every admitted request to the end, and the final token must exist to be checked.
 */
function paperRoundMet(r: RoundTimeline): boolean {
  const times = r.tokenTimes;
  const n = times.length;
  const first = times[0];
  if (!r.finished || first === undefined) return false;
  if (first > r.arrivalMs + r.ttftSloMs * (1 + PAPER_TTFT_TOLERANCE)) return false;
  const tpot = r.stages[r.stages.length - 1]!.tpotMs;
  const checkpoints: number[] = [];
  for (let c = PAPER_CHECK_EVERY; c < n; c += PAPER_CHECK_EVERY) checkpoints.push(c);
  checkpoints.push(n);
  const t0 = Math.max(r.arrivalMs + r.ttftSloMs, first);
  let next = 0;
  for (let i = 1; i < n; i++) {
    if (i + 1 < n && times[i + 1] === times[i]) continue; // not the last token of its step
    const count = i + 1;
    if (next < checkpoints.length && count >= checkpoints[next]!) {
      if (tpot * (count - 1) * (1 + PAPER_TPOT_TOLERANCE) <= times[i]! - t0) return false;
      next++;
    }
  }
  return true;
}

/**
 * The scored units a request contributes under `metric`, and how many met; attainment is
 * sum(met) / sum(units). 'strict': 1 unit, met = judgeRequest(t).met. 'paper': each round is its own
 * unit (their simulator issues each tool round as a new request instance, simulator.py L285-288, and
 * scores each one, each with its own SLO, struct.py L282), met by paperRoundMet.
 * A declined request's rounds all miss (satisfy_sla: `if not self.admitted: return False`, L650-651;
 * best-effort finishes do not count). Their admission is per round; our timeline marks declines per
 * request, so a decline in any round misses every round of it here. `rounds` is how many rounds the
 * request has in its trace: rounds that never started (a conversation declined or cut short) are
 * units that missed; without it, a request counts the rounds it ran, at least 1. Throws RangeError on
 * a malformed timeline, as judgeRequest.
 */
export function scoreRequest(t: RequestTimeline, metric: AttainmentMetric, rounds?: number): { units: number; met: number } {
  const verdict = judgeRequest(t); // also validates the timeline
  switch (metric) {
    case 'strict':
      return { units: 1, met: verdict.met ? 1 : 0 };
    case 'paper': {
      const units = Math.max(1, t.rounds.length, rounds ?? 0);
      if (t.declined) return { units, met: 0 };
      return { units, met: t.rounds.filter(paperRoundMet).length };
    }
    default:
      throw new RangeError(`unknown attainment metric '${String(metric)}' (expected 'strict' or 'paper')`);
  }
}
