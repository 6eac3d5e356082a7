// GGUF files as webslo models (src/model/gguf.ts, gguf-model.ts, loadModelFiles): each shared
// fixture written as GGUF (by the writer that llama.cpp itself checks, gguf-llama-cpp.test.ts) loads
// with the fixture's config and exactly its tensors (q/k rows permuted back for `llama` files), and
// the float64 reference model on them gives HF's logits; Q8_0 and Q4_0 load as the values their
// blocks stand for; and a malformed file is a GgufError (or a typed model error) naming the fault.

import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ggufBytes, ggufFromHfFolder, ggufPlan, loadHfFolder } from '../../bench/gguf/from-hf.js';
import { dequantizeQ4_0, dequantizeQ8_0, quantizeQ4_0, quantizeQ8_0 } from '../../bench/gguf/quantize.js';
import { writeGguf, type GgufValue as WriterValue } from '../../bench/gguf/write.js';
import { ModelConfigError, UnsupportedModelError } from '../../src/model/errors.js';
import { GgufError, parseGguf } from '../../src/model/gguf.js';
import { loadModelFiles, tensorToFloat64 } from '../../src/model/load.js';
import { nodeDirectorySource, nodeGgufFileSource } from '../../src/model/source.js';
import { ReferenceModel } from '../../src/reference/model.js';
import { resolveModelSource } from '../../src/hub/resolve.js';
import { FIXTURE_MODELS, fixtureCases, fixtureDir } from '../helpers/fixtures.js';
import { fileRequests, startHubServer } from '../helpers/hub-server.js';

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'webslo-gguf-load-'));
});
afterAll(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
});

const write = (name: string, bytes: Uint8Array): string => {
  const path = join(dir, name);
  writeFileSync(path, bytes);
  return path;
};

describe.each(FIXTURE_MODELS)('%s as an F32 GGUF file', (model) => {
  it("loads the folder's config and tensors, and the float64 reference gives HF's logits", async () => {
    const path = write(`${model}.gguf`, ggufFromHfFolder(fixtureDir(model), 'F32'));
    const source = await resolveModelSource(path);
    expect(source.gguf).toBe(`${model}.gguf`);
    const fromGguf = await loadModelFiles(source);
    const fromHf = await loadModelFiles(nodeDirectorySource(fixtureDir(model)));
    // The config as the folder's, but for what GGUF does not carry (dtype) or carries differently (RoPE scaling as factors).
    // (GGUF stores eps in float32, and Mistral as `llama`.)
    const { ropeScaling, torchDtype: _t, rmsNormEps, ...rest } = fromGguf.config;
    const { ropeScaling: hfScaling, torchDtype: _h, rmsNormEps: hfEps, ...hfRest } = fromHf.config;
    expect(rest).toEqual({ ...hfRest, architecture: hfRest.architecture === 'mistral' ? 'llama' : hfRest.architecture });
    expect(rmsNormEps).toBe(Math.fround(hfEps));
    expect(ropeScaling?.type ?? null).toBe(hfScaling ? 'factors' : null);
    expect([...fromGguf.tensors.keys()]).toEqual([...fromHf.tensors.keys()]);
    for (const [name, t] of fromHf.tensors) {
      expect(fromGguf.tensors.get(name)!.shape, name).toEqual(t.shape);
      expect(firstDifference(tensorToFloat64(fromGguf.tensors.get(name)!), tensorToFloat64(t)), name).toBe(-1);
    }
    const weight = (name: string): Float64Array => tensorToFloat64(fromGguf.tensors.get(name)!);
    // The prompts of 1, 5 and 37 tokens (the float64 model is slow; reference-model.test.ts runs all five on the folder).
    for (const c of fixtureCases(model).filter((x) => x.prompt.length <= 37)) {
      const ref = new ReferenceModel(fromGguf.config, weight);
      const logits = ref.forward(c.prompt);
      let maxErr = 0;
      for (let i = 0; i < logits.length; i++) maxErr = Math.max(maxErr, Math.abs(logits[i]! - c.last_logits[i]!));
      // As the folder's own reference test (3e-5): the factors are HF's scaled frequencies divided out in float32.
      expect(maxErr, `prompt ${c.prompt.length}`).toBeLessThan(3e-5);
    }
  });
});

