import { createEngine } from 'webslo';

const status = document.querySelector('#status');
const output = document.querySelector('#output');

// Downloaded once from the Hugging Face hub into the Cache API; the engine runs in a Web Worker.
const engine = await createEngine({
  model: 'Qwen/Qwen2.5-0.5B-Instruct',
  onProgress: (p) => (status.textContent = `${p.phase} ${p.file ?? ''} ${p.loaded}/${p.total ?? '?'}`),
});
const chat = engine.app('chat', { ttftMs: 10_000, tpotMs: 1000 }); // SLOs even a CPU fallback meets
status.textContent = 'generating';
const stream = await engine.chat.completions.create({ app: chat, messages: [{ role: 'user', content: 'Name three colours.' }], max_tokens: 64, stream: true });
for await (const chunk of stream) output.textContent += chunk.choices[0]?.delta.content ?? '';
status.textContent = 'done';
