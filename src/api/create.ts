// createEngine: load a model and start the engine. In a browser it runs in a Web Worker (the page's
// thread never runs a GPU step); in Node, or with `worker: false`, on the calling thread.

import { inProcessBackend } from '../host/backend.js';
import { Engine } from './engine.js';
import { spawnEngineWorker } from '../worker/spawn.js';
import type { HostLoadOptions, LoadProgress } from '../host/protocol.js';
import { parseQuantization } from '../model/quantize-q4.js';
import { checkLoadOptions } from '../host/options.js';
import type { DomWorker } from '../host/dom-types.js';

export interface CreateEngineOptions extends HostLoadOptions {
  onProgress?: (p: LoadProgress) => void;
  /**
   * Where the engine runs: a Web Worker by default in browsers; false for this thread (always in
   * Node); or a Worker you created from webslo's worker entry (`webslo/worker`) yourself.
   */
  worker?: boolean | DomWorker;
}

export async function createEngine(options: CreateEngineOptions): Promise<Engine> {
  const { onProgress, worker, ...load } = options;
  // Here as well as where the engine loads: a worker would hand back a plainer error.
  checkLoadOptions(load);
  parseQuantization(load.quantize);
  const useWorker = worker !== false && typeof Worker !== 'undefined';
  if (useWorker) {
    const { workerBackend } = await import('../worker/worker-backend.js');
    const w = worker instanceof Worker ? worker : spawnEngineWorker();
    try {
      const { backend, info } = await workerBackend(w, load, onProgress);
      return new Engine(backend, info);
    } catch (e) {
      w.terminate();
      throw e;
    }
  }
  const { EngineHost } = await import('../host/engine-host.js');
  const { nodePromptWorkerSpawner } = await import('../host/node-prompt-spawn.js');
  const host = await EngineHost.load(load, onProgress, await nodePromptWorkerSpawner());
  return new Engine(inProcessBackend(host), host.info());
}
