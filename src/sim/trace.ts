// The simulator's JSON trace: apps with their SLOs, and timed requests with their true lengths.
// `parseTrace` validates (every error names the exact field and what would be valid),
// `resolveTrace` turns the snake_case JSON into the camelCase form the simulator runs, sorted by
// arrival; `compressTrace` scales the arrival rate; `traceToJson` goes back.
//
// App kinds: a *plain* app has one decode stage (`tpot_ms`); a *staged* app lists `stages` (think,
// answer) and its requests give `stage_tokens`, one count per stage; a *tool* app (`final_tpot_ms`,
// or requests with `rounds`) runs rounds of prefill + decode with a tool call of `tool_ms` between
// them. A later round's `prompt_tokens` are the tokens it appends (the tool's result), not a resend.
// Output counts are the truth only the simulator sees; the scheduler sees `maxTokens`.
//
// Shared prefixes (prefix caching): a request may give `prefix_id` and `prefix_tokens`: its prompt
// (a tool request's first round) starts with `prefix_tokens` tokens that are the same for every
// request of its app with that `prefix_id` (a shared system prompt); one id has one length. Prefix
// ids are per app: two apps never share a prefix. A tool request's later rounds continue its
// conversation (their context is everything before them), so they need no field to be cacheable.

import type { StageSlo } from '../scheduler/types.js';
import { describeValue } from '../model/describe.js';

export interface TraceStage {
  name: string;
  tpot_ms: number;
}

export interface TraceApp {
  ttft_ms?: number;
  ttft_slowdown?: number;
  tpot_ms?: number;
  stages?: TraceStage[];
  final_tpot_ms?: number;
  max_tokens?: number;
  alpha?: number;
}

export interface TraceRound {
  prompt_tokens: number;
  output_tokens: number;
  tool_ms?: number;
}

export interface TraceRequest {
  t_ms: number;
  app: string;
  prompt_tokens?: number;
  output_tokens?: number;
  stage_tokens?: number[];
  rounds?: TraceRound[];
  max_tokens?: number;
  /** A shared prefix: the first `prefix_tokens` prompt tokens are the same for every request of the app with this id. */
  prefix_id?: string;
  prefix_tokens?: number;
}

/** The raw JSON trace (snake_case), as written by people and by the scenario generators. */
export interface Trace {
  apps: Record<string, TraceApp>;
  requests: TraceRequest[];
}

export type TtftSlo = { ms: number } | { slowdown: number };

export interface AppSpec {
  name: string;
  ttft: TtftSlo;
  stages: StageSlo[];
  /** Tool apps: the stages of the last round (inner rounds use `stages`). */
  finalStages?: StageSlo[];
  maxTokens?: number;
  /** Speculation acceptance rate in [0, 1). */
  alpha?: number;
  kind: 'plain' | 'staged' | 'tool';
}

export interface SimRound {
  promptTokens: number;
  maxTokens: number;
  /** The truth, per stage (clamped so the round never exceeds maxTokens). */
  stageTokens: number[];
  stages: StageSlo[];
  /** Tool-call delay after this round before the next one arrives; 0 for the last round. */
  toolMs: number;
}

/** A shared prompt prefix (the trace's prefix_id and prefix_tokens). */
export interface SharedPrefix {
  id: string;
  tokens: number;
}

export interface SimRequestSpec {
  /** 'r<index>' in arrival order. */
  id: string;
  app: string;
  arrivalMs: number;
  rounds: SimRound[];
  /** The shared prefix its (first round's) prompt starts with, if any. */
  prefix?: SharedPrefix;
}

export interface ResolvedTrace {
  apps: Map<string, AppSpec>;
  requests: SimRequestSpec[];
}

/** A bad trace: `path` names the field (`requests[3].prompt_tokens`), `problem` what is wrong. */
export class TraceError extends Error {
  override name = 'TraceError';
  constructor(
    readonly path: string,
    readonly problem: string,
  ) {
    super(`${path}: ${problem}`);
  }
}

