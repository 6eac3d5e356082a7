// A Router fronts a local engine and remote OpenAI-compatible replicas (vLLM, llama.cpp's
// llama-server, another `webslo serve`) behind the Engine's own API: `chat.completions.create`,
// `completions.create`, `app()`, `stats()`. Per request:
//   1. the local engine's planner is offered the request (RequestOptions.offer): admitted, it runs
//      there;
//   2. otherwise the remote replica predicted to meet the app's TTFT and TPOT with the most room
//      takes it (scheduler/routing.ts: latency fits learned online, health, capacity). A remote
//      that fails before its first token (refused connection, HTTP error, no first token in time)
//      is marked failed and the next one is tried;
//   3. where none can, the request goes to the local engine without the offer: the app's own
//      decline policy applies there (declined with SloError, or served best-effort). Without a
//      local engine it is declined (RequestDeclinedError, HTTP 429 through engineFetch).
// A remote stream that breaks after its first token (cut, stalled, malformed) continues on the
// local engine from the prompt plus the tokens already delivered (their ids when the remote gave
// them, vLLM's return_token_ids; else their text), and the caller sees one stream. Without a
// local engine the request fails with RemoteReplicaError saying how much was delivered.
//
// Beside it: scheduler/routing.ts (the policy, shared with the simulator), remote-replica.ts (one
// streamed request to a remote), local-replica.ts (the local engine's side), router-response.ts
// (pieces to OpenAI responses).
//
// Invariants: every request ends exactly once (its result, or one error); a replica's in-flight
// count goes back down on every path; tokens reach the caller in order and none twice.

import type { AppSloInput } from '../host/protocol.js';
import { AbortError, PromptTooLongError, RequestDeclinedError } from '../engine/errors.js';
import { SloError } from '../scheduler/slo.js';
import { chooseReplica, queuedLength, remoteState, routeMet, type RemoteState } from '../scheduler/routing.js';
import { replyToolFormat } from '../openai/tool-calls.js';
import { normalizeChatParams, normalizeCompletionParams } from '../openai/validate.js';
import type { ChatCompletion, ChatCompletionChunk, Completion, CompletionChunk, CompletionUsage, FinishReason } from '../openai/types.js';
import { DEFAULT_APP, DEFAULT_APP_SLO, type AppHandle, type ChatParams, type ChunkStream, type CompletionParams, type Engine, type RequestOptions } from './engine.js';
import { relayLocal, startLocal } from './local-replica.js';
import { RemoteReplicaError, streamRemote, type FetchFn, type RemoteDelta, type RemoteReplicaConfig } from './remote-replica.js';
import { doneOf, respond, type Piece } from './router-response.js';

export { RemoteReplicaError, type RemoteReplicaConfig } from './remote-replica.js';

export interface RouterOptions {
  /** The local engine, offered every request first; null: remote replicas only. */
  local: Engine | null;
  remotes: readonly RemoteReplicaConfig[];
  /** fetch for the remotes (default: globalThis.fetch). */
  fetch?: FetchFn;
  /** A remote with no first token this long after the request was sent has failed (default: twice the app's TTFT, 2 s at least). */
  firstTokenTimeoutMs?: number;
  /** A remote stream silent this long between chunks has broken (default 10 s). */
  stallTimeoutMs?: number;
  /** A failed remote is skipped this long, doubling per consecutive failure up to 30 s (default 1 s). */
  circuitBackoffMs?: number;
}

/** Where one app's requests went and how they fared, per replica ('local' or a remote's name). */
export interface RouteStats {
  app: string;
  replica: string;
  /** Requests whose first token came from this replica. */
  served: number;
  completed: number;
  /** Ended with an error here (after their first token, with nothing to continue them). */
  failed: number;
  /** Failed here before their first token and were tried elsewhere. */
  retriedAway: number;
  /** Broke here mid-stream and were continued on the local engine. */
  continuedAway: number;
  /** Completed requests judged against the app's SLO by the engine's rule (first token within 1.05x its TTFT, every 20th token on the TPOT curve within 5%: routeMet), and those that met it. */
  judged: number;
  met: number;
}

export interface ReplicaHealthStats {
  replica: string;
  url: string;
  inFlight: number;
  state: 'closed' | 'open' | 'half-open';
  failures: number;
  successes: number;
  /** What the latency fits predict for a 1,000-character prompt at the current concurrency (null: not measured yet). */
  predictedTtftMs: number | null;
  predictedTpotMs: number | null;
}

export interface RouterStats {
  routes: RouteStats[];
  replicas: ReplicaHealthStats[];
  /** Requests no replica could take (declined, or sent to the local engine's own policy). */
  unrouted: number;
}

