/**
 * @module core/cpu-access
 * Guest accesses as an emulated CPU makes them, as opposed to a bus master. QEMU treats the two
 * differently in one place (spec R9.7): a write that reaches RAM through a read-only section — ROM,
 * or RAM mapped through a read-only alias such as a PAM `pam-rom` window — is silently discarded by
 * the CPU (TCG's `TLB_DISCARD_WRITE`), while a bus write (`address_space_write`) goes through to
 * the RAM unless the region itself is read-only, and reports `MEMTX_DECODE_ERROR` for ROM.
 * Everything else — RAM, device registers (even behind a read-only alias), unassigned memory — is
 * the same for both, so this wraps an {@link AddressSpace} and only adds that check to stores.
 */

import type { AddressSpace } from './address-space.js';

/** CPU-side typed accesses to an address space (loads as the bus; stores honour read-only sections). */
export class CpuAccess {
  constructor(readonly as: AddressSpace) {}

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

  /** Stores a byte; discarded (with MEMTX_OK) on a read-only RAM section. */
  stb(addr: number, value: number): void {
    if (this.discards(addr)) this.as.resultOk();
    else this.as.stb(addr, value);
  }
  stwLe(addr: number, value: number): void {
    if (this.discards(addr)) this.as.resultOk();
    else this.as.stwLe(addr, value);
  }
  stwBe(addr: number, value: number): void {
    if (this.discards(addr)) this.as.resultOk();
    else this.as.stwBe(addr, value);
  }
  stlLe(addr: number, value: number): void {
    if (this.discards(addr)) this.as.resultOk();
    else this.as.stlLe(addr, value);
  }
  stlBe(addr: number, value: number): void {
    if (this.discards(addr)) this.as.resultOk();
    else this.as.stlBe(addr, value);
  }
  stqLe(addr: number, value: bigint): void {
    if (this.discards(addr)) this.as.resultOk();
    else this.as.stqLe(addr, value);
  }
  stqBe(addr: number, value: bigint): void {
    if (this.discards(addr)) this.as.resultOk();
    else this.as.stqBe(addr, value);
  }
}
