// Loads a Hugging Face model folder from any ModelSource: config, generation and tokenizer configs,
// and the weights from one model.safetensors or an index plus shards. Everything is validated
// before it is returned: the engine never sees a tensor that config.json does not account for.

import { parseEosTokenIds, parseModelConfig, type ModelConfig } from './config.js';
import { ModelConfigError, ModelFileError, SafetensorsError } from './errors.js';
import { parseSafetensors, type Tensor } from './safetensors.js';

export { tensorToFloat64 } from './safetensors.js';
import { checkFileName, type ModelSource } from './source.js';
import { checkTensors, expectedTensors } from './tensors.js';
import { describeValue } from './describe.js';
import { checkFinite } from './finite.js';
import { parseGguf } from './gguf.js';
import { ggufModel } from './gguf-model.js';
import { ggufTokenizer } from './gguf-tokenizer.js';

export interface GenerationConfig {
  eosTokenIds?: number[];
  bosTokenId?: number;
  temperature?: number;
  topK?: number;
  topP?: number;
  doSample?: boolean;
  repetitionPenalty?: number;
  maxNewTokens?: number;
}

export interface LoadedModelFiles {
  config: ModelConfig;
  generationConfig: GenerationConfig | null;
  tokenizerJson: unknown | null;
  tokenizerConfig: unknown | null;
  /** Why there is no tokenizer when the reason is not just a missing tokenizer.json (a GGUF vocabulary webslo cannot build). */
  noTokenizerReason?: string;
  /** Exactly the parameters expectedTensors(config) names, in its order, each shape-checked. */
  tensors: Map<string, Tensor>;
  /** Tensors the files held that the architecture does not use (ignored, e.g. a tied lm_head.weight). */
  ignoredTensors: string[];
  /** The weight files read, in order. */
  weightFiles: string[];
}

const SINGLE = 'model.safetensors';
const INDEX = 'model.safetensors.index.json';

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Reads and parses a JSON file; null if absent and optional. */
async function readJson(source: ModelSource, file: string, required: boolean): Promise<unknown | null> {
  const bytes = await source.read(file);
  const path = `${source.describe()}/${file}`;
  if (bytes === null) {
    if (required) throw new ModelFileError(path, 'not found');
    return null;
  }
  try {
    return JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes));
  } catch (e) {
    throw new ModelFileError(path, `is not valid UTF-8 JSON (${e instanceof Error ? e.message : String(e)})`);
  }
}

/** generation_config.json -> the sampling defaults the model's authors ship; null values are absent. */
export function parseGenerationConfig(json: unknown): GenerationConfig {
  if (!isObject(json)) throw new ModelConfigError('generation_config.json', 'is not a JSON object', 'a JSON object');
  const out: GenerationConfig = {};
  const field = (key: string): unknown => (json[key] === null ? undefined : json[key]);
  const num = (key: string, ok: (v: number) => boolean, valid: string): number | undefined => {
    const v = field(key);
    if (v === undefined) return undefined;
    if (typeof v !== 'number' || !Number.isFinite(v) || !ok(v)) {
      throw new ModelConfigError(`generation_config.${key}`, `is ${describeValue(v)}`, valid);
    }
    return v;
  };
  if (field('eos_token_id') !== undefined) out.eosTokenIds = parseEosTokenIds(field('eos_token_id'), 'generation_config.eos_token_id');
  const bos = num('bos_token_id', (v) => Number.isInteger(v) && v >= 0, 'a non-negative integer');
  if (bos !== undefined) out.bosTokenId = bos;
  const temperature = num('temperature', (v) => v >= 0, 'a number >= 0');
  if (temperature !== undefined) out.temperature = temperature;
  const topK = num('top_k', (v) => Number.isInteger(v) && v >= 0, 'an integer >= 0 (0 disables)');
  if (topK !== undefined) out.topK = topK;
  const topP = num('top_p', (v) => v > 0 && v <= 1, 'a number in (0, 1]');
  if (topP !== undefined) out.topP = topP;
  const rep = num('repetition_penalty', (v) => v > 0, 'a number > 0');
  if (rep !== undefined) out.repetitionPenalty = rep;
  const maxNew = num('max_new_tokens', (v) => Number.isInteger(v) && v > 0, 'a positive integer');
  if (maxNew !== undefined) out.maxNewTokens = maxNew;
  const doSample = field('do_sample');
  if (doSample !== undefined) {
    if (typeof doSample !== 'boolean') throw new ModelConfigError('generation_config.do_sample', `is ${describeValue(doSample)}`, 'true or false');
    out.doSample = doSample;
  }
  return out;
}

/**
 * Weights from model.safetensors.index.json: every weight_map entry must name a present shard that
 * really holds the tensor, and every tensor in a shard must be in weight_map for that shard, so a
 * stale or hand-edited index cannot silently mix tensors from the wrong files.
 */
