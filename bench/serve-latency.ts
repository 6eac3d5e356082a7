// What `webslo serve`'s HTTP layer adds over calling the engine in-process: `npm run bench:serve`.
// One engine (tiny-qwen2, the paper's step times for the planner) and its HTTP server in this
// process, on 127.0.0.1. The engine the server answers from is wrapped so that each request's own
// engine time is known on the same clock as the client's: what HTTP adds is measured per request,
// not as the difference of two noisy GPU-bound requests.
//  per request: a 1-token greedy chat completion, non-streamed. added = the client's time from send
//    to parsed reply, minus the time the engine's create() took for that same request. The same is
//    measured for in-process calls through the wrapper (its own cost) and for Node's built-in fetch
//    as the client (undici, which costs more on the client side than node:http).
//    Beside it, the HTTP layer's own work: the same request to a second server in front of an
//    engine that answers at once with a fixed completion (here only, to isolate the server's code
//    from the real engine's effect on the event loop and the CPUs), interleaved with the others.
//  per streamed token: a streamed chat completion of --tokens tokens. added = when the client has
//    the token's SSE event in hand, minus when the engine's stream yielded the chunk on the server.
// p50 / p99 over --rounds requests after 20 warm-up ones. The client and the server share this
// process's event loop (as a local client would share the machine), and on lavapipe the GPU's work
// runs on the same 2 CPUs: absolute engine times depend on the adapter, the added ones are host work.
// The node:http path is also split into phases (Node's HTTP diagnostics channels), and the same
// request is sent from a client in its own process (durations reported over IPC, outside the timing).

import { request as httpRequest, Agent } from 'node:http';
import { spawn } from 'node:child_process';
import { subscribe } from 'node:diagnostics_channel';
import { createEngine, type ChatCompletionChunk, type ChunkStream, type Engine } from '../src/index.js';
import { startHttpServer } from '../src/cli/http-server.js';
import { fixtureWithPaperProfile, numberArg } from './fixture-engine.js';

const q = (xs: number[], p: number): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(p * s.length))]!;
};

/** The engine with chat.completions.create timed: the last call's start, end and `engineMs`, `yields` of a stream's chunks. */
function timedEngine(engine: Engine): { engine: Engine; last: { start: number; end: number; engineMs: number; yields: number[] } } {
  const last = { start: 0, end: 0, engineMs: 0, yields: [] as number[] };
  const create = async (params: never): Promise<unknown> => {
    const t0 = performance.now();
    last.start = t0;
    const result = (await engine.chat.completions.create(params)) as unknown;
    last.end = performance.now();
    last.engineMs = last.end - t0;
    if (typeof result !== 'object' || result === null || !(Symbol.asyncIterator in result)) return result;
    const stream = result as ChunkStream<ChatCompletionChunk>;
    last.yields = [];
    return {
      abort: () => stream.abort(),
      async *[Symbol.asyncIterator]() {
        for await (const chunk of stream) {
          if (chunk.choices[0]?.delta.content !== undefined || chunk.choices[0]?.finish_reason) last.yields.push(performance.now());
          yield chunk;
        }
      },
    };
  };
  const chat = { completions: { create } };
  const wrapped = new Proxy(engine, {
    get(target, key) {
      if (key === 'chat') return chat;
      const v = Reflect.get(target, key, target) as unknown;
      return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v;
    },
  });
  return { engine: wrapped, last };
}

