/**
 * @module core/cputlb
 * The caches in front of an address space's flat view and the typed-access paths that fill and
 * use them: the role of QEMU's accel/tcg/cputlb.c (`tlb_fill`, `load_helper` / `store_helper`,
 * `io_readx` / `io_writex`, TLB_NOTDIRTY for pages some dirty-logging client still sees clean,
 * `tlb_flush`) reduced to what one address space needs, with QEMU's `address_space_ld*_internal` /
 * `address_space_st*_internal` (softmmu/memory_ldst.c.inc) as the exact path behind them.
 *
 * Three caches, all dropped when the view changes:
 * - the RAM windows: the whole-page section of one RAM range inside one host chunk, as typed-array
 *   views the address space's inline probes read (see {@link publish});
 * - the read and write TLBs (core/tlb): guest page to host chunk and page, direct-mapped;
 * - the device pages: the I/O TLB of pages one device serves, and per kind of typed access the
 *   pages where that access reaches the device's plain callbacks (core/tlb `DevicePages`).
 *
 * The inline probes and the first level of the miss path (device page, then TLB) are methods of
 * the address space, for V8's sake; what they miss comes here through {@link loadSlow} /
 * {@link storeSlow}. docs/architecture.md lists the measured rules behind the shape of this code.
 */

import { toU64, U64_MAX, type U64Input } from './address.js';
import type { AddressSpace } from './address-space.js';
import { AddressOverflowError, InvalidArgumentError } from './errors.js';
import type { FlatRange } from './flatview.js';
import { isDirectRead, isDirectWrite, SAFE_LIMIT, translate, translateBig } from './physmem.js';
import { RAM_CHUNK_SIZE } from './ramblock.js';
import type { MemoryRegion } from './region.js';
import { deviceKind, HOST_LE, Tlb } from './tlb.js';
import { MEMTX_OK, MEMTXATTRS_UNSPECIFIED, type MemTxResult } from './types.js';
import { readDv, swap, truncate, writeDv } from './values.js';

const PAGE_BITS = 12;
const PAGE_SIZE = 1 << PAGE_BITS;
const PAGE_MASK = PAGE_SIZE - 1;
const SAFE_LIMIT_BIG = 2n ** 53n;
// Pages a dirty-run search looks at in each direction (whole bitmap words at a time).
const DIRTY_SCAN = 1 << 16;

export const EMPTY_U8 = new Uint8Array(0);
export const EMPTY_U16 = new Uint16Array(0);
export const EMPTY_U32 = new Uint32Array(0);
export const EMPTY_U64 = new BigUint64Array(0);

/** Views of one RAM window (see the window fields of {@link AddressSpace}). */
export interface RamWindow {
  /** Guest address of the first byte. */
  readonly lo: number;
  readonly u8: Uint8Array;
  readonly u16: Uint16Array;
  readonly u32: Uint32Array;
  readonly u64: BigUint64Array;
  /**
   * A CPU store here is not discarded: the flat range is not read-only (TCG would flag a read-only
   * RAM section TLB_DISCARD_WRITE). Only then does a write window serve CpuAccess stores too.
   */
  readonly cpu: boolean;
}

/** No window: every probe misses. Immutable, so one instance serves every address space. */
export const NO_WINDOW: RamWindow = Object.freeze({
  lo: 0,
  u8: EMPTY_U8,
  u16: EMPTY_U16,
  u32: EMPTY_U32,
  u64: EMPTY_U64,
  cpu: false,
});

// ---------------------------------------------------------------------------------------------
// The miss paths of the typed helpers

/** Validates an address of a typed access; returns it as a number, or -1 if it needs bigint. */
function checkTyped(as: AddressSpace, addr: U64Input, size: number): number {
  if (typeof addr === 'number') {
    if (Number.isSafeInteger(addr) && addr >= 0) return addr;
    throw new InvalidArgumentError(
      `access in "${as.name}": address ${String(addr)} is not a non-negative safe integer (use a bigint)`,
    );
  }
  const a = toU64(addr, `access in "${as.name}"`);
  if (a + BigInt(size) - 1n > U64_MAX) {
    throw new AddressOverflowError(
      `access in "${as.name}": ${size} bytes at 0x${a.toString(16)} wrap past 0xffffffffffffffff`,
    );
  }
  return a + BigInt(size) <= SAFE_LIMIT_BIG ? Number(a) : -1;
}

