// Chat messages -> prompt text through the model's Jinja chat template (tokenizer_config.json's
// chat_template), with @huggingface/jinja, in the variables transformers' apply_chat_template
// passes: messages, bos_token, eos_token, add_generation_prompt, tools, raise_exception.

import { Environment, Interpreter, Template } from '@huggingface/jinja';
import { ChatTemplateError } from './errors.js';
import type { ChatCompletionTool } from './types.js';
import type { NormalizedMessage } from './validate.js';

export interface RenderChatOptions {
  bosToken?: string;
  eosToken?: string;
  /** End with the assistant's turn header, so the model answers (default true). */
  addGenerationPrompt?: boolean;
  tools?: readonly ChatCompletionTool[] | null;
}

/** The subset of TextTokenizer a chat context needs. */
export interface ChatTokenizer {
  readonly chatTemplate: string | null;
  readonly bosTokenId: number | null;
  readonly eosTokenIds: readonly number[];
  idToToken(id: number): string | null;
}

/** Messages as the template sees them: content parts already joined, no undefined fields. */
export type TemplateMessage = Pick<NormalizedMessage, 'role' | 'content' | 'name' | 'tool_call_id' | 'tool_calls'>;

/** Thrown by the template's raise_exception, to tell it apart from the engine's own failures. */
class RaisedByTemplate extends Error {}

const pad2 = (n: number): string => String(n).padStart(2, '0');

/** strftime_now as the library has it (%Y %m %d %b %B %H %M %%), with English month names. */
function strftimeNow(format: string): string {
  const d = new Date();
  const month = (style: 'long' | 'short'): string => new Intl.DateTimeFormat('en-US', { month: style }).format(d);
  return format.replace(/%[YmdbBHM%]/g, (t) => {
    switch (t) {
      case '%Y':
        return String(d.getFullYear());
      case '%m':
        return pad2(d.getMonth() + 1);
      case '%d':
        return pad2(d.getDate());
      case '%b':
        return month('short');
      case '%B':
        return month('long');
      case '%H':
        return pad2(d.getHours());
      case '%M':
        return pad2(d.getMinutes());
      default:
        return '%';
    }
  });
}

/**
 * Numbers range() may produce in one render, over all its calls. A template comes from the model
 * folder, not from us: `{% for i in range(1000000) %}` once blocked the engine for 10 s and
 * range(100000000) exhausted the heap. Real templates loop over messages and tools, and call range
 * for small counts, if at all.
 */
export const RANGE_BUDGET = 100_000;

/**
 * Template nodes one render may evaluate, and characters any value in it may hold. Loops over the
 * messages are bounded by the request, but a template may nest them (5,000 messages x 5,000) or
 * double a string in a short loop (30 doublings: a gigabyte); either would stall the engine or
 * exhaust the heap. Real templates evaluate tens of nodes per message (Llama-2's: 27, measured), so
 * the budget is ~18,000 messages of such a template (about 1 s of this machine's CPU).
 */
export const EVAL_BUDGET = 500_000;
export const OUTPUT_LIMIT = 16 * 1024 * 1024;

class TemplateLimitError extends Error {}

type Evaluate = (statement: unknown, environment: unknown) => { type: string; value?: unknown };

/**
 * An interpreter whose every evaluation counts against EVAL_BUDGET and whose string values may not
 * exceed OUTPUT_LIMIT. The library has no hook for this: its private `evaluate` (every node goes
 * through it) is wrapped on the instance.
 */
function boundedInterpreter(env: Environment): Interpreter {
  const interpreter = new Interpreter(env);
  const target = interpreter as unknown as { evaluate: Evaluate };
  if (typeof target.evaluate !== 'function') throw new Error('@huggingface/jinja has no Interpreter.evaluate: the render limits cannot be applied (library changed)');
  const inner = target.evaluate.bind(interpreter);
  let left = EVAL_BUDGET;
  target.evaluate = (statement, environment) => {
    if (--left < 0) throw new TemplateLimitError(`the chat template evaluated more than ${EVAL_BUDGET} expressions in one render`);
    const out = inner(statement, environment);
    if (typeof out.value === 'string' && out.value.length > OUTPUT_LIMIT)
      throw new TemplateLimitError(`the chat template built a string of ${out.value.length} characters (the limit is ${OUTPUT_LIMIT})`);
    return out;
  };
  return interpreter;
}

