import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { SafetensorsError } from '../../src/model/errors.js';
import { parseSafetensors, readSafetensorsHeader, readSafetensorsHeaderLength } from '../../src/model/safetensors.js';
import { buildSafetensors, encodeSafetensors, rewriteHeader, splitFile } from '../helpers/safetensors-builder.js';

function err(fn: () => unknown): SafetensorsError {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(SafetensorsError);
    return e as SafetensorsError;
  }
  throw new Error('expected a SafetensorsError');
}

const f32 = (values: number[]): Uint8Array => new Uint8Array(new Float32Array(values).buffer);
const small = (): Uint8Array =>
  buildSafetensors([
    { name: 'a', dtype: 'F32', shape: [2], data: f32([1.5, -2]) },
    { name: 'b', dtype: 'F16', shape: [1, 3] },
    { name: 'c', dtype: 'BF16', shape: [2, 2] },
  ]);

describe('parseSafetensors on well-formed files', () => {
  it('reads tensors, shapes, dtypes and metadata, with data as views (no copy)', () => {
    const bytes = small();
    const file = parseSafetensors(bytes, 'small.safetensors');
    expect([...file.tensors.keys()]).toEqual(['a', 'b', 'c']);
    expect(file.metadata).toEqual({ format: 'pt' });
    const a = file.tensors.get('a')!;
    expect([a.dtype, a.shape]).toEqual(['F32', [2]]);
    expect(a.data.buffer).toBe(bytes.buffer);
    expect(Array.from(new Float32Array(a.data.slice().buffer))).toEqual([1.5, -2]);
    expect(file.tensors.get('b')!.data.byteLength).toBe(6);
    expect(file.tensors.get('c')!.shape).toEqual([2, 2]);
  });

  it('accepts an empty header, scalars, zero-sized tensors and files without metadata', () => {
    expect(parseSafetensors(encodeSafetensors('{}'), 'e').tensors.size).toBe(0);
    const f = parseSafetensors(
      buildSafetensors(
        [
          { name: 'scalar', dtype: 'F32', shape: [] },
          { name: 'empty', dtype: 'F16', shape: [0, 1e15] },
          { name: 'after', dtype: 'BF16', shape: [1] },
        ],
        null,
      ),
      'z',
    );
    expect(f.tensors.get('scalar')!.data.byteLength).toBe(4);
    expect(f.tensors.get('empty')!.data.byteLength).toBe(0);
    expect(f.metadata).toEqual({});
  });

  it('parses every fixture and a header alone (the lazy path)', () => {
    for (const name of ['tiny-qwen2', 'tiny-llama3', 'tiny-qwen3b', 'tiny-mistral']) {
      const bytes = new Uint8Array(readFileSync(new URL(`../fixtures/${name}/model.safetensors`, import.meta.url)));
      const file = parseSafetensors(bytes, `${name}/model.safetensors`);
      expect(file.tensors.get('model.embed_tokens.weight')!.shape[0]).toBe(32000);
      const dataOffset = readSafetensorsHeaderLength(bytes.subarray(0, 8), 'x', bytes.length);
      const header = readSafetensorsHeader(bytes.subarray(0, dataOffset), 'x', bytes.length);
      expect(header.tensors.size).toBe(file.tensors.size);
      expect(header.dataOffset + header.dataSize).toBe(bytes.length);
    }
  });
});

