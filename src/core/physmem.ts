/**
 * @module core/physmem
 * The exact access paths of an address space, as QEMU's softmmu/physmem.c has them:
 * `flatview_translate` (with `address_space_translate_iommu` for IOMMU regions), the
 * `flatview_read/write` + `_continue` loops behind `address_space_rw`, `address_space_write_rom`,
 * `address_space_access_valid`, and `address_space_map` / `address_space_unmap` with
 * `flatview_extend_translation` and the single bounce buffer. `memory_access_is_direct` (from
 * include/exec/memory.h) decides which regions are copied and which are dispatched.
 *
 * Numbers serve addresses below 2^53; an access reaching 2^53 or beyond takes the exact bigint
 * variants. Translation writes its outputs into fields of the address space (`tMr`, `tXlat`,
 * `tLen`), so that it allocates nothing.
 */

import { checkRange, printable, toBool, toU64, type U64Input } from './address.js';
import type { AddressSpace, Mapping } from './address-space.js';
import { InvalidArgumentError } from './errors.js';
import { type FlatView, sectionEnd, sectionEndBig } from './flatview.js';
import { IOMMU_RO, IOMMU_WO } from './iommu.js';
import type { MemoryRegion } from './region.js';
import {
  MEMTX_ACCESS_ERROR,
  MEMTX_DECODE_ERROR,
  MEMTX_OK,
  MEMTXATTRS_UNSPECIFIED,
  type MemTxAttrs,
  type MemTxResult,
} from './types.js';
import { bytesToValue, valueToBytes } from './values.js';

const PAGE_SIZE = 4096;
/** Accesses that end at or below this are done with number addresses. */
export const SAFE_LIMIT = 2 ** 53;
const SAFE_LIMIT_BIG = 2n ** 53n;

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

// ---------------------------------------------------------------------------------------------
// Translation

/**
 * QEMU `flatview_translate` for a number address: region, offset in it and usable length (RAM is
 * clamped to its range, MMIO is not), following IOMMUs. Results land in `as.tMr` / `tXlat` / `tLen`.
 */
export function translate(
  as: AddressSpace,
  view: FlatView,
  addr: number,
  len: number,
  isWrite: boolean,
  attrs: MemTxAttrs,
): void {
  const i = view.indexOf(addr);
  if (i < 0) {
    as.tMr = as.system.unassigned;
    as.tXlat = addr;
    as.tLen = len;
    return;
  }
  const fr = view.ranges[i]!;
  if (Number.isNaN(fr.offsetN)) {
    translateBig(as, view, BigInt(addr), len, isWrite, attrs);
    return;
  }
  const mr = fr.mr;
  const within = addr - fr.startN;
  as.tMr = mr;
  as.tXlat = within + fr.offsetN;
  as.tLen = mr.ram
    ? Math.min(len, sectionEnd(fr.startN, fr.endN, addr, as.system.targetPageSize) - addr)
    : len;
  if (mr.isIommu) translateIommu(as, BigInt(as.tXlat), isWrite, attrs);
}

/** Exact variant of {@link translate} for addresses at or above 2^53. */
export function translateBig(
  as: AddressSpace,
  view: FlatView,
  addr: bigint,
  len: number,
  isWrite: boolean,
  attrs: MemTxAttrs,
): void {
  const i = view.indexOfBig(addr);
  if (i < 0) {
    as.tMr = as.system.unassigned;
    // Only the alignment of the offset matters to the unassigned region: keep the low bits exact.
    as.tXlat = lowBits(addr);
    as.tLen = len;
    return;
  }
  const fr = view.ranges[i]!;
  const mr = fr.mr;
  const xlat = addr - fr.start + fr.offsetInRegion;
  as.tMr = mr;
  as.tXlat = xlat < SAFE_LIMIT_BIG ? Number(xlat) : lowBits(xlat);
  const rest = sectionEndBig(fr.start, fr.end, addr, as.system.targetPageSize) - addr;
  as.tLen = mr.ram && rest < BigInt(len) ? Number(rest) : len;
  if (mr.isIommu) translateIommu(as, xlat, isWrite, attrs);
}

