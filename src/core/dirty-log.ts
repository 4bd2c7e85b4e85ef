/**
 * @module core/dirty-log
 * Dirty logging of a memory system: global dirty tracking with its reasons and the stop QEMU
 * postpones while the guest is stopped (softmmu/memory.c `memory_global_dirty_log_start` /
 * `_stop`, `memory_global_dirty_log_stop_postponed_run`), the per-region dirty API
 * (`memory_region_set_dirty`, `_reset_dirty`, `_snapshot_and_clear_dirty`, `_snapshot_get_dirty`,
 * `memory_region_get_dirty_log_mask`), and the marking after a direct RAM write
 * (softmmu/physmem.c `invalidate_and_set_dirty`). The bitmaps themselves are core/dirty's.
 */

import { checkSpan, printable, toBool } from './address.js';
import { DIRTY_MEMORY_NUM, type DirtyBitmapSnapshot } from './dirty.js';
import { InvalidArgumentError } from './errors.js';
import { RAM_MIGRATABLE, type RAMBlock } from './ramblock.js';
import { DIRTY_MEMORY_CODE, DIRTY_MEMORY_MIGRATION, type MemoryRegion } from './region.js';
import type { MemorySystem } from './system.js';

/**
 * Tells the memory system that the guest stopped or started running (what QEMU's run-state
 * change handlers hear from `vm_stop` / `vm_start`). A dirty-log stop requested while the guest
 * was stopped takes effect when it runs again.
 */
export function setRunning(ms: MemorySystem, running: boolean): void {
  toBool(running, 'setRunning');
  ms.runState = running;
  if (running && ms.postponedStopFlags) runPostponedStop(ms);
}

/**
 * QEMU `memory_global_dirty_log_start`: adds tracking reasons (`GLOBAL_DIRTY_MIGRATION` = 1,
 * `DIRTY_RATE` = 2, `LIMIT` = 4). A stop postponed while the guest was stopped is settled first,
 * minus the reasons being started. The first reason tells listeners (`logGlobalStart`) and then
 * re-renders, which adds the MIGRATION client to RAM ranges (listeners hear `logStart`).
 */
export function globalDirtyLogStart(ms: MemorySystem, flags = 1): void {
  checkGlobalDirtyFlags(flags, 'globalDirtyLogStart');
  if (ms.postponedStopFlags) {
    ms.postponedStopFlags &= ~flags;
    runPostponedStop(ms);
  }
  const add = flags & ~ms.globalDirtyTracking;
  if (!add) return;
  const old = ms.globalDirtyTracking;
  ms.globalDirtyTracking |= add;
  if (!old) {
    for (const r of ms.registrations) r.listener.logGlobalStart?.();
    ms.begin();
    ms.everythingChanged();
    ms.commit();
  }
}

/**
 * QEMU `memory_global_dirty_log_stop`: removes tracking reasons; when none is left, re-renders
 * (listeners hear `logStop`) and then calls `logGlobalStop` in reverse order. While the guest is
 * stopped ({@link running} false) the stop is postponed, and batched with later ones, until it
 * runs again or logging is started again.
 */
export function globalDirtyLogStop(ms: MemorySystem, flags = 1): void {
  checkGlobalDirtyFlags(flags, 'globalDirtyLogStop');
  // QEMU asserts this in memory_global_dirty_log_do_stop (for a postponed stop, only later).
  if ((ms.globalDirtyTracking & flags) !== flags) {
    throw new InvalidArgumentError(
      `globalDirtyLogStop(${flags}): reasons ${flags & ~ms.globalDirtyTracking} were never started`,
    );
  }
  if (!ms.runState) {
    ms.postponedStopFlags |= flags;
    return;
  }
  doGlobalDirtyLogStop(ms, flags);
}

/** QEMU `memory_global_dirty_log_stop_postponed_run`. */
function runPostponedStop(ms: MemorySystem): void {
  const flags = ms.postponedStopFlags;
  ms.postponedStopFlags = 0;
  if (flags) doGlobalDirtyLogStop(ms, flags);
}

/** QEMU `memory_global_dirty_log_do_stop`. */
function doGlobalDirtyLogStop(ms: MemorySystem, flags: number): void {
  const del = flags & ms.globalDirtyTracking;
  if (!del) return;
  ms.globalDirtyTracking &= ~del;
  if (!ms.globalDirtyTracking) {
    ms.begin();
    ms.everythingChanged();
    ms.commit();
    const regs = ms.registrations;
    for (let i = regs.length - 1; i >= 0; i--) regs[i]!.listener.logGlobalStop?.();
  }
}

/**
 * QEMU `memory_region_snapshot_and_clear_dirty`: syncs `mr`, then takes and clears `client`'s
 * dirty bits for `[offset, offset+size)` of the region (widened to 64 pages).
 * @param offset byte offset in the region (not a ram_addr).
 * @param size bytes; the range must lie inside the region's RAM.
 * @param client `DIRTY_MEMORY_VGA`, `DIRTY_MEMORY_CODE` or `DIRTY_MEMORY_MIGRATION`.
 */
