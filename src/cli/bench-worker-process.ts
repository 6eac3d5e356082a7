// How bench-sched starts a worker process (src/sim/bench-worker.ts) for its capacity searches.
// From the repository's sources: scripts/run-ts.mjs on the TypeScript file (Vite's module runner).
// The package's Node build swaps this module (scripts/build-lib.mjs) for one that runs the built
// lib/node/bench-worker.js.

import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** Arguments to `node` and the directory to run it in. */
export function benchWorkerProcess(): { args: string[]; cwd: string } {
  const root = fileURLToPath(new URL('../..', import.meta.url));
  return { args: [join(root, 'scripts/run-ts.mjs'), join(root, 'src/sim/bench-worker.ts')], cwd: root };
}
