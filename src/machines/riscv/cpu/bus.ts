/**
 * @module machines/riscv/cpu/bus
 * What the RISC-V hart needs from memory: the typed helpers of memtree's `AddressSpace` and
 * `CpuAccess`, by the same names, so that either of them — or a flat typed-array bus for speed
 * comparisons — can be the hart's memory. Every fetch, load, store and page-table walk of the hart
 * goes through one of these calls; the hart never holds a view of guest RAM.
 */

/**
 * A {@link Bus.lastResult} bit meaning "this page is not here yet" (a postcopy destination whose
 * page has not arrived): the hart does not fault, it stops before the instruction and executes it
 * again on its next run, once the page is there.
 */
export const BUS_PAGE_MISSING = 0x100;

/**
 * Physical memory as the hart sees it. Addresses are byte addresses below 2^53; values of up to
 * 4 bytes are unsigned numbers (stores truncate), 8-byte values bigints. After each access
 * {@link Bus.lastResult} is `0` (MEMTX_OK) or an error, which the hart turns into an access fault.
 */
export interface Bus {
  /** Loads a byte. */
  ldub(addr: number): number;
  /** Loads a little-endian 16-bit value. */
  lduwLe(addr: number): number;
  /** Loads a little-endian 32-bit value (unsigned). */
  ldlLe(addr: number): number;
  /** Loads a little-endian 64-bit value. */
  ldqLe(addr: number): bigint;
  /** Stores a byte. */
  stb(addr: number, v: number): void;
  /** Stores a little-endian 16-bit value. */
  stwLe(addr: number, v: number): void;
  /** Stores a little-endian 32-bit value. */
  stlLe(addr: number, v: number): void;
  /** Stores a little-endian 64-bit value. */
  stqLe(addr: number, v: bigint): void;
  /** Result of the last access: 0 (MEMTX_OK) or a MEMTX_* error bit set. */
  readonly lastResult: number;
}
