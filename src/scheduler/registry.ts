// The one scheduler registry: every scheduler name, what it means, its settings, its default
// setting, and the tuning sweep a benchmark runs for it. The engine (host/load.ts), the simulator's
// benchmark (sim/bench-sched.ts), the CLI and the demo all build schedulers here, so a name means one
// thing everywhere.
//
// | name | what it is |
// |---|---|
// | slos | SLOs-Serve: admission DP, steps sized to every admitted deadline, adaptive speculation per request (with a draft), adaptive output reservations, best-effort tier |
// | edf | the same steps without admission (everything admitted; the ablation "admission off") |
// | fcfs | vLLM v1-style continuous batching with chunked prefill under a token budget (default 2048, vLLM's online default) |
// | fcfs+sd | fcfs with a fixed speculation length k for every decode (default 2) |
// | sarathi | Sarathi-Serve: decodes first, then prefills, under the budget whose step fits the tightest TPOT |
// | vllm-v0 | the SLOs-Serve authors' vLLM baseline: whole prompts one at a time before decodes, no chunking, no speculation |
// | sarathi-paper | the authors' Sarathi: budget from the tightest TPOT (grid of 32), prefill split evenly, no speculation |
//
// Speculation needs a draft: a context with maxSpec 0 refuses fcfs+sd and gives slos no drafts.
// `tightestTpotMs` is the tightest TPOT of the apps served (a workload's in the simulator; the engine
// does not know its apps at start and passes 3x the zero-load decode step, the default below).

import { FcfsScheduler, sarathiBudget } from './fcfs.js';
import { SarathiPaperScheduler, VllmV0Scheduler } from './paper-baselines.js';
import type { PerformanceModel } from './perf-model.js';
import { SlosScheduler } from './slos/scheduler.js';
import type { ReservationMode } from './slos/reservation.js';
import type { KvBudget, Scheduler } from './types.js';
import { SchedulerNameError, type SchedulerName } from './names.js';

export { checkSchedulerName, isSchedulerName, SCHEDULER_LABELS, SCHEDULER_NAMES, SchedulerNameError, type SchedulerName } from './names.js';

/** The SLO-unaware baselines tuned by sweeping their settings (the strong comparison). */
export const TUNED_BASELINES: readonly SchedulerName[] = ['fcfs', 'fcfs+sd', 'sarathi', 'edf'];
/** The baselines as the SLOs-Serve authors configured them (the paper's comparison). */
export const PAPER_BASELINES: readonly SchedulerName[] = ['vllm-v0', 'sarathi-paper'];

/** Settings a name may take (each name reads its own; the rest are ignored). */
export interface SchedulerSettings {
  /** fcfs, fcfs+sd: rows per step (vLLM's max_num_batched_tokens). */
  budget?: number;
  /** fcfs+sd: drafts per decode; slos: the longest (0: off). */
  specK?: number;
  /** slos: every decode takes exactly specK drafts (the fixed-k ablation). */
  fixedSpec?: boolean;
  /** slos: output-KV reservation mode ('oracle' only in benchmarks). */
  reservation?: ReservationMode;
  /** slos: run the admission DP (false: admit everything, with slos's speculation: the ablation). */
  admission?: boolean;
  /** slos: the admission margin is learned from admitted first tokens ('learned') or not ('fixed': the ablation). */
  margin?: 'learned' | 'fixed';
}

export interface SchedulerContext {
  model: PerformanceModel;
  kv: KvBudget;
  /** Most rows per step (default: the profile's). */
  maxTokensPerStep?: number;
  maxSeqs?: number;
  /** Longest speculation the executor can run (0: no draft model). */
  maxSpec: number;
  /** The tightest TPOT served, ms (default 3x the zero-load decode step). */
  tightestTpotMs?: number;
  /** slos: observed output lengths per app (warm start of the reservations). */
  lengthHistory?: Readonly<Record<string, readonly number[]>>;
}

export interface SchedulerVariant {
  scheduler: SchedulerName;
  /** e.g. 'fcfs budget=2048', 'fcfs+sd k=2 budget=2048', 'slos'. */
  label: string;
  settings: SchedulerSettings;
  /** An ablation of SLOs-Serve (reported apart from the scheduler comparison). */
  ablation?: boolean;
}

const DEFAULT_BUDGET = 2048;
const DEFAULT_SD_K = 2;

function maxStep(ctx: SchedulerContext): number {
  return ctx.maxTokensPerStep ?? ctx.model.profile.maxTokensPerStep;
}

export function tightestTpot(ctx: SchedulerContext): number {
  return ctx.tightestTpotMs ?? 3 * ctx.model.predict({ tokens: 1, draftSteps: 0, kvTokensRead: 0 });
}

/** The setting a name runs with when nobody tunes it (the engine's). */
export function defaultSettings(name: SchedulerName, ctx: SchedulerContext): SchedulerSettings {
  switch (name) {
    case 'slos':
      return { specK: ctx.maxSpec, reservation: 'adaptive' };
    case 'fcfs':
      return { budget: Math.min(DEFAULT_BUDGET, maxStep(ctx)) };
    case 'fcfs+sd':
      return { budget: Math.min(DEFAULT_BUDGET, maxStep(ctx)), specK: Math.min(DEFAULT_SD_K, ctx.maxSpec) };
    default:
      return {};
  }
}

