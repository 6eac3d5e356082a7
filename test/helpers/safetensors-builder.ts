// Builds .safetensors bytes for tests: well-formed files from named tensors, and deliberately broken
// ones (any header object or text, any length field) to drive the parser's error paths.

export interface BuildTensor {
  name: string;
  dtype: string;
  shape: number[];
  /** Raw little-endian bytes; zeros of the right size when omitted. */
  data?: Uint8Array;
}

const DTYPE_SIZE: Record<string, number> = { F32: 4, F16: 2, BF16: 2, F64: 8, I8: 1, U8: 1, I32: 4, I64: 8 };

export function elementCount(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

/**
 * Encodes a header (object or raw text) and data region. `headerLength` overrides the length field
 * (a bigint reaches values above 2^53); the header is space-padded to 8 bytes like the Rust writer.
 */
export function encodeSafetensors(header: Record<string, unknown> | string, data: Uint8Array = new Uint8Array(0), options: { headerLength?: number | bigint; pad?: boolean } = {}): Uint8Array {
  let text = typeof header === 'string' ? header : JSON.stringify(header);
  if (options.pad ?? typeof header !== 'string') while ((8 + new TextEncoder().encode(text).length) % 8 !== 0) text += ' ';
  const json = new TextEncoder().encode(text);
  const out = new Uint8Array(8 + json.length + data.length);
  new DataView(out.buffer).setBigUint64(0, BigInt(options.headerLength ?? json.length), true);
  out.set(json, 8);
  out.set(data, 8 + json.length);
  return out;
}

/** A well-formed file holding `tensors` back to back in the given order. */
export function buildSafetensors(tensors: readonly BuildTensor[], metadata: Record<string, string> | null = { format: 'pt' }): Uint8Array {
  const header: Record<string, unknown> = {};
  if (metadata) header['__metadata__'] = metadata;
  const chunks: Uint8Array[] = [];
  let offset = 0;
  for (const t of tensors) {
    const size = elementCount(t.shape) * (DTYPE_SIZE[t.dtype] ?? 1);
    const data = t.data ?? new Uint8Array(size);
    header[t.name] = { dtype: t.dtype, shape: t.shape, data_offsets: [offset, offset + data.length] };
    chunks.push(data);
    offset += data.length;
  }
  const data = new Uint8Array(offset);
  let at = 0;
  for (const c of chunks) {
    data.set(c, at);
    at += c.length;
  }
  return encodeSafetensors(header, data);
}

/** The header object and data region of a well-formed file (for rewriting the header). */
export function splitFile(bytes: Uint8Array): { header: Record<string, unknown>; data: Uint8Array } {
  const n = Number(new DataView(bytes.buffer, bytes.byteOffset, 8).getBigUint64(0, true));
  const header = JSON.parse(new TextDecoder().decode(bytes.subarray(8, 8 + n))) as Record<string, unknown>;
  return { header, data: bytes.subarray(8 + n) };
}

/** Rewrites a well-formed file's header through `edit`, keeping its data region as is. */
export function rewriteHeader(bytes: Uint8Array, edit: (header: Record<string, unknown>) => void): Uint8Array {
  const { header, data } = splitFile(bytes);
  edit(header);
  return encodeSafetensors(header, data);
}

/** Re-packs a well-formed file's tensors, keeping or dropping some; data copied tensor by tensor. */
export function repack(bytes: Uint8Array, keep: (name: string) => boolean, extra: readonly BuildTensor[] = []): Uint8Array {
  const { header, data } = splitFile(bytes);
  const tensors: BuildTensor[] = [];
  for (const [name, raw] of Object.entries(header)) {
    if (name === '__metadata__' || !keep(name)) continue;
    const t = raw as { dtype: string; shape: number[]; data_offsets: [number, number] };
    tensors.push({ name, dtype: t.dtype, shape: t.shape, data: data.subarray(t.data_offsets[0], t.data_offsets[1]) });
  }
  return buildSafetensors([...tensors, ...extra]);
}
