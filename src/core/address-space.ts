/**
 * @module core/address-space
 * `AddressSpace`: a named view of a root region, and the typed guest accesses through it (QEMU
 * `AddressSpace`, `address_space_init` / `_destroy`, the `address_space_ld*` and `st*` helpers).
 *
 * The work behind it is split as QEMU splits it:
 * - core/listener-diff: what listeners hear when the view or the ioeventfds change (memory.c);
 * - core/physmem: translation and the exact buffer, ROM and map paths (physmem.c);
 * - core/cputlb: the RAM windows, TLBs and device-page caches and the typed-access miss paths
 *   (the role of accel/tcg/cputlb.c).
 *
 * This file keeps the state those share, the typed helpers' inline probes and the shared miss
 * paths they call, which must stay methods of this class with their state in its own fields: each
 * helper is a probe of the RAM window (the RAM range of the last TLB fill, as typed-array views),
 * or of the TLB for big-endian ones, a few int32 operations and one element access, and a call to
 * `loadMiss` / `storeMiss` (the device page and the TLB, then cputlb's exact path). No bigint and
 * no allocation on the way to RAM. The miss paths are methods rather than functions of core/cputlb
 * because a call to an imported function made the helpers around it slower (docs/architecture.md
 * lists this and the other measured rules behind the shape of the helpers).
 */

import { printable, SIZE_2_64, toBool, toU64, type U64Input } from './address.js';
import {
  type CpuStoreWindow,
  disarm,
  EMPTY_U8,
  EMPTY_U16,
  EMPTY_U32,
  EMPTY_U64,
  flushDeviceWrites,
  flushTlb,
  flushWriteTlb,
  loadSlow,
  NO_WINDOW,
  type RamWindow,
  storeSlow,
} from './cputlb.js';
import { InvalidArgumentError } from './errors.js';
import type { FlatRange, FlatView, MemoryRegionSection } from './flatview.js';
import type { MemoryListener } from './listener.js';
import {
  type AddressSpaceIoeventfd,
  announceIoeventfds,
  coalescedNotify,
  collectIoeventfds,
  insertListenerEntry,
  type ListenerEntry,
  removeListenerEntry,
  topologyPass,
} from './listener-diff.js';
import { accessValid, addressSpaceRw, map, unmap, writeRom } from './physmem.js';
import type { CoalescedRange, MemoryRegion } from './region.js';
import type { MemorySystem } from './system.js';
import { DEVICE_PAGES, DevicePages, HOST_LE, IoTlb, Tlb } from './tlb.js';
import {
  type EventNotifier,
  MEMTX_OK,
  MEMTXATTRS_UNSPECIFIED,
  type MemoryRegionOps,
  type MemTxAttrs,
  type MemTxResult,
} from './types.js';
import { maskNumber, readDv, writeDv } from './values.js';

const PAGE_BITS = 12;
const PAGE_SIZE = 1 << PAGE_BITS;
const PAGE_MASK = PAGE_SIZE - 1;
const DEVICE_MASK = DEVICE_PAGES - 1;
type ReadFn = NonNullable<MemoryRegionOps['read']>;
type WriteFn = NonNullable<MemoryRegionOps['write']>;
/** @internal A callback the device-page cache calls directly. */
export type DeviceFn = ReadFn | WriteFn;
// The window probes test "k >= 0 and k is size-aligned" as one AND with the sign bit and the
// alignment bits (faster than two tests; docs/architecture.md has the figures).
const SIGN_OR_ODD = 0x80000001 | 0;
const SIGN_OR_MISALIGNED_4 = 0x80000003 | 0;
const SIGN_OR_MISALIGNED_8 = 0x80000007 | 0;

export type { AddressSpaceIoeventfd };

/** The result of {@link AddressSpace.lookup}: what serves a guest address. */
export interface AddressLookup {
  /** The flat range containing the address. */
  readonly range: FlatRange;
  /** The terminating region serving it. */
  readonly region: MemoryRegion;
  /** Offset of the address inside `region`. */
  readonly offset: bigint;
}

/** A mapping returned by {@link AddressSpace.map}. */
export interface Mapping {
  /** The bytes: a view of guest RAM, or a bounce buffer. */
  readonly data: Uint8Array;
  /** True when `data` is the system's bounce buffer (I/O or ROM-device memory). */
  readonly bounce: boolean;
  /** Guest address of `data[0]`. */
  readonly addr: bigint;
  /** Whether it was mapped for writing. */
  readonly isWrite: boolean;
  /** @internal */
  readonly region: MemoryRegion;
  /** @internal */
  readonly offset: number;
}

