// Calibration: time a sweep of step shapes on the real model runner and fit the performance model
// (perf-model.ts) to them. Shapes: prefill chunks (alone, and at a context), decode batches at a few
// context lengths, verify batches (k + 1 rows) mixed with decodes, and prefill chunks mixed with
// decodes. Each shape runs `repeats + 1` times and the first (warm-up: pipeline compiles, pool
// growth) is dropped. After every timed step the KV cache is rolled back (kv.truncate), so memory
// stays bounded and every repeat reads the same state. Sample features: tokens = features.tokens,
// kvTokensRead = features.attendedKeys * layers, draftSteps = 0; the time is StepFeatures.ms (submit
// to token ids on the CPU).
//
// Speculative steps (option draftLayers: SpeculativeDecoder's self draft, the runner's first N layers then
// the final norm and LM head): each verify shape is also timed as a whole speculative step, exactly
// as SpeculativeDecoder.step runs it: the verify's KV slots are reserved, then k sequential draft passes
// (one row per verifying sequence, each writing its draft layers' K/V into the reserved slot and
// feeding its argmax to the next pass), then the verify of the k + 1 rows (with the shape's plain
// decodes). Its sample: draftSteps = k, tokens and kvTokensRead those of the verify, ms = the
// verify's plus every draft pass's StepFeatures.ms. So the per-draft-step cost k2 is measured; it
// includes the draft passes' attention reads at the calibration context (kvTokensRead counts the
// verify's reads only, as a planner counts a step's).
//
// timeBudgetMs bounds the sweep: once it is spent, the remaining shapes are skipped (named in
// CalibrationResult.skipped) and the model is fitted to the samples so far.

import type { GpuCapabilities } from '../gpu/capabilities.js';
import type { BatchSequence } from './batch.js';
import type { PlannedSequence, RunnerSession } from './session.js';
import { PerformanceModel, type FitOptions, type PerfSample } from '../scheduler/perf-model.js';

export interface CalibrationOptions extends FitOptions {
  /** Recorded in the profile. */
  adapter?: string;
  model?: string;
  /** Prefill chunk sizes (default 16, 64, 128, 256 and the runner's maxTokens; larger ones dropped). */
  prefillChunks?: number[];
  /** Contexts (tokens already cached) the prefill chunks run at (default 0 and 256). */
  prefillContexts?: number[];
  /** Decode batch sizes, in sequences (default 1, 2, 4, 8, 16). */
  decodeBatches?: number[];
  /** Context lengths of the decoding sequences (default 32, 256, 1024). */
  decodeContexts?: number[];
  /** Speculation lengths k of the verify shapes (k + 1 rows each; default 2 and 4). */
  verifyKs?: number[];
  /** Sequences verifying in one step (default 1 and 4), each mixed with 0 and 4 decodes. */
  verifyBatches?: number[];
  /** Timed runs per shape after the warm-up (default 3). */
  repeats?: number;
  /**
   * Self-speculation draft layers (1..layers): also time every verify shape as a speculative step,
   * k draft passes through the first `draftLayers` layers + LM head, then the verify (draftSteps = k).
   * Default: none (every sample has draftSteps = 0).
   */
  draftLayers?: number;
  /** Skip the shapes not started within this many ms of the sweep's start (default: no limit). */
  timeBudgetMs?: number;
  /** Called after each shape (progress for the CLI). */
  onShape?: (done: number, total: number) => void;
}

export interface CalibrationSample extends PerfSample {
  /** The shape, e.g. 'prefill 64 @256' or 'decode x8 @1024 + verify x1 k=4'. */
  shape: string;
}

export interface CalibrationResult {
  model: PerformanceModel;
  samples: CalibrationSample[];
  /** Shapes left out because timeBudgetMs ran out. */
  skipped: string[];
}

export class CalibrationError extends Error {
  override name = 'CalibrationError';
}

/** The adapter's name as describeCapabilities shows it. */
export function adapterName(caps: GpuCapabilities): string {
  const a = caps.adapter;
  return a.description || a.device || [a.vendor, a.architecture].filter(Boolean).join(' ') || 'unknown adapter';
}

interface Part {
  /** Index into the pool of context sequences, or -1 for a fresh one at context 0. */
  seq: number;
  tokens: number;
  kind: 'prefill' | 'decode' | 'verify';
}

interface Shape {
  name: string;
  context: number;
  parts: Part[];
  /** Draft passes before the verify (a speculative step); 0 or absent: a plain step. */
  draftSteps?: number;
}

function tokenIds(n: number, vocab: number, salt: number): number[] {
  return Array.from({ length: n }, (_, i) => (1 + ((i + 1) * 7919 + salt * 104729)) % vocab);
}

const uniqSorted = (xs: number[]): number[] => [...new Set(xs)].sort((a, b) => a - b);

