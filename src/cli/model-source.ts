// What `--model` (and `--draft`) name on the command line: what createEngine takes, as a string: a
// local folder or .gguf file (an existing path wins), an http(s) folder or .gguf URL, a hub repo id,
// or a GGUF file in a hub repo ('org/name/file-q4_0.gguf', read header first), downloaded once
// into the cache directory (--cache-dir, else $WEBSLO_CACHE_DIR or ~/.cache/webslo; --no-cache to
// skip it) from --hub-endpoint (else $HF_ENDPOINT, else huggingface.co) with $HF_TOKEN if set.

import { hubOptionsFromEnv, nodeDirectoryCacheStore, resolveModelSource, type ModelCacheStore } from '../hub/index.js';
import type { ModelSource } from '../model/source.js';
import { stringFlag, type ParsedArgs } from './args.js';

/** The flags this reads (every command that loads a model accepts them). */
export const MODEL_SOURCE_FLAGS = ['hub-endpoint', 'revision', 'cache-dir', 'no-cache'] as const;

export async function cliModelSource(args: ParsedArgs, spec: string): Promise<ModelSource> {
  const revision = stringFlag(args, 'revision');
  const cacheDir = stringFlag(args, 'cache-dir');
  const cache: ModelCacheStore | false | undefined = args.flags.has('no-cache') ? false : cacheDir ? nodeDirectoryCacheStore(cacheDir) : undefined;
  const verbose = args.flags.has('verbose');
  let last = 0;
  return resolveModelSource(spec, {
    ...hubOptionsFromEnv(spec, { endpoint: stringFlag(args, 'hub-endpoint') }),
    ...(revision ? { revision } : {}),
    ...(cache !== undefined ? { cache } : {}),
    onProgress: (p) => {
      if (!verbose) return;
      const now = Date.now();
      if (p.loaded !== p.total && now - last < 1000) return;
      last = now;
      console.error(`[webslo] ${p.fromCache ? 'cache' : 'download'} ${p.file}: ${p.loaded}/${p.total} bytes`);
    },
  });
}
