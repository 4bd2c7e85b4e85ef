/**
 * @module cli/commands/migrate-info
 * `memtree migrate-info FILE [--json]`: the RAM blocks of a QEMU or memtree migration stream (e.g. a
 * file written by QEMU's `migrate "exec:cat > FILE"`), with the pages of each block the stream holds.
 */

import { parseArgs } from 'node:util';
import { escapeText } from '../../migration/errors.js';
import { fileSource } from '../../migration/node-io.js';
import { inspectStream } from '../../migration/ram-load.js';
import { type Command, UsageError } from '../command.js';

const HELP = `Usage: memtree migrate-info FILE [--json]

Lists the RAM blocks of a QEMU (or memtree) migration stream: block id, used length in bytes, the
number of distinct pages of the block present in the stream, and how many of those are zero pages.
Device sections after the RAM section are not read; they are listed as skipped.

Options:
  --json   print an array of { "id", "length", "pages", "zeroPages" }

Block ids and device names are printed with control characters escaped (\\xNN).

Exit status: 0 on success, 1 if the stream is truncated (it must end with QEMU's EOF record) or
corrupt, 2 on bad usage.

Example:
  memtree migrate-info pc.mig          # from QEMU's migrate "exec:cat > pc.mig"
`;

export const migrateInfoCommand: Command = {
  name: 'migrate-info',
  summary: 'list the RAM blocks of a QEMU or memtree migration stream',
  help: HELP,
  async run(args, io) {
    let parsed: ReturnType<
      typeof parseArgs<{ options: { json: { type: 'boolean' } }; allowPositionals: true }>
    >;
    try {
      parsed = parseArgs({
        args,
        options: { json: { type: 'boolean' } },
        allowPositionals: true,
        strict: true,
      });
    } catch (e) {
      throw new UsageError((e as Error).message);
    }
    const [file, ...extra] = parsed.positionals;
    if (file === undefined) throw new UsageError('missing FILE');
    if (extra.length) throw new UsageError(`unexpected argument '${extra[0]}'`);
    const r = await inspectStream(await fileSource(file), { readTail: true });
    const blocks = r.inventory.blocks();
    if (parsed.values.json) {
      io.stdout.write(`${JSON.stringify(blocks, null, 2)}\n`);
      return 0;
    }
    const idw = blocks.reduce((w, b) => Math.max(w, escapeText(b.id).length), 24);
    let out = `machine: ${escapeText(r.machine)}\n`;
    out += `${'Block'.padStart(idw)} ${'Length'.padStart(18)} ${'Pages'.padStart(10)} ${'Zero pages'.padStart(10)}\n`;
    for (const b of blocks) {
      out += `${escapeText(b.id).padStart(idw)} ${`0x${b.length.toString(16).padStart(16, '0')}`} ${String(b.pages).padStart(10)} ${String(b.zeroPages).padStart(10)}\n`;
    }
    if (r.skipped.length) {
      out += `skipped ${r.skipped.length} device section${r.skipped.length === 1 ? '' : 's'}: ${r.skipped
        .map((s) => escapeText(s.instanceId ? `${s.idstr}#${s.instanceId}` : s.idstr))
        .join(', ')}\n`;
    }
    io.stdout.write(out);
    return 0;
  },
};
