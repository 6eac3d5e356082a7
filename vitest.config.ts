import { defineConfig } from 'vitest/config';

// Two Node tiers: `unit` (pure TypeScript, parallel) and `gpu` (Dawn on a Vulkan driver: serial,
// one device per test file and process; scripts/test-gpu.mjs runs it once per feature config).
export default defineConfig({
  test: {
    projects: [
      {
        test: {
          name: 'unit',
          include: ['test/unit/**/*.test.ts'],
          environment: 'node',
          testTimeout: 60_000,
        },
      },
      {
        test: {
          name: 'gpu',
          include: ['test/gpu/**/*.test.ts'],
          environment: 'node',
          pool: 'forks',
          isolate: true,
          fileParallelism: false,
          maxWorkers: 1,
          // SwiftShader compiles pipelines slowly and lavapipe runs kernels on 2 cores.
          testTimeout: 600_000,
          hookTimeout: 300_000,
        },
      },
    ],
  },
});
