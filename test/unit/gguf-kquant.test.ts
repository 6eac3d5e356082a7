// GGUF K-quants (Q4_K, Q5_K, Q6_K) and the 5-bit Q5_0 / Q5_1 (llama.cpp's fallback for K-quant rows
// not a multiple of 256) as webslo reads them: blocks built by hand from ggml's block layouts
// (block_q4_K, block_q5_K, block_q6_K, block_q5_0, block_q5_1 in ggml-common.h) load as the values
// ggml's dequantize_row_* gives for them, the fields placed where the layout says (the 6-bit scales'
// high bits, Q5_K's fifth bits, Q6_K's split codes and int8 scales, Q5_0/Q5_1's qh word); a whole
// Q4_K_M file of a synthetic model loads every matrix within a quantization step of its weights, and
// one with 896-wide rows (Qwen2.5-0.5B's hidden size) holds llama.cpp's fallback types; a K-quant
// tensor whose rows are not whole super-blocks, or whose data is cut short, is a GgufError naming it.
// (gguf-llama-cpp.test.ts checks the same values against llama.cpp running the files.)

import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ggufBytes, ggufPlan, syntheticVocab } from '../../bench/gguf/from-hf.js';
import { writeGguf } from '../../bench/gguf/write.js';
import { syntheticSource } from '../../bench/synthetic-files.js';
import { GgufError, parseGguf } from '../../src/model/gguf.js';
import { loadModelFiles, tensorToFloat64 } from '../../src/model/load.js';
import { nodeGgufFileSource } from '../../src/model/source.js';
import { ggufModel } from '../../src/model/gguf-model.js';
import { putHalf } from '../../bench/gguf/quantize.js';
import { syntheticQwen2Config } from '../helpers/synthetic-qwen2.js';

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'webslo-gguf-kquant-'));
});
afterAll(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
});

const ARCH = new Map([['general.architecture', { type: 'string' as const, value: 'qwen2' }]]);

/** The values webslo loads for one [1, 256] tensor of `type` with these block bytes (8 blocks of 32 for Q5_0/Q5_1). */
function loadBlock(type: 'Q4_K' | 'Q5_K' | 'Q6_K' | 'Q5_0' | 'Q5_1', block: Uint8Array): Float64Array {
  const file = parseGguf(writeGguf(ARCH, [{ name: 'token_embd.weight', shape: [1, 256], type, data: block }]), 'block.gguf');
  // ggufModel needs the config keys; the tensor itself is what is checked.
  const meta = new Map(file.metadata);
  for (const [k, v] of [
    ['qwen2.embedding_length', 256],
    ['qwen2.attention.head_count', 1],
    ['qwen2.block_count', 1],
    ['qwen2.feed_forward_length', 256],
    ['qwen2.attention.layer_norm_rms_epsilon', 1e-6],
  ] as const) {
    meta.set(k, v);
  }
  return tensorToFloat64(ggufModel({ ...file, metadata: meta }, 'block.gguf').tensors.get('model.embed_tokens.weight')!);
}

