// The engine step's CPU overhead at R running decode requests (default 64): a synthetic real-shape
// model (weights filled on the GPU) behind the real EngineCore (FCFS plan -> SpeculativeDecoder ->
// RunnerSession -> ModelRunner.forward). Each timed step is split on the CPU by wrapping methods on
// the instances (nothing in src/ changes): plan = scheduler.step; record = ModelRunner.forward's
// entry until the runtime's submit (batch flattening, KV writes queued, every dispatch recorded,
// encoder.finish); submit = the runtime's submit (params and input writes, queue.submit, waiting for
// a queue slot); wait = submit end until forward returns (GPU work and the ids readback); other =
// the rest of runStep (KV bookkeeping, SpeculativeDecoder, delivering tokens, scheduler completion).
// CPU = plan + record + submit + other. Counts per step come from wrapping the device
// (src/reference/gpu-counters.ts): command encoders, queue submits, buffers, bind groups created.

import type { GpuRuntime } from '../src/gpu/index.js';
import { EngineCore } from '../src/engine/engine-core.js';
import type { RequestSink } from '../src/engine/request.js';
import type { WeightDType } from '../src/kernels/matmul.js';
import type { ModelConfig } from '../src/model/config.js';
import { destroyWeights } from '../src/runner/gpu-weights.js';
import { ModelRunner } from '../src/runner/model-runner.js';
import { RunnerSession } from '../src/runner/session.js';
import { FcfsScheduler } from '../src/scheduler/fcfs.js';
import { PerformanceModel } from '../src/scheduler/perf-model.js';
import type { StepPlan } from '../src/scheduler/types.js';
import { PROFILES } from '../src/sim/profiles.js';
import { SpeculativeDecoder } from '../src/speculative/speculative-decoder.js';
import { countGpuCalls, type GpuCallCounts } from '../src/reference/gpu-counters.js';
import { buildSyntheticWeights } from './synthetic-model.js';

export interface StepOverheadOptions {
  shape: string;
  config: ModelConfig;
  dtype: WeightDType;
  layers: number;
  running: number;
  promptTokens: number;
  warmupSteps: number;
  steps: number;
}

export interface StepTimes {
  planMs: number;
  recordMs: number;
  submitMs: number;
  /** queue.submit alone (inside submitMs). */
  queueSubmitMs: number;
  waitMs: number;
  otherMs: number;
  cpuMs: number;
  stepMs: number;
}

export interface StepOverheadResult {
  options: Omit<StepOverheadOptions, 'config'> & { vocabSize: number; totalLayers: number };
  /** Median of each column over the timed steps. */
  median: StepTimes;
  mean: StepTimes;
  /** Per step, over the timed steps (all must be R decode rows). */
  perStep: GpuCallCounts & { poolBuffersCreated: number; bindGroupCacheMisses: number };
  steps: StepTimes[];
}

const median = (v: number[]): number => {
  const s = [...v].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};

