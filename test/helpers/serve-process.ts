// `webslo serve` as a child process on 127.0.0.1 (tests only): tiny-qwen2 with the paper's step
// times for its planner, the apps given, on a free port; resolves once it says where it listens.

import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fixtureDir } from './fixtures.js';
import { paperProfileFor } from './profiles.js';

export interface Served {
  child: ChildProcess;
  url: string;
  stderr: () => string;
  exited: Promise<number | null>;
  /** SIGTERM, and wait for the exit (no-op when it has exited). */
  stop: () => Promise<void>;
}

export async function serveProcess(apps: Record<string, unknown>, extra: string[] = []): Promise<Served> {
  const dir = mkdtempSync(join(tmpdir(), 'webslo-serve-'));
  writeFileSync(join(dir, 'profile.json'), JSON.stringify(paperProfileFor('tiny-qwen2')));
  writeFileSync(join(dir, 'apps.json'), JSON.stringify(apps));
  const args = ['bin/webslo.mjs', 'serve', '--model', fixtureDir('tiny-qwen2'), '--profile', join(dir, 'profile.json'), '--apps', join(dir, 'apps.json'), '--port', '0', ...extra];
  const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let err = '';
  child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`webslo serve did not start in 120 s:\n${err}`)), 120_000);
    createInterface({ input: child.stdout! }).on('line', (line) => {
      const m = /listening on (http:\/\/\S+)/.exec(line);
      if (m) {
        clearTimeout(timer);
        resolve(m[1]!);
      }
    });
    void exited.then((code) => reject(new Error(`webslo serve exited (${code}) before listening:\n${err}`)));
  });
  const stop = async (): Promise<void> => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
    await exited;
  };
  return { child, url, stderr: () => err, exited, stop };
}
