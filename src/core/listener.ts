/**
 * @module core/listener
 * `MemoryListener`: an observer of one address space's flat view (QEMU `MemoryListener`). An
 * accelerator or a vhost backend uses it to mirror guest memory; a test uses it to see exactly what
 * QEMU would announce. Every callback is optional.
 */

import type { MemoryRegionSection } from './flatview.js';
import type { EventNotifier } from './types.js';

/** Callbacks of a memory listener; see QEMU `include/exec/memory.h` for the contract of each. */
export interface MemoryListener {
  /** Name for diagnostics. */
  readonly name?: string;
  /**
   * Order among listeners (unsigned, default 0): "forward" calls go in ascending priority order,
   * "reverse" calls in descending order; equal priorities keep registration order.
   */
  readonly priority?: number;
  /** A topology commit starts (called on every registered listener). */
  begin?(): void;
  /** A topology commit ends. */
  commit?(): void;
  /** A range appeared (forward order). */
  regionAdd?(section: MemoryRegionSection): void;
  /** A range disappeared (reverse order); all deletions of a commit come before its additions. */
  regionDel?(section: MemoryRegionSection): void;
  /** A range is unchanged by this commit (forward order). */
  regionNop?(section: MemoryRegionSection): void;
  /** Dirty logging started for a range: `newMask` has bits `oldMask` lacks. */
  logStart?(section: MemoryRegionSection, oldMask: number, newMask: number): void;
  /** Dirty logging stopped for a range. */
  logStop?(section: MemoryRegionSection, oldMask: number, newMask: number): void;
  /** Synchronise the dirty bitmap of a range. */
  logSync?(section: MemoryRegionSection): void;
  /** Synchronise all dirty bitmaps at once (exclusive with `logSync`). */
  logSyncGlobal?(): void;
  /** Global dirty logging started. */
  logGlobalStart?(): void;
  /** Global dirty logging stopped. */
  logGlobalStop?(): void;
  /** After every global sync. */
  logGlobalAfterSync?(): void;
  /** An ioeventfd appeared in the address space. */
  eventfdAdd?(section: MemoryRegionSection, matchData: boolean, data: bigint, notifier: EventNotifier): void;
  /** An ioeventfd disappeared from the address space. */
  eventfdDel?(section: MemoryRegionSection, matchData: boolean, data: bigint, notifier: EventNotifier): void;
  /** A coalesced-MMIO range appeared; `addr` and `len` are guest addresses. */
  coalescedIoAdd?(section: MemoryRegionSection, addr: bigint, len: bigint): void;
  /** A coalesced-MMIO range disappeared. */
  coalescedIoDel?(section: MemoryRegionSection, addr: bigint, len: bigint): void;
}
