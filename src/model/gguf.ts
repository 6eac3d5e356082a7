// A strict parser of GGUF files (llama.cpp's model format, versions 2 and 3): the header, the typed
// key-values, the tensor infos, and views of each tensor's data. As strict as the safetensors
// parser: every count, length and offset is checked against the bytes that are there before
// anything is allocated for it, so a truncated or hostile file is a GgufError naming the fault,
// never a crash or a huge allocation. Interpreting the metadata (architecture, config, tensor
// names) is gguf-model.ts's job.
//
// Layout (little-endian): "GGUF", u32 version, u64 tensor count, u64 key-value count; each
// key-value: string key, u32 value type, value; each tensor: string name, u32 dims, u64 dims
// (innermost first), u32 GGML type, u64 offset into the data region; the data region starts at
// the next multiple of `general.alignment` (32 by default), and each offset is a multiple of it.

import { ModelError } from './errors.js';

/** A malformed GGUF file; `at` is the byte offset of the fault where one is known. */
export class GgufError extends ModelError {
  constructor(
    readonly fileName: string,
    readonly problem: string,
    readonly at: number | null = null,
  ) {
    super(`${fileName}: ${problem}${at === null ? '' : ` (at byte ${at})`}`);
  }
}

export type GgufScalar = number | bigint | boolean | string;
export type GgufValue = GgufScalar | GgufScalar[];

/**
 * GGML tensor types this engine reads, by their number in ggml.h; bytes per block of `block` values
 * (the K-quants' super-blocks of 256: a tensor's rows must be whole blocks, checked per tensor).
 */
export const GGML_TYPES = {
  0: { name: 'F32', block: 1, bytes: 4 },
  1: { name: 'F16', block: 1, bytes: 2 },
  2: { name: 'Q4_0', block: 32, bytes: 18 },
  6: { name: 'Q5_0', block: 32, bytes: 22 },
  7: { name: 'Q5_1', block: 32, bytes: 24 },
  8: { name: 'Q8_0', block: 32, bytes: 34 },
  12: { name: 'Q4_K', block: 256, bytes: 144 },
  13: { name: 'Q5_K', block: 256, bytes: 176 },
  14: { name: 'Q6_K', block: 256, bytes: 210 },
  30: { name: 'BF16', block: 1, bytes: 2 },
} as const;
export type GgmlTypeName = (typeof GGML_TYPES)[keyof typeof GGML_TYPES]['name'];

/** Names of GGML types that exist but this engine does not read (for the error message). */
const KNOWN_UNSUPPORTED: Record<number, string> = { 3: 'Q4_1', 10: 'Q2_K', 11: 'Q3_K', 15: 'Q8_K' };

export interface GgufTensor {
  name: string;
  type: GgmlTypeName;
  /** The shape as PyTorch writes it, outermost first ([rows, cols] for a matrix): GGUF's dims reversed. */
  shape: number[];
  /** A view into the file's bytes (no copy). */
  data: Uint8Array;
}

export interface GgufFile {
  version: number;
  metadata: Map<string, GgufValue>;
  tensors: Map<string, GgufTensor>;
}

/** Limits: far above any real model, far below what would exhaust memory. */
export const GGUF_LIMITS = { maxTensors: 1 << 20, maxKeyValues: 1 << 16, maxStringBytes: 1 << 26, maxDims: 4 } as const;

const VALUE_SIZES: Record<number, number> = { 0: 1, 1: 1, 2: 2, 3: 2, 4: 4, 5: 4, 6: 4, 7: 1, 10: 8, 11: 8, 12: 8 };

