// What a reader can do about each typed GPU error. The errors' own messages say what went wrong;
// this adds the next step, in words for someone who just opened the page.

import {
  GpuDeviceLostError,
  GpuLimitError,
  GpuTimeoutError,
  GpuUnavailableError,
  ShaderError,
} from '../gpu/index.js';

export interface ErrorReport {
  name: string;
  message: string;
  help: string;
}

export function explainError(error: unknown, secureContext: boolean): ErrorReport {
  const name = error instanceof Error ? error.name : 'Error';
  const message = error instanceof Error ? error.message : String(error);
  return { name, message, help: helpFor(error, secureContext) };
}

function helpFor(error: unknown, secureContext: boolean): string {
  if (!secureContext) {
    // navigator.gpu only exists in secure contexts; a LAN address over http is the usual cause.
    return 'WebGPU needs a secure context: open this page over https, or from localhost / 127.0.0.1.';
  }
  if (error instanceof GpuUnavailableError) {
    return 'Use a browser with WebGPU (a recent Chrome or Edge, Firefox 141+, Safari 26+) with hardware acceleration on. On Linux, Chromium needs --enable-unsafe-webgpu; chrome://gpu shows what it found.';
  }
  if (error instanceof GpuTimeoutError) {
    return 'The browser did not answer a WebGPU request. Reload the page; if it happens again, restart the browser, update the GPU driver, and remove experimental GPU flags (for example --use-angle=swiftshader together with --enable-features=Vulkan).';
  }
  if (error instanceof GpuDeviceLostError) {
    return 'The GPU device went away (a driver reset, or the tab used too much GPU memory). Reload the page.';
  }
  if (error instanceof GpuLimitError) {
    return 'This GPU lacks a feature or limit webslo needs. Try another browser or GPU (on laptops, the high-performance one).';
  }
  if (error instanceof ShaderError) {
    return 'A webslo kernel failed to compile on this GPU. Please report it with the adapter shown by chrome://gpu.';
  }
  return 'Something unexpected failed. Reload the page; the browser console has the details.';
}