describe('quantized GGUF tensors', () => {
  for (const [type, quantize, dequantize] of [
    ['Q4_0', quantizeQ4_0, dequantizeQ4_0],
    ['Q8_0', quantizeQ8_0, dequantizeQ8_0],
  ] as const) {
    it(`${type} matrices load as exactly the values their blocks stand for (F32); vectors stay as they are`, async () => {
      const hf = loadHfFolder(fixtureDir('tiny-mistral'));
      const path = write(`mistral-${type}.gguf`, ggufBytes(ggufPlan(hf.config, hf.source, type, hf.name, hf.vocab)));
      const loaded = await loadModelFiles(nodeGgufFileSource(path));
      const folder = await loadModelFiles(nodeDirectorySource(fixtureDir('tiny-mistral')));
      for (const [name, t] of folder.tensors) {
        const got = loaded.tensors.get(name)!;
        const values = Float32Array.from(tensorToFloat64(t));
        if (t.shape.length === 2) {
          expect(got.dtype, name).toBe('F32');
          // q/k were permuted for the file and back at load: compare with the file's own rows permuted back too.
          expect(firstDifference(tensorToFloat64(got), Float64Array.from(dequantizeRows(name, values, dequantize, quantize, hf.config.numHeads, hf.config.numKvHeads, t.shape))), name).toBe(-1);
        } else {
          expect(firstDifference(tensorToFloat64(got), tensorToFloat64(t)), name).toBe(-1);
        }
      }
    });
  }
});

/** The first index where a and b differ (or their lengths do), -1 when they are equal. */
function firstDifference(a: Float64Array, b: Float64Array): number {
  if (a.length !== b.length) return Math.min(a.length, b.length);
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return i;
  return -1;
}

/** What a quantized q_proj/k_proj holds after the round trip: quantized in GGML's row order, then unpermuted. */
function dequantizeRows(
  name: string,
  values: Float32Array,
  dequantize: (b: Uint8Array) => Float32Array,
  quantize: (v: Float32Array) => Uint8Array,
  heads: number,
  kvHeads: number,
  shape: number[],
): Float32Array {
  const h = name.includes('q_proj') ? heads : name.includes('k_proj') ? kvHeads : 0;
  if (h === 0) return dequantize(quantize(values));
  const [rows, cols] = shape as [number, number];
  const headDim = rows / h;
  const half = headDim / 2;
  const permuted = new Float32Array(values.length);
  const back = new Float32Array(values.length);
  const move = (from: Float32Array, to: Float32Array, inverse: boolean): void => {
    for (let head = 0; head < h; head++)
      for (let s = 0; s < 2; s++)
        for (let j = 0; j < half; j++) {
          const hfRow = head * headDim + s * half + j;
          const ggmlRow = head * headDim + 2 * j + s;
          const [a, b] = inverse ? [ggmlRow, hfRow] : [hfRow, ggmlRow];
          to.set(from.subarray(a * cols, a * cols + cols), b * cols);
        }
  };
  move(values, permuted, false);
  move(dequantize(quantize(permuted)), back, true);
  return back;
}

