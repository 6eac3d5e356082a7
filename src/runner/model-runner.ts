// The model runner: one forward step of a ragged batch over the paged KV cache, recorded into one
// command encoder and one submit. It executes what it is given (block tables, slots, output rows)
// and decides nothing; the scheduler and the KV bookkeeping live above it.

import { GpuLimitError } from '../gpu/errors.js';
import type { GpuRuntime } from '../gpu/runtime.js';
import type { StepRecorder } from '../gpu/step.js';
import { attentionSplits, LayerKernels } from '../kernels/layers.js';
import { MatmulKernels, type TiledChoice, type WeightDType } from '../kernels/matmul.js';
import { packSamplingParams, SAMPLING_PARAMS_BYTES, SamplingKernels, type SamplingParams } from '../kernels/sampling.js';
import { LogitAdjustKernel, packPenaltyEntries } from '../kernels/logit-adjust.js';
import type { PenaltyEntry } from '../sampling/penalties.js';
import { RopeTable } from '../kernels/rope-table.js';
import type { ModelConfig } from '../model/config.js';
import { UnsupportedModelError } from '../model/errors.js';
import type { LoadedModelFiles } from '../model/load.js';
import type { WeightQuantization } from '../model/quantize-q4.js';
import { flattenBatch, type BatchSequence, type FlatBatch } from './batch.js';
import { ForwardInputError } from './errors.js';
import { destroyWeights, recordMatrix, uploadWeights, type LayerWeights, type ModelWeights } from './gpu-weights.js';

export interface RunnerOptions {
  /** Most new tokens in one step (prefill chunk + decode + verify rows). Default 512. */
  maxTokensPerStep?: number;
  /** Most sequences in one step. Default 64. */
  maxSequencesPerStep?: number;
  /** KV pages (each pageSize tokens, all layers); capped so one layer's K fits a binding. */
  kvPages?: number;
  pageSize?: number;
  /** Run only the first N layers (benchmarks on slow adapters). */
  layers?: number;
  /** Fill the KV cache with NaN at start and whenever pages are poisoned (tests). */
  poisonKv?: boolean;
  /** 'f32' (default) or 'f16': matmul group products in f16 (needs shader-f16); norms, softmax
   * and all accumulation stay f32. */
  math?: 'f32' | 'f16';
  /** The prefill matmul's geometry (bitwise the same results; only speed differs). Default 'auto'. */
  tiledMatmul?: TiledChoice;
  /**
   * Decode-sized steps (the matvec path) apply each RMSNorm inside the next matmul's reads instead
   * of a separate pass (bitwise the same). Default off: on lavapipe the per-workgroup norm costs
   * more than the pass it saves (B=1 steps ~20% slower); `npm run bench:variants` measures it on
   * a real GPU. Its matvec is a separate pipeline (its code slows SwiftShader's matvec ~2x even
   * unused).
   */
  fuseNorm?: boolean;
  /** 'q4': quantize the decoder-layer linears and an untied LM head to 4 bits at load
   * (src/model/quantize-q4.ts); 'none' (default): weights as the files have them. */
  quantize?: WeightQuantization;
}

/** What a performance model needs to know about a step, with its measured time. */
export interface StepFeatures {
  tokens: number;
  prefillTokens: number;
  decodeRows: number;
  verifyRows: number;
  sequences: number;
  /** Rows that went through the final norm and LM head. */
  outputRows: number;
  /** KV tokens read by attention: the sum over new tokens of the keys each attends to (per layer). */
  attendedKeys: number;
  /** Wall time from submit to the token ids on the CPU, ms. */
  ms: number;
}

export interface ForwardOptions {
  /** Read back the logits of the output rows too. */
  logits?: boolean;
  /** One entry per output row: sample with these instead of greedy argmax (temperature 0 = argmax). */
  sampling?: readonly SamplingParams[];
  /**
   * Penalties and logit bias (src/sampling/penalties.ts), applied to the output rows' logits before
   * argmax or sampling; read-back logits (logprobs, stochastic acceptance) are the adjusted ones.
   */
  penalties?: readonly PenaltyEntry[];
  /**
   * Run only the first N layers, then the final norm and LM head (self-speculation's draft: it
   * shares the weights and writes the same KV values the full model writes for those layers).
   */
  layers?: number;
}