/** QEMU `address_space_translate_iommu`. */
function translateIommu(as: AddressSpace, xlat: bigint, isWrite: boolean, attrs: MemTxAttrs): void {
  let mr = as.tMr;
  for (let hops = 0; mr.isIommu; hops++) {
    if (hops > 64) throw new InvalidArgumentError(`IOMMU translation through ${mr.label} does not terminate`);
    const ops = mr.iommuOps!;
    const idx = ops.attrsToIndex ? ops.attrsToIndex(attrs) : 0;
    const e = ops.translate(xlat, isWrite ? IOMMU_WO : IOMMU_RO, idx);
    if (!(e.perm & (isWrite ? IOMMU_WO : IOMMU_RO)) || !e.targetAs) {
      as.tMr = as.system.unassigned;
      return;
    }
    const addr = (e.translatedAddr & ~e.addrMask) | (xlat & e.addrMask);
    const room = (addr | e.addrMask) - addr + 1n;
    if (room < BigInt(as.tLen)) as.tLen = Number(room);
    const target = e.targetAs;
    const tv = target.view;
    const i = tv.indexOfBig(addr);
    if (i < 0) {
      as.tMr = as.system.unassigned;
      as.tXlat = lowBits(addr);
      return;
    }
    const fr = tv.ranges[i]!;
    mr = fr.mr;
    xlat = addr - fr.start + fr.offsetInRegion;
    as.tMr = mr;
    as.tXlat = xlat < SAFE_LIMIT_BIG ? Number(xlat) : lowBits(xlat);
    const rest = sectionEndBig(fr.start, fr.end, addr, as.system.targetPageSize) - addr;
    if (mr.ram && rest < BigInt(as.tLen)) as.tLen = Number(rest);
  }
}

// ---------------------------------------------------------------------------------------------
// Buffer accesses

/** QEMU `address_space_rw`. */
export function addressSpaceRw(
  as: AddressSpace,
  addr: U64Input,
  buf: Uint8Array,
  isWrite: boolean,
  attrs: MemTxAttrs,
): MemTxResult {
  if (!(buf instanceof Uint8Array)) throw new InvalidArgumentError('buffer must be a Uint8Array');
  const len = buf.length;
  if (typeof addr === 'number' && Number.isSafeInteger(addr) && addr >= 0 && addr + len <= SAFE_LIMIT) {
    return len === 0 ? MEMTX_OK : flatviewAccess(as, as.view, addr, null, buf, len, isWrite, attrs);
  }
  const a = toU64(addr, `${isWrite ? 'write' : 'read'} in "${as.name}"`);
  checkRange(a, BigInt(len), `${isWrite ? 'write' : 'read'} in "${as.name}"`);
  if (len === 0) return MEMTX_OK;
  if (a + BigInt(len) <= SAFE_LIMIT_BIG)
    return flatviewAccess(as, as.view, Number(a), null, buf, len, isWrite, attrs);
  return flatviewAccess(as, as.view, 0, a, buf, len, isWrite, attrs);
}

/**
 * QEMU `flatview_read/write` + `_continue`: translate, access the chunk, repeat from where it
 * ended. The access starts at `addr` when `addrBig` is null (it ends below 2^53), else at the exact
 * `addrBig`; the loop is shared and only the translation differs.
 */
function flatviewAccess(
  as: AddressSpace,
  view: FlatView,
  addr: number,
  addrBig: bigint | null,
  buf: Uint8Array,
  len: number,
  isWrite: boolean,
  attrs: MemTxAttrs,
): MemTxResult {
  let result = MEMTX_OK;
  let pos = 0;
  if (addrBig === null) translate(as, view, addr, len, isWrite, attrs);
  else translateBig(as, view, addrBig, len, isWrite, attrs);
  if (attrs.memory && !as.tMr.ram) return MEMTX_ACCESS_ERROR;
  for (;;) {
    const l = accessChunk(as, buf, pos, isWrite, attrs);
    result |= as.chunkResult;
    len -= l;
    addr += l;
    pos += l;
    if (len === 0) return result;
    if (addrBig === null) translate(as, view, addr, len, isWrite, attrs);
    else translateBig(as, view, addrBig + BigInt(pos), len, isWrite, attrs);
  }
}

/**
 * One step of the access loop on the translated chunk; returns its length and leaves its result
 * in `as.chunkResult`.
 */
function accessChunk(
  as: AddressSpace,
  buf: Uint8Array,
  pos: number,
  isWrite: boolean,
  attrs: MemTxAttrs,
): number {
  const mr = as.tMr;
  const xlat = as.tXlat;
  let l = as.tLen;
  if (attrs.memory && !mr.ram) {
    as.chunkResult = MEMTX_ACCESS_ERROR;
    return l;
  }
  if (isWrite ? isDirectWrite(mr) : isDirectRead(mr)) {
    const block = mr.ramBlock!;
    if (xlat >= block.maxLength) {
      // A RAM region made larger than its block (setSize does not resize RAM): QEMU would run
      // off its host memory; here the bytes past the block behave as unassigned.
      if (!isWrite) buf.fill(0, pos, pos + l);
      as.chunkResult = MEMTX_DECODE_ERROR;
      return l;
    }
    l = Math.min(l, block.maxLength - xlat);
    if (isWrite) {
      block.write(xlat, buf, pos, l);
      as.system.invalidateAndSetDirty(mr, xlat, l);
    } else {
      block.read(xlat, buf, pos, l);
    }
    as.chunkResult = MEMTX_OK;
    return l;
  }
  const io = as.system.dispatcher;
  l = io.accessSize(mr, l, xlat);
  const be = io.isBigEndian(mr);
  if (isWrite) {
    io.write(mr, xlat, bytesToValue(buf, pos, l, be), l, attrs);
  } else {
    valueToBytes(io.read(mr, xlat, l, attrs), buf, pos, l, be);
  }
  as.chunkResult = io.result;
  return l;
}

