/**
 * @module core/cpu-access
 * Guest accesses as an emulated CPU makes them, as opposed to a bus master. QEMU treats the two
 * differently in one place: a write that reaches RAM through a read-only section — ROM,
 * or RAM mapped through a read-only alias such as a PAM `pam-rom` window — is silently discarded by
 * the CPU (TCG's `TLB_DISCARD_WRITE`), while a bus write (`address_space_write`) goes through to
 * the RAM unless the region itself is read-only, and reports `MEMTX_DECODE_ERROR` for ROM.
 * Everything else — RAM, device registers (even behind a read-only alias), unassigned memory — is
 * the same for both, so this wraps an {@link AddressSpace} and only adds that check to stores.
 */

import type { AddressSpace } from './address-space.js';
import { attachCpuWindow, EMPTY_U8, EMPTY_U16, EMPTY_U32, EMPTY_U64 } from './cputlb.js';
import type { FlatView } from './flatview.js';

const PAGE_SIZE = 4096;
// The window probes' "k >= 0 and size-aligned" test, as in core/address-space.
const SIGN_OR_ODD = 0x80000001 | 0;
const SIGN_OR_MISALIGNED_4 = 0x80000003 | 0;
const SIGN_OR_MISALIGNED_8 = 0x80000007 | 0;
/** Entries of the table of pages known to take CPU stores (a power of two). */
const PASS_PAGES = 256;

/** CPU-side typed accesses to an address space (loads as the bus; stores honour read-only sections). */
export class CpuAccess {
  // Pages of the current view where a CPU store is known not to be discarded: one flat range
  // that is not a read-only RAM section covers the whole page. A direct-mapped table of page
  // addresses, probed before each store, so that a store to such a page costs a compare on top
  // of the address space's own helper instead of a search of the view (QEMU's TLB keeps
  // TLB_DISCARD_WRITE per entry for the same reason). Emptied whenever the view changes.
  private readonly passPages = new Float64Array(PASS_PAGES).fill(-1);
  private view: FlatView;

  // The CPU-store window (see core/cputlb's CpuStoreWindow), kept up to date by the address space.
  /** @internal */
  cLo = 0;
  /** @internal */
  cU8: Uint8Array = EMPTY_U8;
  /** @internal */
  cU16: Uint16Array = EMPTY_U16;
  /** @internal */
  cU32: Uint32Array = EMPTY_U32;
  /** @internal */
  cU64: BigUint64Array = EMPTY_U64;
  /** @internal */
  cN8 = 0;

  /**
   * Wraps `as`. The address space keeps a reference to the new object, to keep its store window
   * current: make one per emulated CPU, not one per access.
   */
  constructor(readonly as: AddressSpace) {
    this.view = as.currentView;
    attachCpuWindow(as, this);
  }

  // The last writable RAM range a store hit, in the view it belongs to: stores there skip the
  // flat-view search (an emulated CPU stores to the same RAM range nearly every time). Any new
  // view (map change) misses, so the cache can never outlive the range it describes.
  private okView: unknown = null;
  private okLo = 0;
  private okHi = 0;

  /** Result of the last access (as {@link AddressSpace.lastResult}). */
  get lastResult(): number {
    return this.as.lastResult;
  }

  /**
   * Whether a CPU store at `addr` is discarded: the range there is RAM (not a RAM device, which
   * QEMU reaches through callbacks) and read-only through some region on its path.
   */
  discards(addr: number | bigint): boolean {
    const view = this.as.currentView;
    if (view === this.okView && (addr as number) >= this.okLo && (addr as number) < this.okHi) return false;
    const i = typeof addr === 'number' ? view.indexOf(addr) : view.indexOfBig(addr);
    if (i < 0) return false;
    const fr = view.ranges[i]!;
    const discard = fr.readonly && fr.mr.ram && !fr.mr.ramDevice;
    if (!discard && fr.mr.ram) {
      this.okView = view;
      this.okLo = fr.startN;
      this.okHi = fr.endN;
    }
    return discard;
  }

  /** The inline probe: `addr` lies in a page known to take stores, in the current view. */
  private passes(addr: number): boolean {
    return (
      typeof addr === 'number' &&
      this.passPages[(addr >>> 12) & (PASS_PAGES - 1)] === addr - (addr & (PAGE_SIZE - 1)) &&
      this.as.currentView === this.view
    );
  }

