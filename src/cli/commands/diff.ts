/**
 * @module cli/commands/diff
 * `memtree diff DUMP_A DUMP_B`: per address space, the flat ranges added, removed or changed
 * between two memory maps (tree dumps are rebuilt and rendered first).
 */

import { diffFlatDumps, formatDiff } from '../../mtree/diff.js';
import type { CliIo, Command } from '../command.js';
import { UsageError } from '../command.js';
import { anyDumpPath } from '../dump-paths.js';
import { loadAsFlat, parseCommandArgs } from './flat.js';

const help = `Usage: memtree diff DUMP_A DUMP_B [--json]

Shows, per address space, how the memory map changed from DUMP_A to DUMP_B: flat ranges removed
(-), added (+) and changed in place (~: same addresses, other region, offset, type or priority).
Each dump may be an \`info mtree -f\` dump or a tree dump (\`info mtree -D\`), which is rebuilt and
rendered first (without its flat dump, so region kinds are inferred from the text alone). Address
spaces with the same changes are reported together. '-' reads standard input for one of them.
A dump may be a folder written by \`memtree capture\`: its flat.txt (QEMU's own flat views) is
read, or its mtree-D.txt when it has no flat.txt.

Exit status: 0 when the maps are the same, 1 when they differ (as diff(1)) or on bad input,
2 on usage errors.

Options:
  --json      print the differences as JSON:
              {"differences": [{"spaces": [labels], "onlyIn"?: "A" | "B",
                "changes": [{"kind": "added" | "removed" |
                "changed", "start", "end", "before"?, "after"?}]}]}
              (start and end are "0x..." strings; before/after are QEMU's flat lines)
  -h, --help  show this help

Examples:
  memtree diff pc-512m/flat.txt pc-4g/flat.txt
  memtree diff pc-512m pc-4g          # two capture folders
`;

export const diffCommand: Command = {
  name: 'diff',
  summary: 'show the flat ranges that differ between two dumps, per address space',
  help,
  async run(args: string[], io: CliIo): Promise<number> {
    const { values, positionals } = parseCommandArgs(args, {
      options: { json: { type: 'boolean' } },
      allowPositionals: true,
    });
    if (positionals.length !== 2) throw new UsageError('expected two dumps DUMP_A and DUMP_B (see --help)');
    const [pa, pb] = positionals as [string, string];
    if (pa === '-' && pb === '-') throw new UsageError('DUMP_A and DUMP_B cannot both be standard input');
    const a = await loadAsFlat(io, anyDumpPath(io, pa));
    const diffs = diffFlatDumps(a, await loadAsFlat(io, anyDumpPath(io, pb)));
    if (values.json) {
      const hex = (v: bigint) => `0x${v.toString(16)}`;
      const data = diffs.map((d) => ({
        ...d,
        changes: d.changes.map((c) => ({ ...c, start: hex(c.start), end: hex(c.end) })),
      }));
      io.stdout.write(`${JSON.stringify({ differences: data }, null, 2)}\n`);
    } else {
      io.stdout.write(diffs.length ? formatDiff(diffs) : 'no differences\n');
    }
    return diffs.length ? 1 : 0;
  },
};
