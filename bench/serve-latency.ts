// What `webslo serve`'s HTTP layer adds over calling the engine in-process: `npm run bench:serve`.
// One engine (tiny-qwen2, the paper's step times for the planner) and its HTTP server in this
// process, on 127.0.0.1; the same requests alternate between `engine.chat.completions.create` and
// `fetch` to the server, so both see the same GPU and the same load:
//  per request: a 1-token greedy chat completion, non-streamed; added = HTTP - in-process, p50/p99
//  over --rounds pairs (goal: under 1 ms at p50). Not measured: the added time per streamed token
//  (an SSE reader gets several events per read, and the span from first to last token came out
//  shorter over HTTP than in-process, i.e. the measure was noise; it needs the server's own clock).
// The client and the server share this process's event loop (as a local client would share the
// machine). Absolute times depend on the adapter; the differences are host-side work.

import { createEngine } from '../src/index.js';
import { startHttpServer } from '../src/cli/http-server.js';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { PROFILES } from '../src/sim/profiles.js';

const q = (xs: number[], p: number): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(p * s.length))]!;
};

export async function main(args: string[]): Promise<void> {
  const at = args.indexOf('--rounds');
  const rounds = at >= 0 ? Number(args[at + 1]) : 200;
  const model = fileURLToPath(new URL('../test/fixtures/tiny-qwen2', import.meta.url));
  // The paper's step times, relabelled for this model's depth (a profile holds for one model).
  const layers = (JSON.parse(readFileSync(`${model}/config.json`, 'utf8')) as { num_hidden_layers: number }).num_hidden_layers;
  const engine = await createEngine({ model, worker: false, cache: false, profile: { ...(PROFILES.paper as object), layers }, kvCacheBytes: 8 << 20 });
  engine.app('bench', { ttftMs: 600_000, tpotMs: 60_000 });
  const server = await startHttpServer(engine, { host: '127.0.0.1', port: 0, apiKeys: [], maxBodyBytes: 1 << 20 });
  const messages = [{ role: 'user' as const, content: 'Hello there' }];
  const body = (extra: object): string => JSON.stringify({ model: 'x', app: 'bench', messages, ...extra });
  try {
    const direct = async (): Promise<number> => {
      const t0 = performance.now();
      await engine.chat.completions.create({ app: 'bench', messages, max_tokens: 1 });
      return performance.now() - t0;
    };
    const http = async (): Promise<number> => {
      const t0 = performance.now();
      const r = await fetch(`${server.url}/v1/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: body({ max_tokens: 1 }) });
      await r.json();
      return performance.now() - t0;
    };
    // Warm-up: pipelines, V8, keep-alive connections.
    for (let i = 0; i < 20; i++) {
      await direct();
      await http();
    }
    const added: number[] = [];
    const base: number[] = [];
    for (let i = 0; i < rounds; i++) {
      const a = await direct();
      const b = await http();
      base.push(a);
      added.push(b - a);
    }

    const lines = [
      `| measure | in-process | added by HTTP (p50) | added (p99) |`,
      `|---|---:|---:|---:|`,
      `| 1-token chat completion (${rounds} pairs) | ${q(base, 0.5).toFixed(2)} ms p50 | ${q(added, 0.5).toFixed(3)} ms | ${q(added, 0.99).toFixed(3)} ms |`,
    ];
    console.log(`webslo serve vs in-process, ${engine.info.adapter}, Node ${process.version}\n`);
    console.log(lines.join('\n'));
  } finally {
    await server.close();
    await engine.unload();
  }
}
