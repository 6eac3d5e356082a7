// Module worker: loads one fixture model over HTTP from the page's own server, exactly as a user's
// model would come from the hub (hubSource -> httpSource -> loadModelFiles), runs it with
// ModelRunner on this worker's WebGPU device and compares it with HF transformers' reference.json,
// fetched from the same folder. The Node twin is test/gpu/models.test.ts.

import { expose } from 'comlink';
import { describeCapabilities, GpuRuntime } from '../../src/gpu/index.js';
import { loadModelFiles } from '../../src/model/load.js';
import { hubSource, type ModelSource } from '../../src/model/source.js';
import { ModelRunner } from '../../src/runner/model-runner.js';
import { RunnerSession } from '../../src/runner/session.js';
import { TextTokenizer } from '../../src/tokenizer/tokenizer.js';
import { compareCase, type ReferenceCase } from './compare.js';
import type { CaseResult, FileRead, ModelResult, ModelRunRequest, ModelWorkerApi } from './protocol.js';

/** Where the Vite server (e2e/fixture-server.ts) serves test/fixtures, hub layout. */
const ENDPOINT = `${self.location.origin}/models`;

/** Records every read, so the spec can check what came over the wire and how big it was. */
function recorded(source: ModelSource, log: FileRead[]): ModelSource {
  return {
    describe: () => source.describe(),
    async read(file) {
      const started = performance.now();
      const bytes = await source.read(file);
      log.push({ file, bytes: bytes === null ? null : bytes.byteLength, ms: performance.now() - started });
      return bytes;
    },
  };
}

async function readReference(source: ModelSource): Promise<ReferenceCase[]> {
  const bytes = await source.read('reference.json');
  if (bytes === null) throw new Error(`${source.describe()}/reference.json: not found`);
  const json = JSON.parse(new TextDecoder().decode(bytes)) as { cases?: ReferenceCase[] };
  if (!Array.isArray(json.cases)) throw new Error(`${source.describe()}/reference.json: no 'cases' list`);
  return json.cases;
}

async function runCase(runner: ModelRunner, session: RunnerSession, ref: ReferenceCase): Promise<CaseResult> {
  const V = runner.config.vocabSize;
  const prefillStart = performance.now();
  const id = session.newSequence();
  const logits = new Float32Array(ref.prompt.length * V);
  try {
    const results = await session.prefill(id, ref.prompt, runner.maxTokens, { logits: true, outputs: 'all' });
    let o = 0;
    for (const r of results) {
      if (!r.logits) throw new Error('prefill returned no logits');
      logits.set(r.logits, o);
      o += r.logits.length;
    }
    if (o !== logits.length) throw new Error(`prefill returned ${o / V} logit rows for ${ref.prompt.length} tokens`);
  } finally {
    session.free(id);
  }
  const prefillMs = performance.now() - prefillStart;

  const greedyStart = performance.now();
  const greedy = await session.greedy(ref.prompt, ref.greedy.length);
  const greedyMs = performance.now() - greedyStart;

  return { ...compareCase(ref, { logits, vocab: V, greedy }), prefillMs, greedyMs };
}

async function runModel({ model, promptLengths }: ModelRunRequest): Promise<ModelResult> {
  const started = performance.now();
  let rt: GpuRuntime | undefined;
  let runner: ModelRunner | undefined;
  try {
    const files: FileRead[] = [];
    const source = recorded(hubSource(model, { endpoint: ENDPOINT }), files);

    const loadStart = performance.now();
    const loaded = await loadModelFiles(source);
    const loadMs = performance.now() - loadStart;

    const refStart = performance.now();
    const reference = await readReference(source);
    const referenceMs = performance.now() - refStart;
    const cases = promptLengths.map((len) => {
      const c = reference.find((r) => r.prompt.length === len);
      if (!c) throw new Error(`${model}/reference.json has no prompt of ${len} tokens (has ${reference.map((r) => r.prompt.length).join(', ')})`);
      return c;
    });

    let tokenizer: { helloWorldIds: number[]; decoded: string } | null = null;
    if (loaded.tokenizerJson !== null) {
      const tok = new TextTokenizer(loaded.tokenizerJson, loaded.tokenizerConfig);
      const helloWorldIds = tok.encode('Hello world');
      tokenizer = { helloWorldIds, decoded: tok.decode(helloWorldIds, { skipSpecialTokens: true }) };
    }

    rt = await GpuRuntime.create();
    const createStart = performance.now();
    // As test/gpu/models.test.ts: NaN in every unwritten KV slot, so a stale read cannot pass.
    runner = await ModelRunner.create(rt, loaded, { kvPages: 128, poisonKv: true });
    const session = new RunnerSession(runner, { poisonFreedPages: true });
    const createMs = performance.now() - createStart;

    const results: CaseResult[] = [];
    for (const c of cases) results.push(await runCase(runner, session, c));

    const caps = rt.capabilities;
    return {
      ok: true,
      scope: typeof document === 'undefined' ? 'worker' : 'window',
      adapter: caps.adapter,
      summary: describeCapabilities(caps),
      features: caps.features,
      model,
      baseUrl: source.describe(),
      architecture: loaded.config.architecture,
      weightDtypes: [...new Set([...loaded.tensors.values()].map((t) => t.dtype))].sort(),
      vocabSize: loaded.config.vocabSize,
      numLayers: runner.numLayers,
      files,
      tokenizer,
      loadMs,
      referenceMs,
      createMs,
      cases: results,
      gpuErrors: rt.takeErrors(),
      ms: performance.now() - started,
    };
  } catch (e) {
    // Typed errors lose their class over postMessage; keep name and message as data.
    const error = e instanceof Error ? e : new Error(String(e));
    return { ok: false, model, error: { name: error.name, message: error.message, ...(error.stack ? { stack: error.stack } : {}) } };
  } finally {
    runner?.destroy();
    rt?.destroy();
  }
}

const api: ModelWorkerApi = { runModel };
expose(api);
