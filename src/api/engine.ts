// The public engine: apps with their SLOs, OpenAI-compatible chat.completions and completions
// (streamed or not), stats and unload. It runs on the page (or in Node) and talks to wherever the
// engine runs through an EngineBackend; each request's events are pushed to it, never polled.

import { fromWire, AbortError, EngineClosedError, SloError } from '../host/wire.js';
import { EventQueue } from './event-queue.js';
import { chatChunk, chatCompletion, chatUsageChunk, completion, completionChunk, completionUsageChunk, createdAt, newChatCompletionId, newCompletionId, usage } from '../openai/responses.js';
import type {
  ChatCompletion,
  ChatCompletionChunk,
  ChatCompletionCreateParams,
  ChatCompletionTokenLogprob,
  Completion,
  CompletionChunk,
  CompletionCreateParams,
  CompletionLogprobs,
  WebsloResponseInfo,
} from '../openai/types.js';
import { ReplyToolCalls, replyToolFormat } from '../openai/tool-calls.js';
import { normalizeChatParams, normalizeCompletionParams, type NormalizedChatRequest, type NormalizedCompletionRequest } from '../openai/validate.js';
import type { EngineBackend } from '../host/backend.js';
import type { AppSloInput, EngineStats, HostRequest, ModelInfo, SchedulerName, StreamEvent } from '../host/protocol.js';
import { validateAppSlo } from '../scheduler/slo.js';
import type { PerformanceProfile } from '../scheduler/perf-model.js';

/** A declared app: pass it (or its name) as a request's `app`. */
export interface AppHandle {
  readonly name: string;
  readonly slo: Readonly<AppSloInput>;
  /**
   * Settles when the engine has checked the SLO against this model: rejects with SloError when it
   * is impossible here (then the app's requests fail with that error until it is declared again).
   */
  readonly ready: Promise<void>;
}

/** Request options as the OpenAI SDK takes them (second argument). */
export interface RequestOptions {
  signal?: AbortSignal;
  /**
   * Admit now or fail at once with RequestDeclinedError (reason 'not-admitted', HTTP 429 through
   * engineFetch): the planner's offer, as a router asks it before sending a request elsewhere.
   * Nothing of a refused request stays in the engine; without it a request the planner cannot
   * take now follows its app's onDecline policy.
   */
  offer?: boolean;
}

type AppRef = string | AppHandle;
export type ChatParams = Omit<ChatCompletionCreateParams, 'app'> & { app?: AppRef; signal?: AbortSignal };
export type CompletionParams = Omit<CompletionCreateParams, 'app'> & { app?: AppRef; signal?: AbortSignal };

/** A streamed response: `for await` its chunks; abort() (or the signal) rejects it with AbortError. */
export interface ChunkStream<T> extends AsyncIterable<T> {
  abort(): void;
}

export const DEFAULT_APP = 'default';
/** The app of requests that name none: loose SLOs, served best-effort when the planner declines. */
export const DEFAULT_APP_SLO: AppSloInput = { ttftMs: 600_000, tpotMs: 60_000, onDecline: 'best-effort' };

let requestCounter = 0;

export class Engine {
  readonly chat: {
    completions: {
      create(params: ChatParams & { stream: true }, options?: RequestOptions): Promise<ChunkStream<ChatCompletionChunk>>;
      create(params: ChatParams & { stream?: false | null }, options?: RequestOptions): Promise<ChatCompletion>;
      create(params: ChatParams, options?: RequestOptions): Promise<ChatCompletion | ChunkStream<ChatCompletionChunk>>;
    };
  };
  readonly completions: {
    create(params: CompletionParams & { stream: true }, options?: RequestOptions): Promise<ChunkStream<CompletionChunk>>;
    create(params: CompletionParams & { stream?: false | null }, options?: RequestOptions): Promise<Completion>;
    create(params: CompletionParams, options?: RequestOptions): Promise<Completion | ChunkStream<CompletionChunk>>;
  };
  private readonly registrations = new Map<string, Promise<void>>();
  private readonly handles = new Map<string, AppHandle>();
  /** Fail functions of requests still running. */
  private readonly open = new Set<(e: Error) => void>();
  private unloaded = false;

  constructor(
    private readonly backend: EngineBackend,
    /** What was loaded: model, adapter, KV cache, scheduler, the planning model's step times. */
    readonly info: ModelInfo,
  ) {
    const chatCreate = (params: ChatParams, options?: RequestOptions): Promise<ChatCompletion | ChunkStream<ChatCompletionChunk>> => this.createChat(params, options);
    const completionCreate = (params: CompletionParams, options?: RequestOptions): Promise<Completion | ChunkStream<CompletionChunk>> => this.createCompletion(params, options);
    this.chat = { completions: { create: chatCreate as Engine['chat']['completions']['create'] } };
    this.completions = { create: completionCreate as Engine['completions']['create'] };
  }

