// resolveModelSource: which source a model argument becomes (directory, hub id, URL, files,
// directory handle), and directoryHandleSource over a fake handle backed by a real folder.

import { mkdir, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { directoryHandleSource, ModelSourceError, resolveModelSource, VALID_MODEL_INPUTS, type DirectoryHandleLike, type ModelInput } from '../../src/hub/index.js';
import { ModelFileError } from '../../src/model/errors.js';
import { loadModelFiles } from '../../src/model/load.js';
import { nodeDirectorySource, type FileLike } from '../../src/model/source.js';
import { startHubServer, type HubServer } from '../helpers/hub-server.js';

const QWEN = fileURLToPath(new URL('../fixtures/tiny-qwen2', import.meta.url));

let tmp: string;
let server: HubServer;
beforeAll(async () => {
  tmp = await mkdtemp(join(tmpdir(), 'webslo-resolve-'));
  server = await startHubServer({ 'fixtures/tiny-qwen2': QWEN });
});
afterAll(async () => {
  await server.close();
  await rm(tmp, { recursive: true, force: true });
});

/** A FileSystemDirectoryHandle look-alike over a folder, throwing the DOMExceptions browsers throw. */
function fakeHandle(dir: string, name: string): DirectoryHandleLike {
  const entry = async (n: string, want: 'dir' | 'file'): Promise<string> => {
    const path = join(dir, n);
    const st = await stat(path).catch(() => null);
    if (!st) throw new DOMException(`${n} not found`, 'NotFoundError');
    if (st.isDirectory() !== (want === 'dir')) throw new DOMException(`${n} is the wrong kind`, 'TypeMismatchError');
    return path;
  };
  return {
    kind: 'directory',
    name,
    getDirectoryHandle: async (n) => fakeHandle(await entry(n, 'dir'), n),
    getFileHandle: async (n) => {
      const path = await entry(n, 'file');
      return { getFile: async () => ({ arrayBuffer: async () => new Uint8Array(await readFile(path)).buffer }) };
    },
  };
}

async function rejection(p: Promise<unknown>): Promise<Error> {
  return p.then(
    () => {
      throw new Error('expected a rejection');
    },
    (e: unknown) => e as Error,
  );
}

describe('resolveModelSource', () => {
  it('an http(s) URL is a folder URL; a hub id is a cached hub source with the options', async () => {
    const folder = `${server.endpoint}/fixtures/tiny-qwen2/resolve/main`;
    const byUrl = await resolveModelSource(`${folder}/`);
    expect(byUrl.describe()).toBe(folder);
    expect((await byUrl.read('config.json'))!.length).toBe((await stat(join(QWEN, 'config.json'))).size);

    const progress: string[] = [];
    const byId = await resolveModelSource('fixtures/tiny-qwen2', { endpoint: server.endpoint, cache: false, onProgress: (e) => progress.push(e.file) });
    expect(byId.describe()).toBe(folder);
    expect(await byId.read('config.json')).not.toBeNull();
    expect(progress.at(-1)).toBe('config.json');
    expect((await resolveModelSource('Qwen/Qwen2.5-0.5B', { cache: false })).describe()).toBe('https://huggingface.co/Qwen/Qwen2.5-0.5B/resolve/main');
  });

  it('in Node an existing directory wins over a hub id of the same spelling', async () => {
    await mkdir(join(tmp, 'org/name'), { recursive: true });
    await writeFile(join(tmp, 'org/name/config.json'), '{}');
    const cwd = process.cwd();
    process.chdir(tmp);
    try {
      expect((await resolveModelSource('org/name', { endpoint: server.endpoint, cache: false })).describe()).toBe('org/name');
      // 'org/other' is no folder here, so it is a hub id.
      expect((await resolveModelSource('org/other', { endpoint: server.endpoint, cache: false })).describe()).toBe(`${server.endpoint}/org/other/resolve/main`);
    } finally {
      process.chdir(cwd);
    }
    const direct = await resolveModelSource(QWEN);
    expect(direct.describe()).toBe(nodeDirectorySource(QWEN).describe());
    expect((await loadModelFiles(direct)).config.architecture).toBe('qwen2');
  });

  it('files picked in a page, a directory handle, and a ModelSource pass through to their sources', async () => {
    const file = async (name: string): Promise<FileLike> => {
      const bytes = new Uint8Array(await readFile(join(QWEN, name)));
      return { name, webkitRelativePath: `tiny-qwen2/${name}`, arrayBuffer: async () => bytes.slice().buffer };
    };
    const files = await Promise.all(['config.json', 'model.safetensors'].map(file));
    const fromFiles = await resolveModelSource(files);
    expect(fromFiles.describe()).toBe('2 selected files');
    expect((await loadModelFiles(fromFiles)).tensors.size).toBeGreaterThan(0);

    const handle = fakeHandle(QWEN, 'tiny-qwen2');
    for (const input of [handle, { kind: 'directory-handle' as const, handle }]) {
      const source = await resolveModelSource(input);
      expect(source.describe()).toBe('tiny-qwen2');
      expect((await loadModelFiles(source)).tensors.size).toBe((await loadModelFiles(nodeDirectorySource(QWEN))).tensors.size);
    }
    const own = nodeDirectorySource(QWEN);
    expect(await resolveModelSource(own)).toBe(own);
  });

  it('anything else is a ModelSourceError that lists what is valid', async () => {
    await writeFile(join(tmp, 'lonely.json'), '{}');
    const cases: [unknown, RegExp][] = [
      ['', /is empty/],
      ['ftp://example.com/model', /unsupported scheme/],
      ['/no/such/dir', /is no existing directory/],
      ['./relative', /is no existing directory/],
      [join(tmp, 'lonely.json'), /is a file; pass the model folder/],
      ['has space', /neither an existing directory nor a hub repo id/],
      [42, /is not a model/],
      [null, /is not a model/],
      [{}, /is not a model/],
      [[], /empty file list/],
      [[{ name: 'x' }], /not a File/],
      [{ kind: 'directory-handle', handle: {} }, /'handle' is not a FileSystemDirectoryHandle/],
    ];
    for (const [input, problem] of cases) {
      const e = await rejection(resolveModelSource(input as ModelInput));
      expect(e, String(input)).toBeInstanceOf(ModelSourceError);
      expect(e.message, String(input)).toMatch(problem);
      expect(e.message).toContain(VALID_MODEL_INPUTS);
    }
  });
});

describe('directoryHandleSource', () => {
  it('reads nested paths, maps NotFoundError to absent and other failures to ModelFileError', async () => {
    await mkdir(join(tmp, 'handle/sub/deeper'), { recursive: true });
    await writeFile(join(tmp, 'handle/sub/deeper/a.json'), '[1]');
    const source = directoryHandleSource(fakeHandle(join(tmp, 'handle'), 'handle'));
    expect(new TextDecoder().decode((await source.read('sub/deeper/a.json'))!)).toBe('[1]');
    expect(await source.read('sub/missing.json')).toBeNull();
    expect(await source.read('nope/a.json')).toBeNull();
    await expect(source.read('sub')).rejects.toThrow(/is a directory where a file was expected/);
    await expect(source.read('../x')).rejects.toBeInstanceOf(ModelFileError);
    const denied = directoryHandleSource({
      ...fakeHandle(tmp, 'denied'),
      getFileHandle: async () => Promise.reject(new DOMException('no', 'NotAllowedError')),
    });
    await expect(denied.read('a.json')).rejects.toThrow(/pick the folder again/);
  });
});
