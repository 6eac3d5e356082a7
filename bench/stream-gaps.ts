// One long stream's pauses and what was inside them: `npm run bench:stream-gaps`. A single
// greedy chat stream of --tokens tokens on the tiny-qwen2 fixture (the paper's step times for the
// planner, the online refit on, as createEngine runs it), alone on the engine; every gap between
// two tokens over --over ms is listed with the garbage collections that started inside it (Node's
// 'gc' performance entries: kind 1 scavenge, 4 mark-sweep-compact, 8 incremental marking), and the
// steps whose own measured time passed --over.

import { PerformanceObserver, constants } from 'node:perf_hooks';
import { createEngine } from '../src/index.js';
import { fixtureWithPaperProfile, numberArg } from './fixture-engine.js';

const KINDS: Record<number, string> = {
  [constants.NODE_PERFORMANCE_GC_MINOR]: 'scavenge',
  [constants.NODE_PERFORMANCE_GC_MAJOR]: 'mark-compact',
  [constants.NODE_PERFORMANCE_GC_INCREMENTAL]: 'incremental',
  [constants.NODE_PERFORMANCE_GC_WEAKCB]: 'weak-callbacks',
};

export async function main(args: string[]): Promise<void> {
  const tokens = numberArg(args, '--tokens', 1500);
  const over = numberArg(args, '--over', 60);
  const engine = await createEngine({ ...fixtureWithPaperProfile(), worker: false, cache: false, kvCacheBytes: 8 << 20 });
  engine.app('s', { ttftMs: 600_000, tpotMs: 60_000 });
  const gcs: { start: number; ms: number; kind: string }[] = [];
  const observer = new PerformanceObserver((list) => {
    for (const e of list.getEntries()) gcs.push({ start: e.startTime, ms: e.duration, kind: KINDS[(e as { detail?: { kind?: number } }).detail?.kind ?? 0] ?? 'other' });
  });
  observer.observe({ entryTypes: ['gc'] });
  try {
    const stream = await engine.chat.completions.create({ app: 's', messages: [{ role: 'user', content: 'Tell me a story' }], max_tokens: tokens, ignore_eos: true, stream: true });
    const times: number[] = [];
    for await (const c of stream) if (c.choices[0]?.delta.content) times.push(performance.now());
    const gaps = times.slice(1).map((t, i) => ({ at: times[i]!, ms: t - times[i]! }));
    const sorted = gaps.map((g) => g.ms).sort((a, b) => a - b);
    const long = gaps.filter((g) => g.ms > over);
    console.log(
      `${times.length} tokens, gap p50 ${sorted[Math.floor(sorted.length / 2)]!.toFixed(1)} ms, p99 ${sorted[Math.floor(0.99 * sorted.length)]!.toFixed(1)} ms; ${long.length} gaps over ${over} ms:`,
    );
    for (const g of long) {
      const inside = gcs.filter((e) => e.start >= g.at - 1 && e.start <= g.at + g.ms && e.ms >= 1);
      console.log(`  ${g.ms.toFixed(0)} ms at ${((g.at - times[0]!) / 1000).toFixed(2)} s: ${inside.map((e) => `${e.kind} ${e.ms.toFixed(0)} ms`).join(', ') || 'no GC'}`);
    }
    const slow = (await engine.stats()).steps.filter((s) => s.ms > over);
    console.log(`steps over ${over} ms among the last ${(await engine.stats()).steps.length}: ${slow.map((s) => `${s.ms.toFixed(0)} ms`).join(', ') || 'none'}`);
  } finally {
    observer.disconnect();
    await engine.unload();
  }
}
