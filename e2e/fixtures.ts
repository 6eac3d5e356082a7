// Every spec runs offline: any request that is not to the local preview server is aborted and
// recorded, and console errors are collected, so tests can assert that there were none.

import { test as base, type Page } from '@playwright/test';

export interface PageWatch {
  /** URLs the page tried to fetch off this machine (all were aborted). */
  blockedRequests: string[];
  /** console.error messages and uncaught exceptions, from the page and its workers. */
  consoleErrors: string[];
}

const LOCAL_HOSTS = new Set(['127.0.0.1', 'localhost', '[::1]']);

export function isLocalUrl(url: string): boolean {
  return LOCAL_HOSTS.has(new URL(url).hostname);
}

function watchConsole(page: Page, errors: string[]): void {
  page.on('console', (msg) => {
    if (msg.type() === 'error') errors.push(`console.error: ${msg.text()}`);
  });
  page.on('pageerror', (err) => errors.push(`uncaught: ${err.message}`));
  page.on('worker', (worker) => {
    worker.on('console', (msg) => {
      if (msg.type() === 'error') errors.push(`worker console.error: ${msg.text()}`);
    });
  });
}

export const test = base.extend<{ watch: PageWatch }>({
  watch: [
    async ({ context, page }, use) => {
      const watch: PageWatch = { blockedRequests: [], consoleErrors: [] };
      // On the context, not the page, so requests from workers are covered too.
      await context.route('**/*', async (route) => {
        const url = route.request().url();
        if (isLocalUrl(url)) return route.continue();
        watch.blockedRequests.push(url);
        return route.abort('internetdisconnected');
      });
      watchConsole(page, watch.consoleErrors);
      await use(watch);
    },
    { auto: true },
  ],
});

export { expect } from '@playwright/test';
