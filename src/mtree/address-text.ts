/**
 * @module mtree/address-text
 * The one syntax for guest addresses that people type, shared by the `memtree` command line and the
 * viewer (docs/viewer.md, "Addresses", describes it for users). Browser-safe.
 */

import { InvalidArgumentError } from '../core/errors.js';

/** Text that is not an address, or an address beyond 2^64 - 1. Code `ERR_INVALID_ARGUMENT`. */
export class AddressSyntaxError extends InvalidArgumentError {}

const UNIT: Record<string, bigint> = {
  k: 1n << 10n,
  m: 1n << 20n,
  g: 1n << 30n,
  t: 1n << 40n,
  p: 1n << 50n,
  e: 1n << 60n,
};

/**
 * Reads an address typed by a person:
 * - `0x` hexadecimal: `0xfee00000`, also with `_`, `'` or spaces between digit groups
 *   (`0xfee0_0000`);
 * - decimal: `1048576`;
 * - a decimal number of binary units: `640K`, `4G`, `4GiB`, `1T` (K, M, G, T, P, E = 2^10 ... 2^60);
 * - bare hexadecimal as copied from an `info mtree` dump: digits with a letter a-f in them
 *   (`fee00000`), or with a leading zero (`0000000000100000`, QEMU's zero-padded 16 digits).
 * Bare digits without a letter and without a leading zero are decimal. The value must fit in 64 bits.
 * Throws {@link AddressSyntaxError}.
 */
export function parseAddress(text: string): bigint {
  const t = text
    .trim()
    .replace(/(?<=[0-9a-fA-F])[_'\s]+(?=[0-9a-fA-F])/g, '')
    .toLowerCase();
  const hexMatch = /^0x([0-9a-f]+)$/.exec(t);
  const unitMatch = /^([0-9]+)\s*([kmgtpe])(?:i?b)?$/.exec(t);
  let v: bigint;
  if (hexMatch) v = BigInt(`0x${hexMatch[1]}`);
  else if (unitMatch) v = BigInt(unitMatch[1]!) * UNIT[unitMatch[2]!]!;
  else if (/^[1-9][0-9]*$|^0$/.test(t)) v = BigInt(t);
  else if (/^[0-9a-f]+$/.test(t)) v = BigInt(`0x${t}`);
  else {
    const shown = text.length > 40 ? `${text.slice(0, 40)}…` : text;
    throw new AddressSyntaxError(
      `${JSON.stringify(shown)} is not an address (e.g. 0xfee00000, fee00000, 4G or 1048576)`,
    );
  }
  if (v >= 1n << 64n) {
    throw new AddressSyntaxError(`0x${v.toString(16)} is beyond the 64-bit address space (2^64 - 1)`);
  }
  return v;
}

/** An address as memtree prints it where it may be copied: `0x` and lowercase hex, no separators. */
export function formatAddress(v: bigint): string {
  return `0x${v.toString(16)}`;
}