/**
 * A named guest address space (QEMU `AddressSpace`), e.g. `memory` or `I/O`. Create it with
 * {@link MemorySystem.addressSpace} or `new AddressSpace(system, root, name)`.
 */
export class AddressSpace {
  /** The system this address space belongs to. */
  readonly system: MemorySystem;
  /** The root region. */
  readonly root: MemoryRegion;
  /** Name (`anonymous` by default); not unique. */
  readonly name: string;
  /**
   * Result of the last typed load or store ({@link ldub} ... {@link stqBe}, {@link load},
   * {@link store}) made on this address space; kept here so that the hot path returns plain values
   * and allocates nothing. A device callback that makes accesses of its own in the middle of one
   * (DMA) sees their results here while it runs; when the outer access returns, this is its result.
   */
  get lastResult(): MemTxResult {
    return this.res;
  }

  /** @internal Sets {@link lastResult} to MEMTX_OK (an access completed without the helpers). */
  resultOk(): void {
    this.res = MEMTX_OK;
  }
  /** ioeventfds collected from the current view, in QEMU's order. */
  get ioeventfds(): readonly AddressSpaceIoeventfd[] {
    return this.fds;
  }
  private fds: readonly AddressSpaceIoeventfd[] = [];

  /** @internal The current flat view (read it through {@link currentView}). */
  view: FlatView;
  private readonly listenerList: ListenerEntry[] = [];
  private destroyed = false;

  // State shared with core/cputlb and core/physmem, which do the work behind the helpers. All of
  // it is @internal: nothing outside the core may touch it.

  /**
   * @internal The result of the last typed access. The inline window probes do not write it:
   * storing it cost a quarter of a hot access. Instead, whenever it is not MEMTX_OK the windows
   * those probes read are replaced by empty ones ("armed"), so the next access takes the
   * out-of-line path, which restores them and resets the result first.
   */
  res: MemTxResult = MEMTX_OK;
  /**
   * @internal The address of an access that missed the inline probe, handed to the miss path in a
   * field: as an argument, an address above 2^30 (not a small integer) would be boxed on every
   * call, and device registers live up there.
   */
  missAddr = 0.5;
  /** @internal */
  armed = false;

  /** @internal Read and write TLBs (see core/tlb): a ROM page is cached for reading but not for writing. */
  readonly rt = new Tlb();
  /** @internal */
  readonly wt = new Tlb();
  /**
   * @internal The RAM windows: one stretch of guest RAM that sits in one host chunk at a constant
   * distance (a "huge page" entry in front of the TLB). A hit costs a subtraction, a range check
   * and one typed-array access, which is what lets sequential and random accesses inside a large
   * RAM region run near the speed of a plain typed array. It covers whole-page sections only, so
   * the section rules hold for every access it serves; while some client logs the range, the
   * write window covers only pages already dirty for every such client. Separate windows for
   * reads and writes, like the TLBs.
   */
  readWin: RamWindow = NO_WINDOW;
  /** @internal */
  writeWin: RamWindow = NO_WINDOW;
  // What the inline probes read: the windows above, or NO_WINDOW while armed (see cputlb's
  // publish): the first guest address, the views, and the length in bytes. A probe takes the
  // offset o in the window and k = o | 0, and hits when k === o (an integer), k is aligned for
  // the size and 0 <= k < length: int32 operations only (faster than an index computed in
  // floating point and an unsigned compare, which V8 does in floating point). Whole pages make
  // an aligned k below the length a whole element. Never reading outside a typed array matters:
  // once V8 has seen one out-of-bounds read at a site it compiles every later access there in a
  // mode that made hits several times slower, and emulators miss the window all the time
  // (devices, other RAM ranges).
  /** @internal */
  rLo = 0;
  /** @internal */
  rU8: Uint8Array = EMPTY_U8;
  /** @internal */
  rU16: Uint16Array = EMPTY_U16;
  /** @internal */
  rU32: Uint32Array = EMPTY_U32;
  /** @internal */
  rU64: BigUint64Array = EMPTY_U64;
  /** @internal */
  rN8 = 0;
  /** @internal */
  wLo = 0;
  /** @internal */
  wU8: Uint8Array = EMPTY_U8;
  /** @internal */
  wU16: Uint16Array = EMPTY_U16;
  /** @internal */
  wU32: Uint32Array = EMPTY_U32;
  /** @internal */
  wU64: BigUint64Array = EMPTY_U64;
  /** @internal */
  wN8 = 0;
  /** @internal The CpuAccess store windows that follow the write window (see cputlb's publish). */
  readonly cpuWindows: CpuStoreWindow[] = [];
  /** @internal Device pages, for register accesses that skip the flat-view search. */
  readonly it = new IoTlb<MemoryRegion>();
  /** @internal Device pages per kind of typed access (see DevicePages), indexed from deviceKind(). */
  readonly dev = new DevicePages<MemoryRegion, DeviceFn>();
  /**
   * @internal Its arrays, held here too: one dependent load less on the way to a register. Shared
   * empty tables until the first fill, which sets these again (cputlb's deviceFill).
   */
  devE = this.dev.e;
  /** @internal */
  devFn = this.dev.fn;
  /** @internal The offset in the region of the device page ioFast() found. */
  ioOffset = 0;

