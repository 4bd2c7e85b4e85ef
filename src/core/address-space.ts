/**
 * @module core/address-space
 * `AddressSpace`: a named view of a root region, and the guest-access paths through it (QEMU
 * `AddressSpace`, `flatview_translate`, `flatview_read/write`, the `address_space_ld*` and `st*` helpers,
 * `address_space_map`).
 *
 * Hot path. A typed load or store first checks the RAM window (the RAM range of the last TLB
 * fill, as typed-array views): a few int32 operations and one element access. Everything else goes
 * to one shared miss path: the device page of that kind of access, then a software TLB (the idea
 * of QEMU's per-CPU TLB: a direct-mapped table from guest page to the host chunk that holds it and
 * the index of the page in that chunk), then the exact slow path. No bigint and no allocation on
 * the way to RAM. Separate tables serve reads and writes (a ROM page is readable but not writable
 * directly). Only pages that one direct RAM range covers entirely are cached; everything else
 * (sub-page ranges, IOMMUs, pages some dirty-logging client still sees clean) takes the exact slow
 * path. The TLB starts small and grows while it keeps missing (QEMU sizes its TLB dynamically too),
 * and every cache is dropped whenever the address space switches to a new flat view. The shape of
 * the helpers follows what V8 does with them; docs/architecture.md lists the measured rules.
 */

import { checkRange, printable, SIZE_2_64, toBool, toU64, U64_MAX, type U64Input } from './address.js';
import { AddressOverflowError, InvalidArgumentError } from './errors.js';
import {
  type FlatRange,
  type FlatView,
  type MemoryRegionSection,
  sectionEnd,
  sectionEndBig,
  sectionFromRange,
} from './flatview.js';
import { IOMMU_RO, IOMMU_WO } from './iommu.js';
import type { MemoryListener } from './listener.js';
import { RAM_CHUNK_SIZE } from './ramblock.js';
import { type CoalescedRange, ioeventfdBefore, type MemoryRegion, type RegionIoeventfd } from './region.js';
import type { MemorySystem } from './system.js';
import { DEVICE_PAGES, DevicePages, deviceKind, HOST_LE, IoTlb, Tlb } from './tlb.js';
import {
  type EventNotifier,
  MEMTX_ACCESS_ERROR,
  MEMTX_DECODE_ERROR,
  MEMTX_OK,
  MEMTXATTRS_UNSPECIFIED,
  type MemTxAttrs,
  type MemTxResult,
} from './types.js';
import { bytesToValue, maskNumber, readDv, swap, truncate, valueToBytes, writeDv } from './values.js';

const PAGE_BITS = 12;
const PAGE_SIZE = 1 << PAGE_BITS;
const PAGE_MASK = PAGE_SIZE - 1;
const SAFE_LIMIT = 2 ** 53;
const DEVICE_MASK = DEVICE_PAGES - 1;
// The window probes test "k >= 0 and k is size-aligned" as one AND with the sign bit and the
// alignment bits (faster than two tests; docs/architecture.md has the figures).
const SIGN_OR_ODD = 0x80000001 | 0;
const SIGN_OR_MISALIGNED_4 = 0x80000003 | 0;
const SIGN_OR_MISALIGNED_8 = 0x80000007 | 0;
// Pages a dirty-run search looks at in each direction (whole bitmap words at a time).
const DIRTY_SCAN = 1 << 16;

/** An ioeventfd as collected for an address space: the region's entry moved to guest addresses. */
export interface AddressSpaceIoeventfd extends RegionIoeventfd {
  /** Region the ioeventfd belongs to. */
  readonly mr: MemoryRegion;
}

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

interface ListenerEntry {
  readonly listener: MemoryListener;
  readonly priority: number;
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
  ioeventfds: AddressSpaceIoeventfd[] = [];

  private view: FlatView;
  private readonly listenerList: ListenerEntry[] = [];
  private destroyed = false;

  // The result of the last typed access. The inline window probes do not write it: storing it
  // cost a quarter of a hot access. Instead, whenever it is not MEMTX_OK the
  // windows those probes read are replaced by empty ones ("armed"), so the next access takes the
  // out-of-line path, which restores them and resets the result first.
  private res: MemTxResult = MEMTX_OK;
  // The address of an access that missed the inline probe, handed to the miss path in a field: as
  // an argument, an address above 2^30 (not a small integer) would be boxed on every call, and
  // device registers live up there.
  private missAddr = 0.5;
  private armed = false;

