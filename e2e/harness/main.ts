// Harness page: start the kernel worker, run the checks there, publish the result on
// window.__harnessResult and in the DOM for the Playwright spec.

import { wrap } from 'comlink';
import { HARNESS_CASES } from './cases.js';
import type { HarnessResult, KernelWorkerApi } from './protocol.js';

const status = document.getElementById('status')!;
const output = document.getElementById('result')!;

function publish(result: HarnessResult): void {
  window.__harnessResult = result;
  output.textContent = JSON.stringify(result, null, 2);
  status.dataset.state = result.ok ? 'done' : 'failed';
  status.textContent = result.ok
    ? `Done: ${result.cases.length} cases in ${Math.round(result.ms)} ms (compiling ${Math.round(result.compileMs)} ms) on ${result.summary}`
    : `Failed: ${result.error.name}: ${result.error.message}`;
}

function failure(error: unknown): HarnessResult {
  const e = error instanceof Error ? error : new Error(String(error));
  return { ok: false, error: { name: e.name, message: e.message, ...(e.stack ? { stack: e.stack } : {}) } };
}

async function run(): Promise<HarnessResult> {
  const worker = new Worker(new URL('./kernel-worker.ts', import.meta.url), { type: 'module', name: 'webslo-kernels' });
  // A worker that fails to load or throws at top level never answers a comlink call: race its
  // error event so the page reports a failure instead of leaving the spec waiting.
  const crashed = new Promise<never>((_, reject) => {
    worker.addEventListener('error', (ev) => reject(new Error(`kernel worker error: ${ev.message || 'failed to load'}`)));
    worker.addEventListener('messageerror', () => reject(new Error('kernel worker sent a message that could not be read')));
  });
  const api = wrap<KernelWorkerApi>(worker);
  try {
    return await Promise.race([api.runMatmulChecks(HARNESS_CASES), crashed]);
  } finally {
    worker.terminate();
  }
}

run().then(publish, (error: unknown) => publish(failure(error)));