describe('malformed GGUF files', () => {
  const good = writeGguf(new Map([['general.architecture', { type: 'string', value: 'qwen2' }]]), [{ name: 'x', shape: [32], type: 'F32', data: new Uint8Array(128) }]);
  const meta = (entries: [string, WriterValue][]): Map<string, WriterValue> => new Map(entries);

  it('every truncation is a GgufError, and never reads past the end', () => {
    // A small file with every value kind: each prefix of its header and infos, a sample into the data.
    const small = writeGguf(
      meta([
        ['general.architecture', { type: 'string', value: 'llama' }],
        ['n', { type: 'u32', value: 3 }],
        ['f', { type: 'f32', value: 0.5 }],
        ['b', { type: 'bool', value: true }],
        ['s', { type: 'array', of: 'string', value: ['<s>', '</s>'] }],
        ['i', { type: 'array', of: 'i32', value: [1, 2, 3] }],
      ]),
      [
        { name: 'a', shape: [2, 32], type: 'F32', data: new Uint8Array(256) },
        { name: 'b', shape: [32], type: 'Q4_0', data: new Uint8Array(18) },
      ],
    );
    expect(parseGguf(small, 'ok').tensors.size).toBe(2);
    for (let n = 0; n < small.length; n++) expect(() => parseGguf(small.subarray(0, n), 'cut.gguf'), `${n} bytes`).toThrow(GgufError);
  });

  it('names the fault: magic, version, counts, types, offsets, alignment, duplicates', () => {
    const bytes = (edit: (b: Uint8Array, v: DataView) => void): Uint8Array => {
      const b = good.slice();
      edit(b, new DataView(b.buffer));
      return b;
    };
    expect(() =>
      parseGguf(
        bytes((b) => (b[0] = 0x47 + 1)),
        'f',
      ),
    ).toThrow(/not a GGUF file/);
    expect(() =>
      parseGguf(
        bytes((_, v) => v.setUint32(4, 4, true)),
        'f',
      ),
    ).toThrow(/version 4/);
    expect(() =>
      parseGguf(
        bytes((_, v) => v.setBigUint64(8, 1n << 40n, true)),
        'f',
      ),
    ).toThrow(/claims 1099511627776 tensors/);
    expect(() =>
      parseGguf(
        bytes((_, v) => v.setBigUint64(16, 1n << 20n, true)),
        'f',
      ),
    ).toThrow(/key-values/);
    const oneTensor = (type: 'F32', data: Uint8Array, extra: [string, WriterValue][] = []): Uint8Array =>
      writeGguf(meta([['general.architecture', { type: 'string', value: 'qwen2' }], ...extra]), [{ name: 't', shape: [2, 32], type, data }]);
    const t = oneTensor('F32', new Uint8Array(256));
    expect(parseGguf(t, 'ok').tensors.get('t')!.shape).toEqual([2, 32]);
    // Tensor 't''s info: name (u64 length 1, 't'), u32 dims 2, two u64 dims, then u32 type and u64 offset.
    const nameAt = t.findIndex((_, i) => t[i] === 1 && t.subarray(i + 1, i + 8).every((x) => x === 0) && t[i + 8] === 0x74 && t[i + 9] === 2);
    const at = nameAt + 9 + 4 + 16;
    const setType = (n: number): Uint8Array => {
      const b = t.slice();
      new DataView(b.buffer).setUint32(at, n, true);
      return b;
    };
    expect(() => parseGguf(setType(10), 'f')).toThrow(/GGML type Q2_K, which webslo does not read/);
    expect(() => parseGguf(setType(99), 'f')).toThrow(/GGML type 99/);
    const setOffset = (n: bigint): Uint8Array => {
      const b = t.slice();
      new DataView(b.buffer).setBigUint64(at + 4, n, true);
      return b;
    };
    expect(() => parseGguf(setOffset(3n), 'f')).toThrow(/not a multiple of the alignment 32/);
    expect(() => parseGguf(setOffset(1024n), 'f')).toThrow(/needs data bytes \[1024, 1280\)/);
    expect(() => parseGguf(oneTensor('F32', new Uint8Array(256), [['general.alignment', { type: 'u32', value: 24 }]]), 'f')).toThrow(/general.alignment is 24/);
    const dup = writeGguf(meta([['a', { type: 'u32', value: 1 }]]), []);
    const v = new DataView(dup.buffer);
    v.setBigUint64(16, 2n, true); // two key-values claimed: the second reads the header's zero padding
    expect(() => parseGguf(dup, 'f')).toThrow(/key 1 is empty/);
    const twice = writeGguf(
      meta([
        ['a', { type: 'u32', value: 1 }],
        ['b', { type: 'u32', value: 2 }],
      ]),
      [],
    );
    twice[twice.indexOf(0x62, 24)] = 0x61; // key 'b' renamed 'a'
    expect(() => parseGguf(twice, 'f')).toThrow(/key 'a' appears twice/);
    const hugeArray = writeGguf(meta([['a', { type: 'array', of: 'u32', value: [1, 2] }]]), []);
    new DataView(hugeArray.buffer).setBigUint64(24 + 8 + 1 + 4 + 4, 1n << 40n, true);
    expect(() => parseGguf(hugeArray, 'f')).toThrow(/claims 1099511627776 elements/);
  });

  it('refuses what the engine cannot honour, naming the key', async () => {
    const hf = loadHfFolder(fixtureDir('tiny-qwen2'));
    const plan = ggufPlan(hf.config, hf.source, 'F32', hf.name, hf.vocab);
    const variant = (edit: (m: Map<string, WriterValue>) => void): string => {
      const metadata = new Map(plan.metadata);
      edit(metadata);
      return write(
        `variant-${Math.random().toString(36).slice(2)}.gguf`,
        writeGguf(
          metadata,
          plan.tensors.map((t, i) => ({ ...t, data: plan.data(i) })),
        ),
      );
    };
    const load = (path: string): Promise<unknown> => loadModelFiles(nodeGgufFileSource(path));
    await expect(load(variant((m) => m.set('general.architecture', { type: 'string', value: 'gemma' })))).rejects.toThrow(UnsupportedModelError);
    await expect(load(variant((m) => m.delete('qwen2.block_count')))).rejects.toThrow(/'qwen2.block_count': is missing from the GGUF metadata/);
    await expect(load(variant((m) => m.set('qwen2.attention.layer_norm_rms_epsilon', { type: 'string', value: 'x' })))).rejects.toThrow(ModelConfigError);
    await expect(load(variant((m) => m.set('qwen2.rope.dimension_count', { type: 'u32', value: 8 })))).rejects.toThrow(/partial rotary/);
    await expect(load(variant((m) => m.set('qwen2.rope.scaling.type', { type: 'string', value: 'yarn' })))).rejects.toThrow(/RoPE scaling "yarn"/);
    await expect(load(variant((m) => m.set('tokenizer.ggml.eos_token_id', { type: 'u32', value: 40000 })))).rejects.toThrow(/tokenizer.ggml.eos_token_id/);
    await expect(load(variant((m) => m.set('qwen2.block_count', { type: 'u32', value: 3 })))).rejects.toThrow(/missing/);
  });

  it('a file path that is not .gguf is still refused as a file', async () => {
    const path = write('model.bin', new Uint8Array(8));
    await expect(resolveModelSource(path)).rejects.toThrow(/is a file; pass the model folder that holds it, or a .gguf file/);
  });
});

describe('GGUF files from other sources', () => {
  it('an http(s) URL of a .gguf file (a hub resolve URL) and a single picked .gguf File are that model', async () => {
    const folder = mkdtempSync(join(dir, 'served-'));
    const bytes = ggufFromHfFolder(fixtureDir('tiny-llama3'), 'F32');
    writeFileSync(join(folder, 'tiny llama.gguf'), bytes);
    const hub = await startHubServer({ 'org/gguf': folder });
    try {
      const source = await resolveModelSource(`${hub.endpoint}/org/gguf/resolve/main/tiny%20llama.gguf`);
      expect(source.gguf).toBe('tiny llama.gguf');
      const loaded = await loadModelFiles(source);
      expect(loaded.config.architecture).toBe('llama');
      expect(loaded.weightFiles).toEqual(['tiny llama.gguf']);
      expect(fileRequests(hub.requests)).toEqual(['GET tiny llama.gguf']);
    } finally {
      await hub.close();
    }
    const picked = await resolveModelSource([new File([bytes.slice().buffer as ArrayBuffer], 'model.gguf')]);
    expect(picked.gguf).toBe('model.gguf');
    expect((await loadModelFiles(picked)).config.numLayers).toBe(3);
  });
});
