// A model folder the user granted through the File System Access API (showDirectoryPicker) or the
// origin-private file system (navigator.storage.getDirectory()). Files are found by relative path,
// one directory handle per segment, and read without copying the folder anywhere.

import { ModelFileError } from '../model/errors.js';
import { checkFileName, type ModelSource } from '../model/source.js';

/** The part of FileSystemDirectoryHandle this needs (a fake can stand in for it in Node tests). */
export interface DirectoryHandleLike {
  readonly kind: 'directory';
  readonly name: string;
  getDirectoryHandle(name: string): Promise<DirectoryHandleLike>;
  getFileHandle(name: string): Promise<{ getFile(): Promise<{ arrayBuffer(): Promise<ArrayBuffer> }> }>;
}

function errorName(e: unknown): string {
  return typeof e === 'object' && e !== null && typeof (e as { name?: unknown }).name === 'string' ? (e as { name: string }).name : '';
}

function message(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

export function directoryHandleSource(handle: DirectoryHandleLike): ModelSource {
  const where = handle.name || 'the picked folder';
  return {
    describe: () => where,
    async read(file) {
      checkFileName(file, where);
      const path = `${where}/${file}`;
      const segments = file.split('/');
      const name = segments.pop()!;
      try {
        let dir = handle;
        for (const segment of segments) dir = await dir.getDirectoryHandle(segment);
        const got = await (await dir.getFileHandle(name)).getFile();
        return new Uint8Array(await got.arrayBuffer());
      } catch (e) {
        switch (errorName(e)) {
          case 'NotFoundError':
            return null;
          case 'TypeMismatchError':
            throw new ModelFileError(path, 'is a directory where a file was expected (or a file where a folder was)');
          case 'NotAllowedError':
          case 'SecurityError':
            throw new ModelFileError(path, `permission to read the folder was lost (${message(e)}); pick the folder again`);
          default:
            throw new ModelFileError(path, `cannot read: ${message(e)}`);
        }
      }
    },
  };
}
