/**
 * @module core/address
 * Exact 64-bit quantities of the control plane. Guest physical addresses, region sizes and alias
 * offsets are `bigint` wherever the model is built or rendered, because QEMU's own types are u64 (and
 * Int128 for sizes: a region may span all 2^64 bytes). The guest-access hot path uses `number`
 * instead; it converts here, once, and refuses anything that would not round-trip exactly.
 */

import { AddressOverflowError, InvalidArgumentError } from './errors.js';

/** 2^64: the size of the whole guest physical address space. */
export const SIZE_2_64 = 1n << 64n;
/** 2^64 - 1: the highest guest address (`UINT64_MAX`). */
export const U64_MAX = SIZE_2_64 - 1n;

/** An address, size or offset given by a caller: a bigint, or a safe integer `number`. */
export type U64Input = bigint | number;

function toBig(value: U64Input, what: string): bigint {
  if (typeof value === 'bigint') return value;
  if (typeof value === 'number' && Number.isSafeInteger(value)) return BigInt(value);
  throw new InvalidArgumentError(
    `${what}: ${String(value)} is not an integer (use a safe integer number or a bigint)`,
  );
}

/** Checks an address or offset: an integer in [0, 2^64 - 1]. `what` names it in the error message. */
export function toU64(value: U64Input, what: string): bigint {
  const v = toBig(value, what);
  if (v < 0n) throw new InvalidArgumentError(`${what}: ${value} is negative`);
  if (v > U64_MAX) throw new InvalidArgumentError(`${what}: ${hex(v)} is beyond 2^64 - 1`);
  return v;
}

/**
 * Checks a region size: an integer in [0, 2^64]. As in QEMU, `UINT64_MAX` (2^64 - 1) means the whole
 * space and is stored as 2^64 (`memory_region_init` turns it into `int128_2_64()`).
 */
export function toSize(value: U64Input, what: string): bigint {
  const v = toBig(value, what);
  if (v < 0n) throw new InvalidArgumentError(`${what}: ${value} is negative`);
  if (v > SIZE_2_64) throw new InvalidArgumentError(`${what}: ${hex(v)} is beyond 2^64`);
  return v === U64_MAX ? SIZE_2_64 : v;
}

/** Checks a priority: a signed 32-bit integer, as QEMU's `int priority`. */
export function toPriority(value: number, what: string): number {
  if (!Number.isInteger(value) || value < -0x80000000 || value > 0x7fffffff) {
    throw new InvalidArgumentError(`${what}: ${String(value)} is not a signed 32-bit integer`);
  }
  return value;
}

/** Throws if `[addr, addr + len)` runs past 2^64. */
export function checkRange(addr: bigint, len: bigint, what: string): void {
  if (addr + len > SIZE_2_64) {
    throw new AddressOverflowError(
      `${what}: access of ${len} bytes at ${hex(addr)} wraps past 0xffffffffffffffff`,
    );
  }
}

/** `0x`-prefixed lowercase hex, for messages. */
export function hex(v: bigint | number): string {
  return v < 0 ? `-0x${(-BigInt(v)).toString(16)}` : `0x${v.toString(16)}`;
}

/** QEMU's `HWADDR_FMT_plx`: 16 lowercase hex digits, zero padded, no prefix. Wraps modulo 2^64. */
export function hex16(v: bigint): string {
  return BigInt.asUintN(64, v).toString(16).padStart(16, '0');
}

/** Checks a boolean argument (a truthy string such as `"yes"` is refused, not taken as true). */
export function toBool(value: boolean, what: string): boolean {
  if (typeof value !== 'boolean')
    throw new InvalidArgumentError(`${what}: ${printable(value)} is not a boolean`);
  return value;
}

/**
 * Checks a byte range `[offset, offset + length)` inside an object of `limit` bytes (a RAM block):
 * both non-negative safe integers, the range within the limit.
 */
export function checkSpan(offset: number, length: number, limit: number, what: string): void {
  if (!Number.isSafeInteger(offset) || offset < 0) {
    throw new InvalidArgumentError(`${what}: offset ${printable(offset)} is not a non-negative safe integer`);
  }
  if (!Number.isSafeInteger(length) || length < 0) {
    throw new InvalidArgumentError(`${what}: length ${printable(length)} is not a non-negative safe integer`);
  }
  if (offset + length > limit) {
    throw new InvalidArgumentError(
      `${what}: range ${hex(offset)}+${hex(length)} runs past the ${hex(limit)} bytes it may cover`,
    );
  }
}

/** A caller's value for an error message; never throws (a symbol cannot go into a template). */
export function printable(value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(value);
  if (typeof value === 'bigint') return `${value}n`;
  try {
    return String(value);
  } catch {
    return Object.prototype.toString.call(value);
  }
}
