// Starts the engine's module Web Worker (src/worker/engine-worker.ts).
//
// In this repository (the demo and the e2e pages, built or served by Vite) the literal
// `new Worker(new URL(..., import.meta.url))` below is what Vite recognises to bundle the worker
// with its imports. The npm package does not ship this module: scripts/build-lib.mjs swaps it
// for one that starts the package's self-contained worker bundle (lib/worker.js) from beside the
// entry, `new URL('./worker.js', import.meta.url)`, which bundlers copy as an asset and which a
// page without a bundler loads as is.

export function spawnEngineWorker(): Worker {
  return new Worker(new URL('./engine-worker.ts', import.meta.url), { type: 'module', name: 'webslo-engine' });
}