/** startLocal's arguments after the engine and whether a remote exists. */
type LocalRequest = Parameters<typeof startLocal> extends [Engine, boolean, ...infer R] ? R : never;

/** One request as the Router runs it. */
interface RouteJob {
  kind: 'chat' | 'completions';
  /** The caller's body without stream options. */
  body: Record<string, unknown>;
  app: string;
  slo: AppSlo;
  maxTokens: number | null;
  /** Prompt length in characters (the routing fits' unit). */
  length: number;
  signal: AbortSignal | undefined;
  /** When the Router got it (performance.now()). */
  arrival: number;
  /** When each output token reached the Router, wherever it came from (a continuation adds to the remote's). */
  times: number[];
  /** Record a completion on a replica's route and judge the request's token times against the app's SLO. */
  judge: (replica: string) => void;
}

interface AppSlo {
  /** null: a slowdown-based TTFT, which a remote's speed cannot be judged against (any healthy replica qualifies). */
  ttftMs: number | null;
  tpotMs: number;
}

let routerCounter = 0;

export class Router {
  readonly chat: { completions: Engine['chat']['completions'] };
  readonly completions: Engine['completions'];
  private readonly remotes: { config: RemoteReplicaConfig; name: string; state: RemoteState }[];
  private readonly slos = new Map<string, AppSlo>();
  private readonly routes = new Map<string, RouteStats>();
  private readonly fetchFn: FetchFn;
  private unrouted = 0;

