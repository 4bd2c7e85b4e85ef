/**
 * @module mtree/ramblock
 * The `info ramblock` monitor text (QEMU `ram_block_format`): one row per RAM block in list order
 * with its page size, place in ram_addr space, used and reserved length. Free of Node imports so the
 * browser viewer can print it too.
 */

import type { RAMList } from '../core/ramblock.js';
import type { MemorySystem } from '../core/system.js';

const PREFIXES = ['', 'Ki', 'Mi', 'Gi', 'Ti', 'Pi', 'Ei'];

/** C's `%0.3g`: three significant digits, trailing zeros dropped. */
function g3(v: number): string {
  const s = v.toPrecision(3);
  const e = s.indexOf('e');
  if (e < 0) return s.includes('.') ? s.replace(/\.?0+$/, '') : s;
  const mant = s.slice(0, e).replace(/\.?0+$/, '');
  const exp = Number(s.slice(e + 1));
  return `${mant}e${exp < 0 ? '-' : '+'}${String(Math.abs(exp)).padStart(2, '0')}`;
}

/** QEMU `size_to_str`: a byte count as a human size with a binary prefix (`4 KiB`, `2 MiB`). */
export function sizeToStr(val: number): string {
  // frexp exponent of val*1024/1000, minus one, rounded down to a multiple of 10 (C division).
  const x = val / (1000 / 1024);
  const exp = x === 0 ? 0 : Math.floor(Math.log2(x)) + 1;
  const i = Math.trunc((exp - 1) / 10) * 10;
  return `${g3(val / 2 ** i)} ${PREFIXES[i / 10] ?? ''}B`;
}

const hex16 = (v: number): `0x${string}` => `0x${v.toString(16).padStart(16, '0')}`;

/** The `info ramblock` text of a RAM list (or of a machine), ending with a newline. */
export function formatRamblock(source: MemorySystem | RAMList): string {
  const list = 'ramList' in source ? source.ramList : source;
  let out = `${'Block Name'.padStart(24)} ${'PSize'.padStart(8)}  ${'Offset'.padStart(18)} ${'Used'.padStart(18)} ${'Total'.padStart(18)}\n`;
  for (const b of list.blocks) {
    out += `${b.idstr.padStart(24)} ${sizeToStr(b.pageSize).padStart(8)}  ${hex16(b.offset)} ${hex16(b.usedLength)} ${hex16(b.maxLength)}\n`;
  }
  return out;
}