export async function stepOverhead(rt: GpuRuntime, o: StepOverheadOptions): Promise<StepOverheadResult> {
  const synth = await buildSyntheticWeights(rt, o.config, o.dtype, o.layers);
  const pagesPerSeq = Math.ceil((o.promptTokens + o.warmupSteps + o.steps + 8) / 16);
  let runner: ModelRunner;
  try {
    runner = await ModelRunner.fromWeights(rt, o.config, synth.weights, { kvPages: o.running * pagesPerSeq + 16, maxSequencesPerStep: o.running, maxTokensPerStep: Math.max(512, o.running) });
  } catch (e) {
    destroyWeights(rt, synth.weights);
    throw e;
  }
  if (runner.maxSequences < o.running) {
    runner.destroy();
    throw new Error(`this runner takes ${runner.maxSequences} sequences per step, fewer than ${o.running}`);
  }
  const target = new RunnerSession(runner);
  const scheduler = new FcfsScheduler({
    model: PerformanceModel.fromProfile(PROFILES.paper),
    kv: { pages: runner.numPages, pageSize: runner.pageSize },
    maxBatchedTokens: runner.maxTokens,
    maxTokensPerStep: runner.maxTokens,
    maxSeqs: o.running,
  });
  const core = new EngineCore({ decoder: new SpeculativeDecoder(target, { kind: 'none' }), scheduler, maxContextTokens: o.config.maxPositionEmbeddings });
  let failure = null as Error | null; // set by the sink's callback
  const sink: RequestSink = { onTokens: () => undefined, onFinish: () => undefined, onError: (e) => void (failure ??= e) };
  for (let i = 0; i < o.running; i++) {
    const prompt = Array.from({ length: o.promptTokens }, (_, j) => (1000 + 7919 * i + 104729 * j) % o.config.vocabSize);
    core.submit(
      {
        id: `r${i}`,
        app: 'bench',
        prompt,
        maxTokens: 1 << 20,
        ttftMs: 1e9,
        stages: [{ name: 'answer', tpotMs: 1e9 }],
        sampling: null,
        stopTokenIds: new Set(),
        topLogprobs: null,
        onDecline: 'best-effort',
      },
      sink,
    );
  }

  // Instrumentation: wrap the instances' methods.
  let t = { plan: 0, forward0: 0, submit0: 0, submit1: 0, forward1: 0, q: 0 };
  let lastPlan: StepPlan | null = null;
  const planOrig = scheduler.step.bind(scheduler);
  scheduler.step = (now: number) => {
    const a = performance.now();
    const decided = planOrig(now);
    t.plan += performance.now() - a;
    lastPlan = decided.plan;
    return decided;
  };
  const forwardOrig = runner.forward.bind(runner);
  runner.forward = async (...a: Parameters<ModelRunner['forward']>) => {
    t.forward0 = performance.now();
    const r = await forwardOrig(...a);
    t.forward1 = performance.now();
    return r;
  };
  const submitOrig = rt.submit.bind(rt);
  rt.submit = async (...a: Parameters<GpuRuntime['submit']>) => {
    t.submit0 = performance.now();
    await submitOrig(...a);
    t.submit1 = performance.now();
  };
  let q0 = 0;
  const counter = countGpuCalls(rt.device, { beforeSubmit: () => (q0 = performance.now()), afterSubmit: () => (t.q += performance.now() - q0) });

  const steps: StepTimes[] = [];
  const decodeOnly = (): boolean => lastPlan !== null && lastPlan.entries.length === o.running && lastPlan.entries.every((e) => e.kind === 'decode' && e.draftTokens === 0);
  try {
    // Prefill until every request decodes, then the warm-up decode steps.
    let warm = 0;
    for (let i = 0; warm < o.warmupSteps; i++) {
      if (i > o.running + o.warmupSteps + 16) throw new Error('the requests never all reached decode');
      if ((await core.runStep()) !== 'ran') throw new Error('the engine went idle');
      if (decodeOnly()) warm++;
    }
    await rt.flush();
    counter.reset();
    const pool0 = rt.buffers.created;
    const bg0 = rt.bindGroups.created;
    for (let i = 0; i < o.steps; i++) {
      t = { plan: 0, forward0: 0, submit0: 0, submit1: 0, forward1: 0, q: 0 };
      const a = performance.now();
      if ((await core.runStep()) !== 'ran' || !decodeOnly()) throw new Error(`timed step ${i} was not ${o.running} decode rows`);
      const stepMs = performance.now() - a;
      const recordMs = t.submit0 - t.forward0;
      const submitMs = t.submit1 - t.submit0;
      const waitMs = t.forward1 - t.submit1;
      const otherMs = stepMs - t.plan - recordMs - submitMs - waitMs;
      steps.push({ planMs: t.plan, recordMs, submitMs, queueSubmitMs: t.q, waitMs, otherMs, cpuMs: stepMs - waitMs, stepMs });
    }
    if (failure) throw failure;
    const c = counter.counts;
    const per = (n: number): number => n / o.steps;
    const keys = Object.keys(steps[0]!) as (keyof StepTimes)[];
    const agg = (f: (v: number[]) => number): StepTimes => Object.fromEntries(keys.map((k) => [k, f(steps.map((s) => s[k]))])) as unknown as StepTimes;
    const { config, ...rest } = o;
    return {
      options: { ...rest, vocabSize: config.vocabSize, totalLayers: config.numLayers },
      median: agg(median),
      mean: agg((v) => v.reduce((x, y) => x + y, 0) / v.length),
      perStep: {
        commandEncoders: per(c.commandEncoders),
        submits: per(c.submits),
        buffers: per(c.buffers),
        bindGroups: per(c.bindGroups),
        writeBuffers: per(c.writeBuffers),
        poolBuffersCreated: per(rt.buffers.created - pool0),
        bindGroupCacheMisses: per(rt.bindGroups.created - bg0),
      },
      steps,
    };
  } finally {
    counter.restore();
    for (const [obj, key] of [
      [scheduler, 'step'],
      [runner, 'forward'],
      [rt, 'submit'],
    ] as const)
      Reflect.deleteProperty(obj, key);
    core.close();
    runner.destroy();
  }
}