  /** Read and write TLBs (see core/tlb): a ROM page is cached for reading but not for writing. */
  private readonly rt = new Tlb();
  private readonly wt = new Tlb();
  /**
   * The RAM window: one stretch of guest RAM that sits in one host chunk at a constant distance
   * (a "huge page" entry in front of the TLB). A hit costs a subtraction, a range check and one
   * typed-array access, which is what lets sequential and random accesses inside a large RAM
   * region run near the speed of a plain typed array. It covers whole-page sections only, so the
   * section rules hold for every access it serves; while some client logs the range, the
   * write window covers only pages already dirty for every such client (see setDirtyWindow).
   * Separate windows for reads and writes, like the TLBs.
   */
  private readWin: RamWindow = NO_WINDOW;
  private writeWin: RamWindow = NO_WINDOW;
  // What the inline probes read: the windows above, or NO_WINDOW while armed (see publish()):
  // the first guest address, the views, and the length in bytes. A probe takes the offset o in
  // the window and k = o | 0, and hits when k === o (an integer), k is aligned for the size and
  // 0 <= k < length: int32 operations only (faster than an index computed in
  // floating point and an unsigned compare, which V8 does in floating point). Whole pages make
  // an aligned k below the length a whole element. Never reading outside a typed array matters:
  // once V8 has seen one out-of-bounds read at a site it compiles every later access there in a
  // mode that made hits several times slower, and emulators miss the window all the time
  // (devices, other RAM ranges).
  private rLo = 0;
  private rU8: Uint8Array = EMPTY_U8;
  private rU16: Uint16Array = EMPTY_U16;
  private rU32: Uint32Array = EMPTY_U32;
  private rU64: BigUint64Array = EMPTY_U64;
  private rN8 = 0;
  private wLo = 0;
  private wU8: Uint8Array = EMPTY_U8;
  private wU16: Uint16Array = EMPTY_U16;
  private wU32: Uint32Array = EMPTY_U32;
  private wU64: BigUint64Array = EMPTY_U64;
  private wN8 = 0;
  /** Device pages, for register accesses that skip the flat-view search. */
  private readonly it = new IoTlb<MemoryRegion>();
  // Device pages per kind of typed access (see DevicePages), indexed from deviceKind().
  private readonly dev = new DevicePages<MemoryRegion, DeviceFn>();
  // Its arrays, held here too: one dependent load less on the way to a register.
  private readonly devE = this.dev.e;
  private readonly devFn = this.dev.fn;

  // Outputs of translate(), kept in fields so that translation allocates nothing.
  private tMr!: MemoryRegion;
  private tXlat = 0;
  private tLen = 0;

  /** QEMU `address_space_init`: the view is computed at once, even inside a transaction. */
  constructor(system: MemorySystem, root: MemoryRegion, name = 'anonymous') {
    system.checkOwn(root, `root of address space "${name}"`);
    this.system = system;
    this.root = root;
    this.name = name;
    system.addressSpaces.push(this);
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
  // Listeners

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
    const list = this.listenerList;
    let i = list.length;
    while (i > 0 && list[i - 1]!.priority > priority) i--;
    list.splice(i, 0, { listener, priority });
  }

  /** @internal */
  removeListenerEntry(listener: MemoryListener): void {
    const i = this.listenerList.findIndex((e) => e.listener === listener);
    if (i >= 0) this.listenerList.splice(i, 1);
  }

  /** @internal QEMU `address_space_set_flatview` with the topology diff (`address_space_update_topology_pass`). */
  setFlatView(next: FlatView): void {
    const old = this.view;
    if (old === next && next === this.system.emptyView) return;
    const ls = this.listenerList;
    if (ls.length) {
      this.topologyPass(old, next, false);
      this.topologyPass(old, next, true);
    }
    this.view = next;
    if (old !== next) this.flushTlb();
  }

  private topologyPass(old: FlatView, next: FlatView, adding: boolean): void {
    const o = old.ranges;
    const n = next.ranges;
    let i = 0;
    let j = 0;
    while (i < o.length || j < n.length) {
      const fo = o[i];
      const fn = n[j];
      if (fo && (!fn || fo.start < fn.start || (fo.start === fn.start && !fo.equals(fn)))) {
        if (!adding) {
          for (const cr of fo.mr.coalesced) this.coalescedNotify(fo, cr, false, old);
          const sec = sectionFromRange(fo, old);
          this.callReverse((l) => l.regionDel?.(sec));
        }
        i++;
      } else if (fo && fn && fo.equals(fn)) {
        if (adding) {
          const sec = sectionFromRange(fn, old);
          this.callForward((l) => l.regionNop?.(sec));
          if (fn.dirtyLogMask & ~fo.dirtyLogMask) {
            this.callForward((l) => l.logStart?.(sec, fo.dirtyLogMask, fn.dirtyLogMask));
          }
          if (fo.dirtyLogMask & ~fn.dirtyLogMask) {
            this.callReverse((l) => l.logStop?.(sec, fo.dirtyLogMask, fn.dirtyLogMask));
          }
        }
        i++;
        j++;
      } else if (fn) {
        if (adding) {
          const sec = sectionFromRange(fn, old);
          this.callForward((l) => l.regionAdd?.(sec));
          for (const cr of fn.mr.coalesced) this.coalescedNotify(fn, cr, true, old);
        }
        j++;
      }
    }
  }

  private callForward(f: (l: MemoryListener) => void): void {
    for (const e of this.listenerList) f(e.listener);
  }

  private callReverse(f: (l: MemoryListener) => void): void {
    const ls = this.listenerList;
    for (let i = ls.length - 1; i >= 0; i--) f(ls[i]!.listener);
  }

  /** @internal QEMU `flat_range_coalesced_io_notify`. */
  coalescedNotify(fr: FlatRange, cr: CoalescedRange, add: boolean, view: FlatView): void {
    const shift = fr.start - fr.offsetInRegion;
    const s = cr.start + shift;
    const e = s + cr.size;
    const contains = (a: bigint, b: bigint, x: bigint) => x >= a && x < b;
    if (!(contains(fr.start, fr.end, s) || contains(s, e, fr.start))) return;
    const is = s > fr.start ? s : fr.start;
    const ie = e < fr.end ? e : fr.end;
    const sec = sectionFromRange(fr, view);
    if (add) this.callForward((l) => l.coalescedIoAdd?.(sec, is, ie - is));
    else this.callReverse((l) => l.coalescedIoDel?.(sec, is, ie - is));
  }

