// The engine where it runs (a Web Worker, or the Node process): apps and their SLOs, text-level
// requests (chat template, tokenization, incremental detokenization, stop strings, logprobs), and
// the loop. Each request's results are pushed as StreamEvents to the callback it came with (a
// MessagePort in the worker): no per-token round trip.

import { chatLogprobContent, detectTokenEncoding, TokenTexts } from '../openai/logprobs.js';
import type { ChatCompletionTokenLogprob } from '../openai/types.js';
import { IncrementalDetokenizer } from '../openai/incremental-text.js';
import { StopMatcher } from '../openai/stop-strings.js';
import { EngineLoop } from '../engine/engine-loop.js';
import { AbortError, DeviceLostError, EngineClosedError, PromptTooLongError, RequestError } from '../engine/errors.js';
import type { CoreRequestSpec, EmittedToken, RequestSink } from '../engine/request.js';
import type { EngineStats } from '../engine/stats.js';
import { checkSchedulerName } from '../scheduler/registry.js';
import { SloError, validateAppSlo } from '../scheduler/slo.js';
import type { PerformanceProfile } from '../scheduler/perf-model.js';
import type { StageSlo } from '../scheduler/types.js';
import type { Penalties } from '../sampling/penalties.js';
import { loadEngine, replaceScheduler, type LoadedEngine } from './load.js';
import type { AppSloInput, HostLoadOptions, HostRequest, LoadProgress, ModelInfo, SchedulerName, StreamEvent } from './protocol.js';
import { cacheNamespace, conversationKey } from './keys.js';
import type { TextTokenizer } from '../tokenizer/tokenizer.js';
import { toWire } from './wire.js';
import { engineThreadEncoder, workerEncoder, type PromptEncoder, type PromptWorkerHandle } from './prompt-encoder.js';

interface AppConfig {
  name: string;
  ttftMs: number | null;
  ttftSlowdown: number | null;
  stages: StageSlo[];
  onDecline: 'error' | 'best-effort';
  markerIds: Set<number>;
}

const newSeed = (): bigint => BigInt(Math.floor(Math.random() * 2 ** 52));

/** Starts a worker that serves prompt encoding (prompt-encoder.ts); absent where there are none. */
export type SpawnPromptWorker = () => PromptWorkerHandle;

/** A request whose prompt is being encoded: not in the engine yet. */
interface Preparing {
  emit: (ev: StreamEvent) => void;
  /** Ended already (aborted, or the engine stopped): its prompt is dropped when it comes back. */
  ended: boolean;
}

export class EngineHost {
  private readonly apps = new Map<string, AppConfig>();
  private readonly loop: EngineLoop;
  private readonly texts: TokenTexts | null;
  private lost: DeviceLostError | null = null;
  private closed = false;
  private readonly encoder: PromptEncoder | null;
  private readonly preparing = new Map<string, Preparing>();

  private constructor(
    private readonly e: LoadedEngine,
    spawnPromptWorker?: SpawnPromptWorker,
  ) {
    this.loop = new EngineLoop(e.core, (error) => {
      if (error.name !== 'GpuDeviceLostError' && !e.rt.isLost) return error;
      this.lost ??= new DeviceLostError(error.message);
      return this.lost;
    });
    this.texts = e.tokenizer && e.files.tokenizerJson ? new TokenTexts(e.tokenizer, detectTokenEncoding(e.files.tokenizerJson)) : null;
    // Prompts are encoded off the step loop where a worker can be started (prompt-encoder.ts).
    this.encoder = e.tokenizer ? EngineHost.promptEncoder(e, e.tokenizer, spawnPromptWorker) : null;
  }

  private static promptEncoder(e: LoadedEngine, tok: TextTokenizer, spawn: SpawnPromptWorker | undefined): PromptEncoder {
    const inThread = engineThreadEncoder(tok);
    if (spawn) {
      try {
        return workerEncoder(spawn(), { tokenizerJson: e.files.tokenizerJson, tokenizerConfig: e.files.tokenizerConfig, extraEosTokenIds: [...tok.eosTokenIds] }, inThread);
      } catch {
        // A worker could not start (a sandbox, a CSP): the engine's thread does the work.
      }
    }
    return inThread;
  }

  /** Where prompts are encoded now: 'worker' (off the step loop), 'engine-thread', or null without a tokenizer. */
  get promptEncoding(): PromptEncoder['where'] | null {
    return this.encoder?.where ?? null;
  }

  /** Settles once the prompt encoder knows where it runs (load waits for it, so info() tells the truth). */
  private get encoderReady(): Promise<void> {
    return this.encoder?.ready ?? Promise.resolve();
  }

