// Loads xgrammar's WebAssembly build (@mlc-ai/web-xgrammar, the grammar engine WebLLM uses) in Node.
// The package ships one UMD bundle in a `"type": "module"` package: `import` in Node evaluates it as
// ES module code, where its Emscripten glue calls `require('url')` and reads `__filename`
// (`require is not defined in ES module scope`). Evaluated as the CommonJS module it is, it works.
// In a page or a worker `import` works as is (the glue takes the document/location branch).
// Evaluation tooling for #19 (bench/grammar.ts); the engine's loader will live in src/ once the
// engine uses grammars.

import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import type xgrammarModule from '@mlc-ai/web-xgrammar';

export type XGrammar = typeof xgrammarModule;

let loaded: XGrammar | null = null;

export function loadXGrammarNode(): XGrammar {
  if (loaded) return loaded;
  const require = createRequire(import.meta.url);
  const file = require.resolve('@mlc-ai/web-xgrammar/lib/index.js');
  const module = { exports: {} as Record<string, unknown> };
  // The UMD wrapper sees `exports` and `module` and fills module.exports, as under require().
  new Function('exports', 'module', 'require', '__filename', '__dirname', readFileSync(file, 'utf8'))(module.exports, module, require, file, file.replace(/\/[^/]*$/, ''));
  loaded = module.exports as unknown as XGrammar;
  return loaded;
}
