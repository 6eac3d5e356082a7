// Where the engine runs, as the page-side facade sees it. The in-process backend calls an
// EngineHost directly (Node, tests); the worker backend (src/worker) forwards the same calls over
// comlink and streams each request's events over its own MessagePort.

import type { PerformanceProfile } from '../scheduler/perf-model.js';
import type { EngineHost } from './engine-host.js';
import type { AppSloInput, EngineStats, HostRequest, ModelInfo, SchedulerName, StreamEvent } from './protocol.js';

export interface EngineBackend {
  info(): Promise<ModelInfo>;
  registerApp(name: string, slo: AppSloInput): Promise<void>;
  /** Start a request; its events arrive on `onEvent` until 'done' or 'error'. */
  generate(req: HostRequest, onEvent: (ev: StreamEvent) => void): void;
  cancel(requestId: string): void;
  stats(): Promise<EngineStats>;
  /** The planner's performance model now (startup calibration or given profile, refitted online). */
  exportProfile(): Promise<PerformanceProfile>;
  setScheduler(name: SchedulerName): Promise<void>;
  unload(): Promise<void>;
  /** Tests: destroy the GPU device under the engine. */
  destroyDevice(): Promise<void>;
}

export function inProcessBackend(host: EngineHost): EngineBackend {
  return {
    info: async () => host.info(),
    registerApp: async (name, slo) => host.registerApp(name, slo),
    generate: (req, onEvent) => host.generate(req, onEvent),
    cancel: (id) => host.cancel(id),
    stats: async () => host.stats(),
    exportProfile: async () => host.exportProfile(),
    setScheduler: async (name) => host.setScheduler(name),
    unload: () => host.unload(),
    destroyDevice: async () => host.destroyDevice(),
  };
}