  /** @internal Outputs of physmem's translate(), kept in fields so that translation allocates nothing. */
  tMr!: MemoryRegion;
  /** @internal */
  tXlat = 0;
  /** @internal */
  tLen = 0;
  /** @internal The result of physmem's last access chunk. */
  chunkResult: MemTxResult = MEMTX_OK;

  /** QEMU `address_space_init`: the view is computed at once, even inside a transaction. */
  constructor(system: MemorySystem, root: MemoryRegion, name = 'anonymous') {
    system.checkOwn(root, `root of address space "${name}"`);
    this.system = system;
    this.root = root;
    this.name = name;
    system.rememberAddressSpace(this);
    this.view = system.viewFor(root);
    this.updateIoeventfds();
  }

  /** The current flat view. */
  get currentView(): FlatView {
    return this.view;
  }

  /** Removes the address space from its system (QEMU `address_space_destroy`). */
  destroy(): void {
    if (this.destroyed) return;
    if (this.listenerList.length) {
      throw new InvalidArgumentError(`address space "${this.name}" still has listeners; remove them first`);
    }
    this.destroyed = true;
    this.system.forgetAddressSpace(this);
  }

  // ---------------------------------------------------------------------------------------------
  // Listeners (the diffs are core/listener-diff's)

  /** Registers `listener` on this address space (QEMU `memory_listener_register`). */
  addListener(listener: MemoryListener): void {
    this.system.registerListener(listener, this);
  }

  /** Unregisters `listener` (QEMU `memory_listener_unregister`). */
  removeListener(listener: MemoryListener): void {
    this.system.unregisterListener(listener);
  }

  /** @internal */
  insertListener(listener: MemoryListener, priority: number): void {
    insertListenerEntry(this.listenerList, listener, priority);
  }

  /** @internal */
  removeListenerEntry(listener: MemoryListener): void {
    removeListenerEntry(this.listenerList, listener);
  }

  /** @internal QEMU `address_space_set_flatview` with the topology diff (`address_space_update_topology_pass`). */
  setFlatView(next: FlatView): void {
    const old = this.view;
    if (old === next && next === this.system.emptyView) return;
    const ls = this.listenerList;
    if (ls.length) {
      topologyPass(ls, old, next, false);
      topologyPass(ls, old, next, true);
    }
    this.view = next;
    if (old !== next) this.flushTlb();
  }

  /** @internal QEMU `flat_range_coalesced_io_notify`. */
  coalescedNotify(fr: FlatRange, cr: CoalescedRange, add: boolean, view: FlatView): void {
    coalescedNotify(this.listenerList, fr, cr, add, view);
  }

  /** @internal QEMU `address_space_update_ioeventfds` + `address_space_add_del_ioeventfds`. */
  updateIoeventfds(): void {
    // Most machines have no ioeventfd at all: then there is nothing to collect or to announce.
    if (this.system.ioeventfdCount === 0 && this.fds.length === 0) return;
    const fresh = collectIoeventfds(this.view);
    const old = this.fds;
    if (this.listenerList.length && (old.length || fresh.length)) {
      announceIoeventfds(this.listenerList, old, fresh, this.view);
    }
    this.fds = fresh;
  }

  // ---------------------------------------------------------------------------------------------
  // Lookup

