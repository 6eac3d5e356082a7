// Models page: /e2e/models/index.html?model=<fixture>&lengths=1,5,37 starts the model worker, runs
// that fixture there, and publishes the result on window.__modelResult and in the DOM for
// e2e/models.spec.ts.

import { wrap } from 'comlink';
import type { ModelResult, ModelRunRequest, ModelWorkerApi } from './protocol.js';

const status = document.getElementById('status')!;
const output = document.getElementById('result')!;

function describeResult(r: ModelResult): string {
  if (!r.ok) return `Failed: ${r.model}: ${r.error.name}: ${r.error.message}`;
  const worst = Math.max(...r.cases.map((c) => c.maxAbsError));
  return `Done: ${r.model}, ${r.cases.length} prompts, max |logit - HF| ${worst.toExponential(2)}, in ${Math.round(r.ms)} ms on ${r.summary}`;
}

function publish(result: ModelResult): void {
  window.__modelResult = result;
  output.textContent = JSON.stringify(result, null, 2);
  status.dataset.state = result.ok ? 'done' : 'failed';
  status.textContent = describeResult(result);
}

function request(): ModelRunRequest {
  const params = new URLSearchParams(location.search);
  const model = params.get('model');
  if (!model) throw new Error("no ?model=<fixture folder> in the page's URL");
  const lengths = (params.get('lengths') ?? '1,5,37').split(',').map(Number);
  if (!lengths.every((n) => Number.isInteger(n) && n > 0)) throw new Error(`?lengths=${params.get('lengths')} is not a list of prompt lengths`);
  return { model, promptLengths: lengths };
}

async function run(req: ModelRunRequest): Promise<ModelResult> {
  const worker = new Worker(new URL('./model-worker.ts', import.meta.url), { type: 'module', name: 'webslo-models' });
  // A worker that fails to load or throws at top level never answers a comlink call: race its
  // error event so the page reports a failure instead of leaving the spec waiting.
  const crashed = new Promise<never>((_, reject) => {
    worker.addEventListener('error', (ev) => reject(new Error(`model worker error: ${ev.message || 'failed to load'}`)));
    worker.addEventListener('messageerror', () => reject(new Error('model worker sent a message that could not be read')));
  });
  const api = wrap<ModelWorkerApi>(worker);
  try {
    return await Promise.race([api.runModel(req), crashed]);
  } finally {
    worker.terminate();
  }
}

function failure(model: string, error: unknown): ModelResult {
  const e = error instanceof Error ? error : new Error(String(error));
  return { ok: false, model, error: { name: e.name, message: e.message, ...(e.stack ? { stack: e.stack } : {}) } };
}

let req: ModelRunRequest | undefined;
try {
  req = request();
  status.textContent = `Running ${req.model} (prompts of ${req.promptLengths.join(', ')} tokens)…`;
} catch (e) {
  publish(failure('?', e));
}
if (req) {
  const { model } = req;
  run(req).then(publish, (error: unknown) => publish(failure(model, error)));
}