export function snapshotAndClearDirty(
  ms: MemorySystem,
  mr: MemoryRegion,
  offset: number,
  size: number,
  client: number,
): DirtyBitmapSnapshot {
  const rb = dirtyRange(ms, mr, offset, size, 'snapshotAndClearDirty');
  checkClient(client, 'snapshotAndClearDirty');
  ms.logSync(mr);
  const snap = ms.dirty.snapshotAndClear(rb.offset + offset, size, client);
  ms.logGlobalAfterSync();
  return snap;
}

/** QEMU `memory_region_snapshot_get_dirty`: region offsets into a snapshot. */
export function snapshotGetDirty(
  ms: MemorySystem,
  mr: MemoryRegion,
  snap: DirtyBitmapSnapshot,
  offset: number,
  size: number,
): boolean {
  const rb = dirtyRange(ms, mr, offset, size, 'snapshotGetDirty');
  return ms.dirty.snapshotGetDirty(snap, rb.offset + offset, size);
}

/**
 * QEMU `memory_region_set_dirty`: marks `[offset, offset+size)` of `mr` dirty for its clients.
 * @param offset byte offset in the region (not a ram_addr).
 * @param size bytes; the range must lie inside the region's RAM.
 */
export function setDirty(ms: MemorySystem, mr: MemoryRegion, offset: number, size: number): void {
  const rb = dirtyRange(ms, mr, offset, size, 'setDirty');
  ms.dirty.setRange(rb.offset + offset, size, regionDirtyMask(ms, mr));
}

/** QEMU `memory_region_reset_dirty`: clears `client`'s bits for the range of `mr`. */
export function resetDirty(
  ms: MemorySystem,
  mr: MemoryRegion,
  offset: number,
  size: number,
  client: number,
): boolean {
  const rb = dirtyRange(ms, mr, offset, size, 'resetDirty');
  checkClient(client, 'resetDirty');
  return ms.dirty.testAndClear(rb.offset + offset, size, client);
}

/**
 * The RAM block of `mr` after checking that `mr` is a RAM-backed region of this system and that
 * `[offset, offset + size)` (region offsets, in bytes) lies inside its used length: a range that
 * ran on would touch the bits of whatever block follows in ram_addr space.
 */
function dirtyRange(
  ms: MemorySystem,
  mr: MemoryRegion,
  offset: number,
  size: number,
  what: string,
): RAMBlock {
  ms.checkOwn(mr, what);
  const rb = mr.ramBlock;
  if (!rb) throw new InvalidArgumentError(`${what}: region ${mr.label} has no RAM`);
  checkSpan(offset, size, rb.usedLength, `${what} of ${mr.label}`);
  return rb;
}

/** QEMU `memory_region_get_dirty_log_mask`. */
export function regionDirtyMask(ms: MemorySystem, mr: MemoryRegion): number {
  let mask = mr.dirtyLogMask;
  const rb = mr.ramBlock;
  if (ms.globalDirtyTracking && ((rb && rb.flags & RAM_MIGRATABLE) || mr.isIommu)) {
    mask |= 1 << DIRTY_MEMORY_MIGRATION;
  }
  if (ms.translatesCode && rb) mask |= 1 << DIRTY_MEMORY_CODE;
  return mask;
}

/** QEMU `invalidate_and_set_dirty`: after a direct write of RAM. */
export function invalidateAndSetDirty(
  ms: MemorySystem,
  mr: MemoryRegion,
  offset: number,
  length: number,
): void {
  let mask = regionDirtyMask(ms, mr);
  if (mask !== 0) {
    const start = mr.ramBlock!.offset + offset;
    mask = ms.dirty.rangeIncludesClean(start, length, mask);
    if (mask & (1 << DIRTY_MEMORY_CODE)) {
      ms.onCodeWrite?.(start, length);
      mask &= ~(1 << DIRTY_MEMORY_CODE);
    }
    ms.dirty.setRange(start, length, mask);
  }
  const hook = ms.onRamWrite;
  if (hook !== null) hook(mr, offset, length);
}

/** Throws unless `client` is a dirty memory client (`DIRTY_MEMORY_VGA`, `_CODE` or `_MIGRATION`). */
function checkClient(client: number, what: string): void {
  if (!Number.isInteger(client) || client < 0 || client >= DIRTY_MEMORY_NUM) {
    throw new InvalidArgumentError(`${what}: ${printable(client)} is not a dirty memory client (0, 1 or 2)`);
  }
}

/** QEMU's assertion on global dirty-log reasons: a non-empty subset of `GLOBAL_DIRTY_MASK` (7). */
function checkGlobalDirtyFlags(flags: number, what: string): void {
  if (!Number.isInteger(flags) || flags < 1 || flags > 7) {
    throw new InvalidArgumentError(
      `${what}: ${printable(flags)} is not a set of dirty-log reasons (1 migration, 2 dirty rate, 4 limit)`,
    );
  }
}
