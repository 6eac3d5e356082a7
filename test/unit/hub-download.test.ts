// downloadFile and headFileSize: one preallocated buffer for a declared length, growth otherwise
// (chunked or gzip-encoded bodies), short and broken bodies as ModelFileError, and progress.

import { readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { downloadFile, headFileSize, type DownloadProgress } from '../../src/hub/index.js';
import { ModelFileError } from '../../src/model/errors.js';
import { startHubServer, type HubServer } from '../helpers/hub-server.js';

const QWEN = fileURLToPath(new URL('../fixtures/tiny-qwen2', import.meta.url));
const REPO = 'fixtures/tiny-qwen2';

let server: HubServer;
let weights: Uint8Array;
const url = (file: string): string => `${server.endpoint}/${REPO}/resolve/main/${file}`;

beforeAll(async () => {
  server = await startHubServer({ [REPO]: QWEN });
  weights = new Uint8Array(await readFile(join(QWEN, 'model.safetensors')));
});
afterAll(() => server.close());
beforeEach(() => server.faults.clear());

/** A fetch answering every request with a stream of `chunks`, under the given headers; then `end`. */
function streamingFetch(headers: Record<string, string>, chunks: Uint8Array[], end: 'close' | 'error'): typeof fetch {
  return async () => {
    let i = 0;
    const body = new ReadableStream<Uint8Array>({
      pull(controller) {
        if (i < chunks.length) return controller.enqueue(chunks[i++]!);
        if (end === 'close') controller.close();
        else controller.error(new TypeError('terminated: other side closed'));
      },
    });
    return new Response(body, { status: 200, headers });
  };
}

describe('downloadFile', () => {
  it('reads a declared-length body into one exact buffer, reporting progress per chunk', async () => {
    const events: DownloadProgress[] = [];
    const bytes = (await downloadFile(url('model.safetensors'), { file: 'model.safetensors', onProgress: (e) => events.push(e) }))!;
    expect(Buffer.compare(Buffer.from(bytes), Buffer.from(weights))).toBe(0);
    // Preallocated from Content-Length: the result is the whole buffer, not a view into a bigger one.
    expect([bytes.byteOffset, bytes.buffer.byteLength]).toEqual([0, weights.length]);
    expect(events[0]).toEqual({ file: 'model.safetensors', loaded: 0, total: weights.length });
    expect(events.at(-1)).toEqual({ file: 'model.safetensors', loaded: weights.length, total: weights.length });
    expect(events.length).toBeGreaterThan(3);
    for (let i = 1; i < events.length; i++) expect(events[i]!.loaded).toBeGreaterThan(events[i - 1]!.loaded);
  });

  it('grows by doubling for a chunked body (no Content-Length) and a gzip-encoded one', async () => {
    for (const fault of ['chunked', 'gzip'] as const) {
      server.faults.set(`${REPO}/model.safetensors`, fault);
      const events: DownloadProgress[] = [];
      const bytes = (await downloadFile(url('model.safetensors'), { onProgress: (e) => events.push(e) }))!;
      expect(Buffer.compare(Buffer.from(bytes), Buffer.from(weights)), fault).toBe(0);
      expect(
        events.every((e) => e.total === null),
        fault,
      ).toBe(true);
      expect(events[0]!.file).toBe(url('model.safetensors'));
    }
  });

  it('maps 404 to null, repo and revision 404s and other statuses to ModelFileError', async () => {
    expect(await downloadFile(url('generation_config.json'))).toBeNull();
    await expect(downloadFile(`${server.endpoint}/fixtures/none/resolve/main/config.json`)).rejects.toThrow(/RepositoryNotFound/);
    server.faults.set(`${REPO}/config.json`, 'fail');
    const e = await downloadFile(url('config.json')).catch((err: unknown) => err);
    expect(e).toBeInstanceOf(ModelFileError);
    expect([(e as ModelFileError).status, (e as ModelFileError).path]).toEqual([500, url('config.json')]);
    await expect(downloadFile('http://127.0.0.1:1/x/y/resolve/main/config.json')).rejects.toThrow(/request failed/);
  });

  it('a body that ends short of its Content-Length, or breaks off, is a ModelFileError with the counts', async () => {
    const half = [new Uint8Array(300), new Uint8Array(200)];
    const short = await downloadFile('https://example.test/m.bin', { fetch: streamingFetch({ 'content-length': '1000' }, half, 'close') }).catch((e: unknown) => e);
    expect(short).toBeInstanceOf(ModelFileError);
    expect((short as Error).message).toBe('https://example.test/m.bin: body ended after 500 of 1000 bytes (the connection dropped); nothing was cached, load again to retry');

    const broken = await downloadFile('https://example.test/m.bin', { fetch: streamingFetch({ 'content-length': '1000' }, half, 'error') }).catch((e: unknown) => e);
    expect(broken).toBeInstanceOf(ModelFileError);
    expect((broken as Error).message).toMatch(/^https:\/\/example\.test\/m\.bin: download broke off after 500 of 1000 bytes \(terminated: other side closed\)/);

    // Over the wire: the server declares the size, sends half and drops the connection.
    server.faults.set(`${REPO}/model.safetensors`, 'truncate');
    await expect(downloadFile(url('model.safetensors'))).rejects.toThrow(new RegExp(`after \\d+ of ${weights.length} bytes`));
  });

  it('an undeclared length that runs past Content-Length still arrives whole', async () => {
    const chunks = [new Uint8Array(700).fill(1), new Uint8Array(700).fill(2)];
    const bytes = (await downloadFile('https://example.test/m.bin', { fetch: streamingFetch({ 'content-length': '1000' }, chunks, 'close') }))!;
    expect(bytes.length).toBe(1400);
    expect([bytes[699], bytes[700], bytes[1399]]).toEqual([1, 2, 2]);
  });

  it('a progress callback that throws stops the download with its own error', async () => {
    const boom = new Error('stop');
    await expect(
      downloadFile(url('model.safetensors'), {
        onProgress: (e) => {
          if (e.loaded > 0) throw boom;
        },
      }),
    ).rejects.toBe(boom);
  });

  it('an abort signal rejects with its reason', async () => {
    const controller = new AbortController();
    const reason = new Error('user cancelled');
    const p = downloadFile(url('model.safetensors'), {
      signal: controller.signal,
      onProgress: (e) => {
        if (e.loaded > 0) controller.abort(reason);
      },
    });
    await expect(p).rejects.toBe(reason);
  });
});

describe('headFileSize', () => {
  it('reads Content-Length from a HEAD, and null when there is none or the request fails', async () => {
    expect(await headFileSize(url('model.safetensors'))).toBe((await stat(join(QWEN, 'model.safetensors'))).size);
    expect(await headFileSize(url('generation_config.json'))).toBeNull();
    expect(await headFileSize('http://127.0.0.1:1/a')).toBeNull();
    server.faults.set(`${REPO}/model.safetensors`, 'chunked');
    expect(await headFileSize(url('model.safetensors'))).toBeNull();
    const linked: typeof fetch = async () => new Response(null, { status: 200, headers: { 'x-linked-size': '123456789012', 'content-length': '1352' } });
    expect(await headFileSize('https://example.test/m', { fetch: linked })).toBe(123456789012);
  });
});
