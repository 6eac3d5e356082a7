// Downloads one GGUF file header first: range requests (`Range: bytes=0-N`, then the next bytes,
// growing until parseGgufHeader has the whole header) give the file's size, metadata and tensor
// list, and the header is checked (onHeader: the parser's checks, then the metadata's) before the
// weights are requested with `Range: bytes=N-` and streamed after the header bytes. So a missing,
// truncated, not-GGUF or unsupported file fails after a few kilobytes to megabytes, never after the
// whole download. A server that ignores Range (200 with the whole body) works too: that body is the
// file, and its header is checked as it streams in, ending the download at the first fault; so does
// a first range request that fails outright (a browser's CORS preflight refused): one plain GET,
// checked the same way. A 206 whose Content-Range a browser hides (not exposed by CORS) is taken
// as the range asked for, the file size then unknown until the body ends.

import { GgufError, parseGgufHeader, type GgufHeader } from '../model/gguf.js';
import { ggufModel } from '../model/gguf-model.js';
import { ModelConfigError, ModelFileError, UnsupportedModelError } from '../model/errors.js';
import { checkFileResponse } from '../model/source.js';
import { declaredLength, message, readBody, request, type DownloadOptions } from './download.js';

/** Bytes the first range request asks for; real headers (a tokenizer's vocabulary) run to megabytes. */
export const GGUF_HEADER_BYTES = 1 << 20;

export interface GgufDownloadOptions extends DownloadOptions {
  /** Bytes the first range request asks for (default GGUF_HEADER_BYTES); doubled until the header fits. */
  headerBytes?: number;
  /** Called once with the header and the file size (null when unknown) before the weights are read. */
  onHeader?: (header: GgufHeader, fileSize: number | null) => void;
}

/**
 * The metadata checks a GGUF model gets at load (architecture, config keys, token ids), run on the
 * header alone: ggufModel sees every tensor's name and shape with empty data. Only its typed
 * refusals count here; anything about tensor data is left to the full parse after the download.
 */
export function checkGgufHeader(header: GgufHeader, fileName: string): void {
  const tensors = new Map(header.tensors.map((t) => [t.name, { name: t.name, type: t.type, shape: t.shape, data: new Uint8Array(0) }]));
  try {
    ggufModel({ version: header.version, metadata: header.metadata, tensors }, fileName);
  } catch (e) {
    if (e instanceof UnsupportedModelError || e instanceof ModelConfigError) throw e;
  }
}

/**
 * `bytes a-b/size` of a 206 answer (size null for '*'), or null when the header cannot be read: a
 * browser hides it from a cross-origin answer unless the server exposes it (CORS).
 */
function contentRange(url: string, res: Response): { start: number; end: number; size: number | null } | null {
  const raw = res.headers.get('content-range');
  if (raw === null) return null;
  const m = /^bytes (\d+)-(\d+)\/(\d+|\*)$/.exec(raw.trim());
  if (!m) throw new ModelFileError(url, `answered 206 with Content-Range ${JSON.stringify(raw)} (expected 'bytes a-b/size')`, 206);
  return { start: Number(m[1]), end: Number(m[2]), size: m[3] === '*' ? null : Number(m[3]) };
}

function concat(a: Uint8Array, b: Uint8Array): Uint8Array {
  const out = new Uint8Array(a.length + b.length);
  out.set(a);
  out.set(b, a.length);
  return out;
}

/** The file name for GgufError messages: the URL's last path segment. */
function nameOf(url: string, file: string | undefined): string {
  if (file !== undefined) return file;
  const path = new URL(url).pathname;
  return decodeURIComponent(path.slice(path.lastIndexOf('/') + 1));
}

/**
 * GETs the GGUF file at `url` header first (see the file comment) and returns its bytes, or null
 * when it is absent (a 404 for the file). Throws GgufError (or the typed error onHeader throws) for a
 * bad header before the weights are downloaded, ModelFileError for HTTP failures.
 */
