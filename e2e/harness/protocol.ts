// What the kernel worker reports to the harness page, and the page to the Playwright specs
// (through window.__harnessResult). Plain data only: it crosses postMessage and page.evaluate.

import type { GpuAdapterDescription, GpuFeatures } from '../../src/gpu/index.js';
import type { WeightDType } from '../../src/kernels/matmul.js';

export interface MatmulCase {
  M: number;
  N: number;
  K: number;
}

export interface MatmulCaseResult extends MatmulCase {
  dtype: WeightDType;
  /** M * N outputs compared. */
  outputs: number;
  /** max |reference| over the outputs: shows the outputs are not trivially zero. */
  maxAbsReference: number;
  /** max |gpu - reference| over both paths. */
  maxAbsError: number;
  /** max |gpu - reference| / matmulErrorBound, per path; <= 1 is the contract. */
  matvecBoundRatio: number;
  tiledBoundRatio: number;
  /** Outputs whose float32 bits differ between the matvec and the tiled path (0 is the contract). */
  bitwiseMismatches: number;
  bitwiseEqual: boolean;
  /** One output, for a human reading the page: index 0 from each path and the reference. */
  sample: { matvec: number; tiled: number; reference: number };
  ms: number;
}

export interface HarnessSuccess {
  ok: true;
  /** Proves the checks ran off the main thread. */
  scope: 'worker' | 'window';
  adapter: GpuAdapterDescription;
  summary: string;
  features: GpuFeatures;
  subgroupMinSize: number;
  subgroupMaxSize: number;
  reduceLanes: number;
  cases: MatmulCaseResult[];
  /** Time spent in MatmulKernels.create (pipeline compilation: most of the run on SwiftShader). */
  compileMs: number;
  /** Uncaptured WebGPU errors during the run (validation, out of memory). */
  gpuErrors: string[];
  ms: number;
}

export interface HarnessFailure {
  ok: false;
  error: { name: string; message: string; stack?: string };
}

export type HarnessResult = HarnessSuccess | HarnessFailure;

/** The worker's API, called from the page through comlink. */
export interface KernelWorkerApi {
  runMatmulChecks(cases: readonly MatmulCase[]): Promise<HarnessResult>;
}

declare global {
  interface Window {
    /** Set by the harness page once the worker has answered (or failed). */
    __harnessResult?: HarnessResult;
  }
}
