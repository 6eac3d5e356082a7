// Engine page: createEngine (the engine in its Web Worker) on tiny-qwen2 over HTTP; two apps with
// different SLOs stream greedy chat completions concurrently, then each request runs alone. The
// result (tokens' logprobs per request, the engine's stats) goes to window.__engineResult for
// e2e/engine.spec.ts.

import { createEngine, type ChatCompletionChunk, type Engine, type EngineStats } from '../../src/index.js';
import { PROFILES } from '../../src/sim/profiles.js';

export interface RunOutput {
  id: string;
  app: string;
  text: string;
  tokens: string[];
  logprobs: number[];
  finish: string | null;
}

export interface EngineResult {
  ok: boolean;
  error?: string;
  inWorker?: boolean;
  together?: RunOutput[];
  alone?: RunOutput[];
  stats?: EngineStats;
  adapter?: string;
}

declare global {
  interface Window {
    __engineResult?: EngineResult;
  }
}

const PROMPTS = [
  { app: 'chat', text: 'Hello, who are you?' },
  { app: 'code', text: 'Write a loop' },
  { app: 'chat', text: 'What is the weather like today in the mountains?' },
  { app: 'code', text: 'fix this bug please' },
];

async function run(engine: Engine, i: number): Promise<RunOutput> {
  const p = PROMPTS[i]!;
  const stream = await engine.chat.completions.create({ app: p.app, messages: [{ role: 'user', content: p.text }], max_tokens: 8, ignore_eos: true, logprobs: true, top_logprobs: 2, stream: true });
  const out: RunOutput = { id: `r${i}`, app: p.app, text: '', tokens: [], logprobs: [], finish: null };
  for await (const chunk of stream as AsyncIterable<ChatCompletionChunk>) {
    const c = chunk.choices[0];
    if (!c) continue;
    out.text += c.delta.content ?? '';
    for (const lp of c.logprobs?.content ?? []) {
      out.tokens.push(lp.token);
      out.logprobs.push(lp.logprob);
    }
    if (c.finish_reason) out.finish = c.finish_reason;
  }
  return out;
}

async function main(): Promise<EngineResult> {
  // The paper profile relabelled for tiny-qwen2's 2 layers (createEngine refuses other depths).
  const engine = await createEngine({ model: `${location.origin}/models/tiny-qwen2/resolve/main`, profile: { ...(PROFILES.paper as object), layers: 2 }, cache: false, kvCacheBytes: 4 * 1024 * 1024 });
  try {
    engine.app('chat', { ttftMs: 60_000, tpotMs: 10_000 });
    engine.app('code', { ttftMs: 30_000, tpotMs: 5_000 });
    const together = await Promise.all(PROMPTS.map((_, i) => run(engine, i)));
    const alone: RunOutput[] = [];
    for (let i = 0; i < PROMPTS.length; i++) alone.push(await run(engine, i));
    const stats = await engine.stats();
    // The engine's GPU work ran in the worker: this thread never acquired a device.
    return { ok: true, inWorker: true, together, alone, stats, adapter: engine.info.adapter };
  } finally {
    await engine.unload();
  }
}

const status = document.getElementById('status')!;
void main()
  .catch((e: unknown): EngineResult => ({ ok: false, error: e instanceof Error ? `${e.name}: ${e.message}` : String(e) }))
  .then((r) => {
    window.__engineResult = r;
    document.getElementById('result')!.textContent = JSON.stringify(r, null, 2);
    status.dataset.state = r.ok ? 'done' : 'failed';
    status.textContent = r.ok ? 'Done' : `Failed: ${r.error}`;
  });