export interface ForwardResult {
  /** The next token of each output row: greedy argmax (ties to the lowest id), or sampled. */
  tokens: Uint32Array;
  /** Logits [outputRows, vocab] when asked for. */
  logits: Float32Array | null;
  /** (sequence, row) of each output row. */
  outputOf: { seq: number; row: number }[];
  features: StepFeatures;
}

interface Activations {
  tokens: GPUBuffer;
  positions: GPUBuffer;
  seqOfToken: GPUBuffer;
  slots: GPUBuffer;
  blockTables: GPUBuffer;
  outputRows: GPUBuffer;
  x: GPUBuffer;
  h: GPUBuffer;
  qkv: GPUBuffer;
  attn: GPUBuffer;
  gateUp: GPUBuffer;
  act: GPUBuffer;
  rowsHidden: GPUBuffer;
  logits: GPUBuffer;
  ids: GPUBuffer;
  /** Sampling params per output row, one 256-byte-aligned region per logits chunk. */
  sampling: GPUBuffer;
  /** Split attention's partial results (see LayerKernels.attention). */
  attnPartials: GPUBuffer;
}

/** Qwen3's q/k norms: both or neither (one alone is a malformed weight set). */
function qkNormOf(w: LayerWeights, eps: number): { q: GPUBuffer; k: GPUBuffer; eps: number } | undefined {
  if (!w.qNorm && !w.kNorm) return undefined;
  if (!w.qNorm || !w.kNorm) throw new UnsupportedModelError(`a q norm without a k norm (or the reverse)`, ['both q_norm and k_norm, or neither']);
  return { q: w.qNorm, k: w.kNorm, eps };
}

export class ModelRunner {
  readonly pageSize: number;
  readonly numPages: number;
  readonly maxTokens: number;
  readonly maxSequences: number;
  /** Output rows whose logits fit one buffer (the LM head runs in chunks of this many rows). */
  readonly logitRowsPerChunk: number;
  readonly numLayers: number;
  private readonly kCache: GPUBuffer[] = [];
  private readonly vCache: GPUBuffer[] = [];
  private readonly a: Activations;
  private readonly rope: RopeTable;
  private readonly qDim: number;
  private readonly kvDim: number;
  private readonly qkvDim: number;
  private readonly samplingChunkBytes: number;
  private sampler: SamplingKernels | null = null;
  private adjuster: LogitAdjustKernel | null = null;

