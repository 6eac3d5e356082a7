// Y = X W^T with W in HF Linear layout [N, K], stored as f32, f16, bf16 or q4 (4-bit groups of 32
// with an f16 scale, src/model/quantize-q4.ts); f32 math.
//
// Two implementations follow one reduction order (see GpuCapabilities.reduceLanes), so they are
// interchangeable bitwise: `matvec` for few rows (decode), `tiled` for many (prefill). The choice
// between them is only about speed.

import matvecSource from '../../shaders/matvec.wgsl?raw';
import matmulTiledSource from '../../shaders/matmul_tiled.wgsl?raw';
import groupDot16Lib from '../../shaders/lib/group_dot16.wgsl?raw';
import weightsLib from '../../shaders/lib/weights.wgsl?raw';
import epilogueLib from '../../shaders/lib/epilogue.wgsl?raw';
import { GpuLimitError, GpuUsageError } from '../gpu/errors.js';
import { Q4_GROUP, q4RowBytes } from '../model/quantize-q4.js';
import type { StorageArg } from '../gpu/bind-groups.js';
import type { KernelSpec, PreparedPipeline } from '../gpu/pipelines.js';
import type { GpuRuntime } from '../gpu/runtime.js';
import type { StepRecorder } from '../gpu/step.js';
import type { WgslDefines } from '../gpu/wgsl.js';

/** Weight dtypes a model file may hold (and the GPU keeps as they are). */
export type SourceWeightDType = 'f32' | 'f16' | 'bf16';
export type WeightDType = SourceWeightDType | 'q4';
export type MatmulPath = 'auto' | 'matvec' | 'tiled';

const PARAMS_BYTES = 32;

export const MATVEC_KERNEL: KernelSpec = {
  name: 'matvec',
  source: matvecSource,
  storage: ['read', 'read', 'read_write', 'read'],
  paramsBytes: PARAMS_BYTES,
  includes: { weights: weightsLib, group_dot16: groupDot16Lib, epilogue: epilogueLib },
};

/** matvec with the fused RMSNorm (NORM): a fifth binding, the norm's weight. */
export const MATVEC_NORM_KERNEL: KernelSpec = {
  name: 'matvec_norm',
  source: matvecSource,
  storage: ['read', 'read', 'read_write', 'read', 'read'],
  paramsBytes: PARAMS_BYTES,
  includes: { weights: weightsLib, group_dot16: groupDot16Lib, epilogue: epilogueLib },
};

export const MATMUL_TILED_KERNEL: KernelSpec = {
  name: 'matmul_tiled',
  source: matmulTiledSource,
  storage: ['read', 'read', 'read_write', 'read'],
  paramsBytes: PARAMS_BYTES,
  includes: { weights: weightsLib, group_dot16: groupDot16Lib, epilogue: epilogueLib },
};

function checkDim(name: string, v: number): void {
  if (!Number.isInteger(v) || v < 0) throw new GpuUsageError(`matmul: ${name} must be a non-negative integer, got ${v}`);
}

/** The lib/weights.wgsl booleans for a weight dtype. */
export function weightDefines(dtype: WeightDType, shaderF16: boolean): { W_F16: boolean; W_BF16: boolean; W_Q4: boolean; SHADER_F16: boolean } {
  return { W_F16: dtype === 'f16', W_BF16: dtype === 'bf16', W_Q4: dtype === 'q4', SHADER_F16: dtype === 'f16' && shaderF16 };
}

/** Bytes per element of a weight dtype (q4: the average, 4 bits plus 16 bits per 32). */
export function weightBytes(dtype: WeightDType): number {
  return dtype === 'f32' ? 4 : dtype === 'q4' ? q4RowBytes(Q4_GROUP) / Q4_GROUP : 2;
}

/** Bytes of one row of `cols` weights (a q4 buffer adds up to 2 bytes of padding in all). */
export function weightRowBytes(dtype: WeightDType, cols: number): number {
  return dtype === 'q4' ? q4RowBytes(cols) : cols * weightBytes(dtype);
}

/** Activation rows one matvec workgroup handles (the shader's vec4 of accumulators). */
export const MATVEC_ROWS = 4;
/** Up to this many rows, `auto` picks matvec. */
export const MATVEC_MAX_ROWS = 8;

