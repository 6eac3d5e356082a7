import { createEngine } from 'webslo';

// In Node the engine runs in this process on Dawn (the `webgpu` package). The model is downloaded
// once from the Hugging Face hub into ~/.cache/webslo ($HF_ENDPOINT names a mirror).
const engine = await createEngine({ model: 'Qwen/Qwen2.5-0.5B-Instruct' });
const chat = engine.app('chat', { ttftMs: 10_000, tpotMs: 1000 }); // SLOs even a CPU fallback meets
const stream = await engine.chat.completions.create({ app: chat, messages: [{ role: 'user', content: 'Name three colours.' }], max_tokens: 64, stream: true });
for await (const chunk of stream) process.stdout.write(chunk.choices[0]?.delta.content ?? '');

const [stats] = (await engine.stats()).apps.filter((a) => a.app === 'chat');
console.log(`\nTTFT ${stats.ttftMs.p50?.toFixed(0)} ms, TPOT ${stats.tpotMs.p50?.toFixed(1)} ms, SLO attainment ${stats.attainment}`);
await engine.unload();
