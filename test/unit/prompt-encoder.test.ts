// The prompt worker's protocol (src/host/prompt-encoder.ts) over a real MessageChannel (structured
// clone, as between workers): the same ids as encoding on the engine's thread for text and chat
// prompts, a far-over-limit text refused from a prefix, typed errors rebuilt on the engine's side,
// results in the order jobs were sent, and a tokenizer that cannot be built failing every job.

import { readFileSync } from 'node:fs';
import { MessageChannel, type MessagePort } from 'node:worker_threads';
import { afterEach, describe, expect, it } from 'vitest';
import { ChatTemplateError } from '../../src/openai/errors.js';
import { engineThreadEncoder, servePromptEncoder, workerEncoder, type PromptJob, type PromptWorkerHandle } from '../../src/host/prompt-encoder.js';
import { TextTokenizer } from '../../src/tokenizer/tokenizer.js';

const read = (file: string): Record<string, unknown> => JSON.parse(readFileSync(new URL(`../fixtures/tiny-qwen2/${file}`, import.meta.url), 'utf8')) as Record<string, unknown>;
const tokenizerJson = read('tokenizer.json');
const tokenizerConfig = read('tokenizer_config.json');
const tok = new TextTokenizer(tokenizerJson, tokenizerConfig);

/** A Node MessagePort as the DOM shape the encoder uses. */
function port(p: MessagePort, failure?: { fail?: (why: string) => void }): PromptWorkerHandle {
  return {
    postMessage: (m) => p.postMessage(m),
    addEventListener: (_type, listener) => p.on('message', (data: unknown) => listener({ data })),
    onFailure: (listener) => {
      if (failure) failure.fail = listener;
    },
    terminate: () => p.close(),
  };
}

const open: MessagePort[] = [];
afterEach(() => {
  for (const p of open.splice(0)) p.close();
});

/** An encoder talking to a prompt worker served on the other end of a channel. */
function connected(config: unknown = tokenizerConfig, json: unknown = tokenizerJson): ReturnType<typeof workerEncoder> {
  const { port1, port2 } = new MessageChannel();
  open.push(port1, port2);
  servePromptEncoder(port(port2));
  return workerEncoder(port(port1), { tokenizerJson: json, tokenizerConfig: config, extraEosTokenIds: [] }, engineThreadEncoder(tok));
}

describe('prompt worker', () => {
  const jobs: PromptJob[] = [
    { kind: 'text', text: 'Hello world, this is a prompt.' },
    { kind: 'text', text: 'naïve café ☕ — 你好' },
    {
      kind: 'chat',
      messages: [
        { role: 'system', content: 'Be brief.' },
        { role: 'user', content: 'What is 2 + 3?' },
      ],
      tools: null,
    },
  ] as PromptJob[];

  it('gives the ids the engine thread gives, in the order the jobs were sent', async () => {
    const remote = connected();
    const local = engineThreadEncoder(tok);
    const got = await Promise.all(jobs.map((j) => remote.encode(j, 4096)));
    const want = await Promise.all(jobs.map((j) => local.encode(j, 4096)));
    expect(got).toEqual(want);
    for (const r of got) expect('ids' in r && r.ids.length).toBeGreaterThan(3);
    expect(remote.where).toBe('worker');
  });

  it('refuses a text far over the limit from a prefix', async () => {
    const r = await connected().encode({ kind: 'text', text: 'word '.repeat(20_000) }, 64);
    expect(r).toEqual({ atLeast: expect.any(Number) as number });
    expect((r as { atLeast: number }).atLeast).toBeGreaterThan(64);
  });

  it("rebuilds the worker's typed errors: a model without a chat template", async () => {
    const noTemplate = connected({ ...tokenizerConfig, chat_template: null });
    const e = await noTemplate.encode({ kind: 'chat', messages: [{ role: 'user', content: 'hi' }], tools: null } as PromptJob, 4096).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(ChatTemplateError);
    // The worker keeps serving after a failed job.
    expect(await noTemplate.encode({ kind: 'text', text: 'hi' }, 4096)).toEqual(await engineThreadEncoder(tok).encode({ kind: 'text', text: 'hi' }, 4096));
  });

  it('a worker that dies (or never starts) hands its jobs and every later one to the engine thread', async () => {
    const { port1, port2 } = new MessageChannel();
    open.push(port1, port2);
    // Nothing serves port2: the jobs sit there until the worker "fails".
    const failure: { fail?: (why: string) => void } = {};
    const enc = workerEncoder(port(port1, failure), { tokenizerJson, tokenizerConfig, extraEosTokenIds: [] }, engineThreadEncoder(tok));
    expect(enc.where).toBe('worker');
    const pending = enc.encode(jobs[0]!, 4096);
    await new Promise((r) => setTimeout(r, 20));
    failure.fail!('the script did not load');
    const local = engineThreadEncoder(tok);
    expect(await pending).toEqual(await local.encode(jobs[0]!, 4096));
    expect(enc.where).toBe('engine-thread');
    expect(await enc.encode(jobs[2]!, 4096)).toEqual(await local.encode(jobs[2]!, 4096));
  });

  it('is ready once the worker has built its tokenizer', async () => {
    const enc = connected();
    await enc.ready;
    expect(enc.where).toBe('worker');
  });

  it('a worker that cannot build the tokenizer hands every job to the engine thread, which can', async () => {
    // The worker's copy of tokenizer.json is broken; the engine's own tokenizer works.
    const broken = connected(tokenizerConfig, { model: 'not an object' });
    await broken.ready;
    expect(broken.where).toBe('engine-thread');
    expect(await broken.encode({ kind: 'text', text: 'hi' }, 4096)).toEqual(await engineThreadEncoder(tok).encode({ kind: 'text', text: 'hi' }, 4096));
  });

  it('a worker that never answers is given up on after the ready timeout', async () => {
    const { port1, port2 } = new MessageChannel();
    open.push(port1, port2);
    const enc = workerEncoder(port(port1), { tokenizerJson, tokenizerConfig, extraEosTokenIds: [] }, engineThreadEncoder(tok), 50);
    const pending = enc.encode(jobs[0]!, 4096);
    await enc.ready;
    expect(enc.where).toBe('engine-thread');
    expect(await pending).toEqual(await engineThreadEncoder(tok).encode(jobs[0]!, 4096));
  });
});
