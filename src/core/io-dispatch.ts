/**
 * @module core/io-dispatch
 * Delivering an access to an I/O region's callbacks exactly as QEMU does
 * (`memory_region_dispatch_read/write`, `memory_region_access_valid`, `access_with_adjusted_size`,
 * `memory_access_size`).
 *
 * Values crossing this module are *device values*: the number whose serialisation in the device's
 * byte order gives the bytes a byte-addressed bus master sees. Values of up to 4 bytes are `number`s
 * (uint32 range) so that the common register access never touches bigint; 8-byte values are
 * `bigint`. The transaction result of the last dispatch is left in `IoDispatcher.result` so that the
 * hot path allocates nothing.
 */

import type { MemoryRegion } from './region.js';
import { HOST_LE } from './tlb.js';
import {
  type DeviceEndianness,
  type IoValue,
  MEMTX_ACCESS_ERROR,
  MEMTX_DECODE_ERROR,
  MEMTX_OK,
  MEMTXATTRS_UNSPECIFIED,
  type MemTxAttrs,
  type MemTxResult,
} from './types.js';

const TWO_32 = 4294967296;
// Index of the low and high 32-bit halves of a 64-bit word in a Uint32Array over it.
const LO = HOST_LE ? 0 : 1;
const HI = 1 - LO;

/** Mask of `size` bytes as a number (size ≤ 4). */
function maskNum(size: number): number {
  return size >= 4 ? 0xffffffff : (1 << (size * 8)) - 1;
}

/** Mask of `size` bytes as a bigint. */
function maskBig(size: number): bigint {
  return (1n << BigInt(size * 8)) - 1n;
}

/** Reverses the byte order of the low `size` bytes of a number value (size ≤ 4). */
export function bswapNum(v: number, size: number): number {
  switch (size) {
    case 1:
      return v & 0xff;
    case 2:
      return ((v & 0xff) << 8) | ((v >>> 8) & 0xff);
    case 4:
      return (((v & 0xff) << 24) | ((v & 0xff00) << 8) | ((v >>> 8) & 0xff00) | ((v >>> 24) & 0xff)) >>> 0;
    default: {
      let r = 0;
      for (let i = 0; i < size; i++) r = r * 256 + (Math.floor(v / 256 ** i) & 0xff);
      return r;
    }
  }
}

/** Reverses the byte order of the low `size` bytes of a bigint value. */
export function bswapBig(v: bigint, size: number): bigint {
  let r = 0n;
  for (let i = 0; i < size; i++) {
    r = (r << 8n) | ((v >> BigInt(8 * i)) & 0xffn);
  }
  return r;
}

/** A callback's value of up to 4 bytes as a uint32 (its low 32 bits when it gave a bigint). */
function u32(v: number | bigint): number {
  return typeof v === 'number' ? v >>> 0 : Number(BigInt.asUintN(32, v));
}

/** Reverses the byte order of a 32-bit value. */
function bswap32(v: number): number {
  return (((v & 0xff) << 24) | ((v & 0xff00) << 8) | ((v >>> 8) & 0xff00) | (v >>> 24)) >>> 0;
}

/** Largest power of two ≤ n (n ≥ 1). */
function pow2floor(n: number): number {
  return 2 ** Math.floor(Math.log2(n));
}

/** Whether a device is in the middle of an access to one of its own regions (per owner). */
export interface ReentrancyGuard {
  engaged: boolean;
}

/**
 * Dispatches accesses to I/O regions. One instance per {@link MemorySystem}: it holds the
 * re-entrancy state of the system's devices and the scratch slots that keep dispatch allocation-free.
 */
export class IoDispatcher {
  /** Result of the last {@link read} / {@link write}. */
  result: MemTxResult = MEMTX_OK;
  /** Whether the emulated target CPU is big-endian (`native` device byte order). */
  readonly targetBigEndian: boolean;
  // Value slots for `readWithAttrs`, one per nesting level: a device whose callback does DMA into
  // another device must not see that device's answer land in its own slot.
  private readonly slots: IoValue[] = [];
  private depth = 0;
  // Result of the callback that just returned; read by its caller before anything else dispatches.
  private callResult: MemTxResult = MEMTX_OK;
  // One state per owner and system (QEMU keeps `mem_reentrancy_guard` in the DeviceState). A flag
  // on an object the regions hold, rather than a Set of engaged owners: adding to and deleting from
  // a Set on every device access churns its hash table.
  private readonly guards = new WeakMap<object, ReentrancyGuard>();
  private readonly warned = new Set<MemoryRegion>();
  /** Receives one-time warnings (blocked re-entrant I/O); defaults to silence. */
  warn: (message: string) => void = () => {};

