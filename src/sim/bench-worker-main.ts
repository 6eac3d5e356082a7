// The bench-sched worker as a plain Node program (the package's lib/node/bench-worker.js):
// bench-worker.ts's main(), then exit with its code.

import { main } from './bench-worker.js';

process.exit(await main());