  private constructor(
    private readonly rt: GpuRuntime,
    readonly config: ModelConfig,
    readonly weights: ModelWeights,
    private readonly matmul: ReadonlyMap<WeightDType, MatmulKernels>,
    private readonly layers: LayerKernels,
    private readonly options: RunnerOptions,
  ) {
    const c = config;
    const lim = rt.capabilities.limits;
    const binding = Math.min(lim.maxStorageBufferBindingSize, lim.maxBufferSize);
    this.numLayers = weights.layers.length;
    this.pageSize = options.pageSize ?? 16;
    this.qDim = c.numHeads * c.headDim;
    this.kvDim = c.numKvHeads * c.headDim;
    this.qkvDim = this.qDim + 2 * this.kvDim;
    // The gate/up product is only materialized for matrices without interleaved rows (e.g. a
    // benchmark's); interleaved ones store silu(gate) * up directly.
    const gateUpProduct = !weights.layers.every((l) => l.gateUp.interleaved);
    const gateUpWidth = gateUpProduct ? 2 * c.intermediateSize : c.intermediateSize;
    const widest = Math.max(c.hiddenSize, this.qkvDim, gateUpWidth);
    const tokenCap = Math.floor(binding / (4 * widest));
    this.maxTokens = Math.min(options.maxTokensPerStep ?? 512, tokenCap);
    if (this.maxTokens < 1) throw new GpuLimitError(`one token's activations (${4 * widest} bytes) exceed the storage binding limit`);
    this.maxSequences = Math.min(options.maxSequencesPerStep ?? 64, this.maxTokens);
    const pageBytes = this.pageSize * this.kvDim * 4;
    const pageCap = Math.floor(binding / pageBytes);
    this.numPages = Math.min(options.kvPages ?? 256, pageCap);
    if (this.numPages < 1) throw new GpuLimitError(`one KV page (${pageBytes} bytes) exceeds the storage binding limit`);
    this.logitRowsPerChunk = Math.max(1, Math.min(this.maxTokens, Math.floor(binding / (4 * c.vocabSize))));

    this.samplingChunkBytes = Math.ceil((this.logitRowsPerChunk * SAMPLING_PARAMS_BYTES) / lim.minStorageBufferOffsetAlignment) * lim.minStorageBufferOffsetAlignment;
    const RW = GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST;
    const f32 = (n: number, label: string): GPUBuffer => rt.createBuffer(4 * Math.max(1, n), RW, label);
    for (let l = 0; l < this.numLayers; l++) {
      this.kCache.push(f32(this.numPages * this.pageSize * this.kvDim, `K cache ${l}`));
      this.vCache.push(f32(this.numPages * this.pageSize * this.kvDim, `V cache ${l}`));
    }
    const T = this.maxTokens;
    this.a = {
      tokens: f32(T, 'tokens'),
      positions: f32(T, 'positions'),
      seqOfToken: f32(T, 'seq of token'),
      slots: f32(T, 'slots'),
      blockTables: f32(this.maxSequences * Math.ceil(c.maxPositionEmbeddings / this.pageSize), 'block tables'),
      outputRows: f32(T, 'output rows'),
      x: f32(T * c.hiddenSize, 'x'),
      h: f32(T * c.hiddenSize, 'h'),
      qkv: f32(T * this.qkvDim, 'qkv'),
      attn: f32(T * this.qDim, 'attn'),
      gateUp: f32(gateUpProduct ? T * 2 * c.intermediateSize : 1, 'gate_up'),
      act: f32(T * c.intermediateSize, 'act'),
      rowsHidden: f32(this.logitRowsPerChunk * c.hiddenSize, 'rows hidden'),
      logits: f32(this.logitRowsPerChunk * c.vocabSize, 'logits'),
      ids: f32(T, 'ids'),
      sampling: f32((Math.ceil(T / this.logitRowsPerChunk) * this.samplingChunkBytes) / 4, 'sampling params'),
      // Enough for every decode row at the longest context, up to 16 MiB; a step that needs more
      // runs the one-workgroup attention (the same bits, less parallel).
      attnPartials: f32(Math.min(binding, 16 * 2 ** 20, 4 * this.maxSequences * c.numHeads * attentionSplits(c.maxPositionEmbeddings - 1) * (c.headDim + 2)) / 4, 'attention partials'),
    };
    this.rope = new RopeTable(rt, c.headDim, c.ropeTheta, c.ropeScaling);
    if (options.poisonKv) this.poisonPages(Array.from({ length: this.numPages }, (_, i) => i));
  }

  static async create(rt: GpuRuntime, files: LoadedModelFiles, options: RunnerOptions = {}): Promise<ModelRunner> {
    const config = files.config;
    const layers = Math.min(options.layers ?? config.numLayers, config.numLayers);
    return ModelRunner.fromWeights(rt, config, uploadWeights(rt, config, files.tensors, layers, { quantize: options.quantize ?? 'none' }), options);
  }

  /** A runner over weights already on the GPU (e.g. synthetic ones a benchmark generated there). */
  static async fromWeights(rt: GpuRuntime, config: ModelConfig, weights: ModelWeights, options: RunnerOptions = {}): Promise<ModelRunner> {
    const dtypes = new Set<WeightDType>([weights.embed.dtype, weights.lmHead.dtype, ...weights.layers.flatMap((l) => [l.qkv.dtype, l.o.dtype, l.gateUp.dtype, l.down.dtype])]);
    const matmul = new Map<WeightDType, MatmulKernels>();
    for (const d of dtypes) matmul.set(d, await MatmulKernels.create(rt, d, options.math === 'f16', options.tiledMatmul, { fusedNorm: options.fuseNorm === true }));
    const layerKernels = await LayerKernels.create(rt, [weights.embed.dtype]);
    return new ModelRunner(rt, config, weights, matmul, layerKernels, options);
  }