function boundedRange(budget: { left: number }): (start: number, stop?: number, step?: number) => number[] {
  return (start, stop, step = 1) => {
    if (stop === undefined) [start, stop] = [0, start];
    if (step === 0) throw new Error('range() step must not be zero');
    if (![start, stop, step].every(Number.isFinite)) throw new Error(`range(${start}, ${stop}, ${step}) needs finite numbers`);
    const count = Math.max(0, Math.ceil((stop - start) / step));
    budget.left -= count;
    if (budget.left < 0) throw new TemplateLimitError(`the chat template asked range() for more than ${RANGE_BUDGET} numbers in one render`);
    const out: number[] = [];
    for (let i = start; step > 0 ? i < stop : i > stop; i += step) out.push(i);
    return out;
  };
}

/**
 * The library's Template.render declares its own raise_exception and refuses a second one, so
 * the globals are declared here (the same set: booleans, none, range, strftime_now) with a
 * raise_exception whose error can be recognized.
 */
function globals(): Record<string, unknown> {
  return {
    false: false,
    true: true,
    none: null,
    False: false,
    True: true,
    None: null,
    range: boundedRange({ left: RANGE_BUDGET }),
    strftime_now: strftimeNow,
    raise_exception: (message?: unknown): never => {
      throw new RaisedByTemplate(typeof message === 'string' ? message : String(message));
    },
  };
}

// Parsing is the costly part and an engine renders with one template: keep a few parsed.
const parsed = new Map<string, Template>();
const CACHE_SIZE = 8;

function compile(template: string): Template {
  const hit = parsed.get(template);
  if (hit) return hit;
  let t: Template;
  try {
    t = new Template(template);
  } catch (e) {
    throw new ChatTemplateError('syntax', `the chat template does not parse: ${e instanceof Error ? e.message : String(e)}`);
  }
  if (parsed.size >= CACHE_SIZE) parsed.delete(parsed.keys().next().value as string);
  parsed.set(template, t);
  return t;
}

/** The template (and its special-token strings) of a tokenizer; ChatTemplateError when it has none. */
export function chatTemplateOf(tok: ChatTokenizer): { template: string; bosToken: string; eosToken: string } {
  const template = tok.chatTemplate;
  if (template === null || template.trim() === '') {
    throw new ChatTemplateError('missing', "this model's tokenizer has no chat_template, so chat messages cannot be turned into a prompt: use completions.create with a raw prompt instead");
  }
  const name = (id: number | null | undefined): string => (id === null || id === undefined ? '' : (tok.idToToken(id) ?? ''));
  return { template, bosToken: name(tok.bosTokenId), eosToken: name(tok.eosTokenIds[0]) };
}

function templateMessage(m: TemplateMessage): Record<string, unknown> {
  const out: Record<string, unknown> = { role: m.role, content: m.content };
  if (m.name !== undefined) out['name'] = m.name;
  if (m.tool_call_id !== undefined) out['tool_call_id'] = m.tool_call_id;
  if (m.tool_calls !== undefined) out['tool_calls'] = m.tool_calls;
  return out;
}

/**
 * Render `messages` with a chat template. `template` null (a tokenizer without chat_template)
 * throws ChatTemplateError('missing'); the template's raise_exception(msg) throws
 * ChatTemplateError('raised') with msg; any other failure is 'syntax' or 'render'.
 */
export function renderChat(template: string | null, messages: readonly TemplateMessage[], options: RenderChatOptions = {}): string {
  if (template === null) {
    throw new ChatTemplateError('missing', 'no chat_template: use completions.create with a raw prompt instead');
  }
  const t = compile(template);
  const vars: Record<string, unknown> = {
    messages: messages.map(templateMessage),
    bos_token: options.bosToken ?? '',
    eos_token: options.eosToken ?? '',
    add_generation_prompt: options.addGenerationPrompt ?? true,
  };
  // Templates test `tools is defined` / `tools is not none`: pass them only when there are some.
  if (options.tools && options.tools.length > 0) vars['tools'] = options.tools.map((x) => structuredClone(x));
  try {
    const env = new Environment();
    for (const [key, value] of Object.entries({ ...globals(), ...vars })) env.set(key, value);
    const out = boundedInterpreter(env).run(t.parsed).value;
    return typeof out === 'string' ? out : String(out);
  } catch (e) {
    if (e instanceof RaisedByTemplate) throw new ChatTemplateError('raised', `the chat template rejected the messages: ${e.message}`);
    if (e instanceof TemplateLimitError) throw new ChatTemplateError('render', `${e.message}: refused (a template from the model folder may not run or grow without limit)`);
    throw new ChatTemplateError('render', `the chat template failed to render: ${e instanceof Error ? e.message : String(e)}`);
  }
}
