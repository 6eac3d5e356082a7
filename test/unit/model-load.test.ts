import { once } from 'node:events';
import { mkdtemp, mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseModelConfig } from '../../src/model/config.js';
import { MissingTensorError, ModelFileError, NonFiniteWeightError, SafetensorsError, TensorShapeError, type ModelConfigError } from '../../src/model/errors.js';
import { loadModelFiles, tensorToFloat64, type LoadedModelFiles } from '../../src/model/load.js';
import { parseSafetensors } from '../../src/model/safetensors.js';
import { fileListSource, hubSource, httpSource, nodeDirectorySource, type FileLike } from '../../src/model/source.js';
import { checkTensors, expectedTensors } from '../../src/model/tensors.js';
import { bf16BitsToNumber, f16BitsToNumber } from '../../src/numeric/half.js';
import { repack } from '../helpers/safetensors-builder.js';

const FIXTURES = fileURLToPath(new URL('../fixtures/', import.meta.url));
const DTYPES = { 'tiny-qwen2': 'F32', 'tiny-llama3': 'BF16', 'tiny-qwen3b': 'F16', 'tiny-mistral': 'BF16' } as const;
const NAMES = Object.keys(DTYPES) as (keyof typeof DTYPES)[];

let tmp: string;
beforeAll(async () => {
  tmp = await mkdtemp(join(tmpdir(), 'webslo-load-'));
});
afterAll(async () => {
  await rm(tmp, { recursive: true, force: true });
});

/** A fresh model folder under tmp holding `files` (name -> bytes or JSON value). */
async function folder(name: string, files: Record<string, Uint8Array | unknown>): Promise<string> {
  const dir = join(tmp, name);
  await mkdir(dir, { recursive: true });
  for (const [file, content] of Object.entries(files)) {
    await writeFile(join(dir, file), content instanceof Uint8Array ? content : JSON.stringify(content));
  }
  return dir;
}

const fixtureFile = async (model: string, file: string): Promise<Uint8Array> => new Uint8Array(await readFile(join(FIXTURES, model, file)));
const fixtureJson = async (model: string, file: string): Promise<Record<string, unknown>> => JSON.parse(await readFile(join(FIXTURES, model, file), 'utf8')) as Record<string, unknown>;

async function rejection(p: Promise<unknown>): Promise<Error> {
  try {
    await p;
  } catch (e) {
    return e as Error;
  }
  throw new Error('expected a rejection');
}

/** Same names, dtypes, shapes and bytes. */
function expectSameTensors(a: LoadedModelFiles, b: LoadedModelFiles): void {
  expect([...a.tensors.keys()].sort()).toEqual([...b.tensors.keys()].sort());
  for (const [name, t] of a.tensors) {
    const u = b.tensors.get(name)!;
    expect([u.dtype, u.shape]).toEqual([t.dtype, t.shape]);
    expect(Buffer.from(u.data.buffer, u.data.byteOffset, u.data.byteLength).equals(Buffer.from(t.data.buffer, t.data.byteOffset, t.data.byteLength))).toBe(true);
  }
}

describe('fixtures through nodeDirectorySource', () => {
  it.each(NAMES)('%s loads with exactly the expected tensors', async (name) => {
    const model = await loadModelFiles(nodeDirectorySource(join(FIXTURES, name)));
    const expected = expectedTensors(model.config);
    expect([...model.tensors.keys()]).toEqual([...expected.keys()]);
    for (const [tname, shape] of expected) {
      expect(model.tensors.get(tname)!.shape).toEqual(shape);
      expect(model.tensors.get(tname)!.dtype).toBe(DTYPES[name]);
    }
    expect(model.ignoredTensors).toEqual([]);
    expect(model.weightFiles).toEqual(['model.safetensors']);
    expect(model.generationConfig).toBeNull();
    expect(model.tokenizerJson === null).toBe(name !== 'tiny-qwen2');
    expect(model.tokenizerConfig === null).toBe(name !== 'tiny-qwen2');
  });

  it('converts F32, F16 and BF16 tensors exactly, including from unaligned views', async () => {
    for (const name of NAMES) {
      const model = await loadModelFiles(nodeDirectorySource(join(FIXTURES, name)));
      const t = model.tensors.get('model.layers.0.input_layernorm.weight')!;
      const values = tensorToFloat64(t);
      const copy = t.data.slice();
      const expected = t.dtype === 'F32' ? Array.from(new Float32Array(copy.buffer)) : Array.from(new Uint16Array(copy.buffer), t.dtype === 'F16' ? f16BitsToNumber : bf16BitsToNumber);
      expect(Array.from(values)).toEqual(expected);
      expect(values.every(Number.isFinite)).toBe(true);
      const shifted = new Uint8Array(copy.length + 1);
      shifted.set(copy, 1);
      expect(Array.from(tensorToFloat64({ dtype: t.dtype, data: shifted.subarray(1) }))).toEqual(expected);
    }
  });
});

