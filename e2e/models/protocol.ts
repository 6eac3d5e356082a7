// What the model worker reports to the models page, and the page to e2e/models.spec.ts (through
// window.__modelResult). Plain data only: it crosses postMessage and page.evaluate.

import type { GpuAdapterDescription, GpuFeatures } from '../../src/gpu/index.js';
import type { CaseComparison } from './compare.js';

export interface ModelRunRequest {
  /** A folder name under test/fixtures, served at /models/<model>/resolve/main/. */
  model: string;
  /** Which reference.json cases to run, by prompt length. */
  promptLengths: number[];
}

/** One file the loader asked the HTTP source for. */
export interface FileRead {
  file: string;
  /** Bytes received, or null when the server answered 404 (an optional file that is absent). */
  bytes: number | null;
  ms: number;
}

export interface CaseResult extends CaseComparison {
  /** prefill of the prompt with logits at every position (one or more steps). */
  prefillMs: number;
  /** RunnerSession.greedy: a fresh prefill plus 23 decode steps. */
  greedyMs: number;
}

export interface ModelSuccess {
  ok: true;
  /** Proves the model ran off the main thread. */
  scope: 'worker' | 'window';
  adapter: GpuAdapterDescription;
  summary: string;
  features: GpuFeatures;
  model: string;
  /** The base URL the HTTP source read from. */
  baseUrl: string;
  architecture: string;
  /** Weight dtypes as the safetensors file holds them (F32, F16, BF16). */
  weightDtypes: string[];
  vocabSize: number;
  numLayers: number;
  /** Every read of the model source, in order (config, generation config, tokenizer, weights, reference). */
  files: FileRead[];
  /** When the folder has a tokenizer: 'Hello world' encoded and decoded back. */
  tokenizer: { helloWorldIds: number[]; decoded: string } | null;
  /** loadModelFiles over HTTP (fetch + parse + validate). */
  loadMs: number;
  /** reference.json over HTTP and JSON.parse. */
  referenceMs: number;
  /** ModelRunner.create: weight upload and pipeline compilation (most of it on SwiftShader). */
  createMs: number;
  cases: CaseResult[];
  /** Uncaptured WebGPU errors during the run (validation, out of memory). */
  gpuErrors: string[];
  ms: number;
}

export interface ModelFailure {
  ok: false;
  model: string;
  error: { name: string; message: string; stack?: string };
}

export type ModelResult = ModelSuccess | ModelFailure;

/** The worker's API, called from the page through comlink. */
export interface ModelWorkerApi {
  runModel(request: ModelRunRequest): Promise<ModelResult>;
}

declare global {
  interface Window {
    /** Set by the models page once the worker has answered (or failed). */
    __modelResult?: ModelResult;
  }
}
