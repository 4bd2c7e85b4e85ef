/**
 * @module cli/commands/flat
 * `memtree flat DUMP [--flat FLAT]`: rebuilds the region graph of an `info mtree [-D]` dump and
 * prints its flat views as QEMU's `info mtree -f` would. Also home of the dump-loading helpers the
 * other dump-based commands share.
 */

import { type ParseArgsConfig, parseArgs } from 'node:util';
import { hex16 } from '../../core/address.js';
import { MemtreeError } from '../../core/errors.js';
import { type FlatDump, isFlatText, parseFlatText, parseMtreeText } from '../../mtree/parse.js';
import {
  flatViewGroups,
  formatFlat,
  formatFlatDump,
  formatFlatRange,
  printedName,
  printsContainerType,
} from '../../mtree/print.js';
import { type Rebuilt, rebuild } from '../../mtree/rebuild.js';
import { type CliIo, type Command, UsageError } from '../command.js';
import { treeAndFlatPaths } from '../dump-paths.js';
import { oneLine } from '../text.js';

/** The name a path is reported under. */
export function sourceName(path: string): string {
  return path === '-' ? '<stdin>' : path;
}

/** Reads a tree dump (and optionally the flat dump of the same moment) and rebuilds it. */
export async function loadTreeDump(
  io: CliIo,
  path: string,
  flatPath?: string,
  qemu?: string,
): Promise<Rebuilt> {
  if (path === '-' && flatPath === '-') throw new UsageError('DUMP and --flat cannot both be standard input');
  const text = await io.readText(path);
  if (isFlatText(text)) {
    throw new MemtreeError(
      'ERR_PARSE',
      `${sourceName(path)}: this is an \`info mtree -f\` dump; give an \`info mtree -D\` dump (and the flat one with --flat)`,
    );
  }
  const dump = parseMtreeText(text, sourceName(path));
  let flat: FlatDump | undefined;
  if (flatPath !== undefined) flat = parseFlatText(await io.readText(flatPath), sourceName(flatPath));
  return rebuild(dump, flat, qemu === undefined ? {} : { qemu });
}

/** Reads `--qemu VERSION` (`MAJOR.MINOR`). */
export function parseQemuVersion(v: unknown): string | undefined {
  if (v === undefined) return undefined;
  if (typeof v !== 'string' || !/^\d+\.\d+$/.test(v)) {
    throw new UsageError(`--qemu wants a QEMU version like 7.2 or 10.0, not '${String(v)}'`);
  }
  return v;
}

/** Reads any dump (tree or flat) as flat views: a tree dump is rebuilt and rendered. */
export async function loadAsFlat(io: CliIo, path: string): Promise<FlatDump> {
  const text = await io.readText(path);
  if (isFlatText(text)) return parseFlatText(text, sourceName(path));
  const rebuilt = rebuild(parseMtreeText(text, sourceName(path)));
  return parseFlatText(formatFlat(rebuilt.system), `${sourceName(path)} (rebuilt)`);
}

/** Parses options with node:util's parseArgs, turning its errors into usage errors. */
export function parseCommandArgs<T extends ParseArgsConfig>(
  args: string[],
  config: T,
): ReturnType<typeof parseArgs<T>> {
  try {
    return parseArgs<T>({ ...config, args, strict: true });
  } catch (e) {
    throw new UsageError((e as Error).message.replace(/\s*\n\s*/g, ' '));
  }
}

/** Writes rebuild warnings to stderr. */
export function reportWarnings(io: CliIo, command: string, r: Rebuilt): void {
  for (const w of r.warnings) io.stderr.write(`memtree ${command}: warning: ${oneLine(w)}\n`);
  const m = r.mismatch;
  if (m) {
    io.stderr.write(
      `memtree ${command}: warning: ${oneLine(`the rebuilt regions do not reproduce QEMU's flat view of AS "${m.space}": QEMU ${m.qemu ?? '(no range)'}, rebuilt ${m.ours ?? '(no range)'}; using QEMU's flat view`)}\n`,
    );
  }
}