  /**
   * The rest of every store: whether it goes through to the address space. A discarded store
   * completes with MEMTX_OK, as TCG's does; a page that one non-discarding range covers is
   * remembered. Anything but a number address goes through, for the helper to refuse.
   */
  private admit(addr: number): boolean {
    if (typeof addr !== 'number') return true;
    const view = this.as.currentView;
    if (view !== this.view) {
      this.passPages.fill(-1);
      this.view = view;
    }
    const i = view.indexOf(addr);
    if (i < 0) return true;
    const fr = view.ranges[i]!;
    if (fr.readonly && fr.mr.ram && !fr.mr.ramDevice) {
      this.as.resultOk();
      return false;
    }
    const page = addr - (addr & (PAGE_SIZE - 1));
    if (Number.isSafeInteger(addr) && fr.startN <= page && page + PAGE_SIZE <= fr.endN) {
      this.passPages[(addr >>> 12) & (PASS_PAGES - 1)] = page;
    }
    return true;
  }

  ldub(addr: number): number {
    return this.as.ldub(addr);
  }
  lduwLe(addr: number): number {
    return this.as.lduwLe(addr);
  }
  lduwBe(addr: number): number {
    return this.as.lduwBe(addr);
  }
  ldlLe(addr: number): number {
    return this.as.ldlLe(addr);
  }
  ldlBe(addr: number): number {
    return this.as.ldlBe(addr);
  }
  ldqLe(addr: number): bigint {
    return this.as.ldqLe(addr);
  }
  ldqBe(addr: number): bigint {
    return this.as.ldqBe(addr);
  }

  // The little-endian stores first probe the address space's CPU-store window (see the
  // AddressSpace's window fields): guest RAM the CPU may write and that has nothing left to mark
  // dirty, as TCG's TLB lets a store through directly only for an entry with neither
  // TLB_DISCARD_WRITE nor TLB_NOTDIRTY. Anything else takes storeMiss: the page check above,
  // then the address space's own helper (which marks dirty pages and fills the windows).

  /** Stores a byte; discarded (with MEMTX_OK) on a read-only RAM section. */
  stb(addr: number, value: number): void {
    if (typeof addr === 'number' && typeof value === 'number') {
      const o = addr - this.cLo;
      const k = o | 0;
      if (k === o && k >= 0 && k < this.cN8) {
        this.cU8[k] = value;
        return;
      }
    }
    this.storeMiss(addr, value, 1);
  }
  stwLe(addr: number, value: number): void {
    if (typeof addr === 'number' && typeof value === 'number') {
      const o = addr - this.cLo;
      const k = o | 0;
      if (k === o && (k & SIGN_OR_ODD) === 0 && k < this.cN8) {
        this.cU16[k >> 1] = value;
        return;
      }
    }
    this.storeMiss(addr, value, 2);
  }
  stwBe(addr: number, value: number): void {
    if (this.passes(addr) || this.admit(addr)) this.as.stwBe(addr, value);
  }
  stlLe(addr: number, value: number): void {
    if (typeof addr === 'number' && typeof value === 'number') {
      const o = addr - this.cLo;
      const k = o | 0;
      if (k === o && (k & SIGN_OR_MISALIGNED_4) === 0 && k < this.cN8) {
        this.cU32[k >> 2] = value;
        return;
      }
    }
    this.storeMiss(addr, value, 4);
  }
  stlBe(addr: number, value: number): void {
    if (this.passes(addr) || this.admit(addr)) this.as.stlBe(addr, value);
  }
  stqLe(addr: number, value: bigint): void {
    if (typeof addr === 'number' && typeof value === 'bigint') {
      const o = addr - this.cLo;
      const k = o | 0;
      if (k === o && (k & SIGN_OR_MISALIGNED_8) === 0 && k < this.cN8) {
        this.cU64[k >> 3] = value;
        return;
      }
    }
    this.storeMiss(addr, value, 8);
  }
  stqBe(addr: number, value: bigint): void {
    if (this.passes(addr) || this.admit(addr)) this.as.stqBe(addr, value);
  }

  /**
   * The rest of every little-endian store: one function for all sizes, so that it stays out of
   * line and the helpers stay small enough to be inlined into the caller's loop.
   */
  private storeMiss(addr: number, value: number | bigint, size: number): void {
    if (!(this.passes(addr) || this.admit(addr))) return;
    const as = this.as;
    switch (size) {
      case 1:
        as.stb(addr, value as number);
        return;
      case 2:
        as.stwLe(addr, value as number);
        return;
      case 4:
        as.stlLe(addr, value as number);
        return;
      default:
        as.stqLe(addr, value as bigint);
    }
  }
}
