export * from './errors.js';
export * from './capabilities.js';
export { acquireDevice, getWebGpu, type AcquireOptions, type AcquiredDevice } from './device.js';
export { GpuRuntime, type RuntimeOptions } from './runtime.js';
export { StepRecorder, type KernelTiming, type Workgroups } from './step.js';
export { BufferPool, sizeClass, bufferId, type BufferPoolStats } from './buffers.js';
export { PipelineCache, type KernelSpec, type PreparedPipeline, type StorageAccess } from './pipelines.js';
export { BindGroupCache, ParamsPages, StepParams, type StorageArg, type StorageBinding } from './bind-groups.js';
export { preprocessWgsl, definesKey, type WgslDefines } from './wgsl.js';
