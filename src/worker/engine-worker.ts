// The Web Worker the engine runs in. Comlink carries the control plane (load, apps, stats, cancel,
// unload); each request's events are pushed over the MessagePort it came with, so tokens stream
// without a round trip per token. The same script, started under PROMPT_WORKER_NAME by the engine
// worker itself, is its prompt worker (host/prompt-encoder.ts): chat templates and tokenization off
// the step loop, with no second file for a bundler to find.

import * as Comlink from 'comlink';
import { EngineHost } from '../host/engine-host.js';
import { toWire } from '../host/wire.js';
import { PROMPT_WORKER_NAME, servePromptEncoder, type MessagePortLike, type PromptWorkerHandle } from '../host/prompt-encoder.js';
import type { AppSloInput, HostLoadOptions, HostRequest, LoadProgress, ModelInfo, SchedulerName, StreamEvent, WireError } from '../host/protocol.js';

let host: EngineHost | null = null;

function loaded(): EngineHost {
  if (!host) throw new Error('the engine is not loaded yet');
  return host;
}

export const workerApi = {
  async load(options: HostLoadOptions, onProgress?: (p: LoadProgress) => void): Promise<ModelInfo> {
    if (host) throw new Error('this worker already holds an engine: create a new engine for another model');
    host = await EngineHost.load(options, (p) => void onProgress?.(p), typeof Worker === 'undefined' ? undefined : spawnPromptWorker);
    return host.info();
  },
  registerApp(name: string, slo: AppSloInput): void {
    loaded().registerApp(name, slo);
  },
  generate(req: HostRequest, port: MessagePort): void {
    const h = host;
    const send = (ev: StreamEvent): void => {
      port.postMessage(ev);
      if (ev.type === 'done' || ev.type === 'error') port.close();
    };
    if (!h) return send({ type: 'error', error: toWire(new Error('the engine is not loaded yet')) });
    h.generate(req, send);
  },
  cancel(requestId: string): void {
    host?.cancel(requestId);
  },
  stats() {
    return loaded().stats();
  },
  exportProfile() {
    return loaded().exportProfile();
  },
  setScheduler(name: SchedulerName): void {
    loaded().setScheduler(name);
  },
  async unload(): Promise<void> {
    await host?.unload();
  },
  destroyDevice(): void {
    loaded().destroyDevice();
  },
};

export type WorkerApi = typeof workerApi;

/**
 * What a control-plane call throws across the boundary: comlink would send an Error as its name,
 * message and stack only, so the error goes as its wire form (a plain object, structured-cloned
 * whole) and the page rebuilds the typed class from it (worker-backend.ts).
 */
export interface ThrownWire {
  webslo_wire_error: WireError;
}

function guarded<T extends Record<string, (...args: never[]) => unknown>>(api: T): T {
  const out: Record<string, unknown> = {};
  for (const [name, fn] of Object.entries(api)) {
    out[name] = (...args: never[]): unknown => {
      const thrown = (e: unknown): never => {
        // A plain object on purpose: comlink sends an Error as name, message and stack only.
        // eslint-disable-next-line @typescript-eslint/only-throw-error
        throw { webslo_wire_error: toWire(e) } satisfies ThrownWire;
      };
      try {
        const r = fn(...args);
        return r instanceof Promise ? r.catch(thrown) : r;
      } catch (e) {
        return thrown(e);
      }
    };
  }
  return out as T;
}

/** A worker running this script as the prompt worker; where workers cannot start workers, none. */
function spawnPromptWorker(): PromptWorkerHandle {
  const w = new Worker(new URL(import.meta.url), { type: 'module', name: PROMPT_WORKER_NAME });
  return {
    postMessage: (m) => w.postMessage(m),
    addEventListener: (type, listener) => w.addEventListener(type, listener),
    onFailure: (listener) =>
      w.addEventListener('error', (ev) => {
        // Handled here: not re-reported in this worker's scope (nor at the page's Worker).
        ev.preventDefault();
        listener(ev.message || 'the prompt worker failed to start');
      }),
    terminate: () => w.terminate(),
  };
}

if ((globalThis as { name?: string }).name === PROMPT_WORKER_NAME) servePromptEncoder(globalThis as unknown as MessagePortLike);
else Comlink.expose(guarded(workerApi));