  /**
   * Declare an app and its SLOs (synchronous; a malformed SLO throws SloError here). Whether this
   * model can meet it is checked by the engine: a request of an impossible app fails with SloError.
   */
  app(name: string, slo: AppSloInput): AppHandle {
    if (this.unloaded) throw new EngineClosedError();
    if (slo === null || typeof slo !== 'object') throw new SloError(String(name), '(slo)', `must be an object { ttftMs | ttftSlowdown, tpotMs | stages }, got ${slo === null ? 'null' : typeof slo}`);
    const stages = slo.stages ?? (slo.tpotMs !== undefined ? [{ name: 'answer', tpotMs: slo.tpotMs }] : undefined);
    validateAppSlo(name, { ...(slo.ttftMs !== undefined ? { ttftMs: slo.ttftMs } : {}), ...(slo.ttftSlowdown !== undefined ? { ttftSlowdown: slo.ttftSlowdown } : {}), stages });
    const registration = this.backend.registerApp(name, { ...slo });
    registration.catch(() => {}); // surfaced by the app's requests (and by `ready` to whoever awaits it)
    const handle: AppHandle = Object.freeze({ name, slo: Object.freeze({ ...slo }), ready: registration });
    this.registrations.set(name, registration);
    this.handles.set(name, handle);
    return handle;
  }

  async stats(): Promise<EngineStats> {
    return this.backend.stats();
  }

  /**
   * The performance model the planner uses now (the startup calibration, or the given profile,
   * refitted online on the steps served so far), as JSON. Save it and pass it back as
   * `createEngine({ profile })` with the same model on the same GPU to skip the calibration.
   */
  async exportProfile(): Promise<PerformanceProfile> {
    if (this.unloaded) throw new EngineClosedError();
    return this.backend.exportProfile();
  }

  /** Switch the scheduling policy; only while no request is in the engine. */
  async setScheduler(name: SchedulerName): Promise<void> {
    await this.backend.setScheduler(name);
    (this.info as { scheduler: SchedulerName }).scheduler = name;
  }

  /** Fail in-flight requests, free the GPU; the engine takes no more requests. */
  async unload(): Promise<void> {
    if (this.unloaded) return;
    this.unloaded = true;
    try {
      await this.backend.unload();
    } finally {
      // Requests whose end never crossed back (a worker terminated mid-flight) end here.
      for (const fail of [...this.open]) fail(fromWire({ name: 'EngineClosedError', message: 'the engine was unloaded; create a new engine (createEngine) to continue' }));
    }
  }

  /** Tests: destroy the GPU device under the engine (in-flight requests fail with DeviceLostError). */
  async destroyDeviceForTesting(): Promise<void> {
    await this.backend.destroyDevice();
  }

  private appName(ref: AppRef | undefined | null): string {
    if (ref === undefined || ref === null) {
      if (!this.registrations.has(DEFAULT_APP)) this.app(DEFAULT_APP, DEFAULT_APP_SLO);
      return DEFAULT_APP;
    }
    return typeof ref === 'string' ? ref : ref.name;
  }

  /** Start a request on the backend: its events, and the id to cancel it by. */
  private async start(
    norm: NormalizedChatRequest | NormalizedCompletionRequest,
    app: string,
    signal: AbortSignal | undefined,
    prefix: string,
    offer: boolean,
  ): Promise<{ id: string; events: EventQueue<StreamEvent>; abort: () => void }> {
    if (this.unloaded) throw fromWire({ name: 'EngineClosedError', message: 'the engine was unloaded; create a new engine (createEngine) to continue' });
    if (signal?.aborted) throw new AbortError();
    await (this.registrations.get(app) ?? Promise.resolve());
    // Aborted or unloaded while the app's registration was awaited (the listener below was not there yet).
    if (signal?.aborted) throw new AbortError();
    if (this.unloaded) throw fromWire({ name: 'EngineClosedError', message: 'the engine was unloaded; create a new engine (createEngine) to continue' });
    const id = `${prefix}-${++requestCounter}`;
    const events = new EventQueue<StreamEvent>();
    const req: HostRequest = {
      requestId: id,
      app,
      prompt:
        norm.kind === 'chat'
          ? { kind: 'chat', messages: norm.messages, tools: norm.tools }
          : typeof norm.prompt === 'string'
            ? { kind: 'text', text: norm.prompt }
            : { kind: 'tokens', ids: norm.prompt },
      maxTokens: norm.maxTokens,
      sampling: norm.sampling,
      penalties: norm.penalties,
      stop: norm.stop,
      logprobs: norm.logprobs,
      topLogprobs: norm.topLogprobs,
      ignoreEos: norm.ignoreEos,
      stage: norm.stage,
      conversationId: norm.conversationId,
      continuation: norm.continuation,
      offer,
    };
    let done = false;
    // Every terminal path: settle the reader first, then let go of the signal and the open set.
    const settle = (how: () => void): void => {
      if (done) return;
      done = true;
      how();
      signal?.removeEventListener('abort', abort);
      this.open.delete(fail);
    };
    const fail = (e: Error): void => settle(() => events.fail(e));
    const abort = (): void => {
      if (done) return;
      fail(new AbortError());
      try {
        this.backend.cancel(id);
      } catch {
        // The backend is gone (unloaded): nothing left to cancel.
      }
    };
    signal?.addEventListener('abort', abort, { once: true });
    this.open.add(fail);
    try {
      this.backend.generate(req, (ev) => {
        if (done) return;
        if (ev.type === 'error') fail(fromWire(ev.error));
        else if (ev.type === 'done') {
          events.push(ev);
          settle(() => events.end());
        } else events.push(ev);
      });
    } catch (e) {
      fail(e instanceof Error ? e : new Error(String(e)));
    }
    return { id, events, abort };
  }

