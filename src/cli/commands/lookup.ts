/**
 * @module cli/commands/lookup
 * `memtree lookup DUMP ADDR`: what serves a guest address in each address space of a dump, and
 * the chain of containers and aliases that led there.
 */

import { hex16 } from '../../core/address.js';
import type { AddressSpace } from '../../core/address-space.js';
import { MemtreeError } from '../../core/errors.js';
import type { FlatView } from '../../core/flatview.js';
import { AddressSyntaxError, parseAddress } from '../../mtree/address-text.js';
import { type AddressExplanation, explainAddress } from '../../mtree/lookup.js';
import type { FlatDump } from '../../mtree/parse.js';
import { formatFlatRange, printedName, regionTypeName } from '../../mtree/print.js';
import { flatRangeAt } from '../../mtree/rebuild.js';
import type { CliIo, Command } from '../command.js';
import { UsageError } from '../command.js';
import { treeAndFlatPaths } from '../dump-paths.js';
import { loadTreeDump, parseCommandArgs, reportWarnings } from './flat.js';

const help = `Usage: memtree lookup DUMP ADDR [--as NAME] [--flat FLAT] [--json]

Rebuilds the memory regions of an \`info mtree -D\` dump and tells, for guest address ADDR, what
serves it in every address space (or only in the ones named NAME): the flat range, the region and
the offset in it, and the path from the address space's root through containers and aliases to
that region. Address spaces that share a view and a root are reported together.

ADDR is 0x-prefixed hex (0xfffffff0, 0xffff_fff0), decimal (1048576), binary units (4G, 640K),
or bare hex as copied from a dump (fffffff0, 00000000000c0000: a letter or a leading zero makes
it hex). DUMP may be a folder written by \`memtree capture\` (its mtree-D.txt, with its flat.txt
as --flat).

Options:
  --as NAME     only the address spaces named NAME
  --flat FLAT   the \`info mtree -f\` dump of the same moment (settles region kinds)
  --json        print the answer as JSON:
                {"address", "answers": [{"spaces": [names], "range": QEMU's flat line | null,
                  "region": name | null, "offset": "0x..." | null,
                  "path": [{"region", "kind", "via", "origin", "priority",
                            "target"?, "aliasOffset"?}]}]}
  -h, --help    show this help

Examples:
  memtree lookup pc/mtree-D.txt 0xfffffff0 --as memory --flat pc/flat.txt
  memtree lookup pc 4G                # a capture folder
`;

function parseAddr(s: string): bigint {
  try {
    return parseAddress(s);
  } catch (e) {
    if (e instanceof AddressSyntaxError) throw new UsageError(`ADDR: ${e.message}`);
    throw e;
  }
}

function stepText(e: AddressExplanation, i: number): string {
  const s = e.path[i]!;
  const mr = s.region;
  const what = mr.alias
    ? `alias ${printedName(mr)} -> ${printedName(mr.alias)} @0x${mr.aliasOffset.toString(16)}`
    : `${printedName(mr)} (${mr.terminates ? regionTypeName(mr) : 'container'})`;
  const ext = `${hex16(s.origin)}-${hex16(s.origin + (mr.size === 0n ? 0n : mr.size - 1n))}`;
  return `${'  '.repeat(i)}${what} prio ${mr.priority}, at ${ext}`;
}

/**
 * The answer from QEMU's own flat view, when the rebuild does not reproduce it: the range and the
 * region are QEMU's; the path through the tree is not known for sure.
 */
function answerFromFlat(
  io: CliIo,
  flat: FlatDump,
  spaces: AddressSpace[],
  addr: bigint,
  json: boolean,
): number {
  const names = [...new Set(spaces.map((s) => s.name))];
  const answers = names.map((name) => ({ name, r: flatRangeAt(flat, name, addr) }));
  if (json) {
    const data = answers.map(({ name, r }) => ({
      spaces: [name],
      range: r ? r.text.trim() : null,
      region: r ? r.name : null,
      offset: r ? `0x${(addr - r.start + r.offset).toString(16)}` : null,
      path: null,
      pathUncertain: true,
    }));
    io.stdout.write(`${JSON.stringify({ address: `0x${addr.toString(16)}`, answers: data }, null, 2)}\n`);
    return 0;
  }
  const out: string[] = [];
  for (const { name, r } of answers) {
    out.push(`AS "${name}" (from QEMU's flat view):`);
    if (!r) {
      out.push(`  0x${hex16(addr)} is not mapped (unassigned)`, '');
      continue;
    }
    out.push(`  range   ${r.text.trim()}`);
    out.push(`  region  ${r.name}, offset 0x${(addr - r.start + r.offset).toString(16)}`);
    out.push("  path    uncertain: the rebuilt tree does not reproduce QEMU's flat view", '');
  }
  io.stdout.write(out.join('\n'));
  return 0;
}