  /**
   * What serves guest address `addr`: the flat range, the terminating region and the offset in it;
   * null where nothing is mapped (QEMU would use the unassigned region).
   */
  lookup(addr: U64Input): AddressLookup | null {
    const a = toU64(addr, `lookup in "${this.name}"`);
    const fr = this.view.rangeAt(a);
    if (!fr) return null;
    return { range: fr, region: fr.mr, offset: a - fr.start + fr.offsetInRegion };
  }

  /**
   * QEMU `memory_region_find` relative to this address space: the lowest flat range piece that
   * intersects `[addr, addr + size)`, as a section, or null.
   */
  findSection(addr: U64Input, size: U64Input): MemoryRegionSection | null {
    const a = toU64(addr, 'findSection address');
    const s = BigInt(size);
    const view = this.view;
    for (const fr of view.ranges) {
      if (fr.end <= a) continue;
      if (fr.start >= a + s) break;
      const start = fr.start > a ? fr.start : a;
      const end = fr.end < a + s ? fr.end : a + s;
      return {
        mr: fr.mr,
        fv: view,
        offsetWithinRegion: fr.offsetInRegion + (start - fr.start),
        offsetWithinAddressSpace: start,
        size: end - start,
        readonly: fr.readonly,
        nonvolatile: fr.nonvolatile,
      };
    }
    return null;
  }

  // ---------------------------------------------------------------------------------------------
  // Buffer accesses (core/physmem)

  /**
   * Reads `buf.length` bytes at guest address `addr` (QEMU `address_space_read`). The access is
   * split at range boundaries: RAM is copied, I/O regions get callbacks sized as QEMU sizes them.
   * Returns the OR of the results of all pieces; unassigned bytes read as 0 with
   * `MEMTX_DECODE_ERROR`. The result is returned, not stored: {@link lastResult} belongs to the
   * typed helpers and is left as it was.
   */
  read(addr: U64Input, buf: Uint8Array, attrs: MemTxAttrs = MEMTXATTRS_UNSPECIFIED): MemTxResult {
    return addressSpaceRw(this, addr, buf, false, attrs);
  }

  /** Writes `buf` at guest address `addr` (QEMU `address_space_write`); see {@link read}. */
  write(addr: U64Input, buf: Uint8Array, attrs: MemTxAttrs = MEMTXATTRS_UNSPECIFIED): MemTxResult {
    return addressSpaceRw(this, addr, buf, true, attrs);
  }

  /** QEMU `address_space_rw`. */
  rw(
    addr: U64Input,
    buf: Uint8Array,
    isWrite: boolean,
    attrs: MemTxAttrs = MEMTXATTRS_UNSPECIFIED,
  ): MemTxResult {
    return addressSpaceRw(this, addr, buf, isWrite, attrs);
  }

  /**
   * QEMU `address_space_write_rom`: writes into RAM and ROM (and ROM devices in romd mode) as a
   * firmware loader or debugger would, ignoring read-only flags; other chunks are skipped.
   */
  writeRom(addr: U64Input, buf: Uint8Array): MemTxResult {
    return writeRom(this, addr, buf);
  }

  /**
   * QEMU `address_space_access_valid`: whether an access of `len` bytes at `addr` would be accepted
   * by every device it reaches (RAM is always valid).
   */
  accessValid(
    addr: U64Input,
    len: number,
    isWrite: boolean,
    attrs: MemTxAttrs = MEMTXATTRS_UNSPECIFIED,
  ): boolean {
    return accessValid(this, addr, len, isWrite, attrs);
  }

  /**
   * QEMU `address_space_map`: direct access to guest memory. For RAM the returned `data` is a view
   * of guest memory itself, as long as the range stays contiguous in one region and one host chunk
   * (it may be shorter than `len`; map the rest separately). For anything else the system's single
   * bounce buffer (at most one page) is returned, pre-filled for reads; null if it is in use. Release
   * with {@link unmap}.
   */
  map(
    addr: U64Input,
    len: number,
    isWrite: boolean,
    attrs: MemTxAttrs = MEMTXATTRS_UNSPECIFIED,
  ): Mapping | null {
    return map(this, addr, len, isWrite, attrs);
  }

  /**
   * QEMU `address_space_unmap`: releases a mapping. `accessLen` bytes (from the start) were
   * written: direct mappings mark them dirty, the bounce buffer writes them back to the guest.
   */
  unmap(mapping: Mapping, accessLen = mapping.isWrite ? mapping.data.length : 0): void {
    unmap(this, mapping, accessLen);
  }