  constructor(targetBigEndian: boolean) {
    this.targetBigEndian = targetBigEndian;
  }

  /** @internal The re-entrancy state shared by the regions of device `owner`. */
  guardOf(owner: object): ReentrancyGuard {
    let g = this.guards.get(owner);
    if (g === undefined) {
      g = { engaged: false };
      this.guards.set(owner, g);
    }
    return g;
  }

  /** @internal Reports a blocked re-entrant access, once per region as QEMU's warn_report_once. */
  blocked(mr: MemoryRegion, offset: number): void {
    if (this.warned.has(mr)) return;
    this.warned.add(mr);
    this.warn(
      `Blocked re-entrant IO on MemoryRegion: ${mr.name ?? '(null)'} at addr: 0x${offset.toString(16).toUpperCase()}`,
    );
  }

  /** Whether `mr`'s registers are big-endian. */
  isBigEndian(mr: MemoryRegion): boolean {
    const e: DeviceEndianness = mr.ops.endianness ?? 'native';
    return e === 'big' || (e === 'native' && this.targetBigEndian);
  }

  /** QEMU `memory_access_size`: how many bytes of an `l`-byte access at `offset` go in one dispatch. */
  accessSize(mr: MemoryRegion, l: number, offset: number): number {
    let max = mr.ops.valid?.maxAccessSize || 4;
    if (!mr.ops.impl?.unaligned) {
      // Lowest set bit of the offset: its natural alignment (0 for offset 0: no bound).
      const align =
        offset === 0 ? 0 : offset % TWO_32 === 0 ? TWO_32 : ((offset % TWO_32) & -(offset % TWO_32)) >>> 0;
      if (align !== 0 && align < max) max = align;
    }
    if (l > max) l = max;
    return pow2floor(l);
  }

  /** QEMU `memory_region_access_valid`. */
  valid(mr: MemoryRegion, offset: number, size: number, isWrite: boolean, attrs: MemTxAttrs): boolean {
    const v = mr.ops.valid;
    if (v === undefined) return offset % size === 0;
    if (v.accepts && !v.accepts(offset, size, isWrite, attrs)) return false;
    if (!v.unaligned && offset % size !== 0) return false;
    if (!v.maxAccessSize) return true;
    return size <= v.maxAccessSize && size >= (v.minAccessSize ?? 0);
  }

  /**
   * QEMU `memory_region_dispatch_read` without the final byte-order adjustment: reads `size` bytes
   * (1, 2, 4 or 8) at `offset` of `mr` and returns the device value; the result code is left in
   * {@link result}. Invalid accesses return 0 with `MEMTX_DECODE_ERROR` and never reach the device.
   */
  read(mr: MemoryRegion, offset: number, size: number, attrs: MemTxAttrs): number | bigint {
    while (mr.alias) {
      offset += Number(mr.aliasOffset);
      mr = mr.alias;
    }
    if (!this.valid(mr, offset, size, false, attrs)) {
      this.result = MEMTX_DECODE_ERROR;
      return size === 8 ? 0n : 0;
    }
    return this.adjusted(mr, offset, size, attrs, false, 0);
  }

  /**
   * QEMU `memory_region_dispatch_write` without the byte-order adjustment: `value` is the device
   * value. Checks validity, then ioeventfds (a match signals the notifier instead of the device),
   * then splits the access for the device. The result code is left in {@link result}.
   */
  write(mr: MemoryRegion, offset: number, value: number | bigint, size: number, attrs: MemTxAttrs): void {
    while (mr.alias) {
      offset += Number(mr.aliasOffset);
      mr = mr.alias;
    }
    if (!this.valid(mr, offset, size, true, attrs)) {
      this.result = MEMTX_DECODE_ERROR;
      return;
    }
    if (mr.ioeventfds.length !== 0 && this.eventfd(mr, offset, value, size)) {
      this.result = MEMTX_OK;
      return;
    }
    this.adjusted(mr, offset, size, attrs, true, value);
  }

