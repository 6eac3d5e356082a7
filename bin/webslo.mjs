#!/usr/bin/env node
// The `webslo` command. Runs src/cli/main.ts through Vite's module runner (TypeScript and the
// WGSL `?raw` imports work as in the build), then exits (Dawn would keep the process alive).
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { spawnSync } from 'node:child_process';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const r = spawnSync(process.execPath, [join(root, 'scripts/run-ts.mjs'), join(root, 'src/cli/main.ts'), ...process.argv.slice(2)], { stdio: 'inherit' });
process.exit(r.status ?? 1);