type Obj = Record<string, unknown>;

const TOP_KEYS = ['apps', 'requests'];
const APP_KEYS = ['ttft_ms', 'ttft_slowdown', 'tpot_ms', 'stages', 'final_tpot_ms', 'max_tokens', 'alpha'];
const STAGE_KEYS = ['name', 'tpot_ms'];
const REQUEST_KEYS = ['t_ms', 'app', 'prompt_tokens', 'output_tokens', 'stage_tokens', 'rounds', 'max_tokens', 'prefix_id', 'prefix_tokens'];
const ROUND_KEYS = ['prompt_tokens', 'output_tokens', 'tool_ms'];

function fail(path: string, problem: string): never {
  throw new TraceError(path, problem);
}

const show = (v: unknown): string => (typeof v === 'string' ? `'${v.length > 60 ? `${v.slice(0, 57)}...` : v}'` : describeValue(v));

/** obj[key] = value as an own property: an app named __proto__ stays an app rather than replacing the prototype. */
function setOwn<T>(obj: Record<string, T>, key: string, value: T): void {
  Object.defineProperty(obj, key, { value, enumerable: true, writable: true, configurable: true });
}

function object(v: unknown, path: string): Obj {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) fail(path, `must be an object, got ${show(v)}`);
  return v as Obj;
}

function array(v: unknown, path: string): unknown[] {
  if (!Array.isArray(v)) fail(path, `must be an array, got ${show(v)}`);
  return v;
}

function knownKeys(o: Obj, path: string, allowed: readonly string[]): void {
  for (const k of Object.keys(o)) {
    if (!allowed.includes(k)) fail(`${path}.${k}`, `unknown key; valid keys here: ${allowed.join(', ')}`);
  }
}

function integer(v: unknown, path: string, min: number): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min) fail(path, `must be an integer >= ${min}, got ${show(v)}`);
  return v;
}

/** A finite number in [min, max) or [min, inf); `open` makes min exclusive. */
function finite(v: unknown, path: string, min: number, open: boolean, max = Infinity): number {
  const range = `${open ? '>' : '>='} ${min}${max < Infinity ? ` and < ${max}` : ''}`;
  if (typeof v !== 'number' || !Number.isFinite(v) || (open ? v <= min : v < min) || v >= max) {
    fail(path, `must be a finite number ${range}, got ${show(v)}`);
  }
  return v;
}

function appPath(name: string): string {
  return /^[A-Za-z_][A-Za-z0-9_-]*$/.test(name) ? `apps.${name}` : `apps[${JSON.stringify(name)}]`;
}

function parseApp(name: string, v: unknown): TraceApp {
  const path = appPath(name);
  const o = object(v, path);
  knownKeys(o, path, APP_KEYS);
  const app: TraceApp = {};
  if (o.ttft_ms !== undefined && o.ttft_slowdown !== undefined) {
    fail(path, 'give exactly one of ttft_ms (absolute, ms) and ttft_slowdown (x zero-load prefill), not both');
  }
  if (o.ttft_ms !== undefined) app.ttft_ms = finite(o.ttft_ms, `${path}.ttft_ms`, 0, true);
  else if (o.ttft_slowdown !== undefined) app.ttft_slowdown = finite(o.ttft_slowdown, `${path}.ttft_slowdown`, 1, false);
  else fail(path, 'needs ttft_ms (absolute budget, ms) or ttft_slowdown (multiple >= 1 of the zero-load prefill time)');
  if (o.stages !== undefined) {
    if (o.tpot_ms !== undefined) fail(`${path}.tpot_ms`, 'a staged app sets tpot_ms per stage; drop tpot_ms or stages');
    if (o.final_tpot_ms !== undefined) fail(`${path}.final_tpot_ms`, 'only tool apps (tpot_ms, no stages) have final_tpot_ms');
    const stages = array(o.stages, `${path}.stages`);
    if (stages.length === 0) fail(`${path}.stages`, 'must list at least one stage');
    app.stages = stages.map((s, k) => {
      const sp = `${path}.stages[${k}]`;
      const so = object(s, sp);
      knownKeys(so, sp, STAGE_KEYS);
      if (typeof so.name !== 'string' || so.name === '') fail(`${sp}.name`, `must be a non-empty string, got ${show(so.name)}`);
      if (stages.slice(0, k).some((p) => (p as Obj).name === so.name)) fail(`${sp}.name`, `duplicate stage name ${show(so.name)}`);
      return { name: so.name, tpot_ms: finite(so.tpot_ms, `${sp}.tpot_ms`, 0, true) };
    });
  } else {
    if (o.tpot_ms === undefined) fail(`${path}.tpot_ms`, 'is required (a finite number > 0), or give stages');
    app.tpot_ms = finite(o.tpot_ms, `${path}.tpot_ms`, 0, true);
    if (o.final_tpot_ms !== undefined) app.final_tpot_ms = finite(o.final_tpot_ms, `${path}.final_tpot_ms`, 0, true);
  }
  if (o.max_tokens !== undefined) app.max_tokens = integer(o.max_tokens, `${path}.max_tokens`, 1);
  if (o.alpha !== undefined) app.alpha = finite(o.alpha, `${path}.alpha`, 0, false, 1);
  return app;
}

