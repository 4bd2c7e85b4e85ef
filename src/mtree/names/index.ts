/**
 * @module mtree/names
 * The generated per-version tables of QEMU region names (see {@link QemuNameTable}).
 */

import { QEMU_7_2_NAMES } from './qemu-7.2.js';
import { QEMU_10_0_NAMES } from './qemu-10.0.js';
import { QEMU_11_1_NAMES } from './qemu-11.1.js';
import { NameKinds, type QemuNameTable } from './table.js';

export { NameKinds, type QemuNameTable } from './table.js';

const TABLES: readonly QemuNameTable[] = [QEMU_7_2_NAMES, QEMU_10_0_NAMES, QEMU_11_1_NAMES];

/** QEMU versions with a name table. */
export const QEMU_TABLE_VERSIONS: readonly string[] = TABLES.map((t) => t.version);

/** `MAJOR.MINOR` as one comparable number. */
function versionNumber(v: string): number {
  const [a, b] = v.split('.').map(Number);
  return (a ?? 0) * 1000 + (b ?? 0);
}

/** The newest QEMU version with a name table. */
export function newestTableVersion(): string {
  return QEMU_TABLE_VERSIONS.reduce((a, b) => (versionNumber(b) > versionNumber(a) ? b : a));
}

/**
 * The name table for QEMU `version` (`MAJOR.MINOR`): the table of that version, else of the nearest
 * older one, else the oldest.
 */
export function nameKindsFor(version: string): NameKinds {
  const num = versionNumber;
  let best = TABLES[0]!;
  for (const t of TABLES) if (num(t.version) <= num(version) && num(t.version) >= num(best.version)) best = t;
  return new NameKinds(best);
}
