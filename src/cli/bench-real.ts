// `webslo bench-sched --real --model DIR --trace FILE`: the trace on the real engine in wall-clock
// time next to the simulator's prediction, both with SLOs-Serve over a performance model calibrated
// in the same run on this adapter. The trace's SLOs are scaled to the adapter (by the ratio of the
// calibrated zero-load decode step to the default profile's), and its arrivals are compressed per
// load. Requests produce exactly the trace's output lengths (EOS ignored) from random prompt tokens.

import { readFile, mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { EngineCore } from '../engine/engine-core.js';
import { OnlineRefit } from '../scheduler/online-refit.js';
import { replayTrace } from './replay.js';
import { GpuRuntime } from '../gpu/index.js';
import { loadModelFiles } from '../model/load.js';
import { ModelRunner } from '../runner/model-runner.js';
import { RunnerSession } from '../runner/session.js';
import { judgeRequest, summarize, type RequestTimeline } from '../scheduler/attainment.js';
import { adapterName, calibrate } from '../runner/calibrate.js';
import { PerformanceModel } from '../scheduler/perf-model.js';
import { createScheduler } from '../scheduler/registry.js';
import { AdmissionMargin } from '../scheduler/slos/admission-margin.js';
import { SlosScheduler } from '../scheduler/slos/scheduler.js';
import type { Scheduler } from '../scheduler/types.js';
import { PROFILES } from '../sim/profiles.js';
import { simulate } from '../sim/simulator.js';
import { compressTrace, parseTrace, resolveTrace, type ResolvedTrace } from '../sim/trace.js';
import { SpeculativeDecoder } from '../speculative/speculative-decoder.js';
import { numberFlag, stringFlag, UsageError, type ParsedArgs } from './args.js';
import { cliModelSource, MODEL_SOURCE_FLAGS } from './model-source.js';

export const BENCH_REAL_USAGE = `  webslo bench-sched --real --model DIR --trace FILE [--loads 0.5,1] [--slo-scale X] [--kv-tokens N]
                     [--calibration-s S] [--out DIR] [--json]
                     (the trace on the real engine in wall-clock time next to the simulator's prediction)`;

export interface RealRow {
  load: number;
  requests: number;
  realAttainment: number;
  /** Admitted (not declined) requests of the real run that missed their SLOs, of the admitted. */
  admittedMissRate: number;
  /** The simulator with the model the engine had before the run (startup calibration + warm-up refits) as clock and planner. */
  simAttainment: number;
  /** The simulator with the startup calibration alone. */
  simStartupAttainment: number;
  refits: number;
  realDeclined: number;
  simDeclined: number;
  realEndMs: number;
  simEndMs: number;
  realSteps: number;
  simSteps: number;
  /** Mean measured GPU step time (submit to tokens on the CPU) and the model's raw prediction for the same steps, ms. */
  meanStepMs: number;
  meanPredictedMs: number;
  /** Wall time not inside a GPU step (scheduling, recording, sampling readback handling, idle), fraction of the run. */
  outsideStepFraction: number;
}

const decodeStep = (m: PerformanceModel): number => m.predictRaw({ tokens: 1, draftSteps: 0, kvTokensRead: 0 });

/** The trace with every app's TTFT (absolute) and TPOTs multiplied by `scale`. */
export function scaleSlos(trace: ResolvedTrace, scale: number): ResolvedTrace {
  const apps = new Map(
    [...trace.apps].map(([name, a]) => [name, { ...a, ttft: 'ms' in a.ttft ? { ms: a.ttft.ms * scale } : { ...a.ttft }, stages: a.stages.map((s) => ({ ...s, tpotMs: s.tpotMs * scale })) }]),
  );
  return {
    apps,
    requests: trace.requests.map((r) => ({ ...r, rounds: r.rounds.map((x) => ({ ...x, stageTokens: [...x.stageTokens], stages: x.stages.map((s) => ({ ...s, tpotMs: s.tpotMs * scale })) })) })),
  };
}

const attain = (timelines: readonly RequestTimeline[]): { attainment: number; declined: number; admitted: number; admittedMissed: number } => {
  const verdicts = timelines.map(judgeRequest);
  const s = summarize(verdicts, timelines);
  const admitted = verdicts.filter((v) => !v.declined);
  return { attainment: s.attainment, declined: s.declined, admitted: admitted.length, admittedMissed: admitted.filter((v) => !v.met).length };
};

const FLAGS = new Set(['real', 'model', 'trace', 'loads', 'slo-scale', 'kv-tokens', 'calibration-s', 'out', 'json', 'verbose', ...MODEL_SOURCE_FLAGS]);

export async function benchRealCommand(args: ParsedArgs): Promise<void> {
  for (const name of args.flags.keys()) if (!FLAGS.has(name)) throw new UsageError(`bench-sched --real: unknown option --${name} (expected ${[...FLAGS].map((f) => `--${f}`).join(', ')})`);
  const dir = stringFlag(args, 'model');
  const traceFile = stringFlag(args, 'trace');
  if (!dir || !traceFile) throw new UsageError('--real needs --model M and --trace FILE');
  const loads = (stringFlag(args, 'loads') ?? '0.5,1').split(',').map(Number);
  for (const l of loads) if (!(l > 0 && Number.isFinite(l))) throw new UsageError(`--loads: ${l} is not a positive number`);
  const kvTokens = numberFlag(args, 'kv-tokens', (n) => Number.isInteger(n) && n >= 256, 'an integer >= 256') ?? 16384;
  const calibrationS = numberFlag(args, 'calibration-s', (n) => n > 0, 'a positive number') ?? 60;
  const log = (s: string): void => void process.stderr.write(`[bench-real] ${s}\n`);

  const files = await loadModelFiles(await cliModelSource(args, dir));
  const rt = await GpuRuntime.create();
  const runner = await ModelRunner.create(rt, files, { kvPages: Math.ceil(kvTokens / 16), maxTokensPerStep: 256 });
  try {
    const target = new RunnerSession(runner);
    log(`calibrating on ${adapterName(rt.capabilities)} (up to ${calibrationS} s)`);
    const cal = await calibrate(target, {
      adapter: adapterName(rt.capabilities),
      model: dir,
      decodeContexts: [32, 256],
      decodeBatches: [1, 2, 4, 8, 16],
      timeBudgetMs: calibrationS * 1000,
      verifyKs: [],
    });
    const model = cal.model;
    const reference = PerformanceModel.fromProfile(PROFILES.default);
    const scale = numberFlag(args, 'slo-scale', (n) => n > 0, 'a positive number') ?? decodeStep(model) / decodeStep(reference);
    log(`calibrated: decode step ${decodeStep(model).toFixed(2)} ms (default profile ${decodeStep(reference).toFixed(2)} ms), SLO scale ${scale.toFixed(3)}, R² ${model.profile.r2.toFixed(3)}`);
    const base = scaleSlos(resolveTrace(parseTrace(JSON.parse(await readFile(traceFile, 'utf8'))), { contextTokens: files.config.maxPositionEmbeddings }), scale);
    const kv = { pages: runner.numPages, pageSize: runner.pageSize };
    // The admission margin an engine has learned so far (admission-margin.ts): carried like the
    // refit, from the warm-up into every scored run and its simulation.
    const carried = new AdmissionMargin();
    const make = (m: PerformanceModel, margin: AdmissionMargin = carried): Scheduler => {
      const s = createScheduler('slos', { model: m, kv, maxTokensPerStep: runner.maxTokens, maxSeqs: runner.maxSequences, maxSpec: 0 });
      if (s instanceof SlosScheduler) s.margin.copyFrom(margin);
      return s;
    };
    // One engine run of a trace: the planner starts from `from` and is refitted online as the
    // engine does (createEngine), the step times recorded.
    const run = async (
      trace: ResolvedTrace,
      refit: OnlineRefit,
      carryMargin: boolean,
    ): Promise<{ timelines: RequestTimeline[]; refits: number; steps: number; measured: number; predicted: number; wallMs: number; margin: number }> => {
      const t0 = performance.now();
      let measured = 0;
      let predicted = 0;
      let steps = 0;
      const from = refit.model;
      const refitsBefore = refit.refits;
      const scheduler = make(from);
      const timed = new EngineCore({
        decoder: new SpeculativeDecoder(target, { kind: 'none' }),
        scheduler,
        maxContextTokens: files.config.maxPositionEmbeddings,
        onStep: (plan, ms, executed) => {
          measured += ms;
          predicted += plan.predictedMs;
          steps++;
          const next = refit.record(plan, ms, executed);
          if (next) scheduler.setModel(next);
        },
      });
      const timelines = await replayTrace(timed, trace, { model: from, vocabSize: files.config.vocabSize });
      const margin = scheduler instanceof SlosScheduler ? scheduler.margin : null;
      if (carryMargin && margin) carried.copyFrom(margin);
      return { timelines, refits: refit.refits - refitsBefore, steps, measured, predicted, wallMs: performance.now() - t0, margin: margin?.factor ?? 1 };
    };
    // Warm-up, not scored: every load once, the model carried from run to run, as an engine that has
    // served before. The scored runs start from the model it ends with, and the simulator predicts
    // with that same model: nothing the scored run measures reaches the prediction.
    const warmRefit = new OnlineRefit(model, cal.samples, { adapter: adapterName(rt.capabilities), model: dir, layers: files.config.numLayers, maxTokensPerStep: runner.maxTokens });
    for (const load of loads) {
      const w = await run(compressTrace(base, load), warmRefit, true);
      log(`warm-up at load ${load}: ${w.steps} steps, ${w.refits} refits, level ${warmRefit.drift.toFixed(2)}, admission margin ${carried.factor.toFixed(2)}`);
    }
    const warm = warmRefit.model;
    const rows: RealRow[] = [];
    for (const load of loads) {
      const trace = compressTrace(base, load);
      // The engine goes on from its warmed-up state (and keeps refitting, as it does when serving).
      const engineRefit = warmRefit.clone();
      const real = await run(trace, engineRefit, false);
      const sim = simulate({ trace, clock: warm, makeScheduler: () => make(warm), seed: 1 });
      const startup = simulate({ trace, clock: model, makeScheduler: () => make(model, new AdmissionMargin()), seed: 1 });
      const r = attain(real.timelines);
      const s = attain(sim.timelines);
      const st = attain(startup.timelines);
      rows.push({
        load,
        requests: trace.requests.length,
        realAttainment: r.attainment,
        admittedMissRate: r.admitted > 0 ? r.admittedMissed / r.admitted : 0,
        simAttainment: s.attainment,
        simStartupAttainment: st.attainment,
        refits: real.refits,
        realDeclined: r.declined,
        simDeclined: s.declined,
        realEndMs: real.wallMs,
        simEndMs: sim.endMs,
        realSteps: real.steps,
        simSteps: sim.steps,
        meanStepMs: real.measured / Math.max(1, real.steps),
        meanPredictedMs: real.predicted / Math.max(1, real.steps),
        outsideStepFraction: 1 - real.measured / real.wallMs,
      });
      log(
        `load ${load}: real ${(100 * r.attainment).toFixed(1)}% (admitted missed ${r.admittedMissed} of ${r.admitted}) vs simulated ${(100 * s.attainment).toFixed(1)}% (model before the run), ${(100 * st.attainment).toFixed(1)}% (startup calibration only); level ${warmRefit.drift.toFixed(2)} -> ${engineRefit.drift.toFixed(2)}, ${real.refits} refits, admission margin ${carried.factor.toFixed(2)} -> ${real.margin.toFixed(2)}`,
      );
    }
    const head = `Real engine vs simulator: ${traceFile} on ${adapterName(rt.capabilities)} (${dir}), SLOs x${scale.toFixed(3)}, calibration R² ${model.profile.r2.toFixed(3)} over ${cal.samples.length} samples; the engine warmed up on every load once (not scored), the simulator predicts with the model it had then\n\n`;
    const table = [
      '| load | requests | attainment (real) | admitted requests that missed (real) | simulated (model before the run) | gap (points) | simulated (startup calibration only) | declined real / sim | steps real / sim | duration real / sim (s) | step ms measured / planned | wall time outside steps |',
      '|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|',
      ...rows.map(
        (r) =>
          `| ${r.load} | ${r.requests} | ${(100 * r.realAttainment).toFixed(1)}% | ${(100 * r.admittedMissRate).toFixed(1)}% | ${(100 * r.simAttainment).toFixed(1)}% | ${(100 * (r.realAttainment - r.simAttainment)).toFixed(1)} | ${(100 * r.simStartupAttainment).toFixed(1)}% | ${r.realDeclined} / ${r.simDeclined} | ${r.realSteps} / ${r.simSteps} | ${(r.realEndMs / 1000).toFixed(1)} / ${(r.simEndMs / 1000).toFixed(1)} | ${r.meanStepMs.toFixed(1)} / ${r.meanPredictedMs.toFixed(1)} | ${(100 * r.outsideStepFraction).toFixed(0)}% |`,
      ),
    ].join('\n');
    const result = { adapter: adapterName(rt.capabilities), model: dir, trace: traceFile, sloScale: scale, profile: model.toProfile(), rows };
    const out = stringFlag(args, 'out');
    if (out) {
      await mkdir(out, { recursive: true });
      await writeFile(join(out, 'bench-real.json'), `${JSON.stringify(result, null, 1)}\n`);
      await writeFile(join(out, 'bench-real.md'), `${head}${table}\n`);
    }
    process.stdout.write(args.flags.has('json') ? `${JSON.stringify(result)}\n` : `${head}${table}\n`);
  } finally {
    runner.destroy();
    rt.destroy();
  }
}
