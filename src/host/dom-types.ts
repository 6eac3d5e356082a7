// Browser classes the public API names, as types that exist whether or not the consumer's
// TypeScript project has the DOM lib. A Node project (lib: es2022, @types/node) has no `Worker` or
// `FileSystemDirectoryHandle`; naming them directly made the package's declarations fail to
// type-check there (skipLibCheck off). Each alias is the DOM class when the DOM lib is present and
// `never` when it is not, so a browser project keeps exact types and a Node one loses nothing it
// could pass. Types only: nothing here exists at run time.

type GlobalInstance<K extends string> = typeof globalThis extends Record<K, { prototype: infer T }> ? T : never;

/** A DOM `Worker` (never without the DOM lib). */
export type DomWorker = GlobalInstance<'Worker'>;
/** A DOM `File` (also in Node's globals since Node 20). */
export type DomFile = GlobalInstance<'File'>;
/** A DOM `FileSystemDirectoryHandle` (never without the DOM lib). */
export type DomDirectoryHandle = GlobalInstance<'FileSystemDirectoryHandle'>;