async function readShards(source: ModelSource, indexJson: unknown): Promise<{ tensors: Map<string, Tensor>; files: string[] }> {
  const where = `${source.describe()}/${INDEX}`;
  if (!isObject(indexJson) || !isObject(indexJson['weight_map'])) {
    throw new ModelFileError(where, "has no 'weight_map' object");
  }
  const byShard = new Map<string, Set<string>>();
  for (const [tensor, shard] of Object.entries(indexJson['weight_map'])) {
    if (typeof shard !== 'string') throw new ModelFileError(where, `weight_map['${tensor}'] is ${describeValue(shard)}, not a file name`);
    checkFileName(shard, source.describe());
    let set = byShard.get(shard);
    if (!set) byShard.set(shard, (set = new Set()));
    set.add(tensor);
  }
  if (byShard.size === 0) throw new ModelFileError(where, 'weight_map is empty');

  const tensors = new Map<string, Tensor>();
  const files = [...byShard.keys()].sort();
  for (const shard of files) {
    const bytes = await source.read(shard);
    if (bytes === null) throw new ModelFileError(`${source.describe()}/${shard}`, `not found (named by ${INDEX})`);
    const parsed = parseSafetensors(bytes, shard);
    const listed = byShard.get(shard)!;
    for (const name of listed) {
      if (!parsed.tensors.has(name)) throw new SafetensorsError(shard, name, `${INDEX} places it in this shard, but the shard does not hold it`);
    }
    for (const [name, t] of parsed.tensors) {
      if (!listed.has(name)) {
        const other = indexJson['weight_map'][name];
        const problem = typeof other === 'string' ? `is also in this shard, but ${INDEX} places it in ${other}` : `is in this shard but not in ${INDEX}'s weight_map`;
        throw new SafetensorsError(shard, name, problem);
      }
      tensors.set(name, t);
    }
  }
  return { tensors, files };
}

/** What a model folder says before its weights: checked by the caller before any weight is read. */
export type ModelMetadata = Pick<LoadedModelFiles, 'config' | 'generationConfig' | 'tokenizerJson' | 'tokenizerConfig'>;

export interface LoadModelOptions {
  /**
   * Called with the config and tokenizer files before any weight file is read (or downloaded:
   * minutes for a real model); what it throws ends the load. The host builds its tokenizer here.
   */
  beforeWeights?: (meta: ModelMetadata) => void | Promise<void>;
}

export async function loadModelFiles(source: ModelSource, options: LoadModelOptions = {}): Promise<LoadedModelFiles> {
  if (source.gguf !== undefined) return loadGgufFile(source, source.gguf, options);
  const config = parseModelConfig(await readJson(source, 'config.json', true));
  const generationJson = await readJson(source, 'generation_config.json', false);
  const generationConfig = generationJson === null ? null : parseGenerationConfig(generationJson);
  const tokenizerJson = await readJson(source, 'tokenizer.json', false);
  const tokenizerConfig = await readJson(source, 'tokenizer_config.json', false);
  await options.beforeWeights?.({ config, generationConfig, tokenizerJson, tokenizerConfig });

  // transformers prefers the single file when both layouts are present; so does this.
  let all: Map<string, Tensor>;
  let weightFiles: string[];
  const single = await source.read(SINGLE);
  if (single !== null) {
    all = parseSafetensors(single, SINGLE).tensors;
    weightFiles = [SINGLE];
  } else {
    const index = await readJson(source, INDEX, false);
    if (index === null) {
      throw new ModelFileError(`${source.describe()}/${SINGLE}`, `not found, and neither is ${INDEX} (only safetensors weights are supported)`);
    }
    ({ tensors: all, files: weightFiles } = await readShards(source, index));
  }

  const { extra } = checkTensors(config, all);
  // In expectedTensors order (embeddings, layer by layer, norm, head), whatever the files' order.
  const tensors = new Map([...expectedTensors(config).keys()].map((name) => [name, all.get(name)!]));
  checkFinite(tensors);
  return { config, generationConfig, tokenizerJson, tokenizerConfig, tensors, ignoredTensors: extra, weightFiles };
}

/**
 * A model that is one GGUF file: config and tensors from gguf-model.ts, the tokenizer where
 * gguf-tokenizer.ts can build it (else the model serves token-id prompts), then the same checks as
 * a folder's (every parameter present with its shape, all finite).
 */
async function loadGgufFile(source: ModelSource, name: string, options: LoadModelOptions): Promise<LoadedModelFiles> {
  const bytes = await source.read(name);
  if (bytes === null) throw new ModelFileError(`${source.describe()}/${name}`, 'not found');
  const file = parseGguf(bytes, name);
  const model = ggufModel(file, name);
  const tokenizer = ggufTokenizer(file.metadata, name);
  const tokenizerJson = tokenizer.tokenizerJson;
  const tokenizerConfig = 'tokenizerConfig' in tokenizer ? tokenizer.tokenizerConfig : null;
  await options.beforeWeights?.({ config: model.config, generationConfig: null, tokenizerJson, tokenizerConfig });
  const { extra } = checkTensors(model.config, model.tensors);
  const tensors = new Map([...expectedTensors(model.config).keys()].map((n) => [n, model.tensors.get(n)!]));
  checkFinite(tensors);
  return {
    config: model.config,
    generationConfig: null,
    tokenizerJson,
    tokenizerConfig,
    ...('reason' in tokenizer ? { noTokenizerReason: `${name}: ${tokenizer.reason}` } : {}),
    tensors,
    ignoredTensors: [...extra, ...model.ignoredTensors],
    weightFiles: [name],
  };
}
