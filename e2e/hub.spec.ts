// The hub loader in Chromium: tiny-qwen2 is loaded through cachedHubSource from the preview
// server's hub-layout route (e2e/fixture-server.ts) into the Cache API, loaded again (also after a
// page reload) with no request for any model file, listed and deleted; a quota the model does not
// fit in is a CacheQuotaError; and a FileSystemDirectoryHandle (origin-private file system) loads
// through resolveModelSource. The Node twins are test/unit/hub-*.test.ts.

import { statSync } from 'node:fs';
import type { HubLoadProgress } from '../src/hub/index.js';
import { loadModelFiles } from '../src/model/load.js';
import { nodeDirectorySource } from '../src/model/source.js';
import { fixtureDir } from '../test/helpers/fixtures.js';
import type { HubFailure, HubLoadReport } from './hub/protocol.js';
import { expect, test } from './fixtures.js';

const MODEL = 'tiny-qwen2';
const FILES = ['config.json', 'tokenizer.json', 'tokenizer_config.json', 'model.safetensors'];
const size = (file: string): number => statSync(`${fixtureDir(MODEL)}/${file}`).size;
const TOTAL = FILES.reduce((a, f) => a + size(f), 0);
/** What Chromium logs for each fetch answered 404 (generation_config.json, absent in the fixture). */
const LOGGED_404 = 'console.error: Failed to load resource: the server responded with a status of 404 (Not Found)';

function ok(r: HubLoadReport | HubFailure): HubLoadReport {
  if ('error' in r) throw new Error(`hub page failed: ${r.error.name}: ${r.error.message}`);
  return r;
}

function expectMonotonic(events: readonly HubLoadProgress[]): void {
  for (let i = 1; i < events.length; i++) {
    expect(events[i]!.loaded).toBeGreaterThanOrEqual(events[i - 1]!.loaded);
    expect(events[i]!.total).toBeGreaterThanOrEqual(events[i - 1]!.total);
    expect(events[i]!.loaded).toBeLessThanOrEqual(events[i]!.total);
  }
  expect([events.at(-1)!.loaded, events.at(-1)!.total]).toEqual([TOTAL, TOTAL]);
}

test.describe('hub loader in the browser', () => {
  test.setTimeout(30_000);

  test(`${MODEL} into the Cache API, again from the cache with no model requests, listed and deleted`, async ({ page, watch, baseURL }) => {
    const requests: string[] = [];
    page.on('request', (r) => {
      const { pathname } = new URL(r.url());
      if (pathname.startsWith('/models/')) requests.push(`${r.method()} ${pathname.slice(`/models/${MODEL}/resolve/main/`.length)}`);
    });
    await page.goto('/e2e/hub/index.html');
    await expect(page.getByTestId('hub-status')).toHaveAttribute('data-state', 'ready');
    const tensors = (await loadModelFiles(nodeDirectorySource(fixtureDir(MODEL)))).tensors.size;

    const first = ok(await page.evaluate((m) => window.__hub!.load(m), MODEL));
    expect([first.tensors, first.architecture, first.weightFiles]).toEqual([tensors, 'qwen2', ['model.safetensors']]);
    expect(requests).toEqual(['GET config.json', 'GET generation_config.json', 'GET tokenizer.json', 'GET tokenizer_config.json', 'GET model.safetensors']);
    expectMonotonic(first.events);
    expect(first.events.every((e) => !e.fromCache)).toBe(true);
    expect(first.events.filter((e) => e.file === 'model.safetensors').length).toBeGreaterThan(3); // streamed in chunks

    // Same page, then a fresh page on the same origin: everything (the absent generation_config.json
    // included) comes from the Cache API.
    for (const fresh of [false, true]) {
      requests.length = 0;
      if (fresh) {
        await page.reload();
        await expect(page.getByTestId('hub-status')).toHaveAttribute('data-state', 'ready');
      }
      const again = ok(await page.evaluate((m) => window.__hub!.load(m), MODEL));
      expect(requests, fresh ? 'after a reload' : 'same page').toEqual([]);
      expect(again.tensors).toBe(tensors);
      expect(again.events.map((e) => [e.file, e.fromCache])).toEqual(FILES.map((f) => [f, true]));
      expectMonotonic(again.events);
    }

    const models = await page.evaluate(() => window.__hub!.list());
    const files = [...FILES].sort().map((file) => ({ file, bytes: size(file) }));
    expect(models).toEqual([{ endpoint: `${baseURL}/models`, repoId: MODEL, revision: 'main', files, bytes: TOTAL }]);

    expect(await page.evaluate((m) => window.__hub!.remove(m), MODEL)).toBe(FILES.length);
    expect(await page.evaluate(() => window.__hub!.list())).toEqual([]);
    expect(await page.evaluate(() => window.__hub!.keys())).toEqual([]); // the absent-file marker too

    requests.length = 0;
    ok(await page.evaluate((m) => window.__hub!.load(m), MODEL));
    expect(requests).toHaveLength(5); // deleted means downloaded again

    // One logged 404 per load over the network (two), none from the cached loads.
    expect(watch.consoleErrors).toEqual([LOGGED_404, LOGGED_404]);
    expect(watch.blockedRequests).toEqual([]);
  });

  test('a storage quota smaller than the model is a CacheQuotaError saying what to do', async ({ page, watch, baseURL }) => {
    const cdp = await page.context().newCDPSession(page);
    await page.goto('/e2e/hub/index.html');
    await expect(page.getByTestId('hub-status')).toHaveAttribute('data-state', 'ready');
    // 4 MB for this origin: the JSON files fit, the 8.5 MB weights do not.
    await cdp.send('Storage.overrideQuotaForOrigin', { origin: baseURL!, quotaSize: 4_000_000 });
    try {
      const r = await page.evaluate((m) => window.__hub!.load(m), MODEL);
      expect('error' in r && r.error.name).toBe('CacheQuotaError');
      const { message } = (r as HubFailure).error;
      expect(message).toContain(`${baseURL}/models/${MODEL}/resolve/main/model.safetensors needs ${size('model.safetensors')} bytes`);
      expect(message).toMatch(/deleteCachedModel/);
      expect(message).toMatch(/cache: false/);
      const keys = await page.evaluate(() => window.__hub!.keys());
      expect(keys.some((k) => k.endsWith('/model.safetensors'))).toBe(false);
    } finally {
      await cdp.send('Storage.overrideQuotaForOrigin', { origin: baseURL! });
    }
    expect(watch.blockedRequests).toEqual([]);
  });

  test('a FileSystemDirectoryHandle loads through resolveModelSource (nested folders)', async ({ page, watch }) => {
    await page.goto('/e2e/hub/index.html');
    await expect(page.getByTestId('hub-status')).toHaveAttribute('data-state', 'ready');
    const tensors = ok(await page.evaluate((m) => window.__hub!.load(m), MODEL)).tensors;
    const fromHandle = ok(await page.evaluate((m) => window.__hub!.loadFromDirectoryHandle(m, `picked/${m}`), MODEL));
    expect([fromHandle.tensors, fromHandle.architecture]).toEqual([tensors, 'qwen2']);
    expect(watch.consoleErrors).toEqual([LOGGED_404]); // the hub load's; the folder has no requests to log
  });
});