describe('parseSafetensors refusals', () => {
  it('names the file in every error', () => {
    const e = err(() => parseSafetensors(new Uint8Array(3), 'shard-7.safetensors'));
    expect(e.fileName).toBe('shard-7.safetensors');
    expect(e.message).toMatch(/^shard-7\.safetensors: .*too short/);
  });

  it('refuses truncated files', () => {
    const bytes = small();
    err(() => parseSafetensors(bytes.subarray(0, 0), 't'));
    err(() => parseSafetensors(bytes.subarray(0, 7), 't'));
    expect(err(() => parseSafetensors(bytes.subarray(0, 20), 't')).message).toMatch(/runs past the end/);
    const e = err(() => parseSafetensors(bytes.subarray(0, bytes.length - 1), 't'));
    expect(e.tensor).toBe('c');
    expect(e.message).toMatch(/past the .*data region/);
    // A header alone is not enough for readSafetensorsHeader either.
    expect(err(() => readSafetensorsHeader(bytes.subarray(0, 12), 't', bytes.length)).message).toMatch(/header bytes were given/);
  });

  it('refuses bad header lengths', () => {
    const data = new Uint8Array(16);
    expect(err(() => parseSafetensors(encodeSafetensors('{}', data, { headerLength: 0 }), 'h')).message).toMatch(/below 2/);
    expect(err(() => parseSafetensors(encodeSafetensors('{}', data, { headerLength: 1 }), 'h')).message).toMatch(/below 2/);
    expect(err(() => parseSafetensors(encodeSafetensors('{}', data, { headerLength: 2n ** 63n }), 'h')).message).toMatch(/100 MiB/);
    expect(err(() => parseSafetensors(encodeSafetensors('{}', data, { headerLength: 100 * 2 ** 20 + 1 }), 'h')).message).toMatch(/100 MiB/);
    expect(err(() => parseSafetensors(encodeSafetensors('{}', data, { headerLength: 19 }), 'h')).message).toMatch(/runs past/);
    // A length that cuts the JSON short leaves invalid JSON.
    expect(err(() => parseSafetensors(encodeSafetensors('{"a":1}', data, { headerLength: 4 }), 'h')).message).toMatch(/not valid JSON/);
  });

  it('refuses headers that are not UTF-8 JSON objects', () => {
    expect(err(() => parseSafetensors(encodeSafetensors('{not json}'), 'j')).message).toMatch(/not valid JSON/);
    expect(err(() => parseSafetensors(encodeSafetensors('[1, 2]'), 'j')).message).toMatch(/a list, not a JSON object/);
    expect(err(() => parseSafetensors(encodeSafetensors('"str"'), 'j')).message).toMatch(/not a JSON object/);
    expect(err(() => parseSafetensors(encodeSafetensors('null'), 'j')).message).toMatch(/not a JSON object/);
    const bad = encodeSafetensors('{"a":"xx"}');
    bad[13] = 0xff; // an invalid UTF-8 byte inside the string
    expect(err(() => parseSafetensors(bad, 'j')).message).toMatch(/UTF-8/);
    const bom = encodeSafetensors('\ufeff{}');
    expect(err(() => parseSafetensors(bom, 'j')).message).toMatch(/JSON/);
  });

  it('refuses bad __metadata__', () => {
    expect(err(() => parseSafetensors(encodeSafetensors({ __metadata__: [1] }), 'm')).message).toMatch(/__metadata__ is/);
    expect(err(() => parseSafetensors(encodeSafetensors({ __metadata__: { n: 1 } }), 'm')).message).toMatch(/__metadata__\['n'\]/);
  });

  it('refuses unknown and unsupported dtypes, naming the tensor', () => {
    for (const dtype of ['I8', 'F64', 'U8', 'F8_E4M3', 'Q4']) {
      const bytes = buildSafetensors([{ name: 'w', dtype, shape: [4] }]);
      const e = err(() => parseSafetensors(bytes, 'd.safetensors'));
      expect(e.tensor).toBe('w');
      expect(e.message).toBe(`d.safetensors: tensor 'w': unsupported dtype ${dtype} (supported: F32, F16, BF16)`);
    }
    const e = err(() =>
      parseSafetensors(
        rewriteHeader(small(), (h) => ((h['a'] as Record<string, unknown>)['dtype'] = 3)),
        'd',
      ),
    );
    expect(e.message).toMatch(/dtype is 3, not a string/);
  });

  it('refuses bad shapes and byte lengths that disagree with the shape', () => {
    const set = (field: string, value: unknown) => (h: Record<string, unknown>) => {
      (h['a'] as Record<string, unknown>)[field] = value;
    };
    expect(err(() => parseSafetensors(rewriteHeader(small(), set('shape', [3])), 's')).message).toMatch(/holds 8 bytes, but shape \[3\] of F32 needs 12/);
    expect(err(() => parseSafetensors(rewriteHeader(small(), set('shape', [-2])), 's')).message).toMatch(/not a non-negative integer/);
    expect(err(() => parseSafetensors(rewriteHeader(small(), set('shape', [2.5])), 's')).message).toMatch(/not a non-negative integer/);
    expect(err(() => parseSafetensors(rewriteHeader(small(), set('shape', '2')), 's')).message).toMatch(/not a list/);
    expect(err(() => parseSafetensors(rewriteHeader(small(), set('shape', [2 ** 40, 2 ** 40])), 's')).message).toMatch(/too large/);
    expect(err(() => parseSafetensors(rewriteHeader(small(), set('data_offsets', [0])), 's')).message).toMatch(/not \[begin, end\]/);
    expect(err(() => parseSafetensors(rewriteHeader(small(), set('data_offsets', [0, '8'])), 's')).message).toMatch(/not non-negative integers/);
    expect(err(() => parseSafetensors(rewriteHeader(small(), set('data_offsets', [8, 0])), 's')).message).toMatch(/end before they begin/);
    expect(
      err(() =>
        parseSafetensors(
          rewriteHeader(small(), (h) => (h['a'] = 'x')),
          's',
        ),
      ).message,
    ).toMatch(/not an object/);
    const e = err(() => parseSafetensors(rewriteHeader(small(), set('dtype', 'F16')), 's'));
    expect([e.tensor, e.message]).toEqual(['a', "s: tensor 'a': holds 8 bytes, but shape [2] of F16 needs 4"]);
  });

  it('refuses overlapping offsets, gaps and uncovered tails', () => {
    // Layout of small(): a [0, 8), b [8, 14), c [14, 22).
    const overlap = rewriteHeader(small(), (h) => {
      (h['b'] as Record<string, unknown>)['data_offsets'] = [6, 12];
      (h['c'] as Record<string, unknown>)['data_offsets'] = [12, 20];
      h['pad'] = { dtype: 'F16', shape: [1], data_offsets: [20, 22] };
    });
    const e = err(() => parseSafetensors(overlap, 'o'));
    expect(e.tensor).toBe('b');
    expect(e.message).toMatch(/overlap tensor 'a'/);
    const aliased = rewriteHeader(small(), (h) => {
      (h['b'] as Record<string, unknown>)['data_offsets'] = [0, 6];
      (h['c'] as Record<string, unknown>)['data_offsets'] = [14, 22];
    });
    expect(err(() => parseSafetensors(aliased, 'o')).message).toMatch(/overlap/);
    const gap = rewriteHeader(small(), (h) => {
      delete h['b'];
    });
    const g = err(() => parseSafetensors(gap, 'g'));
    expect(g.tensor).toBe('c');
    expect(g.message).toMatch(/gap: bytes \[8, 14\)/);
    const { header, data } = splitFile(small());
    const tail = encodeSafetensors(header, new Uint8Array([...data, 0, 0]));
    expect(err(() => parseSafetensors(tail, 't')).message).toMatch(/bytes \[22, 24\) at the end/);
    const lead = rewriteHeader(small(), (h) => delete h['a']);
    expect(err(() => parseSafetensors(lead, 'l')).message).toMatch(/gap: bytes \[0, 8\)/);
  });
});