export function createScheduler(name: SchedulerName, ctx: SchedulerContext, settings: SchedulerSettings = defaultSettings(name, ctx)): Scheduler {
  const common = {
    model: ctx.model,
    kv: ctx.kv,
    ...(ctx.maxTokensPerStep !== undefined ? { maxTokensPerStep: ctx.maxTokensPerStep } : {}),
    ...(ctx.maxSeqs !== undefined ? { maxSeqs: ctx.maxSeqs } : {}),
  };
  const spec = (k: number | undefined): number => {
    const want = k ?? 0;
    if (want > ctx.maxSpec) throw new SchedulerNameError(`scheduler '${name}' asks for ${want} drafts per decode; this engine can run at most ${ctx.maxSpec} (0: no draft model)`);
    return want;
  };
  switch (name) {
    case 'slos':
      return new SlosScheduler({
        ...common,
        maxSpec: spec(settings.specK ?? ctx.maxSpec),
        fixedSpec: settings.fixedSpec ?? false,
        reservation: settings.reservation ?? 'adaptive',
        admission: settings.admission ?? true,
        learnMargin: (settings.margin ?? 'learned') === 'learned',
        name: 'slos',
        ...(ctx.lengthHistory ? { lengthHistory: ctx.lengthHistory } : {}),
      });
    case 'edf':
      return new SlosScheduler({ ...common, admission: false, name: 'edf' });
    case 'fcfs':
      return new FcfsScheduler({ ...common, maxBatchedTokens: settings.budget ?? Math.min(DEFAULT_BUDGET, maxStep(ctx)), name: 'fcfs' });
    case 'fcfs+sd': {
      if (ctx.maxSpec === 0) throw new SchedulerNameError(`scheduler 'fcfs+sd' speculates: it needs a draft model (or self-speculation)`);
      const k = spec(settings.specK ?? Math.min(DEFAULT_SD_K, ctx.maxSpec));
      return new FcfsScheduler({ ...common, maxBatchedTokens: settings.budget ?? Math.min(DEFAULT_BUDGET, maxStep(ctx)), specK: k, name: 'fcfs+sd' });
    }
    case 'sarathi':
      return new FcfsScheduler({ ...common, order: 'sarathi', maxBatchedTokens: sarathiBudget(ctx.model, tightestTpot(ctx), maxStep(ctx)), name: 'sarathi' });
    case 'vllm-v0':
      return new VllmV0Scheduler(common);
    case 'sarathi-paper':
      return new SarathiPaperScheduler({ ...common, tightestTpotMs: tightestTpot(ctx) });
  }
}

/**
 * The tuning sweep of a name, for benchmarks: every setting a fair comparison tries (the best one
 * is reported). SLOs-Serve runs its default only (its own choices are online); the paper-faithful
 * baselines run as the authors configured them.
 */
export function sweep(name: SchedulerName, ctx: SchedulerContext): SchedulerVariant[] {
  const most = maxStep(ctx);
  const budgets = [512, 1024, 2048, 4096, 8192].filter((b) => b <= most);
  if (budgets.length === 0) budgets.push(most);
  switch (name) {
    case 'slos':
      return [{ scheduler: 'slos', label: 'slos', settings: defaultSettings('slos', ctx) }];
    case 'fcfs':
      return budgets.map((b) => ({ scheduler: 'fcfs', label: `fcfs budget=${b}`, settings: { budget: b } }));
    case 'fcfs+sd': {
      if (ctx.maxSpec === 0) return [];
      // The budgets that did best without speculation; a small step limit leaves only itself.
      const sd = budgets.filter((b) => b >= 1024 && b <= 4096);
      if (sd.length === 0) sd.push(Math.min(most, 4096));
      return [1, 2, 4].filter((k) => k <= ctx.maxSpec).flatMap((k) => sd.map((b) => ({ scheduler: 'fcfs+sd' as const, label: `fcfs+sd k=${k} budget=${b}`, settings: { specK: k, budget: b } })));
    }
    default:
      return [{ scheduler: name, label: name, settings: {} }];
  }
}

/**
 * SLOs-Serve's ablations, for benchmarks: admission off (with its speculation; 'edf' is admission
 * and speculation off), speculation off, each fixed k, the admission margin not learned, and each
 * reservation mode ('oracle' knows the true lengths: a benchmark-only reference).
 */
export function ablations(ctx: SchedulerContext): SchedulerVariant[] {
  const out: SchedulerVariant[] = [{ scheduler: 'slos', label: 'slos admission=off', settings: { specK: ctx.maxSpec, admission: false }, ablation: true }];
  if (ctx.maxSpec > 0) {
    out.push({ scheduler: 'slos', label: 'slos spec=off', settings: { specK: 0, reservation: 'adaptive' }, ablation: true });
    for (const k of [1, 2, 4].filter((x) => x <= ctx.maxSpec))
      out.push({ scheduler: 'slos', label: `slos spec=fixed k=${k}`, settings: { specK: k, fixedSpec: true, reservation: 'adaptive' }, ablation: true });
  }
  out.push({ scheduler: 'slos', label: 'slos margin=fixed', settings: { specK: ctx.maxSpec, margin: 'fixed' }, ablation: true });
  for (const r of ['p90', 'max_tokens', 'oracle'] as const)
    out.push({ scheduler: 'slos', label: `slos reserve=${r}${r === 'oracle' ? ' (oracle: true lengths, benchmark only)' : ''}`, settings: { specK: ctx.maxSpec, reservation: r }, ablation: true });
  return out;
}