type Kind = AppSpec['kind'];

function appKind(app: TraceApp, usesRounds: boolean): Kind {
  if (app.stages) return 'staged';
  return app.final_tpot_ms !== undefined || usesRounds ? 'tool' : 'plain';
}

function parseRequest(i: number, v: unknown, apps: Record<string, TraceApp>, kinds: Map<string, Kind>): TraceRequest {
  const path = `requests[${i}]`;
  const o = object(v, path);
  knownKeys(o, path, REQUEST_KEYS);
  const t_ms = finite(o.t_ms, `${path}.t_ms`, 0, false);
  if (typeof o.app !== 'string' || !Object.hasOwn(apps, o.app)) {
    fail(`${path}.app`, `unknown app ${show(o.app)}; apps are: ${Object.keys(apps).join(', ')}`);
  }
  const name = o.app;
  const kind = kinds.get(name) as Kind;
  const req: TraceRequest = { t_ms, app: name };
  const form: Record<Kind, { need: string[]; what: string }> = {
    plain: { need: ['prompt_tokens', 'output_tokens'], what: 'plain (one decode stage)' },
    staged: { need: ['prompt_tokens', 'stage_tokens'], what: `staged (stages ${(apps[name]?.stages ?? []).map((s) => s.name).join(', ')})` },
    tool: { need: ['rounds'], what: 'a tool app (rounds of prefill + decode)' },
  };
  const { need, what } = form[kind];
  for (const k of ['prompt_tokens', 'output_tokens', 'stage_tokens', 'rounds']) {
    if (o[k] !== undefined && !need.includes(k)) fail(`${path}.${k}`, `app '${name}' is ${what}: give ${need.join(' and ')}, not ${k}`);
    if (o[k] === undefined && need.includes(k)) fail(`${path}.${k}`, `is required: app '${name}' is ${what}`);
  }
  if (kind !== 'tool') req.prompt_tokens = integer(o.prompt_tokens, `${path}.prompt_tokens`, 1);
  if (kind === 'plain') req.output_tokens = integer(o.output_tokens, `${path}.output_tokens`, 1);
  if (kind === 'staged') {
    const stages = apps[name]?.stages ?? [];
    const st = array(o.stage_tokens, `${path}.stage_tokens`);
    if (st.length !== stages.length) {
      fail(`${path}.stage_tokens`, `must give one count per stage of app '${name}' (${stages.length}: ${stages.map((s) => s.name).join(', ')}), got ${st.length}`);
    }
    req.stage_tokens = st.map((n, k) => integer(n, `${path}.stage_tokens[${k}]`, 0));
    if (req.stage_tokens.reduce((a, b) => a + b, 0) < 1) fail(`${path}.stage_tokens`, 'must sum to at least 1 output token');
  }
  if (kind === 'tool') {
    const rounds = array(o.rounds, `${path}.rounds`);
    if (rounds.length === 0) fail(`${path}.rounds`, 'must hold at least one round');
    req.rounds = rounds.map((r, k) => {
      const rp = `${path}.rounds[${k}]`;
      const ro = object(r, rp);
      knownKeys(ro, rp, ROUND_KEYS);
      const round: TraceRound = {
        prompt_tokens: integer(ro.prompt_tokens, `${rp}.prompt_tokens`, 1),
        output_tokens: integer(ro.output_tokens, `${rp}.output_tokens`, 1),
      };
      if (ro.tool_ms !== undefined) {
        if (k === rounds.length - 1) fail(`${rp}.tool_ms`, 'the last round has no tool call after it; drop tool_ms');
        round.tool_ms = finite(ro.tool_ms, `${rp}.tool_ms`, 0, false);
      }
      return round;
    });
  }
  if (o.max_tokens !== undefined) req.max_tokens = integer(o.max_tokens, `${path}.max_tokens`, 1);
  if (o.prefix_id !== undefined || o.prefix_tokens !== undefined) {
    if (o.prefix_id === undefined) fail(`${path}.prefix_id`, 'is required with prefix_tokens (the id of the shared prefix)');
    if (o.prefix_tokens === undefined) fail(`${path}.prefix_tokens`, 'is required with prefix_id (how many leading prompt tokens are shared)');
    if (typeof o.prefix_id !== 'string' || o.prefix_id === '') fail(`${path}.prefix_id`, `must be a non-empty string, got ${show(o.prefix_id)}`);
    const prompt = kind === 'tool' ? (req.rounds?.[0] as TraceRound).prompt_tokens : (req.prompt_tokens as number);
    const tokens = integer(o.prefix_tokens, `${path}.prefix_tokens`, 1);
    if (tokens > prompt) fail(`${path}.prefix_tokens`, `must be <= the ${kind === 'tool' ? "first round's " : ''}prompt_tokens (${prompt}), got ${tokens}`);
    req.prefix_id = o.prefix_id;
    req.prefix_tokens = tokens;
  }
  return req;
}

