import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { ChatTemplateError, chatTemplateOf, normalizeChatParams, renderChat } from '../../src/openai/index.js';
import { TextTokenizer } from '../../src/tokenizer/tokenizer.js';

const read = (file: string): Record<string, unknown> => JSON.parse(readFileSync(new URL(`../fixtures/tiny-qwen2/${file}`, import.meta.url), 'utf8')) as Record<string, unknown>;
const tokenizerJson = read('tokenizer.json');
const tokenizerConfig = read('tokenizer_config.json');
const tok = new TextTokenizer(tokenizerJson, tokenizerConfig);

const CHATML =
  "{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>\\n' }}{% endfor %}" +
  "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}";

// Qwen2.5-style: tools go into the system turn as JSON.
const CHATML_TOOLS = "{% if tools %}{{ '<|im_start|>system\\n# Tools\\n' }}{% for tool in tools %}{{ tool | tojson }}{{ '\\n' }}{% endfor %}{{ '<|im_end|>\\n' }}{% endif %}" + CHATML;

// Mistral-style: alternating roles or raise_exception.
const ALTERNATING =
  "{{ bos_token }}{% for message in messages %}{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}" +
  "{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}{% endif %}" +
  "{% if message['role'] == 'user' %}{{ '[INST] ' + message['content'] + ' [/INST]' }}{% else %}{{ message['content'] + eos_token }}{% endif %}{% endfor %}";

function templateError(f: () => unknown): ChatTemplateError {
  try {
    f();
  } catch (e) {
    expect(e).toBeInstanceOf(ChatTemplateError);
    return e as ChatTemplateError;
  }
  throw new Error('expected a ChatTemplateError');
}