  constructor(private readonly options: RouterOptions) {
    const names = new Set<string>();
    this.remotes = options.remotes.map((config, i) => {
      if (typeof config.url !== 'string' || !/^https?:\/\//.test(config.url)) throw new TypeError(`remotes[${i}].url must be an http(s) URL, got ${JSON.stringify(config.url)}`);
      if (typeof config.model !== 'string' || config.model === '') throw new TypeError(`remotes[${i}].model must name the model the replica serves`);
      let name = config.name ?? new URL(config.url).host;
      if (name === 'local') name = `remote-${i}`;
      while (names.has(name)) name = `${name}#${i}`;
      names.add(name);
      return { config, name, state: remoteState(name, config.maxInFlight ?? Infinity, options.circuitBackoffMs ?? 1000) };
    });
    if (!options.local && this.remotes.length === 0) throw new TypeError('a Router needs a local engine or at least one remote replica');
    this.fetchFn = options.fetch ?? ((input, init) => globalThis.fetch(input, init));
    const chatCreate = (params: ChatParams, o?: RequestOptions): Promise<ChatCompletion | ChunkStream<ChatCompletionChunk>> => this.create('chat', params, o);
    const completionCreate = (params: CompletionParams, o?: RequestOptions): Promise<Completion | ChunkStream<CompletionChunk>> => this.create('completions', params, o);
    this.chat = { completions: { create: chatCreate as Engine['chat']['completions']['create'] } };
    this.completions = { create: completionCreate as Engine['completions']['create'] };
  }

  /** The model named in responses and /v1/models: the local engine's, else the first remote's. */
  get info(): { readonly model: string } {
    return { model: this.options.local?.info.model ?? this.remotes[0]!.config.model };
  }

  /** Declare an app and its SLOs: on the local engine (as engine.app does), and for judging the remotes. */
  app(name: string, slo: AppSloInput): AppHandle {
    const handle = this.options.local?.app(name, slo);
    if (slo === null || typeof slo !== 'object') throw new SloError(String(name), '(slo)', 'must be an object { ttftMs | ttftSlowdown, tpotMs | stages }');
    const tpots = slo.stages ? slo.stages.map((s) => s.tpotMs) : [slo.tpotMs ?? NaN];
    const tpotMs = Math.min(...tpots);
    if (!(tpotMs > 0)) throw new SloError(name, 'tpotMs', `must be a positive number of ms, got ${JSON.stringify(slo.tpotMs)}`);
    if (slo.ttftMs !== undefined && slo.ttftMs !== null && !(typeof slo.ttftMs === 'number' && Number.isFinite(slo.ttftMs) && slo.ttftMs > 0))
      throw new SloError(name, 'ttftMs', `must be a positive, finite number of ms, got ${JSON.stringify(slo.ttftMs)}`);
    if (!Number.isFinite(tpotMs)) throw new SloError(name, 'tpotMs', `must be a positive, finite number of ms, got ${JSON.stringify(slo.tpotMs)}`);
    this.slos.set(name, { ttftMs: typeof slo.ttftMs === 'number' ? slo.ttftMs : null, tpotMs });
    return handle ?? Object.freeze({ name, slo: Object.freeze({ ...slo }), ready: Promise.resolve() });
  }

  async stats(): Promise<RouterStats> {
    const now = performance.now();
    return {
      routes: [...this.routes.values()].map((r) => ({ ...r })),
      replicas: this.remotes.map(({ config, name, state }) => ({
        replica: name,
        url: config.url,
        inFlight: state.inFlight,
        state: state.health.state(now),
        failures: state.health.failures,
        successes: state.health.successes,
        predictedTtftMs: state.latency.predictTtft(1000, state.inFlight, queuedLength(state)),
        predictedTpotMs: state.latency.predictTpot(state.inFlight),
      })),
      unrouted: this.unrouted,
    };
  }

  /** A streamed request on the local engine (local-replica.ts); offered and refused: the refusal. */
  private local(...request: LocalRequest): ReturnType<typeof startLocal> {
    return startLocal(this.options.local!, this.remotes.length > 0, ...request);
  }

  private route(app: string, replica: string): RouteStats {
    const key = JSON.stringify([app, replica]);
    let r = this.routes.get(key);
    if (!r) this.routes.set(key, (r = { app, replica, served: 0, completed: 0, failed: 0, retriedAway: 0, continuedAway: 0, judged: 0, met: 0 }));
    return r;
  }

  private async create(kind: 'chat' | 'completions', params: ChatParams | CompletionParams, options?: RequestOptions): Promise<never> {
    const { signal: paramSignal, app: appRef, ...rest } = params as ChatParams & CompletionParams;
    const signal = options?.signal ?? paramSignal;
    const app = appRef === undefined || appRef === null ? DEFAULT_APP : typeof appRef === 'string' ? appRef : appRef.name;
    if (app === DEFAULT_APP && !this.slos.has(DEFAULT_APP)) this.app(DEFAULT_APP, DEFAULT_APP_SLO);
    const slo = this.slos.get(app);
    if (!slo) throw new SloError(app, 'app', `is not declared: call router.app('${app}', { ttftMs, tpotMs }) first`);
    // Validated here, as the engine would, so a bad request is a 400 before any replica sees it.
    const norm = kind === 'chat' ? normalizeChatParams({ ...rest, app }) : normalizeCompletionParams({ ...rest, app });
    if (signal?.aborted) throw new AbortError();
    const body = { ...(rest as Record<string, unknown>) };
    delete body['stream'];
    delete body['stream_options'];
    // One signal for wherever the request runs: the caller's, or the stream's abort().
    const cancel = new AbortController();
    const onAbort = (): void => cancel.abort(new AbortError());
    signal?.addEventListener('abort', onAbort, { once: true });
    const pieces = (async function* (self: Router): AsyncGenerator<Piece> {
      try {
        yield* self.run({ kind, body, app, slo, maxTokens: norm.maxTokens, length: promptLength(body), signal: cancel.signal });
      } finally {
        signal?.removeEventListener('abort', onAbort);
      }
    })(this);
    // The first piece (or error) comes before the call returns, as the engine's create does for
    // errors the planner raises at submit.
    const first = await pieces.next();
    const model = norm.model ?? this.options.local?.info.model ?? this.remotes[0]!.config.model;
    // Calls are parsed here, in the local model's format, from the text whichever replica wrote it
    // (the local engine is asked for raw text: startLocal sends tool_choice 'none').
    const toolFormat = norm.kind === 'chat' ? replyToolFormat(norm, this.options.local?.info.toolCallFormat ?? null) : null;
    return respond(kind, norm, model, app, first, pieces, cancel, toolFormat) as never;
  }

  /** The request's pieces from wherever it runs: local offer, remotes in turn, then the local engine's own policy. */
  private async *run(request: Omit<RouteJob, 'arrival' | 'judge' | 'times'>): AsyncGenerator<Piece> {
    const { kind, body, app, slo, length, signal } = request;
    const arrival = performance.now();
    const local = this.options.local;
    const times: number[] = [];
    const judge = (replica: string): void => {
      const r = this.route(app, replica);
      r.completed++;
      if (times.length === 0) return;
      r.judged++;
      if (routeMet(slo, arrival, times)) r.met++;
    };
    // 1. The local planner's offer.
    let refusal: Error | null = null;
    if (local) {
      const offered = await this.local(kind, body, app, signal, { offer: true });
      if (!(offered instanceof Error)) {
        this.route(app, 'local').served++;
        yield* relayLocal((replica) => this.route(app, replica).failed++, offered, arrival, times, 'local', null, judge);
        return;
      }
      refusal = offered;
    }
    // 2. Remotes, best predicted first; a failure before the first token moves on to the next.
    const tried = new Set<number>();
    for (;;) {
      const now = performance.now();
      const budget = slo.ttftMs === null ? Infinity : Math.max(1, slo.ttftMs - (now - arrival));
      const choice = chooseReplica(
        this.remotes.map((r) => r.state),
        { promptLength: length, ttftMs: budget, tpotMs: slo.tpotMs },
        now,
        tried,
      );
      if (!choice) break;
      tried.add(choice.index);
      const remote = this.remotes[choice.index]!;
      const outcome = yield* this.runRemote({ ...request, arrival, times, judge }, remote);
      if (outcome === 'done') return;
    }
    // 3. Nobody predicted to meet it: the local engine's own policy, or a decline.
    this.unrouted++;
    if (!local) throw new RequestDeclinedError(app, `router-${++routerCounter}`, 'slo');
    // A prompt too long for the local engine stays refused there.
    if (refusal instanceof PromptTooLongError) throw refusal;
    const stream = await this.local(kind, body, app, signal, { offer: false });
    if (stream instanceof Error) throw stream;
    this.route(app, 'local').served++;
    yield* relayLocal((replica) => this.route(app, replica).failed++, stream, arrival, times, 'local', null, judge);
  }

  /** One try on a remote: 'retry' when it failed before its first token (nothing was delivered). */
  private async *runRemote(job: RouteJob, remote: { config: RemoteReplicaConfig; name: string; state: RemoteState }): AsyncGenerator<Piece, 'done' | 'retry'> {
    const { kind, body, app, slo, maxTokens, length, signal, arrival, times, judge } = job;
    const { state, name } = remote;
    if (signal?.aborted) throw new AbortError();
    const sentAt = performance.now();
    const concurrency = state.inFlight;
    const queued = queuedLength(state);
    state.inFlight++;
    const waiting = { sentAt, length };
    state.awaitingFirst.push(waiting);
    let here = true;
    let awaiting = true;
    const firstCame = (): void => {
      if (!awaiting) return;
      awaiting = false;
      const i = state.awaitingFirst.indexOf(waiting);
      if (i >= 0) state.awaitingFirst.splice(i, 1);
    };
    /** The request no longer occupies the remote (it ended, or moved to the local engine). */
    const leave = (): void => {
      if (!here) return;
      here = false;
      firstCame();
      state.inFlight--;
    };
    state.health.sent(sentAt);
    let judged = false; // success() or failure() recorded for this request
    const controller = new AbortController();
    const onAbort = (): void => controller.abort(new AbortError());
    signal?.addEventListener('abort', onAbort, { once: true });
    const firstTimeout = remote.config.firstTokenTimeoutMs ?? this.options.firstTokenTimeoutMs ?? Math.max(2000, 2 * (slo.ttftMs ?? 30_000));
    const stallTimeout = this.options.stallTimeoutMs ?? 10_000;
    // Armed only while a read is pending: a slow reader of the Router's own stream is not a stalled remote.
    let timer: ReturnType<typeof setTimeout> | null = null;
    const disarm = (): void => {
      if (timer) clearTimeout(timer);
      timer = null;
    };
    const arm = (): void => {
      disarm();
      const [ms, what] =
        firstAt === null ? [Math.max(0, sentAt + firstTimeout - performance.now()), `no first token within ${firstTimeout} ms`] : [stallTimeout, `no chunk for ${stallTimeout} ms mid-stream`];
      timer = setTimeout(() => controller.abort(new RemoteReplicaError(name, 'timeout', what)), ms);
    };
    let firstAt: number | null = null;
    let delivered = 0;
    let text = '';
    const ids: number[] = [];
    let idsComplete = true;
    let finish: FinishReason | null = null;
    let usage: CompletionUsage | null = null;
    const sent = remote.config.tokenIds === false ? withoutExtensions(body) : body;
    try {
      const stream = streamRemote(remote.config, name, kind, sent, controller.signal, this.fetchFn);
      for (;;) {
        let next: IteratorResult<RemoteDelta>;
        try {
          arm();
          next = await stream.next();
          disarm();
        } catch (e) {
          disarm();
          if (signal?.aborted) throw new AbortError();
          const err = e instanceof Error ? e : new Error(String(e));
          if (finish !== null && firstAt !== null) {
            // The reply had finished; only its usage or [DONE] was lost.
            state.health.success();
            judged = true;
            const tpot = delivered > 1 ? (performance.now() - firstAt) / (delivered - 1) : null;
            judge(name);
            yield doneOf(finish, null, delivered, name, null, firstAt - arrival, tpot);
            return 'done';
          }
          // A 429 is a busy replica, and a 4xx (but 408) a request this replica will not take
          // (a context shorter than ours, a field it refuses): neither is a broken replica.
          const status = err instanceof RemoteReplicaError ? err.status : null;
          if (status === null || status >= 500 || status === 408) {
            state.health.failure(performance.now());
            judged = true;
          }
          if (firstAt === null) {
            this.route(app, name).retriedAway++;
            return 'retry';
          }
          // Broke mid-stream: the local engine continues it, or the request fails saying how far it got.
          this.route(app, name).continuedAway++;
          const local = this.options.local;
          if (!local) {
            this.route(app, name).failed++;
            throw new RemoteReplicaError(name, 'stream', `${err.message}; ${delivered} tokens (${text.length} characters) were delivered and no local engine can continue the reply`);
          }
          const remaining = maxTokens === null ? null : maxTokens - delivered;
          if (remaining !== null && remaining < 1) {
            // Everything asked for had arrived; only the end was lost.
            judge(name);
            yield doneOf('length', null, delivered, name, null, firstAt - arrival, null);
            return 'done';
          }
          leave();
          const continuation = idsComplete && ids.length === delivered ? { token_ids: ids } : { text };
          const rest: Record<string, unknown> = { ...body, continuation };
          if (remaining !== null) {
            delete rest['max_completion_tokens'];
            rest['max_tokens'] = remaining;
          }
          const cont = await this.local(kind, rest, app, signal, { offer: false });
          if (cont instanceof Error) throw cont;
          yield* relayLocal((replica) => this.route(app, replica).failed++, cont, arrival, times, name, 'local', judge, { firstAt, delivered });
          return 'done';
        }
        if (next.done) break;
        const d = next.value;
        if (d.usage) usage = d.usage;
        if (d.finishReason) finish = d.finishReason;
        if (!d.text && !d.tokenIds?.length) continue;
        if (firstAt === null) {
          firstAt = performance.now();
          firstCame();
          state.latency.firstToken(length, concurrency, firstAt - sentAt, firstAt, queued);
          this.route(app, name).served++;
        }
        const now = performance.now();
        // One time per token: a chunk without ids is one token; one with an empty list (held-back text at the end) none.
        for (let k = d.tokenIds ? d.tokenIds.length : 1; k > 0; k--) times.push(now);
        if (d.tokenIds) {
          ids.push(...d.tokenIds);
          delivered += d.tokenIds.length;
        } else {
          idsComplete = false;
          delivered++;
        }
        text += d.text;
        yield { type: 'delta', text: d.text, tokenIds: d.tokenIds, logprobs: d.logprobs };
      }
      // streamRemote ends normally only after a finish_reason (the usage chunk may follow it).
      const end = performance.now();
      firstAt ??= end;
      const n = usage?.completion_tokens ?? delivered;
      const tpot = n > 1 ? (end - firstAt) / (n - 1) : null;
      state.health.success();
      judged = true;
      if (delivered === 0) {
        state.latency.firstToken(length, concurrency, end - sentAt, end, queued);
        this.route(app, name).served++;
      }
      if (tpot !== null) state.latency.perToken(concurrency, tpot);
      // A reply with no text at all (an immediate end): its end is its first token.
      if (times.length === 0) times.push(end);
      judge(name);
      yield doneOf(finish ?? 'stop', usage, n, name, null, firstAt - arrival, tpot);
      return 'done';
    } finally {
      disarm();
      signal?.removeEventListener('abort', onAbort);
      controller.abort(new AbortError());
      // A half-open circuit's probe that ended with neither outcome (aborted, a 4xx) lets the next probe through.
      if (!judged) state.health.release();
      leave();
    }
  }
}

/** webslo's own request fields, for a remote that refuses unknown fields (RemoteReplicaConfig.tokenIds: false). */
function withoutExtensions(body: Record<string, unknown>): Record<string, unknown> {
  const out = { ...body };
  for (const k of ['return_token_ids', 'continuation', 'conversationId', 'stage']) delete out[k];
  return out;
}

/** The prompt's length in characters (the routing fits' unit; token prompts count their ids). */
function promptLength(body: Record<string, unknown>): number {
  const msgs = body['messages'];
  if (Array.isArray(msgs)) {
    let n = 0;
    for (const m of msgs as { content?: unknown }[]) {
      const c = m?.content;
      if (typeof c === 'string') n += c.length;
      else if (Array.isArray(c)) for (const part of c as { text?: unknown }[]) if (typeof part?.text === 'string') n += part.text.length;
    }
    return n;
  }
  const p = body['prompt'];
  return typeof p === 'string' ? p.length : Array.isArray(p) ? p.length : 0;
}