  /** Overwrite pages with NaN in every layer (tests: a stale read shows up in every check). */
  poisonPages(pages: readonly number[]): void {
    const pageFloats = this.pageSize * this.kvDim;
    const nan = new Float32Array(pageFloats).fill(NaN);
    for (const page of pages) {
      for (let l = 0; l < this.numLayers; l++) {
        this.rt.write(this.kCache[l]!, 4 * page * pageFloats, nan);
        this.rt.write(this.vCache[l]!, 4 * page * pageFloats, nan);
      }
    }
  }

  /** Copy the first `tokens` slots of pages (copy-on-write of a shared partial page). */
  async copyPages(copies: readonly { srcPage: number; dstPage: number; tokens: number }[]): Promise<void> {
    if (copies.length === 0) return;
    const step = this.rt.beginStep('copy pages');
    const pageBytes = 4 * this.pageSize * this.kvDim;
    const tokenBytes = 4 * this.kvDim;
    // WebGPU forbids a copy within one buffer: go through a scratch buffer (copies run in order).
    const scratch = this.rt.buffers.acquire(pageBytes, GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST, 'page copy');
    for (const c of copies) {
      if (c.tokens === 0) continue;
      for (const cache of [...this.kCache, ...this.vCache]) {
        step.copy(cache, c.srcPage * pageBytes, scratch, 0, c.tokens * tokenBytes);
        step.copy(scratch, 0, cache, c.dstPage * pageBytes, c.tokens * tokenBytes);
      }
    }
    step.releaseAfterSubmit(scratch);
    await step.submit();
  }

  /** Run one step. Output rows get their next token (greedy, or sampled); logits when asked. */
  async forward(batch: readonly BatchSequence[], opts: ForwardOptions = {}): Promise<ForwardResult> {
    const c = this.config;
    const flat = flattenBatch(batch, {
      vocabSize: c.vocabSize,
      pageSize: this.pageSize,
      numPages: this.numPages,
      maxTokens: this.maxTokens,
      maxSequences: this.maxSequences,
      maxPositions: c.maxPositionEmbeddings,
    });
    const layers = opts.layers ?? this.numLayers;
    if (!Number.isInteger(layers) || layers < 1 || layers > this.numLayers) throw new ForwardInputError('layers', `is ${layers}; this runner has layers 1..${this.numLayers}`);
    this.rope.ensure(flat.maxPosition);
    const sampling = opts.sampling ? await this.packSampling(opts.sampling, flat.outputRows.length) : null;
    const penalties = opts.penalties && opts.penalties.length > 0 ? opts.penalties : null;
    if (penalties) {
      for (const e of penalties) {
        if (!(Number.isInteger(e.row) && e.row >= 0 && e.row < flat.outputRows.length)) throw new ForwardInputError('penalties', `names output row ${e.row}; this step has ${flat.outputRows.length}`);
        if (!(Number.isInteger(e.token) && e.token >= 0 && e.token < c.vocabSize)) throw new ForwardInputError('penalties', `names token ${e.token}; the vocabulary has ${c.vocabSize}`);
      }
      this.adjuster ??= await LogitAdjustKernel.create(this.rt);
    }
    const step = this.rt.beginStep(`forward T=${flat.T}`);
    const a = this.a;
    step.write(a.tokens, 0, flat.tokens);
    step.write(a.positions, 0, flat.positions);
    step.write(a.seqOfToken, 0, flat.seqOfToken);
    step.write(a.slots, 0, flat.slots);
    step.write(a.blockTables, 0, flat.blockTables);
    if (flat.outputRows.length > 0) step.write(a.outputRows, 0, flat.outputRows);
    if (sampling) step.write(a.sampling, 0, sampling);
    let adjust: { buffer: GPUBuffer; count: number } | null = null;
    if (penalties) {
      const packed = new Uint8Array(packPenaltyEntries(penalties));
      const buffer = this.rt.buffers.acquire(packed.byteLength, GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST, 'penalties');
      step.write(buffer, 0, packed);
      step.releaseAfterSubmit(buffer);
      adjust = { buffer, count: penalties.length };
    }

    for (const chunk of this.weights.embed.chunks) {
      this.layers.embedding(step, this.weights.embed.dtype, a.tokens, chunk.buffer, a.x, flat.T, c.hiddenSize, chunk.rowStart, chunk.rows);
    }
    for (let l = 0; l < layers; l++) this.recordLayer(step, l, flat);
    const { logitReads } = this.recordOutputs(step, flat, opts.logits ?? false, sampling !== null, adjust);
    const ids = flat.outputRows.length > 0 ? step.read(a.ids, 0, 4 * flat.outputRows.length) : Promise.resolve(new ArrayBuffer(0));
    const start = performance.now();
    await step.submit();
    // A step with no output rows (a prompt chunk before its last) reads nothing back: wait for the GPU
    // all the same, so `ms` (and the planner's step times built on it) is the step's, not the submit's.
    if (flat.outputRows.length === 0) await this.rt.flush();
    const tokens = new Uint32Array(await ids);
    let logits: Float32Array | null = null;
    if (logitReads) {
      logits = new Float32Array(flat.outputRows.length * c.vocabSize);
      let o = 0;
      for (const r of logitReads) {
        const chunk = new Float32Array(await r);
        logits.set(chunk, o);
        o += chunk.length;
      }
    }
    const ms = performance.now() - start;
    return {
      tokens,
      logits,
      outputOf: flat.outputOf,
      features: {
        tokens: flat.T,
        prefillTokens: flat.prefillTokens,
        decodeRows: flat.decodeRows,
        verifyRows: flat.verifyRows,
        sequences: flat.S,
        outputRows: flat.outputRows.length,
        attendedKeys: flat.attendedKeys,
        ms,
      },
    };
  }

