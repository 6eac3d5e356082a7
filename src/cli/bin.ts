// The `webslo` command of the npm package (lib/node/cli.js, package.json "bin"): the CLI of
// main.ts on the built JavaScript, no Vite at run time. Exits with the command's code (Dawn would
// keep the process alive). In this repository, bin/webslo.mjs runs main.ts from the sources.

import { main } from './main.js';

process.exit(await main(process.argv.slice(2)));