export interface MatmulDims {
  M: number;
  N: number;
  K: number;
  /** Elements between rows of X (default K). */
  xStride?: number;
  /** Elements between rows of Y (default N). */
  yStride?: number;
  /** Column of Y where this W's output starts (a W split by rows writes into one Y). */
  yColOffset?: number;
  /** Add this f32 vector (indexed by Y's column) to the product: a fused bias. */
  bias?: StorageArg;
  /** Y += the product (+ bias): a fused residual add. Default: Y = the product. */
  accumulate?: boolean;
  /**
   * W's rows are gate and up interleaved (gate_i, up_i): store Y[m, (yColOffset + n) / 2] =
   * silu(gate) * up instead of the product (N and yColOffset even; yStride is Y's row).
   */
  swiglu?: boolean;
  /**
   * RMSNorm X's rows with this weight as they are read (matvec path only): bitwise what the
   * rmsnorm kernel would have written, one pass fewer.
   */
  norm?: { weight: StorageArg; eps: number };
}

/**
 * The tiled kernel's shape: each thread owns an `rm` x `rn` micro tile (register tiling) for one
 * reduction lane; a workgroup is `lanes * mx * my` threads and covers (my*rm) x (mx*rn) outputs.
 * `pad` vec4 per staged row keeps threads reading different rows off the same banks. Every
 * geometry follows the same reduction order, so they are bitwise interchangeable; only speed differs.
 */
export interface TiledGeometry {
  rm: 4 | 8;
  rn: 4 | 8;
  /** Micro tiles across (columns of Y). */
  mx: number;
  /** Groups of four K values staged per k-step (a multiple of the reduction lanes). */
  groupsPerStep: number;
  pad: 0 | 1;
}

/** Named geometries: 'compact' is the original 4x4 micro tile; 'wide' the 8x8 register tile. */
export const TILED_VARIANTS = ['compact', 'wide'] as const;
export type TiledVariant = (typeof TILED_VARIANTS)[number];
/**
 * 'auto' (the default): 'wide' where the device's workgroup storage holds it, else 'compact'. On
 * lavapipe 'wide' ran a 512-token prefill matmul about 2x faster than 'compact' (bench/variants.ts);
 * real GPUs: see that benchmark's results.
 */
export type TiledChoice = TiledVariant | 'auto';

/** Workgroup storage (bytes) of a tiled geometry, and its rows per workgroup (0: does not fit the threads). */
function tiledFootprint(geo: TiledGeometry, lanes: number, wg: number): { bytes: number; my: number } {
  const my = wg / (lanes * geo.mx);
  if (!Number.isInteger(my) || my < 1) return { bytes: Infinity, my: 0 };
  return { bytes: 16 * Math.max((my * geo.rm + geo.mx * geo.rn) * (geo.groupsPerStep + geo.pad), wg * 4), my };
}

function tiledGeometryOf(variant: TiledVariant, lanes: number): TiledGeometry {
  return variant === 'wide'
    ? // At 32 lanes a k-step stages 32 groups: half as many columns keep it in 32 KiB.
      { rm: 8, rn: 8, mx: lanes >= 32 ? 4 : 8, groupsPerStep: Math.max(8, lanes), pad: 1 }
    : { rm: 4, rn: 4, mx: 8, groupsPerStep: Math.max(16, lanes), pad: 0 };
}

interface Geometry {
  matvecWg: number;
  tiledTm: number;
  tiledTn: number;
  groupsPerStep: number;
}

/** The pipelines for one weight dtype, compiled up front so recording is synchronous. */
export class MatmulKernels {
  private constructor(
    readonly dtype: WeightDType,
    readonly f16Math: boolean,
    readonly variant: TiledVariant,
    private readonly geometry: Geometry,
    private readonly pipelines: Map<string, PreparedPipeline>,
    readonly defines: { matvec: WgslDefines; tiled: WgslDefines },
    /** Bound as the bias when a dispatch has none (WebGPU needs every binding). */
    private readonly noBias: GPUBuffer,
    private readonly rt: GpuRuntime,
  ) {
    this.byPath = [pipelines.get('matvec|false')!, pipelines.get('matvec|true')!, pipelines.get('tiled|false')!, pipelines.get('tiled|true')!];
    const n0 = pipelines.get('matvec_norm|false');
    const n1 = pipelines.get('matvec_norm|true');
    this.normByVec4 = n0 && n1 ? [n0, n1] : null;
  }