function kindsOf(apps: Record<string, TraceApp>, rawRequests: unknown[]): Map<string, Kind> {
  const usesRounds = new Set<string>();
  for (const r of rawRequests) {
    if (typeof r === 'object' && r !== null && typeof (r as Obj).app === 'string' && (r as Obj).rounds !== undefined) {
      usesRounds.add((r as Obj).app as string);
    }
  }
  return new Map(Object.entries(apps).map(([name, app]) => [name, appKind(app, usesRounds.has(name))]));
}

/** Validates a parsed JSON value as a trace; returns a clean deep copy. Throws TraceError. */
export function parseTrace(json: unknown): Trace {
  const top = object(json, 'trace');
  for (const k of Object.keys(top)) if (!TOP_KEYS.includes(k)) fail(k, `unknown key; a trace has: ${TOP_KEYS.join(', ')}`);
  const rawApps = object(top.apps, 'apps');
  const apps: Record<string, TraceApp> = {};
  for (const [name, app] of Object.entries(rawApps)) setOwn(apps, name, parseApp(name, app));
  if (Object.keys(apps).length === 0) fail('apps', 'must define at least one app');
  const rawRequests = array(top.requests, 'requests');
  if (rawRequests.length === 0) fail('requests', 'must hold at least one request');
  const kinds = kindsOf(apps, rawRequests);
  const requests = rawRequests.map((r, i) => parseRequest(i, r, apps, kinds));
  // One prefix id (per app) names one token sequence: every request gives it the same length.
  const lengths = new Map<string, { tokens: number; at: number }>();
  for (const [i, r] of requests.entries()) {
    if (r.prefix_id === undefined) continue;
    const key = `${r.app}\u0000${r.prefix_id}`;
    const first = lengths.get(key);
    if (!first) lengths.set(key, { tokens: r.prefix_tokens as number, at: i });
    else if (first.tokens !== r.prefix_tokens)
      fail(`requests[${i}].prefix_tokens`, `prefix ${show(r.prefix_id)} of app '${r.app}' has ${first.tokens} tokens (requests[${first.at}]); got ${r.prefix_tokens}`);
  }
  return { apps, requests };
}

