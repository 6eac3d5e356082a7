// The demo's apps: what each one sends and its default SLOs, derived from the engine's startup
// calibration (info.decodeStepMs, info.prefillMsPer512) so they are reachable on this GPU.

import type { AppSloInput, ModelInfo } from '../index.js';

export interface DemoApp {
  name: string;
  title: string;
  blurb: string;
  /** Default prompt of the panel's text box. */
  prompt: string;
  /** A prompt of the load generator's (varied by `i`, so prefixes are shared but not whole prompts). */
  loadPrompt(i: number): string;
  /** Two-stage apps: the stages' names (TPOT fields per stage). */
  stages?: [string, string];
  /** Tool agent: rounds of one conversation with a simulated tool call between them. */
  rounds?: number;
  maxTokens: number;
  slo(info: ModelInfo): DemoSlo;
}

/** What the panel's form holds: TTFT and one TPOT per stage (one for single-stage apps). */
export interface DemoSlo {
  ttftMs: number;
  tpotMs: number[];
}

const LOREM = 'the quick brown fox jumps over the lazy dog while a patient scheduler plans every step of the shared GPU';
const words = (n: number, seed: number): string => {
  const w = LOREM.split(' ');
  return Array.from({ length: n }, (_, i) => w[(i * 7 + seed) % w.length]).join(' ');
};

/** The planner's zero-load prefill time of about `tokens` prompt tokens, ms. */
export const prefillMs = (info: ModelInfo, tokens: number): number => (info.prefillMsPer512 * tokens) / 512;
const ceil5 = (v: number): number => Math.max(5, Math.ceil(v / 5) * 5);

export const DEMO_APPS: DemoApp[] = [
  {
    name: 'chat',
    title: 'Chat',
    blurb: 'Short prompts; TTFT and TPOT at reading speed.',
    prompt: 'Hello! What can you tell me about sharing one GPU?',
    loadPrompt: (i) => `Q${i}: ${words(6, i)}?`,
    maxTokens: 12,
    slo: (m) => ({ ttftMs: ceil5(10 * (prefillMs(m, 64) + m.decodeStepMs)), tpotMs: [ceil5(3 * m.decodeStepMs)] }),
  },
  {
    name: 'summarizer',
    title: 'Summarizer',
    blurb: 'Long input, a tight TTFT.',
    prompt: `Summarize: ${words(200, 3)}`,
    loadPrompt: (i) => `Summarize document ${i}: ${words(200, i)}`,
    maxTokens: 8,
    slo: (m) => ({ ttftMs: ceil5(3 * (prefillMs(m, 300) + m.decodeStepMs)), tpotMs: [ceil5(5 * m.decodeStepMs)] }),
  },
  {
    name: 'code',
    title: 'Code assistant',
    blurb: 'Completions while you type: a tight TPOT.',
    prompt: 'function fibonacci(n) {',
    loadPrompt: (i) => `function f${i}(x) {`,
    maxTokens: 16,
    slo: (m) => ({ ttftMs: ceil5(10 * (prefillMs(m, 32) + m.decodeStepMs)), tpotMs: [ceil5(2 * m.decodeStepMs)] }),
  },
  {
    name: 'reasoning',
    title: 'Reasoning',
    blurb: 'Two stages: fast thinking, then the answer at reading speed. This model has no </think> token, so its requests stay in the first stage.',
    prompt: 'Think step by step: how many apps can share this GPU?',
    loadPrompt: (i) => `Puzzle ${i}: ${words(6, i)}`,
    stages: ['think', 'answer'],
    maxTokens: 16,
    slo: (m) => ({ ttftMs: ceil5(10 * (prefillMs(m, 64) + m.decodeStepMs)), tpotMs: [ceil5(2 * m.decodeStepMs), ceil5(5 * m.decodeStepMs)] }),
  },
  {
    name: 'agent',
    title: 'Tool agent',
    blurb: 'Rounds of one conversation (conversationId keeps its KV) with a simulated 300 ms tool call between them.',
    prompt: 'Look up the weather, then plan a walk.',
    loadPrompt: (i) => `Task ${i}: ${words(8, i)}`,
    rounds: 2,
    maxTokens: 8,
    slo: (m) => ({ ttftMs: ceil5(6 * (prefillMs(m, 96) + m.decodeStepMs)), tpotMs: [ceil5(3 * m.decodeStepMs)] }),
  },
];

/** The engine's AppSloInput for a panel's values. Declines fail with SloError, so they are counted. */
export function sloInput(app: DemoApp, slo: DemoSlo): AppSloInput {
  if (app.stages) {
    return { ttftMs: slo.ttftMs, stages: app.stages.map((name, i) => ({ name, tpotMs: slo.tpotMs[i]! })), onDecline: 'error' };
  }
  return { ttftMs: slo.ttftMs, tpotMs: slo.tpotMs[0]!, onDecline: 'error' };
}