export async function calibrate(session: RunnerSession, options: CalibrationOptions = {}): Promise<CalibrationResult> {
  const runner = session.runner;
  const maxT = runner.maxTokens;
  const maxS = runner.maxSequences;
  const maxPos = runner.config.maxPositionEmbeddings;
  const vocab = runner.config.vocabSize;
  const repeats = options.repeats ?? 3;
  if (!Number.isInteger(repeats) || repeats < 1) throw new CalibrationError(`repeats must be a positive integer, got ${repeats}`);
  const positive = (xs: number[], name: string): number[] => {
    for (const x of xs) if (!Number.isInteger(x) || x < 0) throw new CalibrationError(`${name} must hold integers >= 0, got ${x}`);
    return uniqSorted(xs);
  };
  const chunks = positive(options.prefillChunks ?? [16, 64, 128, 256, maxT], 'prefillChunks').filter((c) => c >= 1 && c <= maxT);
  const decodeBatches = positive(options.decodeBatches ?? [1, 2, 4, 8, 16], 'decodeBatches').filter((b) => b >= 1 && b <= maxS);
  const ks = positive(options.verifyKs ?? [2, 4], 'verifyKs').filter((k) => k >= 1 && k + 1 <= maxT);
  const verifyBatches = positive(options.verifyBatches ?? [1, 4], 'verifyBatches').filter((v) => v >= 1 && v <= maxS);
  const maxChunk = Math.max(0, ...chunks);
  const fitsAt = (ctx: number): boolean => ctx + Math.max(maxChunk, 1 + Math.max(0, ...ks)) <= maxPos;
  const decodeContexts = positive(options.decodeContexts ?? [32, 256, 1024], 'decodeContexts').filter((c) => c >= 1 && fitsAt(c));
  const prefillContexts = positive(options.prefillContexts ?? [0, 256], 'prefillContexts').filter(fitsAt);
  const draftLayers = options.draftLayers;
  if (draftLayers !== undefined && !(Number.isInteger(draftLayers) && draftLayers >= 1 && draftLayers <= runner.numLayers)) {
    throw new CalibrationError(`draftLayers must be an integer in 1..${runner.numLayers}, got ${draftLayers}`);
  }
  const budget = options.timeBudgetMs ?? Infinity;
  if (!(budget > 0)) throw new CalibrationError(`timeBudgetMs must be positive, got ${budget}`);
  if (chunks.length === 0 && decodeBatches.length === 0) throw new CalibrationError('the sweep is empty: no prefill chunk and no decode batch fits this runner');

  // The shapes. Context sequences: `pool` sequences cached to each context used.
  const shapes: Shape[] = [];
  const mixDecodes = Math.min(4, maxS - 1);
  for (const ctx of prefillContexts) for (const c of chunks) shapes.push({ name: `prefill ${c} @${ctx}`, context: ctx, parts: [{ seq: ctx === 0 ? -1 : 0, tokens: c, kind: 'prefill' }] });
  for (const ctx of decodeContexts) {
    for (const b of decodeBatches) shapes.push({ name: `decode x${b} @${ctx}`, context: ctx, parts: Array.from({ length: b }, (_, i) => ({ seq: i, tokens: 1, kind: 'decode' as const })) });
  }
  const midCtx = decodeContexts[Math.floor(decodeContexts.length / 2)];
  if (midCtx !== undefined) {
    for (const k of ks) {
      for (const v of verifyBatches) {
        for (const d of uniqSorted([0, mixDecodes])) {
          if (v + d > maxS || v * (k + 1) + d > maxT) continue;
          const parts: Part[] = [
            ...Array.from({ length: v }, (_, i) => ({ seq: i, tokens: k + 1, kind: 'verify' as const })),
            ...Array.from({ length: d }, (_, i) => ({ seq: v + i, tokens: 1, kind: 'decode' as const })),
          ];
          shapes.push({ name: `verify x${v} k=${k}${d ? ` + decode x${d}` : ''} @${midCtx}`, context: midCtx, parts });
          if (draftLayers !== undefined) shapes.push({ name: `spec x${v} k=${k}${d ? ` + decode x${d}` : ''} @${midCtx} (draft ${draftLayers}L)`, context: midCtx, parts, draftSteps: k });
        }
      }
    }
    for (const c of chunks.filter((x) => x + mixDecodes <= maxT && x < maxT).slice(0, 2)) {
      if (mixDecodes < 1) break;
      const parts: Part[] = [{ seq: 0, tokens: c, kind: 'prefill' }, ...Array.from({ length: mixDecodes }, (_, i) => ({ seq: 1 + i, tokens: 1, kind: 'decode' as const }))];
      shapes.push({ name: `prefill ${c} + decode x${mixDecodes} @${midCtx}`, context: midCtx, parts });
    }
  }
  const contexts = uniqSorted(shapes.map((s) => s.context).filter((c) => c > 0));
  const pool = Math.max(1, ...shapes.filter((s) => s.context > 0).map((s) => Math.max(...s.parts.map((p) => p.seq + 1))));
  const widest = Math.max(0, ...shapes.map((s) => Math.max(...s.parts.map((p) => p.tokens))));
  const pages = (n: number): number => Math.ceil(n / runner.pageSize);
  const needPages = pool * pages(Math.max(0, ...contexts) + widest) + pages(widest);
  if (needPages > session.kv.freePages()) {
    throw new CalibrationError(
      `the sweep needs ${needPages} free KV pages (${pool} sequences up to ${Math.max(0, ...contexts) + widest} tokens); the cache has ${session.kv.freePages()}: give the runner more kvPages or shorten decodeContexts`,
    );
  }

  const layers = runner.numLayers;
  const seqs = Array.from({ length: pool }, () => session.newSequence());
  const fresh = session.newSequence();
  const samples: CalibrationSample[] = [];
  const skipped: string[] = [];
  const t0 = performance.now();
  try {
    let done = 0;
    for (const ctx of [0, ...contexts]) {
      const todo = shapes.filter((s) => s.context === ctx);
      if (performance.now() - t0 > budget) {
        skipped.push(...todo.map((s) => s.name));
        continue;
      }
      // Grow the context sequences to ctx (untimed), in chunks the runner takes.
      for (const [i, id] of seqs.entries()) {
        const have = session.kv.length(id);
        if (have < ctx) await session.prefill(id, tokenIds(ctx - have, vocab, i + have), maxT, { outputs: 'none' });
      }
      for (const shape of todo) {
        if (performance.now() - t0 > budget) {
          skipped.push(shape.name);
          continue;
        }
        const planned: PlannedSequence[] = shape.parts.map((p, j) => ({
          id: p.seq < 0 ? fresh : seqs[p.seq]!,
          tokens: tokenIds(p.tokens, vocab, 1000 + j),
          outputs: p.kind === 'prefill' ? 'last' : 'all',
        }));
        for (let r = 0; r <= repeats; r++) {
          const batch: BatchSequence[] = [];
          for (const [j, s] of planned.entries()) batch.push({ ...(await session.plan(s)), kind: shape.parts[j]!.kind });
          const draftMs = shape.draftSteps ? await draftPasses(runner, batch, shape.draftSteps, draftLayers!) : 0;
          const { features } = await runner.forward(batch);
          for (const s of planned) session.kv.truncate(s.id, s.id === fresh ? 0 : ctx);
          if (r > 0) {
            samples.push({
              tokens: features.tokens,
              draftSteps: shape.draftSteps ?? 0,
              kvTokensRead: features.attendedKeys * layers,
              ms: features.ms + draftMs,
              shape: shape.name,
            });
          }
        }
        options.onShape?.(++done, shapes.length);
      }
    }
  } finally {
    for (const id of [...seqs, fresh]) session.free(id);
  }
  const model = PerformanceModel.fit(
    samples,
    {
      adapter: options.adapter ?? 'unknown adapter',
      model: options.model ?? 'unknown model',
      layers,
      maxTokensPerStep: maxT,
    },
    options,
  );
  return { model, samples, skipped };
}