/**
 * Device register fast path (typed accesses with unspecified attributes): when the page is a
 * cached device page and the access is valid for the device's plain callbacks (see
 * `MemoryRegion.plainReadSizes`), returns the region (its offset in `as.ioOffset`), or null when
 * the general path must run.
 */
function ioFast(as: AddressSpace, addr: number, size: number, isWrite: boolean): MemoryRegion | null {
  const it = as.it;
  const k = (addr >>> PAGE_BITS) & it.mask;
  if (it.tag[k] !== addr - (addr & PAGE_MASK)) return null;
  const mr = it.mr[k]!;
  const o = addr + it.delta[k]!;
  as.ioOffset = o;
  const plain = isWrite ? mr.plainWriteSizes : mr.plainReadSizes;
  return plain & size && (o & (size - 1)) === 0 && mr.guard?.engaged !== true ? mr : null;
}

/**
 * Caches the page of `addr` (offset `o` in `mr`, whose plain callbacks just served a `size`-byte
 * access of this kind) for the miss path's probe, if the page starts at a small offset aligned
 * for `size`, so that guest alignment is region alignment and the offset stays an int32.
 */
function deviceFill(
  as: AddressSpace,
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
  const dev = as.dev;
  dev.fill(deviceKind(isWrite, size, bigEndian), addr - (addr & PAGE_MASK), base, mr, fn);
  as.devE = dev.e;
  as.devFn = dev.fn;
}

/**
 * QEMU `address_space_ld*_internal`, after the caches: one translation, one direct load or one
 * dispatch. Fills the caches on the way.
 */
export function loadSlow(
  as: AddressSpace,
  addr: U64Input,
  size: number,
  bigEndian: boolean,
  attrs = MEMTXATTRS_UNSPECIFIED,
): number | bigint {
  if (as.armed) disarm(as);
  const n = checkTyped(as, addr, size);
  if (n >= 0) {
    if (attrs === MEMTXATTRS_UNSPECIFIED) {
      const mr = ioFast(as, n, size, false);
      if (mr !== null) {
        // Exactly QEMU's path for a valid access to plain callbacks; later accesses of this kind
        // find the page in the miss path's device cache.
        const o = as.ioOffset;
        const v = as.system.dispatcher.readPlain(mr, o, size, bigEndian);
        as.res = MEMTX_OK;
        deviceFill(as, false, size, bigEndian, n, o, mr);
        return v;
      }
    }
    if (tlbFill(as, n, false) && (n & PAGE_MASK) <= PAGE_SIZE - size) {
      const t = as.rt;
      const i = Tlb.slot(n, t.mask);
      as.res = MEMTX_OK;
      return readDv(t.dv[t.e[i + 2]! | 0]!, (t.e[i + 1]! | 0) + (n & PAGE_MASK), size, bigEndian);
    }
    translate(as, as.view, n, size, false, attrs);
  } else {
    translateBig(as, as.view, BigInt(addr), size, false, attrs);
  }
  const mr = as.tMr;
  if (as.tLen < size || !isDirectRead(mr)) {
    const io = as.system.dispatcher;
    const v = io.read(mr, as.tXlat, size, attrs);
    setResult(as, io.result);
    return io.isBigEndian(mr) === bigEndian ? v : swap(v, size);
  }
  as.res = MEMTX_OK;
  const tmp = as.system.scratch;
  mr.ramBlock!.read(as.tXlat, tmp, 0, size);
  return readDv(as.system.scratchView, 0, size, bigEndian);
}

