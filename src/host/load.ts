// Everything createEngine sets up where the engine runs (the worker, or the Node process): the GPU,
// the model (and a draft), the KV cache sized from a byte budget, the performance model (a given
// profile, or a startup calibration on this adapter), the scheduler, and the engine core.

import { EngineCore } from '../engine/engine-core.js';
import { describeCapabilities, GpuRuntime } from '../gpu/index.js';
import { hubOptionsFromEnv, nodeDirectoryCacheStore, resolveModelSource, type ModelCacheStore } from '../hub/index.js';
import { loadModelFiles, type LoadedModelFiles, type LoadModelOptions } from '../model/load.js';
import { parseQuantization } from '../model/quantize-q4.js';
import type { ModelSource } from '../model/source.js';
import { toolCallFormat } from '../openai/tool-calls.js';
import { ModelRunner } from '../runner/model-runner.js';
import { RunnerSession } from '../runner/session.js';
import { calibrate, adapterName } from '../runner/calibrate.js';
import { PerformanceModel, PerfProfileError, type PerfSample } from '../scheduler/perf-model.js';
import { OnlineRefit } from '../scheduler/online-refit.js';
import { checkSchedulerName, createScheduler, SchedulerNameError, type SchedulerName } from '../scheduler/registry.js';
import type { Scheduler } from '../scheduler/types.js';
import { SpeculativeDecoder, type DraftSource } from '../speculative/speculative-decoder.js';
import { TextTokenizer } from '../tokenizer/tokenizer.js';
import type { HostLoadOptions, LoadProgress, ModelInfo, ModelSpec } from './protocol.js';
import { checkLoadOptions, EngineOptionError } from './options.js';

export const DEFAULT_KV_BYTES = 256 * 1024 * 1024;
const DEFAULT_MAX_SPEC = 4;

export interface LoadedEngine {
  rt: GpuRuntime;
  files: LoadedModelFiles;
  runner: ModelRunner;
  draftRunner: ModelRunner | null;
  target: RunnerSession;
  decoder: SpeculativeDecoder;
  tokenizer: TextTokenizer | null;
  model: PerformanceModel;
  scheduler: Scheduler;
  schedulerName: SchedulerName;
  core: EngineCore;
  info: ModelInfo;
  /** Longest speculation per step (0 without a draft). */
  maxSpec: number;
  /** Prefix caching as configured (null: off). */
  prefix: { shareAcrossApps?: boolean; conversationTtlMs?: number } | null;
  /** The online refit (null when off): its fit without the contention level is what a profile saves. */
  refit: OnlineRefit | null;
}

function describeModel(m: ModelSpec): string {
  if (typeof m === 'string') return m;
  if (Array.isArray(m)) return `${m.length} files`;
  return (m as FileSystemDirectoryHandle).name ?? 'a directory';
}

async function loadFiles(spec: ModelSpec, o: HostLoadOptions, which: 'target' | 'draft', onProgress: (p: LoadProgress) => void, options: LoadModelOptions = {}): Promise<LoadedModelFiles> {
  let cache: ModelCacheStore | false | undefined = o.cache === false ? false : undefined;
  if (cache === undefined && o.cacheDir) cache = nodeDirectoryCacheStore(o.cacheDir);
  // Hub sources report bytes as they come; a folder, URL or file set reports each file once read.
  const reported = new Set<string>();
  const source = await resolveModelSource(spec, {
    ...hubOptionsFromEnv(spec, { endpoint: o.hubEndpoint, accessToken: o.accessToken }),
    ...(o.revision ? { revision: o.revision } : {}),
    ...(cache !== undefined ? { cache } : {}),
    onProgress: (ev) => {
      reported.add(ev.file);
      onProgress({ phase: 'download', file: ev.file, loaded: ev.loaded, total: ev.total, fromCache: ev.fromCache, model: which });
    },
  });
  const counted: ModelSource = {
    ...(source.gguf !== undefined ? { gguf: source.gguf } : {}),
    describe: () => source.describe(),
    read: async (file) => {
      const bytes = await source.read(file);
      if (bytes && !reported.has(file)) onProgress({ phase: 'download', file, loaded: bytes.length, total: bytes.length, fromCache: false, model: which });
      return bytes;
    },
  };
  return loadModelFiles(counted, options);
}

