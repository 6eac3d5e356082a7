// A GGUF writer (version 3), for benchmarks and tests that hand llama.cpp the same model webslo
// loads. GGUF: "GGUF", version, tensor and key-value counts; the key-values (typed); one info per
// tensor (name, dimensions innermost first, type, offset into the data); the data, each tensor at a
// multiple of `general.alignment` (32 unless the metadata says otherwise).
//
// Invariants: every value is written with the exact type its key declares (llama.cpp checks the
// types of the keys it reads); a tensor's byte length must equal what its type and shape need, and
// the writer refuses anything else rather than write a file llama.cpp would misread.

import { closeSync, openSync, writeSync } from 'node:fs';

/** GGML tensor types this writer knows (ggml.h's numbering). */
export const GGML_TYPE = { F32: 0, F16: 1, Q4_0: 2, Q5_0: 6, Q5_1: 7, Q8_0: 8, Q4_K: 12, Q5_K: 13, Q6_K: 14, BF16: 30 } as const;
export type GgmlType = keyof typeof GGML_TYPE;

/** GGUF metadata value types (gguf.h's numbering). */
const VALUE_TYPE = { u8: 0, i8: 1, u16: 2, i16: 3, u32: 4, i32: 5, f32: 6, bool: 7, string: 8, array: 9, u64: 10, i64: 11, f64: 12 } as const;
type Scalar = 'u32' | 'i32' | 'f32' | 'bool' | 'string' | 'u64';

export type GgufValue =
  { type: Scalar; value: number | boolean | string } | { type: 'array'; of: 'string'; value: readonly string[] } | { type: 'array'; of: 'f32' | 'i32' | 'u32'; value: ArrayLike<number> };

export interface GgufTensor {
  name: string;
  /** The shape as PyTorch / safetensors write it, outermost first ([rows, cols] for a matrix). */
  shape: readonly number[];
  type: GgmlType;
  data: Uint8Array;
}

/** Bytes of `count` elements of `type` (blocks of 32 for Q4_0/Q5_0/Q5_1/Q8_0, super-blocks of 256 for the K-quants). */
export function ggmlBytes(type: GgmlType, count: number): number {
  switch (type) {
    case 'F32':
      return count * 4;
    case 'F16':
    case 'BF16':
      return count * 2;
    case 'Q4_0':
    case 'Q5_0':
    case 'Q5_1':
    case 'Q8_0':
      if (count % 32 !== 0) throw new Error(`${type} needs a multiple of 32 elements per row, got ${count}`);
      return (count / 32) * { Q4_0: 18, Q5_0: 22, Q5_1: 24, Q8_0: 34 }[type];
    case 'Q4_K':
    case 'Q5_K':
    case 'Q6_K':
      if (count % 256 !== 0) throw new Error(`${type} needs a multiple of 256 elements per row, got ${count}`);
      return (count / 256) * { Q4_K: 144, Q5_K: 176, Q6_K: 210 }[type];
  }
}

class Out {
  private chunks: Uint8Array[] = [];
  length = 0;
  private push(b: Uint8Array): void {
    this.chunks.push(b);
    this.length += b.length;
  }
  scalar(kind: 'u32' | 'i32' | 'f32' | 'u64' | 'u8', v: number): void {
    const b = new Uint8Array(kind === 'u64' ? 8 : kind === 'u8' ? 1 : 4);
    const d = new DataView(b.buffer);
    if (kind === 'u32') d.setUint32(0, v, true);
    else if (kind === 'i32') d.setInt32(0, v, true);
    else if (kind === 'f32') d.setFloat32(0, v, true);
    else if (kind === 'u8') d.setUint8(0, v);
    else d.setBigUint64(0, BigInt(v), true);
    this.push(b);
  }
  string(s: string): void {
    const b = new TextEncoder().encode(s);
    this.scalar('u64', b.length);
    this.push(b);
  }
  bytes(b: Uint8Array): void {
    this.push(b);
  }
  pad(alignment: number): void {
    const extra = (alignment - (this.length % alignment)) % alignment;
    if (extra) this.push(new Uint8Array(extra));
  }
  concat(): Uint8Array {
    const out = new Uint8Array(this.length);
    let at = 0;
    for (const c of this.chunks) {
      out.set(c, at);
      at += c.length;
    }
    return out;
  }
}

