// Where the in-process engine (Node) gets a prompt worker (prompt-encoder.ts), so that chat
// templates and tokenization run off the thread that runs GPU steps.
//
// This module is what runs from the repository's sources (tests run TypeScript through Vite, and a
// worker thread cannot load it): no worker, prompts are encoded on the engine's thread. The
// package's Node build swaps it (scripts/build-lib.mjs) for one that starts lib/node/prompt-worker.js
// (host/prompt-worker-node.ts) on a worker thread; the browser build keeps this one (a page that
// runs the engine in its own thread, `worker: false`, has no worker either).

import type { SpawnPromptWorker } from './engine-host.js';

export async function nodePromptWorkerSpawner(): Promise<SpawnPromptWorker | undefined> {
  return undefined;
}
