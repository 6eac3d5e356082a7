// What the hub page exposes on window.__hub for e2e/hub.spec.ts. Plain data only: it crosses
// page.evaluate.

import type { CachedModel, HubLoadProgress } from '../../src/hub/index.js';

export interface HubLoadReport {
  /** Tensors loadModelFiles returned. */
  tensors: number;
  weightFiles: string[];
  architecture: string;
  /** Every progress event, in order. */
  events: HubLoadProgress[];
  ms: number;
}

/** A failure, with the typed error's name kept (classes do not survive page.evaluate). */
export interface HubFailure {
  error: { name: string; message: string };
}

export interface HubPageApi {
  /** loadModelFiles(cachedHubSource(model, { endpoint: origin + '/models', cache: browserCacheStore() })). */
  load(model: string): Promise<HubLoadReport | HubFailure>;
  list(): Promise<CachedModel[]>;
  remove(model: string): Promise<number>;
  /** Every key in the page's Cache API cache. */
  keys(): Promise<string[]>;
  /** Copies the cached files into the origin-private file system under `dir` and loads them from a directory handle. */
  loadFromDirectoryHandle(model: string, dir: string): Promise<HubLoadReport | HubFailure>;
}

declare global {
  interface Window {
    __hub?: HubPageApi;
  }
}