function writeValue(out: Out, v: GgufValue): void {
  if (v.type === 'array') {
    out.scalar('u32', VALUE_TYPE.array);
    out.scalar('u32', VALUE_TYPE[v.of]);
    out.scalar('u64', v.value.length);
    for (let i = 0; i < v.value.length; i++) {
      const x = v.value[i]!;
      if (v.of === 'string') out.string(x as string);
      else out.scalar(v.of, x as number);
    }
    return;
  }
  out.scalar('u32', VALUE_TYPE[v.type]);
  if (v.type === 'string') out.string(String(v.value));
  else if (v.type === 'bool') out.scalar('u8', v.value ? 1 : 0);
  else out.scalar(v.type, Number(v.value));
}

/** What the header says of one tensor (its data comes separately). */
export type GgufTensorInfo = Omit<GgufTensor, 'data'>;

/**
 * The header (everything before the data region, padded to the alignment) and each tensor's
 * offset in the data region. Checks that each quantized tensor's rows are whole blocks.
 */
export function ggufHeader(metadata: ReadonlyMap<string, GgufValue>, tensors: readonly GgufTensorInfo[]): { header: Uint8Array; offsets: number[]; alignment: number } {
  const alignValue = metadata.get('general.alignment');
  const alignment = alignValue ? Number(alignValue.value) : 32;
  const out = new Out();
  out.scalar('u32', 0x46554747); // "GGUF"
  out.scalar('u32', 3);
  out.scalar('u64', tensors.length);
  out.scalar('u64', metadata.size);
  for (const [key, value] of metadata) {
    out.string(key);
    writeValue(out, value);
  }
  let offset = 0;
  const offsets: number[] = [];
  for (const t of tensors) {
    const count = t.shape.reduce((a, b) => a * b, 1);
    ggmlBytes(t.type, t.shape[t.shape.length - 1] ?? 1);
    out.string(t.name);
    out.scalar('u32', t.shape.length);
    for (const d of [...t.shape].reverse()) out.scalar('u64', d);
    out.scalar('u32', GGML_TYPE[t.type]);
    out.scalar('u64', offset);
    offsets.push(offset);
    offset += ggmlBytes(t.type, count);
    offset += (alignment - (offset % alignment)) % alignment;
  }
  out.pad(alignment);
  return { header: out.concat(), offsets, alignment };
}

function checkLength(t: GgufTensorInfo, data: Uint8Array): void {
  const want = ggmlBytes(
    t.type,
    t.shape.reduce((a, b) => a * b, 1),
  );
  if (data.length !== want) throw new Error(`tensor ${t.name}: ${data.length} bytes, but ${t.type} [${t.shape.join(', ')}] needs ${want}`);
}

/** The whole file in memory: metadata in the order given, tensors in the order given. */
export function writeGguf(metadata: ReadonlyMap<string, GgufValue>, tensors: readonly GgufTensor[]): Uint8Array {
  const { header, offsets } = ggufHeader(metadata, tensors);
  const last = tensors.length ? offsets[offsets.length - 1]! + tensors[tensors.length - 1]!.data.length : 0;
  const out = new Uint8Array(header.length + last);
  out.set(header);
  tensors.forEach((t, i) => {
    checkLength(t, t.data);
    out.set(t.data, header.length + offsets[i]!);
  });
  return out;
}

/**
 * The file written tensor by tensor to `path`, for models larger than one buffer: `data(i)` gives
 * tensor i's bytes when its turn comes (and may free them after).
 */
export function writeGgufFile(path: string, metadata: ReadonlyMap<string, GgufValue>, tensors: readonly GgufTensorInfo[], data: (index: number) => Uint8Array): void {
  const { header, offsets } = ggufHeader(metadata, tensors);
  const fd = openSync(path, 'w');
  try {
    writeSync(fd, header);
    tensors.forEach((t, i) => {
      const bytes = data(i);
      checkLength(t, bytes);
      writeSync(fd, bytes, 0, bytes.length, header.length + offsets[i]!);
    });
  } finally {
    closeSync(fd);
  }
}