  // ---------------------------------------------------------------------------------------------
  // Typed loads and stores (QEMU address_space_ld*/st*). Addresses are numbers below 2^53 or, through
  // load()/store(), bigints. Values of up to 4 bytes are numbers, 8-byte values bigints.
  //
  // Each helper is one probe (the RAM window, or the TLB for big-endian ones) and a call to the
  // shared miss path, so that V8 inlines it into the caller's loop. `>>> 0` on what the miss path
  // returns tells V8 both paths yield a uint32: otherwise it merges them as tagged values, and
  // every window hit tagged its value (allocating a heap number for words of 2^31 and above).
  // The probes also validate: a fraction, a negative number or NaN never hits the window or
  // reproduces a cached tag, so bad addresses always reach the slow path, which throws.
  // The last argument of loadMiss/storeMiss is `deviceKind(isWrite, size, bigEndian)` written as a
  // literal: computing it in the miss path cost a tenth of a register access, and an imported
  // constant would cost each helper a load.

  /** Loads a byte. */
  ldub(addr: number): number {
    if (typeof addr !== 'number') return this.badAccess(addr, undefined, 1);
    const o = addr - this.rLo;
    const k = o | 0;
    if (k === o && k >= 0 && k < this.rN8) return this.rU8[k]!;
    this.missAddr = addr;
    return (this.loadMiss(1, false, 0) as number) >>> 0;
  }

  /** Loads a little-endian 16-bit value. */
  lduwLe(addr: number): number {
    if (typeof addr !== 'number') return this.badAccess(addr, undefined, 2);
    const o = addr - this.rLo;
    const k = o | 0;
    if (k === o && (k & SIGN_OR_ODD) === 0 && k < this.rN8) return this.rU16[k >> 1]!;
    this.missAddr = addr;
    return (this.loadMiss(2, false, 64) as number) >>> 0;
  }

  /** Loads a big-endian 16-bit value. */
  lduwBe(addr: number): number {
    if (typeof addr !== 'number') return this.badAccess(addr, undefined, 2);
    const t = this.rt;
    const e = t.e;
    const off = addr & PAGE_MASK;
    const i = ((addr >>> PAGE_BITS) & t.mask) << 2;
    if (e[i] === addr - off && off <= PAGE_SIZE - 2) {
      this.res = MEMTX_OK;
      return t.dv[e[i + 2]! | 0]!.getUint16((e[i + 1]! | 0) + off, false);
    }
    this.missAddr = addr;
    return (this.loadMiss(2, true, 128) as number) >>> 0;
  }

  /** Loads a little-endian 32-bit value. */
  ldlLe(addr: number): number {
    if (typeof addr !== 'number') return this.badAccess(addr, undefined, 4);
    const o = addr - this.rLo;
    const k = o | 0;
    if (k === o && (k & SIGN_OR_MISALIGNED_4) === 0 && k < this.rN8) return this.rU32[k >> 2]!;
    this.missAddr = addr;
    return (this.loadMiss(4, false, 192) as number) >>> 0;
  }

  /** Loads a big-endian 32-bit value. */
  ldlBe(addr: number): number {
    if (typeof addr !== 'number') return this.badAccess(addr, undefined, 4);
    const t = this.rt;
    const e = t.e;
    const off = addr & PAGE_MASK;
    const i = ((addr >>> PAGE_BITS) & t.mask) << 2;
    if (e[i] === addr - off && off <= PAGE_SIZE - 4) {
      this.res = MEMTX_OK;
      return t.dv[e[i + 2]! | 0]!.getUint32((e[i + 1]! | 0) + off, false);
    }
    this.missAddr = addr;
    return (this.loadMiss(4, true, 256) as number) >>> 0;
  }

  /** Loads a little-endian 64-bit value. */
  ldqLe(addr: number): bigint {
    if (typeof addr !== 'number') return this.badAccess(addr, undefined, 8);
    const o = addr - this.rLo;
    const k = o | 0;
    if (k === o && (k & SIGN_OR_MISALIGNED_8) === 0 && k < this.rN8) return this.rU64[k >> 3]!;
    this.missAddr = addr;
    return this.loadMiss(8, false, 320) as bigint;
  }