/** QEMU `address_space_st*_internal`, after the caches (see {@link loadSlow}). */
export function storeSlow(
  as: AddressSpace,
  addr: U64Input,
  size: number,
  value: number | bigint,
  bigEndian: boolean,
  attrs = MEMTXATTRS_UNSPECIFIED,
): void {
  if (as.armed) disarm(as);
  const n = checkTyped(as, addr, size);
  if (typeof value !== (size === 8 ? 'bigint' : 'number')) {
    throw new InvalidArgumentError(
      `store of ${size} bytes: value must be a ${size === 8 ? 'bigint' : 'number'}`,
    );
  }
  if (n >= 0) {
    if (attrs === MEMTXATTRS_UNSPECIFIED) {
      const mr = ioFast(as, n, size, true);
      if (mr !== null) {
        const o = as.ioOffset;
        as.system.dispatcher.writePlain(mr, o, value, size, bigEndian);
        as.res = MEMTX_OK;
        deviceFill(as, true, size, bigEndian, n, o, mr);
        return;
      }
    }
    if (tlbFill(as, n, true) && (n & PAGE_MASK) <= PAGE_SIZE - size) {
      const t = as.wt;
      const i = Tlb.slot(n, t.mask);
      as.res = MEMTX_OK;
      writeDv(t.dv[t.e[i + 2]! | 0]!, (t.e[i + 1]! | 0) + (n & PAGE_MASK), size, value, bigEndian);
      return;
    }
    translate(as, as.view, n, size, true, attrs);
  } else {
    translateBig(as, as.view, BigInt(addr), size, true, attrs);
  }
  const mr = as.tMr;
  if (as.tLen < size || !isDirectWrite(mr)) {
    const io = as.system.dispatcher;
    const v = truncate(value, size);
    io.write(mr, as.tXlat, io.isBigEndian(mr) === bigEndian ? v : swap(v, size), size, attrs);
    setResult(as, io.result);
    return;
  }
  as.res = MEMTX_OK;
  writeDv(as.system.scratchView, 0, size, value, bigEndian);
  mr.ramBlock!.write(as.tXlat, as.system.scratch, 0, size);
  as.system.invalidateAndSetDirty(mr, as.tXlat, size);
}

// ---------------------------------------------------------------------------------------------
// Filling the caches

/**
 * QEMU `tlb_fill`, for one address space: caches the page of `addr` if one range covers all of
 * it: direct RAM in the read or write TLB, a device in the I/O TLB. Returns whether the page is
 * now in the read or write TLB.
 */