export async function main(args: string[]): Promise<void> {
  const rounds = numberArg(args, '--rounds', 200);
  const tokens = numberArg(args, '--tokens', 16);
  const real = await createEngine({ ...fixtureWithPaperProfile(), worker: false, cache: false, kvCacheBytes: 8 << 20 });
  real.app('bench', { ttftMs: 600_000, tpotMs: 60_000 });
  const { engine, last } = timedEngine(real);
  const server = await startHttpServer(engine, { host: '127.0.0.1', port: 0, apiKeys: [], maxBodyBytes: 1 << 20 });
  const url = new URL(`${server.url}/v1/chat/completions`);
  // The zero-time engine: what the server itself costs (its stats() feeds only /health and /metrics, not used here).
  const fixed = await engine.chat.completions.create({ app: 'bench', messages: [{ role: 'user', content: 'Hello there' }], max_tokens: 1 });
  const instant = { info: real.info, chat: { completions: { create: () => Promise.resolve(fixed) } }, completions: { create: () => Promise.resolve(fixed) } };
  const bare = await startHttpServer(instant as unknown as Engine, { host: '127.0.0.1', port: 0, apiKeys: [], maxBodyBytes: 1 << 20 });
  const bareUrl = new URL(`${bare.url}/v1/chat/completions`);
  const messages = [{ role: 'user' as const, content: 'Hello there' }];
  const agent = new Agent({ keepAlive: true });

  /** One POST over node:http (keep-alive); `onData` gets each read's text and its arrival time. */
  const post = (body: string, onData: (text: string, at: number) => void, to = url): Promise<void> =>
    new Promise((resolve, reject) => {
      const req = httpRequest(
        { host: to.hostname, port: to.port, path: to.pathname, method: 'POST', agent, headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) } },
        (res) => {
          res.setEncoding('utf8');
          res.on('data', (text: string) => onData(text, performance.now()));
          res.on('end', () => resolve());
          res.on('error', reject);
        },
      );
      req.on('error', reject);
      req.end(body);
    });

  // Where the node:http path's added time goes, from Node's own HTTP diagnostics channels (one
  // request at a time, so the latest event is this request's).
  const seen = { clientStart: 0, serverStart: 0, serverFinish: 0, lastByte: 0 };
  subscribe('http.client.request.start', () => (seen.clientStart = performance.now()));
  subscribe('http.server.request.start', () => (seen.serverStart = performance.now()));
  subscribe('http.server.response.finish', () => (seen.serverFinish = performance.now()));
  const phaseNames = [
    'client: builds and sends the request',
    'loopback to the server',
    'server: body, JSON, validation, up to create()',
    'server: serializes and writes the reply (until its write completes)',
    'client: the reply written -> its last byte read',
    'client: parses the reply',
  ] as const;
  const phases = new Map<string, number[]>(phaseNames.map((k) => [k, []]));
  const recordPhases = (t0: number, parsed: number): void => {
    const marks = [t0, seen.clientStart, seen.serverStart, last.start, NaN, seen.serverFinish, seen.lastByte, parsed];
    // create() itself (marks[3] -> last.end) is the engine's time, not a phase of HTTP.
    const spans = [marks[1]! - marks[0]!, marks[2]! - marks[1]!, marks[3]! - marks[2]!, marks[5]! - last.end, marks[6]! - marks[5]!, marks[7]! - marks[6]!];
    spans.forEach((v, i) => phases.get(phaseNames[i]!)!.push(v));
  };
  // A client in its own process (its own event loop and clock): it times each request and reports
  // the duration over IPC, outside the timed window.
  const childCode = `
    const http = require('node:http');
    const agent = new http.Agent({ keepAlive: true });
    process.on('message', ({ url, body }) => {
      const u = new URL(url);
      const t0 = performance.now();
      let text = '';
      const req = http.request({ host: u.hostname, port: u.port, path: u.pathname, method: 'POST', agent, headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) } }, (res) => {
        res.setEncoding('utf8');
        res.on('data', (t) => { text += t; });
        res.on('end', () => { JSON.parse(text); process.send({ ms: performance.now() - t0 }); });
      });
      req.end(body);
    });`;
  const child = spawn(process.execPath, ['-e', childCode], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  const askChild = (body: string): Promise<number> =>
    new Promise((resolve, reject) => {
      child.once('message', (m: { ms: number }) => resolve(m.ms));
      child.once('exit', (code) => reject(new Error(`the client process exited (${code})`)));
      child.send({ url: url.href, body });
    });

  const oneBody = JSON.stringify({ model: 'x', app: 'bench', messages, max_tokens: 1 });
  const paths: Record<string, () => Promise<number>> = {
    'in-process (the timing wrapper only)': async () => {
      const t0 = performance.now();
      await engine.chat.completions.create({ app: 'bench', messages, max_tokens: 1 });
      return performance.now() - t0 - last.engineMs;
    },
    'webslo serve, node:http client': async () => {
      const t0 = performance.now();
      let text = '';
      await post(oneBody, (t, at) => {
        text += t;
        seen.lastByte = at;
      });
      JSON.parse(text);
      const parsed = performance.now();
      recordPhases(t0, parsed);
      return parsed - t0 - last.engineMs;
    },
    'webslo serve, node:http client in another process': async () => (await askChild(oneBody)) - last.engineMs,
    'the HTTP layer alone (an engine that answers at once), node:http client': async () => {
      const t0 = performance.now();
      let text = '';
      await post(oneBody, (t) => (text += t), bareUrl);
      JSON.parse(text);
      return performance.now() - t0;
    },
    "webslo serve, Node's fetch client": async () => {
      const t0 = performance.now();
      const r = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: oneBody });
      await r.json();
      return performance.now() - t0 - last.engineMs;
    },
  };
  const streamBody = JSON.stringify({ model: 'x', app: 'bench', messages, max_tokens: tokens, ignore_eos: true, stream: true });
  /** Per token of one streamed request over HTTP: arrival at the client minus the engine's yield. */
  const streamed = async (): Promise<number[]> => {
    const arrivals: number[] = [];
    let pending = '';
    await post(streamBody, (text, at) => {
      pending += text;
      let end: number;
      while ((end = pending.indexOf('\n\n')) >= 0) {
        const event = pending.slice(0, end);
        pending = pending.slice(end + 2);
        if (!event.startsWith('data: ') || event === 'data: [DONE]') continue;
        const chunk = JSON.parse(event.slice(6)) as ChatCompletionChunk;
        if (chunk.choices[0]?.delta.content !== undefined || chunk.choices[0]?.finish_reason) arrivals.push(at);
      }
    });
    if (arrivals.length !== last.yields.length) throw new Error(`streamed ${arrivals.length} token events, the engine yielded ${last.yields.length}`);
    return arrivals.map((a, i) => a - last.yields[i]!);
  };

  try {
    const added = new Map<string, number[]>(Object.keys(paths).map((k) => [k, []]));
    const perToken: number[] = [];
    for (let i = 0; i < rounds + 20; i++) {
      for (const [name, run] of Object.entries(paths)) {
        const a = await run();
        if (i >= 20) added.get(name)!.push(a);
      }
      const t = await streamed();
      if (i >= 20) perToken.push(...t);
    }
    const f = (x: number): string => `${x.toFixed(3)} ms`;
    const lines = [
      `| measure | added p50 | added p99 | samples |`,
      `|---|---:|---:|---:|`,
      ...[...added].map(([name, xs]) => `| per request, 1-token chat completion: ${name} | ${f(q(xs, 0.5))} | ${f(q(xs, 0.99))} | ${xs.length} |`),
      `| per streamed token (${tokens}-token streams), node:http client | ${f(q(perToken, 0.5))} | ${f(q(perToken, 0.99))} | ${perToken.length} |`,
      '',
      `| where the node:http client's added time goes (same process) | p50 | p90 |`,
      `|---|---:|---:|`,
      ...[...phases].map(([name, xs]) => `| ${name} | ${f(q(xs, 0.5))} | ${f(q(xs, 0.9))} |`),
    ];
    console.log(`webslo serve vs in-process, ${real.info.adapter}, Node ${process.version}\n`);
    console.log(lines.join('\n'));
  } finally {
    child.kill();
    agent.destroy();
    await server.close();
    await bare.close();
    await real.unload();
  }
}