  /** @internal QEMU `address_space_update_ioeventfds` + `address_space_add_del_ioeventfds`. */
  updateIoeventfds(): void {
    // Most machines have no ioeventfd at all: then there is nothing to collect or to announce.
    if (this.system.ioeventfdCount === 0 && this.ioeventfds.length === 0) return;
    const view = this.view;
    const fresh: AddressSpaceIoeventfd[] = [];
    for (const fr of view.ranges) {
      const fds = fr.mr.ioeventfds;
      if (fds.length === 0) continue;
      const shift = fr.start - fr.offsetInRegion;
      for (const fd of fds) {
        const s = fd.start + shift;
        const inRange = (s >= fr.start && s < fr.end) || (fr.start >= s && fr.start < s + fd.size);
        if (inRange) fresh.push({ ...fd, start: s, mr: fr.mr });
      }
    }
    const old = this.ioeventfds;
    if (this.listenerList.length && (old.length || fresh.length)) {
      let i = 0;
      let j = 0;
      while (i < old.length || j < fresh.length) {
        const a = old[i];
        const b = fresh[j];
        if (a && (!b || ioeventfdBefore(a, b))) {
          const sec = fdSection(a, view);
          this.callForward((l) => l.eventfdDel?.(sec, a.matchData, a.data, a.notifier));
          i++;
        } else if (b && (!a || ioeventfdBefore(b, a))) {
          const sec = fdSection(b, view);
          this.callReverse((l) => l.eventfdAdd?.(sec, b.matchData, b.data, b.notifier));
          j++;
        } else {
          i++;
          j++;
        }
      }
    }
    this.ioeventfds = fresh;
  }

  // ---------------------------------------------------------------------------------------------
  // Lookup and translation

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

  /**
   * QEMU `flatview_translate` for a number address: region, offset in it and usable length (RAM is
   * clamped to its range, MMIO is not), following IOMMUs. Results land in tMr / tXlat / tLen.
   */
  private translate(view: FlatView, addr: number, len: number, isWrite: boolean, attrs: MemTxAttrs): void {
    const i = view.indexOf(addr);
    if (i < 0) {
      this.tMr = this.system.unassigned;
      this.tXlat = addr;
      this.tLen = len;
      return;
    }
    const fr = view.ranges[i]!;
    if (Number.isNaN(fr.offsetN)) {
      this.translateBig(view, BigInt(addr), len, isWrite, attrs);
      return;
    }
    const mr = fr.mr;
    const within = addr - fr.startN;
    this.tMr = mr;
    this.tXlat = within + fr.offsetN;
    this.tLen = mr.ram
      ? Math.min(len, sectionEnd(fr.startN, fr.endN, addr, this.system.targetPageSize) - addr)
      : len;
    if (mr.isIommu) this.translateIommu(BigInt(this.tXlat), isWrite, attrs);
  }

  /** Exact variant of {@link translate} for addresses at or above 2^53. */
  private translateBig(view: FlatView, addr: bigint, len: number, isWrite: boolean, attrs: MemTxAttrs): void {
    const i = view.indexOfBig(addr);
    if (i < 0) {
      this.tMr = this.system.unassigned;
      // Only the alignment of the offset matters to the unassigned region: keep the low bits exact.
      this.tXlat = lowBits(addr);
      this.tLen = len;
      return;
    }
    const fr = view.ranges[i]!;
    const mr = fr.mr;
    const xlat = addr - fr.start + fr.offsetInRegion;
    this.tMr = mr;
    this.tXlat = xlat < SAFE_LIMIT_BIG ? Number(xlat) : lowBits(xlat);
    const rest = sectionEndBig(fr.start, fr.end, addr, this.system.targetPageSize) - addr;
    this.tLen = mr.ram && rest < BigInt(len) ? Number(rest) : len;
    if (mr.isIommu) this.translateIommu(xlat, isWrite, attrs);
  }

  /** QEMU `address_space_translate_iommu`. */
  private translateIommu(xlat: bigint, isWrite: boolean, attrs: MemTxAttrs): void {
    let mr = this.tMr;
    for (let hops = 0; mr.isIommu; hops++) {
      if (hops > 64)
        throw new InvalidArgumentError(`IOMMU translation through ${mr.label} does not terminate`);
      const ops = mr.iommuOps!;
      const idx = ops.attrsToIndex ? ops.attrsToIndex(attrs) : 0;
      const e = ops.translate(xlat, isWrite ? IOMMU_WO : IOMMU_RO, idx);
      if (!(e.perm & (isWrite ? IOMMU_WO : IOMMU_RO)) || !e.targetAs) {
        this.tMr = this.system.unassigned;
        return;
      }
      const addr = (e.translatedAddr & ~e.addrMask) | (xlat & e.addrMask);
      const room = (addr | e.addrMask) - addr + 1n;
      if (room < BigInt(this.tLen)) this.tLen = Number(room);
      const target = e.targetAs;
      const tv = target.view;
      const i = tv.indexOfBig(addr);
      if (i < 0) {
        this.tMr = this.system.unassigned;
        this.tXlat = lowBits(addr);
        return;
      }
      const fr = tv.ranges[i]!;
      mr = fr.mr;
      xlat = addr - fr.start + fr.offsetInRegion;
      this.tMr = mr;
      this.tXlat = xlat < SAFE_LIMIT_BIG ? Number(xlat) : lowBits(xlat);
      const rest = sectionEndBig(fr.start, fr.end, addr, this.system.targetPageSize) - addr;
      if (mr.ram && rest < BigInt(this.tLen)) this.tLen = Number(rest);
    }
  }