  /** Loads a big-endian 64-bit value. */
  ldqBe(addr: number): bigint {
    if (typeof addr !== 'number') return this.badAccess(addr, undefined, 8);
    const t = this.rt;
    const e = t.e;
    const off = addr & PAGE_MASK;
    const i = ((addr >>> PAGE_BITS) & t.mask) << 2;
    if (e[i] === addr - off && off <= PAGE_SIZE - 8) {
      this.res = MEMTX_OK;
      return t.dv[e[i + 2]! | 0]!.getBigUint64((e[i + 1]! | 0) + off, false);
    }
    this.missAddr = addr;
    return this.loadMiss(8, true, 384) as bigint;
  }

  /** Stores a byte (the value is truncated to 8 bits). */
  stb(addr: number, value: number): void {
    if (typeof addr !== 'number' || typeof value !== 'number') this.badAccess(addr, value, 1);
    const o = addr - this.wLo;
    const k = o | 0;
    if (k === o && k >= 0 && k < this.wN8) {
      this.wU8[k] = value;
      return;
    }
    this.missAddr = addr;
    this.storeMiss(1, value, false, 448);
  }

  /** Stores a little-endian 16-bit value (truncated to 16 bits). */
  stwLe(addr: number, value: number): void {
    if (typeof addr !== 'number' || typeof value !== 'number') this.badAccess(addr, value, 2);
    const o = addr - this.wLo;
    const k = o | 0;
    if (k === o && (k & SIGN_OR_ODD) === 0 && k < this.wN8) {
      this.wU16[k >> 1] = value;
      return;
    }
    this.missAddr = addr;
    this.storeMiss(2, value, false, 512);
  }

  /** Stores a big-endian 16-bit value. */
  stwBe(addr: number, value: number): void {
    if (typeof addr !== 'number' || typeof value !== 'number') this.badAccess(addr, value, 2);
    const t = this.wt;
    const e = t.e;
    const off = addr & PAGE_MASK;
    const i = ((addr >>> PAGE_BITS) & t.mask) << 2;
    if (e[i] === addr - off && off <= PAGE_SIZE - 2) {
      this.res = MEMTX_OK;
      t.dv[e[i + 2]! | 0]!.setUint16((e[i + 1]! | 0) + off, value, false);
      return;
    }
    this.missAddr = addr;
    this.storeMiss(2, value, true, 576);
  }

  /** Stores a little-endian 32-bit value (truncated to 32 bits). */
  stlLe(addr: number, value: number): void {
    if (typeof addr !== 'number' || typeof value !== 'number') this.badAccess(addr, value, 4);
    const o = addr - this.wLo;
    const k = o | 0;
    if (k === o && (k & SIGN_OR_MISALIGNED_4) === 0 && k < this.wN8) {
      this.wU32[k >> 2] = value;
      return;
    }
    this.missAddr = addr;
    this.storeMiss(4, value, false, 640);
  }

  /** Stores a big-endian 32-bit value. */
  stlBe(addr: number, value: number): void {
    if (typeof addr !== 'number' || typeof value !== 'number') this.badAccess(addr, value, 4);
    const t = this.wt;
    const e = t.e;
    const off = addr & PAGE_MASK;
    const i = ((addr >>> PAGE_BITS) & t.mask) << 2;
    if (e[i] === addr - off && off <= PAGE_SIZE - 4) {
      this.res = MEMTX_OK;
      t.dv[e[i + 2]! | 0]!.setUint32((e[i + 1]! | 0) + off, value, false);
      return;
    }
    this.missAddr = addr;
    this.storeMiss(4, value, true, 704);
  }

  /** Stores a little-endian 64-bit value (truncated to 64 bits). */
  stqLe(addr: number, value: bigint): void {
    if (typeof addr !== 'number' || typeof value !== 'bigint') this.badAccess(addr, value, 8);
    const o = addr - this.wLo;
    const k = o | 0;
    if (k === o && (k & SIGN_OR_MISALIGNED_8) === 0 && k < this.wN8) {
      this.wU64[k >> 3] = value;
      return;
    }
    this.missAddr = addr;
    this.storeMiss(8, value, false, 768);
  }