  /** QEMU `memory_region_dispatch_write_eventfds`. */
  private eventfd(mr: MemoryRegion, offset: number, value: number | bigint, size: number): boolean {
    const start = BigInt(offset);
    const data = BigInt(value);
    const bsize = BigInt(size);
    for (const fd of mr.ioeventfds) {
      if (fd.start !== start) continue;
      if (fd.size === 0n || (fd.size === bsize && (!fd.matchData || fd.data === data))) {
        fd.notifier.notify();
        return true;
      }
    }
    return false;
  }

  /** QEMU `access_with_adjusted_size`, with the device re-entrancy guard of QEMU 7.2.x. */
  private adjusted(
    mr: MemoryRegion,
    offset: number,
    size: number,
    attrs: MemTxAttrs,
    isWrite: boolean,
    value: number | bigint,
  ): number | bigint {
    const ops = mr.ops;
    const minA = ops.impl?.minAccessSize || 1;
    const maxA = ops.impl?.maxAccessSize || 4;
    const a = Math.max(Math.min(size, maxA), minA);
    // Only the access that engaged the guard releases it (QEMU 7.2.x stable, "stricter checks
    // prior to unsetting engaged_in_io"): an exempt access nested in a guarded one leaves it set.
    const guard = mr.guarded ? mr.guard : null;
    if (guard !== null) {
      if (guard.engaged) {
        this.blocked(mr, offset);
        this.result = MEMTX_ACCESS_ERROR;
        return size === 8 ? 0n : 0;
      }
      guard.engaged = true;
    }
    try {
      const be = this.isBigEndian(mr);
      if (size <= 4 && a <= 4) {
        return isWrite
          ? this.writeSmall(mr, offset, value as number, size, a, be, attrs)
          : this.readSmall(mr, offset, size, a, be, attrs);
      }
      return isWrite
        ? this.writeWide(mr, offset, BigInt(value), size, a, be, attrs)
        : this.readWide(mr, offset, size, a, be, attrs);
    } finally {
      if (guard !== null) guard.engaged = false;
    }
  }

  /** One read callback; its result is left in {@link callResult}. */
  private callRead(mr: MemoryRegion, offset: number, a: number, attrs: MemTxAttrs): number | bigint {
    const ops = mr.ops;
    if (ops.read) {
      // Set after the call: a nested dispatch inside it leaves its own result here.
      const v = ops.read(offset, a, attrs);
      this.callResult = MEMTX_OK;
      return v;
    }
    if (ops.readWithAttrs) {
      const d = this.depth++;
      let slot = this.slots[d];
      if (slot === undefined) {
        slot = { value: 0 };
        this.slots[d] = slot;
      }
      slot.value = 0;
      try {
        const r = ops.readWithAttrs(offset, a, attrs, slot);
        this.callResult = r;
        return slot.value;
      } finally {
        this.depth = d;
      }
    }
    this.callResult = MEMTX_OK;
    return 0;
  }

  private callWrite(
    mr: MemoryRegion,
    offset: number,
    v: number | bigint,
    a: number,
    attrs: MemTxAttrs,
  ): void {
    const ops = mr.ops;
    if (ops.write) {
      ops.write(offset, v, a, attrs);
      this.callResult = MEMTX_OK;
    } else if (ops.writeWithAttrs) {
      this.callResult = ops.writeWithAttrs(offset, v, a, attrs);
    } else {
      this.callResult = MEMTX_OK;
    }
  }

  private readSmall(
    mr: MemoryRegion,
    offset: number,
    size: number,
    a: number,
    be: boolean,
    attrs: MemTxAttrs,
  ): number {
    let res: MemTxResult = MEMTX_OK;
    const mask = maskNum(a);
    let v = 0;
    for (let i = 0; i < size; i += a) {
      const raw = this.callRead(mr, offset + i, a, attrs);
      res |= this.callResult;
      const t = (typeof raw === 'number' ? raw : Number(BigInt.asUintN(32, raw))) & mask;
      const shift = be ? (size - a - i) * 8 : i * 8;
      // Pieces never overlap, so adding is OR-ing; multiplication keeps values above 2^31 exact.
      v += shift >= 0 ? (t >>> 0) * 2 ** shift : Math.floor((t >>> 0) / 2 ** -shift);
    }
    this.result = res;
    return v % 2 ** (size * 8);
  }

