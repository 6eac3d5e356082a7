// How long one big prompt stalls everyone else's tokens: `npm run bench:prompt-stall` (builds the
// package first). An app streams a long greedy reply; mid-stream another app submits a chat of
// --messages short messages (its template is rendered and tokenized, then it is refused as longer
// than the context, as a careless or hostile client's would be). The stream's largest gap between
// two tokens is measured around that submission, against the same stream's median gap, for:
//  - the engine built from these sources in Node, which renders and tokenizes on the engine's own
//    thread (engine.info.promptEncoding 'engine-thread'), and
//  - the packed package's Node build, which does it on a prompt worker thread ('worker').
// Each build in its own process (--build sources | package: one engine's garbage must not pause the
// other's stream in a shared heap), on the tiny-qwen2 fixture with the paper's step times for the
// planner, --rounds rounds. On lavapipe the GPU's work shares the two CPUs with both threads.

import { fileURLToPath, pathToFileURL } from 'node:url';
import * as fromSources from '../src/index.js';
import { fixtureWithPaperProfile, numberArg } from './fixture-engine.js';

type Api = typeof fromSources;

const q = (xs: number[], p: number): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(p * s.length))]!;
};

export async function main(args: string[]): Promise<void> {
  const rounds = numberArg(args, '--rounds', 5);
  const messages = numberArg(args, '--messages', 5000);
  const at = args.indexOf('--build');
  const which = at >= 0 ? args[at + 1] : undefined;
  if (which !== 'sources' && which !== 'package') throw new Error('--build sources | package');
  const builds: [string, Api][] =
    which === 'sources'
      ? [['from sources (engine thread)', fromSources]]
      : [['package build (prompt worker)', (await import(pathToFileURL(fileURLToPath(new URL('../lib/node/index.js', import.meta.url))).href)) as Api]];
  const engines = await Promise.all(
    builds.map(async ([label, api]) => {
      const engine = await api.createEngine({ ...fixtureWithPaperProfile(), worker: false, cache: false, kvCacheBytes: 8 << 20 });
      engine.app('stream', { ttftMs: 600_000, tpotMs: 60_000 });
      engine.app('big', { ttftMs: 600_000, tpotMs: 60_000 });
      return { label, engine };
    }),
  );
  const huge = Array.from({ length: messages }, (_, i) => ({ role: i % 2 ? ('assistant' as const) : ('user' as const), content: `message ${i}: hello there` }));
  const results = new Map<string, { worst: number[]; first: number[]; median: number[]; bigMs: number[]; encoding: string; all?: string[] }>();
  try {
    for (let r = 0; r < rounds; r++) {
      for (const { label, engine } of engines) {
        const stream = await engine.chat.completions.create({ app: 'stream', messages: [{ role: 'user', content: 'Tell me a story' }], max_tokens: 80, ignore_eos: true, stream: true });
        const times: number[] = [];
        let big: Promise<number> | null = null;
        for await (const chunk of stream) {
          if (!chunk.choices[0]?.delta.content) continue;
          times.push(performance.now());
          if (times.length === 10) {
            const t0 = performance.now();
            big = engine.chat.completions.create({ app: 'big', messages: huge, max_tokens: 1 }).then(
              () => performance.now() - t0,
              () => performance.now() - t0,
            );
          }
        }
        const bigMs = await big!;
        const gaps = times.slice(1).map((t, i) => t - times[i]!);
        const entry = results.get(label) ?? {
          worst: [] as number[],
          first: [] as number[],
          median: [] as number[],
          bigMs: [] as number[],
          encoding: String(engine.info.promptEncoding),
          all: [] as string[],
        };
        // Gaps after the submission (token 10 on) against the stream's median gap.
        entry.worst.push(Math.max(...gaps.slice(9)));
        entry.first.push(gaps[9]!);
        entry.all ??= [];
        entry.all.push(
          gaps
            .slice(9)
            .map((g) => Math.round(g))
            .join(' '),
        );
        entry.median.push(q(gaps, 0.5));
        entry.bigMs.push(bigMs);
        results.set(label, entry);
      }
    }
    if (which === 'sources') {
      console.log(`One chat of ${messages} messages submitted mid-stream; ${rounds} rounds, Node ${process.version}\n`);
      console.log(
        '| build | prompt encoding | stream gap p50 | the gap at the submission (median of rounds) | largest gap after it (median of rounds) | worst of rounds | the big request refused after |',
      );
      console.log('|---|---|---:|---:|---:|---:|---:|');
    }
    if (process.env['VERBOSE']) for (const [label, e] of results) console.error(label, e.all);
    for (const [label, e] of results)
      console.log(
        `| ${label} | ${e.encoding} | ${q(e.median, 0.5).toFixed(1)} ms | ${q(e.first, 0.5).toFixed(1)} ms | ${q(e.worst, 0.5).toFixed(1)} ms | ${Math.max(...e.worst).toFixed(1)} ms | ${q(e.bigMs, 0.5).toFixed(0)} ms |`,
      );
  } finally {
    for (const { engine } of engines) await engine.unload();
  }
}
