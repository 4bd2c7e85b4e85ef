/**
 * @module core/values
 * Device values and bytes: the conversions between the `number | bigint` values that callbacks and
 * typed accesses carry and the bytes a byte-addressed bus master sees (a value of N bytes
 * appears as its serialisation in the device's byte order).
 */

import { bswapBig, bswapNum } from './io-dispatch.js';

/** The low `size` bytes (1, 2 or 4) of a number value, as an unsigned number. */
export function maskNumber(v: number, size: number): number {
  return size === 4 ? v >>> 0 : size === 2 ? v & 0xffff : v & 0xff;
}

/** Reverses the byte order of a `size`-byte value (number or bigint). */
export function swap(v: number | bigint, size: number): number | bigint {
  return typeof v === 'bigint' ? bswapBig(v, size) : bswapNum(v, size);
}

/** Truncates a value to `size` bytes, like a C cast to the access width. */
export function truncate(v: number | bigint, size: number): number | bigint {
  if (typeof v === 'bigint') return BigInt.asUintN(size * 8, v);
  return size === 4 ? v >>> 0 : v & ((1 << (size * 8)) - 1);
}

/** Reads a `size`-byte value at `i` of a DataView in the given byte order (8 bytes: a bigint). */
export function readDv(dv: DataView, i: number, size: number, be: boolean): number | bigint {
  switch (size) {
    case 1:
      return dv.getUint8(i);
    case 2:
      return dv.getUint16(i, !be);
    case 4:
      return dv.getUint32(i, !be);
    default:
      return dv.getBigUint64(i, !be);
  }
}

/** Writes a `size`-byte value at `i` of a DataView in the given byte order. */
export function writeDv(dv: DataView, i: number, size: number, v: number | bigint, be: boolean): void {
  switch (size) {
    case 1:
      dv.setUint8(i, v as number);
      break;
    case 2:
      dv.setUint16(i, v as number, !be);
      break;
    case 4:
      dv.setUint32(i, v as number, !be);
      break;
    default:
      dv.setBigUint64(i, v as bigint, !be);
  }
}

/** The device value of `l` bytes at `buf[pos]` in the device's byte order (QEMU `ldn_he_p` + adjust). */
export function bytesToValue(buf: Uint8Array, pos: number, l: number, be: boolean): number | bigint {
  if (l === 8) {
    let v = 0n;
    for (let k = 0; k < 8; k++) v = (v << 8n) | BigInt(buf[pos + (be ? k : 7 - k)]!);
    return v;
  }
  let v = 0;
  for (let k = 0; k < l; k++) v = v * 256 + buf[pos + (be ? k : l - 1 - k)]!;
  return v;
}

/** Serialises a device value into `l` bytes in the device's byte order. */
export function valueToBytes(v: number | bigint, buf: Uint8Array, pos: number, l: number, be: boolean): void {
  if (typeof v === 'bigint') {
    for (let k = 0; k < l; k++) {
      buf[pos + (be ? l - 1 - k : k)] = Number((v >> BigInt(8 * k)) & 0xffn);
    }
    return;
  }
  for (let k = 0; k < l; k++) {
    buf[pos + (be ? l - 1 - k : k)] = v & 0xff;
    v = Math.floor(v / 256);
  }
}