class Reader {
  at = 0;
  private readonly view: DataView;
  constructor(
    private readonly bytes: Uint8Array,
    private readonly fileName: string,
  ) {
    this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }
  fail(problem: string, at: number = this.at): never {
    throw new GgufError(this.fileName, problem, at);
  }
  need(n: number, what: string): void {
    if (n > this.bytes.length - this.at) this.fail(`the file ends inside ${what} (${n} bytes needed, ${this.bytes.length - this.at} left)`);
  }
  u32(what: string): number {
    this.need(4, what);
    const v = this.view.getUint32(this.at, true);
    this.at += 4;
    return v;
  }
  /** A u64 that must fit a safe integer (counts, dims, offsets, lengths). */
  u64(what: string): number {
    this.need(8, what);
    const v = this.view.getBigUint64(this.at, true);
    if (v > BigInt(Number.MAX_SAFE_INTEGER)) this.fail(`${what} is ${v}, larger than any file`);
    this.at += 8;
    return Number(v);
  }
  string(what: string): string {
    const start = this.at;
    const n = this.u64(`the length of ${what}`);
    if (n > GGUF_LIMITS.maxStringBytes) this.fail(`${what} is ${n} bytes long (at most ${GGUF_LIMITS.maxStringBytes})`, start);
    this.need(n, what);
    let s: string;
    try {
      // ignoreBOM: a string that is U+FEFF (a SentencePiece vocabulary's token) keeps it.
      s = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true }).decode(this.bytes.subarray(this.at, this.at + n));
    } catch {
      this.fail(`${what} is not valid UTF-8`);
    }
    this.at += n;
    return s;
  }
  scalar(type: number, what: string): GgufScalar {
    const size = VALUE_SIZES[type];
    if (type === 8) return this.string(what);
    if (size === undefined) this.fail(`${what} has value type ${type} (expected 0-12)`);
    this.need(size, what);
    const v = this.view;
    const at = this.at;
    this.at += size;
    switch (type) {
      case 0:
        return v.getUint8(at);
      case 1:
        return v.getInt8(at);
      case 2:
        return v.getUint16(at, true);
      case 3:
        return v.getInt16(at, true);
      case 4:
        return v.getUint32(at, true);
      case 5:
        return v.getInt32(at, true);
      case 6:
        return v.getFloat32(at, true);
      case 7: {
        const b = v.getUint8(at);
        if (b > 1) this.fail(`${what} is a bool of value ${b}`, at);
        return b === 1;
      }
      case 10:
        return v.getBigUint64(at, true);
      case 11:
        return v.getBigInt64(at, true);
      default:
        return v.getFloat64(at, true);
    }
  }
  value(what: string): GgufValue {
    const type = this.u32(`the type of ${what}`);
    if (type !== 9) return this.scalar(type, what);
    const elemType = this.u32(`the element type of ${what}`);
    if (elemType === 9) this.fail(`${what} is an array of arrays (not used by any model)`);
    const start = this.at;
    const count = this.u64(`the length of ${what}`);
    // Each element takes at least one byte (eight for a string's length): the count cannot exceed what is left.
    const minSize = elemType === 8 ? 8 : (VALUE_SIZES[elemType] ?? 1);
    if (count * minSize > this.bytes.length - this.at) this.fail(`${what} claims ${count} elements, more than the file holds`, start);
    const out: GgufScalar[] = new Array<GgufScalar>(count);
    for (let i = 0; i < count; i++) out[i] = this.scalar(elemType, `${what}[${i}]`);
    return out;
  }
}

/** Parses a whole GGUF file held in memory; tensor data are views into `bytes`. */
export function parseGguf(bytes: Uint8Array, fileName: string): GgufFile {
  const { version, metadata, tensors: infos, dataStart } = readHeader(new Reader(bytes, fileName), bytes, fileName, bytes.length);
  const tensors = new Map<string, GgufTensor>();
  for (const t of infos) tensors.set(t.name, { name: t.name, type: t.type, shape: t.shape, data: bytes.subarray(dataStart + t.offset, dataStart + t.offset + t.size) });
  return { version, metadata, tensors };
}

/** A GGUF file's header (everything before its data region), from parseGgufHeader. */
export interface GgufHeader {
  version: number;
  metadata: Map<string, GgufValue>;
  /** In file order; `offset` is into the data region, `size` in bytes. */
  tensors: { name: string; type: GgmlTypeName; shape: number[]; offset: number; size: number }[];
  /** Where the data region starts: the header's length rounded up to the alignment. */
  dataStart: number;
}

