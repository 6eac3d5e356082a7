#!/usr/bin/env node
// Runs a TypeScript entry (a benchmark, a CLI script) in plain Node through Vite's module runner,
// so `?raw` WGSL imports and TypeScript work exactly as they do in the Vite build and in Vitest.
// The entry exports `main(args): Promise<number | void>`; its return value is the exit code.
// Usage: node scripts/run-ts.mjs bench/kernels.ts [args...]
import { resolve } from 'node:path';
import { createServer, createServerModuleRunner } from 'vite';

const [entry, ...rest] = process.argv.slice(2);
if (!entry) {
  console.error('usage: node scripts/run-ts.mjs <file.ts> [args...]');
  process.exit(2);
}
const server = await createServer({
  configFile: false,
  appType: 'custom',
  logLevel: 'error',
  server: { middlewareMode: true, hmr: false, ws: false, watch: null },
  optimizeDeps: { noDiscovery: true, include: [] },
});
const runner = createServerModuleRunner(server.environments.ssr, { hmr: false });
let code;
try {
  const module = await runner.import(resolve(entry));
  if (typeof module.main !== 'function') throw new Error(`${entry} exports no main(args)`);
  const result = await module.main(rest);
  code = typeof result === 'number' ? result : 0;
} catch (e) {
  console.error(e);
  code = 1;
}
// Dawn keeps the event loop alive while a GPU object exists: exit explicitly.
await runner.close();
await server.close();
process.exit(code);
