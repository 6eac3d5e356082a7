// Strict .safetensors parsing: an 8-byte little-endian header length, a UTF-8 JSON header, then the
// raw tensor bytes. Weight files come from the network, so every field is checked and every fault
// is a SafetensorsError naming the file and tensor: no RangeError, SyntaxError or TypeError escapes,
// and nothing here loops on untrusted counts (work is linear in the header size, at most 100 MiB).

import { SafetensorsError } from './errors.js';
import { describeValue as describe } from './describe.js';
import { bf16BitsToNumber, f16BitsToNumber } from '../numeric/half.js';

export type SafetensorsDtype = 'F32' | 'F16' | 'BF16';

export const DTYPE_BYTES: Readonly<Record<SafetensorsDtype, number>> = { F32: 4, F16: 2, BF16: 2 };
const SUPPORTED = 'supported: F32, F16, BF16';

/** Same bound as the reference Rust implementation: a larger header is hostile, not a model. */
export const MAX_HEADER_BYTES = 100 * 1024 * 1024;

export interface TensorEntry {
  dtype: SafetensorsDtype;
  shape: number[];
  /** Byte offsets relative to the start of the data region (right after the header). */
  begin: number;
  end: number;
}

export interface SafetensorsHeader {
  /** Where the data region starts in the file: 8 + header length. */
  dataOffset: number;
  /** Bytes in the data region: file size - dataOffset. */
  dataSize: number;
  tensors: Map<string, TensorEntry>;
  metadata: Record<string, string>;
}

export interface Tensor {
  dtype: SafetensorsDtype;
  shape: number[];
  /** A view into the file's bytes (no copy); may be unaligned for its dtype. */
  data: Uint8Array;
}

export interface SafetensorsFile {
  tensors: Map<string, Tensor>;
  metadata: Record<string, string>;
}

/**
 * The header length from a file's first 8 bytes, checked against `fileSize` (the whole file's size,
 * which a streamed reader knows before it has the bytes). Returns the data region's offset.
 */
export function readSafetensorsHeaderLength(first: Uint8Array, fileName: string, fileSize: number = first.length): number {
  if (first.length < 8 || fileSize < 8) {
    throw new SafetensorsError(fileName, null, `file is ${Math.min(first.length, fileSize)} bytes, too short for the 8-byte header length`);
  }
  // Two 32-bit halves rather than getBigUint64: exact for every value below 2^53, and anything
  // with a nonzero high half is far beyond MAX_HEADER_BYTES anyway.
  const view = new DataView(first.buffer, first.byteOffset, 8);
  const low = view.getUint32(0, true);
  const high = view.getUint32(4, true);
  const length = high * 2 ** 32 + low;
  if (length < 2) throw new SafetensorsError(fileName, null, `header length ${length} is below 2 (the shortest JSON object, '{}')`);
  if (length > MAX_HEADER_BYTES) throw new SafetensorsError(fileName, null, `header length ${length} exceeds the 100 MiB limit`);
  if (length > fileSize - 8) {
    throw new SafetensorsError(fileName, null, `header length ${length} runs past the end of the ${fileSize}-byte file (truncated?)`);
  }
  return 8 + length;
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function parseEntry(fileName: string, name: string, raw: unknown, dataSize: number): TensorEntry {
  const fail = (problem: string): never => {
    throw new SafetensorsError(fileName, name, problem);
  };
  if (!isObject(raw)) return fail(`header entry is ${describe(raw)}, not an object`);
  const { dtype, shape, data_offsets: offsets } = raw;
  if (typeof dtype !== 'string') return fail(`dtype is ${describe(dtype)}, not a string`);
  if (!Object.prototype.hasOwnProperty.call(DTYPE_BYTES, dtype)) {
    return fail(`unsupported dtype ${dtype.length <= 16 ? dtype : describe(dtype)} (${SUPPORTED})`);
  }
  const dt = dtype as SafetensorsDtype;
  if (!Array.isArray(shape)) return fail(`shape is ${describe(shape)}, not a list`);
  let elements = 1;
  let empty = false;
  for (const d of shape) {
    if (typeof d !== 'number' || !Number.isSafeInteger(d) || d < 0) return fail(`shape ${describe(shape)} has ${describe(d)}, not a non-negative integer`);
    if (d === 0) empty = true;
    elements *= d;
  }
  // A zero anywhere makes the tensor empty however large (even Infinity) the other dims multiply to.
  if (empty) elements = 0;
  if (!Number.isSafeInteger(elements * DTYPE_BYTES[dt])) return fail(`shape ${describe(shape)} is too large`);
  if (!Array.isArray(offsets) || offsets.length !== 2) return fail(`data_offsets is ${describe(offsets)}, not [begin, end]`);
  const [begin, end] = offsets as unknown[];
  if (typeof begin !== 'number' || typeof end !== 'number' || !Number.isSafeInteger(begin) || !Number.isSafeInteger(end) || begin < 0 || end < 0) {
    return fail(`data_offsets ${describe(offsets)} are not non-negative integers`);
  }
  if (begin > end) return fail(`data_offsets ${describe(offsets)} end before they begin`);
  if (end > dataSize) return fail(`data_offsets ${describe(offsets)} run past the ${dataSize}-byte data region (truncated?)`);
  const expected = elements * DTYPE_BYTES[dt];
  if (end - begin !== expected) {
    return fail(`holds ${end - begin} bytes, but shape ${describe(shape)} of ${dt} needs ${expected}`);
  }
  return { dtype: dt, shape: [...(shape as number[])], begin, end };
}

/**
 * Parses and validates the header. `bytes` must hold at least the first dataOffset bytes of the file
 * (the 8-byte length and the JSON); `fileSize` is the whole file's size, so a shard too large to
 * hold in memory can be validated before its tensors are read by range.
 */
export function readSafetensorsHeader(bytes: Uint8Array, fileName: string, fileSize: number = bytes.length): SafetensorsHeader {
  const dataOffset = readSafetensorsHeaderLength(bytes, fileName, fileSize);
  if (bytes.length < dataOffset) {
    throw new SafetensorsError(fileName, null, `only ${bytes.length} of the ${dataOffset} header bytes were given`);
  }
  const dataSize = fileSize - dataOffset;
  let text: string;
  try {
    // fatal: invalid UTF-8 is an error, not U+FFFD; ignoreBOM: a BOM stays and fails JSON.parse.
    text = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true }).decode(bytes.subarray(8, dataOffset));
  } catch {
    throw new SafetensorsError(fileName, null, 'header is not valid UTF-8');
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new SafetensorsError(fileName, null, `header is not valid JSON (${e instanceof Error ? e.message : String(e)})`);
  }
  if (!isObject(json)) throw new SafetensorsError(fileName, null, `header is ${Array.isArray(json) ? 'a list' : describe(json)}, not a JSON object`);

  const metadata: Record<string, string> = {};
  const tensors = new Map<string, TensorEntry>();
  for (const [name, raw] of Object.entries(json)) {
    if (name === '__metadata__') {
      if (!isObject(raw)) throw new SafetensorsError(fileName, null, `__metadata__ is ${describe(raw)}, not an object`);
      for (const [k, v] of Object.entries(raw)) {
        if (typeof v !== 'string') throw new SafetensorsError(fileName, null, `__metadata__['${k}'] is ${describe(v)}, not a string`);
        // defineProperty: a key named __proto__ stays data rather than replacing the prototype.
        Object.defineProperty(metadata, k, { value: v, enumerable: true, writable: true, configurable: true });
      }
      continue;
    }
    tensors.set(name, parseEntry(fileName, name, raw, dataSize));
  }
  checkCoverage(fileName, tensors, dataSize);
  return { dataOffset, dataSize, tensors, metadata };
}