/** Thrown inside parseGgufHeader when the prefix ends: the header needs at least `needBytes`. */
class PrefixEnd extends Error {
  constructor(readonly needBytes: number) {
    super(`the header needs ${needBytes} bytes`);
  }
}

/** A Reader over the first bytes of a file of `fileSize` bytes (null: unknown). */
class PrefixReader extends Reader {
  constructor(
    private readonly prefixLength: number,
    prefix: Uint8Array,
    fileName: string,
    private readonly fileSize: number | null,
  ) {
    super(prefix, fileName);
  }
  override need(n: number, what: string): void {
    if (this.fileSize !== null && n > this.fileSize - this.at) this.fail(`the file ends inside ${what} (${n} bytes needed, ${this.fileSize - this.at} left)`);
    if (n > this.prefixLength - this.at) throw new PrefixEnd(this.at + n);
  }
  override value(what: string): GgufValue {
    const type = this.u32(`the type of ${what}`);
    if (type !== 9) return this.scalar(type, what);
    const elemType = this.u32(`the element type of ${what}`);
    if (elemType === 9) this.fail(`${what} is an array of arrays (not used by any model)`);
    const start = this.at;
    const count = this.u64(`the length of ${what}`);
    const minSize = elemType === 8 ? 8 : (VALUE_SIZES[elemType] ?? 1);
    if (this.fileSize !== null && count * minSize > this.fileSize - this.at) this.fail(`${what} claims ${count} elements, more than the file holds`, start);
    // Each element takes at least minSize bytes: that many must be here before anything is allocated.
    if (count * minSize > this.prefixLength - this.at) throw new PrefixEnd(this.at + count * minSize);
    const out: GgufScalar[] = new Array<GgufScalar>(count);
    for (let i = 0; i < count; i++) out[i] = this.scalar(elemType, `${what}[${i}]`);
    return out;
  }
}

/**
 * The header of a GGUF file from its first bytes (`prefix`), with parseGguf's checks on everything
 * the header holds; `fileSize` (when known) also bounds every tensor, so a truncated file is refused
 * here. When the prefix ends inside the header, returns `{ needBytes }`: a lower bound on the prefix
 * length the header needs (read more and call again).
 */
export function parseGgufHeader(prefix: Uint8Array, fileName: string, fileSize: number | null = null): GgufHeader | { needBytes: number } {
  try {
    return readHeader(new PrefixReader(prefix.length, prefix, fileName, fileSize), prefix, fileName, fileSize);
  } catch (e) {
    if (e instanceof PrefixEnd) return { needBytes: e.needBytes };
    throw e;
  }
}

/**
 * The header walk both parsers share: magic, version, counts, key-values, alignment, tensor infos
 * (each checked as it is read), then, when the file's size is known, every tensor bounded by the
 * data region and none overlapping another. `bytes` holds at least the magic's four bytes or `r`
 * stops before it.
 */