  // ---------------------------------------------------------------------------------------------
  // Buffer accesses

  /**
   * Reads `buf.length` bytes at guest address `addr` (QEMU `address_space_read`). The access is
   * split at range boundaries: RAM is copied, I/O regions get callbacks sized as QEMU sizes them.
   * Returns the OR of the results of all pieces; unassigned bytes read as 0 with
   * `MEMTX_DECODE_ERROR`. The result is returned, not stored: {@link lastResult} belongs to the
   * typed helpers and is left as it was.
   */
  read(addr: U64Input, buf: Uint8Array, attrs: MemTxAttrs = MEMTXATTRS_UNSPECIFIED): MemTxResult {
    return this.rw(addr, buf, false, attrs);
  }

  /** Writes `buf` at guest address `addr` (QEMU `address_space_write`); see {@link read}. */
  write(addr: U64Input, buf: Uint8Array, attrs: MemTxAttrs = MEMTXATTRS_UNSPECIFIED): MemTxResult {
    return this.rw(addr, buf, true, attrs);
  }

  /** QEMU `address_space_rw`. */
  rw(
    addr: U64Input,
    buf: Uint8Array,
    isWrite: boolean,
    attrs: MemTxAttrs = MEMTXATTRS_UNSPECIFIED,
  ): MemTxResult {
    if (!(buf instanceof Uint8Array)) throw new InvalidArgumentError('buffer must be a Uint8Array');
    const len = buf.length;
    if (typeof addr === 'number' && Number.isSafeInteger(addr) && addr >= 0 && addr + len <= SAFE_LIMIT) {
      return len === 0 ? MEMTX_OK : this.access(this.view, addr, buf, len, isWrite, attrs);
    }
    const a = toU64(addr, `${isWrite ? 'write' : 'read'} in "${this.name}"`);
    checkRange(a, BigInt(len), `${isWrite ? 'write' : 'read'} in "${this.name}"`);
    if (len === 0) return MEMTX_OK;
    if (a + BigInt(len) <= SAFE_LIMIT_BIG) return this.access(this.view, Number(a), buf, len, isWrite, attrs);
    return this.accessBig(this.view, a, buf, len, isWrite, attrs);
  }

  /** QEMU `flatview_read/write` + `_continue`, for addresses below 2^53. */
  private access(
    view: FlatView,
    addr: number,
    buf: Uint8Array,
    len: number,
    isWrite: boolean,
    attrs: MemTxAttrs,
  ): MemTxResult {
    let result = MEMTX_OK;
    let pos = 0;
    this.translate(view, addr, len, isWrite, attrs);
    if (attrs.memory && !this.tMr.ram) return MEMTX_ACCESS_ERROR;
    for (;;) {
      const l = this.accessChunk(buf, pos, isWrite, attrs);
      result |= this.chunkResult;
      len -= l;
      addr += l;
      pos += l;
      if (len === 0) return result;
      this.translate(view, addr, len, isWrite, attrs);
    }
  }

  /** Exact variant of {@link access} for accesses that reach 2^53 and beyond. */
  private accessBig(
    view: FlatView,
    addr: bigint,
    buf: Uint8Array,
    len: number,
    isWrite: boolean,
    attrs: MemTxAttrs,
  ): MemTxResult {
    let result = MEMTX_OK;
    let pos = 0;
    this.translateBig(view, addr, len, isWrite, attrs);
    if (attrs.memory && !this.tMr.ram) return MEMTX_ACCESS_ERROR;
    for (;;) {
      const l = this.accessChunk(buf, pos, isWrite, attrs);
      result |= this.chunkResult;
      len -= l;
      addr += BigInt(l);
      pos += l;
      if (len === 0) return result;
      this.translateBig(view, addr, len, isWrite, attrs);
    }
  }

  private chunkResult: MemTxResult = MEMTX_OK;

  /** One step of the access loop on the translated chunk; returns its length. */
  private accessChunk(buf: Uint8Array, pos: number, isWrite: boolean, attrs: MemTxAttrs): number {
    const mr = this.tMr;
    const xlat = this.tXlat;
    let l = this.tLen;
    if (attrs.memory && !mr.ram) {
      this.chunkResult = MEMTX_ACCESS_ERROR;
      return l;
    }
    if (isWrite ? isDirectWrite(mr) : isDirectRead(mr)) {
      const block = mr.ramBlock!;
      if (xlat >= block.maxLength) {
        // A RAM region made larger than its block (setSize does not resize RAM): QEMU would run
        // off its host memory; here the bytes past the block behave as unassigned.
        if (!isWrite) buf.fill(0, pos, pos + l);
        this.chunkResult = MEMTX_DECODE_ERROR;
        return l;
      }
      l = Math.min(l, block.maxLength - xlat);
      if (isWrite) {
        block.write(xlat, buf, pos, l);
        this.system.invalidateAndSetDirty(mr, xlat, l);
      } else {
        block.read(xlat, buf, pos, l);
      }
      this.chunkResult = MEMTX_OK;
      return l;
    }
    const io = this.system.dispatcher;
    l = io.accessSize(mr, l, xlat);
    const be = io.isBigEndian(mr);
    if (isWrite) {
      io.write(mr, xlat, bytesToValue(buf, pos, l, be), l, attrs);
    } else {
      valueToBytes(io.read(mr, xlat, l, attrs), buf, pos, l, be);
    }
    this.chunkResult = io.result;
    return l;
  }

