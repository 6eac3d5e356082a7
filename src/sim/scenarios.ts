// Workload generators for the six scenarios of the SLOs-Serve evaluation (Chen et al., "SLOs-Serve:
// Optimized Serving of Multi-SLO LLMs", arXiv 2504.08784): ChatBot, Coder, Summarizer, Mixed,
// ToolLLM, Reasoning. Each writes a Trace (the JSON format of trace.ts) whose lengths follow the
// public datasets the paper drew from, as clipped lognormals fitted to published mean and std.
//
// SLOs (the paper's evaluation): ChatBot TTFT 5x zero-load prefill, TPOT loose; Coder TTFT 5x, TPOT
// tight; Summarizer TTFT 3x, TPOT loose; Reasoning TTFT 3x, thinking tight, answer loose; ToolLLM
// TTFT 3x every round, inner rounds tight, last round loose; Mixed: all five apps at once. Tight and
// loose default to 50 and 100 ms (the paper's values on its GPUs); scale them to a profile.
//
// Common random numbers: request i's lengths come from the stream (seed, 'lengths', app, i) and
// arrival gaps from (seed, 'arrivals', mode), so for one seed the lengths are the same at every
// rate and arrival mode, and the arrival times at rate r are exactly those at rate 1 divided by r.
// Arrival gaps have mean 1/rate: exponential (Poisson), or bursty: a Poisson process whose rate
// changes every few dozen arrivals by a Gamma factor chosen for the gaps' coefficient of variation
// `cv` (arrivalTimes). The first request arrives at t = 0.
//
// Shared prefixes (`prefixes: true`, for prefix caching): tool requests name the fixed system prompt
// their first prompt starts with (prefix_id, prefix_tokens). Marking them draws no random numbers, so
// the lengths and times are the same with and without it; without it the traces are as before.

import { rngFor, type Rng } from './rng.js';
import type { Trace, TraceApp, TraceRequest, TraceRound } from './trace.js';

export const SCENARIOS = ['chatbot', 'coder', 'summarizer', 'mixed', 'toolllm', 'reasoning'] as const;
export type ScenarioName = (typeof SCENARIOS)[number];

export interface ScenarioOptions {
  requests: number;
  ratePerSec: number;
  seed: number;
  arrivals?: 'poisson' | 'bursty';
  /** Coefficient of variation of bursty arrival gaps, > 1 (default 3.5). */
  cv?: number;
  tightTpotMs?: number;
  looseTpotMs?: number;
  /** Clip on any prompt, and on a tool request's whole context (default 8192). Keep it below the
   * model's context length, or resolveTrace will refuse requests that leave no room for output. */
  maxPromptTokens?: number;
  /** Mark shared prompt prefixes (prefix_id, prefix_tokens) where the scenario has them: the tool app's system prompt. Default false. */
  prefixes?: boolean;
}

/** A lognormal with this mean and std, clipped to [min, max] and rounded. */
export interface LengthDist {
  mean: number;
  std: number;
  min: number;
  max: number;
  /** The mean the clipped draws reproduce (the cited figure), where the clip moves it off `mean`. */
  target?: number;
}

/**
 * The length distributions, in tokens, with their sources. Where a dataset's std (or anything) was
 * not found, the comment says so and gives the assumption. Word counts are converted at 1.3 tokens
 * per English word (a common BPE rule of thumb, itself an assumption).
 */
