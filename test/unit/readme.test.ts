// The README's quickstarts are the examples' files, verbatim: e2e/package.spec.ts runs those files
// from the packed tarball, so this is what keeps the README's code running as written.

import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';

const root = new URL('../../', import.meta.url);
const read = (path: string): string => readFileSync(new URL(path, root), 'utf8');

/** The fenced code blocks of a Markdown text, their contents with a final newline. */
function codeBlocks(markdown: string): string[] {
  return [...markdown.matchAll(/^```[\w-]*\n([\s\S]*?)^```$/gm)].map((m) => m[1]!);
}

describe('README quickstarts', () => {
  const blocks = codeBlocks(read('README.md'));
  for (const example of ['examples/browser/main.js', 'examples/node/chat.mjs']) {
    it(`show ${example} verbatim`, () => {
      expect(blocks).toContain(read(example));
    });
  }

  it('name only files that exist', () => {
    for (const [, path] of read('README.md').matchAll(/\]\(((?:examples|docs)\/[^)#]+)\)/g)) {
      expect(() => read(path!), path).not.toThrow();
    }
  });
});
