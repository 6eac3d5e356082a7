// The engine in Chromium: createEngine starts it in its Web Worker; two apps with different SLOs
// stream greedy chat completions concurrently, and every request's tokens and logprobs equal the
// same request run alone, bitwise. Offline: only the local preview server is reachable.

import type { EngineResult } from './engine/main.js';
import { expect, test } from './fixtures.js';

test('two apps stream concurrently through the worker; each equals its request alone, bitwise', async ({ page, watch }) => {
  test.setTimeout(180_000);
  await page.goto('/e2e/engine/index.html');
  await expect(page.getByTestId('engine-status')).toHaveAttribute('data-state', /^(done|failed)$/, { timeout: 170_000 });
  const r = (await page.evaluate(() => window.__engineResult)) as EngineResult;
  if (!r.ok) throw new Error(`engine page failed: ${r.error}`);
  console.log(`[engine] ${r.adapter}: ${r.stats!.totalSteps} steps, apps ${r.stats!.apps.map((a) => `${a.app} ${a.completed}/${a.submitted}`).join(', ')}`);
  expect(r.together).toHaveLength(4);
  for (let i = 0; i < 4; i++) {
    const t = r.together![i]!;
    const a = r.alone![i]!;
    expect(t.tokens).toHaveLength(8);
    expect(t.finish).toBe('length');
    expect(t.tokens).toEqual(a.tokens);
    expect(t.logprobs).toEqual(a.logprobs);
    expect(t.text).toBe(a.text);
  }
  // The concurrent requests really shared steps: some step ran more than one sequence.
  expect(Math.max(...r.stats!.steps.map((s) => s.sequences))).toBeGreaterThan(1);
  expect(r.stats!.kv.pagesUsed).toBe(0);
  for (const app of ['chat', 'code']) expect(r.stats!.apps.find((a) => a.app === app)!.completed).toBe(4);
  expect(watch.blockedRequests).toEqual([]);
  expect(watch.consoleErrors).toEqual([]);
});
