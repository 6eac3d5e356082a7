import { defineConfig } from '@playwright/test';

// Browser tier: Debian's Chromium (no Playwright browser download; there may be no network) on its
// SwiftShader WebGPU adapter, against the production build served by `vite preview`.
// `npm run test:e2e` builds first; scripts/test-all.mjs reads the JSON report.

const PORT = 4173;
const BASE_URL = `http://127.0.0.1:${PORT}`;

const chromiumArgs = [
  '--enable-unsafe-webgpu',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--no-first-run',
  // Not '--enable-features=Vulkan' together with '--use-angle=swiftshader': requestAdapter hangs.
  // Without either, Chromium picks its SwiftShader WebGPU adapter by itself.
];
// Chromium refuses to start its sandbox as root (containers, CI images).
if (process.getuid?.() === 0) chromiumArgs.push('--no-sandbox');

export default defineConfig({
  testDir: 'e2e',
  testMatch: '**/*.spec.ts',
  // One browser at a time: SwiftShader runs on the CPU, and parallel pages only slow each other.
  workers: 1,
  fullyParallel: false,
  forbidOnly: !!process.env.CI,
  retries: 0,
  // SwiftShader compiles compute pipelines slowly (seconds each); a whole fixture model (e2e/models.spec.ts)
  // takes 20-30 s of its 180 s.
  timeout: 180_000,
  expect: { timeout: 15_000 },
  // Not the default 'test-results': Playwright empties its outputDir on start, and other tiers'
  // reports (and our own JSON report below) live in test-results/.
  outputDir: 'test-results/e2e-artifacts',
  reporter: [['list'], ['json', { outputFile: 'test-results/e2e.json' }]],
  use: {
    baseURL: BASE_URL,
    headless: true,
    trace: 'retain-on-failure',
    screenshot: 'only-on-failure',
    launchOptions: {
      executablePath: process.env.WEBSLO_CHROMIUM ?? '/usr/lib/chromium/chromium',
      args: chromiumArgs,
    },
  },
  projects: [{ name: 'chromium-swiftshader', use: { browserName: 'chromium' } }],
  webServer: {
    command: 'npm run preview',
    url: BASE_URL,
    reuseExistingServer: !process.env.CI,
    timeout: 60_000,
    stdout: 'ignore',
    stderr: 'pipe',
  },
});
