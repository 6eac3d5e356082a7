/* global window, document, location, performance */
// The scratch apps' page script (copied into each app by e2e/package.spec.ts): what a user of the
// npm package writes. It imports the bare name 'webslo', which the Vite apps resolve through the
// package's `exports` (browser condition) and the static page through its import map. It loads
// tiny-qwen2 from this origin's /models route (hub URL layout), streams one chat completion and
// publishes the result as window.__websloResult for the test. The performance profile comes from
// the test (window.__websloProfile), so that no calibration runs.
import { createEngine } from 'webslo';

const status = document.getElementById('status');

async function run() {
  const started = performance.now();
  const engine = await createEngine({
    model: `${location.origin}/models/tiny-qwen2/resolve/main`,
    profile: window.__websloProfile,
    cache: false,
  });
  const loadMs = performance.now() - started;
  try {
    const chat = engine.app('chat', { ttftMs: 60000, tpotMs: 10000 });
    const stream = await engine.chat.completions.create({
      app: chat,
      messages: [{ role: 'user', content: 'Hello' }],
      max_tokens: 8,
      stream: true,
    });
    const chunks = [];
    for await (const chunk of stream) chunks.push(chunk);
    return { ok: true, chunks, model: engine.info.model, adapter: engine.info.adapter, promptEncoding: engine.info.promptEncoding, loadMs, totalMs: performance.now() - started };
  } finally {
    await engine.unload();
  }
}

run()
  .catch((e) => ({ ok: false, error: { name: e?.name ?? 'Error', message: String(e?.message ?? e), stack: String(e?.stack ?? '') } }))
  .then((result) => {
    window.__websloResult = result;
    status.dataset.state = result.ok ? 'done' : 'failed';
    status.textContent = result.ok ? `Done: ${result.chunks.length} chunks` : `Failed: ${result.error.name}: ${result.error.message}`;
  });