  private recordLayer(step: StepRecorder, l: number, flat: FlatBatch): void {
    const c = this.config;
    const w = this.weights.layers[l]!;
    const a = this.a;
    const T = flat.T;
    const H = c.hiddenSize;
    // Biases and residual adds ride in the matmuls' epilogues (same arithmetic as separate passes);
    // on the matvec path (decode-sized steps) the RMSNorms ride in the next matmul's reads too.
    const fuseNorm = this.options.fuseNorm === true && MatmulKernels.pathFor(T) === 'matvec';
    if (fuseNorm) {
      recordMatrix(step, this.matmul, a.x, w.qkv, a.qkv, T, 'auto', w.qkv.rows, { bias: w.qkvBias, norm: { weight: w.inputNorm, eps: c.rmsNormEps } });
    } else {
      this.layers.rmsnorm(step, a.x, w.inputNorm, a.h, T, H, c.rmsNormEps);
      recordMatrix(step, this.matmul, a.h, w.qkv, a.qkv, T, 'auto', w.qkv.rows, { bias: w.qkvBias });
    }
    this.layers.ropeKvAppend(
      step,
      { qkv: a.qkv, positions: a.positions, table: this.rope.buffer, slots: a.slots, kCache: this.kCache[l]!, vCache: this.vCache[l]! },
      { T, heads: c.numHeads, kvHeads: c.numKvHeads, headDim: c.headDim, rowStride: this.qkvDim },
      qkNormOf(w, c.rmsNormEps),
    );
    this.layers.attention(
      step,
      { q: a.qkv, kCache: this.kCache[l]!, vCache: this.vCache[l]!, positions: a.positions, seqOfToken: a.seqOfToken, blockTables: a.blockTables, out: a.attn },
      { T, heads: c.numHeads, kvHeads: c.numKvHeads, headDim: c.headDim, pageSize: this.pageSize, maxBlocks: flat.maxBlocks, qStride: this.qkvDim, outStride: this.qDim },
      { partials: a.attnPartials, maxPosition: flat.maxPosition },
    );
    recordMatrix(step, this.matmul, a.attn, w.o, a.x, T, 'auto', w.o.rows, { bias: w.oBias, accumulate: true });
    const postNorm = { weight: w.postNorm, eps: c.rmsNormEps };
    if (!fuseNorm) this.layers.rmsnorm(step, a.x, w.postNorm, a.h, T, H, c.rmsNormEps);
    const mlpIn = fuseNorm ? a.x : a.h;
    if (w.gateUp.interleaved) {
      recordMatrix(step, this.matmul, mlpIn, w.gateUp, a.act, T, 'auto', c.intermediateSize, { swiglu: true, ...(fuseNorm ? { norm: postNorm } : {}) });
    } else {
      recordMatrix(step, this.matmul, mlpIn, w.gateUp, a.gateUp, T, 'auto', w.gateUp.rows, fuseNorm ? { norm: postNorm } : {});
      this.layers.siluMul(step, a.gateUp, a.act, T, c.intermediateSize);
    }
    recordMatrix(step, this.matmul, a.act, w.down, a.x, T, 'auto', w.down.rows, { accumulate: true });
  }

