// Replays a resolved trace (src/sim/trace.ts) on the real engine: each request arrives at its time
// with random prompt tokens of its length and produces exactly its true output length (EOS ignored;
// the sink stops it there, while the scheduler plans with the trace's max_tokens), stage switches at the trace's boundaries. With a VirtualClock the step
// times come from a profile and the timeline must equal the simulator's; in wall-clock mode it is
// the real engine under the trace's load (`webslo bench-sched --real`).

import type { RequestTimeline } from '../scheduler/attainment.js';
import { resolveTtftMs } from '../scheduler/slo.js';
import type { PerformanceModel } from '../scheduler/perf-model.js';
import type { ResolvedTrace, SimRequestSpec } from '../sim/trace.js';
import { Rng } from '../sim/rng.js';
import type { VirtualClock } from '../engine/clock.js';
import type { EngineCore } from '../engine/engine-core.js';
import type { RequestSink } from '../engine/request.js';

export interface ReplayOptions {
  /** Virtual time (steps last the timer's prediction); absent: wall-clock time. */
  virtual?: VirtualClock;
  /** Resolves slowdown TTFT SLOs (the scheduler's planning model). */
  model: PerformanceModel;
  vocabSize: number;
  seed?: number;
}

export class ReplayError extends Error {
  override name = 'ReplayError';
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, Math.max(0, ms)));

/** Run every request of `trace` through `core`; resolves with one timeline per request, in trace order. */
export async function replayTrace(core: EngineCore, trace: ResolvedTrace, o: ReplayOptions): Promise<RequestTimeline[]> {
  for (const r of trace.requests) {
    if (r.rounds.length !== 1) throw new ReplayError(`request ${r.id} has ${r.rounds.length} tool rounds; the real-engine replay runs single-round requests (conversations are #7)`);
  }
  const random = new Rng(o.seed ?? 1);
  const order = [...trace.requests].sort((a, b) => a.arrivalMs - b.arrivalMs);
  const timelines = new Map<string, RequestTimeline>();
  let open = 0;
  let failure = null as Error | null; // set by a sink's callback
  const t0 = o.virtual ? 0 : core.now();

  const submit = (spec: SimRequestSpec, arrival: number): void => {
    const round = spec.rounds[0]!;
    const app = trace.apps.get(spec.app)!;
    const ttftMs = 'ms' in app.ttft ? app.ttft.ms : resolveTtftMs(spec.app, { ttftSlowdown: app.ttft.slowdown, stages: round.stages }, round.promptTokens, o.model);
    const total = Math.max(
      1,
      Math.min(
        round.maxTokens,
        round.stageTokens.reduce((a, b) => a + b, 0),
      ),
    );
    const boundaries: number[] = [];
    let bound = 0;
    for (let s = 0; s + 1 < round.stageTokens.length; s++) {
      bound += round.stageTokens[s]!;
      if (bound < total) boundaries.push(bound);
    }
    const tl = { arrivalMs: arrival, ttftSloMs: ttftMs, stages: round.stages, stageStarts: [0], tokenTimes: [] as number[], finished: false };
    const timeline: RequestTimeline = { id: spec.id, app: spec.app, declined: false, rounds: [tl] };
    timelines.set(spec.id, timeline);
    const prompt = Array.from({ length: round.promptTokens }, () => Math.floor(random.uniform() * o.vocabSize));
    open++;
    const sink: RequestSink = {
      onDecision: (d) => {
        if (d === 'best-effort') timeline.declined = true;
      },
      onTokens: (tokens, at) => {
        // The trace's true length ends the request (the scheduler plans with max_tokens, as in the simulator).
        const keep = Math.min(tokens.length, total - tl.tokenTimes.length);
        for (let i = 0; i < keep; i++) tl.tokenTimes.push(at - t0);
        return tl.tokenTimes.length >= total ? { stopAfter: keep } : undefined;
      },
      onFinish: () => {
        tl.finished = true;
        tl.stageStarts.push(...boundaries.filter((b) => b < tl.tokenTimes.length));
        open--;
      },
      onError: (e) => {
        open--;
        if (e.name === 'SloError') timeline.declined = true;
        else failure ??= e;
      },
    };
    try {
      core.submit(
        {
          id: spec.id,
          app: spec.app,
          prompt,
          maxTokens: round.maxTokens,
          ttftMs,
          stages: round.stages,
          sampling: null,
          stopTokenIds: new Set(),
          topLogprobs: null,
          onDecline: 'best-effort',
          stageBoundaries: boundaries,
          arrivalMs: arrival + t0,
        },
        sink,
      );
    } catch (e) {
      // A prompt the engine can never hold is a miss, as the simulator's scheduler declines it.
      if ((e as Error).name !== 'PromptTooLongError') throw e;
      timeline.declined = true;
      open--;
    }
  };

  let next = 0;
  for (;;) {
    const now = core.now() - t0;
    while (next < order.length && order[next]!.arrivalMs <= now) {
      const spec = order[next++]!;
      submit(spec, spec.arrivalMs);
    }
    if (failure) throw failure;
    const state = await core.runStep();
    if (state === 'ran') continue;
    if (next >= order.length && open === 0) break;
    const due = next < order.length ? order[next]!.arrivalMs : Infinity;
    if (o.virtual) {
      if (!Number.isFinite(due)) {
        if (core.size > 0) throw new ReplayError(`${core.size} requests can never run (the scheduler plans nothing and no arrival is left)`);
        break;
      }
      o.virtual.advanceTo(due);
    } else {
      await sleep(Math.min(5, due - (core.now() - t0)));
    }
  }
  return trace.requests.map((r) => timelines.get(r.id)!);
}