describe('K-quant super-blocks built by hand', () => {
  // Sub-block 5 (values 160..191) of Q4_K/Q5_K: scale 37 = 0b10_0101, min 50 = 0b11_0010. Sub-blocks
  // 4..7 keep their low 4 bits in bytes 8..11 (scale low nibble, min high nibble) and their top 2 bits
  // in bits 6-7 of bytes 0..3 (scales) and 4..7 (mins). Sub-block 0: scale 3, min 4 in bytes 0 and 4;
  // sub-block 4: scale 32 (only its top bits, 0b10, in byte 0), min 0.
  const scales = (b: Uint8Array, at: number): void => {
    b[at + 0] = 3 | (0b10 << 6);
    b[at + 1] = 0b10 << 6; // sub-block 5's scale top bits
    b[at + 4] = 4;
    b[at + 5] = 0b11 << 6; // sub-block 5's min top bits
    b[at + 9] = 0x5 | (0x2 << 4);
  };

  it('Q4_K: d*scale*q - dmin*min, nibbles low for even sub-blocks, high for odd ones', () => {
    const b = new Uint8Array(144);
    putHalf(b, 0, 1);
    putHalf(b, 2, 0.5);
    scales(b, 4);
    // Value 163: sub-block 5 = the high nibbles of bytes [64, 96) of qs (qs at 16); value 3 of it.
    b[16 + 64 + 3] = 9 << 4;
    // Value 1: sub-block 0, the low nibble of qs[1].
    b[16 + 1] = 7;
    // Value 132: sub-block 4 = the low nibbles of the same bytes.
    b[16 + 64 + 4] = 5;
    const v = loadBlock('Q4_K', b);
    expect(v[163]).toBe(37 * 9 - 0.5 * 50);
    expect(v[1]).toBe(3 * 7 - 0.5 * 4);
    expect(v[160]).toBe(-0.5 * 50); // code 0
    expect(v[132]).toBe(32 * 5);
  });

  it('Q5_K: as Q4_K, plus 16 where bit s of qh[l] is set (qh before the nibbles)', () => {
    const b = new Uint8Array(176);
    putHalf(b, 0, 1);
    putHalf(b, 2, 0.5);
    scales(b, 4);
    b[48 + 64 + 3] = 9 << 4; // qs at 48 (after 32 bytes of qh at 16)
    b[16 + 3] = 1 << 5; // fifth bit of value 3 of sub-block 5
    b[16 + 4] = 1 << 4; // value 4 of sub-block 4 (low nibble 0): code 16
    const v = loadBlock('Q5_K', b);
    expect(v[163]).toBe(37 * (9 + 16) - 0.5 * 50);
    expect(v[164]).toBe(-0.5 * 50);
    expect(v[132]).toBe(32 * 16);
  });

  it('Q6_K: d * int8 scale * (code - 32), code = 4 bits of ql | 2 bits of qh << 4, d last', () => {
    const b = new Uint8Array(210);
    putHalf(b, 208, 0.25);
    // Value 200: the second 128 (ql from 64, qh from 128 + 32, scales from 192 + 8), quarter 2, l = 8:
    // the high nibble of ql[64 + 8], bits 4-5 of qh[160 + 8], scale 12 (= 8 + 2*2 + 8/16).
    b[64 + 8] = 0xa << 4;
    b[160 + 8] = 0b01 << 4;
    b[192 + 12] = 0xfd; // -3
    // Value 45: first 128, quarter 1, l = 13: the low nibble of ql[32 + 13], bits 2-3 of qh[13] (qh from 128), scale 2.
    b[32 + 13] = 0x3;
    b[128 + 13] = 0b11 << 2;
    b[192 + 2] = 5;
    const v = loadBlock('Q6_K', b);
    expect(v[200]).toBe(0.25 * -3 * (0x1a - 32));
    expect(v[45]).toBe(0.25 * 5 * (0x33 - 32));
    expect(v[0]).toBe(-0); // scale 0: (d * 0) * (0 - 32) is -0 in ggml's float arithmetic too
  });
});

