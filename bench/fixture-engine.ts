// What the host-side benchmarks (serve-latency, prompt-stall) share: the tiny-qwen2 fixture with the
// paper's step times for its planner (relabelled for the fixture's depth: a profile holds for one
// model), and a numeric flag.

import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { PROFILES } from '../src/sim/profiles.js';

/** createEngine's model and profile for the tiny-qwen2 fixture. */
export function fixtureWithPaperProfile(): { model: string; profile: object } {
  const model = fileURLToPath(new URL('../test/fixtures/tiny-qwen2', import.meta.url));
  const layers = (JSON.parse(readFileSync(`${model}/config.json`, 'utf8')) as { num_hidden_layers: number }).num_hidden_layers;
  return { model, profile: { ...(PROFILES.paper as object), layers } };
}

/** `--name N` from the arguments, else `dflt`. */
export function numberArg(args: string[], name: string, dflt: number): number {
  const at = args.indexOf(name);
  return at >= 0 ? Number(args[at + 1]) : dflt;
}
