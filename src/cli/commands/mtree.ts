/**
 * @module cli/commands/mtree
 * `memtree mtree DUMP [-D]`: rebuilds an `info mtree` dump and prints the tree back as QEMU's
 * `info mtree [-D]` would (a round trip that checks the rebuild).
 */

import { formatMtree } from '../../mtree/print.js';
import type { CliIo, Command } from '../command.js';
import { UsageError } from '../command.js';
import { loadTreeDump, parseCommandArgs, parseQemuVersion, reportWarnings } from './flat.js';

const help = `Usage: memtree mtree DUMP [-D] [--flat FLAT] [--qemu VERSION]

Rebuilds the memory regions of an \`info mtree [-D]\` dump (DUMP; '-' reads standard input) and
prints the region tree back as QEMU's \`info mtree\` would: every address-space group, then one
\`memory-region:\` section per alias target. Groups come in the creation order of their first
address space (QEMU's own order is hash order).

Options:
  -D, --disabled  also print disabled regions, marked [disabled] (QEMU's -D)
  --flat FLAT     the \`info mtree -f\` dump of the same moment (settles region kinds)
  --qemu VERSION  the QEMU version whose text to print (from 10.1, pure containers print as
                  \`container\`); by default what the dump looks like (7.2 unless it prints
                  \`container\`). \`-o\` owner suffixes in DUMP are printed back.
  -h, --help      show this help
`;

export const mtreeCommand: Command = {
  name: 'mtree',
  summary: 'print an `info mtree` dump back as `info mtree [-D]`',
  help,
  async run(args: string[], io: CliIo): Promise<number> {
    const { values, positionals } = parseCommandArgs(args, {
      options: {
        disabled: { type: 'boolean', short: 'D' },
        flat: { type: 'string' },
        qemu: { type: 'string' },
      },
      allowPositionals: true,
    });
    if (positionals.length !== 1) throw new UsageError('expected exactly one DUMP (see --help)');
    const qemu = parseQemuVersion(values.qemu);
    const r = await loadTreeDump(io, positionals[0]!, values.flat as string | undefined, qemu);
    reportWarnings(io, 'mtree', r);
    const owners = r.suffixes.owners;
    io.stdout.write(
      formatMtree(r.system, {
        disabled: Boolean(values.disabled),
        qemu: qemu ?? r.qemu,
        ...(owners ? { owners } : {}),
      }),
    );
    return 0;
  },
};
