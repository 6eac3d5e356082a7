// webslo's public API: the same in browsers (the engine in a Web Worker) and Node (in-process, on
// the `webgpu` package's Dawn).

export { createEngine, type CreateEngineOptions } from './api/create.js';
export { Engine, DEFAULT_APP, type AppHandle, type ChatParams, type ChunkStream, type CompletionParams, type RequestOptions } from './api/engine.js';
export { engineFetch, type FetchLike, type OpenAiServing } from './api/fetch-handler.js';
export { Router, RemoteReplicaError, type RemoteReplicaConfig, type RouterOptions, type RouterStats, type RouteStats, type ReplicaHealthStats } from './api/router.js';
export {
  AbortError,
  ChatTemplateError,
  DeviceLostError,
  EngineClosedError,
  EngineError,
  InvalidRequestError,
  PromptTooLongError,
  RemoteEngineError,
  RequestDeclinedError,
  SloError,
} from './host/wire.js';
// ModelLoadError: the base class of every model-loading error (instanceof catches them all).
export { ModelError as ModelLoadError, ModelConfigError, ModelFileError, NonFiniteWeightError, SafetensorsError, TokenizerError, UnsupportedModelError } from './model/errors.js';
export { CacheQuotaError, deleteCachedModel, listCachedModels, type CachedModel } from './hub/index.js';
export { ModelSourceError } from './hub/errors.js';
export { GpuUnavailableError, GpuDeviceLostError } from './gpu/errors.js';
export { QuantizeError } from './model/quantize-q4.js';
export { PerfProfileError, type PerformanceProfile } from './scheduler/perf-model.js';
export { EngineOptionError } from './host/options.js';
export type { AppSloInput, EngineStats, HostLoadOptions, LoadProgress, ModelInfo, ModelSpec, SchedulerName } from './host/protocol.js';
export { SCHEDULER_LABELS, SCHEDULER_NAMES } from './scheduler/names.js';
export type { AppStats, Histogram, LatencySummary, StepRecord } from './engine/stats.js';
export type * from './openai/types.js';