export const LENGTHS = {
  /**
   * ShareGPT (ShareGPT_V3_unfiltered_cleaned_split, "ShareGPT_Vicuna_unfiltered"), the chat set of
   * vLLM/DistServe/SLOs-Serve. Means: 229,711 input and 203,068 generated tokens over 1,000 sampled
   * requests (Llama-3.1 tokenizer) = 230 / 203 per request, from the `vllm bench serve` run in
   * vllm-project/vllm PR #18566. vLLM's ShareGPT sampler drops prompts > 1024 tokens, hence the
   * prompt clip; the pre-clip lognormal (250, 345) is chosen so that the clipped mean is the cited
   * 230. No std found: assumed CV ~1.0 after the clip for both (heavy right tails).
   */
  chat: {
    prompt: { mean: 250, std: 345, min: 4, max: 1024, target: 230 },
    output: { mean: 203, std: 203, min: 1, max: 2048 },
  },
  /**
   * HumanEval (164 problems; DistServe's and SLOs-Serve's code-completion set). No published token
   * statistics found. Assumed: prompt (signature + docstring + examples) mean 150, std 70; output
   * (a function body) mean 180, std 120. The clip at 512 follows the bigcode-evaluation-harness
   * setting max_length_generation 512 (bigcode-models-leaderboard "About" text).
   */
  code: {
    prompt: { mean: 150, std: 70, min: 20, max: 512 },
    output: { mean: 180, std: 120, min: 4, max: 512 },
  },
  /**
   * arXiv summarization (ccdv/arxiv-summarization, used by SLOs-Serve's code and Sarathi-Serve):
   * Cohan et al., NAACL 2018, Table 1: articles average 4,938 words, abstracts 220 words ->
   * ~6,400 and ~290 tokens (the table itself could not be retrieved with the search tools here;
   * check before relying on it). LongBench, DistServe's summarization source, is similar: 6,711
   * words on average in English (LongBench abstract). No std found: assumed CV 0.6 (articles) and
   * 0.5 (abstracts). Prompts are clipped at maxPromptTokens (8192 by default), which lowers the mean.
   */
  summarize: {
    prompt: { mean: 6400, std: 3840, min: 256, max: 32768 },
    output: { mean: 290, std: 145, min: 16, max: 1024 },
  },
  /**
   * DeepSeek-R1 traces: open-r1/Mixture-of-Thoughts (SLOs-Serve's reasoning set): 349,317
   * examples in 7,062,819,826 bytes (dataset card metadata) = ~20.2 kB, ~5,000 tokens at ~4 bytes
   * per token, per prompt + thinking + answer; the viewer's num_tokens run ~1.5k to 22k. The split
   * is assumed: prompt mean 250 (std 250), thinking 4,000 (std 3,500), answer 800 (std 700).
   */
  reason: {
    prompt: { mean: 250, std: 250, min: 8, max: 4096 },
    think: { mean: 4000, std: 3500, min: 16, max: 32768 },
    answer: { mean: 800, std: 700, min: 8, max: 8192 },
  },
  /**
   * ToolBench / ToolLLaMA (Qin et al., ToolLLM, arXiv 2307.16789): 126,486 instances with 469,585
   * real API calls = 3.71 calls per instance (ToolBench summaries at alphaxiv.org and
   * leaderboard.steel.dev). Calls per request: geometric on 1.. with mean 3.71, clipped at 12 (which
   * lowers the mean to ~3.62); one round per call plus a final answer round. Per-round tokens were not found; assumed: first
   * prompt (system prompt + API docs + query) mean 1,500, std 600; each later round appends the
   * API's response, mean 300, std 300; an inner output (ReAct thought + action + arguments) mean
   * 80, std 40; the final answer mean 150, std 100; a tool call takes mean 600 ms, std 600.
   * The first prompt's fixed part, the same for every request (`prefixes`): ToolBench's system
   * template (FORMAT_INSTRUCTIONS_SYSTEM_FUNCTION with its fixed TASK_DESCRIPTION, OpenBMB/ToolBench
   * toolbench/inference/Prompts/ReAct_prompts.py, with the format line ToolLLaMA's inference adds)
   * is about 1,430 characters in 252 words: ~330 tokens at 1.3 tokens per word, ~360 at 4 characters
   * per token (estimates, not a tokenizer count); 350 assumed. The API docs after it vary per query,
   * so only the template is shared (capped at the first prompt's length).
   */
  tool: {
    systemPrompt: 350,
    callsMean: 3.71,
    maxCalls: 12,
    firstPrompt: { mean: 1500, std: 600, min: 200, max: 8192 },
    appended: { mean: 300, std: 300, min: 8, max: 2048 },
    innerOutput: { mean: 80, std: 40, min: 8, max: 512 },
    finalOutput: { mean: 150, std: 100, min: 8, max: 1024 },
    toolMs: { mean: 600, std: 600, min: 20, max: 10000 },
  },
} as const;

/** Draws one integer from `d`, with its upper clip lowered to `cap`. */
export function drawLength(rng: Rng, d: LengthDist, cap = Infinity): number {
  const s2 = Math.log(1 + (d.std / d.mean) ** 2);
  const x = rng.lognormal(Math.log(d.mean) - s2 / 2, Math.sqrt(s2));
  const hi = Math.max(d.min, Math.min(d.max, cap));
  return Math.min(hi, Math.max(d.min, Math.round(x)));
}

type AppKey = 'chat' | 'code' | 'summarize' | 'reason' | 'tool';

const SCENARIO_APPS: Record<ScenarioName, readonly AppKey[]> = {
  chatbot: ['chat'],
  coder: ['code'],
  summarizer: ['summarize'],
  reasoning: ['reason'],
  toolllm: ['tool'],
  mixed: ['chat', 'code', 'summarize', 'reason', 'tool'],
};

