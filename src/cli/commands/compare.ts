/**
 * @module cli/commands/compare
 * `memtree compare A B`: canonical equality of two `info mtree` texts (block order, FlatView
 * numbers and the order of a view's address spaces ignored).
 */

import { compareMtreeText } from '../../mtree/compare.js';
import type { CliIo, Command } from '../command.js';
import { UsageError } from '../command.js';
import { parseCommandArgs } from './flat.js';

const help = `Usage: memtree compare A B [--json]

Compares two \`info mtree\` texts (both tree form or both flat form; '-' reads standard input for
one of them) the way QEMU's output must be compared: the order of address-space groups,
memory-region sections and FlatViews, the FlatView numbers and the order of the AS lines inside a
FlatView are not properties of the machine and are ignored. Everything else must match byte for
byte.

Exit status: 0 when equal, 1 when different (the first difference is printed), 2 on usage errors.

Options:
  --json      print {"equal": ..., "firstDifference": ...}
  -h, --help  show this help
`;

export const compareCommand: Command = {
  name: 'compare',
  summary: 'compare two `info mtree` texts, ignoring what QEMU prints in hash order',
  help,
  async run(args: string[], io: CliIo): Promise<number> {
    const { values, positionals } = parseCommandArgs(args, {
      options: { json: { type: 'boolean' } },
      allowPositionals: true,
    });
    if (positionals.length !== 2) throw new UsageError('expected two dumps A and B (see --help)');
    const [pa, pb] = positionals as [string, string];
    if (pa === '-' && pb === '-') throw new UsageError('A and B cannot both be standard input');
    const res = compareMtreeText(await io.readText(pa), await io.readText(pb));
    if (values.json) io.stdout.write(`${JSON.stringify(res, null, 2)}\n`);
    else if (res.equal) io.stdout.write('equal\n');
    else io.stdout.write(`different: ${res.firstDifference}\n`);
    return res.equal ? 0 : 1;
  },
};
