/**
 * @module cli/commands/mtree
 * `memtree mtree DUMP [-D]`: rebuilds an `info mtree` dump and prints the tree back as QEMU's
 * `info mtree [-D]` would (a round trip that checks the rebuild).
 */

import { parseMtreeText, type RegionLine, type TreeNode } from '../../mtree/parse.js';
import { formatMtree } from '../../mtree/print.js';
import type { CliIo, Command } from '../command.js';
import { UsageError } from '../command.js';
import { treeAndFlatPaths } from '../dump-paths.js';
import { loadTreeDump, parseCommandArgs, parseQemuVersion, reportWarnings } from './flat.js';

const help = `Usage: memtree mtree DUMP [-D] [--flat FLAT] [--qemu VERSION] [--json]

Rebuilds the memory regions of an \`info mtree [-D]\` dump (DUMP; '-' reads standard input) and
prints the region tree back as QEMU's \`info mtree\` would: every address-space group, then one
\`memory-region:\` section per alias target. Groups come in the creation order of their first
address space (QEMU's own order is hash order). DUMP may be a folder written by \`memtree
capture\`: its mtree-D.txt is read, with its flat.txt as --flat.

Options:
  -D, --disabled  also print disabled regions, marked [disabled] (QEMU's -D)
  --flat FLAT     the \`info mtree -f\` dump of the same moment (settles region kinds)
  --qemu VERSION  the QEMU version whose text to print (from 11.0, a region in no container
                  prints as \`container\`); by default what the dump looks like (7.2 unless it
                  prints \`container\`). \`-o\` owner suffixes in DUMP are printed back.
  --json          print the tree as JSON, one entry per printed line, in print order:
                  {"blocks": [{"kind": "address-space" | "memory-region", "names": [...],
                               "regions": [{"depth", "start", "end", "priority", "type",
                                            "name", "alias"?: {"target", "offset",
                                            "offsetEnd"}, "disabled", "nonvolatile",
                                            "text"}]}]}
                  (depth 1 is the block's root; addresses are "0x..." strings)
  -h, --help      show this help

Examples:
  memtree mtree pc/mtree-D.txt -D
  memtree mtree pc --json             # a capture folder
`;

const hex = (v: bigint) => `0x${v.toString(16)}`;

function lineJson(l: RegionLine) {
  return {
    depth: l.level,
    start: hex(l.start),
    end: hex(l.end),
    priority: l.priority,
    type: l.type,
    name: l.name,
    ...(l.alias
      ? { alias: { target: l.alias.target, offset: hex(l.alias.offset), offsetEnd: hex(l.alias.offsetEnd) } }
      : {}),
    disabled: l.disabled,
    nonvolatile: l.nonvolatile,
    text: l.text.trimStart(),
  };
}

/** The printed tree as JSON, walked with an explicit stack: dumps may nest arbitrarily deep. */
function treeJson(text: string) {
  const dump = parseMtreeText(text, 'memtree');
  return {
    blocks: dump.blocks.map((b) => {
      const regions: ReturnType<typeof lineJson>[] = [];
      const stack: TreeNode[] = [...(b.root ? [b.root] : []), ...b.hiddenTop].reverse();
      for (let n = stack.pop(); n; n = stack.pop()) {
        regions.push(lineJson(n.line));
        for (let i = n.children.length - 1; i >= 0; i--) stack.push(n.children[i]!);
      }
      return { kind: b.kind, names: b.names, regions };
    }),
  };
}

export const mtreeCommand: Command = {
  name: 'mtree',
  summary: 'print an `info mtree` dump back as `info mtree [-D]`',
  help,
  async run(args: string[], io: CliIo): Promise<number> {
    const { values, positionals } = parseCommandArgs(args, {
      options: {
        disabled: { type: 'boolean', short: 'D' },
        flat: { type: 'string' },
        json: { type: 'boolean' },
        qemu: { type: 'string' },
      },
      allowPositionals: true,
    });
    if (positionals.length !== 1) throw new UsageError('expected exactly one DUMP (see --help)');
    const qemu = parseQemuVersion(values.qemu);
    const paths = treeAndFlatPaths(io, positionals[0]!, values.flat as string | undefined);
    const r = await loadTreeDump(io, paths.tree, paths.flat, qemu);
    reportWarnings(io, 'mtree', r);
    const owners = r.suffixes.owners;
    const text = formatMtree(r.system, {
      disabled: Boolean(values.disabled),
      qemu: qemu ?? r.qemu,
      ...(owners ? { owners } : {}),
    });
    io.stdout.write(values.json ? `${JSON.stringify(treeJson(text), null, 2)}\n` : text);
    return 0;
  },
};