  /** Stores a big-endian 64-bit value. */
  stqBe(addr: number, value: bigint): void {
    if (typeof addr !== 'number' || typeof value !== 'bigint') this.badAccess(addr, value, 8);
    const t = this.wt;
    const e = t.e;
    const off = addr & PAGE_MASK;
    const i = ((addr >>> PAGE_BITS) & t.mask) << 2;
    if (e[i] === addr - off && off <= PAGE_SIZE - 8) {
      this.res = MEMTX_OK;
      t.dv[e[i + 2]! | 0]!.setBigUint64((e[i + 1]! | 0) + off, value, false);
      return;
    }
    this.missAddr = addr;
    this.storeMiss(8, value, true, 832);
  }

  /**
   * A typed helper called with something other than a number address (or, for a store, a value of
   * the wrong type): throws the typed error. Kept out of line so that the helpers stay small, and
   * reached before the bad value can be stored in a field the hot path reads.
   */
  private badAccess(addr: unknown, value: unknown, size: number): never {
    if (typeof addr !== 'number') {
      throw new InvalidArgumentError(
        `access in "${this.name}": address ${printable(addr)} is not a number (the typed helpers take number addresses; use load/store for bigint ones)`,
      );
    }
    throw new InvalidArgumentError(
      `store of ${size} bytes in "${this.name}": value ${printable(value)} must be a ${size === 8 ? 'bigint' : 'number'}`,
    );
  }

  /**
   * The rest of every typed load (the address is in `this.missAddr`): the device page of this kind of
   * access, the read TLB, then {@link loadSlow}. One function for all sizes and byte orders on
   * purpose: its bytecode exceeds what V8 inlines, so it is never inlined into the helpers, whose
   * optimized code then stays small enough for V8 to inline them into the caller's loop (once V8
   * has optimized a helper together with its miss path, it counts that whole size against inlining
   * the helper).
   */
  private loadMiss(size: number, bigEndian: boolean, kind: number): number | bigint {
    // `kind`: the first device-page entry of this kind of access (see the typed helpers).
    const addr = this.missAddr;
    const off = addr & PAGE_MASK;
    // The device page first: a register access is a call either way, while a RAM access that
    // got here is already on the slower TLB path. A device access sets the result itself, so it
    // may leave the windows disarmed (the next RAM access restores them).
    const k = kind | ((addr >>> PAGE_BITS) & DEVICE_MASK);
    const de = this.devE;
    if (de[2 * k] === addr - (addr & (PAGE_SIZE - size))) {
      const fn = this.devFn[k] as ReadFn | null;
      if (fn !== null) {
        const r = fn((de[2 * k + 1]! | 0) + off, size, MEMTXATTRS_UNSPECIFIED);
        // Set after the call: a nested access inside the callback may have failed.
        this.res = MEMTX_OK;
        if (size === 8) return BigInt.asUintN(64, BigInt(r));
        return maskNumber(typeof r === 'number' ? r : Number(BigInt.asUintN(32, r)), size);
      }
      const mr = this.dev.mr[k]!;
      const g = mr.guard;
      // A device re-entering itself falls through: the general path refuses it and warns.
      if (g === null || !g.engaged) {
        const v = this.system.dispatcher.readPlain(mr, (de[2 * k + 1]! | 0) + off, size, bigEndian);
        this.res = MEMTX_OK;
        return v;
      }
    }
    if (this.armed) disarm(this);
    const t = this.rt;
    const e = t.e;
    const i = ((addr >>> PAGE_BITS) & t.mask) << 2;
    if (e[i] === addr - off && off <= PAGE_SIZE - size) {
      const b = (e[i + 1]! | 0) + off;
      const c = e[i + 2]! | 0;
      if (HOST_LE && !bigEndian) {
        switch (size) {
          case 1:
            return t.u8[c]![b]!;
          case 2:
            if ((b & 1) === 0) return t.u16[c]![b >>> 1]!;
            break;
          case 4:
            if ((b & 3) === 0) return t.u32[c]![b >>> 2]!;
            break;
          default:
            if ((b & 7) === 0) return t.u64[c]![b >>> 3]!;
        }
      }
      return readDv(t.dv[c]!, b, size, bigEndian);
    }
    return loadSlow(this, addr, size, bigEndian);
  }

