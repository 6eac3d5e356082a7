// The matmul kernels in a module worker on Chromium's SwiftShader adapter: every output within
// the float32 error bound of the float64 reference, and the matvec and tiled paths bitwise equal.

import { HARNESS_CASES, HARNESS_DTYPES } from './harness/cases.js';
import type { HarnessResult, HarnessSuccess } from './harness/protocol.js';
import { expect, test } from './fixtures.js';

test('matmul kernels in a worker match the float64 reference and agree bitwise across paths', async ({ page, watch }, testInfo) => {
  await page.goto('/e2e/harness/index.html');
  // SwiftShader compiles eight pipelines (two paths x scalar/vec4 x two dtypes) on the CPU.
  await expect(page.getByTestId('harness-status')).toHaveAttribute('data-state', /^(done|failed)$/, { timeout: 60_000 });
  const result = (await page.evaluate(() => window.__harnessResult)) as HarnessResult | undefined;
  if (!result?.ok) throw new Error(`harness failed: ${JSON.stringify(result?.error ?? result)}`);
  const r: HarnessSuccess = result;
  // The numbers, for the report (and for comparing runs across Chromium versions).
  await testInfo.attach('harness-result.json', { body: JSON.stringify(r, null, 2), contentType: 'application/json' });

  expect(r.scope).toBe('worker');
  expect(r.adapter.architecture).toMatch(/swiftshader/i);
  expect(r.features).toEqual({ shaderF16: false, subgroups: true, timestampQuery: true });
  expect([r.subgroupMinSize, r.subgroupMaxSize, r.reduceLanes]).toEqual([4, 4, 4]);
  expect(r.gpuErrors).toEqual([]);

  // Exactly the planned cases came back, in order.
  const planned = HARNESS_DTYPES.flatMap((dtype) => HARNESS_CASES.map((c) => ({ dtype, ...c })));
  expect(r.cases.map(({ dtype, M, N, K }) => ({ dtype, M, N, K }))).toEqual(planned);

  for (const c of r.cases) {
    const name = `${c.dtype} M=${c.M} N=${c.N} K=${c.K}`;
    expect(c.outputs, name).toBe(c.M * c.N);
    // Real outputs (random data with |x| <= 1, |w| <= 0.5): a zero or garbage Y fails below.
    expect(c.maxAbsReference, name).toBeGreaterThan(0.1);
    expect(c.matvecBoundRatio, `${name} matvec error / bound`).toBeLessThanOrEqual(1);
    expect(c.tiledBoundRatio, `${name} tiled error / bound`).toBeLessThanOrEqual(1);
    expect(c.maxAbsError, name).toBeLessThan(1e-4);
    expect(c.bitwiseMismatches, `${name} outputs differing between matvec and tiled`).toBe(0);
    expect(c.bitwiseEqual, name).toBe(true);
    expect(c.sample.tiled, name).toBe(c.sample.matvec);
    expect(Math.abs(c.sample.matvec - c.sample.reference), name).toBeLessThan(1e-5);
  }

  // The page shows the same result for a human.
  await expect(page.getByTestId('harness-status')).toContainText(`Done: ${planned.length} cases`);
  expect(watch.consoleErrors).toEqual([]);
  expect(watch.blockedRequests).toEqual([]);
});