function resolveApp(name: string, app: TraceApp, kind: Kind): AppSpec {
  const ttft: TtftSlo = app.ttft_ms !== undefined ? { ms: app.ttft_ms } : { slowdown: app.ttft_slowdown as number };
  const tpot = app.tpot_ms as number;
  const spec: AppSpec = { name, ttft, stages: [], kind };
  if (kind === 'staged') spec.stages = (app.stages ?? []).map((s) => ({ name: s.name, tpotMs: s.tpot_ms }));
  else if (kind === 'plain') spec.stages = [{ name: 'decode', tpotMs: tpot }];
  else {
    spec.stages = [{ name: 'inner', tpotMs: tpot }];
    spec.finalStages = [{ name: 'final', tpotMs: app.final_tpot_ms ?? tpot }];
  }
  if (app.max_tokens !== undefined) spec.maxTokens = app.max_tokens;
  if (app.alpha !== undefined) spec.alpha = app.alpha;
  return spec;
}

/** Clamps per-stage truth so the total never exceeds `cap`, taking from the stages in order. */
function clampStages(counts: readonly number[], cap: number): number[] {
  let left = cap;
  return counts.map((n) => {
    const take = Math.min(n, left);
    left -= take;
    return take;
  });
}

/**
 * The simulator's form of a trace: requests sorted (stably) by arrival and named 'r<index>' in that
 * order. A round's maxTokens is the request's max_tokens, else the app's, else what the context
 * leaves, and never more than the context leaves (tool rounds count earlier rounds' prompts and
 * outputs as context). The truth is clamped to maxTokens.
 */
export function resolveTrace(trace: Trace, opts: { contextTokens: number }): ResolvedTrace {
  const ctx = opts.contextTokens;
  if (!Number.isInteger(ctx) || ctx < 2) throw new RangeError(`contextTokens must be an integer >= 2, got ${ctx}`);
  const t = parseTrace(trace);
  const kinds = kindsOf(t.apps, t.requests);
  const apps = new Map<string, AppSpec>();
  for (const [name, app] of Object.entries(t.apps)) apps.set(name, resolveApp(name, app, kinds.get(name) as Kind));
  const order = t.requests.map((_, i) => i).sort((a, b) => (t.requests[a] as TraceRequest).t_ms - (t.requests[b] as TraceRequest).t_ms);
  const requests = order.map((i, index): SimRequestSpec => {
    const req = t.requests[i] as TraceRequest;
    const app = apps.get(req.app) as AppSpec;
    const cap = req.max_tokens ?? app.maxTokens;
    const rawRounds: { prompt: number; truth: number[]; toolMs: number; path: string }[] = req.rounds
      ? req.rounds.map((r, k) => ({ prompt: r.prompt_tokens, truth: [r.output_tokens], toolMs: r.tool_ms ?? 0, path: `requests[${i}].rounds[${k}]` }))
      : [{ prompt: req.prompt_tokens as number, truth: req.stage_tokens ?? [req.output_tokens as number], toolMs: 0, path: `requests[${i}]` }];
    let used = 0;
    const rounds = rawRounds.map((r, k): SimRound => {
      used += r.prompt;
      const room = ctx - used;
      if (room < 1) fail(`${r.path}.prompt_tokens`, `${used} tokens of context so far leave no room for output in a ${ctx}-token context`);
      const maxTokens = Math.min(cap ?? room, room);
      const stageTokens = clampStages(r.truth, maxTokens);
      used += stageTokens.reduce((a, b) => a + b, 0);
      const last = k === rawRounds.length - 1;
      const stages = app.kind === 'tool' && last ? (app.finalStages as StageSlo[]) : app.stages;
      return { promptTokens: r.prompt, maxTokens, stageTokens, stages: stages.map((s) => ({ ...s })), toolMs: last ? 0 : r.toolMs };
    });
    const spec: SimRequestSpec = { id: `r${index}`, app: req.app, arrivalMs: req.t_ms, rounds };
    if (req.prefix_id !== undefined) spec.prefix = { id: req.prefix_id, tokens: req.prefix_tokens as number };
    return spec;
  });
  return { apps, requests };
}

