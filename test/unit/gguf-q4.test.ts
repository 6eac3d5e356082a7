// A GGUF file's Q4_0 matrices on the q4 kernels bit for bit: the q4 buffers the weight upload builds
// (src/runner/gpu-weights.ts, run here against a recording stand-in for the GPU runtime) hold
// exactly the values of the file's blocks, value for value, for every decoder linear (q/k rows
// permuted back, gate/up interleaved, matrices cut into several chunks), whether `quantize` was
// 'none' or 'q4'; files of other types keep their matrices as they were unless q4 is asked for; and a
// Q4_0 block without code 0 (as llama.cpp's importance-matrix quantizer writes) shows that
// requantizing its values would have changed them.

import { describe, expect, it } from 'vitest';
import { ggufBytes, ggufPlan, loadHfFolder } from '../../bench/gguf/from-hf.js';
import type { GpuRuntime } from '../../src/gpu/runtime.js';
import { parseGguf } from '../../src/model/gguf.js';
import { ggufModel } from '../../src/model/gguf-model.js';
import { dequantizeGgml } from '../../src/model/gguf-dequant.js';
import { tensorToFloat64 } from '../../src/model/load.js';
import { dequantizeQ4, q4FromGgmlQ4_0, quantizeQ4 } from '../../src/model/quantize-q4.js';
import type { WeightQuantization } from '../../src/model/quantize-q4.js';
import type { Tensor } from '../../src/model/safetensors.js';
import { uploadWeights, type GpuMatrix } from '../../src/runner/gpu-weights.js';
import { numberToF16Bits } from '../../src/numeric/half.js';
import { fixtureDir } from '../helpers/fixtures.js';

/** A GpuRuntime that keeps what is uploaded (the only calls the weight upload makes). */
function recordingRuntime(maxBinding: number): { rt: GpuRuntime; data: Map<object, Uint8Array> } {
  const data = new Map<object, Uint8Array>();
  const rt = {
    capabilities: { limits: { maxStorageBufferBindingSize: maxBinding, maxBufferSize: maxBinding } },
    upload(view: ArrayBufferView) {
      const buffer = { size: view.byteLength };
      data.set(buffer, new Uint8Array(view.buffer, view.byteOffset, view.byteLength).slice());
      return buffer;
    },
  };
  return { rt: rt as unknown as GpuRuntime, data };
}

/** The matrix's values as the GPU holds them (q4 dequantized exactly), in its row order. */
function gpuValues(m: GpuMatrix, data: Map<object, Uint8Array>): Float64Array {
  const out = new Float64Array(m.rows * m.cols);
  for (const c of m.chunks) {
    const bytes = data.get(c.buffer)!;
    const values = m.dtype === 'q4' ? dequantizeQ4(bytes, c.rows, m.cols) : tensorToFloat64({ dtype: 'F32', data: bytes });
    out.set(values, c.rowStart * m.cols);
  }
  return out;
}

/** What `names`' tensors stand for, concatenated or (two) interleaved by rows. */
function expected(tensors: Map<string, Tensor>, names: string[], interleave: boolean, cols: number): Float64Array {
  const parts = names.map((n) => tensorToFloat64(tensors.get(n)!));
  if (!interleave) return Float64Array.from(parts.flatMap((p) => [...p]));
  const out = new Float64Array(parts[0]!.length * 2);
  for (let r = 0; r < parts[0]!.length / cols; r++) {
    out.set(parts[0]!.subarray(r * cols, (r + 1) * cols), 2 * r * cols);
    out.set(parts[1]!.subarray(r * cols, (r + 1) * cols), (2 * r + 1) * cols);
  }
  return out;
}

function loadGguf(type: 'Q4_0' | 'Q8_0' | 'F32'): ReturnType<typeof ggufModel> {
  const hf = loadHfFolder(fixtureDir('tiny-llama3'));
  const bytes = ggufBytes(ggufPlan(hf.config, hf.source, type, hf.name, hf.vocab));
  const file = parseGguf(bytes, `tiny-llama3-${type}.gguf`);
  // A quantizer's blocks hold code -8 (nibble 0) at their largest value, so quantizing their values
  // again gives the same bits: with nibble 0 made 1 everywhere, it would not, and only an upload that
  // carries the blocks themselves keeps the file's values.
  for (const t of file.tensors.values()) {
    if (t.type !== 'Q4_0') continue;
    for (let b = 0; b < t.data.length; b += 18) {
      for (let i = b + 2; i < b + 18; i++) {
        if ((t.data[i]! & 15) === 0) t.data[i]! |= 1;
        if (t.data[i]! >> 4 === 0) t.data[i]! |= 16;
      }
    }
  }
  return ggufModel(file, `tiny-llama3-${type}.gguf`);
}

