/**
 * @module cli/dump-paths
 * Capture folders as dump arguments: every dump-reading command takes the folder `memtree capture`
 * writes (the layout of the shared fixtures) wherever it takes a dump file, and picks the file it
 * needs from it.
 */

import { join } from 'node:path';
import { MemtreeError } from '../core/errors.js';
import type { CliIo } from './command.js';

/** The dump files of a capture folder, in the order a tree dump is looked for. */
export const TREE_FILES = ['mtree-D.txt', 'mtree.txt'] as const;
/** The flat dump of a capture folder. */
export const FLAT_FILE = 'flat.txt';

function kind(io: CliIo, path: string): 'dir' | 'file' | 'none' {
  if (path === '-') return 'file';
  return io.entryKind?.(path) ?? 'file';
}

/** True if `path` names a folder. */
export function isFolder(io: CliIo, path: string): boolean {
  return kind(io, path) === 'dir';
}

/** `file` inside `dir` if it is there. */
export function fileInFolder(io: CliIo, dir: string, file: string): string | undefined {
  const p = join(dir, file);
  return kind(io, p) === 'file' ? p : undefined;
}

/** The tree dump of a folder (`mtree-D.txt`, else `mtree.txt`), or `path` itself for a file. */
export function treeDumpPath(io: CliIo, path: string): string {
  if (!isFolder(io, path)) return path;
  for (const f of TREE_FILES) {
    const p = fileInFolder(io, path, f);
    if (p) return p;
  }
  throw new MemtreeError('ERR_IO', `${path}: a folder without mtree-D.txt or mtree.txt`);
}

/** The flat dump of a folder (`flat.txt`), or `path` itself for a file. */
export function flatDumpPath(io: CliIo, path: string): string {
  if (!isFolder(io, path)) return path;
  const p = fileInFolder(io, path, FLAT_FILE);
  if (!p) throw new MemtreeError('ERR_IO', `${path}: a folder without ${FLAT_FILE}`);
  return p;
}

/**
 * The DUMP and --flat arguments of `flat`, `mtree` and `lookup` as files: a folder gives its tree
 * dump, and its `flat.txt` unless --flat names another.
 */
export function treeAndFlatPaths(
  io: CliIo,
  dump: string,
  flat: string | undefined,
): { tree: string; flat: string | undefined } {
  const tree = treeDumpPath(io, dump);
  if (flat !== undefined) return { tree, flat: flatDumpPath(io, flat) };
  return { tree, flat: isFolder(io, dump) ? fileInFolder(io, dump, FLAT_FILE) : undefined };
}

/**
 * A dump of either kind for `diff`: a folder gives QEMU's own flat view (`flat.txt`) when it has
 * one, which is exact, and else its tree dump.
 */
export function anyDumpPath(io: CliIo, path: string): string {
  if (!isFolder(io, path)) return path;
  return fileInFolder(io, path, FLAT_FILE) ?? treeDumpPath(io, path);
}