  static async load(options: HostLoadOptions, onProgress?: (p: LoadProgress) => void, spawnPromptWorker?: SpawnPromptWorker): Promise<EngineHost> {
    let host: EngineHost | null = null;
    let lostEarly: string | null = null;
    const loaded = await loadEngine(options, onProgress, (reason) => {
      if (host) host.deviceLost(reason);
      else lostEarly = reason;
    });
    host = new EngineHost(loaded, spawnPromptWorker);
    if (lostEarly !== null) host.deviceLost(lostEarly);
    await host.encoderReady;
    return host;
  }

  info(): ModelInfo {
    return { ...this.e.info, scheduler: this.e.schedulerName, promptEncoding: this.promptEncoding };
  }

  /** Declare (or redefine) an app; throws SloError for an SLO this model cannot meet. */
  registerApp(name: string, slo: AppSloInput): void {
    if (typeof name !== 'string' || name === '') throw new SloError(String(name), 'name', 'must be a non-empty string');
    const stages = slo.stages ?? (slo.tpotMs !== undefined ? [{ name: 'answer', tpotMs: slo.tpotMs }] : undefined);
    if (slo.stages && slo.tpotMs !== undefined) throw new SloError(name, 'tpotMs', 'and stages were both given: give one');
    const checked = validateAppSlo(
      name,
      { ...(slo.ttftMs !== undefined ? { ttftMs: slo.ttftMs } : {}), ...(slo.ttftSlowdown !== undefined ? { ttftSlowdown: slo.ttftSlowdown } : {}), stages },
      this.e.model,
    );
    const onDecline = slo.onDecline ?? 'error';
    if (onDecline !== 'error' && onDecline !== 'best-effort') throw new SloError(name, 'onDecline', `is ${JSON.stringify(onDecline)} (expected 'error' or 'best-effort')`);
    const markerIds = new Set<number>();
    const markers = slo.stageMarkers ?? (checked.stages.length > 1 ? ['</think>'] : []);
    for (const m of markers) {
      const id = this.e.tokenizer?.tokenToId(m) ?? null;
      if (id === null) {
        if (slo.stageMarkers) throw new SloError(name, 'stageMarkers', `'${m}' is not one token of this model's vocabulary`);
        continue;
      }
      markerIds.add(id);
    }
    this.apps.set(name, { name, ttftMs: checked.ttftMs ?? null, ttftSlowdown: checked.ttftSlowdown ?? null, stages: checked.stages, onDecline, markerIds });
  }

  /** Start a request; every result, the end or a failure, goes to `emit` (never thrown). */
  generate(req: HostRequest, emit: (ev: StreamEvent) => void): void {
    const fail = (e: unknown): void => emit({ type: 'error', error: toWire(e) });
    try {
      const target = this.target(req);
      const p = req.prompt;
      const V = this.e.info.vocabSize;
      const checkIds = (ids: readonly number[], param: string): void => {
        for (const id of ids) if (!(Number.isInteger(id) && id >= 0 && id < V)) throw new RequestError(param, `holds token id ${id}; ids are integers in 0..${V - 1}`);
      };
      const c = req.continuation;
      const tail = c && 'tokenIds' in c ? c.tokenIds : [];
      checkIds(tail, 'continuation.token_ids');
      for (const [id] of req.penalties?.logitBias ?? []) if (!(id < V)) throw new RequestError('logit_bias', `names token id ${id}; ids are integers in 0..${V - 1}`);
      if (p.kind === 'tokens') {
        if (c && 'text' in c) throw new RequestError('continuation', 'is text, but the prompt is token ids: continue a token prompt with continuation.token_ids');
        checkIds(p.ids, 'prompt');
        this.start(req, target, [...p.ids, ...tail], emit, tail.length);
        return;
      }
      if (!this.encoder) throw new RequestError('prompt', `is text, but ${this.e.files.noTokenizerReason ?? 'this model folder has no tokenizer.json'}: send token ids`);
      // A text far over the limit is refused from a prefix, before it is all tokenized.
      const { info } = this.e;
      const cache = info.kv.pages * info.kv.pageSize;
      const [limit, what] = info.contextLength <= cache ? [info.contextLength, "the model's context"] : [cache, 'the KV cache'];
      const entry: Preparing = { emit, ended: false };
      this.preparing.set(req.requestId, entry);
      this.encoder
        .encode({ ...(p.kind === 'text' ? { kind: 'text', text: p.text } : { kind: 'chat', messages: p.messages, tools: p.tools }), ...(c && 'text' in c ? { then: c.text } : {}) }, limit)
        .then(
          (r) => {
            this.prepared(req.requestId, entry);
            if (entry.ended) return;
            if ('atLeast' in r) throw new PromptTooLongError(r.atLeast, limit, what, true);
            this.start(req, target, [...r.ids, ...tail], emit, tail.length);
          },
          (e: unknown) => {
            this.prepared(req.requestId, entry);
            throw e;
          },
        )
        .catch((e: unknown) => {
          if (!entry.ended) {
            entry.ended = true;
            fail(e);
          }
        });
    } catch (e) {
      fail(e);
    }
  }

