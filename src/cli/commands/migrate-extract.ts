/**
 * @module cli/commands/migrate-extract
 * `memtree migrate-extract FILE BLOCK OUT`: writes the bytes of one RAM block of a migration stream
 * to a file (pages the stream does not carry read as zeros).
 *
 * OUT is never touched until the whole stream has been read and checked: the bytes go to a new
 * file beside OUT, which replaces OUT (rename) only on success and is removed on failure.
 */

import { randomBytes } from 'node:crypto';
import {
  chmodSync,
  closeSync,
  fsyncSync,
  ftruncateSync,
  openSync,
  readSync,
  renameSync,
  type Stats,
  statSync,
  unlinkSync,
  writeSync,
} from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { MemtreeError } from '../../core/errors.js';
import { escapeText, MigrationError } from '../../migration/errors.js';
import { fileSource } from '../../migration/node-io.js';
import { type ExtractTarget, inspectStream } from '../../migration/ram-load.js';
import { type Command, UsageError } from '../command.js';

const HELP = `Usage: memtree migrate-extract FILE BLOCK OUT

Writes the bytes of RAM block BLOCK (an id as 'memtree migrate-info' lists it, e.g. pc.bios) of the
migration stream FILE to OUT. OUT gets the block's used length; pages absent from the stream are zeros.
OUT is replaced only once the whole stream was read and found complete; on any failure it is left
as it was. OUT may not be FILE itself.

Exit status: 0 on success, 1 if the block is not in the stream, the stream is truncated or bad, or OUT
cannot be written; 2 on bad usage.

Example:
  memtree migrate-extract pc.mig pc.bios bios.bin
`;

/** Writes pages straight into the output file, so a block of any size needs no memory. */
class FileTarget implements ExtractTarget {
  constructor(private readonly fd: number) {}
  set(src: Uint8Array, offset: number): void {
    writeSync(this.fd, src, 0, src.length, offset);
  }
  subarray(begin: number, end: number): Uint8Array {
    const b = new Uint8Array(end - begin);
    readSync(this.fd, b, 0, b.length, begin);
    return b;
  }
}

function statOrNull(path: string): Stats | null {
  try {
    return statSync(path);
  } catch {
    return null;
  }
}

function writeError(out: string, e: unknown): MemtreeError {
  return new MemtreeError('ERR_IO', `cannot write ${escapeText(out)}: ${escapeText((e as Error).message)}`);
}

export const migrateExtractCommand: Command = {
  name: 'migrate-extract',
  summary: 'write one RAM block of a migration stream to a file',
  help: HELP,
  async run(args, io) {
    const pos = args.filter((a) => a !== '--');
    const bad = pos.find((a) => a.startsWith('-') && a !== '-');
    if (bad) throw new UsageError(`unknown option '${escapeText(bad)}'`);
    if (pos.length !== 3) throw new UsageError('expected FILE BLOCK OUT');
    const [file, block, out] = pos as [string, string, string];
    const source = await fileSource(file);
    // The same file under another name (a hard link, a symlink, "./x") is the same inode.
    const input = statSync(file);
    const existing = statOrNull(out);
    if (existing && existing.dev === input.dev && existing.ino === input.ino) {
      throw new MemtreeError(
        'ERR_INVALID_ARGUMENT',
        `OUT ${escapeText(out)} is the input stream ${escapeText(file)}: refusing to overwrite it`,
      );
    }
    if (existing?.isDirectory()) throw writeError(out, new Error('is a directory'));
    const tmp = join(dirname(out), `.${basename(out)}.${randomBytes(6).toString('hex')}.tmp`);
    let fd: number;
    try {
      fd = openSync(tmp, 'wx+', 0o666);
    } catch (e) {
      throw writeError(out, e);
    }
    let done = false;
    try {
      const r = await inspectStream(source, {
        extract: block,
        // The whole stream is read, device sections included, so a cut stream is caught.
        readTail: true,
        makeTarget: (n) => {
          ftruncateSync(fd, n);
          return new FileTarget(fd);
        },
      });
      if (!r.inventory.extracted) {
        const ids = r.blocks.map((b) => b.id).join(', ');
        throw new MigrationError('unknown-block', `block "${block}" is not in ${file} (blocks: ${ids})`, {
          block,
        });
      }
      if (!r.reachedEof) {
        throw new MigrationError('truncated', `${file} does not end with QEMU's EOF record`);
      }
      try {
        // A replaced OUT keeps its permissions.
        if (existing) chmodSync(tmp, existing.mode & 0o7777);
        fsyncSync(fd);
        closeSync(fd);
        fd = -1;
        renameSync(tmp, out);
      } catch (e) {
        throw writeError(out, e);
      }
      done = true;
      const length = r.blocks.find((b) => b.id === block)!.length;
      io.stderr.write(`wrote ${length} bytes of ${escapeText(block)} to ${escapeText(out)}\n`);
      return 0;
    } finally {
      if (fd >= 0) closeSync(fd);
      if (!done) {
        try {
          unlinkSync(tmp);
        } catch {
          // Already gone.
        }
      }
    }
  },
};
