#!/usr/bin/env node
// The `webslo` command in this repository. Runs src/cli/main.ts through Vite's module runner
// (TypeScript and the WGSL `?raw` imports work as in the build), then exits (Dawn would keep the
// process alive). SIGTERM and SIGINT go on to the command (`webslo serve` drains on them); the
// package's own command is lib/node/cli.js (built JavaScript).
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { spawn } from 'node:child_process';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const child = spawn(process.execPath, [join(root, 'scripts/run-ts.mjs'), join(root, 'src/cli/main.ts'), ...process.argv.slice(2)], { stdio: 'inherit' });
for (const signal of ['SIGTERM', 'SIGINT']) process.on(signal, () => child.kill(signal));
child.on('exit', (code, signal) => process.exit(code ?? (signal ? 1 : 0)));
