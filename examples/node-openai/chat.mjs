import OpenAI from 'openai';
import { createEngine, engineFetch } from 'webslo';

const engine = await createEngine({ model: 'Qwen/Qwen2.5-0.5B-Instruct' });
engine.app('chat', { ttftMs: 10_000, tpotMs: 1000 });

// The official OpenAI client, talking to the engine in this process: no server, no network.
const client = new OpenAI({ baseURL: 'http://webslo.local/v1', apiKey: 'unused', fetch: engineFetch(engine) });
const completion = await client.chat.completions.create({
  model: engine.info.model,
  app: 'chat', // webslo's extension: the app whose SLOs this request is held to
  messages: [{ role: 'user', content: 'Name three colours.' }],
  max_tokens: 64,
});
console.log(completion.choices[0].message.content);
console.log(completion.usage);
await engine.unload();