  /** A request's prompt came back (or failed): it is no longer being prepared. */
  private prepared(requestId: string, entry: Preparing): void {
    if (this.preparing.get(requestId) === entry) this.preparing.delete(requestId);
  }

  /** End every request whose prompt is still being encoded (unload, device loss). */
  private endPreparing(error: Error): void {
    for (const p of this.preparing.values()) {
      p.ended = true;
      p.emit({ type: 'error', error: toWire(error) });
    }
    this.preparing.clear();
  }

  cancel(requestId: string): void {
    const p = this.preparing.get(requestId);
    if (p) {
      // Still being encoded: it ends now, and its prompt is dropped when it comes back.
      this.preparing.delete(requestId);
      p.ended = true;
      p.emit({ type: 'error', error: toWire(new AbortError()) });
      return;
    }
    this.e.core.cancel(requestId, new AbortError());
    this.loop.kick();
  }

  stats(): EngineStats {
    return this.e.core.snapshot();
  }

  /** The planner's model now, as a profile createEngine takes back (a copy). */
  exportProfile(): PerformanceProfile {
    // The refit's own fit, not the scheduler's model: that one is scaled by the recent slowdown
    // (up to 8x while something else used the GPU), which must not become the next load's baseline.
    return (this.e.refit?.fit ?? this.e.core.scheduler.performanceModel).toProfile();
  }

  /** Switch the scheduling policy (only while no request is in the engine). */
  setScheduler(name: SchedulerName): void {
    if (this.e.core.size > 0) throw new RequestError('scheduler', `cannot change while ${this.e.core.size} requests are in the engine`);
    checkSchedulerName(name);
    // The apps registered so far give the tightest TPOT (Sarathi's budget); none yet: the registry's default.
    let tightest = Infinity;
    for (const app of this.apps.values()) for (const st of app.stages) tightest = Math.min(tightest, st.tpotMs);
    this.e.core.setScheduler(replaceScheduler(name, this.e, Number.isFinite(tightest) ? tightest : undefined));
    this.e.schedulerName = name;
  }

  async unload(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.endPreparing(new EngineClosedError());
    this.encoder?.close();
    this.e.core.close(new EngineClosedError());
    await this.loop.stop();
    this.e.runner.destroy();
    this.e.draftRunner?.destroy();
    this.e.rt.destroy();
  }

  /** Test hook and the lost-device path: fail everything with DeviceLostError. */
  deviceLost(reason: string): void {
    if (this.lost) return;
    this.lost = new DeviceLostError(reason);
    this.endPreparing(this.lost);
    this.encoder?.close();
    this.e.core.close(this.lost);
  }

  /** Destroy the GPU device (tests: what a driver reset looks like to the engine). */
  destroyDevice(): void {
    this.e.rt.device.destroy();
  }

  /** The app and stages a request runs under (checked before its prompt is encoded). */
  private target(req: HostRequest): { app: AppConfig; stages: StageSlo[] } {
    if (this.lost) throw this.lost;
    if (this.closed) throw new EngineClosedError();
    const app = this.apps.get(req.app);
    if (!app) throw new SloError(req.app, 'app', `is not declared: call engine.app('${req.app}', { ttftMs, tpotMs }) first`);
    let stages = app.stages;
    if (req.stage !== null) {
      const at = stages.findIndex((s) => s.name === req.stage);
      if (at < 0) throw new SloError(app.name, 'stage', `'${req.stage}' is not one of the app's stages (${stages.map((s) => s.name).join(', ')})`);
      stages = stages.slice(at);
    }
    return { app, stages };
  }

