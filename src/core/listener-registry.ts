/**
 * @module core/listener-registry
 * The listeners registered on a memory system, in QEMU's global order (softmmu/memory.c
 * `memory_listener_register` / `memory_listener_unregister` with `listener_add_address_space` /
 * `listener_del_address_space`), and the calls that go to every listener rather than to those of
 * one address space: coalesced-MMIO updates (`memory_region_update_coalesced_range`) and dirty-log
 * syncs (`memory_region_sync_dirty_bitmap`, `memory_global_after_dirty_log_sync`).
 */

import type { AddressSpace } from './address-space.js';
import { ListenerError } from './errors.js';
import { sectionFromRange } from './flatview.js';
import type { MemoryListener } from './listener.js';
import type { CoalescedRange, MemoryRegion } from './region.js';
import type { MemorySystem } from './system.js';

/** A listener registration: the listener and the address space it watches. */
export interface Registration {
  readonly listener: MemoryListener;
  readonly as: AddressSpace;
  readonly priority: number;
}

/** QEMU `memory_listener_register`. */
export function registerListener(ms: MemorySystem, listener: MemoryListener, as: AddressSpace): void {
  if (ms.registrations.some((r) => r.listener === listener)) {
    throw new ListenerError(`listener ${listener.name ?? '(unnamed)'} is already registered`);
  }
  if (listener.logSync && listener.logSyncGlobal) {
    throw new ListenerError(
      `listener ${listener.name ?? '(unnamed)'} defines both logSync and logSyncGlobal`,
    );
  }
  const priority = listener.priority ?? 0;
  const reg: Registration = { listener, as, priority };
  insertByPriority(ms.registrations, reg);
  as.insertListener(reg.listener, priority);
  // listener_add_address_space
  listener.begin?.();
  if (ms.globalDirtyTracking) listener.logGlobalStart?.();
  const view = as.currentView;
  for (const fr of view.ranges) {
    const sec = sectionFromRange(fr, view);
    listener.regionAdd?.(sec);
    if (fr.dirtyLogMask) listener.logStart?.(sec, 0, fr.dirtyLogMask);
  }
  listener.commit?.();
}

/** QEMU `memory_listener_unregister`. */
export function unregisterListener(ms: MemorySystem, listener: MemoryListener): void {
  const i = ms.registrations.findIndex((r) => r.listener === listener);
  if (i < 0) throw new ListenerError(`listener ${listener.name ?? '(unnamed)'} is not registered`);
  const reg = ms.registrations[i]!;
  const view = reg.as.currentView;
  listener.begin?.();
  for (const fr of view.ranges) {
    const sec = sectionFromRange(fr, view);
    if (fr.dirtyLogMask) listener.logStop?.(sec, fr.dirtyLogMask, 0);
    listener.regionDel?.(sec);
  }
  listener.commit?.();
  ms.registrations.splice(i, 1);
  reg.as.removeListenerEntry(listener);
}

/** QEMU `memory_region_update_coalesced_range`. */
export function coalescedChanged(ms: MemorySystem, mr: MemoryRegion, cr: CoalescedRange, add: boolean): void {
  for (const as of ms.addressSpaces) {
    const view = as.currentView;
    for (const fr of view.ranges) {
      if (fr.mr === mr) as.coalescedNotify(fr, cr, add, view);
    }
  }
}

/**
 * QEMU `memory_region_sync_dirty_bitmap`: asks listeners to push their dirty state into the
 * bitmaps, for the ranges of `mr` (or of every logged region when null).
 */
export function logSync(ms: MemorySystem, mr: MemoryRegion | null = null): void {
  for (const r of ms.registrations) {
    const l = r.listener;
    if (l.logSync) {
      const view = r.as.currentView;
      for (const fr of view.ranges) {
        if (fr.dirtyLogMask && (!mr || fr.mr === mr)) l.logSync(sectionFromRange(fr, view));
      }
    } else if (l.logSyncGlobal) {
      l.logSyncGlobal();
    }
  }
}

/** QEMU `memory_global_after_dirty_log_sync`. */
export function logGlobalAfterSync(ms: MemorySystem): void {
  for (const r of ms.registrations) r.listener.logGlobalAfterSync?.();
}

/** Inserts after every entry with priority <= the new one (QEMU's listener order). */
function insertByPriority<T extends { priority: number }>(list: T[], item: T): void {
  let i = list.length;
  while (i > 0 && list[i - 1]!.priority > item.priority) i--;
  list.splice(i, 0, item);
}
