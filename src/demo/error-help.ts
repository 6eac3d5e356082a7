// What a reader can do about each typed GPU error. The errors' own messages say what went wrong;
// this adds the next step, in words for someone who just opened the page. Errors from the engine's
// worker cross back with their name only (RemoteEngineError), so names are matched as well as classes.

import { GpuDeviceLostError, GpuLimitError, GpuTimeoutError, GpuUnavailableError, ShaderError } from '../gpu/index.js';

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

const is = (error: unknown, cls: abstract new (...args: never[]) => Error, name: string): boolean => error instanceof cls || (error instanceof Error && error.name === name);

function helpFor(error: unknown, secureContext: boolean): string {
  const named = error instanceof Error ? error.name : '';
  if (!secureContext) {
    // navigator.gpu only exists in secure contexts; a LAN address over http is the usual cause.
    return 'WebGPU needs a secure context: open this page over https, or from localhost / 127.0.0.1.';
  }
  if (is(error, GpuUnavailableError, 'GpuUnavailableError')) {
    return 'Use a browser with WebGPU (a recent Chrome or Edge, Firefox 141+, Safari 26+) with hardware acceleration on. On Linux, Chromium needs --enable-unsafe-webgpu; chrome://gpu shows what it found.';
  }
  if (is(error, GpuTimeoutError, 'GpuTimeoutError')) {
    return 'The browser did not answer a WebGPU request. Reload the page; if it happens again, restart the browser, update the GPU driver, and remove experimental GPU flags (for example --use-angle=swiftshader together with --enable-features=Vulkan).';
  }
  if (is(error, GpuDeviceLostError, 'GpuDeviceLostError')) {
    return 'The GPU device went away (a driver reset, or the tab used too much GPU memory). Reload the page.';
  }
  if (is(error, GpuLimitError, 'GpuLimitError')) {
    return 'This GPU lacks a feature or limit webslo needs. Try another browser or GPU (on laptops, the high-performance one).';
  }
  if (is(error, ShaderError, 'ShaderError')) {
    return 'A webslo kernel failed to compile on this GPU. Please report it with the adapter shown by chrome://gpu.';
  }
  if (named === 'DeviceLostError') {
    return 'The GPU device went away (a driver reset, or the tab used too much GPU memory). Load the model again, or reload the page.';
  }
  if (['ModelFileError', 'ModelSourceError', 'HubError', 'CacheQuotaError'].includes(named) || /fetch|download|HTTP/i.test(error instanceof Error ? error.message : '')) {
    return 'The model could not be fetched: check the repo id and the endpoint, that you are online (the embedded demo model needs no network), and that the repo is public; or pick a local model folder.';
  }
  if (['ModelConfigError', 'SafetensorsError', 'UnsupportedModelError', 'TokenizerError', 'MissingTensorError', 'TensorShapeError'].includes(named)) {
    return 'webslo cannot run this model: it loads Llama, Mistral, Qwen2 and Qwen3 models with safetensors weights and a tokenizer.json. Pick another model.';
  }
  return 'Something unexpected failed. Reload the page; the browser console has the details.';
}