  private webslo(app: string, decision: 'admitted' | 'best-effort', done: StreamEvent & { type: 'done' }): WebsloResponseInfo {
    const info: WebsloResponseInfo = { app, decision: done.bestEffort ? 'best-effort' : decision };
    if (done.firstTokenMs !== null) {
      info.ttft_ms = done.firstTokenMs - done.arrivalMs;
      if (done.completionTokens > 1) info.tpot_ms = (done.endMs - done.firstTokenMs) / (done.completionTokens - 1);
    }
    return info;
  }

  private async createChat(params: ChatParams, options?: RequestOptions): Promise<ChatCompletion | ChunkStream<ChatCompletionChunk>> {
    const { signal: paramSignal, app: appRef, ...rest } = params;
    const signal = options?.signal ?? paramSignal;
    const app = this.appName(appRef);
    const norm = normalizeChatParams({ ...rest, app });
    const { events, abort } = await this.start(norm, app, signal, 'chatcmpl', options?.offer ?? false);
    const ids = norm.returnTokenIds;
    const header = { id: newChatCompletionId(), created: createdAt(), model: norm.model ?? this.info.model };
    const includeUsage = norm.stream && norm.includeUsage;
    // Tools offered, calls allowed and a template format known: the reply is parsed for calls.
    const calls = new ReplyToolCalls(replyToolFormat(norm, this.info.toolCallFormat));
    return this.respond(norm.stream, events, abort, app, {
      opening: chatChunk({ ...header, role: true, content: '', includeUsage }),
      delta: (ev) => {
        const { content, toolCalls } = calls.push(ev.text);
        return content || toolCalls.length > 0 || ev.logprobs || (ids && ev.tokenIds.length > 0)
          ? chatChunk({ ...header, content, toolCalls, ...(norm.logprobs ? { logprobs: ev.logprobs ?? [] } : {}), ...(ids ? { tokenIds: ev.tokenIds } : {}), includeUsage })
          : null;
      },
      closing: (done, webslo) => {
        const rest = calls.end();
        return [
          ...(rest.content || rest.toolCalls.length > 0 ? [chatChunk({ ...header, ...rest, includeUsage })] : []),
          chatChunk({ ...header, finishReason: calls.finishReason(done.finishReason), includeUsage }),
          ...(includeUsage ? [chatUsageChunk({ ...header, usage: usage(done.promptTokens, done.completionTokens), webslo })] : []),
        ];
      },
      whole: (text, logprobs, done, webslo, tokenIds) =>
        chatCompletion({
          ...header,
          ...calls.whole(text, done.finishReason),
          usage: usage(done.promptTokens, done.completionTokens),
          ...(norm.logprobs ? { logprobs } : {}),
          ...(ids ? { tokenIds } : {}),
          webslo,
        }),
    });
  }

