/* global process, console */
// The Node scratch app: the package's node entry, in-process on Dawn (the optional peer 'webgpu').
// Usage: node main.js <model folder> <profile.json>; prints one JSON line with the completion.
import { readFileSync } from 'node:fs';
import { createEngine } from 'webslo';

const [model, profilePath] = process.argv.slice(2);
const engine = await createEngine({ model, profile: JSON.parse(readFileSync(profilePath, 'utf8')), worker: false, cache: false });
engine.app('chat', { ttftMs: 60000, tpotMs: 10000 });
const completion = await engine.chat.completions.create({ app: 'chat', messages: [{ role: 'user', content: 'Hello' }], max_tokens: 8 });
await engine.unload();
console.log(JSON.stringify({ completion, entry: import.meta.resolve('webslo'), adapter: engine.info.adapter }));
// Dawn keeps the event loop alive while its instance exists.
process.exit(0);
