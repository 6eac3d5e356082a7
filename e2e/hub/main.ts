// Hub page: installs window.__hub (protocol.ts) over the real hub loader, in the page's main
// thread, with the Cache API as the model cache. Each call also appends a line to the page.

import { browserCacheStore, cachedHubSource, deleteCachedModel, listCachedModels, resolveModelSource, type HubLoadProgress } from '../../src/hub/index.js';
import { loadModelFiles } from '../../src/model/load.js';
import type { ModelSource } from '../../src/model/source.js';
import type { HubFailure, HubLoadReport, HubPageApi } from './protocol.js';

/** Where the preview server (e2e/fixture-server.ts) serves test/fixtures in the hub layout. */
const ENDPOINT = `${location.origin}/models`;
const store = browserCacheStore();

const status = document.getElementById('status')!;
const log = document.getElementById('log')!;
const say = (line: string): void => {
  log.textContent += `${line}\n`;
};

function failure(e: unknown): HubFailure {
  const error = e instanceof Error ? e : new Error(String(e));
  say(`failed: ${error.name}: ${error.message}`);
  return { error: { name: error.name, message: error.message } };
}

async function report(source: ModelSource, events: HubLoadProgress[]): Promise<HubLoadReport> {
  const started = performance.now();
  const loaded = await loadModelFiles(source);
  const r = { tensors: loaded.tensors.size, weightFiles: loaded.weightFiles, architecture: loaded.config.architecture, events, ms: performance.now() - started };
  say(`loaded ${source.describe()}: ${r.tensors} tensors, ${events.length} progress events, ${Math.round(r.ms)} ms`);
  return r;
}

/** Makes (or opens) a nested folder in the origin-private file system. */
async function opfsFolder(path: string): Promise<FileSystemDirectoryHandle> {
  let dir = await navigator.storage.getDirectory();
  for (const name of path.split('/')) dir = await dir.getDirectoryHandle(name, { create: true });
  return dir;
}

const api: HubPageApi = {
  async load(model) {
    const events: HubLoadProgress[] = [];
    try {
      return await report(cachedHubSource(model, { endpoint: ENDPOINT, cache: store, onProgress: (e) => events.push(e) }), events);
    } catch (e) {
      return failure(e);
    }
  },
  async list() {
    const models = await listCachedModels({ store, endpoint: ENDPOINT });
    say(`cached: ${models.map((m) => `${m.repoId}@${m.revision} (${m.files.length} files, ${m.bytes} bytes)`).join(', ') || 'nothing'}`);
    return models;
  },
  async remove(model) {
    const n = await deleteCachedModel(model, { store, endpoint: ENDPOINT });
    say(`deleted ${n} files of ${model}`);
    return n;
  },
  keys: () => store.keys(),
  async loadFromDirectoryHandle(model, path) {
    try {
      const folder = await opfsFolder(path);
      const models = await listCachedModels({ store, endpoint: ENDPOINT });
      for (const { file } of models.find((m) => m.repoId === model)?.files ?? []) {
        const bytes = await store.get(`${ENDPOINT}/${model}/resolve/main/${file}`);
        const writable = await (await folder.getFileHandle(file, { create: true })).createWritable();
        await writable.write(bytes! as Uint8Array<ArrayBuffer>);
        await writable.close();
      }
      // The whole path from the OPFS root: directoryHandleSource walks the nested folders itself.
      const source = await resolveModelSource({ kind: 'directory-handle', handle: await navigator.storage.getDirectory() });
      const prefixed: ModelSource = { describe: () => `opfs:${path}`, read: (file) => source.read(`${path}/${file}`) };
      return await report(prefixed, []);
    } catch (e) {
      return failure(e);
    }
  },
};

window.__hub = api;
status.dataset.state = 'ready';
status.textContent = `Ready: endpoint ${ENDPOINT}, ${store.describe?.() ?? 'cache'}`;