function readHeader(r: Reader, bytes: Uint8Array, fileName: string, fileSize: number | null): GgufHeader {
  r.need(4, 'the magic number');
  if (String.fromCharCode(...bytes.subarray(0, 4)) !== 'GGUF') r.fail('is not a GGUF file (it does not start with "GGUF")', 0);
  r.at = 4;
  const version = r.u32('the version');
  if (version !== 2 && version !== 3) r.fail(`is GGUF version ${version} (versions 2 and 3 are supported)`, 4);
  const tensorCount = r.u64('the tensor count');
  const kvCount = r.u64('the key-value count');
  if (tensorCount > GGUF_LIMITS.maxTensors) r.fail(`claims ${tensorCount} tensors (at most ${GGUF_LIMITS.maxTensors})`, 8);
  if (kvCount > GGUF_LIMITS.maxKeyValues) r.fail(`claims ${kvCount} key-values (at most ${GGUF_LIMITS.maxKeyValues})`, 16);
  const metadata = new Map<string, GgufValue>();
  for (let i = 0; i < kvCount; i++) {
    const at = r.at;
    const key = r.string(`key ${i}`);
    if (key === '') r.fail(`key ${i} is empty`, at);
    if (metadata.has(key)) r.fail(`key '${key}' appears twice`, at);
    metadata.set(key, r.value(`'${key}'`));
  }
  const alignValue = metadata.get('general.alignment') ?? 32;
  if (typeof alignValue !== 'number' || !Number.isInteger(alignValue) || alignValue < 1 || alignValue > 1 << 16 || (alignValue & (alignValue - 1)) !== 0) {
    r.fail(`general.alignment is ${String(alignValue)} (expected a power of two up to 65536)`);
  }
  const alignment = alignValue as number;
  const tensors: GgufHeader['tensors'] = [];
  const ats: number[] = [];
  const names = new Set<string>();
  for (let i = 0; i < tensorCount; i++) {
    const at = r.at;
    const name = r.string(`the name of tensor ${i}`);
    if (names.has(name)) r.fail(`tensor '${name}' appears twice`, at);
    names.add(name);
    const nDims = r.u32(`the dimension count of '${name}'`);
    if (nDims < 1 || nDims > GGUF_LIMITS.maxDims) r.fail(`tensor '${name}' has ${nDims} dimensions (1 to ${GGUF_LIMITS.maxDims})`, at);
    const dims: number[] = [];
    for (let d = 0; d < nDims; d++) {
      const n = r.u64(`dimension ${d} of '${name}'`);
      if (n < 1) r.fail(`tensor '${name}' has dimension ${d} of size 0`);
      dims.push(n);
    }
    const typeAt = r.at;
    const typeId = r.u32(`the type of '${name}'`);
    const type = GGML_TYPES[typeId as keyof typeof GGML_TYPES];
    if (!type) {
      const supported = Object.values(GGML_TYPES).map((t) => t.name);
      r.fail(`tensor '${name}' is of GGML type ${KNOWN_UNSUPPORTED[typeId] ?? typeId}, which webslo does not read (supported: ${supported.join(', ')})`, typeAt);
    }
    const count = dims.reduce((a, b) => a * b, 1);
    if (!Number.isSafeInteger(count)) r.fail(`tensor '${name}' has ${dims.join(' x ')} elements, too many`, at);
    if (dims[0]! % type.block !== 0) r.fail(`tensor '${name}' is ${type.name} with rows of ${dims[0]} values, not a multiple of its block of ${type.block}`, at);
    const offset = r.u64(`the offset of '${name}'`);
    if (offset % alignment !== 0) r.fail(`tensor '${name}' starts at data offset ${offset}, not a multiple of the alignment ${alignment}`);
    tensors.push({ name, type: type.name, shape: [...dims].reverse(), offset, size: (count / type.block) * type.bytes });
    ats.push(at);
  }
  const dataStart = Math.ceil(r.at / alignment) * alignment;
  if (fileSize !== null) {
    const dataSize = fileSize - dataStart;
    if (dataSize < 0) r.fail(`the file (${fileSize} bytes) ends before its data region (byte ${dataStart})`);
    const order = tensors.map((_, i) => i).sort((a, b) => tensors[a]!.offset - tensors[b]!.offset);
    let end = 0;
    for (const i of order) {
      const t = tensors[i]!;
      if (t.offset < end) throw new GgufError(fileName, `tensor '${t.name}' overlaps the tensor before it (data offset ${t.offset} < ${end})`, ats[i]!);
      end = t.offset + t.size;
      if (end > dataSize)
        throw new GgufError(fileName, `tensor '${t.name}' needs data bytes [${t.offset}, ${end}), but the data region of the ${fileSize}-byte file has ${dataSize} (a truncated file?)`, ats[i]!);
    }
  }
  return { version, metadata, tensors, dataStart };
}