  /** Sampling params laid out per logits chunk (binding offsets must be aligned). */
  private async packSampling(params: readonly SamplingParams[], rows: number): Promise<Uint8Array> {
    if (params.length !== rows) throw new ForwardInputError('sampling', `has ${params.length} entries for ${rows} output rows`);
    this.sampler ??= await SamplingKernels.create(this.rt);
    const out = new Uint8Array(Math.ceil(rows / this.logitRowsPerChunk) * this.samplingChunkBytes);
    for (let c = 0; c * this.logitRowsPerChunk < rows; c++) {
      const part = params.slice(c * this.logitRowsPerChunk, (c + 1) * this.logitRowsPerChunk);
      out.set(new Uint8Array(packSamplingParams(part)), c * this.samplingChunkBytes);
    }
    return out;
  }

  /** Final norm, LM head and the next token for the output rows only, in chunks that fit the logits buffer. */
  private recordOutputs(step: StepRecorder, flat: FlatBatch, wantLogits: boolean, sample: boolean, adjust: { buffer: GPUBuffer; count: number } | null): { logitReads: Promise<ArrayBuffer>[] | null } {
    const c = this.config;
    const R = flat.outputRows.length;
    const reads: Promise<ArrayBuffer>[] = [];
    for (let r0 = 0; r0 < R; r0 += this.logitRowsPerChunk) {
      const rows = Math.min(this.logitRowsPerChunk, R - r0);
      this.layers.rmsnorm(step, this.a.x, this.weights.finalNorm, this.a.rowsHidden, rows, c.hiddenSize, c.rmsNormEps, {}, this.a.outputRows, r0);
      recordMatrix(step, this.matmul, this.a.rowsHidden, this.weights.lmHead, this.a.logits, rows);
      if (adjust) this.adjuster!.record(step, adjust.buffer, this.a.logits, { entries: adjust.count, firstRow: r0, rows, stride: c.vocabSize, vocab: c.vocabSize });
      if (sample) {
        const params = { buffer: this.a.sampling, offset: (r0 / this.logitRowsPerChunk) * this.samplingChunkBytes, size: rows * SAMPLING_PARAMS_BYTES };
        this.sampler!.record(step, this.a.logits, params, this.a.ids, { rows, vocab: c.vocabSize, stride: c.vocabSize, outOffset: r0 });
      } else {
        this.layers.argmax(step, this.a.logits, this.a.ids, rows, c.vocabSize, c.vocabSize, r0);
      }
      if (wantLogits) reads.push(step.read(this.a.logits, 0, 4 * rows * c.vocabSize));
    }
    return { logitReads: wantLogits ? reads : null };
  }

  destroy(): void {
    destroyWeights(this.rt, this.weights);
    for (const b of [...this.kCache, ...this.vCache, ...Object.values(this.a)]) this.rt.destroyBuffer(b);
    this.rope.destroy();
    for (const k of this.matmul.values()) k.destroy();
  }
}
