/**
 * @module cli/commands/migrate-extract
 * `memtree migrate-extract FILE BLOCK OUT`: writes the bytes of one RAM block of a migration stream
 * to a file (pages the stream does not carry read as zeros).
 */

import { closeSync, ftruncateSync, openSync, readSync, writeSync } from 'node:fs';
import { MemtreeError } from '../../core/errors.js';
import { MigrationError } from '../../migration/errors.js';
import { fileSource } from '../../migration/node-io.js';
import { type ExtractTarget, inspectStream } from '../../migration/ram-load.js';
import { type Command, UsageError } from '../command.js';

const HELP = `Usage: memtree migrate-extract FILE BLOCK OUT

Writes the bytes of RAM block BLOCK (an id as 'memtree migrate-info' lists it, e.g. pc.bios) of the
migration stream FILE to OUT. OUT gets the block's used length; pages absent from the stream are zeros.

Exit status: 0 on success, 1 if the block is not in the stream or the stream is bad, 2 on bad usage.
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

export const migrateExtractCommand: Command = {
  name: 'migrate-extract',
  summary: 'write one RAM block of a migration stream to a file',
  help: HELP,
  async run(args, io) {
    const pos = args.filter((a) => a !== '--');
    const bad = pos.find((a) => a.startsWith('-') && a !== '-');
    if (bad) throw new UsageError(`unknown option '${bad}'`);
    if (pos.length !== 3) throw new UsageError('expected FILE BLOCK OUT');
    const [file, block, out] = pos as [string, string, string];
    const source = await fileSource(file);
    let fd: number;
    try {
      fd = openSync(out, 'w+');
    } catch (e) {
      throw new MemtreeError('ERR_IO', `cannot write ${out}: ${(e as Error).message}`);
    }
    try {
      const r = await inspectStream(source, {
        extract: block,
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
      const length = r.blocks.find((b) => b.id === block)!.length;
      io.stderr.write(`wrote ${length} bytes of ${block} to ${out}\n`);
      return 0;
    } finally {
      closeSync(fd);
    }
  },
};