  private writeSmall(
    mr: MemoryRegion,
    offset: number,
    value: number,
    size: number,
    a: number,
    be: boolean,
    attrs: MemTxAttrs,
  ): number {
    let res: MemTxResult = MEMTX_OK;
    const mask = maskNum(a);
    for (let i = 0; i < size; i += a) {
      const shift = be ? (size - a - i) * 8 : i * 8;
      const t = shift >= 0 ? Math.floor(value / 2 ** shift) : value * 2 ** -shift;
      this.callWrite(mr, offset + i, ((t % TWO_32) & mask) >>> 0, a, attrs);
      res |= this.callResult;
    }
    this.result = res;
    return 0;
  }

  private readWide(
    mr: MemoryRegion,
    offset: number,
    size: number,
    a: number,
    be: boolean,
    attrs: MemTxAttrs,
  ): number | bigint {
    let res: MemTxResult = MEMTX_OK;
    const mask = maskBig(a);
    let v = 0n;
    for (let i = 0; i < size; i += a) {
      const t = BigInt(this.callRead(mr, offset + i, a, attrs)) & mask;
      res |= this.callResult;
      const shift = BigInt(be ? (size - a - i) * 8 : i * 8);
      v |= shift >= 0n ? t << shift : t >> -shift;
    }
    this.result = res;
    v = BigInt.asUintN(size * 8, v);
    return size === 8 ? v : Number(v);
  }

  private writeWide(
    mr: MemoryRegion,
    offset: number,
    value: bigint,
    size: number,
    a: number,
    be: boolean,
    attrs: MemTxAttrs,
  ): number {
    let res: MemTxResult = MEMTX_OK;
    const mask = maskBig(a);
    for (let i = 0; i < size; i += a) {
      const shift = BigInt(be ? (size - a - i) * 8 : i * 8);
      const t = (shift >= 0n ? value >> shift : value << -shift) & mask;
      this.callWrite(mr, offset + i, a === 8 ? t : Number(t), a, attrs);
      res |= this.callResult;
    }
    this.result = res;
    return 0;
  }

  // Scratch word in which 64-bit values are taken apart and put together from their 32-bit halves,
  // so that an 8-byte access allocates no bigint but the one it returns. Each use writes and reads
  // it with no callback in between, so nested dispatches cannot disturb it.
  private readonly w64 = new BigUint64Array(1);
  private readonly w32 = new Uint32Array(this.w64.buffer);

  /**
   * @internal A typed read of `size` bytes at `offset` of `mr` with unspecified attributes, for an
   * access the caller knows is valid and served by the plain `read` callback (`mr.plainReadSizes`
   * has `size`, `offset` is size-aligned) while the owner's guard is not engaged: QEMU's
   * `memory_region_dispatch_read` for that case, i.e. `access_with_adjusted_size` under the
   * re-entrancy guard, then `adjust_endianness` to the requested byte order. Returns the value the
   * typed load returns (a bigint for 8 bytes); the result is always MEMTX_OK.
   */
  readPlain(mr: MemoryRegion, offset: number, size: number, bigEndian: boolean): number | bigint {
    const guard = mr.guarded ? mr.guard : null;
    if (guard === null) return this.readPieces(mr, offset, size, bigEndian);
    guard.engaged = true;
    try {
      return this.readPieces(mr, offset, size, bigEndian);
    } finally {
      guard.engaged = false;
    }
  }

  /**
   * @internal The write counterpart of {@link readPlain} (`mr.plainWriteSizes` has `size`, so the
   * region has no ioeventfd to match). `value` is the typed store's value, a bigint for 8 bytes.
   */
  writePlain(
    mr: MemoryRegion,
    offset: number,
    value: number | bigint,
    size: number,
    bigEndian: boolean,
  ): void {
    const guard = mr.guarded ? mr.guard : null;
    if (guard === null) {
      this.writePieces(mr, offset, value, size, bigEndian);
      return;
    }
    guard.engaged = true;
    try {
      this.writePieces(mr, offset, value, size, bigEndian);
    } finally {
      guard.engaged = false;
    }
  }

