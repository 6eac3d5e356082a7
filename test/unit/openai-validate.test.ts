import { describe, expect, it } from 'vitest';
import { InvalidRequestError, normalizeChatParams, normalizeCompletionParams } from '../../src/openai/index.js';

const chat = (extra: Record<string, unknown> = {}): Record<string, unknown> => ({ messages: [{ role: 'user', content: 'hi' }], ...extra });

/** The InvalidRequestError a call throws. */
function rejection(f: () => unknown): InvalidRequestError {
  try {
    f();
  } catch (e) {
    expect(e).toBeInstanceOf(InvalidRequestError);
    return e as InvalidRequestError;
  }
  throw new Error('expected an InvalidRequestError');
}

describe('normalizeChatParams', () => {
  it('fills the defaults: greedy, no cap, no stops, not streamed', () => {
    const r = normalizeChatParams(chat());
    expect(r).toEqual({
      kind: 'chat',
      messages: [{ role: 'user', content: 'hi' }],
      tools: null,
      toolChoice: 'auto',
      model: null,
      maxTokens: null,
      sampling: { temperature: 0, topP: 1, topK: 0, seed: null },
      penalties: null,
      stop: [],
      stream: false,
      includeUsage: false,
      app: null,
      conversationId: null,
      stage: null,
      ignoreEos: false,
      returnTokenIds: false,
      continuation: null,
      logprobs: false,
      topLogprobs: 0,
    });
  });

  it('treats null like absent, as OpenAI does', () => {
    const r = normalizeChatParams(chat({ temperature: null, top_p: null, seed: null, stop: null, max_tokens: null, n: null, logprobs: null, top_logprobs: null }));
    expect(r.sampling).toEqual({ temperature: 0, topP: 1, topK: 0, seed: null });
    expect(r.maxTokens).toBeNull();
  });

  it('reads every supported field and the webslo extensions', () => {
    const r = normalizeChatParams(
      chat({
        model: 'tiny',
        stream: true,
        stream_options: { include_usage: true },
        max_completion_tokens: 64,
        temperature: 0.7,
        top_p: 0.9,
        top_k: 40,
        seed: 42,
        stop: ['\n\n', 'END'],
        logprobs: true,
        top_logprobs: 5,
        n: 1,
        app: 'chat',
        conversationId: 'c1',
        stage: 'think',
        ignore_eos: true,
        return_token_ids: true,
        continuation: { token_ids: [3, 4] },
        user: 'someone', // unknown to us: ignored
      }),
    );
    expect(r).toMatchObject({
      model: 'tiny',
      stream: true,
      includeUsage: true,
      maxTokens: 64,
      sampling: { temperature: 0.7, topP: 0.9, topK: 40, seed: 42n },
      stop: ['\n\n', 'END'],
      logprobs: true,
      topLogprobs: 5,
      app: 'chat',
      conversationId: 'c1',
      stage: 'think',
      ignoreEos: true,
      returnTokenIds: true,
      continuation: { tokenIds: [3, 4] },
    });
    expect(normalizeChatParams(chat({ continuation: { text: 'so far' } })).continuation).toEqual({ text: 'so far' });
  });

  it('takes max_tokens or max_completion_tokens, and rejects a disagreement', () => {
    expect(normalizeChatParams(chat({ max_tokens: 7 })).maxTokens).toBe(7);
    expect(normalizeChatParams(chat({ max_tokens: 7, max_completion_tokens: 7 })).maxTokens).toBe(7);
    const e = rejection(() => normalizeChatParams(chat({ max_tokens: 7, max_completion_tokens: 8 })));
    expect(e.param).toBe('max_tokens');
    expect(rejection(() => normalizeChatParams(chat({ max_tokens: 0 }))).message).toBe('max_tokens must be an integer >= 1 (got 0)');
    expect(rejection(() => normalizeChatParams(chat({ max_completion_tokens: 1.5 }))).param).toBe('max_completion_tokens');
  });

  it('names the parameter, the bad value and the valid range', () => {
    const cases: [Record<string, unknown>, string, string][] = [
      [{ logprobs: true, top_logprobs: 25 }, 'top_logprobs', 'top_logprobs must be an integer in 0..20 (got 25)'],
      [{ temperature: 3 }, 'temperature', 'temperature must be a number in 0..2 (got 3)'],
      [{ temperature: 'hot' }, 'temperature', 'temperature must be a number in 0..2 (got "hot")'],
      [{ top_p: -0.1 }, 'top_p', 'top_p must be a number in 0..1 (got -0.1)'],
      [{ top_p: NaN }, 'top_p', 'top_p must be a number in 0..1 (got NaN)'],
      [{ n: 2 }, 'n', 'n must be 1 (got 2): webslo generates one choice per request'],
      [{ stop: ['a', 'b', 'c', 'd', 'e'] }, 'stop', 'stop must be at most 4 strings (got ["a","b","c","d","e"])'],
      [{ stop: ['a', ''] }, 'stop[1]', 'stop[1] must be a non-empty string (got "")'],
      [{ stop: '' }, 'stop', 'stop must be a non-empty string (got "")'],
      [{ stop: 5 }, 'stop', 'stop must be a string or an array of up to 4 strings (got 5)'],
      [{ seed: 1.5 }, 'seed', 'seed must be an integer in -2^63..2^64-1 (got 1.5)'],
      [{ top_k: -2 }, 'top_k', 'top_k must be an integer >= -1 (0 or -1 = off) (got -2)'],
      [{ logprobs: 'yes' }, 'logprobs', 'logprobs must be a boolean (got "yes")'],
      [{ top_logprobs: 3 }, 'top_logprobs', 'top_logprobs (3) needs logprobs: true'],
      [{ stream_options: { include_usage: true } }, 'stream_options', 'stream_options is only allowed when stream is true'],
      [{ stream: true, stream_options: { include_usage: 1 } }, 'stream_options.include_usage', 'stream_options.include_usage must be a boolean (got 1)'],
      [{ app: '' }, 'app', 'app must be a non-empty string (got "")'],
      [{ ignore_eos: 'no' }, 'ignore_eos', 'ignore_eos must be a boolean (got "no")'],
      [{ return_token_ids: 1 }, 'return_token_ids', 'return_token_ids must be a boolean (got 1)'],
      [{ continuation: [1, 2] }, 'continuation', 'continuation must be an object { token_ids: integer[] } or { text: string } (got [1,2])'],
      [{ continuation: { token_ids: [1, 2.5] } }, 'continuation.token_ids', 'continuation.token_ids must be an array of token ids (integers >= 0) (got [1,2.5])'],
      [{ continuation: { token_ids: [1], text: 'a' } }, 'continuation', 'continuation must be an object { token_ids: integer[] } or { text: string }, not both (got {"token_ids":[1],"text":"a"})'],
    ];
    for (const [extra, param, message] of cases) {
      const e = rejection(() => normalizeChatParams(chat(extra)));
      expect([e.param, e.message, e.name]).toEqual([param, message, 'InvalidRequestError']);
    }
  });

  it('maps seeds to u64: negatives wrap, bigints pass', () => {
    expect(normalizeChatParams(chat({ seed: -1 })).sampling.seed).toBe(2n ** 64n - 1n);
    expect(normalizeChatParams(chat({ seed: 0 })).sampling.seed).toBe(0n);
    expect(normalizeChatParams(chat({ seed: 2n ** 63n })).sampling.seed).toBe(2n ** 63n);
    expect(rejection(() => normalizeChatParams(chat({ seed: 2n ** 64n }))).param).toBe('seed');
  });

  it('is greedy for temperature 0, tiny temperatures and top_p 0', () => {
    expect(normalizeChatParams(chat({ temperature: 0, top_p: 0.5 })).sampling).toMatchObject({ temperature: 0, topP: 0.5 });
    expect(normalizeChatParams(chat({ temperature: 1e-45 })).sampling.temperature).toBe(0);
    expect(normalizeChatParams(chat({ temperature: 1, top_p: 0 })).sampling).toMatchObject({ temperature: 0, topP: 1 });
    expect(normalizeChatParams(chat({ top_k: -1 })).sampling.topK).toBe(0);
    expect(normalizeChatParams(chat({ stop: 'x' })).stop).toEqual(['x']);
  });

  it('joins text parts and checks messages', () => {
    const r = normalizeChatParams({
      messages: [
        {
          role: 'developer',
          content: [
            { type: 'text', text: 'a' },
            { type: 'text', text: 'b' },
          ],
        },
        { role: 'system', content: 'sys', name: 'boss' },
        { role: 'user', content: 'q' },
        { role: 'assistant', content: null, tool_calls: [{ id: 't1', type: 'function', function: { name: 'f', arguments: '{}' } }] },
        { role: 'tool', content: 'result', tool_call_id: 't1' },
      ],
    });
    expect(r.messages).toEqual([
      { role: 'developer', content: 'a\nb' },
      { role: 'system', content: 'sys', name: 'boss' },
      { role: 'user', content: 'q' },
      { role: 'assistant', content: null, tool_calls: [{ id: 't1', type: 'function', function: { name: 'f', arguments: '{}' } }] },
      { role: 'tool', content: 'result', tool_call_id: 't1' },
    ]);
    const bad: [unknown, string, string][] = [
      [[], 'messages', 'messages must be a non-empty array of messages (got [])'],
      ['hi', 'messages', 'messages must be a non-empty array of messages (got "hi")'],
      [[{ role: 'robot', content: 'x' }], 'messages[0].role', 'messages[0].role must be one of system, developer, user, assistant, tool (got "robot")'],
      [[{ role: 'user' }], 'messages[0].content', "messages[0].content must be a string or an array of { type: 'text', text } parts (got undefined)"],
      [
        [{ role: 'user', content: [{ type: 'image_url', image_url: { url: 'x' } }] }],
        'messages[0].content[0].type',
        'messages[0].content[0].type must be \'text\' (got "image_url"): only text content is supported',
      ],
      [[{ role: 'user', content: [{ type: 'text', text: 3 }] }], 'messages[0].content[0].text', 'messages[0].content[0].text must be a string (got 3)'],
      [[{ role: 'tool', content: 'r' }], 'messages[0].tool_call_id', 'messages[0].tool_call_id must be a non-empty string (got undefined)'],
      [[{ role: 'assistant' }], 'messages[0].content', 'messages[0].content must be given when an assistant message has no tool_calls (got undefined)'],
      [[{ role: 'assistant', content: null, tool_calls: [{ id: 1 }] }], 'messages[0].tool_calls[0]', ''],
      [[null], 'messages[0]', 'messages[0] must be an object { role, content } (got null)'],
    ];
    for (const [messages, param, message] of bad) {
      const e = rejection(() => normalizeChatParams({ messages }));
      expect(e.param).toBe(param);
      if (message !== '') expect(e.message).toBe(message);
    }
  });

  it('passes tools through and checks their shape', () => {
    const tool = { type: 'function', function: { name: 'get_weather', parameters: { type: 'object' } } };
    expect(normalizeChatParams(chat({ tools: [tool] })).tools).toEqual([tool]);
    expect(rejection(() => normalizeChatParams(chat({ tools: [{ type: 'function' }] }))).param).toBe('tools[0]');
  });

  it('rejects a body that is not an object', () => {
    expect(rejection(() => normalizeChatParams(null)).param).toBe('(body)');
    expect(rejection(() => normalizeChatParams([1])).message).toBe('(body) must be a JSON object (got [1])');
  });

  it('refuses, naming it, an OpenAI parameter it does not implement; accepts each at its default', () => {
    const cases: [Record<string, unknown>, string][] = [
      [{ response_format: { type: 'json_object' } }, 'response_format'],
      [{ response_format: { type: 'json_schema', json_schema: { name: 'x', schema: {} } } }, 'response_format'],
      [{ tool_choice: 'required' }, 'tool_choice'],
      [{ tool_choice: { type: 'function', function: { name: 'f' } } }, 'tool_choice'],
    ];
    for (const [extra, param] of cases) {
      const e = rejection(() => normalizeChatParams(chat(extra)));
      expect(e.param).toBe(param);
      expect(e.message).toMatch(/not implemented|cannot be enforced/);
    }
    expect(rejection(() => normalizeChatParams(chat({ response_format: { type: 'json_object' } }))).message).toBe(
      `response_format must be absent or { type: 'text' } (JSON mode and JSON Schema output are not implemented yet) (got {"type":"json_object"})`,
    );
    // Defaults (what SDKs and frameworks send) pass.
    expect(() => normalizeChatParams(chat({ frequency_penalty: 0, presence_penalty: 0, response_format: { type: 'text' }, tool_choice: 'auto', logit_bias: {} }))).not.toThrow();
    expect(() => normalizeChatParams(chat({ frequency_penalty: null, response_format: null, logit_bias: null, tool_choice: 'none' }))).not.toThrow();
  });
});

