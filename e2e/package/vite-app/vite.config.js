/* global process */
// A plain Vite app: no webslo-specific settings (no optimizeDeps.exclude, no worker options).
// /models is proxied to the test's fixture server, so the page loads the model from its own origin.
const models = process.env.WEBSLO_FIXTURE_ORIGIN;
if (!models) throw new Error('WEBSLO_FIXTURE_ORIGIN is not set (e2e/package.spec.ts sets it)');

export default {
  server: { proxy: { '/models': models } },
  preview: { proxy: { '/models': models } },
};