function appDefs(tight: number, loose: number): Record<AppKey, TraceApp> {
  return {
    chat: { ttft_slowdown: 5, tpot_ms: loose },
    code: { ttft_slowdown: 5, tpot_ms: tight },
    summarize: { ttft_slowdown: 3, tpot_ms: loose },
    reason: {
      ttft_slowdown: 3,
      stages: [
        { name: 'think', tpot_ms: tight },
        { name: 'answer', tpot_ms: loose },
      ],
    },
    tool: { ttft_slowdown: 3, tpot_ms: tight, final_tpot_ms: loose },
  };
}

function toolRounds(rng: Rng, maxContext: number): TraceRound[] {
  const L = LENGTHS.tool;
  const p = 1 / L.callsMean;
  const calls = Math.min(L.maxCalls, Math.max(1, Math.ceil(Math.log(1 - rng.uniform()) / Math.log(1 - p))));
  const rounds: TraceRound[] = [];
  let used = 0; // context so far: earlier prompts and outputs
  for (let k = 0; k <= calls; k++) {
    const room = maxContext - used;
    const prompt = drawLength(rng, k === 0 ? L.firstPrompt : L.appended, room - 1);
    const last = k === calls;
    const output = drawLength(rng, last ? L.finalOutput : L.innerOutput);
    const toolMs = drawLength(rng, L.toolMs);
    // End the conversation early (this round answers) when the next round would not fit.
    const end = last || used + prompt + output + L.appended.min >= maxContext;
    rounds.push(end ? { prompt_tokens: prompt, output_tokens: output } : { prompt_tokens: prompt, output_tokens: output, tool_ms: toolMs });
    if (end) break;
    used += prompt + output;
  }
  return rounds;
}

function request(app: AppKey, rng: Rng, maxPrompt: number, prefixes: boolean): Omit<TraceRequest, 't_ms'> {
  const L = LENGTHS;
  switch (app) {
    case 'reason':
      return { app, prompt_tokens: drawLength(rng, L.reason.prompt, maxPrompt), stage_tokens: [drawLength(rng, L.reason.think), drawLength(rng, L.reason.answer)] };
    case 'tool': {
      const rounds = toolRounds(rng, maxPrompt);
      if (!prefixes) return { app, rounds };
      return { app, rounds, prefix_id: 'toolbench-system', prefix_tokens: Math.min(L.tool.systemPrompt, (rounds[0] as TraceRound).prompt_tokens) };
    }
    default:
      return { app, prompt_tokens: drawLength(rng, L[app].prompt, maxPrompt), output_tokens: drawLength(rng, L[app].output) };
  }
}

function check(ok: boolean, what: string, v: unknown): void {
  if (!ok) throw new RangeError(`scenario option ${what}, got ${String(v)}`);
}

/** Expected arrivals per bursty epoch: a burst (or a lull) lasts about this many mean gaps. */
export const BURST_EPOCH_ARRIVALS = 30;

/**
 * Arrival times in ms: the first at 0, then unit-mean gaps scaled by 1000 / rate.
 *
 * Poisson: exponential gaps. Bursty: a modulated Poisson process, the way bursty production traces
 * look: time is cut into epochs of BURST_EPOCH_ARRIVALS mean gaps, each epoch's rate is the base
 * rate times a Gamma(a, 1/a) factor (mean 1), and arrivals within an epoch are Poisson at that rate.
 * The shape a is found once per CV by bisection on a fixed probe sequence, so that the gaps have the
 * requested coefficient of variation (> 1). Drawn once at rate 1 and time-stretched to each rate (as
 * the paper replays its traces), a burst is a stretch of higher rate, not simultaneous arrivals: at
 * lower rates it lasts longer and is less intense, so it measures what a scheduler does with a
 * surge, rather than failing every FCFS at every rate (a renewal process with Gamma gaps of CV 3.5
 * puts a dozen arrivals at nearly the same instant whatever the rate).
 */
export function arrivalTimes(n: number, opts: { ratePerSec: number; seed: number; arrivals?: 'poisson' | 'bursty'; cv?: number }): number[] {
  const mode = opts.arrivals ?? 'poisson';
  const rng = rngFor(opts.seed, 'arrivals', mode);
  if (mode === 'poisson') {
    const times: number[] = [];
    let s = 0;
    for (let i = 0; i < n; i++) {
      if (i > 0) s += rng.exponential(1);
      times.push((s * 1000) / opts.ratePerSec);
    }
    return times;
  }
  const cv = opts.cv ?? 3.5;
  if (!(cv > 1) || !Number.isFinite(cv)) throw new RangeError(`bursty arrivals need a finite coefficient of variation > 1 (1 is Poisson), got ${cv}`);
  return modulatedPoisson(n, burstShape(cv), rng).map((s) => (s * 1000) / opts.ratePerSec);
}