describe('Q4_0 GGUF matrices on the GPU as q4', () => {
  const model = loadGguf('Q4_0');
  for (const quantize of ['none', 'q4'] as WeightQuantization[]) {
    it(`quantize '${quantize}': every decoder linear and the LM head are q4 holding exactly the file's block values`, () => {
      // A binding of 2 KiB: the 320-wide down rows (200 bytes of q4) and the others cut into chunks.
      const { rt, data } = recordingRuntime(2048);
      const w = uploadWeights(rt, model.config, model.tensors, model.config.numLayers, { quantize });
      const matrices: [GpuMatrix, string[], boolean][] = [[w.lmHead, ['lm_head.weight'], false]];
      w.layers.forEach((l, i) => {
        const p = `model.layers.${i}.`;
        matrices.push([l.qkv, ['q_proj', 'k_proj', 'v_proj'].map((n) => `${p}self_attn.${n}.weight`), false]);
        matrices.push([l.o, [`${p}self_attn.o_proj.weight`], false]);
        matrices.push([l.gateUp, [`${p}mlp.gate_proj.weight`, `${p}mlp.up_proj.weight`], true]);
        matrices.push([l.down, [`${p}mlp.down_proj.weight`], false]);
      });
      for (const [m, names, interleave] of matrices) {
        expect(m.dtype, m.name).toBe('q4');
        expect(m.chunks.length, m.name).toBeGreaterThan(1);
        const got = gpuValues(m, data);
        const want = expected(model.tensors, names, interleave, m.cols);
        const at = got.findIndex((v, i) => v !== want[i]);
        expect(at, `${m.name}: first differing value`).toBe(-1);
      }
      // The embeddings keep their (dequantized) F32 values: the lookup reads no q4.
      expect(w.embed.dtype).toBe('f32');
    });
  }

  it("the values are the file's blocks, independent of webslo's dequantizer: q4 codes and scales are the blocks' own", () => {
    const hf = loadHfFolder(fixtureDir('tiny-llama3'));
    const file = parseGguf(ggufBytes(ggufPlan(hf.config, hf.source, 'Q4_0', hf.name, hf.vocab)), 'f.gguf');
    const t = file.tensors.get('blk.0.ffn_down.weight')!;
    const [rows, cols] = t.shape as [number, number];
    const q4 = q4FromGgmlQ4_0(t.data, rows, cols);
    // Block b: f16 scale at 18b, then byte j = codes of elements j (low) and j + 16 (high).
    for (const e of [0, 1, 15, 16, 17, 31, 32, 1000, rows * cols - 1]) {
      const b = Math.floor(e / 32);
      const j = e % 32;
      const code = j < 16 ? t.data[18 * b + 2 + j]! & 15 : t.data[18 * b + 2 + j - 16]! >> 4;
      const q4code = (q4[e >> 1]! >> (4 * (e & 1))) & 15;
      expect(q4code, `element ${e}`).toBe(code);
      const scaleAt = (rows * cols) / 2 + 2 * b;
      expect(q4[scaleAt]! | (q4[scaleAt + 1]! << 8), `scale of block ${b}`).toBe(t.data[18 * b]! | (t.data[18 * b + 1]! << 8));
    }
  });
});

describe('other files are not re-quantized unless asked', () => {
  for (const type of ['F32', 'Q8_0'] as const) {
    it(`${type}: quantize 'none' keeps F32 matrices; 'q4' quantizes them`, () => {
      const model = loadGguf(type);
      const none = uploadWeights(recordingRuntime(1 << 20).rt, model.config, model.tensors, model.config.numLayers, { quantize: 'none' });
      expect(new Set([none.lmHead, ...none.layers.flatMap((l) => [l.qkv, l.o, l.gateUp, l.down])].map((m) => m.dtype))).toEqual(new Set(['f32']));
      const q4 = uploadWeights(recordingRuntime(1 << 20).rt, model.config, model.tensors, model.config.numLayers, { quantize: 'q4' });
      expect(new Set([q4.lmHead, ...q4.layers.flatMap((l) => [l.qkv, l.o, l.gateUp, l.down])].map((m) => m.dtype))).toEqual(new Set(['q4']));
    });
  }
});

describe('a Q4_0 block without code 0', () => {
  it('re-laid-out keeps its values; quantizing its values again would not', () => {
    // d = 0.1, codes 1..15 (values -0.7 .. 0.7): q4's quantizer takes the first largest, -0.7 or
    // 0.7, as code 0 with scale 0.7 / 8, another grid.
    const block = new Uint8Array(18);
    const bits = numberToF16Bits(0.1);
    block[0] = bits & 0xff;
    block[1] = bits >> 8;
    for (let j = 0; j < 16; j++) block[2 + j] = (1 + (j % 15)) | ((15 - (j % 15)) << 4);
    const values = dequantizeGgml('Q4_0', block);
    const relaid = dequantizeQ4(q4FromGgmlQ4_0(block, 1, 32), 1, 32);
    expect([...relaid]).toEqual([...values]);
    const requantized = dequantizeQ4(quantizeQ4(new Uint8Array(values.buffer), 'F32', 1, 32), 1, 32);
    expect([...requantized]).not.toEqual([...values]);
  });
});
