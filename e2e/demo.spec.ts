// The demo page on Chromium's SwiftShader WebGPU adapter: it acquires a device through the same
// GpuRuntime.create() as Node, shows what was granted, and works with the network cut off.

import { expect, test } from './fixtures.js';

test('shows the SwiftShader adapter and its capabilities, offline, without console errors', async ({ page, watch }) => {
  await page.goto('/');
  await expect(page).toHaveTitle('webslo');
  await expect(page.getByTestId('tagline')).toContainText('LLM inference engine on WebGPU');

  const status = page.getByTestId('status');
  await expect(status).toHaveAttribute('data-state', 'ready', { timeout: 60_000 });
  await expect(page.getByTestId('error')).toBeHidden();

  // Chromium reports vendor and architecture but leaves device/description empty on purpose.
  await expect(page.getByTestId('cap-vendor')).toHaveText('google');
  await expect(page.getByTestId('cap-architecture')).toHaveText(/swiftshader/i);
  await expect(page.getByTestId('cap-description')).toHaveText('not reported');

  // SwiftShader: no f16 in shaders, subgroups of exactly 4, timestamp queries.
  await expect(page.getByTestId('cap-shader-f16')).toHaveText('no');
  await expect(page.getByTestId('cap-subgroups')).toHaveText('yes (sizes 4–4)');
  await expect(page.getByTestId('cap-timestamp-query')).toHaveText('yes');
  await expect(page.getByTestId('summary')).toContainText('no shader-f16, subgroups 4-4, timestamp-query');

  // Limits are requested at the adapter's maximum, not WebGPU's defaults (128 MiB, 16 KiB, 8).
  await expect(page.getByTestId('cap-maxStorageBufferBindingSize')).toHaveText('1073741824 (1024 MiB)');
  await expect(page.getByTestId('cap-maxComputeWorkgroupStorageSize')).toHaveText('32768 (32 KiB)');
  await expect(page.getByTestId('cap-maxStorageBuffersPerShaderStage')).toHaveText('10');
  await expect(page.getByTestId('cap-maxComputeInvocationsPerWorkgroup')).toHaveText('256');
  await expect(page.getByTestId('cap-minUniformBufferOffsetAlignment')).toHaveText('256');
  await expect(page.getByTestId('cap-reduceLanes')).toHaveText('4');
  // Every granted limit has a row: the nine requested ones and the two alignments.
  await expect(page.locator('[data-testid^="cap-max"], [data-testid^="cap-min"]')).toHaveCount(11);

  expect(watch.consoleErrors).toEqual([]);
  expect(watch.blockedRequests).toEqual([]);
});

test('without navigator.gpu it shows GpuUnavailableError and what to do', async ({ page, watch }) => {
  // WebIDL attributes are configurable accessors on the prototype, so this hides WebGPU entirely.
  await page.addInitScript(() => {
    Object.defineProperty(Navigator.prototype, 'gpu', { get: () => undefined, configurable: true });
  });
  await page.goto('/');
  await expect(page.getByTestId('status')).toHaveAttribute('data-state', 'error');
  await expect(page.getByTestId('error-name')).toHaveText('GpuUnavailableError');
  await expect(page.getByTestId('error-message')).toContainText('WebGPU is not available in this browser');
  await expect(page.getByTestId('error-help')).toContainText('--enable-unsafe-webgpu');
  await expect(page.getByTestId('capabilities')).toBeHidden();
  expect(watch.consoleErrors).toEqual([]);
  expect(watch.blockedRequests).toEqual([]);
});

test('when the browser offers no adapter it says so', async ({ page, watch }) => {
  await page.addInitScript(() => {
    GPU.prototype.requestAdapter = () => Promise.resolve(null);
  });
  await page.goto('/');
  await expect(page.getByTestId('status')).toHaveAttribute('data-state', 'error');
  await expect(page.getByTestId('error-name')).toHaveText('GpuUnavailableError');
  await expect(page.getByTestId('error-message')).toContainText('The browser offered no WebGPU adapter');
  expect(watch.consoleErrors).toEqual([]);
});

test('the offline guard really blocks remote requests', async ({ page, watch }) => {
  // Proves the blockedRequests assertions above can fail.
  await page.goto('/');
  const fetched = await page.evaluate(() =>
    fetch('https://example.com/webslo-offline-probe').then(
      () => 'loaded',
      () => 'blocked',
    ),
  );
  expect(fetched).toBe('blocked');
  expect(watch.blockedRequests).toEqual(['https://example.com/webslo-offline-probe']);
});
