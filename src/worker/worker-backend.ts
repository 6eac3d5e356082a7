// The page side of the worker: the EngineBackend calls, forwarded through comlink; a
// MessageChannel per request carries its events back. Errors keep their typed names.

import * as Comlink from 'comlink';
import type { EngineBackend } from '../host/backend.js';
import { fromWire, toWire } from '../host/wire.js';
import type { HostLoadOptions, LoadProgress, ModelInfo, StreamEvent } from '../host/protocol.js';
import type { ThrownWire, WorkerApi } from './engine-worker.js';

/** A comlink-thrown error rebuilt as its typed class: the worker throws errors in wire form. */
function typed(e: unknown): Error {
  if (typeof e === 'object' && e !== null && 'webslo_wire_error' in e) return fromWire((e as ThrownWire).webslo_wire_error);
  if (e instanceof Error || (typeof e === 'object' && e !== null && 'message' in e)) {
    const o = e as { name?: unknown; message?: unknown; param?: unknown; app?: unknown };
    return fromWire({ name: String(o.name ?? 'Error'), message: String(o.message), ...(typeof o.param === 'string' ? { param: o.param } : {}), ...(typeof o.app === 'string' ? { app: o.app } : {}) });
  }
  return new Error(String(e));
}

async function call<T>(p: Promise<T>): Promise<T> {
  try {
    return await p;
  } catch (e) {
    throw typed(e);
  }
}

export async function workerBackend(worker: Worker, options: HostLoadOptions, onProgress?: (p: LoadProgress) => void): Promise<{ backend: EngineBackend; info: ModelInfo }> {
  const remote = Comlink.wrap<WorkerApi>(worker);
  // A worker that fails to load (a 404, a blocked script) never answers comlink: race its error event.
  let onError: (ev: ErrorEvent) => void = () => {};
  const crashed = new Promise<never>((_, reject) => {
    onError = (ev) => reject(new Error(`the engine worker failed to start: ${ev.message || 'its script did not load'} (is webslo's lib/worker.js served beside lib/index.js?)`));
    worker.addEventListener('error', onError);
  });
  let info: ModelInfo;
  try {
    info = await Promise.race([call(remote.load(options, onProgress ? Comlink.proxy(onProgress) : undefined)), crashed]);
  } finally {
    worker.removeEventListener('error', onError);
  }
  let terminated = false;
  const backend: EngineBackend = {
    info: async () => info,
    registerApp: (name, slo) => call(remote.registerApp(name, slo)),
    generate(req, onEvent) {
      if (terminated) {
        onEvent({ type: 'error', error: { name: 'EngineClosedError', message: 'the engine was unloaded; create a new engine (createEngine) to continue' } });
        return;
      }
      const channel = new MessageChannel();
      channel.port1.onmessage = (m: MessageEvent<StreamEvent>) => {
        onEvent(m.data);
        if (m.data.type === 'done' || m.data.type === 'error') channel.port1.close();
      };
      remote.generate(req, Comlink.transfer(channel.port2, [channel.port2])).catch((e: unknown) => {
        onEvent({ type: 'error', error: toWire(typed(e)) });
        channel.port1.close();
      });
    },
    cancel(id) {
      if (!terminated) void remote.cancel(id).catch(() => {});
    },
    stats: () => call(remote.stats()),
    exportProfile: () => call(remote.exportProfile()),
    setScheduler: (name) => call(remote.setScheduler(name)),
    async unload() {
      if (terminated) return;
      await call(remote.unload());
      terminated = true;
      remote[Comlink.releaseProxy]();
      worker.terminate();
    },
    destroyDevice: () => call(remote.destroyDevice()),
  };
  return { backend, info };
}
