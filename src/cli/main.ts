// `webslo`: the engine's model runner on Dawn, from the command line.
//   webslo logits   --model M (--tokens 5,17,9 | --prompt TEXT) [--top 8] [--full]   (--full: the whole last row too)
//   webslo generate --model M (--tokens IDS | --prompt TEXT) --max-tokens N
//                   [--temperature T --top-k K --top-p P --seed S] [--ignore-eos] [--json]
//                   [(--draft M | --draft-layers N) --spec-k K]   reports tokens per target step and alpha
//   webslo calibrate --model M [--out profile.json] [--repeats N] [--pieces N] [--decode-contexts 32,256]
//                   [--draft-layers N] [--time-budget-s S]
//                   the scheduler's performance profile (a smaller sweep: fewer repeats, shorter contexts;
//                   --draft-layers: also time speculative steps with a self draft of N layers, so k2 is measured)
//   webslo bench-sched [--scenario NAME|all] [--trace FILE] [--profile FILE|default|h200|paper] ...
//                   serving capacity of the schedulers in the simulator (src/cli/bench-sched.ts)
// Common: --math f32|f16, --quantize none|q4 (4-bit layer weights, also for a --draft model), --no-f16, --no-subgroups, --adapter NAME (Dawn's adapter name; a wrong one
//         lists the available adapters), --backend B, --dawn-flag F (repeatable as a comma list), --power high-performance|low-power,
//         --layers N, --max-tokens-per-step N. M (--model, --draft): a folder, an http(s) URL or a hub repo id
//         (src/cli/model-source.ts). An option a command does not take is an error that names it.

import { existsSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { basename, resolve } from 'node:path';
import { describeCapabilities, GpuRuntime, type RuntimeOptions } from '../gpu/index.js';
import { loadModelFiles, type LoadedModelFiles } from '../model/load.js';
import { WEIGHT_QUANTIZATIONS, type WeightQuantization } from '../model/quantize-q4.js';
import { ModelRunner } from '../runner/model-runner.js';
import { RunnerSession, type Sampling } from '../runner/session.js';
import { adapterName, calibrate as calibrateRunner } from '../runner/calibrate.js';
import { SpeculativeDecoder, type DraftSource } from '../speculative/speculative-decoder.js';
import { TextTokenizer } from '../tokenizer/tokenizer.js';
import { BENCH_REAL_USAGE, benchRealCommand } from './bench-real.js';
import { BENCH_SCHED_USAGE, benchSchedCommand } from './bench-sched.js';
import { numberFlag, parseArgs, stringFlag, tokenList, UsageError, type ParsedArgs } from './args.js';
import { cliModelSource, MODEL_SOURCE_FLAGS } from './model-source.js';
import { SERVE_FLAGS, SERVE_USAGE, serveCommand } from './serve.js';

const BOOLEAN = new Set(['json', 'no-f16', 'no-subgroups', 'ignore-eos', 'verbose', 'help', 'real', 'prefix-cache', 'ablations', 'full', 'no-cache']);

/** Options of every command that loads a model on the GPU. */
const RUNTIME_FLAGS = ['model', 'math', 'quantize', 'no-f16', 'no-subgroups', 'adapter', 'backend', 'dawn-flag', 'power', 'layers', 'max-tokens-per-step', 'verbose', ...MODEL_SOURCE_FLAGS];
/** What each command accepts (bench-sched checks its own): an unknown option is an error that names it. */
const COMMAND_FLAGS: Record<string, readonly string[]> = {
  logits: [...RUNTIME_FLAGS, 'tokens', 'prompt', 'top', 'full'],
  generate: [...RUNTIME_FLAGS, 'tokens', 'prompt', 'max-tokens', 'json', 'ignore-eos', 'temperature', 'top-k', 'top-p', 'seed', 'draft', 'draft-layers', 'spec-k'],
  calibrate: [...RUNTIME_FLAGS, 'out', 'repeats', 'pieces', 'decode-contexts', 'draft-layers', 'time-budget-s'],
  serve: SERVE_FLAGS,
};

function checkFlags(args: ParsedArgs): void {
  const allowed = COMMAND_FLAGS[args.command];
  if (!allowed) return;
  for (const name of args.flags.keys()) {
    if (!allowed.includes(name)) throw new UsageError(`${args.command}: unknown option --${name} (expected one of ${allowed.map((f) => `--${f}`).join(', ')})`);
  }
}

const USAGE = `usage:
  webslo logits   --model M (--tokens 5,17,9 | --prompt TEXT) [--top 8] [--full]   (--full: the whole last row too)
  webslo generate --model M (--tokens IDS | --prompt TEXT) --max-tokens N [--json] [--ignore-eos]
                  [--temperature T [--top-k K] [--top-p P] [--seed S]]   (greedy without --temperature)
                  [(--draft M | --draft-layers N) [--spec-k K]]            (speculative decoding)
  webslo calibrate --model M [--out profile.json] [--repeats N] [--pieces N] [--decode-contexts 32,256]
                   [--draft-layers N] [--time-budget-s S]
                   (the scheduler's performance profile; a one-line summary on stderr)
${SERVE_USAGE}
${BENCH_SCHED_USAGE}
${BENCH_REAL_USAGE}
M: a model folder, an http(s) folder URL, or a hub repo id (downloaded once into --cache-dir, else
   $WEBSLO_CACHE_DIR or ~/.cache/webslo; --no-cache; --hub-endpoint URL, else $HF_ENDPOINT; --revision R; $HF_TOKEN)
options: --math f32|f16 --quantize none|q4 --no-f16 --no-subgroups --adapter NAME --backend vulkan|... --dawn-flag FLAGS
         --power high-performance|low-power
         --layers N --max-tokens-per-step N --verbose`;

/** Write to stdout and wait until it is flushed (the process exits right after the command). */
function writeOut(text: string): Promise<void> {
  return new Promise((resolve, reject) => process.stdout.write(text, (e) => (e ? reject(e) : resolve())));
}

interface Loaded {
  rt: GpuRuntime;
  files: LoadedModelFiles;
  runner: ModelRunner;
  quantize: WeightQuantization;
}

async function load(args: ParsedArgs): Promise<Loaded> {
  const dir = stringFlag(args, 'model');
  if (!dir) throw new UsageError('--model (a folder, an http(s) URL or a hub repo id) is required');
  // Option checks first: a typo should not cost a model load and a device.
  const math = stringFlag(args, 'math') ?? 'f32';
  if (math !== 'f32' && math !== 'f16') throw new UsageError(`--math ${math}: expected f32 or f16`);
  const quantize = stringFlag(args, 'quantize') ?? 'none';
  if (!(WEIGHT_QUANTIZATIONS as readonly string[]).includes(quantize)) throw new UsageError(`--quantize ${quantize}: expected ${WEIGHT_QUANTIZATIONS.join(' or ')}`);
  const q = quantize as WeightQuantization;
  const power = stringFlag(args, 'power');
  if (power !== undefined && power !== 'high-performance' && power !== 'low-power') throw new UsageError(`--power ${power}: expected high-performance or low-power`);
  const layers = numberFlag(args, 'layers', (n) => Number.isInteger(n) && n >= 1, 'a positive integer');
  const maxTokensPerStep = numberFlag(args, 'max-tokens-per-step', (n) => Number.isInteger(n) && n >= 1, 'a positive integer');
  if (args.flags.has('draft') && args.flags.has('draft-layers')) throw new UsageError('give one of --draft M and --draft-layers N');
  const files = await loadModelFiles(await cliModelSource(args, dir));
  const options: RuntimeOptions = {
    ignoreShaderF16: args.flags.has('no-f16'),
    ignoreSubgroups: args.flags.has('no-subgroups'),
    dawnFlags: [
      ...(stringFlag(args, 'dawn-flag')?.split(',') ?? []),
      ...(stringFlag(args, 'adapter') !== undefined ? [`adapter=${stringFlag(args, 'adapter')}`] : []),
      ...(stringFlag(args, 'backend') !== undefined ? [`backend=${stringFlag(args, 'backend')}`] : []),
    ],
  };
  if (power) options.powerPreference = power;
  const rt = await GpuRuntime.create(options);
  if (args.flags.has('verbose')) console.error(`[webslo] ${describeCapabilities(rt.capabilities)}`);
  const runner = await ModelRunner.create(rt, files, { layers, maxTokensPerStep, kvPages: 4096, math, quantize: q });
  return { rt, files, runner, quantize: q };
}

function promptTokens(args: ParsedArgs, files: LoadedModelFiles): { ids: number[]; tokenizer: TextTokenizer | null } {
  const tokenizer = files.tokenizerJson ? new TextTokenizer(files.tokenizerJson, files.tokenizerConfig, files.config.eosTokenIds) : null;
  const tokens = stringFlag(args, 'tokens');
  const prompt = stringFlag(args, 'prompt');
  if ((tokens === undefined) === (prompt === undefined)) throw new UsageError('give exactly one of --tokens IDS and --prompt TEXT');
  if (tokens !== undefined) return { ids: tokenList(tokens, 'tokens'), tokenizer };
  if (!tokenizer) throw new UsageError(`${files.noTokenizerReason ?? 'this model folder has no tokenizer.json'}: use --tokens`);
  return { ids: tokenizer.encode(prompt!), tokenizer };
}

async function logits(args: ParsedArgs): Promise<void> {
  const top = numberFlag(args, 'top', (n) => Number.isInteger(n) && n >= 1, 'a positive integer') ?? 8;
  const { rt, files, runner } = await load(args);
  try {
    const { ids } = promptTokens(args, files);
    const session = new RunnerSession(runner);
    const id = session.newSequence();
    const results = await session.prefill(id, ids, runner.maxTokens, { logits: true, outputs: 'all' });
    const V = runner.config.vocabSize;
    const all = results.flatMap((r) => Array.from({ length: r.logits!.length / V }, (_, i) => r.logits!.subarray(i * V, (i + 1) * V)));
    const topOf = (row: Float32Array): number[] => {
      const order = Array.from(row.keys()).sort((a, b) => row[b]! - row[a]! || a - b);
      return order.slice(0, top);
    };
    const topIds = all.map(topOf);
    await writeOut(
      `${JSON.stringify({
        // The whole last row only when asked for (a vocabulary of 150k numbers otherwise).
        ...(args.flags.has('full') ? { last_logits: Array.from(all[all.length - 1]!) } : {}),
        top_ids: topIds,
        top_logits: topIds.map((t, p) => t.map((i) => all[p]![i]!)),
      })}\n`,
    );
  } finally {
    runner.destroy();
    rt.destroy();
  }
}

function samplingOf(args: ParsedArgs): Sampling | undefined {
  const temperature = numberFlag(args, 'temperature', (n) => n >= 0, 'a number >= 0');
  const topK = numberFlag(args, 'top-k', (n) => Number.isInteger(n) && n >= 0, 'an integer >= 0 (0 = off)');
  const topP = numberFlag(args, 'top-p', (n) => n > 0 && n <= 1, 'a number in (0, 1]');
  const seedText = stringFlag(args, 'seed');
  if (seedText !== undefined && !/^\d+$/.test(seedText)) throw new UsageError(`--seed ${seedText}: expected an integer >= 0`);
  if (temperature === undefined) {
    if (topK !== undefined || topP !== undefined || seedText !== undefined) throw new UsageError('--top-k, --top-p and --seed need --temperature (greedy otherwise)');
    return undefined;
  }
  const seed = seedText !== undefined ? BigInt(seedText) : BigInt(Math.floor(Math.random() * 2 ** 52));
  return { temperature, topK: topK ?? 0, topP: topP ?? 1, seed };
}

/** --draft DIR | --draft-layers N with --spec-k K: speculative decoding. */
async function speculativeDraft(args: ParsedArgs, loaded: Loaded): Promise<{ source: DraftSource; k: number; cleanup: () => void } | null> {
  const dir = stringFlag(args, 'draft');
  const layers = numberFlag(args, 'draft-layers', (n) => Number.isInteger(n) && n >= 1, 'a positive integer');
  const k = numberFlag(args, 'spec-k', (n) => Number.isInteger(n) && n >= 0 && n <= 16, 'an integer in 0..16');
  if (dir === undefined && layers === undefined) {
    if (k !== undefined) throw new UsageError('--spec-k needs --draft DIR or --draft-layers N');
    return null;
  }
  if (dir !== undefined && layers !== undefined) throw new UsageError('give one of --draft DIR and --draft-layers N');
  const specK = k ?? 4;
  if (layers !== undefined) {
    if (layers > loaded.runner.numLayers) throw new UsageError(`--draft-layers ${layers}: the model has ${loaded.runner.numLayers} layers`);
    return { source: { kind: 'self', layers }, k: specK, cleanup: () => {} };
  }
  const files = await loadModelFiles(await cliModelSource(args, dir!));
  if (files.config.vocabSize !== loaded.files.config.vocabSize) {
    throw new UsageError(`--draft ${dir}: its vocabulary (${files.config.vocabSize}) differs from the model's (${loaded.files.config.vocabSize})`);
  }
  const runner = await ModelRunner.create(loaded.rt, files, { kvPages: 4096, quantize: loaded.quantize });
  return { source: { kind: 'model', session: new RunnerSession(runner) }, k: specK, cleanup: () => runner.destroy() };
}

async function generate(args: ParsedArgs): Promise<void> {
  const maxTokens = numberFlag(args, 'max-tokens', (n) => Number.isInteger(n) && n >= 1, 'a positive integer');
  if (maxTokens === undefined) throw new UsageError('--max-tokens N is required');
  // Greedy unless --temperature is given, whatever generation_config.json says.
  const sampling = samplingOf(args);
  const loaded = await load(args);
  const { rt, files, runner } = loaded;
  try {
    const { ids, tokenizer } = promptTokens(args, files);
    const eos = new Set([...files.config.eosTokenIds, ...(files.generationConfig?.eosTokenIds ?? [])]);
    const stop = args.flags.has('ignore-eos') ? null : eos;
    const session = new RunnerSession(runner);
    const spec = await speculativeDraft(args, loaded);
    let out: number[];
    let report: Record<string, number | null> | null = null;
    if (spec) {
      try {
        const s = new SpeculativeDecoder(session, spec.source);
        const id = await s.start(ids, { k: spec.k, ...(sampling ? { sampling } : {}) });
        while (s.output(id).length < maxTokens && !(stop && s.output(id).some((t) => stop.has(t)))) await s.step([id]);
        out = s.output(id);
        const cut = stop ? out.findIndex((t) => stop.has(t)) : -1;
        out = out.slice(0, cut >= 0 ? Math.min(cut + 1, maxTokens) : maxTokens);
        const st = s.requestStats(id);
        report = { spec_k: spec.k, target_steps: s.targetSteps, tokens_per_target_step: s.output(id).length / s.targetSteps, alpha: st.alpha };
        s.finish(id);
      } finally {
        spec.cleanup();
      }
    } else {
      out = await session.generate(ids, maxTokens, { ...(sampling ? { sampling } : {}), ...(stop ? { stopTokens: stop } : {}) });
    }
    const text = tokenizer ? tokenizer.decode(out, { skipSpecialTokens: true }) : null;
    if (report) console.error(`[webslo] speculative: ${JSON.stringify(report)}`);
    await writeOut(args.flags.has('json') ? `${JSON.stringify({ token_ids: out, text, ...(report ? { speculative: report } : {}) })}\n` : `${text ?? out.join(',')}\n`);
  } finally {
    runner.destroy();
    rt.destroy();
  }
}

/** Time a sweep of step shapes, fit the performance model, write the profile (stdout without --out). */
async function calibrateCommand(args: ParsedArgs): Promise<void> {
  const out = stringFlag(args, 'out');
  const repeats = numberFlag(args, 'repeats', (n) => Number.isInteger(n) && n >= 1, 'a positive integer');
  const pieces = numberFlag(args, 'pieces', (n) => Number.isInteger(n) && n >= 1 && n <= 8, 'an integer in 1..8');
  const contexts = stringFlag(args, 'decode-contexts');
  const decodeContexts = contexts?.split(',').map((c) => Number(c.trim()));
  if (decodeContexts?.some((c) => !Number.isInteger(c) || c < 1)) throw new UsageError(`--decode-contexts ${contexts}: expected comma-separated positive context lengths`);
  const draftLayers = numberFlag(args, 'draft-layers', (n) => Number.isInteger(n) && n >= 1, 'a positive integer');
  const budgetS = numberFlag(args, 'time-budget-s', (n) => n > 0, 'a positive number of seconds');
  const { rt, runner } = await load(args);
  try {
    if (draftLayers !== undefined && draftLayers > runner.numLayers) throw new UsageError(`--draft-layers ${draftLayers}: the model has ${runner.numLayers} layers`);
    const session = new RunnerSession(runner);
    const verbose = args.flags.has('verbose');
    // A folder's name, or the repo id / URL as given.
    const spec = stringFlag(args, 'model')!;
    const name = existsSync(spec) ? basename(resolve(spec)) : spec;
    const { model, skipped } = await calibrateRunner(session, {
      adapter: adapterName(rt.capabilities),
      model: draftLayers !== undefined ? `${name} (self-draft ${draftLayers} layer${draftLayers === 1 ? '' : 's'})` : name,
      ...(draftLayers !== undefined ? { draftLayers } : {}),
      ...(budgetS !== undefined ? { timeBudgetMs: budgetS * 1000 } : {}),
      ...(repeats !== undefined ? { repeats } : {}),
      ...(pieces !== undefined ? { pieces } : {}),
      ...(decodeContexts ? { decodeContexts } : {}),
      ...(verbose ? { onShape: (done: number, total: number) => console.error(`[webslo] calibrate: shape ${done}/${total}`) } : {}),
    });
    if (out !== undefined) await writeFile(out, model.toJson());
    else await writeOut(model.toJson());
    if (skipped.length) console.error(`[webslo] calibrate: the time budget ran out; ${skipped.length} shapes skipped`);
    console.error(`[webslo] calibrated: ${model.summary()}`);
  } finally {
    runner.destroy();
    rt.destroy();
  }
}

export async function main(argv: string[]): Promise<number> {
  try {
    if (argv.length === 0 || argv.includes('--help') || argv[0] === 'help') {
      console.log(USAGE);
      return argv.length === 0 ? 2 : 0;
    }
    const args = parseArgs(argv, BOOLEAN);
    checkFlags(args);
    if (args.command === 'logits') await logits(args);
    else if (args.command === 'generate') await generate(args);
    else if (args.command === 'calibrate') await calibrateCommand(args);
    else if (args.command === 'serve') await serveCommand(args);
    else if (args.command === 'bench-sched' && args.flags.has('real')) {
      if (args.flags.has('prefix-cache')) throw new UsageError('--prefix-cache models a prefix cache in the simulator; it does not apply to --real');
      await benchRealCommand(args);
    } else if (args.command === 'bench-sched') await benchSchedCommand(args);
    else throw new UsageError(`unknown command '${args.command}'`);
    return 0;
  } catch (e) {
    const err = e instanceof Error ? e : new Error(String(e));
    console.error(`webslo: ${err.name}: ${err.message}`);
    if (e instanceof UsageError) console.error(USAGE);
    return e instanceof UsageError ? 2 : 1;
  }
}