/**
 * The tensors must tile the data region exactly: sorted by offset, each begins where the previous
 * one ended and the last ends at the end of the file. An overlap would let two tensors alias, a gap
 * or tail means the file is not what its header says.
 */
function checkCoverage(fileName: string, tensors: Map<string, TensorEntry>, dataSize: number): void {
  const sorted = [...tensors].sort((a, b) => a[1].begin - b[1].begin || a[1].end - b[1].end);
  let cursor = 0;
  let previous: string | null = null;
  for (const [name, t] of sorted) {
    if (t.begin < cursor) {
      throw new SafetensorsError(fileName, name, `data_offsets [${t.begin}, ${t.end}] overlap tensor '${previous}' (which ends at ${cursor})`);
    }
    if (t.begin > cursor) {
      throw new SafetensorsError(fileName, name, `gap: bytes [${cursor}, ${t.begin}) of the data region belong to no tensor`);
    }
    cursor = t.end;
    previous = name;
  }
  if (cursor !== dataSize) {
    throw new SafetensorsError(fileName, null, `bytes [${cursor}, ${dataSize}) at the end of the data region belong to no tensor`);
  }
}

/** Parses a whole .safetensors file held in memory; tensor data are views into `bytes`. */
export function parseSafetensors(bytes: Uint8Array, fileName: string): SafetensorsFile {
  const header = readSafetensorsHeader(bytes, fileName);
  const tensors = new Map<string, Tensor>();
  for (const [name, t] of header.tensors) {
    tensors.set(name, {
      dtype: t.dtype,
      shape: t.shape,
      data: bytes.subarray(header.dataOffset + t.begin, header.dataOffset + t.end),
    });
  }
  return { tensors, metadata: header.metadata };
}

/** A tensor's values as float64 (exact for all three dtypes); reads unaligned data safely. */
export function tensorToFloat64(t: Pick<Tensor, 'dtype' | 'data'>): Float64Array {
  const view = new DataView(t.data.buffer, t.data.byteOffset, t.data.byteLength);
  const size = t.dtype === 'F32' ? 4 : 2;
  const n = Math.floor(t.data.byteLength / size);
  const out = new Float64Array(n);
  if (t.dtype === 'F32') for (let i = 0; i < n; i++) out[i] = view.getFloat32(4 * i, true);
  else if (t.dtype === 'F16') for (let i = 0; i < n; i++) out[i] = f16BitsToNumber(view.getUint16(2 * i, true));
  else for (let i = 0; i < n; i++) out[i] = bf16BitsToNumber(view.getUint16(2 * i, true));
  return out;
}
