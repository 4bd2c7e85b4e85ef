/**
 * @module viewer/sources
 * Turning dump text into a machine model in the browser: the `info mtree -D` text (and, when given,
 * the `info mtree -f` text of the same moment) is read by `mtree/parse`, rebuilt into core regions by
 * `mtree/rebuild`, and rendered by the core, exactly as the CLI does. A pasted text may hold both
 * dumps one after the other; it is split at its first `FlatView #` line.
 */

import { MemtreeError } from '../core/errors.js';
import { parseFlatText, parseMtreeText } from '../mtree/parse.js';
import { rebuild } from '../mtree/rebuild.js';
import { buildMachine, type MachineModel } from './model.js';

/** A dump as text: the tree (`info mtree -D` or `info mtree`) and optionally the flat view. */
export interface DumpText {
  readonly label: string;
  readonly mtree: string;
  readonly flat?: string | null;
}

/** Splits text that may hold a tree dump followed (or preceded) by an `info mtree -f` dump. */
export function splitDumpText(text: string): { mtree: string; flat: string | null } {
  const t = text.replace(/\r\n/g, '\n');
  const lines = t.split('\n');
  const flatAt = lines.findIndex((l) => l.startsWith('FlatView #'));
  if (flatAt < 0) return { mtree: t, flat: null };
  const treeAt = lines.findIndex((l) => l.startsWith('address-space: '));
  if (treeAt > flatAt) {
    return { mtree: lines.slice(treeAt).join('\n'), flat: lines.slice(0, treeAt).join('\n') };
  }
  return { mtree: lines.slice(0, flatAt).join('\n'), flat: lines.slice(flatAt).join('\n') };
}

/** Rebuilds a machine from dump text. Throws a {@link MemtreeError} naming the bad line. */
export function machineFromText(dump: DumpText): MachineModel {
  if (!/^address-space: /m.test(dump.mtree)) {
    throw new MemtreeError(
      'ERR_PARSE',
      `${dump.label}: no "address-space:" line; paste the output of "info mtree -D" (optionally followed by "info mtree -f")`,
    );
  }
  const tree = parseMtreeText(dump.mtree, dump.label);
  const flat = dump.flat ? parseFlatText(dump.flat, `${dump.label} (flat)`) : undefined;
  const rebuilt = rebuild(tree, flat);
  const model = buildMachine(rebuilt.system, dump.label);
  const m = rebuilt.mismatch;
  if (!m) return model;
  const mismatch =
    `The regions rebuilt from this dump do not render to the flat view given with it: in ${m.space}, ` +
    `QEMU has ${m.qemu === null ? 'nothing' : `"${m.qemu.trim()}"`} where the rebuild has ` +
    `${m.ours === null ? 'nothing' : `"${m.ours.trim()}"`}. The map shows the rebuild; QEMU's own flat view is the authority.`;
  return { ...model, mismatch };
}
