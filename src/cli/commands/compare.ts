/**
 * @module cli/commands/compare
 * `memtree compare A B`: canonical equality of two `info mtree` texts (block order, FlatView
 * numbers and the order of a view's address spaces ignored), or of the dumps of two capture folders.
 */

import { basename } from 'node:path';
import { MemtreeError } from '../../core/errors.js';
import { type CompareResult, compareMtreeText } from '../../mtree/compare.js';
import { isFlatText } from '../../mtree/parse.js';
import type { CliIo, Command } from '../command.js';
import { UsageError } from '../command.js';
import { FLAT_FILE, fileInFolder, isFolder, TREE_FILES } from '../dump-paths.js';
import { parseCommandArgs, sourceName } from './flat.js';

const help = `Usage: memtree compare A B [--json]

Compares two \`info mtree\` texts (both tree form or both flat form; '-' reads standard input for
one of them) the way QEMU's output must be compared: the order of address-space groups,
memory-region sections and FlatViews, the FlatView numbers and the order of the AS lines inside a
FlatView are not properties of the machine and are ignored. Everything else must match byte for
byte. A tree dump and a flat dump are different kinds of text: comparing them is an error.

A and B may be folders written by \`memtree capture\`: every dump file both have (mtree-D.txt,
mtree.txt, flat.txt, flat-d.txt) is compared. A folder against a file compares the folder's file
of the same name, or else of the same kind (flat.txt or mtree-D.txt).

Exit status: 0 when equal, 1 when different (the first difference is printed) or on bad input,
2 on usage errors.

Options:
  --json      print {"equal": true | false, "firstDifference"?: text}, and for folders
              {"equal", "files": [{"file", "equal", "firstDifference"?}]}
  -h, --help  show this help

Examples:
  memtree compare pc/flat.txt my-flat.txt
  memtree compare fixtures/pc-512m out/pc-512m      # two capture folders
`;

const FOLDER_FILES = [...TREE_FILES, FLAT_FILE, 'flat-d.txt'];

function kindOf(text: string): string {
  return isFlatText(text) ? 'an `info mtree -f` dump' : 'an `info mtree` tree dump';
}

async function compareFiles(io: CliIo, pa: string, pb: string): Promise<CompareResult> {
  const a = await io.readText(pa);
  const b = await io.readText(pb);
  if (isFlatText(a) !== isFlatText(b)) {
    throw new MemtreeError(
      'ERR_INVALID_ARGUMENT',
      `${sourceName(pa)} is ${kindOf(a)} and ${sourceName(pb)} is ${kindOf(b)}: compare needs two of the same kind`,
    );
  }
  return compareMtreeText(a, b);
}

/** The file of folder `dir` that matches the file `other` (same name, else same kind). */
async function counterpart(io: CliIo, dir: string, other: string): Promise<string> {
  const same = other === '-' ? undefined : fileInFolder(io, dir, basename(other));
  if (same) return same;
  const want = isFlatText(await io.readText(other)) ? [FLAT_FILE] : TREE_FILES;
  for (const f of want) {
    const p = fileInFolder(io, dir, f);
    if (p) return p;
  }
  throw new MemtreeError(
    'ERR_IO',
    `${dir}: a folder without ${want.join(' or ')} to compare with ${sourceName(other)}`,
  );
}

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
    let [pa, pb] = positionals as [string, string];
    if (pa === '-' && pb === '-') throw new UsageError('A and B cannot both be standard input');
    const da = isFolder(io, pa);
    const db = isFolder(io, pb);
    if (da && db) {
      const files = FOLDER_FILES.filter((f) => fileInFolder(io, pa, f) && fileInFolder(io, pb, f));
      if (files.length === 0) {
        throw new MemtreeError(
          'ERR_IO',
          `${pa} and ${pb} have no dump file in common (${FOLDER_FILES.join(', ')})`,
        );
      }
      const results: { file: string; equal: boolean; firstDifference?: string }[] = [];
      for (const f of files) {
        const r = await compareFiles(io, fileInFolder(io, pa, f)!, fileInFolder(io, pb, f)!);
        results.push({ file: f, ...r });
      }
      const equal = results.every((r) => r.equal);
      if (values.json) io.stdout.write(`${JSON.stringify({ equal, files: results }, null, 2)}\n`);
      else {
        for (const r of results) {
          io.stdout.write(r.equal ? `${r.file}: equal\n` : `${r.file}: different: ${r.firstDifference}\n`);
        }
      }
      return equal ? 0 : 1;
    }
    if (da) pa = await counterpart(io, pa, pb);
    else if (db) pb = await counterpart(io, pb, pa);
    const res = await compareFiles(io, pa, pb);
    if (values.json) io.stdout.write(`${JSON.stringify(res, null, 2)}\n`);
    else if (res.equal) io.stdout.write('equal\n');
    else io.stdout.write(`different: ${res.firstDifference}\n`);
    return res.equal ? 0 : 1;
  },
};
