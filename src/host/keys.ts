// Keys the host gives the engine core for its KV caches. Each is the JSON of its parts, so no app
// name, conversation id or model name (all caller-chosen strings) can make two different tuples one
// key: `${app}|${conversation}` once made app 'x|y' with conversation 'z' the same key as app 'x'
// with conversation 'y|z', and one evicted the other's kept KV.

/** The key of a kept conversation: per app. */
export function conversationKey(app: string, conversationId: string): string {
  return JSON.stringify(['conversation', app, conversationId]);
}

/** The namespace cached prefix pages live in: per model, and per app unless shared (app null). */
export function cacheNamespace(model: string, app: string | null): string {
  return JSON.stringify(app === null ? ['prefix', model] : ['prefix', model, app]);
}