describe('Q5_0 and Q5_1 blocks built by hand', () => {
  // ggml's block_q5_0: f16 d, u8 qh[4], u8 qs[16]; block_q5_1: f16 d, f16 m, qh[4], qs[16]. The
  // fifth bit of value j (0..31) is bit j of qh read as a little-endian u32; value j < 16 takes byte
  // j's low nibble, value j + 16 its high nibble (dequantize_row_q5_0 / q5_1).
  it('Q5_0: (code - 16) * d, the fifth bits from the qh word after d', () => {
    const b = new Uint8Array(8 * 22);
    putHalf(b, 0, 0.5);
    b[2 + 0] = 1 << 3; // qh bit 3: value 3
    b[2 + 2] = 1 << 4; // qh bit 20: value 20
    b[6 + 3] = 0x7 | (0xa << 4); // value 3 (low nibble), value 19 (high)
    b[6 + 4] = 0x2 | (0xc << 4); // value 4, value 20
    // Block 1 (bytes 22..43): d = 2, qh bit 31 (the word's top bit): value 31 of the block, qs[15]'s high nibble.
    putHalf(b, 22, 2);
    b[22 + 2 + 3] = 0x80;
    b[22 + 6 + 15] = 0x1 << 4;
    const v = loadBlock('Q5_0', b);
    expect(v[3]).toBe((0x17 - 16) * 0.5);
    expect(v[19]).toBe((0xa - 16) * 0.5);
    expect(v[4]).toBe((0x2 - 16) * 0.5);
    expect(v[20]).toBe((0x1c - 16) * 0.5);
    expect(v[0]).toBe(-8); // code 0
    expect(v[32 + 31]).toBe((0x11 - 16) * 2);
    expect(v[32 + 15]).toBe(-32);
    expect(v[64]).toBe(-0); // d = 0: (0 - 16) * 0 is -0 in ggml's float arithmetic too
  });

  it('Q5_1: code * d + m, qh and the nibbles after d and m', () => {
    const b = new Uint8Array(8 * 24);
    putHalf(b, 0, 0.25);
    putHalf(b, 2, -1.5);
    b[4 + 0] = 1; // qh bit 0: value 0
    b[4 + 2] = 1; // qh bit 16: value 16
    b[8 + 0] = 0x5; // value 0's low nibble; value 16's high nibble 0
    b[8 + 9] = 0xf0; // value 25: high nibble 15, no fifth bit
    // Block 1: d = 0.1 (f16 0.0999755859375), m = 30000: code 31's 3.0992431640625 + 30000 (28 significant bits) rounds to f32 once.
    putHalf(b, 24, 0.1);
    putHalf(b, 26, 30000);
    b[24 + 4 + 1] = 0x80; // qh bit 15: value 15
    b[24 + 8 + 15] = 0x0f;
    const v = loadBlock('Q5_1', b);
    expect(v[0]).toBe(21 * 0.25 - 1.5);
    expect(v[16]).toBe(16 * 0.25 - 1.5);
    expect(v[1]).toBe(-1.5);
    expect(v[25]).toBe(15 * 0.25 - 1.5);
    expect(v[32 + 15]).toBe(Math.fround(31 * 0.0999755859375 + 30000));
    expect(v[32 + 15]).not.toBe(31 * 0.0999755859375 + 30000);
    expect(v[32]).toBe(30000);
  });
});

describe('a Q4_K_M file', () => {
  it('loads every matrix within a quantization step of the weights it was written from', async () => {
    const config = syntheticQwen2Config({ hidden: 256, intermediate: 512, layers: 2, heads: 4, tied: true });
    const source = syntheticSource(config, 3);
    const path = join(dir, 'q4km.gguf');
    writeFileSync(path, ggufBytes(ggufPlan(config, source, 'Q4_K_M', 'q4km', syntheticVocab(300))));
    const loaded = await loadModelFiles(nodeGgufFileSource(path));
    // Tied embeddings: token_embd.weight is the output, so Q6_K (as llama.cpp's Q4_K_M).
    expect(parseGguf(new Uint8Array(readFileSync(path)), path).tensors.get('token_embd.weight')!.type).toBe('Q6_K');
    for (const [name, t] of loaded.tensors) {
      const want = source.values(name);
      const got = tensorToFloat64(t);
      expect(t.dtype, name).toBe('F32');
      if (t.shape.length !== 2) {
        expect([...got], name).toEqual([...want]);
        continue;
      }
      // The synthetic weights span ±0.05: a 4-bit step of a sub-block is at most 0.1/15, plus the
      // 6-bit rounding of its scale and min (each within half a step of d, dmin <= 0.1/15/63).
      let maxErr = 0;
      for (let i = 0; i < want.length; i++) maxErr = Math.max(maxErr, Math.abs(got[i]! - want[i]!));
      expect(maxErr, name).toBeLessThan(0.1 / 15);
      expect(maxErr, name).toBeGreaterThan(0);
    }
  });
});

