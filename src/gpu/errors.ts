// Typed errors of the GPU layer. Each names what was asked and what would have been valid, so a
// caller (and a user reading a message in the demo) knows what to change.

export class GpuError extends Error {
  // Fixed names (not new.target.name): minifiers rename classes in apps that bundle webslo.
  override name = 'GpuError';
}

/** No WebGPU implementation or no adapter: nothing to run on. */
export class GpuUnavailableError extends GpuError {
  override name = 'GpuUnavailableError';
}

/** requestAdapter/requestDevice did not settle in time (a bad flag set can hang them forever). */
export class GpuTimeoutError extends GpuError {
  override name = 'GpuTimeoutError';

  constructor(
    readonly step: 'requestAdapter' | 'requestDevice' | 'mapAsync' | 'onSubmittedWorkDone',
    readonly timeoutMs: number,
  ) {
    super(`${step} did not settle within ${timeoutMs} ms; check the WebGPU flags and driver`);
  }
}

/** The device was lost (driver reset, out of memory, destroy()); every later use throws this. */
export class GpuDeviceLostError extends GpuError {
  override name = 'GpuDeviceLostError';

  constructor(
    readonly reason: string,
    readonly detail: string,
  ) {
    super(`the GPU device was lost (${reason})${detail ? `: ${detail}` : ''}`);
  }
}

/** A request the granted limits cannot satisfy (a buffer or binding too large, a feature absent). */
export class GpuLimitError extends GpuError {
  override name = 'GpuLimitError';
}

/** WGSL that failed to preprocess or compile; carries the kernel name and the compiler's messages. */
export class ShaderError extends GpuError {
  override name = 'ShaderError';

  constructor(
    readonly kernel: string,
    message: string,
  ) {
    super(`kernel '${kernel}': ${message}`);
  }
}

/** A bad argument to a GPU-layer call (shape mismatch, wrong dtype, a released buffer). */
export class GpuUsageError extends GpuError {
  override name = 'GpuUsageError';
}