/** n arrival times (the first at 0) of a Poisson process at rate 1 modulated per epoch by Gamma(shape, 1/shape). */
function modulatedPoisson(n: number, shape: number, rng: Rng): number[] {
  const epoch = BURST_EPOCH_ARRIVALS;
  const times = [0];
  let s = 0;
  let end = epoch;
  let rate = rng.gamma(shape, 1 / shape);
  while (times.length < n) {
    const gap = rng.exponential(Math.max(rate, 1e-12));
    if (s + gap < end) {
      s += gap;
      times.push(s);
      continue;
    }
    // Memoryless: restart at the epoch's end with the next epoch's rate.
    s = end;
    end += epoch;
    rate = rng.gamma(shape, 1 / shape);
  }
  return times;
}

const shapes = new Map<number, number>();

/** The Gamma shape whose modulated process has gaps of coefficient of variation `cv` (measured on a fixed probe). */
export function burstShape(cv: number): number {
  const known = shapes.get(cv);
  if (known !== undefined) return known;
  const cvOf = (shape: number): number => {
    const t = modulatedPoisson(100_001, shape, rngFor(1, 'burst-shape-probe'));
    let sum = 0;
    let sq = 0;
    for (let i = 1; i < t.length; i++) {
      const g = t[i]! - t[i - 1]!;
      sum += g;
      sq += g * g;
    }
    const m = sum / (t.length - 1);
    return Math.sqrt(Math.max(0, sq / (t.length - 1) - m * m)) / m;
  };
  // Smaller shapes are burstier; bisect log(shape) in [1e-3, 1e3].
  let lo = Math.log(1e-3);
  let hi = Math.log(1e3);
  for (let i = 0; i < 40; i++) {
    const mid = (lo + hi) / 2;
    if (cvOf(Math.exp(mid)) > cv) lo = mid;
    else hi = mid;
  }
  const shape = Math.exp((lo + hi) / 2);
  shapes.set(cv, shape);
  return shape;
}

/** A scenario's trace: `requests` requests at `ratePerSec`, a valid Trace for parseTrace. */
export function generateScenario(name: ScenarioName, opts: ScenarioOptions): Trace {
  check(SCENARIOS.includes(name), `name must be one of ${SCENARIOS.join(', ')}`, name);
  check(Number.isInteger(opts.requests) && opts.requests >= 1, 'requests must be an integer >= 1', opts.requests);
  check(opts.ratePerSec > 0 && Number.isFinite(opts.ratePerSec), 'ratePerSec must be finite and > 0', opts.ratePerSec);
  check(Number.isSafeInteger(opts.seed), 'seed must be a safe integer', opts.seed);
  const arrivals = opts.arrivals ?? 'poisson';
  check(arrivals === 'poisson' || arrivals === 'bursty', "arrivals must be 'poisson' or 'bursty'", arrivals);
  const cv = opts.cv ?? 3.5;
  check(arrivals === 'poisson' || (cv > 1 && Number.isFinite(cv)), 'cv must be finite and > 1 for bursty arrivals (1 is Poisson)', cv);
  const tight = opts.tightTpotMs ?? 50;
  const loose = opts.looseTpotMs ?? 100;
  check(tight > 0 && Number.isFinite(tight), 'tightTpotMs must be finite and > 0', tight);
  check(loose > 0 && Number.isFinite(loose), 'looseTpotMs must be finite and > 0', loose);
  const maxPrompt = opts.maxPromptTokens ?? 8192;
  check(Number.isInteger(maxPrompt) && maxPrompt >= 256, 'maxPromptTokens must be an integer >= 256', maxPrompt);

  const keys = SCENARIO_APPS[name];
  const defs = appDefs(tight, loose);
  const apps: Record<string, TraceApp> = {};
  for (const k of keys) apps[k] = defs[k];
  const times = arrivalTimes(opts.requests, { ratePerSec: opts.ratePerSec, seed: opts.seed, arrivals, cv });
  const pick = rngFor(opts.seed, 'mixed', 'app');
  const requests = times.map((t_ms, i): TraceRequest => {
    const app = keys.length === 1 ? (keys[0] as AppKey) : (keys[Math.floor(pick.uniform() * keys.length)] as AppKey);
    return { t_ms, ...request(app, rngFor(opts.seed, 'lengths', app, i), maxPrompt, opts.prefixes ?? false) };
  });
  return { apps, requests };
}
