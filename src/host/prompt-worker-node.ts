// The in-process engine's prompt worker in Node (node:worker_threads): the service of
// prompt-encoder.ts over the thread's parentPort. The package's Node build ships this file as
// lib/node/prompt-worker.js and starts it from host/node-prompt-spawn.ts; nothing imports it.

import { parentPort } from 'node:worker_threads';
import { servePromptEncoder } from './prompt-encoder.js';

const port = parentPort;
if (port) servePromptEncoder({ postMessage: (m) => port.postMessage(m), addEventListener: (_type, listener) => void port.on('message', (data: unknown) => listener({ data })) });