/** QEMU `address_space_write_rom` (see {@link AddressSpace.writeRom}). */
export function writeRom(as: AddressSpace, addr: U64Input, buf: Uint8Array): MemTxResult {
  if (!(buf instanceof Uint8Array)) throw new InvalidArgumentError('writeRom: buffer must be a Uint8Array');
  const a = toU64(addr, `writeRom in "${as.name}"`);
  checkRange(a, BigInt(buf.length), `writeRom in "${as.name}"`);
  let cur = a;
  let pos = 0;
  let len = buf.length;
  const view = as.view;
  while (len > 0) {
    translateBig(as, view, cur, len, true, MEMTXATTRS_UNSPECIFIED);
    const mr = as.tMr;
    let l = as.tLen;
    if (!(mr.ram || (mr.romDevice && mr.romdMode))) {
      l = as.system.dispatcher.accessSize(mr, l, as.tXlat);
    } else {
      const block = mr.ramBlock!;
      // Bytes past the block of an enlarged RAM region are skipped like any non-RAM chunk.
      if (as.tXlat < block.maxLength) {
        l = Math.min(l, block.maxLength - as.tXlat);
        block.write(as.tXlat, buf, pos, l);
        as.system.invalidateAndSetDirty(mr, as.tXlat, l);
      }
    }
    len -= l;
    pos += l;
    cur += BigInt(l);
  }
  return MEMTX_OK;
}

/** QEMU `address_space_access_valid` (see {@link AddressSpace.accessValid}). */
export function accessValid(
  as: AddressSpace,
  addr: U64Input,
  len: number,
  isWrite: boolean,
  attrs: MemTxAttrs,
): boolean {
  let cur = toU64(addr, `accessValid in "${as.name}"`);
  if (!Number.isSafeInteger(len) || len < 0) {
    throw new InvalidArgumentError(
      `accessValid in "${as.name}": length ${printable(len)} is not a byte count`,
    );
  }
  toBool(isWrite, `accessValid in "${as.name}": isWrite`);
  checkRange(cur, BigInt(len), `accessValid in "${as.name}"`);
  const view = as.view;
  while (len > 0) {
    translateBig(as, view, cur, len, isWrite, attrs);
    const mr = as.tMr;
    let l = as.tLen;
    if (!(isWrite ? isDirectWrite(mr) : isDirectRead(mr))) {
      // QEMU bounds the size by the alignment of the guest address here, not of the offset.
      l = as.system.dispatcher.accessSize(mr, l, lowBits(cur));
      if (!as.system.dispatcher.valid(mr, as.tXlat, l, isWrite, attrs)) return false;
    }
    len -= l;
    cur += BigInt(l);
  }
  return true;
}

// ---------------------------------------------------------------------------------------------
// Zero-copy access

/** QEMU `address_space_map` with `flatview_extend_translation` (see {@link AddressSpace.map}). */
export function map(
  as: AddressSpace,
  addr: U64Input,
  len: number,
  isWrite: boolean,
  attrs: MemTxAttrs,
): Mapping | null {
  const a = toU64(addr, `map in "${as.name}"`);
  if (len === 0) return null;
  checkRange(a, BigInt(len), `map in "${as.name}"`);
  const view = as.view;
  translateBig(as, view, a, len, isWrite, attrs);
  const mr = as.tMr;
  const xlat = as.tXlat;
  if (!(isWrite ? isDirectWrite(mr) : isDirectRead(mr))) {
    const bounce = as.system.acquireBounce();
    if (!bounce) return null;
    const l = Math.min(as.tLen, PAGE_SIZE);
    const data = bounce.subarray(0, l);
    if (!isWrite) as.read(a, data);
    return { data, bounce: true, addr: a, isWrite, region: mr, offset: xlat };
  }
  // flatview_extend_translation: keep going while the next piece continues the same region.
  let done = as.tLen;
  while (done < len) {
    translateBig(as, view, a + BigInt(done), len - done, isWrite, attrs);
    if (as.tMr !== mr || as.tXlat !== xlat + done) break;
    done += as.tLen;
  }
  const block = mr.ramBlock!;
  const data = block.hostView(xlat, Math.min(done, block.maxLength - xlat));
  return { data, bounce: false, addr: a, isWrite, region: mr, offset: xlat };
}

/** QEMU `address_space_unmap` (see {@link AddressSpace.unmap}). */
export function unmap(as: AddressSpace, mapping: Mapping, accessLen: number): void {
  if (mapping.bounce) {
    if (mapping.isWrite && accessLen > 0) as.write(mapping.addr, mapping.data.subarray(0, accessLen));
    as.system.releaseBounce();
    return;
  }
  if (mapping.isWrite && accessLen > 0) {
    as.system.invalidateAndSetDirty(mapping.region, mapping.offset, accessLen);
  }
}
