// The demo's optional remote replica: a URL field (another `webslo serve` started with
// --allowed-origins for this page, vLLM, llama.cpp's llama-server). Connecting asks the server's
// GET /models for the model it serves, then puts a Router (the package's own) in front of the local
// engine: requests the local planner would decline go to the remote when it is predicted to meet
// the app's SLO. An empty URL disconnects; requests in flight finish where they run.

import { Router, type Engine } from '../index.js';
import { byId } from './dom.js';

export class RemotePanel {
  private readonly url = byId<HTMLInputElement>('remote-url');
  private readonly button = byId<HTMLButtonElement>('remote-connect');
  private readonly status = byId<HTMLOutputElement>('remote-status');
  private engine: Engine | null = null;
  router: Router | null = null;

  constructor(
    /** The router was created (declare the apps on it, send through it) or removed (null). */
    private readonly onChange: (router: Router | null) => void,
  ) {
    this.button.addEventListener('click', () => void this.connect());
    this.button.disabled = true;
  }

  /** A new local engine (or none): any router in front of the old one is dropped. */
  attach(engine: Engine | null): void {
    this.engine = engine;
    this.button.disabled = engine === null;
    if (this.router) this.set(null, 'none: every request runs here');
  }

  private set(router: Router | null, text: string, state: 'none' | 'connected' | 'error' = router ? 'connected' : 'none'): void {
    this.router = router;
    this.status.textContent = text;
    this.status.dataset.state = state;
    this.onChange(router);
  }

  async connect(): Promise<void> {
    const engine = this.engine;
    if (!engine) return;
    const raw = this.url.value.trim().replace(/\/+$/, '');
    if (raw === '') return this.set(null, 'none: every request runs here');
    let base: URL;
    try {
      base = new URL(raw);
      if (base.protocol !== 'http:' && base.protocol !== 'https:') throw new TypeError('not http(s)');
    } catch {
      return this.set(null, `${raw} is not an http(s) URL (e.g. http://127.0.0.1:8000/v1)`, 'error');
    }
    this.button.disabled = true;
    this.status.textContent = `asking ${raw}/models…`;
    try {
      const res = await fetch(`${raw}/models`, { signal: AbortSignal.timeout(5000) });
      if (!res.ok) throw new Error(`GET ${raw}/models answered ${res.status}`);
      const body = (await res.json()) as { data?: { id?: unknown }[] };
      const model = body.data?.[0]?.id;
      if (typeof model !== 'string') throw new Error(`GET ${raw}/models named no model`);
      // Another model was loaded meanwhile: this answer was for the old engine.
      if (engine !== this.engine) return this.set(null, 'none: every request runs here');
      this.set(new Router({ local: engine, remotes: [{ url: raw, model, name: 'remote' }] }), `connected: ${model} at ${base.host}`);
    } catch (e) {
      // A browser hides why a cross-origin fetch failed: the usual cause is the server's CORS.
      const why = e instanceof TypeError ? `cannot reach it from this page (is it running, with --allowed-origins ${location.origin}?)` : e instanceof Error ? e.message : String(e);
      this.set(null, `not connected: ${why}`, 'error');
    } finally {
      this.button.disabled = this.engine === null;
    }
  }
}