export async function downloadGguf(url: string, options: GgufDownloadOptions = {}): Promise<Uint8Array | null> {
  const name = nameOf(url, options.file);
  const file = options.file ?? url;
  let prefix: Uint8Array = new Uint8Array(0);
  let size: number | null;
  let want = Math.max(64, options.headerBytes ?? GGUF_HEADER_BYTES);
  for (;;) {
    let res: Response;
    try {
      res = await request(url, options, { range: `bytes=${prefix.length}-${want - 1}` });
    } catch (e) {
      // A browser refuses a cross-origin Range request whose preflight the server fails; a plain
      // GET (no preflight) may still pass: the whole file, checked as it streams in.
      if (prefix.length > 0 || options.signal?.aborted) throw e;
      const whole = await request(url, options);
      if (!(await checkFileResponse(url, whole))) return null;
      return streamWhole(url, whole, name, options);
    }
    if (res.status === 416 && prefix.length === 0) {
      await res.body?.cancel().catch(() => undefined);
      throw new GgufError(name, 'is an empty file, not a GGUF file', 0);
    }
    if (!(await checkFileResponse(url, res))) return null;
    if (res.status !== 206) return streamWhole(url, res, name, options);
    const range = contentRange(url, res);
    if (range !== null && (range.start !== prefix.length || range.end < range.start)) {
      await res.body?.cancel().catch(() => undefined);
      throw new ModelFileError(url, `answered bytes ${range.start}-${range.end} to a request for bytes ${prefix.length}-${want - 1}`, 206);
    }
    let part: Uint8Array;
    try {
      part = new Uint8Array(await res.arrayBuffer());
    } catch (e) {
      if (options.signal?.aborted) throw options.signal.reason;
      throw new ModelFileError(url, `download broke off in the header (${message(e)}); load again to retry`, 206);
    }
    if (range !== null && part.length !== range.end - range.start + 1) throw new ModelFileError(url, `sent ${part.length} bytes for the range ${range.start}-${range.end}`, 206);
    prefix = concat(prefix, part);
    // Without a readable Content-Range, fewer bytes than asked for means the file ended there.
    size = range !== null ? range.size : prefix.length < want ? prefix.length : null;
    options.onProgress?.({ file, loaded: prefix.length, total: size });
    const header = parseGgufHeader(prefix, name, size);
    if ('needBytes' in header) {
      if (size !== null && prefix.length >= size) throw new GgufError(name, 'the file ends inside its header', prefix.length);
      want = Math.max(header.needBytes, prefix.length * 2);
      if (size !== null) want = Math.min(want, size);
      continue;
    }
    options.onHeader?.(header, size);
    if (size !== null && prefix.length >= size) return prefix;
    break;
  }
  // The weights: the rest of the file, after the header bytes already here.
  const res = await request(url, options, { range: `bytes=${prefix.length}-` });
  if (res.status === 416 && size === null) {
    // A server that did not say the size ('bytes a-b/*'): the header requests held the whole file.
    await res.body?.cancel().catch(() => undefined);
    return prefix;
  }
  if (!(await checkFileResponse(url, res))) throw new ModelFileError(url, 'disappeared (HTTP 404) after its header was read', 404);
  const rest = res.status !== 206 ? await readBody(url, res, options) : await readWeights(url, res, prefix, size, options);
  // The whole file, as long as its header said (a short answer would be cached as the model).
  if (size !== null && rest.length !== size) throw new ModelFileError(url, `gave ${rest.length} bytes of a ${size}-byte file; load again to retry`, res.status);
  return rest;
}

/** The 206 answer to the weights request: the bytes from `prefix.length` to the end, after `prefix`. */
async function readWeights(url: string, res: Response, prefix: Uint8Array, size: number | null, options: GgufDownloadOptions): Promise<Uint8Array> {
  const range = contentRange(url, res);
  if (range !== null && (range.start !== prefix.length || (size !== null && (range.size !== size || range.end !== size - 1)))) {
    await res.body?.cancel().catch(() => undefined);
    throw new ModelFileError(url, `answered bytes ${range.start}-${range.end}/${range.size ?? '*'} to a request for the bytes from ${prefix.length} of ${size ?? '?'}`, 206);
  }
  return readBody(url, res, { ...options, prefix });
}

/** A 200 to a range request: the body is the whole file; its header is checked as it arrives. */
async function streamWhole(url: string, res: Response, name: string, options: GgufDownloadOptions): Promise<Uint8Array> {
  let nextTry = 64;
  let checked = false;
  const size = declaredLength(res);
  const inspect = (soFar: Uint8Array): void => {
    if (checked || soFar.length < nextTry) return;
    const header = parseGgufHeader(soFar, name, size);
    if ('needBytes' in header) {
      // Reparse only after the prefix has doubled: the header is parsed O(log n) times, not per chunk.
      nextTry = Math.max(header.needBytes, soFar.length * 2);
      return;
    }
    checked = true;
    options.onHeader?.(header, size);
  };
  const bytes = await readBody(url, res, { ...options, inspect });
  // A body that ended before the next reparse (or inside the header) is checked whole here.
  if (!checked) {
    const header = parseGgufHeader(bytes, name, bytes.length);
    if ('needBytes' in header) throw new GgufError(name, 'the file ends inside its header', bytes.length);
    options.onHeader?.(header, bytes.length);
  }
  return bytes;
}