describe('penalties and logit bias', () => {
  it('take OpenAI ranges and vLLM repetition_penalty; all-neutral is null; bad values name the parameter', () => {
    expect(normalizeChatParams(chat({ frequency_penalty: 0, presence_penalty: null, repetition_penalty: 1, logit_bias: { 5: 0 } })).penalties).toBeNull();
    expect(normalizeCompletionParams({ prompt: 'x', frequency_penalty: -2, presence_penalty: 2, repetition_penalty: 1.2, logit_bias: { '5': -100, '70000': 3.5 } }).penalties).toEqual({
      frequency: -2,
      presence: 2,
      repetition: 1.2,
      logitBias: [
        [5, -100],
        [70000, 3.5],
      ],
    });
    for (const [extra, param] of [
      [{ frequency_penalty: 2.01 }, 'frequency_penalty'],
      [{ presence_penalty: '1' }, 'presence_penalty'],
      [{ repetition_penalty: 0 }, 'repetition_penalty'],
      [{ repetition_penalty: -1 }, 'repetition_penalty'],
      [{ logit_bias: [1] }, 'logit_bias'],
      [{ logit_bias: { '-1': 1 } }, 'logit_bias'],
      [{ logit_bias: { '01': 1 } }, 'logit_bias'],
      [{ logit_bias: { 5: 101 } }, 'logit_bias.5'],
    ] as const)
      expect(rejection(() => normalizeChatParams(chat(extra))).param, JSON.stringify(extra)).toBe(param);
  });
});