  /**
   * The pieces of a plain read: callbacks of the implemented width `w`, each masked to `w` bytes
   * and placed at `i * 8` bits (little-endian device) or `(size - w - i) * 8` (big-endian; negative
   * when widening, i.e. the high end of the wider value), as QEMU's `memory_region_read_accessor`
   * places them. Values of up to 4 bytes stay in int32 arithmetic: a piece and its place never
   * reach past bit 31.
   */
  private readPieces(mr: MemoryRegion, offset: number, size: number, bigEndian: boolean): number | bigint {
    const read = mr.ops.read!;
    const w = Math.max(Math.min(size, mr.implMax), mr.implMin);
    const be = mr.bigEndianOps;
    const swap = size !== 1 && be !== bigEndian;
    if (size === 8) {
      if (w === 8) {
        const v = BigInt.asUintN(64, BigInt(read(offset, 8, MEMTXATTRS_UNSPECIFIED)));
        return swap ? this.swap64(v) : v;
      }
      const m = w === 4 ? 0xffffffff : (1 << (w * 8)) - 1;
      let lo = 0;
      let hi = 0;
      for (let i = 0; i < 8; i += w) {
        const t = (u32(read(offset + i, w, MEMTXATTRS_UNSPECIFIED)) & m) >>> 0;
        const at = be ? 8 - w - i : i;
        if (at >= 4) hi = (hi | (t << ((at - 4) * 8))) >>> 0;
        else lo = (lo | (t << (at * 8))) >>> 0;
      }
      const w32 = this.w32;
      if (swap) {
        w32[LO] = bswap32(hi);
        w32[HI] = bswap32(lo);
      } else {
        w32[LO] = lo;
        w32[HI] = hi;
      }
      return this.w64[0]!;
    }
    let v: number;
    if (w === size) {
      v = u32(read(offset, w, MEMTXATTRS_UNSPECIFIED));
    } else if (w > size) {
      // Widened: the guest's bytes are the low end of the wider value, or its high end on a
      // big-endian device.
      const t = u32(read(offset, w, MEMTXATTRS_UNSPECIFIED));
      v = be ? t >>> ((w - size) * 8) : t;
    } else {
      const m = (1 << (w * 8)) - 1;
      v = 0;
      for (let i = 0; i < size; i += w) {
        const t = u32(read(offset + i, w, MEMTXATTRS_UNSPECIFIED)) & m;
        v = (v | (t << ((be ? size - w - i : i) * 8))) >>> 0;
      }
    }
    v = size === 4 ? v >>> 0 : v & ((1 << (size * 8)) - 1);
    return swap ? bswapNum(v, size) : v;
  }

  /** The pieces of a plain write, taken from the device value as {@link readPieces} places them. */
  private writePieces(
    mr: MemoryRegion,
    offset: number,
    value: number | bigint,
    size: number,
    bigEndian: boolean,
  ): void {
    const write = mr.ops.write!;
    const w = Math.max(Math.min(size, mr.implMax), mr.implMin);
    const be = mr.bigEndianOps;
    const swap = size !== 1 && be !== bigEndian;
    if (size === 8) {
      const big = value as bigint;
      if (w === 8) {
        write(offset, swap ? this.swap64(big) : BigInt.asUintN(64, big), 8, MEMTXATTRS_UNSPECIFIED);
        return;
      }
      const w32 = this.w32;
      this.w64[0] = big;
      let lo = w32[LO]!;
      let hi = w32[HI]!;
      if (swap) {
        const t = bswap32(lo);
        lo = bswap32(hi);
        hi = t;
      }
      const m = w === 4 ? 0xffffffff : (1 << (w * 8)) - 1;
      for (let i = 0; i < 8; i += w) {
        const at = be ? 8 - w - i : i;
        const half = at >= 4 ? hi : lo;
        write(offset + i, ((half >>> ((at & 3) * 8)) & m) >>> 0, w, MEMTXATTRS_UNSPECIFIED);
      }
      return;
    }
    let v = size === 4 ? (value as number) >>> 0 : (value as number) & ((1 << (size * 8)) - 1);
    if (swap) v = bswapNum(v, size);
    if (w === size) {
      write(offset, v, w, MEMTXATTRS_UNSPECIFIED);
    } else if (w > size) {
      // Widened: the value goes to the low end of the wider one, or to its high end on a
      // big-endian device; the other bytes are zero.
      write(offset, be ? (v << ((w - size) * 8)) >>> 0 : v, w, MEMTXATTRS_UNSPECIFIED);
    } else {
      const m = (1 << (w * 8)) - 1;
      for (let i = 0; i < size; i += w) {
        write(offset + i, (v >>> ((be ? size - w - i : i) * 8)) & m, w, MEMTXATTRS_UNSPECIFIED);
      }
    }
  }

  /** Reverses the byte order of a 64-bit value through the scratch word. */
  private swap64(v: bigint): bigint {
    const w32 = this.w32;
    this.w64[0] = v;
    const lo = w32[LO]!;
    w32[LO] = bswap32(w32[HI]!);
    w32[HI] = bswap32(lo);
    return this.w64[0]!;
  }
}
