// Loading models from the Hugging Face hub (or a mirror) with a cache and progress, and resolving
// whatever names a model to a ModelSource. See each module for the details.

export { browserCacheStore, DEFAULT_BROWSER_CACHE, type ModelCacheStore } from './cache.js';
export { defaultCacheStore } from './default-store.js';
export { defaultNodeCacheDir, nodeDirectoryCacheStore } from './node-cache.js';
export { cacheKeyPath } from './node-cache.js';
export { directoryHandleSource, type DirectoryHandleLike } from './directory-handle.js';
export { downloadFile, headFileSize, type DownloadOptions, type DownloadProgress } from './download.js';
export { CacheQuotaError, CacheUnavailableError, isQuotaError, ModelSourceError, VALID_MODEL_INPUTS } from './errors.js';
export { checkGgufHeader, downloadGguf, GGUF_HEADER_BYTES, type GgufDownloadOptions } from './gguf-download.js';
export { cachedHubGgufSource, parseHubGgufName } from './hub-gguf.js';
export { ABSENT_MARKER, cachedHubSource, type CachedHubSourceOptions, type HubLoadProgress } from './hub-source.js';
export { deleteCachedModel, listCachedModels, type CachedFile, type CachedModel, type CachedModelQuery, type DeleteCachedModelOptions } from './models.js';
export { hubOptionsFromEnv, resolveModelSource, type ModelInput, type ResolveModelOptions } from './resolve.js';
