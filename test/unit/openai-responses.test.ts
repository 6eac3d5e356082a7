import { describe, expect, it } from 'vitest';
import { chatChunk, chatCompletion, chatUsageChunk, completion, completionChunk, completionUsageChunk, createdAt, newChatCompletionId, newCompletionId, usage } from '../../src/openai/index.js';

const head = { id: 'chatcmpl-x', created: 1_700_000_000, model: 'tiny' };

describe('ids, created, usage', () => {
  it("makes OpenAI-style ids from the platform's CSPRNG", () => {
    const ids = new Set(Array.from({ length: 200 }, newChatCompletionId));
    expect(ids.size).toBe(200);
    for (const id of ids) expect(id).toMatch(/^chatcmpl-[A-Za-z0-9]{29}$/);
    expect(newCompletionId()).toMatch(/^cmpl-[A-Za-z0-9]{29}$/);
  });

  it('writes created in whole seconds and totals usage', () => {
    expect(createdAt(1_700_000_000_999)).toBe(1_700_000_000);
    expect(Math.abs(createdAt() - Date.now() / 1000)).toBeLessThan(2);
    expect(usage(12, 5)).toEqual({ prompt_tokens: 12, completion_tokens: 5, total_tokens: 17 });
  });
});

describe('chat responses', () => {
  it('builds a chat.completion with the fields in OpenAI order', () => {
    const r = chatCompletion({ ...head, content: 'Hi!', finishReason: 'stop', usage: usage(3, 2) });
    expect(JSON.stringify(r)).toBe(
      '{"id":"chatcmpl-x","object":"chat.completion","created":1700000000,"model":"tiny",' +
        '"choices":[{"index":0,"message":{"role":"assistant","content":"Hi!","refusal":null},"logprobs":null,"finish_reason":"stop"}],' +
        '"usage":{"prompt_tokens":3,"completion_tokens":2,"total_tokens":5}}',
    );
  });

  it('adds logprobs and the webslo extension when given', () => {
    const lp = [{ token: 'Hi', logprob: -0.1, bytes: [72, 105], top_logprobs: [] }];
    const r = chatCompletion({ ...head, content: 'Hi', finishReason: 'length', usage: usage(1, 1), logprobs: lp, webslo: { app: 'chat', decision: 'admitted', ttft_ms: 12.5 } });
    expect(r.choices[0]!.logprobs).toEqual({ content: lp, refusal: null });
    expect(r.choices[0]!.finish_reason).toBe('length');
    expect(Object.keys(r)).toEqual(['id', 'object', 'created', 'model', 'choices', 'usage', 'webslo']);
    expect(r.webslo).toEqual({ app: 'chat', decision: 'admitted', ttft_ms: 12.5 });
  });

  it('builds the chunks of a stream: role first, content, finish, usage', () => {
    const first = chatChunk({ ...head, role: true, content: '' });
    expect(JSON.stringify(first)).toBe(
      '{"id":"chatcmpl-x","object":"chat.completion.chunk","created":1700000000,"model":"tiny",' +
        '"choices":[{"index":0,"delta":{"role":"assistant","content":""},"logprobs":null,"finish_reason":null}]}',
    );
    expect(chatChunk({ ...head, content: 'Hel' }).choices[0]!.delta).toEqual({ content: 'Hel' });
    const last = chatChunk({ ...head, finishReason: 'stop', includeUsage: true, webslo: { app: 'a', decision: 'best-effort' } });
    expect(last.choices[0]).toEqual({ index: 0, delta: {}, logprobs: null, finish_reason: 'stop' });
    expect(last.usage).toBeNull();
    expect(last.webslo?.decision).toBe('best-effort');
    expect(Object.keys(last)).toEqual(['id', 'object', 'created', 'model', 'choices', 'usage', 'webslo']);
    const u = chatUsageChunk({ ...head, usage: usage(4, 6) });
    expect(JSON.stringify(u)).toBe(
      '{"id":"chatcmpl-x","object":"chat.completion.chunk","created":1700000000,"model":"tiny","choices":[],"usage":{"prompt_tokens":4,"completion_tokens":6,"total_tokens":10}}',
    );
    const lp = [{ token: 'a', logprob: -1, bytes: [97], top_logprobs: [] }];
    expect(chatChunk({ ...head, content: 'a', logprobs: lp }).choices[0]!.logprobs).toEqual({ content: lp, refusal: null });
  });
});

describe('legacy completion responses', () => {
  const h = { ...head, id: 'cmpl-x' };

  it('builds a text_completion with the fields in OpenAI order', () => {
    const r = completion({ ...h, text: ' upon a time', finishReason: 'length', usage: usage(2, 4) });
    expect(JSON.stringify(r)).toBe(
      '{"id":"cmpl-x","object":"text_completion","created":1700000000,"model":"tiny",' +
        '"choices":[{"text":" upon a time","index":0,"logprobs":null,"finish_reason":"length"}],' +
        '"usage":{"prompt_tokens":2,"completion_tokens":4,"total_tokens":6}}',
    );
    const logprobs = { tokens: [' upon'], token_logprobs: [-1], top_logprobs: [{ ' upon': -1 }], text_offset: [0] };
    expect(completion({ ...h, text: ' upon', finishReason: 'stop', usage: usage(2, 1), logprobs }).choices[0]!.logprobs).toEqual(logprobs);
  });

  it('builds stream chunks with finish_reason null until the end, and the usage chunk', () => {
    expect(JSON.stringify(completionChunk({ ...h, text: ' up' }))).toBe(
      '{"id":"cmpl-x","object":"text_completion","created":1700000000,"model":"tiny","choices":[{"text":" up","index":0,"logprobs":null,"finish_reason":null}]}',
    );
    const last = completionChunk({ ...h, text: '', finishReason: 'stop', includeUsage: true });
    expect([last.choices[0]!.finish_reason, last.usage]).toEqual(['stop', null]);
    const u = completionUsageChunk({ ...h, usage: usage(1, 2), webslo: { app: 'a', decision: 'admitted' } });
    expect(u.choices).toEqual([]);
    expect(u.usage).toEqual({ prompt_tokens: 1, completion_tokens: 2, total_tokens: 3 });
    expect(u.webslo).toEqual({ app: 'a', decision: 'admitted' });
  });
});
