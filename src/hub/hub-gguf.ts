// One GGUF file inside a hub repo as the model ('org/name/path/file.gguf'), cached like a hub
// folder's files (hub-source.ts) and downloaded header first (gguf-download.ts): its header is
// parsed and checked before the weights are requested, so a bad or unsupported file fails early
// with a typed error.
//
// Naming: a repo id, then the file's path inside the repo, ending in .gguf. llama.cpp's
// `-hf org/name:Q4_0` picks a file by quantization tag through the hub's file-listing API; webslo
// takes the exact file name instead (as transformers.js and WebLLM name files inside a repo), so a
// load needs no listing request and works against any server with the hub's /resolve/ layout.

import { checkFileName, checkRepoId, type ModelSource } from '../model/source.js';
import { checkGgufHeader, downloadGguf } from './gguf-download.js';
import { cachedHubSource, type CachedHubSourceOptions } from './hub-source.js';

/** 'org/name/path/file.gguf' as its repo id and file path; null for anything else. */
export function parseHubGgufName(s: string): { repoId: string; file: string } | null {
  const m = /^([^/]+\/[^/]+)\/(.+\.gguf)$/i.exec(s);
  if (!m) return null;
  try {
    checkRepoId(m[1]!);
    checkFileName(m[2]!, m[1]!);
  } catch {
    return null;
  }
  return { repoId: m[1]!, file: m[2]! };
}

/**
 * The GGUF file `file` of hub repo `repoId` (at options.revision) as a one-file model source: kept
 * in the same cache as hub folders (keyed by its URL: a cached file loads with no request), byte
 * progress through options.onProgress, and downloaded header first.
 */
export function cachedHubGgufSource(repoId: string, file: string, options: CachedHubSourceOptions = {}): ModelSource {
  const source = cachedHubSource(repoId, options, (url, net) => downloadGguf(url, { ...net, onHeader: (header) => checkGgufHeader(header, file) }));
  checkFileName(file, source.describe());
  return { ...source, gguf: file };
}
