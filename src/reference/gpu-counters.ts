// Counts a GPUDevice's object creation and submits by wrapping the methods on the instance (the
// runtime's own counters miss what goes around it): command encoders, queue submits, buffers, bind
// groups, writeBuffer calls. Used by the step-overhead test and bench/step-overhead.ts.

export interface GpuCallCounts {
  commandEncoders: number;
  submits: number;
  buffers: number;
  bindGroups: number;
  writeBuffers: number;
}

export interface GpuCallCounter {
  /** Counts since creation (or the last reset). */
  readonly counts: Readonly<GpuCallCounts>;
  reset(): void;
  /** Put the original methods back. */
  restore(): void;
}

export function zeroCounts(): GpuCallCounts {
  return { commandEncoders: 0, submits: 0, buffers: 0, bindGroups: 0, writeBuffers: 0 };
}

/** Optional hooks around queue.submit (the bench times the call itself). */
export interface CounterHooks {
  beforeSubmit?: () => void;
  afterSubmit?: () => void;
}

export function countGpuCalls(device: GPUDevice, hooks: CounterHooks = {}): GpuCallCounter {
  const counts = zeroCounts();
  const queue = device.queue;
  const orig = {
    createCommandEncoder: device.createCommandEncoder,
    createBuffer: device.createBuffer,
    createBindGroup: device.createBindGroup,
    submit: queue.submit,
    writeBuffer: queue.writeBuffer,
  };
  device.createCommandEncoder = function (this: GPUDevice, d?: GPUCommandEncoderDescriptor) {
    counts.commandEncoders++;
    return orig.createCommandEncoder.call(this, d);
  };
  device.createBuffer = function (this: GPUDevice, d: GPUBufferDescriptor) {
    counts.buffers++;
    return orig.createBuffer.call(this, d);
  };
  device.createBindGroup = function (this: GPUDevice, d: GPUBindGroupDescriptor) {
    counts.bindGroups++;
    return orig.createBindGroup.call(this, d);
  };
  queue.submit = function (this: GPUQueue, buffers: Iterable<GPUCommandBuffer>) {
    counts.submits++;
    hooks.beforeSubmit?.();
    orig.submit.call(this, buffers);
    hooks.afterSubmit?.();
  };
  queue.writeBuffer = function (this: GPUQueue, ...a: Parameters<GPUQueue['writeBuffer']>) {
    counts.writeBuffers++;
    return orig.writeBuffer.apply(this, a);
  };
  return {
    counts,
    reset: () => Object.assign(counts, zeroCounts()),
    restore: () => {
      device.createCommandEncoder = orig.createCommandEncoder;
      device.createBuffer = orig.createBuffer;
      device.createBindGroup = orig.createBindGroup;
      queue.submit = orig.submit;
      queue.writeBuffer = orig.writeBuffer;
    },
  };
}