export const lookupCommand: Command = {
  name: 'lookup',
  summary: 'explain what serves a guest address, per address space',
  help,
  async run(args: string[], io: CliIo): Promise<number> {
    const { values, positionals } = parseCommandArgs(args, {
      options: { as: { type: 'string' }, flat: { type: 'string' }, json: { type: 'boolean' } },
      allowPositionals: true,
    });
    if (positionals.length !== 2) throw new UsageError('expected DUMP and ADDR (see --help)');
    const addr = parseAddr(positionals[1]!);
    const paths = treeAndFlatPaths(io, positionals[0]!, values.flat as string | undefined);
    const r = await loadTreeDump(io, paths.tree, paths.flat);
    reportWarnings(io, 'lookup', r);
    if (r.spaces.length === 0) {
      throw new MemtreeError('ERR_PARSE', `${positionals[0]}: the dump has no \`address-space:\` block`);
    }
    const name = values.as as string | undefined;
    const spaces = name === undefined ? r.spaces : r.spaces.filter((s) => s.name === name);
    if (spaces.length === 0) {
      const names = [...new Set(r.spaces.map((s) => `"${s.name}"`))].join(', ');
      throw new MemtreeError('ERR_INVALID_ARGUMENT', `no address space named "${name}" (there are ${names})`);
    }
    // Address spaces with the same view and root get the same answer.
    const groups = new Map<string, { view: FlatView; spaces: AddressSpace[] }>();
    const ids = new Map<object, number>();
    const id = (o: object) => {
      if (!ids.has(o)) ids.set(o, ids.size);
      return ids.get(o)!;
    };
    for (const as of spaces) {
      const key = `${id(as.currentView)}/${id(as.root)}`;
      const g = groups.get(key);
      if (g) g.spaces.push(as);
      else groups.set(key, { view: as.currentView, spaces: [as] });
    }
    if (r.mismatch && r.flat) return answerFromFlat(io, r.flat, spaces, addr, values.json === true);
    const answers = [...groups.values()].map((g) => ({
      spaces: g.spaces,
      e: explainAddress(g.spaces[0]!, addr),
    }));
    if (values.json) {
      const hex = (v: bigint) => `0x${v.toString(16)}`;
      const data = answers.map(({ spaces: ss, e }) => ({
        spaces: ss.map((s) => s.name),
        range: e.range ? formatFlatRange(e.range) : null,
        region: e.region ? printedName(e.region) : null,
        offset: e.offset === null ? null : hex(e.offset),
        path: e.path.map((s) => ({
          region: printedName(s.region),
          kind: s.region.alias ? 'alias' : s.region.terminates ? regionTypeName(s.region) : 'container',
          via: s.via,
          origin: hex(s.origin),
          priority: s.region.priority,
          ...(s.region.alias
            ? { target: printedName(s.region.alias), aliasOffset: hex(s.region.aliasOffset) }
            : {}),
        })),
      }));
      io.stdout.write(`${JSON.stringify({ address: hex(addr), answers: data }, null, 2)}\n`);
      return 0;
    }
    const out: string[] = [];
    for (const { spaces: ss, e } of answers) {
      out.push(`${ss.map((s) => `AS "${s.name}"`).join(', ')} (root ${printedName(ss[0]!.root)}):`);
      if (!e.range) {
        out.push(`  0x${hex16(addr)} is not mapped (unassigned)`, '');
        continue;
      }
      out.push(`  range   ${formatFlatRange(e.range)}`);
      out.push(`  region  ${printedName(e.region)}, offset 0x${e.offset!.toString(16)}`);
      out.push('  path');
      for (let i = 0; i < e.path.length; i++) out.push(`    ${stepText(e, i)}`);
      out.push('');
    }
    io.stdout.write(`${out.join('\n')}`);
    return 0;
  },
};