  /**
   * QEMU `address_space_write_rom`: writes into RAM and ROM (and ROM devices in romd mode) as a
   * firmware loader or debugger would, ignoring read-only flags; other chunks are skipped.
   */
  writeRom(addr: U64Input, buf: Uint8Array): MemTxResult {
    if (!(buf instanceof Uint8Array)) throw new InvalidArgumentError('writeRom: buffer must be a Uint8Array');
    const a = toU64(addr, `writeRom in "${this.name}"`);
    checkRange(a, BigInt(buf.length), `writeRom in "${this.name}"`);
    let cur = a;
    let pos = 0;
    let len = buf.length;
    const view = this.view;
    while (len > 0) {
      this.translateBig(view, cur, len, true, MEMTXATTRS_UNSPECIFIED);
      const mr = this.tMr;
      let l = this.tLen;
      if (!(mr.ram || (mr.romDevice && mr.romdMode))) {
        l = this.system.dispatcher.accessSize(mr, l, this.tXlat);
      } else {
        const block = mr.ramBlock!;
        // Bytes past the block of an enlarged RAM region are skipped like any non-RAM chunk.
        if (this.tXlat < block.maxLength) {
          l = Math.min(l, block.maxLength - this.tXlat);
          block.write(this.tXlat, buf, pos, l);
          this.system.invalidateAndSetDirty(mr, this.tXlat, l);
        }
      }
      len -= l;
      pos += l;
      cur += BigInt(l);
    }
    return MEMTX_OK;
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
    let cur = toU64(addr, `accessValid in "${this.name}"`);
    if (!Number.isSafeInteger(len) || len < 0) {
      throw new InvalidArgumentError(
        `accessValid in "${this.name}": length ${printable(len)} is not a byte count`,
      );
    }
    toBool(isWrite, `accessValid in "${this.name}": isWrite`);
    checkRange(cur, BigInt(len), `accessValid in "${this.name}"`);
    const view = this.view;
    while (len > 0) {
      this.translateBig(view, cur, len, isWrite, attrs);
      const mr = this.tMr;
      let l = this.tLen;
      if (!(isWrite ? isDirectWrite(mr) : isDirectRead(mr))) {
        // QEMU bounds the size by the alignment of the guest address here, not of the offset.
        l = this.system.dispatcher.accessSize(mr, l, lowBits(cur));
        if (!this.system.dispatcher.valid(mr, this.tXlat, l, isWrite, attrs)) return false;
      }
      len -= l;
      cur += BigInt(l);
    }
    return true;
  }