  /** The pipelines by (tiled ? 2 : 0) + (vec4 ? 1 : 0). */
  private readonly byPath: readonly PreparedPipeline[];
  /** The NORM matvec variants (created with `fusedNorm`), by vec4. */
  private readonly normByVec4: readonly [PreparedPipeline, PreparedPipeline] | null;
  private readonly params = new Uint32Array(8);
  private readonly paramsF32 = new Float32Array(this.params.buffer);

  /** Free the kernels' own buffer (the pipelines stay in the runtime's cache). */
  destroy(): void {
    this.rt.destroyBuffer(this.noBias);
  }

  /**
   * @param f16Math group products in f16 (needs shader-f16); the default is f32 math.
   * @param variant the tiled kernel's geometry (see TiledGeometry).
   */
  static async create(rt: GpuRuntime, dtype: WeightDType, f16Math = false, choice: TiledChoice = 'auto', opts: { fusedNorm?: boolean } = {}): Promise<MatmulKernels> {
    const caps = rt.capabilities;
    if (f16Math && !caps.features.shaderF16) {
      throw new GpuLimitError(`f16 math needs the 'shader-f16' feature, which this device ${caps.ignored.shaderF16 ? 'was told to ignore' : 'lacks'}; use f32 math`);
    }
    const lanes = caps.reduceLanes;
    const wg = Math.min(256, caps.limits.maxComputeInvocationsPerWorkgroup);
    if (wg % lanes !== 0 || lanes > 32) {
      throw new GpuLimitError(`reduceLanes ${lanes} does not fit a ${wg}-thread workgroup (valid: 1..32, dividing ${wg})`);
    }
    if (choice !== 'auto' && !(TILED_VARIANTS as readonly string[]).includes(choice)) {
      throw new GpuUsageError(`unknown tiled matmul variant '${String(choice)}' (valid: auto, ${TILED_VARIANTS.join(', ')})`);
    }
    const storage = caps.limits.maxComputeWorkgroupStorageSize;
    const variant: TiledVariant = choice !== 'auto' ? choice : tiledFootprint(tiledGeometryOf('wide', lanes), lanes, wg).bytes <= storage ? 'wide' : 'compact';
    const geo = tiledGeometryOf(variant, lanes);
    const { bytes: sharedBytes, my } = tiledFootprint(geo, lanes, wg);
    if (my < 1) {
      throw new GpuLimitError(`no tiled-matmul geometry '${variant}' for ${lanes} lanes in ${wg} threads`);
    }
    const tiledTn = geo.mx * geo.rn;
    const tiledTm = my * geo.rm;
    const groupsPerStep = geo.groupsPerStep;
    const sharedBytesMatvec = 16 * (2 * wg + wg / lanes);
    if (Math.max(sharedBytes, sharedBytesMatvec) > caps.limits.maxComputeWorkgroupStorageSize) {
      throw new GpuLimitError(`matmul '${variant}' needs ${sharedBytes} bytes of workgroup storage; this device grants ${caps.limits.maxComputeWorkgroupStorageSize}`);
    }
    // Subgroup shuffles stay within a lane group only if every subgroup holds whole lane groups.
    const subgroups = caps.features.subgroups && caps.subgroupMinSize >= lanes && lanes > 1;
    const shaderF16 = dtype === 'f16' && caps.features.shaderF16;
    const common = { LANES: lanes, ...weightDefines(dtype, shaderF16), W_BINDING: 2, SUBGROUPS: subgroups, F16_MATH: f16Math, ENABLE_F16: shaderF16 || f16Math };
    const matvec: WgslDefines = { ...common, WG: wg, ROWS: MATVEC_ROWS, NORM: false };
    const tiled: WgslDefines = { ...common, RM: geo.rm, RN: geo.rn, MX: geo.mx, MY: my, GROUPS_PER_STEP: groupsPerStep, PAD: geo.pad };
    const pipelines = new Map<string, PreparedPipeline>();
    await Promise.all(
      [false, true].flatMap((vec4) => [
        rt.prepare(MATVEC_KERNEL, { ...matvec, VEC4: vec4 }).then((p) => pipelines.set(`matvec|${vec4}`, p)),
        ...(opts.fusedNorm ? [rt.prepare(MATVEC_NORM_KERNEL, { ...matvec, VEC4: vec4, NORM: true }).then((p) => pipelines.set(`matvec_norm|${vec4}`, p))] : []),
        rt.prepare(MATMUL_TILED_KERNEL, { ...tiled, VEC4: vec4 }).then((p) => pipelines.set(`tiled|${vec4}`, p)),
      ]),
    );
    const noBias = rt.createBuffer(16, GPUBufferUsage.STORAGE, 'matmul: no bias');
    return new MatmulKernels(dtype, f16Math, variant, { matvecWg: wg, tiledTm, tiledTn, groupsPerStep }, pipelines, { matvec, tiled }, noBias, rt);
  }