  /** Submit a request with its prompt's ids to the engine core. */
  /** `continued`: the prompt's last ids are output begun elsewhere (a continuation): their text was delivered there. */
  private start(req: HostRequest, { app, stages }: { app: AppConfig; stages: StageSlo[] }, prompt: number[], emit: (ev: StreamEvent) => void, continued = 0): void {
    // The engine may have stopped while the prompt was encoded.
    if (this.lost) throw this.lost;
    if (this.closed) throw new EngineClosedError();
    const model = this.e.model;
    const ttftMs = app.ttftMs ?? app.ttftSlowdown! * model.zeroLoadPrefillMs(prompt.length);
    const tok = this.e.tokenizer;
    const detok = tok ? new IncrementalDetokenizer(tok, { promptIds: prompt.slice(0, prompt.length - continued) }) : null;
    // A continuation's ids go through the detokenizer as output whose text was already delivered:
    // a character they leave incomplete (a byte-level token cut mid-character) comes out whole with
    // the next token, as it would have in one uninterrupted reply.
    if (detok && continued > 0) detok.push(prompt.slice(prompt.length - continued));
    const stop = new StopMatcher(req.stop);
    const wantLogprobs = req.logprobs;
    let firstTokenMs: number | null = null;
    let arrivalMs = 0;
    let completion = 0;
    let bestEffort = false;
    let stoppedByString = false;
    const logprobsOf = (t: readonly EmittedToken[]): ChatCompletionTokenLogprob[] | undefined =>
      this.texts && wantLogprobs
        ? chatLogprobContent(
            t.map((x) => ({ id: x.id, logprob: x.logprob!.logprob, top: x.logprob!.top })),
            this.texts,
          )
        : undefined;

    const sink: RequestSink = {
      onDecision: (decision, atMs) => {
        if (decision === 'best-effort') bestEffort = true;
        emit({ type: 'decision', decision, atMs });
      },
      onTokens: (tokens, atMs) => {
        firstTokenMs ??= atMs;
        let text = '';
        let kept = tokens.length;
        for (let j = 0; j < tokens.length; j++) {
          const piece = detok ? detok.push([tokens[j]!.id]) : '';
          const r = stop.push(piece);
          text += r.text;
          if (r.stopped) {
            kept = j + 1;
            stoppedByString = true;
            break;
          }
        }
        const out = tokens.slice(0, kept);
        completion += out.length;
        const lp = logprobsOf(out);
        emit({ type: 'delta', text, tokenIds: out.map((t) => t.id), ...(lp ? { logprobs: lp } : {}), atMs });
        return stoppedByString ? { stopAfter: kept } : undefined;
      },
      onFinish: (reason, atMs) => {
        let finishReason = reason;
        if (!stoppedByString) {
          const tail = detok ? detok.flush() : '';
          const r = stop.push(tail);
          const text = r.text + (r.stopped ? '' : stop.flush());
          if (text) emit({ type: 'delta', text, tokenIds: [], atMs });
          // A stop string completed by the held-back tail (e.g. a last partial character) still ends as 'stop'.
          if (r.stopped) finishReason = 'stop';
        }
        emit({ type: 'done', finishReason, promptTokens: prompt.length, completionTokens: completion, bestEffort, arrivalMs, firstTokenMs, endMs: atMs });
      },
      onError: (error) => emit({ type: 'error', error: toWire(error) }),
    };
    const sampling = req.sampling.temperature > 0 ? { temperature: req.sampling.temperature, topK: req.sampling.topK, topP: req.sampling.topP, seed: req.sampling.seed ?? newSeed() } : null;
    const pen = req.penalties;
    const penalties: Penalties | null = pen ? { frequency: pen.frequency, presence: pen.presence, repetition: pen.repetition, logitBias: new Map(pen.logitBias) } : null;
    const eos = new Set(req.ignoreEos ? [] : (tok?.eosTokenIds ?? this.e.files.config.eosTokenIds));
    const spec: CoreRequestSpec = {
      id: req.requestId,
      app: app.name,
      prompt,
      maxTokens: req.maxTokens ?? Math.max(1, this.e.info.contextLength - prompt.length),
      ttftMs,
      stages,
      sampling,
      penalties,
      stopTokenIds: eos,
      topLogprobs: req.logprobs ? req.topLogprobs : null,
      stageMarkerIds: app.markerIds,
      // A continuation is the rest of a reply its caller is already reading: never declined midway.
      onDecline: req.continuation ? 'best-effort' : app.onDecline,
      ...(req.offer ? { offer: true } : {}),
      // Cached pages are per model and, unless shared on purpose, per app.
      cacheNamespace: cacheNamespace(this.e.info.model, this.e.prefix?.shareAcrossApps ? null : app.name),
      ...(req.conversationId !== null ? { conversationId: conversationKey(app.name, req.conversationId) } : {}),
    };
    arrivalMs = this.e.core.now();
    this.e.core.submit(spec, sink);
    this.loop.kick();
  }
}