const help = `Usage: memtree flat DUMP [--flat FLAT] [-d [--page-bits N]] [--qemu VERSION] [--json]

Rebuilds the memory regions of an \`info mtree -D\` dump (DUMP; '-' reads standard input) and
prints the flat views QEMU's \`info mtree -f\` shows for them. DUMP may be a folder written by
\`memtree capture\`: its mtree-D.txt is read, with its flat.txt as --flat.

The tree text does not say whether an i/o region is a container or a device that fills its gaps,
nor whether an alias is read-only. --flat FLAT (an \`info mtree -f\` dump taken at the same moment)
settles those per-region facts; everything else is computed from the rebuilt tree.

Options:
  --flat FLAT   the \`info mtree -f\` dump of the same moment
  -d, --dispatch
                add each view's dispatch sections and page-map nodes (as \`info mtree -f -d\`,
                without QEMU's run-time [MRU] marker)
  --page-bits N the target's page size for -d (8 to 16); by default the one that reproduces
                the Dispatch sections of FLAT when it is an \`info mtree -f -d\` dump, else 12
                (x86, RISC-V, Arm virt; most other Arm boards keep 1 KiB pages: 10)
  --qemu VERSION
                the QEMU version whose rules, text and region-name table to use (e.g. 7.2,
                10.0, 11.1); by default what the dump looks like: 7.2, or, when it prints the
                \`container\` type of QEMU 11.0 on, 11.0's rules and the newest name table
  --json        print the views as JSON:
                {"views": [{"spaces": [{"name", "root"}], "root",
                            "ranges": [{"start", "end", "region", "offset", "priority",
                                        "readonly", "nonvolatile", "text"}]}]}
                (addresses and offsets are "0x..." strings; text is QEMU's line)
  -h, --help    show this help

Examples:
  memtree flat pc/mtree-D.txt --flat pc/flat.txt
  memtree flat pc                     # a capture folder
`;

export const flatCommand: Command = {
  name: 'flat',
  summary: 'print the flat views of an `info mtree -D` dump (as `info mtree -f`)',
  help,
  async run(args: string[], io: CliIo): Promise<number> {
    const { values, positionals } = parseCommandArgs(args, {
      options: {
        flat: { type: 'string' },
        json: { type: 'boolean' },
        dispatch: { type: 'boolean', short: 'd' },
        'page-bits': { type: 'string' },
        qemu: { type: 'string' },
      },
      allowPositionals: true,
    });
    if (positionals.length !== 1) throw new UsageError('expected exactly one DUMP (see --help)');
    const explicitBits = values['page-bits'] === undefined ? undefined : Number(values['page-bits']);
    if (
      explicitBits !== undefined &&
      (!Number.isInteger(explicitBits) || explicitBits < 8 || explicitBits > 16)
    ) {
      throw new UsageError(`--page-bits: ${String(values['page-bits'])} is not an integer from 8 to 16`);
    }
    const qemu = parseQemuVersion(values.qemu);
    const paths = treeAndFlatPaths(io, positionals[0]!, values.flat as string | undefined);
    const r = await loadTreeDump(io, paths.tree, paths.flat, qemu);
    reportWarnings(io, 'flat', r);
    if (values.json) {
      const views = flatViewGroups(r.system).map(({ view, spaces }) => ({
        spaces: spaces.map((as) => ({ name: as.name, root: printedName(as.root) })),
        root: view.root ? printedName(view.root) : null,
        ranges: view.ranges.map((fr) => ({
          start: `0x${hex16(fr.start)}`,
          end: `0x${hex16(fr.start + fr.size - 1n)}`,
          region: printedName(fr.mr),
          offset: `0x${fr.offsetInRegion.toString(16)}`,
          priority: fr.mr.priority,
          readonly: fr.readonly,
          nonvolatile: fr.nonvolatile,
          text: formatFlatRange(fr, printsContainerType(r.qemu)),
        })),
      }));
      io.stdout.write(`${JSON.stringify({ views }, null, 2)}\n`);
      return 0;
    }
    const bits = explicitBits ?? r.pageBits ?? 12;
    // Never print a map that contradicts the dump the user gave: QEMU's own, then.
    if (r.mismatch && r.flat) io.stdout.write(formatFlatDump(r.flat, { dispatch: values.dispatch === true }));
    else {
      io.stdout.write(
        formatFlat(r.system, {
          dispatch: values.dispatch === true,
          pageBits: bits,
          qemu: r.qemu,
          ...r.suffixes,
        }),
      );
    }
    return 0;
  },
};