/**
 * SpeculativeDecoder's self draft for the verify entries of `batch` (KV slots already reserved): `steps`
 * sequential passes through the first `draftLayers` layers, one row per verifying sequence, pass j at
 * position startPos + j writing slot j, its argmax the next pass's input. The verify entries' tokens
 * become [pending, ...drafts], as SpeculativeDecoder's verify. Returns the passes' summed StepFeatures.ms.
 */
async function draftPasses(runner: RunnerSession['runner'], batch: BatchSequence[], steps: number, draftLayers: number): Promise<number> {
  const verify = batch.flatMap((b, i) => (b.kind === 'verify' ? [i] : []));
  const drafts = verify.map(() => [] as number[]);
  let ms = 0;
  for (let j = 0; j < steps; j++) {
    const pass: BatchSequence[] = verify.map((i, n) => {
      const b = batch[i]!;
      return { blockTable: b.blockTable, startPos: b.startPos + j, tokens: [j === 0 ? b.tokens[0]! : drafts[n]![j - 1]!], slots: [b.slots[j]!], outputs: 'last' };
    });
    const res = await runner.forward(pass, { layers: draftLayers });
    verify.forEach((_, n) => drafts[n]!.push(res.tokens[n]!));
    ms += res.features.ms;
  }
  verify.forEach((i, n) => {
    batch[i] = { ...batch[i]!, tokens: [batch[i]!.tokens[0]!, ...drafts[n]!] };
  });
  return ms;
}