/** The registry's scheduler for this engine (tightest TPOT: the apps' when known, else the registry's default). */
function makeScheduler(name: SchedulerName, model: PerformanceModel, runner: ModelRunner, maxSpec: number, tightestTpotMs?: number): Scheduler {
  return createScheduler(name, {
    model,
    kv: { pages: runner.numPages, pageSize: runner.pageSize },
    maxTokensPerStep: runner.maxTokens,
    maxSeqs: runner.maxSequences,
    maxSpec,
    ...(tightestTpotMs !== undefined ? { tightestTpotMs } : {}),
  });
}

/** Bytes of K and V per cached token, all layers (f32). */
export function kvBytesPerToken(files: LoadedModelFiles): number {
  const c = files.config;
  return 2 * c.numLayers * c.numKvHeads * c.headDim * 4;
}

/** Appended to a profile's origin once the engine refits it (an exported profile says so). */
const REFITTED = ", refitted online on the engine's steps";

export async function loadEngine(o: HostLoadOptions, onProgress: (p: LoadProgress) => void = () => {}, onDeviceLost?: (reason: string) => void): Promise<LoadedEngine> {
  checkLoadOptions(o);
  const schedulerName = o.scheduler ?? 'slos';
  checkSchedulerName(schedulerName);
  if (schedulerName === 'fcfs+sd' && o.draftModel === undefined && o.selfSpeculation === undefined)
    throw new SchedulerNameError(`scheduler 'fcfs+sd' speculates: give a draftModel or selfSpeculation`);
  // Checked before any download: a typo should not cost a model fetch.
  const quantize = parseQuantization(o.quantize);
  const given = o.profile !== undefined ? PerformanceModel.fromProfile(o.profile) : null;
  // The tokenizer (and its chat template), and a given profile against the model's layers, are
  // checked before any weight is downloaded.
  let tokenizer = null as TextTokenizer | null;
  const files = await loadFiles(o.model, o, 'target', onProgress, {
    beforeWeights: (m) => {
      // A profile holds for one model: its KV term counts keys x layers, and the planner (and the
      // online refit) plans for this model's layers. Refused here, not at the first refit.
      if (given && given.profile.layers !== m.config.numLayers) {
        throw new PerfProfileError(
          'layers',
          `is ${given.profile.layers}; this model has ${m.config.numLayers} layers (a profile holds for the model it was measured on: run \`webslo calibrate\` on this one, or leave profile out to calibrate at startup)`,
        );
      }
      tokenizer = m.tokenizerJson ? new TextTokenizer(m.tokenizerJson, m.tokenizerConfig, [...m.config.eosTokenIds, ...(m.generationConfig?.eosTokenIds ?? [])]) : null;
    },
  });
  const draftFiles = o.draftModel !== undefined ? await loadFiles(o.draftModel, o, 'draft', onProgress) : null;
  if (draftFiles && draftFiles.config.vocabSize !== files.config.vocabSize) {
    throw new EngineOptionError('draftModel', `has a vocabulary of ${draftFiles.config.vocabSize} tokens, the model ${files.config.vocabSize}: pick a draft from the same family`);
  }
  const rt = await GpuRuntime.create({ onLost: (e) => onDeviceLost?.(e.message) });
  const runners: ModelRunner[] = [];
  try {
    const pageSize = 16;
    const kvBytes = o.kvCacheBytes ?? DEFAULT_KV_BYTES;
    const pageBytes = kvBytesPerToken(files) * pageSize;
    const kvPages = Math.floor(kvBytes / pageBytes);
    if (kvPages < 1) throw new EngineOptionError('kvCacheBytes', `is ${kvBytes}; one KV page of this model (${pageSize} tokens) takes ${pageBytes} bytes`);
    onProgress({ phase: 'upload', loaded: 0, total: 1, model: 'target' });
    const runner = await ModelRunner.create(rt, files, { kvPages, pageSize, quantize, ...(o.maxTokensPerStep ? { maxTokensPerStep: o.maxTokensPerStep } : {}) });
    runners.push(runner);
    // The weights live on the GPU now: drop the CPU copies (the file bytes they view) for the engine's lifetime.
    let weightsBytes = 0;
    for (const t of files.tensors.values()) weightsBytes += t.data.byteLength;
    files.tensors.clear();
    onProgress({ phase: 'upload', loaded: 1, total: 1, model: 'target' });
    const prefix = o.prefixCaching === false ? null : typeof o.prefixCaching === 'object' ? o.prefixCaching : {};
    const target = new RunnerSession(runner, { prefixCaching: prefix !== null });
    let draft: DraftSource = { kind: 'none' };
    let draftRunner: ModelRunner | null = null;
    if (draftFiles) {
      // The draft's cache mirrors the target's: one draft sequence per decoding request.
      // The same token capacity as the target's cache: a decoding request holds its context in both.
      draftRunner = await ModelRunner.create(rt, draftFiles, { kvPages: runner.numPages, pageSize, maxTokensPerStep: runner.maxTokens, quantize });
      if (draftRunner.numPages < runner.numPages)
        throw new EngineOptionError(
          'kvCacheBytes',
          `is ${kvBytes}: the draft model's KV cache fits ${draftRunner.numPages} pages on this adapter, fewer than the model's ${runner.numPages}; lower it`,
        );
      runners.push(draftRunner);
      draftFiles.tensors.clear();
      draft = { kind: 'model', session: new RunnerSession(draftRunner) };
    } else if (o.selfSpeculation) {
      draft = { kind: 'self', layers: o.selfSpeculation.layers };
    }
    const decoder = new SpeculativeDecoder(target, draft);
    const maxSpec = draft.kind === 'none' ? 0 : (o.maxSpec ?? DEFAULT_MAX_SPEC);

    let model: PerformanceModel;
    let origin: string;
    let calibrationSamples: readonly PerfSample[] = [];
    if (given) {
      model = given;
      origin = model.profile.origin !== undefined ? `given to createEngine (${model.profile.origin})` : 'given to createEngine';
    } else {
      const budget = o.calibrationBudgetMs ?? 4000;
      // A short sweep sized to the KV cache (the calibration's sequences must fit in it at once).
      const widest = Math.min(256, runner.maxTokens);
      const fits = (batch: number, ctx: number): boolean => Math.max(batch, 8) * Math.ceil((ctx + widest) / pageSize) + Math.ceil(widest / pageSize) <= runner.numPages;
      const decodeContexts = [32, 256].filter((c) => fits(1, c));
      const decodeBatches = [1, 4, 16].filter((b) => fits(b, Math.max(0, ...decodeContexts)));
      if (decodeContexts.length === 0 || decodeBatches.length === 0) {
        throw new EngineOptionError('kvCacheBytes', `is ${kvBytes}: ${runner.numPages} pages of ${pageSize} tokens are too few to calibrate in; give more, or pass a profile`);
      }
      const base = {
        adapter: adapterName(rt.capabilities),
        model: describeModel(o.model),
        ...(draft.kind === 'self' ? { draftLayers: draft.layers } : {}),
      };
      const started = performance.now();
      // One progress bar over every phase: counts go on from where the last phase stopped (a
      // retry and the wider sweep add their shapes), and the bar ends complete.
      let counted = 0;
      let offset = 0;
      const onShape = (done: number, total: number): void => {
        counted = offset + done;
        onProgress({ phase: 'calibrate', loaded: counted, total: offset + total });
      };
      // Phase 1, whatever the budget: the fewest shapes a fit stands on (prefill and decode sizes,
      // a verify when speculating), so a slow adapter still gets a usable model.
      const minimal = (repeats: number, prefillChunks: number[]): ReturnType<typeof calibrate> =>
        calibrate(target, {
          ...base,
          prefillChunks,
          prefillContexts: [0],
          decodeBatches: decodeBatches.slice(0, 2),
          decodeContexts: [Math.min(...decodeContexts)],
          verifyKs: maxSpec > 0 ? [2] : [],
          verifyBatches: [1],
          repeats,
          onShape,
        });
      let first: Awaited<ReturnType<typeof calibrate>>;
      try {
        first = await minimal(2, [16, 64]);
      } catch (e) {
        // A small model on a CPU adapter: 16 and 64 tokens can cost the same within the noise (once,
        // "time does not grow with tokens" on lavapipe). Once more, over the widest chunk, repeated.
        if ((e as Error).name !== 'PerfFitError') throw e;
        offset = counted;
        first = await minimal(4, [16, widest]);
      }
      offset = counted;
      let samples = [...first.samples];
      let skipped = 0;
      // Phase 2, in the time left: the wider sweep; its samples join phase 1's in one fit.
      const left = budget - (performance.now() - started);
      if (left > 0) {
        try {
          const wide = await calibrate(target, {
            ...base,
            prefillChunks: [16, 64, widest],
            prefillContexts: [0, Math.min(...decodeContexts)],
            decodeBatches,
            decodeContexts,
            verifyKs: maxSpec > 0 ? [2, 4] : [],
            verifyBatches: [1],
            repeats: 2,
            timeBudgetMs: left,
            onShape,
          });
          samples = [...samples, ...wide.samples];
          skipped = wide.skipped.length;
        } catch (e) {
          // Too few samples of its own to fit: phase 1's model stands.
          if ((e as Error).name !== 'PerfFitError' && (e as Error).name !== 'CalibrationError') throw e;
        }
      }
      model = first.model;
      if (samples.length > first.samples.length) {
        try {
          model = PerformanceModel.fit(samples, { adapter: base.adapter, model: base.model, layers: files.config.numLayers, maxTokensPerStep: runner.maxTokens });
        } catch {
          samples = [...first.samples];
        }
      }
      calibrationSamples = samples;
      // The wider sweep may stop early for time: the bar still ends full.
      onProgress({ phase: 'calibrate', loaded: counted, total: counted });
      origin = `startup calibration on ${adapterName(rt.capabilities)} (${samples.length} samples${skipped ? `, ${skipped} shapes skipped for time` : ''})`;
      model = PerformanceModel.fromProfile({ ...model.toProfile(), origin });
    }
    const scheduler = makeScheduler(schedulerName, model, runner, maxSpec);
    // The planner's model follows what steps really cost: refitted on calibration + recent real steps.
    const refit =
      o.onlineRefit === false
        ? null
        : new OnlineRefit(model, calibrationSamples, {
            adapter: adapterName(rt.capabilities),
            model: describeModel(o.model),
            layers: files.config.numLayers,
            maxTokensPerStep: runner.maxTokens,
            origin: origin.endsWith(REFITTED) ? origin : `${origin}${REFITTED}`,
          });
    // A draft model must hold every context too: the engine's limit is the smaller of the two.
    const maxContextTokens = Math.min(files.config.maxPositionEmbeddings, draftFiles?.config.maxPositionEmbeddings ?? Infinity);
    const core: EngineCore = new EngineCore({
      decoder,
      scheduler,
      maxContextTokens,
      ...(prefix ? { prefixCache: { ...(prefix.conversationTtlMs !== undefined ? { conversationTtlMs: prefix.conversationTtlMs } : {}) } } : {}),
      onStep: (plan, ms, executed) => {
        const next = refit?.record(plan, ms, executed);
        if (next) core.scheduler.setModel(next);
      },
    });
    const info: ModelInfo = {
      model: describeModel(o.model),
      architecture: files.config.architecture,
      vocabSize: files.config.vocabSize,
      contextLength: maxContextTokens,
      hasTokenizer: tokenizer !== null,
      hasChatTemplate: tokenizer !== null && tokenizer.chatTemplate !== null,
      toolCallFormat: toolCallFormat(tokenizer?.chatTemplate ?? null),
      adapter: describeCapabilities(rt.capabilities),
      features: { shaderF16: rt.capabilities.features.shaderF16, subgroups: rt.capabilities.features.subgroups },
      kv: { pages: runner.numPages, pageSize: runner.pageSize, bytes: runner.numPages * pageSize * kvBytesPerToken(files) },
      weightsBytes,
      // A GGUF Q4_0 file's matrices are held as q4 whatever was asked (its blocks, re-laid out).
      quantize: quantize === 'q4' || runner.weights.layers.some((l) => l.qkv.dtype === 'q4') ? 'q4' : 'none',
      gpuWeightsBytes: runner.weights.bytes,
      scheduler: schedulerName,
      speculation: draft.kind === 'model' ? 'draft-model' : draft.kind === 'self' ? 'self' : 'none',
      decodeStepMs: model.predict({ tokens: 1, draftSteps: 0, kvTokensRead: 0 }),
      prefillMsPer512: model.zeroLoadPrefillMs(512),
      profileOrigin: origin,
    };
    return { rt, files, runner, draftRunner, target, decoder, tokenizer, model, scheduler, schedulerName, core, info, maxSpec, prefix, refit };
  } catch (e) {
    for (const r of runners) r.destroy();
    rt.destroy();
    throw e;
  }
}

/** A scheduler of another policy over the same runner and model (the demo's live switch; only when idle). */
export function replaceScheduler(name: SchedulerName, loaded: LoadedEngine, tightestTpotMs?: number): Scheduler {
  return makeScheduler(name, loaded.core.scheduler.performanceModel, loaded.runner, loaded.maxSpec, tightestTpotMs);
}
