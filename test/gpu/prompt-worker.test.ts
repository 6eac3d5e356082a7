// The engine host with a prompt worker (src/host/prompt-encoder.ts), on Dawn with tiny-qwen2: the
// step loop serves other requests while a prompt is still being encoded, and a request whose prompt
// is held there ends exactly once when aborted or when the engine unloads, its prompt dropped when
// it comes back. The worker here is the real protocol over a MessageChannel whose deliveries to the
// worker the test holds back (a prompt that takes as long as the test wants to tokenize).

import { MessageChannel, type MessagePort } from 'node:worker_threads';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EngineHost } from '../../src/host/engine-host.js';
import { servePromptEncoder, type PromptWorkerHandle } from '../../src/host/prompt-encoder.js';
import { toWire } from '../../src/host/wire.js';
import { ChatTemplateError } from '../../src/openai/errors.js';
import type { HostRequest, StreamEvent } from '../../src/host/protocol.js';
import { fixtureDir } from '../helpers/fixtures.js';
import { paperProfileFor } from '../helpers/profiles.js';

/** A prompt worker whose incoming messages wait until `release()` (init passes at once). */
function heldWorker(): { spawn: () => PromptWorkerHandle; release: () => void; held: () => number } {
  const { port1, port2 } = new MessageChannel();
  const held: unknown[] = [];
  let open = false;
  const listeners: ((ev: { data: unknown }) => void)[] = [];
  port2.on('message', (data: { type: string }) => {
    if (open || data.type === 'init') for (const l of listeners) l({ data });
    else held.push(data);
  });
  servePromptEncoder({ postMessage: (m) => port2.postMessage(m), addEventListener: (_t, l) => void listeners.push(l) });
  const side = (p: MessagePort): PromptWorkerHandle => ({
    postMessage: (m) => p.postMessage(m),
    addEventListener: (_t, l) => p.on('message', (data: unknown) => l({ data })),
    onFailure: () => {},
    terminate: () => {
      port1.close();
      port2.close();
    },
  });
  return {
    spawn: () => side(port1),
    release: () => {
      open = true;
      for (const data of held.splice(0)) for (const l of listeners) l({ data });
    },
    held: () => held.length,
  };
}

function request(id: string, prompt: HostRequest['prompt'], maxTokens: number): HostRequest {
  return {
    requestId: id,
    app: 'a',
    prompt,
    maxTokens,
    sampling: { temperature: 0, topP: 1, topK: 0, seed: null },
    penalties: null,
    stop: [],
    logprobs: false,
    topLogprobs: 0,
    ignoreEos: true,
    stage: null,
    conversationId: null,
    continuation: null,
    offer: false,
  };
}

/** Events of one request, and a promise of its end. */
function collect(): { events: StreamEvent[]; emit: (ev: StreamEvent) => void; ended: Promise<StreamEvent> } {
  const events: StreamEvent[] = [];
  let end!: (ev: StreamEvent) => void;
  const ended = new Promise<StreamEvent>((r) => (end = r));
  return {
    events,
    ended,
    emit: (ev) => {
      events.push(ev);
      if (ev.type === 'done' || ev.type === 'error') end(ev);
    },
  };
}

const ends = (events: StreamEvent[]): number => events.filter((e) => e.type === 'done' || e.type === 'error').length;

