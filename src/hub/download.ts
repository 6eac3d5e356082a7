// Downloads one model file with a streaming body reader. When the server declares the length, the
// bytes go straight into one preallocated Uint8Array (never a chunk list plus a concatenated copy:
// a multi-gigabyte shard is held once); otherwise the buffer grows by doubling. A body that ends
// short of its Content-Length, or breaks off, is a ModelFileError: callers cache only what returns.
// readBody also continues a file whose first bytes are already held (a range request's answer,
// gguf-download.ts) in the same one buffer.

import { ModelFileError } from '../model/errors.js';
import { checkFileResponse } from '../model/source.js';

export interface DownloadProgress {
  /** The file name (or URL) the download was started for. */
  file: string;
  /** Bytes received so far. */
  loaded: number;
  /** The declared length, or null when the server did not say (or the body was encoded). */
  total: number | null;
}

export interface DownloadOptions {
  /** A fetch to use instead of the global one. */
  fetch?: typeof fetch;
  /** Extra request headers (an Authorization bearer token). */
  headers?: Record<string, string>;
  /** The name progress events carry; the URL when omitted. */
  file?: string;
  /** Called after every chunk (and once with 0 bytes before the first). */
  onProgress?: (ev: DownloadProgress) => void;
  signal?: AbortSignal;
  /** What a request that reaches no server means here, for the error (the hub's own wording). */
  unreachable?: string;
}

export function message(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

function fetcher(options: { fetch?: typeof fetch }): typeof fetch {
  return options.fetch ?? ((input: RequestInfo | URL, init?: RequestInit) => fetch(input, init));
}

/**
 * The body length the reader will yield, or null when unknown: fetch decodes gzip/br bodies, and
 * then Content-Length counts the encoded bytes, not the ones read.
 */
export function declaredLength(res: Response): number | null {
  const encoding = res.headers.get('content-encoding');
  if (encoding !== null && encoding.trim().toLowerCase() !== 'identity') return null;
  const raw = res.headers.get('content-length')?.trim();
  if (raw === undefined || !/^\d+$/.test(raw)) return null;
  const n = Number(raw);
  return Number.isSafeInteger(n) ? n : null;
}

function allocate(url: string, bytes: number): Uint8Array {
  try {
    return new Uint8Array(bytes);
  } catch (e) {
    throw new ModelFileError(url, `cannot allocate ${bytes} bytes for the download (${message(e)}); the model is too large for this runtime's memory`);
  }
}

/**
 * GETs `url` and returns its body, or null when the file is absent (404 without a repo or revision
 * error code). Every other failure, a short body included, throws ModelFileError naming the URL.
 */
export async function downloadFile(url: string, options: DownloadOptions = {}): Promise<Uint8Array | null> {
  const res = await request(url, options);
  if (!(await checkFileResponse(url, res))) return null;
  return readBody(url, res, options);
}

/** GETs `url` (with `extraHeaders`, e.g. a Range); a request that reaches no server is a ModelFileError. */
export async function request(url: string, options: DownloadOptions, extraHeaders: Record<string, string> = {}): Promise<Response> {
  try {
    return await fetcher(options)(url, { headers: { ...(options.headers ?? {}), ...extraHeaders }, ...(options.signal ? { signal: options.signal } : {}) });
  } catch (e) {
    if (options.signal?.aborted) throw options.signal.reason;
    throw new ModelFileError(url, options.unreachable ? `${options.unreachable} (${message(e)})` : `request failed: ${message(e)}`);
  }
}

export interface ReadBodyOptions extends DownloadOptions {
  /** Bytes of the file already held that this body continues (a range request's answer). */
  prefix?: Uint8Array;
  /** Called after every chunk with the file so far; what it throws ends the download. */
  inspect?: (soFar: Uint8Array) => void;
}

/**
 * Streams an accepted response's body into one buffer (after `prefix`, when given): progress
 * counts the prefix, and a body that ends short or breaks off is a ModelFileError.
 */
export async function readBody(url: string, res: Response, options: ReadBodyOptions = {}): Promise<Uint8Array> {
  const file = options.file ?? url;
  const prefix = options.prefix ?? new Uint8Array(0);
  const declared = declaredLength(res);
  let expected = declared === null ? null : prefix.length + declared;
  let buf = allocate(url, expected ?? Math.max(1 << 16, prefix.length * 2));
  buf.set(prefix);
  let received = prefix.length;
  options.onProgress?.({ file, loaded: received, total: expected });
  if (res.body === null) {
    if (declared !== null && declared > 0) throw new ModelFileError(url, `response has no body, ${declared} bytes declared`, res.status);
    return buf.subarray(0, received);
  }

  const reader = res.body.getReader();
  let finished = false;
  try {
    for (;;) {
      let chunk: ReadableStreamReadResult<Uint8Array>;
      try {
        chunk = await reader.read();
      } catch (e) {
        if (options.signal?.aborted) throw options.signal.reason;
        const of = expected === null ? '' : ` of ${expected}`;
        throw new ModelFileError(url, `download broke off after ${received}${of} bytes (${message(e)}); nothing was cached, load again to retry`, res.status);
      }
      if (chunk.done) break;
      const value = chunk.value;
      if (received + value.length > buf.length) {
        // Unknown length, or more than declared (an encoding the headers did not show): grow.
        expected = null;
        let size = Math.max(buf.length * 2, 1 << 16);
        while (size < received + value.length) size *= 2;
        const bigger = allocate(url, size);
        bigger.set(buf.subarray(0, received));
        buf = bigger;
      }
      buf.set(value, received);
      received += value.length;
      options.onProgress?.({ file, loaded: received, total: expected });
      options.inspect?.(buf.subarray(0, received));
    }
    finished = true;
  } finally {
    // Frees the connection when a read failed or a callback threw.
    if (!finished) void reader.cancel().catch(() => undefined);
  }
  if (expected !== null && received < expected) {
    throw new ModelFileError(url, `body ended after ${received} of ${expected} bytes (the connection dropped); nothing was cached, load again to retry`, res.status);
  }
  // A grown buffer is returned as a view, not trimmed: trimming would hold the file twice at once.
  return received === buf.length ? buf : buf.subarray(0, received);
}

/**
 * A file's size from a HEAD request (the hub's x-linked-size for LFS files, else Content-Length),
 * or null when the server does not say or the request fails: sizes only feed progress totals.
 */
export async function headFileSize(url: string, options: Pick<DownloadOptions, 'fetch' | 'headers' | 'signal'> = {}): Promise<number | null> {
  try {
    const res = await fetcher(options)(url, { method: 'HEAD', headers: options.headers ?? {}, ...(options.signal ? { signal: options.signal } : {}) });
    await res.body?.cancel().catch(() => undefined);
    if (!res.ok) return null;
    for (const header of ['x-linked-size', 'content-length']) {
      const raw = res.headers.get(header)?.trim();
      if (raw !== undefined && /^\d+$/.test(raw) && Number.isSafeInteger(Number(raw))) return Number(raw);
    }
    return null;
  } catch {
    return null;
  }
}