  // ---------------------------------------------------------------------------------------------
  // Zero-copy access

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
    const a = toU64(addr, `map in "${this.name}"`);
    if (len === 0) return null;
    checkRange(a, BigInt(len), `map in "${this.name}"`);
    const view = this.view;
    this.translateBig(view, a, len, isWrite, attrs);
    const mr = this.tMr;
    const xlat = this.tXlat;
    if (!(isWrite ? isDirectWrite(mr) : isDirectRead(mr))) {
      const bounce = this.system.acquireBounce();
      if (!bounce) return null;
      const l = Math.min(this.tLen, PAGE_SIZE);
      const data = bounce.subarray(0, l);
      if (!isWrite) this.read(a, data);
      return { data, bounce: true, addr: a, isWrite, region: mr, offset: xlat };
    }
    // flatview_extend_translation: keep going while the next piece continues the same region.
    let done = this.tLen;
    while (done < len) {
      this.translateBig(view, a + BigInt(done), len - done, isWrite, attrs);
      if (this.tMr !== mr || this.tXlat !== xlat + done) break;
      done += this.tLen;
    }
    const block = mr.ramBlock!;
    const data = block.hostView(xlat, Math.min(done, block.maxLength - xlat));
    return { data, bounce: false, addr: a, isWrite, region: mr, offset: xlat };
  }

  /**
   * QEMU `address_space_unmap`: releases a mapping. `accessLen` bytes (from the start) were
   * written: direct mappings mark them dirty, the bounce buffer writes them back to the guest.
   */
  unmap(mapping: Mapping, accessLen = mapping.isWrite ? mapping.data.length : 0): void {
    if (mapping.bounce) {
      if (mapping.isWrite && accessLen > 0) this.write(mapping.addr, mapping.data.subarray(0, accessLen));
      this.system.releaseBounce();
      return;
    }
    if (mapping.isWrite && accessLen > 0) {
      this.system.invalidateAndSetDirty(mapping.region, mapping.offset, accessLen);
    }
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
   * The rest of every typed load: the TLB, the device page of this kind of access, the general
   * device probe, then the exact path. One function for all sizes and byte orders on purpose: its
   * bytecode exceeds what V8 inlines, so it is never inlined into the helpers, whose optimized code
   * then stays small enough for V8 to inline them into the caller's loop (once V8 has optimized a
   * helper together with its miss path, it counts that whole size against inlining the helper).
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
    if (this.armed) this.disarm();
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
    return this.loadSlow(addr, size, bigEndian);
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
    if (this.armed) this.disarm();
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
    this.storeSlow(addr, size, value, bigEndian);
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
    return this.loadSlow(addr, size, bigEndian, attrs);
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
    this.storeSlow(addr, size, value, bigEndian, attrs);
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

  /** Validates an address of a typed access; returns it as a number, or -1 if it needs bigint. */
  private checkTyped(addr: U64Input, size: number): number {
    if (typeof addr === 'number') {
      if (Number.isSafeInteger(addr) && addr >= 0) return addr;
      throw new InvalidArgumentError(
        `access in "${this.name}": address ${String(addr)} is not a non-negative safe integer (use a bigint)`,
      );
    }
    const a = toU64(addr, `access in "${this.name}"`);
    if (a + BigInt(size) - 1n > U64_MAX) {
      throw new AddressOverflowError(
        `access in "${this.name}": ${size} bytes at 0x${a.toString(16)} wrap past 0xffffffffffffffff`,
      );
    }
    return a + BigInt(size) <= SAFE_LIMIT_BIG ? Number(a) : -1;
  }

  /**
   * Device register fast path (typed accesses with unspecified attributes): when the page is a
   * cached device page and the access is valid for the device's plain callbacks (see
   * `plainReadSizes`), return its region; null when the general path must run.
   */
  private ioFast(addr: number, size: number, isWrite: boolean): MemoryRegion | null {
    const it = this.it;
    const k = (addr >>> PAGE_BITS) & it.mask;
    if (it.tag[k] !== addr - (addr & PAGE_MASK)) return null;
    const mr = it.mr[k]!;
    const o = addr + it.delta[k]!;
    this.ioOffset = o;
    const plain = isWrite ? mr.plainWriteSizes : mr.plainReadSizes;
    return plain & size && (o & (size - 1)) === 0 && mr.guard?.engaged !== true ? mr : null;
  }

  private ioOffset = 0;

  /**
   * Caches the page of `addr` (offset `o` in `mr`, whose plain callbacks just served a `size`-byte
   * access of this kind) for the miss path's probe, if the page starts at a small offset aligned
   * for `size`, so that guest alignment is region alignment and the offset stays an int32.
   */
  private deviceFill(
    isWrite: boolean,
    size: number,
    bigEndian: boolean,
    addr: number,
    o: number,
    mr: MemoryRegion,
  ): void {
    const base = o - (addr & PAGE_MASK);
    if (base < 0 || base > 0x7fffefff || (base & (size - 1)) !== 0) return;
    const exact = (isWrite ? mr.fastWriteSizes : mr.fastReadSizes) & size;
    // Direct: one callback in the requested byte order, and no owner whose guard to take.
    const direct = exact !== 0 && (size === 1 || mr.bigEndianOps === bigEndian) && mr.guard === null;
    const fn = direct ? (isWrite ? mr.ops.write! : mr.ops.read!) : null;
    this.dev.fill(deviceKind(isWrite, size, bigEndian), addr - (addr & PAGE_MASK), base, mr, fn);
  }

  /** Drops the write kinds of the device-page caches (a region's ioeventfds changed). */
  flushDeviceWrites(): void {
    this.dev.flush(true);
  }

  /** QEMU `address_space_ld*_internal`: one translation, one direct load or one dispatch. */
  private loadSlow(
    addr: U64Input,
    size: number,
    bigEndian: boolean,
    attrs = MEMTXATTRS_UNSPECIFIED,
  ): number | bigint {
    if (this.armed) this.disarm();
    const n = this.checkTyped(addr, size);
    if (n >= 0) {
      if (attrs === MEMTXATTRS_UNSPECIFIED) {
        const mr = this.ioFast(n, size, false);
        if (mr !== null) {
          // Exactly QEMU's path for a valid access to plain callbacks; later accesses of this kind
          // find the page in the miss path's device cache.
          const o = this.ioOffset;
          const v = this.system.dispatcher.readPlain(mr, o, size, bigEndian);
          this.res = MEMTX_OK;
          this.deviceFill(false, size, bigEndian, n, o, mr);
          return v;
        }
      }
      if (this.tlbFill(n, false) && (n & PAGE_MASK) <= PAGE_SIZE - size) {
        const t = this.rt;
        const i = Tlb.slot(n, t.mask);
        this.res = MEMTX_OK;
        return readDv(t.dv[t.e[i + 2]! | 0]!, (t.e[i + 1]! | 0) + (n & PAGE_MASK), size, bigEndian);
      }
      this.translate(this.view, n, size, false, attrs);
    } else {
      this.translateBig(this.view, BigInt(addr), size, false, attrs);
    }
    const mr = this.tMr;
    if (this.tLen < size || !isDirectRead(mr)) {
      const io = this.system.dispatcher;
      const v = io.read(mr, this.tXlat, size, attrs);
      this.setResult(io.result);
      return io.isBigEndian(mr) === bigEndian ? v : swap(v, size);
    }
    this.res = MEMTX_OK;
    const tmp = this.system.scratch;
    mr.ramBlock!.read(this.tXlat, tmp, 0, size);
    return readDv(this.system.scratchView, 0, size, bigEndian);
  }

  /** QEMU `address_space_st*_internal`. */
  private storeSlow(
    addr: U64Input,
    size: number,
    value: number | bigint,
    bigEndian: boolean,
    attrs = MEMTXATTRS_UNSPECIFIED,
  ): void {
    if (this.armed) this.disarm();
    const n = this.checkTyped(addr, size);
    if (typeof value !== (size === 8 ? 'bigint' : 'number')) {
      throw new InvalidArgumentError(
        `store of ${size} bytes: value must be a ${size === 8 ? 'bigint' : 'number'}`,
      );
    }
    if (n >= 0) {
      if (attrs === MEMTXATTRS_UNSPECIFIED) {
        const mr = this.ioFast(n, size, true);
        if (mr !== null) {
          const o = this.ioOffset;
          this.system.dispatcher.writePlain(mr, o, value, size, bigEndian);
          this.res = MEMTX_OK;
          this.deviceFill(true, size, bigEndian, n, o, mr);
          return;
        }
      }
      if (this.tlbFill(n, true) && (n & PAGE_MASK) <= PAGE_SIZE - size) {
        const t = this.wt;
        const i = Tlb.slot(n, t.mask);
        this.res = MEMTX_OK;
        writeDv(t.dv[t.e[i + 2]! | 0]!, (t.e[i + 1]! | 0) + (n & PAGE_MASK), size, value, bigEndian);
        return;
      }
      this.translate(this.view, n, size, true, attrs);
    } else {
      this.translateBig(this.view, BigInt(addr), size, true, attrs);
    }
    const mr = this.tMr;
    if (this.tLen < size || !isDirectWrite(mr)) {
      const io = this.system.dispatcher;
      const v = truncate(value, size);
      io.write(mr, this.tXlat, io.isBigEndian(mr) === bigEndian ? v : swap(v, size), size, attrs);
      this.setResult(io.result);
      return;
    }
    this.res = MEMTX_OK;
    writeDv(this.system.scratchView, 0, size, value, bigEndian);
    mr.ramBlock!.write(this.tXlat, this.system.scratch, 0, size);
    this.system.invalidateAndSetDirty(mr, this.tXlat, size);
  }

  // ---------------------------------------------------------------------------------------------
  // TLB

  /**
   * Caches the page of `addr` if one range covers all of it: direct RAM in the read or write TLB,
   * a device in the I/O TLB. Returns whether the page is now in the read or write TLB.
   */
  private tlbFill(addr: number, isWrite: boolean): boolean {
    const view = this.view;
    const idx = view.indexOf(addr);
    if (idx < 0) return false;
    const fr = view.ranges[idx]!;
    const mr = fr.mr;
    const page = addr - (addr & PAGE_MASK);
    if (page < fr.startN || page + PAGE_SIZE > fr.endN || Number.isNaN(fr.offsetN)) return false;
    const off = fr.offsetN + (page - fr.startN);
    if (!(isWrite ? isDirectWrite(mr) : isDirectRead(mr))) {
      if (!mr.ram && !mr.romDevice && !mr.isIommu && mr.terminates) {
        const it = this.it;
        const k = (addr >>> PAGE_BITS) & it.mask;
        it.tag[k] = page;
        it.mr[k] = mr;
        it.delta[k] = off - page;
      }
      return false;
    }
    const block = mr.ramBlock!;
    if (off + PAGE_SIZE > block.maxLength) return false;
    // A logged page is cached for writing only once it is dirty for every logging client (QEMU's
    // TLB_NOTDIRTY): until then each write must take the slow path that marks it.
    const mask = fr.dirtyLogMask;
    if (isWrite && mask !== 0) {
      const ram = block.offset + off;
      const dirty = this.system.dirty;
      const p0 = Math.floor(ram / PAGE_SIZE);
      if (!dirty.pageDirtyForAll(p0, mask)) return false;
      if (ram % PAGE_SIZE !== 0 && !dirty.pageDirtyForAll(p0 + 1, mask)) return false;
    }
    const ci = Math.floor(off / RAM_CHUNK_SIZE);
    const co = off - ci * RAM_CHUNK_SIZE;
    if (co + PAGE_SIZE > RAM_CHUNK_SIZE) return false;
    const chunk = block.chunk(ci);
    (isWrite ? this.wt : this.rt).fill(page, chunk, co);
    if (HOST_LE) {
      if (!isWrite || mask === 0) this.setWindow(fr, ci, chunk, isWrite, 0, SAFE_LIMIT);
      else if ((block.offset + off) % PAGE_SIZE === 0)
        this.setDirtyWindow(fr, ci, chunk, page, co, block.offset + off, mask);
    }
    return true;
  }

  /**
   * Points the read or write RAM window at the whole-page section of `fr` that lies in host chunk
   * `ci`, if that is more than a couple of pages and page aligned in the chunk.
   */
  private setWindow(
    fr: FlatRange,
    ci: number,
    chunk: Uint8Array,
    isWrite: boolean,
    minLo: number,
    maxHi: number,
  ): void {
    if (fr.endN > SAFE_LIMIT) return;
    const chunkStart = ci * RAM_CHUNK_SIZE;
    // Guest addresses of the whole-page section and of the chunk.
    let lo = Math.ceil(fr.startN / PAGE_SIZE) * PAGE_SIZE;
    let hi = Math.floor(fr.endN / PAGE_SIZE) * PAGE_SIZE;
    const chunkLo = fr.startN + (chunkStart - fr.offsetN);
    lo = Math.max(lo, chunkLo, minLo);
    hi = Math.min(hi, chunkLo + chunk.length, maxHi);
    if (hi - lo < 2 * PAGE_SIZE) return;
    const base = fr.offsetN + (lo - fr.startN) - chunkStart;
    if (base % PAGE_SIZE !== 0) return;
    const buf = chunk.buffer;
    const at = chunk.byteOffset + base;
    const size = hi - lo;
    const u8 = new Uint8Array(buf, at, size);
    const u16 = new Uint16Array(buf, at, size >>> 1);
    const u32 = new Uint32Array(buf, at, size >>> 2);
    const u64 = new BigUint64Array(buf, at, size >>> 3);
    const win: RamWindow = { lo, u8, u16, u32, u64 };
    if (isWrite) this.writeWin = win;
    else this.readWin = win;
    this.publish();
  }

  /**
   * The write window while some client logs the range (QEMU keeps such pages TLB_NOTDIRTY until
   * written): the run of pages around guest page `page` (at byte `co` of the chunk, ram_addr
   * `ramAddr`) that are already dirty for every logging client, since writes there have nothing
   * to mark. A sequential writer grows the run page by page; each growth extends the current
   * window instead of scanning back over it. Any clear of dirty bits drops the window.
   */
  private setDirtyWindow(
    fr: FlatRange,
    ci: number,
    chunk: Uint8Array,
    page: number,
    co: number,
    ramAddr: number,
    mask: number,
  ): void {
    const dirty = this.system.dirty;
    const rp = ramAddr / PAGE_SIZE;
    const w = this.writeWin;
    const adjacent =
      w.u8.buffer === chunk.buffer &&
      w.lo + w.u8.length === page &&
      w.u8.byteOffset + w.u8.length === chunk.byteOffset + co;
    const lo = adjacent ? w.lo : page - (rp - dirty.dirtyRunStart(rp, mask, rp - DIRTY_SCAN)) * PAGE_SIZE;
    const hi = page + (dirty.dirtyRunEnd(rp, mask, rp + DIRTY_SCAN) - rp) * PAGE_SIZE;
    this.setWindow(fr, ci, chunk, true, lo, hi);
  }

  /**
   * Points the fields the inline probes read at the real windows, or at empty ones while a failed
   * result is pending (see {@link res}).
   */
  private publish(): void {
    const off = this.armed;
    const r = off ? NO_WINDOW : this.readWin;
    this.rLo = r.lo;
    this.rU8 = r.u8;
    this.rU16 = r.u16;
    this.rU32 = r.u32;
    this.rU64 = r.u64;
    this.rN8 = r.u8.length;
    const w = off ? NO_WINDOW : this.writeWin;
    this.wLo = w.lo;
    this.wU8 = w.u8;
    this.wU16 = w.u16;
    this.wU32 = w.u32;
    this.wU64 = w.u64;
    this.wN8 = w.u8.length;
  }

  /** Records a result of the slow path; a failure disables the inline probes (see {@link res}). */
  private setResult(r: MemTxResult): void {
    this.res = r;
    if (r !== MEMTX_OK && !this.armed) {
      this.armed = true;
      this.publish();
    }
  }

  /** Out-of-line entry after a failure: the result starts over as OK and the inline probes return. */
  private disarm(): void {
    this.res = MEMTX_OK;
    this.armed = false;
    this.publish();
  }

  /** Drops every cached write translation (after dirty bits were cleared). */
  flushWriteTlb(): void {
    this.wt.flush();
    this.dropWindow(true);
  }

  private dropWindow(isWrite: boolean): void {
    if (isWrite) this.writeWin = NO_WINDOW;
    else this.readWin = NO_WINDOW;
    this.publish();
  }

  /** Drops every cached translation (after a view switch, or when dirty logging changes). */
  flushTlb(): void {
    this.rt.flush();
    this.wt.flush();
    this.it.flush();
    this.dev.flush();
    this.readWin = NO_WINDOW;
    this.writeWin = NO_WINDOW;
    this.publish();
  }

  toString(): string {
    return `AddressSpace("${this.name}")`;
  }
}