function copyApps(apps: Map<string, AppSpec>): Map<string, AppSpec> {
  const out = new Map<string, AppSpec>();
  for (const [name, a] of apps) {
    const spec: AppSpec = { ...a, ttft: { ...a.ttft }, stages: a.stages.map((s) => ({ ...s })) };
    if (a.finalStages) spec.finalStages = a.finalStages.map((s) => ({ ...s }));
    out.set(name, spec);
  }
  return out;
}

/** The same trace at `factor` times the arrival rate: arrival times / factor; tool delays unchanged. */
export function compressTrace(trace: ResolvedTrace, factor: number): ResolvedTrace {
  if (!(factor > 0) || !Number.isFinite(factor)) throw new RangeError(`compress factor must be finite and > 0, got ${factor}`);
  return {
    apps: copyApps(trace.apps),
    requests: trace.requests.map((r) => ({
      ...r,
      arrivalMs: r.arrivalMs / factor,
      rounds: r.rounds.map((x) => ({ ...x, stageTokens: [...x.stageTokens], stages: x.stages.map((s) => ({ ...s })) })),
      ...(r.prefix ? { prefix: { ...r.prefix } } : {}),
    })),
  };
}

/**
 * Back to JSON. Every request carries max_tokens (its largest round cap), so resolving the result
 * with the same contextTokens gives back the same ResolvedTrace.
 */
export function traceToJson(trace: ResolvedTrace): Trace {
  const apps: Record<string, TraceApp> = {};
  for (const [name, a] of trace.apps) {
    const app: TraceApp = 'ms' in a.ttft ? { ttft_ms: a.ttft.ms } : { ttft_slowdown: a.ttft.slowdown };
    if (a.kind === 'staged') app.stages = a.stages.map((s) => ({ name: s.name, tpot_ms: s.tpotMs }));
    else app.tpot_ms = (a.stages[0] as StageSlo).tpotMs;
    if (a.kind === 'tool') app.final_tpot_ms = (a.finalStages?.[0] ?? (a.stages[0] as StageSlo)).tpotMs;
    if (a.maxTokens !== undefined) app.max_tokens = a.maxTokens;
    if (a.alpha !== undefined) app.alpha = a.alpha;
    setOwn(apps, name, app);
  }
  const requests = trace.requests.map((r): TraceRequest => {
    const kind = trace.apps.get(r.app)?.kind;
    const req: TraceRequest = { t_ms: r.arrivalMs, app: r.app };
    const first = r.rounds[0] as SimRound;
    if (kind === 'tool') {
      req.rounds = r.rounds.map((x, k) => {
        const round: TraceRound = { prompt_tokens: x.promptTokens, output_tokens: x.stageTokens[0] as number };
        if (k < r.rounds.length - 1) round.tool_ms = x.toolMs;
        return round;
      });
    } else {
      req.prompt_tokens = first.promptTokens;
      if (kind === 'staged') req.stage_tokens = [...first.stageTokens];
      else req.output_tokens = first.stageTokens[0] as number;
    }
    req.max_tokens = Math.max(...r.rounds.map((x) => x.maxTokens));
    if (r.prefix) {
      req.prefix_id = r.prefix.id;
      req.prefix_tokens = r.prefix.tokens;
    }
    return req;
  });
  return { apps, requests };
}
