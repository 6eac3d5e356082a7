import { fileURLToPath } from 'node:url';
import { defineConfig, type Plugin } from 'vite';
import { serveFixtureModels } from './e2e/fixture-server.js';

// Pages: the demo (index.html) and the browser test pages that e2e/ drives (the kernel harness,
// the whole-model page, hub loading, and the engine through its worker). Vitest has its own
// vitest.config.ts (which takes precedence there), so nothing here affects the Node tiers.

const page = (path: string): string => fileURLToPath(new URL(path, import.meta.url));

/**
 * The npm package 'webgpu' is Dawn for Node (a native addon). src/gpu/device.ts only imports it
 * through a computed specifier that bundlers leave alone; this guard turns any future static
 * import of it in browser code into a build error instead of a broken bundle.
 */
function keepDawnOutOfTheBrowser(): Plugin {
  return {
    name: 'webslo:keep-dawn-out-of-the-browser',
    enforce: 'pre',
    resolveId(source, importer) {
      if (source === 'webgpu' || source.startsWith('webgpu/')) {
        this.error(`'${source}' (Dawn for Node) was imported by ${importer ?? 'an entry'}; browser code must use navigator.gpu`);
      }
      return null;
    },
  };
}

export default defineConfig({
  // The fixture models (test/fixtures/<name>) at /models/<name>/resolve/main/<file>, the hub's URL
  // layout, on the dev and preview servers only: served from disk, never copied into the build.
  plugins: [keepDawnOutOfTheBrowser(), serveFixtureModels()],
  server: { host: '127.0.0.1', port: 5173, strictPort: true },
  preview: { host: '127.0.0.1', port: 4173, strictPort: true },
  // The dev server pre-bundles dependencies found from every page (comlink for the test pages).
  optimizeDeps: { entries: ['index.html', 'e2e/harness/index.html', 'e2e/models/index.html', 'e2e/engine/index.html'], exclude: ['webgpu'] },
  worker: {
    // Module workers: the kernel and model workers import the same ES modules as the page.
    format: 'es',
    plugins: () => [keepDawnOutOfTheBrowser()],
    rolldownOptions: { output: { keepNames: true } },
  },
  build: {
    target: 'es2022',
    sourcemap: true,
    rolldownOptions: {
      input: {
        main: page('./index.html'),
        harness: page('./e2e/harness/index.html'),
        models: page('./e2e/models/index.html'),
        hub: page('./e2e/hub/index.html'),
        engine: page('./e2e/engine/index.html'),
      },
      // The GPU errors take their name from their class (`new.target.name`), and the demo shows
      // it: without this the minifier turns GpuUnavailableError into 't'.
      output: { keepNames: true },
    },
  },
});