  /** The path `auto` takes for M rows. */
  static pathFor(M: number): Exclude<MatmulPath, 'auto'> {
    return M <= MATVEC_MAX_ROWS ? 'matvec' : 'tiled';
  }

  /** Record Y[:, yColOffset : yColOffset+N] = X W^T (+ bias) (+ Y when accumulating) into `step`. */
  record(step: StepRecorder, x: StorageArg, w: StorageArg, y: StorageArg, dims: MatmulDims, path: MatmulPath = 'auto'): void {
    const { M, N, K } = dims;
    const xStride = dims.xStride ?? K;
    const yStride = dims.yStride ?? N;
    const yColOffset = dims.yColOffset ?? 0;
    // Hot path (every matmul of every step): plain checks, no allocations.
    checkDim('M', M);
    checkDim('N', N);
    checkDim('K', K);
    checkDim('xStride', xStride);
    checkDim('yStride', yStride);
    checkDim('yColOffset', yColOffset);
    if (K === 0 || xStride < K || (!dims.swiglu && yStride < yColOffset + N)) {
      throw new GpuUsageError(`matmul: bad strides (K ${K}, xStride ${xStride}, yStride ${yStride}, yColOffset ${yColOffset}, N ${N})`);
    }
    // The q4 kernel finds the scales after N * K / 8 words of nibbles (u32 indices).
    if (this.dtype === 'q4' && (K % Q4_GROUP !== 0 || N * K > 0xffffffff)) {
      throw new GpuUsageError(`matmul: q4 weights need K a multiple of ${Q4_GROUP} and N * K < 2^32, got N ${N}, K ${K}`);
    }
    const use = path === 'auto' ? MatmulKernels.pathFor(M) : path;
    const vec4 = K % 4 === 0 && xStride % 4 === 0;
    if (dims.norm && !this.normByVec4) throw new GpuUsageError(`matmul: a fused RMSNorm needs kernels created with { fusedNorm: true }`);
    const prepared = dims.norm && use === 'matvec' ? this.normByVec4![vec4 ? 1 : 0] : this.byPath[(use === 'tiled' ? 2 : 0) + (vec4 ? 1 : 0)]!;
    if (dims.swiglu && (dims.accumulate || dims.bias || N % 2 !== 0 || yColOffset % 2 !== 0 || yStride < (yColOffset + N) / 2)) {
      throw new GpuUsageError(`matmul: swiglu needs even N and yColOffset, no bias or accumulate, yStride >= (yColOffset + N) / 2 (N ${N}, yColOffset ${yColOffset}, yStride ${yStride})`);
    }
    if (dims.norm && use !== 'matvec') throw new GpuUsageError(`matmul: a fused RMSNorm runs on the matvec path only (M ${M}); record rmsnorm, then the matmul`);
    const flags = (dims.accumulate ? 1 : 0) | (dims.bias ? 2 : 0) | (dims.swiglu ? 4 : 0) | (dims.norm ? 8 : 0);
    // The step copies params as it records, so one scratch array serves every dispatch.
    const params = this.params;
    params[0] = M;
    params[1] = N;
    params[2] = K;
    params[3] = xStride;
    params[4] = yStride;
    params[5] = yColOffset;
    params[6] = flags;
    this.paramsF32[7] = dims.norm ? dims.norm.eps : 0;
    const g = this.geometry;
    const workgroups: [number, number] =
      use === 'matvec' ? [Math.ceil(N / (g.matvecWg / (this.defines.matvec.LANES as number))), Math.ceil(M / MATVEC_ROWS)] : [Math.ceil(N / g.tiledTn), Math.ceil(M / g.tiledTm)];
    const bias = dims.bias ?? this.noBias;
    const storage = dims.norm && use === 'matvec' ? [x, w, y, bias, dims.norm.weight] : [x, w, y, bias];
    step.dispatch(prepared, params, storage, workgroups, () => `${use} ${M}x${N}x${K} ${this.dtype}${this.f16Math ? ' f16-math' : ''}`);
  }
}
