// Requests the demo sends: a panel's streamed request (deltas appended as they arrive), the tool
// agent's rounds, and the load generator's Poisson arrivals and bursts. Outcomes are counted on
// this side too (SloError = declined by the planner), next to what engine.stats() reports. With a
// remote replica connected, requests go through a Router in front of the engine.

import type { ChatCompletionChunk, Engine, Router } from '../index.js';
import type { DemoApp } from './apps.js';

/** The load generator's requests are short: a slow GPU (software rendering) still drains a burst. */
export const LOAD_MAX_TOKENS = 8;

export interface ClientCounts {
  sent: number;
  ok: number;
  declined: number;
  failed: number;
}

export class Traffic {
  readonly counts = new Map<string, ClientCounts>();
  /** Requests sent and not yet ended (the scheduler switch waits for 0). */
  inFlight = 0;
  private readonly timers = new Map<string, number>();
  private convo = 0;
  /** The engine is gone (unloaded for another model): no new rounds. */
  private closed = false;
  /** Where requests go: the engine, or a Router in front of it and a remote replica. */
  private target: Pick<Engine, 'chat'> | Router;

  constructor(
    engine: Engine,
    private readonly onChange: () => void,
  ) {
    this.target = engine;
  }

  /** Send the next requests through `target` (requests in flight finish where they run). */
  via(target: Pick<Engine, 'chat'> | Router): void {
    this.target = target;
  }

  count(app: string): ClientCounts {
    let c = this.counts.get(app);
    if (!c) this.counts.set(app, (c = { sent: 0, ok: 0, declined: 0, failed: 0 }));
    return c;
  }

  private async track<T>(app: string, work: () => Promise<T>, onError?: (e: Error) => void): Promise<T | null> {
    const c = this.count(app);
    c.sent++;
    this.inFlight++;
    this.onChange();
    try {
      const r = await work();
      c.ok++;
      return r;
    } catch (e) {
      if (e instanceof Error && e.name === 'SloError') c.declined++;
      else c.failed++;
      onError?.(e instanceof Error ? e : new Error(String(e)));
      return null;
    } finally {
      this.inFlight--;
      this.onChange();
    }
  }

  /** One streamed chat request; `onText` gets each delta as it arrives. Throws nothing. */
  async stream(app: DemoApp, content: string, onText: (t: string) => void, onError: (e: Error) => void): Promise<void> {
    const messages: { role: 'user' | 'assistant'; content: string }[] = [{ role: 'user', content }];
    const conversationId = app.rounds ? `agent-${++this.convo}` : undefined;
    const rounds = app.rounds ?? 1;
    for (let round = 0; round < rounds; round++) {
      if (round > 0) {
        onText(`\n[tool call… 300 ms]\n`);
        await new Promise((r) => setTimeout(r, 300));
        // The engine was unloaded (another model, a reload) during the tool call: stop here.
        if (this.closed) return;
        messages.push({ role: 'user', content: `Tool result ${round}: 18°C, light wind.` });
      }
      let answer = '';
      const ok = await this.track(
        app.name,
        async () => {
          const s = await this.target.chat.completions.create({ app: app.name, messages, max_tokens: app.maxTokens, ignore_eos: true, stream: true, ...(conversationId ? { conversationId } : {}) });
          for await (const chunk of s as AsyncIterable<ChatCompletionChunk>) {
            const t = chunk.choices[0]?.delta.content;
            if (t) {
              answer += t;
              onText(t);
            }
          }
          return true;
        },
        onError,
      );
      if (!ok) return;
      messages.push({ role: 'assistant', content: answer });
    }
  }

  /** One load-generator request (not streamed). */
  fire(app: DemoApp, i: number): Promise<unknown> {
    return this.track(app.name, () =>
      this.target.chat.completions.create({ app: app.name, messages: [{ role: 'user', content: app.loadPrompt(i) }], max_tokens: Math.min(app.maxTokens, LOAD_MAX_TOKENS), ignore_eos: true }),
    );
  }

  /** `n` requests at once; resolves when all have ended. */
  async burst(app: DemoApp, n: number): Promise<void> {
    const base = this.count(app.name).sent;
    await Promise.all(Array.from({ length: n }, (_, i) => this.fire(app, base + i)));
  }

  /** Poisson arrivals at `perSecond` (0 stops them). */
  setRate(app: DemoApp, perSecond: number): void {
    const old = this.timers.get(app.name);
    if (old !== undefined) clearTimeout(old);
    this.timers.delete(app.name);
    if (!(perSecond > 0)) return;
    const next = (): void => {
      const gap = (-Math.log(1 - Math.random()) / perSecond) * 1000;
      this.timers.set(
        app.name,
        window.setTimeout(() => {
          void this.fire(app, this.count(app.name).sent);
          next();
        }, gap),
      );
    };
    next();
  }

  stopAll(): void {
    this.closed = true;
    for (const t of this.timers.values()) clearTimeout(t);
    this.timers.clear();
  }
}