describe('normalizeCompletionParams', () => {
  it('takes a text or token-id prompt and legacy logprobs', () => {
    const r = normalizeCompletionParams({ prompt: 'Once upon', max_tokens: 16, logprobs: 3, temperature: 0.5 });
    expect(r).toMatchObject({ kind: 'completion', prompt: 'Once upon', maxTokens: 16, logprobs: true, topLogprobs: 3, sampling: { temperature: 0.5 } });
    expect(normalizeCompletionParams({ prompt: [1, 22557] }).prompt).toEqual([1, 22557]);
    expect(normalizeCompletionParams({ prompt: '' }).prompt).toBe('');
    expect(normalizeCompletionParams({ prompt: ['one'] }).prompt).toBe('one');
    expect(normalizeCompletionParams({ prompt: [[5, 6]] }).prompt).toEqual([5, 6]);
    const zero = normalizeCompletionParams({ prompt: 'x', logprobs: 0 });
    expect([zero.logprobs, zero.topLogprobs]).toEqual([true, 0]);
    const none = normalizeCompletionParams({ prompt: 'x', logprobs: null });
    expect([none.logprobs, none.topLogprobs]).toEqual([false, 0]);
  });

  it('rejects bad prompts and logprobs', () => {
    expect(rejection(() => normalizeCompletionParams({})).message).toBe('prompt must be given (got undefined)');
    expect(rejection(() => normalizeCompletionParams({ prompt: [] })).param).toBe('prompt');
    expect(rejection(() => normalizeCompletionParams({ prompt: [1, -2] })).param).toBe('prompt');
    expect(rejection(() => normalizeCompletionParams({ prompt: ['a', 'b'] })).message).toBe(
      'prompt must be a string or a non-empty array of token ids (integers >= 0) (got ["a","b"]): batched prompts are not supported',
    );
    expect(rejection(() => normalizeCompletionParams({ prompt: 'x', logprobs: 6 })).message).toBe('logprobs must be an integer in 0..5 (got 6): the number of alternatives per token; null for none');
    expect(rejection(() => normalizeCompletionParams({ prompt: 'x', logprobs: true })).param).toBe('logprobs');
    expect(rejection(() => normalizeCompletionParams({ prompt: 'x', n: 3 })).param).toBe('n');
    for (const [extra, param] of [
      [{ echo: true }, 'echo'],
      [{ suffix: 'y' }, 'suffix'],
      [{ best_of: 3 }, 'best_of'],
      [{ frequency_penalty: 2.5 }, 'frequency_penalty'],
    ] as const)
      expect(rejection(() => normalizeCompletionParams({ prompt: 'x', ...extra })).param).toBe(param);
    expect(() => normalizeCompletionParams({ prompt: 'x', echo: false, best_of: 1, suffix: '' })).not.toThrow();
  });
});