  /** The rest of every typed store (see {@link loadMiss}, whose layout it shares). */
  private storeMiss(size: number, value: number | bigint, bigEndian: boolean, kind: number): void {
    const addr = this.missAddr;
    const off = addr & PAGE_MASK;
    const k = kind | ((addr >>> PAGE_BITS) & DEVICE_MASK);
    const de = this.devE;
    // The helpers checked the value's type (a bigint for 8 bytes, else a number) before calling.
    if (de[2 * k] === addr - (addr & (PAGE_SIZE - size))) {
      const fn = this.devFn[k] as WriteFn | null;
      if (fn !== null) {
        const v = size === 8 ? BigInt.asUintN(64, value as bigint) : maskNumber(value as number, size);
        fn((de[2 * k + 1]! | 0) + off, v, size, MEMTXATTRS_UNSPECIFIED);
        this.res = MEMTX_OK;
        return;
      }
      const mr = this.dev.mr[k]!;
      const g = mr.guard;
      if (g === null || !g.engaged) {
        this.system.dispatcher.writePlain(mr, (de[2 * k + 1]! | 0) + off, value, size, bigEndian);
        this.res = MEMTX_OK;
        return;
      }
    }
    if (this.armed) disarm(this);
    const t = this.wt;
    const e = t.e;
    const i = ((addr >>> PAGE_BITS) & t.mask) << 2;
    if (
      e[i] === addr - off &&
      off <= PAGE_SIZE - size &&
      typeof value === (size === 8 ? 'bigint' : 'number')
    ) {
      const b = (e[i + 1]! | 0) + off;
      const c = e[i + 2]! | 0;
      if (HOST_LE && !bigEndian) {
        switch (size) {
          case 1:
            t.u8[c]![b] = value as number;
            return;
          case 2:
            if ((b & 1) === 0) {
              t.u16[c]![b >>> 1] = value as number;
              return;
            }
            break;
          case 4:
            if ((b & 3) === 0) {
              t.u32[c]![b >>> 2] = value as number;
              return;
            }
            break;
          default:
            if ((b & 7) === 0) {
              t.u64[c]![b >>> 3] = value as bigint;
              return;
            }
        }
      }
      writeDv(t.dv[c]!, b, size, value, bigEndian);
      return;
    }
    storeSlow(this, addr, size, value, bigEndian);
  }

  /**
   * A typed load of `size` bytes at any 64-bit address, with attributes: the general form behind
   * the `ld*` helpers. Values of 8 bytes are bigints, smaller ones numbers.
   */
  load(
    addr: U64Input,
    size: 1 | 2 | 4 | 8,
    bigEndian = false,
    attrs: MemTxAttrs = MEMTXATTRS_UNSPECIFIED,
  ): number | bigint {
    this.checkGeneral(size, bigEndian, attrs);
    return loadSlow(this, addr, size, bigEndian, attrs);
  }

  /** A typed store of `size` bytes at any 64-bit address, with attributes. */
  store(
    addr: U64Input,
    size: 1 | 2 | 4 | 8,
    value: number | bigint,
    bigEndian = false,
    attrs: MemTxAttrs = MEMTXATTRS_UNSPECIFIED,
  ): void {
    this.checkGeneral(size, bigEndian, attrs);
    storeSlow(this, addr, size, value, bigEndian, attrs);
  }

  /** Checks the arguments of {@link load} and {@link store} besides the address and value. */
  private checkGeneral(size: number, bigEndian: boolean, attrs: MemTxAttrs): void {
    if (size !== 1 && size !== 2 && size !== 4 && size !== 8) {
      throw new InvalidArgumentError(`access in "${this.name}": size ${printable(size)} is not 1, 2, 4 or 8`);
    }
    toBool(bigEndian, `access in "${this.name}": bigEndian`);
    if (typeof attrs !== 'object' || attrs === null) {
      throw new InvalidArgumentError(`access in "${this.name}": attrs ${printable(attrs)} is not an object`);
    }
  }

  // ---------------------------------------------------------------------------------------------
  // Flushes (core/cputlb)

  /** Drops the write kinds of the device-page caches (a region's ioeventfds changed). */
  flushDeviceWrites(): void {
    flushDeviceWrites(this);
  }

  /** Drops every cached write translation (after dirty bits were cleared). */
  flushWriteTlb(): void {
    flushWriteTlb(this);
  }

  /** Drops every cached translation (after a view switch, or when dirty logging changes). */
  flushTlb(): void {
    flushTlb(this);
  }

  toString(): string {
    return `AddressSpace("${this.name}")`;
  }
}

export { isDirectRead, isDirectWrite } from './physmem.js';
export type { EventNotifier };
export { SIZE_2_64 };