function tlbFill(as: AddressSpace, addr: number, isWrite: boolean): boolean {
  const view = as.view;
  const idx = view.indexOf(addr);
  if (idx < 0) return false;
  const fr = view.ranges[idx]!;
  const mr = fr.mr;
  const page = addr - (addr & PAGE_MASK);
  if (page < fr.startN || page + PAGE_SIZE > fr.endN || Number.isNaN(fr.offsetN)) return false;
  const off = fr.offsetN + (page - fr.startN);
  if (!(isWrite ? isDirectWrite(mr) : isDirectRead(mr))) {
    if (!mr.ram && !mr.romDevice && !mr.isIommu && mr.terminates) {
      as.it.fill(page, mr, off - page);
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
    const dirty = as.system.dirty;
    const p0 = Math.floor(ram / PAGE_SIZE);
    if (!dirty.pageDirtyForAll(p0, mask)) return false;
    if (ram % PAGE_SIZE !== 0 && !dirty.pageDirtyForAll(p0 + 1, mask)) return false;
  }
  const ci = Math.floor(off / RAM_CHUNK_SIZE);
  const co = off - ci * RAM_CHUNK_SIZE;
  if (co + PAGE_SIZE > RAM_CHUNK_SIZE) return false;
  const chunk = block.chunk(ci);
  (isWrite ? as.wt : as.rt).fill(page, chunk, co);
  if (HOST_LE) {
    if (!isWrite || mask === 0) setWindow(as, fr, ci, chunk, isWrite, 0, SAFE_LIMIT);
    else if ((block.offset + off) % PAGE_SIZE === 0)
      setDirtyWindow(as, fr, ci, chunk, page, co, block.offset + off, mask);
  }
  return true;
}

/**
 * Points the read or write RAM window at the whole-page section of `fr` that lies in host chunk
 * `ci`, if that is more than a couple of pages and page aligned in the chunk.
 */
function setWindow(
  as: AddressSpace,
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
  const win: RamWindow = { lo, u8, u16, u32, u64, cpu: !fr.readonly };
  if (isWrite) as.writeWin = win;
  else as.readWin = win;
  publish(as);
}

/**
 * The write window while some client logs the range (QEMU keeps such pages TLB_NOTDIRTY until
 * written): the run of pages around guest page `page` (at byte `co` of the chunk, ram_addr
 * `ramAddr`) that are already dirty for every logging client, since writes there have nothing
 * to mark. A sequential writer grows the run page by page; each growth extends the current
 * window instead of scanning back over it. Any clear of dirty bits drops the window.
 */
function setDirtyWindow(
  as: AddressSpace,
  fr: FlatRange,
  ci: number,
  chunk: Uint8Array,
  page: number,
  co: number,
  ramAddr: number,
  mask: number,
): void {
  const dirty = as.system.dirty;
  const rp = ramAddr / PAGE_SIZE;
  const w = as.writeWin;
  const adjacent =
    w.u8.buffer === chunk.buffer &&
    w.lo + w.u8.length === page &&
    w.u8.byteOffset + w.u8.length === chunk.byteOffset + co;
  const lo = adjacent ? w.lo : page - (rp - dirty.dirtyRunStart(rp, mask, rp - DIRTY_SCAN)) * PAGE_SIZE;
  const hi = page + (dirty.dirtyRunEnd(rp, mask, rp + DIRTY_SCAN) - rp) * PAGE_SIZE;
  setWindow(as, fr, ci, chunk, true, lo, hi);
}

// ---------------------------------------------------------------------------------------------
// Results, arming and flushes

/**
 * Points the fields the inline probes read at the real windows, or at empty ones while a failed
 * result is pending (see `AddressSpace.res`).
 */
function publish(as: AddressSpace): void {
  const off = as.armed;
  const r = off ? NO_WINDOW : as.readWin;
  as.rLo = r.lo;
  as.rU8 = r.u8;
  as.rU16 = r.u16;
  as.rU32 = r.u32;
  as.rU64 = r.u64;
  as.rN8 = r.u8.length;
  const w = off ? NO_WINDOW : as.writeWin;
  as.wLo = w.lo;
  as.wU8 = w.u8;
  as.wU16 = w.u16;
  as.wU32 = w.u32;
  as.wU64 = w.u64;
  as.wN8 = w.u8.length;
  const cws = as.cpuWindows;
  for (let i = 0; i < cws.length; i++) syncCpuWindow(cws[i]!, w);
}

/**
 * The fields a CpuAccess's inline store probes read: a copy, on the CpuAccess itself, of the
 * address space's write window when CPU stores there are not discarded (see {@link publish}).
 * A copy rather than a read through the address space, which would add a dependent load to every
 * store (docs/architecture.md has the figures).
 */
export interface CpuStoreWindow {
  cLo: number;
  cU8: Uint8Array;
  cU16: Uint16Array;
  cU32: Uint32Array;
  cU64: BigUint64Array;
  cN8: number;
}

/** Registers `cw` with `as`: from now on every change of the write window reaches it. */
export function attachCpuWindow(as: AddressSpace, cw: CpuStoreWindow): void {
  as.cpuWindows.push(cw);
  syncCpuWindow(cw, as.armed ? NO_WINDOW : as.writeWin);
}

/**
 * Points `cw` at write window `w`, unless CPU stores there are discarded. The copy inherits the
 * write window's dirty rule: it covers only pages already dirty for every logging client, so a
 * CPU store that hits has nothing to mark (QEMU's TLB_NOTDIRTY: a clean page takes
 * `notdirty_write` on the slow path until `tlb_set_dirty` lets stores through directly).
 */
function syncCpuWindow(cw: CpuStoreWindow, w: RamWindow): void {
  const c = w.cpu ? w : NO_WINDOW;
  cw.cLo = c.lo;
  cw.cU8 = c.u8;
  cw.cU16 = c.u16;
  cw.cU32 = c.u32;
  cw.cU64 = c.u64;
  cw.cN8 = c.u8.length;
}

/** Records a result of the slow path; a failure disables the inline probes (see `AddressSpace.res`). */
function setResult(as: AddressSpace, r: MemTxResult): void {
  as.res = r;
  if (r !== MEMTX_OK && !as.armed) {
    as.armed = true;
    publish(as);
  }
}

/** Out-of-line entry after a failure: the result starts over as OK and the inline probes return. */
export function disarm(as: AddressSpace): void {
  as.res = MEMTX_OK;
  as.armed = false;
  publish(as);
}

/** Drops every cached write translation (after dirty bits were cleared). */
export function flushWriteTlb(as: AddressSpace): void {
  as.wt.flush();
  as.writeWin = NO_WINDOW;
  publish(as);
}

/** QEMU `tlb_flush`: drops every cached translation (after a view switch). */
export function flushTlb(as: AddressSpace): void {
  as.rt.flush();
  as.wt.flush();
  as.it.flush();
  as.dev.flush();
  as.readWin = NO_WINDOW;
  as.writeWin = NO_WINDOW;
  publish(as);
}

/** Drops the write kinds of the device-page caches (a region's ioeventfds changed). */
export function flushDeviceWrites(as: AddressSpace): void {
  as.dev.flush(true);
}