describe('sharded weights', () => {
  it('a fixture split into two shards + index loads identically to the single file', async () => {
    const bytes = await fixtureFile('tiny-llama3', 'model.safetensors');
    const names = [...parseSafetensors(bytes, 'x').tensors.keys()];
    const first = new Set(names.slice(0, 14));
    const s1 = repack(bytes, (n) => first.has(n));
    const s2 = repack(bytes, (n) => !first.has(n));
    const weight_map = Object.fromEntries(names.map((n) => [n, first.has(n) ? 'model-00001-of-00002.safetensors' : 'model-00002-of-00002.safetensors']));
    const dir = await folder('sharded', {
      'config.json': await fixtureJson('tiny-llama3', 'config.json'),
      'model-00001-of-00002.safetensors': s1,
      'model-00002-of-00002.safetensors': s2,
      'model.safetensors.index.json': { metadata: { total_size: bytes.length }, weight_map },
    });
    const sharded = await loadModelFiles(nodeDirectorySource(dir));
    const single = await loadModelFiles(nodeDirectorySource(join(FIXTURES, 'tiny-llama3')));
    expect(sharded.weightFiles).toEqual(['model-00001-of-00002.safetensors', 'model-00002-of-00002.safetensors']);
    expect(sharded.config).toEqual(single.config);
    expectSameTensors(single, sharded);

    // A bad index: each variant is a typed error naming the shard or tensor.
    const withIndex = async (tag: string, index: unknown, drop?: string): Promise<Error> => {
      const files: Record<string, unknown> = {
        'config.json': await fixtureJson('tiny-llama3', 'config.json'),
        'model-00001-of-00002.safetensors': s1,
        'model-00002-of-00002.safetensors': s2,
        'model.safetensors.index.json': index,
      };
      if (drop) delete files[drop];
      return rejection(loadModelFiles(nodeDirectorySource(await folder(`bad-index-${tag}`, files))));
    };
    const missingShard = await withIndex('missing', { weight_map }, 'model-00002-of-00002.safetensors');
    expect(missingShard).toBeInstanceOf(ModelFileError);
    expect(missingShard.message).toMatch(/model-00002-of-00002\.safetensors: not found \(named by/);
    const moved = { ...weight_map, 'lm_head.weight': 'model-00001-of-00002.safetensors' };
    const wrong = await withIndex('wrong', { weight_map: moved });
    expect(wrong).toBeInstanceOf(SafetensorsError);
    expect((wrong as SafetensorsError).tensor).toBe('lm_head.weight');
    const partial = { ...weight_map };
    delete partial['model.norm.weight'];
    const unlisted = await withIndex('unlisted', { weight_map: partial });
    expect(unlisted).toBeInstanceOf(SafetensorsError);
    expect(unlisted.message).toMatch(/not in model\.safetensors\.index\.json's weight_map/);
    expect(await withIndex('escape', { weight_map: { ...weight_map, 'lm_head.weight': '../../etc/passwd' } })).toBeInstanceOf(ModelFileError);
    expect(await withIndex('no-map', { metadata: {} })).toBeInstanceOf(ModelFileError);
    expect(await withIndex('not-string', { weight_map: { ...weight_map, 'lm_head.weight': 3 } })).toBeInstanceOf(ModelFileError);
  });
});

describe('model folder refusals', () => {
  const qwen2 = async (): Promise<{ config: Record<string, unknown>; bytes: Uint8Array }> => ({
    config: await fixtureJson('tiny-qwen2', 'config.json'),
    bytes: await fixtureFile('tiny-qwen2', 'model.safetensors'),
  });

  it('missing tensors: MissingTensorError lists them all', async () => {
    const { config, bytes } = await qwen2();
    const gone = ['model.layers.1.mlp.up_proj.weight', 'model.layers.0.self_attn.k_proj.bias'];
    const dir = await folder('missing-tensor', { 'config.json': config, 'model.safetensors': repack(bytes, (n) => !gone.includes(n)) });
    const e = await rejection(loadModelFiles(nodeDirectorySource(dir)));
    expect(e).toBeInstanceOf(MissingTensorError);
    expect([...(e as MissingTensorError).tensors].sort()).toEqual([...gone].sort());
  });

  it('a NaN or infinite weight is a NonFiniteWeightError naming the tensor and element, for F32, F16 and BF16', async () => {
    // Once: such weights loaded and ran, and greedy decoding returned token 0 forever.
    const cases = [
      { model: 'tiny-qwen2', bits: [0x7fc00000, 0xff800000] },
      { model: 'tiny-qwen3b', bits: [0x7e00, 0x7c00] },
      { model: 'tiny-llama3', bits: [0x7fc0, 0xff80] },
    ] as const;
    for (const { model, bits } of cases) {
      for (const bad of bits) {
        const bytes = new Uint8Array(await fixtureFile(model, 'model.safetensors'));
        const parsed = parseSafetensors(bytes, 'model.safetensors');
        const name = 'model.layers.1.mlp.down_proj.weight';
        const t = parsed.tensors.get(name)!;
        const width = t.dtype === 'F32' ? 4 : 2;
        const at = t.data.byteOffset + 7 * width;
        for (let k = 0; k < width; k++) bytes[at + k] = (bad >>> (8 * k)) & 0xff;
        const dir = await folder(`nonfinite-${model}-${bad}`, { 'config.json': await fixtureJson(model, 'config.json'), 'model.safetensors': bytes });
        const e = await rejection(loadModelFiles(nodeDirectorySource(dir)));
        expect(e, `${model} ${bad.toString(16)}`).toBeInstanceOf(NonFiniteWeightError);
        expect([(e as NonFiniteWeightError).tensor, (e as NonFiniteWeightError).index]).toEqual([name, 7]);
      }
    }
  });

  it('num_hidden_layers beyond the files: MissingTensorError at once, without naming 2^31 layers', async () => {
    // Once: 1e6 layers built the whole tensor-name map first (55 s, 2.4 GB); 2^31-1 gave an untyped
    // "RangeError: Map maximum size exceeded" after 70 s.
    const { config, bytes } = await qwen2();
    for (const layers of [3, 1_000_000, 2 ** 31 - 1]) {
      const dir = await folder(`layers-${layers}`, { 'config.json': { ...config, num_hidden_layers: layers }, 'model.safetensors': bytes });
      const e = await rejection(loadModelFiles(nodeDirectorySource(dir)));
      expect(e, String(layers)).toBeInstanceOf(MissingTensorError);
      expect(e.message).toContain(`layers 2..${layers - 1}`);
    }
  });

  it('a config that disagrees with the tensors: TensorShapeError with both shapes', async () => {
    const { config, bytes } = await qwen2();
    const dir = await folder('shape', { 'config.json': { ...config, intermediate_size: 128 }, 'model.safetensors': bytes });
    const e = await rejection(loadModelFiles(nodeDirectorySource(dir)));
    expect(e).toBeInstanceOf(TensorShapeError);
    expect(e.message).toBe("tensor 'model.layers.0.mlp.gate_proj.weight' has shape [192, 64], config.json implies [128, 64]");
    const shapes = new Map([...expectedTensors(parseModelConfig(config))].map(([n, s]) => [n, { shape: s }]));
    shapes.set('model.norm.weight', { shape: [64, 1] });
    expect(() => checkTensors(parseModelConfig(config), shapes)).toThrow(TensorShapeError);
  });

  it('a tied model shipping lm_head.weight and inv_freq loads; both are listed and left out', async () => {
    const { config, bytes } = await qwen2();
    const extra = [
      { name: 'lm_head.weight', dtype: 'F32', shape: [32000, 64] },
      { name: 'model.layers.0.self_attn.rotary_emb.inv_freq', dtype: 'F32', shape: [8] },
    ];
    const dir = await folder('tied-extra', { 'config.json': config, 'model.safetensors': repack(bytes, () => true, extra) });
    const model = await loadModelFiles(nodeDirectorySource(dir));
    expect(model.ignoredTensors).toEqual(['lm_head.weight', 'model.layers.0.self_attn.rotary_emb.inv_freq']);
    expect(model.tensors.has('lm_head.weight')).toBe(false);
  });

  it('reads and validates generation_config.json', async () => {
    const { config, bytes } = await qwen2();
    const gen = { bos_token_id: 1, eos_token_id: [2, 5], temperature: 0.7, top_k: 20, top_p: 0.8, do_sample: true, repetition_penalty: null };
    const dir = await folder('gen', { 'config.json': config, 'model.safetensors': bytes, 'generation_config.json': gen });
    expect((await loadModelFiles(nodeDirectorySource(dir))).generationConfig).toEqual({ bosTokenId: 1, eosTokenIds: [2, 5], temperature: 0.7, topK: 20, topP: 0.8, doSample: true });
    await writeFile(join(dir, 'generation_config.json'), JSON.stringify({ top_p: 1.5 }));
    expect(((await rejection(loadModelFiles(nodeDirectorySource(dir)))) as ModelConfigError).field).toBe('generation_config.top_p');
  });

  it('missing or unreadable files: ModelFileError with the path', async () => {
    const { config } = await qwen2();
    const noWeights = await folder('no-weights', { 'config.json': config });
    const e = await rejection(loadModelFiles(nodeDirectorySource(noWeights)));
    expect(e).toBeInstanceOf(ModelFileError);
    expect((e as ModelFileError).path).toBe(`${noWeights}/model.safetensors`);
    const noConfig = await rejection(loadModelFiles(nodeDirectorySource(join(tmp, 'nowhere'))));
    expect((noConfig as ModelFileError).path).toBe(join(tmp, 'nowhere', 'config.json'));
    const badJson = await folder('bad-json', { 'config.json': new TextEncoder().encode('{"vocab_size": 3') });
    expect(await rejection(loadModelFiles(nodeDirectorySource(badJson)))).toBeInstanceOf(ModelFileError);
    const source = nodeDirectorySource(join(FIXTURES, 'tiny-qwen2'));
    await expect(source.read('../tiny-llama3/config.json')).rejects.toThrow(ModelFileError);
    await expect(source.read('/etc/passwd')).rejects.toThrow(ModelFileError);
    await expect(nodeDirectorySource(FIXTURES).read('tiny-qwen2')).rejects.toThrow(/cannot read/);
    expect(await source.read('absent.json')).toBeNull();
  });
});

describe('HTTP sources against a local server in the hub layout', () => {
  let server: Server;
  let endpoint: string;
  const requests: string[] = [];

  beforeAll(async () => {
    // /{org}/{name}/resolve/{revision}/{file}: org 'fixtures' maps names to test/fixtures folders.
    server = createServer((req, res) => {
      void (async () => {
        const url = new URL(req.url ?? '/', 'http://x');
        requests.push(url.pathname);
        const m = /^\/([^/]+)\/([^/]+)\/resolve\/([^/]+)\/(.+)$/.exec(url.pathname);
        if (url.pathname.endsWith('/boom.json')) return void res.writeHead(500).end();
        if (!m || m[1] !== 'fixtures' || !(m[2]! in DTYPES)) return void res.writeHead(404, { 'x-error-code': 'RepositoryNotFound' }).end();
        if (!['main', 'refs/pr/1'].includes(decodeURIComponent(m[3]!))) return void res.writeHead(404, { 'x-error-code': 'RevisionNotFound' }).end();
        try {
          const body = await readFile(join(FIXTURES, m[2]!, decodeURIComponent(m[4]!)));
          res.writeHead(200, { 'content-type': 'application/octet-stream' }).end(body);
        } catch {
          res.writeHead(404, { 'x-error-code': 'EntryNotFound' }).end('Entry not found');
        }
      })();
    });
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    endpoint = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

  it.each(NAMES)('hubSource loads %s identically to the directory', async (name) => {
    requests.length = 0;
    const overHttp = await loadModelFiles(hubSource(`fixtures/${name}`, { endpoint }));
    const fromDisk = await loadModelFiles(nodeDirectorySource(join(FIXTURES, name)));
    expect(overHttp.config).toEqual(fromDisk.config);
    expectSameTensors(fromDisk, overHttp);
    expect(requests).toContain(`/fixtures/${name}/resolve/main/generation_config.json`); // answered 404
    expect(overHttp.generationConfig).toBeNull();
  });

  it('httpSource maps 404 to null, other statuses to ModelFileError, and encodes revisions', async () => {
    const src = httpSource(`${endpoint}/fixtures/tiny-qwen2/resolve/main/`);
    expect(src.describe()).toBe(`${endpoint}/fixtures/tiny-qwen2/resolve/main`);
    expect(await src.read('generation_config.json')).toBeNull();
    expect((await src.read('config.json'))!.byteLength).toBeGreaterThan(100);
    const boom = await rejection(src.read('boom.json'));
    expect(boom).toBeInstanceOf(ModelFileError);
    expect([(boom as ModelFileError).status, (boom as ModelFileError).path]).toEqual([500, `${endpoint}/fixtures/tiny-qwen2/resolve/main/boom.json`]);
    await expect(hubSource('fixtures/unknown', { endpoint }).read('config.json')).rejects.toThrow(/RepositoryNotFound/);
    await expect(hubSource('fixtures/tiny-qwen2', { endpoint, revision: 'v9' }).read('config.json')).rejects.toThrow(/RevisionNotFound/);
    requests.length = 0;
    expect(await hubSource('fixtures/tiny-qwen2', { endpoint, revision: 'refs/pr/1' }).read('config.json')).not.toBeNull();
    expect(requests).toEqual(['/fixtures/tiny-qwen2/resolve/refs%2Fpr%2F1/config.json']);
    await expect(httpSource('http://127.0.0.1:1').read('config.json')).rejects.toThrow(ModelFileError);
    expect(() => hubSource('../etc')).toThrow(ModelFileError);
  });

  it('hubSource defaults to huggingface.co/{repo}/resolve/main and sends an access token', async () => {
    const seen: { url: string; auth: string | null }[] = [];
    const fake = (async (input: RequestInfo | URL, init?: RequestInit) => {
      seen.push({ url: String(input), auth: new Headers(init?.headers).get('authorization') });
      return new Response(null, { status: 404 });
    }) as typeof fetch;
    expect(await hubSource('Qwen/Qwen2.5-0.5B', { fetch: fake, accessToken: 'hf_x' }).read('tokenizer.json')).toBeNull();
    expect(seen).toEqual([{ url: 'https://huggingface.co/Qwen/Qwen2.5-0.5B/resolve/main/tokenizer.json', auth: 'Bearer hf_x' }]);
  });
});

describe('fileListSource', () => {
  const file = (path: string, bytes: Uint8Array): FileLike => ({
    name: path.slice(path.lastIndexOf('/') + 1),
    webkitRelativePath: path.includes('/') ? path : '',
    arrayBuffer: async () => bytes.slice().buffer,
  });

  it('loads a fixture from browser-style File objects (a picked folder)', async () => {
    const files = await Promise.all(['config.json', 'model.safetensors', 'tokenizer.json', 'tokenizer_config.json'].map(async (f) => file(`tiny-qwen2/${f}`, await fixtureFile('tiny-qwen2', f))));
    const model = await loadModelFiles(fileListSource(files));
    expectSameTensors(await loadModelFiles(nodeDirectorySource(join(FIXTURES, 'tiny-qwen2'))), model);
    expect(model.tokenizerJson).not.toBeNull();
  });

  it('matches real File objects by name and refuses ambiguous matches', async () => {
    const config = await fixtureFile('tiny-mistral', 'config.json');
    const src = fileListSource([new File([config.slice()], 'config.json')]);
    expect(await src.read('config.json')).toEqual(config);
    expect(await src.read('model.safetensors')).toBeNull();
    const two = fileListSource([file('a/config.json', config), file('b/config.json', config)]);
    await expect(two.read('config.json')).rejects.toThrow(/matches 2 files/);
    expect(await fileListSource([file('a/config.json', config), file('b/config.json', new Uint8Array(1))]).read('a/config.json')).toEqual(config);
  });
});