const SAFE_LIMIT_BIG = 2n ** 53n;
type ReadFn = NonNullable<MemoryRegion['ops']['read']>;
type WriteFn = NonNullable<MemoryRegion['ops']['write']>;
type DeviceFn = ReadFn | WriteFn;

const EMPTY_U8 = new Uint8Array(0);
const EMPTY_U16 = new Uint16Array(0);
const EMPTY_U32 = new Uint32Array(0);
const EMPTY_U64 = new BigUint64Array(0);

/** Views of one RAM window (see {@link AddressSpace}'s window fields). */
interface RamWindow {
  /** Guest address of the first byte. */
  readonly lo: number;
  readonly u8: Uint8Array;
  readonly u16: Uint16Array;
  readonly u32: Uint32Array;
  readonly u64: BigUint64Array;
}

/** No window: every probe misses. Immutable, so one instance serves every address space. */
const NO_WINDOW: RamWindow = Object.freeze({
  lo: 0,
  u8: EMPTY_U8,
  u16: EMPTY_U16,
  u32: EMPTY_U32,
  u64: EMPTY_U64,
});

/** QEMU `memory_access_is_direct` for reads. */
export function isDirectRead(mr: MemoryRegion): boolean {
  return (mr.ram && !mr.ramDevice) || (mr.romDevice && mr.romdMode);
}

/** QEMU `memory_access_is_direct` for writes: the region's own readonly flag only. */
export function isDirectWrite(mr: MemoryRegion): boolean {
  return mr.ram && !mr.readonly && !mr.romDevice && !mr.ramDevice;
}

/** The low 52 bits of an offset: enough to keep its alignment exact where only that matters. */
function lowBits(v: bigint): number {
  return Number(BigInt.asUintN(52, v)) || 2 ** 52;
}

function fdSection(fd: AddressSpaceIoeventfd, view: FlatView): MemoryRegionSection {
  return {
    mr: null,
    fv: view,
    offsetWithinRegion: 0n,
    offsetWithinAddressSpace: fd.start,
    size: fd.size,
    readonly: false,
    nonvolatile: false,
  };
}

export type { EventNotifier };
export { SIZE_2_64 };