describe('renderChat', () => {
  it("renders tiny-qwen2's Llama-2 template with the tokenizer's special tokens", () => {
    const { template, bosToken, eosToken } = chatTemplateOf(tok);
    expect([bosToken, eosToken]).toEqual(['<s>', '</s>']);
    const { messages } = normalizeChatParams({
      messages: [
        { role: 'system', content: 'Be brief.' },
        {
          role: 'user',
          content: [
            { type: 'text', text: 'Hi' },
            { type: 'text', text: 'there' },
          ],
        },
        { role: 'assistant', content: 'Hello!' },
        { role: 'user', content: 'Bye' },
      ],
    });
    const text = renderChat(template, messages, { bosToken, eosToken });
    expect(text).toBe('<s>[INST] <<SYS>>\nBe brief.\n<</SYS>>\n\nHi\nthere [/INST] Hello! </s><s>[INST] Bye [/INST]');
    // The rendered prompt already starts with BOS: encoding adds no second one.
    const ids = tok.encode(text);
    expect(ids.filter((id) => id === tok.bosTokenId)).toHaveLength(2);
    expect(ids[0]).toBe(tok.bosTokenId);
  });

  it('renders ChatML with and without the generation prompt', () => {
    const messages = [
      { role: 'system' as const, content: 'S' },
      { role: 'user' as const, content: 'U' },
    ];
    expect(renderChat(CHATML, messages)).toBe('<|im_start|>system\nS<|im_end|>\n<|im_start|>user\nU<|im_end|>\n<|im_start|>assistant\n');
    expect(renderChat(CHATML, messages, { addGenerationPrompt: false })).toBe('<|im_start|>system\nS<|im_end|>\n<|im_start|>user\nU<|im_end|>\n');
  });

  it('passes tools to the template only when there are some', () => {
    const tools = [{ type: 'function' as const, function: { name: 'get_weather', parameters: { type: 'object' } } }];
    const messages = [{ role: 'user' as const, content: 'U' }];
    const text = renderChat(CHATML_TOOLS, messages, { tools });
    expect(text.startsWith('<|im_start|>system\n# Tools\n{')).toBe(true);
    expect(text).toContain('"get_weather"');
    expect(renderChat(CHATML_TOOLS, messages, { tools: [] })).toBe(renderChat(CHATML, messages));
  });

  it("turns the template's raise_exception into ChatTemplateError('raised') with its message", () => {
    const e = templateError(() =>
      renderChat(ALTERNATING, [
        { role: 'user', content: 'a' },
        { role: 'user', content: 'b' },
      ]),
    );
    expect(e.kind).toBe('raised');
    expect(e.name).toBe('ChatTemplateError');
    expect(e.message).toBe('the chat template rejected the messages: Conversation roles must alternate user/assistant/user/assistant/...');
    expect(renderChat(ALTERNATING, [{ role: 'user', content: 'a' }], { bosToken: '<s>' })).toBe('<s>[INST] a [/INST]');
  });

  it('has the globals templates use: range, strftime_now, none/True, namespace', () => {
    const t =
      '{% set ns = namespace(n=0) %}{% for i in range(3) %}{% set ns.n = ns.n + i %}{% endfor %}{{ ns.n }}|' +
      '{{ strftime_now("%d %b %Y") }}|{{ none is none }}|{{ True and not False }}|{{ range(4, 0, -2) | join(",") }}';
    expect(renderChat(t, [])).toMatch(/^3\|\d\d [A-Z][a-z]{2} \d{4}\|true\|true\|4,2$/);
  });

  it('a template that loops without limit is refused (range() budget per render), and the next render works', () => {
    // Once: range(1000000) blocked the engine for 10 s; range(100000000) exhausted the heap.
    const msgs = [{ role: 'user' as const, content: 'hi' }];
    for (const t of ['{% for i in range(100000000) %}x{% endfor %}', '{% for i in range(1000) %}{% for j in range(1000) %}x{% endfor %}{% endfor %}']) {
      let err: unknown;
      try {
        renderChat(t, msgs);
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(ChatTemplateError);
      expect((err as Error).message).toMatch(/range\(\) for more than 100000 numbers/);
    }
    expect(renderChat('{% for i in range(3) %}{{ i }}{% endfor %}', msgs)).toBe('012');
  });

  it('a template that nests loops over the messages or grows a string without limit is refused, and the next render works', () => {
    const many = Array.from({ length: 1000 }, (_, i) => ({ role: (i % 2 ? 'assistant' : 'user') as 'user' | 'assistant', content: `m${i}` }));
    // 1,000 x 1,000 iterations: no range() involved, so only the evaluation budget stops it.
    const nested = templateError(() => renderChat('{% for a in messages %}{% for b in messages %}{{ b.content }}{% endfor %}{% endfor %}', many));
    expect(nested.kind).toBe('render');
    expect(nested.message).toMatch(/evaluated more than 500000 expressions in one render: refused/);
    // 40 doublings of one character would be a terabyte: refused at 16 Mi characters.
    const doubling = templateError(() => renderChat("{% set ns = namespace(s='x') %}{% for i in range(40) %}{% set ns.s = ns.s + ns.s %}{% endfor %}{{ ns.s | length }}", many));
    expect(doubling.kind).toBe('render');
    expect(doubling.message).toMatch(/built a string of \d+ characters \(the limit is 16777216\)/);
    // A real template over the same 1,000 messages is far inside both limits.
    expect(renderChat(CHATML, many)).toContain('<|im_start|>assistant\nm999<|im_end|>');
  });

  it('reports a template that does not parse or fails to render', () => {
    const syntax = templateError(() => renderChat('{% for m in messages %}', [{ role: 'user', content: 'a' }]));
    expect(syntax.kind).toBe('syntax');
    expect(syntax.message).toMatch(/^the chat template does not parse: /);
    // Llama-2's template calls content.strip(): an assistant message without content breaks it.
    const render = templateError(() =>
      renderChat(chatTemplateOf(tok).template, [
        { role: 'user', content: 'a' },
        { role: 'assistant', content: null },
      ]),
    );
    expect(render.kind).toBe('render');
    expect(render.message).toMatch(/^the chat template failed to render: /);
  });

  it('says to use completions when the tokenizer has no chat template', () => {
    const config = { ...tokenizerConfig };
    delete config['chat_template'];
    const e = templateError(() => chatTemplateOf(new TextTokenizer(tokenizerJson, config)));
    expect(e.kind).toBe('missing');
    expect(e.message).toContain('completions.create with a raw prompt');
    expect(templateError(() => renderChat(null, [])).kind).toBe('missing');
  });
});