describe('prompt worker in the engine host', () => {
  const worker = heldWorker();
  let host: EngineHost;
  beforeAll(async () => {
    host = await EngineHost.load({ model: fixtureDir('tiny-qwen2'), profile: paperProfileFor('tiny-qwen2'), kvCacheBytes: 4 * 1024 * 1024 }, undefined, worker.spawn);
    host.registerApp('a', { ttftMs: 600_000, tpotMs: 60_000 });
  });
  afterAll(async () => {
    await host?.unload();
  });

  it('serves other requests while a prompt is held in the worker; an abort ends the held one once', async () => {
    expect(host.promptEncoding).toBe('worker');
    expect(host.info().promptEncoding).toBe('worker');
    const held = collect();
    host.generate(request('held', { kind: 'text', text: 'a long prompt, still being tokenized' }, 4), held.emit);
    const chat = collect();
    host.generate(request('chat', { kind: 'chat', messages: [{ role: 'user', content: 'hi' }], tools: null }, 4), chat.emit);
    // Token ids need no encoding: this one runs to its end while both prompts wait in the worker.
    const ids = collect();
    host.generate(request('ids', { kind: 'tokens', ids: [1, 22557, 1526] }, 6), ids.emit);
    const end = await ids.ended;
    expect(end).toMatchObject({ type: 'done', completionTokens: 6 });
    expect(worker.held()).toBe(2);
    expect(held.events).toEqual([]);

    host.cancel('held');
    expect(held.events).toHaveLength(1);
    expect(held.events[0]).toMatchObject({ type: 'error', error: { name: 'AbortError' } });

    // Released: the chat's prompt comes back and runs; the aborted one's is dropped.
    worker.release();
    expect(await chat.ended).toMatchObject({ type: 'done', completionTokens: 4 });
    expect(ends(held.events)).toBe(1);
    const app = host.stats().apps.find((x) => x.app === 'a')!;
    expect(app.submitted).toBe(2);
    expect(app.running).toBe(0);
  });

  it('a prompt that fails to encode ends its request once; a later cancel or unload adds nothing', async () => {
    // A worker that builds its tokenizer, then fails every job (a template error, say).
    const failing = (): PromptWorkerHandle => {
      const listeners: ((ev: { data: unknown }) => void)[] = [];
      const reply = (data: unknown): void => void setTimeout(() => listeners.forEach((l) => l({ data })), 1);
      return {
        postMessage: (m) => {
          const msg = m as { type: string; id?: number };
          reply(msg.type === 'init' ? { type: 'ready' } : { type: 'error', id: msg.id, error: toWire(new ChatTemplateError('render', 'the template raised an error')) });
        },
        addEventListener: (_t, l) => void listeners.push(l),
        onFailure: () => {},
        terminate: () => {},
      };
    };
    const h = await EngineHost.load({ model: fixtureDir('tiny-qwen2'), profile: paperProfileFor('tiny-qwen2'), kvCacheBytes: 2 * 1024 * 1024 }, undefined, failing);
    h.registerApp('a', { ttftMs: 600_000, tpotMs: 60_000 });
    const bad = collect();
    h.generate(request('bad', { kind: 'text', text: 'hello' }, 4), bad.emit);
    expect(await bad.ended).toMatchObject({ type: 'error', error: { name: 'ChatTemplateError' } });
    h.cancel('bad');
    await h.unload();
    expect(ends(bad.events)).toBe(1);
  });

  it('a prompt that comes back too long fails with PromptTooLongError, typed', async () => {
    const long = collect();
    host.generate(request('long', { kind: 'text', text: 'word '.repeat(200_000) }, 4), long.emit);
    expect(await long.ended).toMatchObject({ type: 'error', error: { name: 'PromptTooLongError' } });
  });

  it('unload ends a request whose prompt is still in the worker, once, with EngineClosedError', async () => {
    const other = heldWorker();
    const h = await EngineHost.load({ model: fixtureDir('tiny-qwen2'), profile: paperProfileFor('tiny-qwen2'), kvCacheBytes: 2 * 1024 * 1024 }, undefined, other.spawn);
    h.registerApp('a', { ttftMs: 600_000, tpotMs: 60_000 });
    const waiting = collect();
    h.generate(request('w', { kind: 'text', text: 'hello' }, 4), waiting.emit);
    // The job crosses the channel asynchronously.
    for (let i = 0; i < 100 && other.held() === 0; i++) await new Promise((r) => setTimeout(r, 10));
    expect(other.held()).toBe(1);
    await h.unload();
    expect(waiting.events).toHaveLength(1);
    expect(waiting.events[0]).toMatchObject({ type: 'error', error: { name: 'EngineClosedError' } });
    other.release();
    await new Promise((r) => setTimeout(r, 50));
    expect(ends(waiting.events)).toBe(1);
  });
});