  private async createCompletion(params: CompletionParams, options?: RequestOptions): Promise<Completion | ChunkStream<CompletionChunk>> {
    const { signal: paramSignal, app: appRef, ...rest } = params;
    const signal = options?.signal ?? paramSignal;
    const app = this.appName(appRef);
    const norm = normalizeCompletionParams({ ...rest, app });
    const { events, abort } = await this.start(norm, app, signal, 'cmpl', options?.offer ?? false);
    const ids = norm.returnTokenIds;
    const header = { id: newCompletionId(), created: createdAt(), model: norm.model ?? this.info.model };
    let offset = 0;
    const legacy = (entries: readonly ChatCompletionTokenLogprob[] | undefined): CompletionLogprobs | null => {
      if (!norm.logprobs || !entries) return null;
      const tops: Record<string, number>[] = [];
      const offsets: number[] = [];
      for (const e of entries) {
        const top: Record<string, number> = { [e.token]: e.logprob };
        for (const t of e.top_logprobs) if (!(t.token in top)) top[t.token] = t.logprob;
        tops.push(top);
        offsets.push(offset);
        offset += e.token.length;
      }
      return { tokens: entries.map((e) => e.token), token_logprobs: entries.map((e) => e.logprob), top_logprobs: tops, text_offset: offsets };
    };
    const includeUsage = norm.stream && norm.includeUsage;
    return this.respond(norm.stream, events, abort, app, {
      delta: (ev) =>
        ev.text || ev.logprobs || (ids && ev.tokenIds.length > 0)
          ? completionChunk({ ...header, text: ev.text, logprobs: legacy(ev.logprobs), ...(ids ? { tokenIds: ev.tokenIds } : {}), includeUsage })
          : null,
      closing: (done, webslo) => [
        completionChunk({ ...header, text: '', finishReason: done.finishReason, includeUsage }),
        ...(includeUsage ? [completionUsageChunk({ ...header, usage: usage(done.promptTokens, done.completionTokens), webslo })] : []),
      ],
      whole: (text, logprobs, done, webslo, tokenIds) =>
        completion({ ...header, text, finishReason: done.finishReason, usage: usage(done.promptTokens, done.completionTokens), logprobs: legacy(logprobs), ...(ids ? { tokenIds } : {}), webslo }),
    });
  }

  /**
   * The one fold over a request's events, for all four paths (chat or completion, streamed or
   * not): decisions are remembered for the webslo info, deltas become chunks or accumulate, and
   * `done` closes the stream or builds the whole response.
   */
  private respond<Chunk, Whole>(
    stream: boolean,
    events: EventQueue<StreamEvent>,
    abort: () => void,
    app: string,
    shape: ResponseShape<Chunk, Whole>,
  ): Promise<Whole | ChunkStream<Chunk>> | ChunkStream<Chunk> {
    if (stream) {
      async function* chunks(self: Engine): AsyncGenerator<Chunk> {
        let decision: 'admitted' | 'best-effort' = 'admitted';
        if (shape.opening !== undefined) yield shape.opening;
        for await (const ev of events) {
          if (ev.type === 'decision') decision = ev.decision;
          else if (ev.type === 'delta') {
            const chunk = shape.delta(ev);
            if (chunk !== null) yield chunk;
          } else if (ev.type === 'done') yield* shape.closing(ev, self.webslo(app, decision, ev));
        }
      }
      return streamOf(chunks(this), abort);
    }
    return (async () => {
      let text = '';
      const logprobs: ChatCompletionTokenLogprob[] = [];
      const tokenIds: number[] = [];
      let decision: 'admitted' | 'best-effort' = 'admitted';
      for await (const ev of events) {
        if (ev.type === 'decision') decision = ev.decision;
        else if (ev.type === 'delta') {
          text += ev.text;
          if (ev.logprobs) logprobs.push(...ev.logprobs);
          tokenIds.push(...ev.tokenIds);
        } else if (ev.type === 'done') return shape.whole(text, logprobs, ev, this.webslo(app, decision, ev), tokenIds);
      }
      throw new AbortError('the request ended without a result');
    })();
  }
}

type DeltaEvent = StreamEvent & { type: 'delta' };
type DoneEvent = StreamEvent & { type: 'done' };

/** How one response kind turns events into chunks (streamed) or into one response (not). */
interface ResponseShape<Chunk, Whole> {
  /** Sent before any delta (chat's role chunk). */
  opening?: Chunk;
  /** A delta's chunk, or null when it carries nothing to send. */
  delta(ev: DeltaEvent): Chunk | null;
  /** The chunks that end a stream: the finish reason, then usage when asked for. */
  closing(done: DoneEvent, webslo: WebsloResponseInfo): Chunk[];
  /** The whole response from the accumulated text and logprobs. */
  whole(text: string, logprobs: ChatCompletionTokenLogprob[], done: DoneEvent, webslo: WebsloResponseInfo, tokenIds: number[]): Whole;
}

function streamOf<T>(gen: AsyncGenerator<T>, abort: () => void): ChunkStream<T> {
  return {
    abort,
    [Symbol.asyncIterator]: () => ({
      next: () => gen.next(),
      // Breaking out of `for await` stops the request too.
      return: async () => {
        abort();
        return { value: undefined, done: true };
      },
    }),
  };
}