describe("a Q4_K_M file with rows of 896 (Qwen2.5-0.5B's hidden size, not a multiple of 256)", () => {
  it("holds llama.cpp's fallback types (Q4_K -> Q5_0, Q6_K -> Q8_0) where the rows are 896 wide, and loads", async () => {
    const config = syntheticQwen2Config({ hidden: 896, intermediate: 1024, layers: 2, heads: 14, tied: true });
    const source = syntheticSource(config, 5);
    const path = join(dir, 'q4km-896.gguf');
    writeFileSync(path, ggufBytes(ggufPlan(config, source, 'Q4_K_M', 'q4km-896', syntheticVocab(300))));
    const file = parseGguf(new Uint8Array(readFileSync(path)), path);
    const types = Object.fromEntries([...file.tensors.values()].filter((t) => t.shape.length === 2).map((t) => [t.name, t.type]));
    // llama-quant.cpp: Q4_K_M gives Q6_K to the (tied) output and to attn_v / ffn_down of layer 1 of 2
    // (use_more_bits), Q4_K to the rest; then every matrix whose ne[0] (the input width, 896 here but
    // 1024 for ffn_down) is not a multiple of 256 falls back: Q4_K -> Q5_0, Q6_K -> Q8_0.
    const layer = (i: number, v: string, down: string): Record<string, string> => ({
      [`blk.${i}.attn_q.weight`]: 'Q5_0',
      [`blk.${i}.attn_k.weight`]: 'Q5_0',
      [`blk.${i}.attn_v.weight`]: v,
      [`blk.${i}.attn_output.weight`]: 'Q5_0',
      [`blk.${i}.ffn_gate.weight`]: 'Q5_0',
      [`blk.${i}.ffn_up.weight`]: 'Q5_0',
      [`blk.${i}.ffn_down.weight`]: down,
    });
    expect(types).toEqual({ 'token_embd.weight': 'Q8_0', ...layer(0, 'Q5_0', 'Q4_K'), ...layer(1, 'Q8_0', 'Q6_K') });
    const loaded = await loadModelFiles(nodeGgufFileSource(path));
    for (const [name, t] of loaded.tensors) {
      const want = source.values(name);
      const got = tensorToFloat64(t);
      if (t.shape.length !== 2) {
        expect([...got], name).toEqual([...want]);
        continue;
      }
      // Weights span ±0.05: Q5_0's step is at most 0.05/16 (one step off where code 32 clamps to 31),
      // Q8_0's 0.05/127, the K-quants' as in the test above: all within 0.1/15.
      let maxErr = 0;
      for (let i = 0; i < want.length; i++) maxErr = Math.max(maxErr, Math.abs(got[i]! - want[i]!));
      expect(maxErr, name).toBeLessThan(0.1 / 15);
      expect(maxErr, name).toBeGreaterThan(0);
    }
  });
});

describe('malformed K-quant tensors', () => {
  it('rows not a multiple of 256, and data cut short, are GgufErrors naming the tensor', () => {
    const file = writeGguf(ARCH, [{ name: 'blk.0.ffn_up.weight', shape: [2, 32], type: 'F32', data: new Uint8Array(256) }]);
    // The tensor info's type (u32) follows its name and two u64 dims: set it to 12 (Q4_K).
    const name = new TextEncoder().encode('blk.0.ffn_up.weight');
    const nameAt = file.findIndex((_, i) => name.every((c, j) => file[i + j] === c));
    const typeAt = nameAt + name.length + 4 + 16;
    expect(new DataView(file.buffer).getUint32(typeAt, true)).toBe(0);
    for (const [type, id] of [
      ['Q4_K', 12],
      ['Q5_K', 13],
      ['Q6_K', 14],
    ] as const) {
      const bad = file.slice();
      new DataView(bad.buffer).setUint32(typeAt, id, true);
      expect(() => parseGguf(bad, 'bad.gguf')).toThrow(GgufError);
      expect(() => parseGguf(bad, 'bad.gguf')).toThrow(new RegExp(`tensor 'blk.0.ffn_up.weight' is ${type} with rows of 32 values, not a multiple of its block of 256`));
    }
    const whole = writeGguf(ARCH, [{ name: 'w', shape: [2, 256], type: 'Q6_K', data: new Uint8Array(420) }]);
    expect(parseGguf(whole, 'ok.gguf').tensors.get('w')!.data.length).toBe(420);
    const cut = whole.subarray(0, whole.length - 1);
    expect(() => parseGguf(cut, 'cut.gguf')).toThrow(GgufError);
    expect(() => parseGguf(cut, 'cut.gguf')).toThrow(/tensor 'w' needs data bytes \[0, 420\)/);
  });
});
