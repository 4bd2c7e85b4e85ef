/**
 * @module core/listener-diff
 * What an address space's listeners hear when its flat view or its ioeventfds change: the work
 * of QEMU's softmmu/memory.c in `address_space_update_topology_pass` (the two-pass diff of old and
 * new flat ranges: deletions in reverse listener order, then additions, nops and log start/stop in
 * forward order), `flat_range_coalesced_io_notify` (coalesced-MMIO ranges clipped to a flat range),
 * and `address_space_update_ioeventfds` with `address_space_add_del_ioeventfds` (collecting the
 * ioeventfds a view shows and announcing the difference).
 *
 * The functions here work on an address space's listener list and views only; the address space
 * decides when to call them.
 */

import { type FlatRange, type FlatView, type MemoryRegionSection, sectionFromRange } from './flatview.js';
import type { MemoryListener } from './listener.js';
import { type CoalescedRange, ioeventfdBefore, type MemoryRegion, type RegionIoeventfd } from './region.js';

/** An ioeventfd as collected for an address space: the region's entry moved to guest addresses. */
export interface AddressSpaceIoeventfd extends RegionIoeventfd {
  /** Region the ioeventfd belongs to. */
  readonly mr: MemoryRegion;
}

/** A listener of one address space, with the priority it was registered with. */
export interface ListenerEntry {
  readonly listener: MemoryListener;
  readonly priority: number;
}

/** Inserts `listener` after every entry of lower or equal priority (QEMU's listener order). */
export function insertListenerEntry(list: ListenerEntry[], listener: MemoryListener, priority: number): void {
  let i = list.length;
  while (i > 0 && list[i - 1]!.priority > priority) i--;
  list.splice(i, 0, { listener, priority });
}

/** Removes `listener` from `list`, if it is there. */
export function removeListenerEntry(list: ListenerEntry[], listener: MemoryListener): void {
  const i = list.findIndex((e) => e.listener === listener);
  if (i >= 0) list.splice(i, 1);
}

/**
 * QEMU `address_space_update_topology_pass`, run once for deletions (`adding` false) and once for
 * additions: walks the old and new ranges in address order and tells `list` what changed.
 */
export function topologyPass(
  list: readonly ListenerEntry[],
  old: FlatView,
  next: FlatView,
  adding: boolean,
): void {
  const o = old.ranges;
  const n = next.ranges;
  let i = 0;
  let j = 0;
  while (i < o.length || j < n.length) {
    const fo = o[i];
    const fn = n[j];
    if (fo && (!fn || fo.start < fn.start || (fo.start === fn.start && !fo.equals(fn)))) {
      if (!adding) {
        for (const cr of fo.mr.coalesced) coalescedNotify(list, fo, cr, false, old);
        const sec = sectionFromRange(fo, old);
        callReverse(list, (l) => l.regionDel?.(sec));
      }
      i++;
    } else if (fo && fn && fo.equals(fn)) {
      if (adding) {
        const sec = sectionFromRange(fn, old);
        callForward(list, (l) => l.regionNop?.(sec));
        if (fn.dirtyLogMask & ~fo.dirtyLogMask) {
          callForward(list, (l) => l.logStart?.(sec, fo.dirtyLogMask, fn.dirtyLogMask));
        }
        if (fo.dirtyLogMask & ~fn.dirtyLogMask) {
          callReverse(list, (l) => l.logStop?.(sec, fo.dirtyLogMask, fn.dirtyLogMask));
        }
      }
      i++;
      j++;
    } else if (fn) {
      if (adding) {
        const sec = sectionFromRange(fn, old);
        callForward(list, (l) => l.regionAdd?.(sec));
        for (const cr of fn.mr.coalesced) coalescedNotify(list, fn, cr, true, old);
      }
      j++;
    }
  }
}

function callForward(list: readonly ListenerEntry[], f: (l: MemoryListener) => void): void {
  for (const e of list) f(e.listener);
}

function callReverse(list: readonly ListenerEntry[], f: (l: MemoryListener) => void): void {
  for (let i = list.length - 1; i >= 0; i--) f(list[i]!.listener);
}

/** QEMU `flat_range_coalesced_io_notify`: the part of `cr` that `fr` shows, added or deleted. */
export function coalescedNotify(
  list: readonly ListenerEntry[],
  fr: FlatRange,
  cr: CoalescedRange,
  add: boolean,
  view: FlatView,
): void {
  const shift = fr.start - fr.offsetInRegion;
  const s = cr.start + shift;
  const e = s + cr.size;
  const contains = (a: bigint, b: bigint, x: bigint) => x >= a && x < b;
  if (!(contains(fr.start, fr.end, s) || contains(s, e, fr.start))) return;
  const is = s > fr.start ? s : fr.start;
  const ie = e < fr.end ? e : fr.end;
  const sec = sectionFromRange(fr, view);
  if (add) callForward(list, (l) => l.coalescedIoAdd?.(sec, is, ie - is));
  else callReverse(list, (l) => l.coalescedIoDel?.(sec, is, ie - is));
}

/** QEMU `address_space_update_ioeventfds`, first half: the ioeventfds `view` shows, in its order. */
export function collectIoeventfds(view: FlatView): AddressSpaceIoeventfd[] {
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
  return fresh;
}

/**
 * QEMU `address_space_add_del_ioeventfds`: walks the sorted old and new lists together and tells
 * `list` about each ioeventfd that went away (forward order) or appeared (reverse order).
 */
export function announceIoeventfds(
  list: readonly ListenerEntry[],
  old: readonly AddressSpaceIoeventfd[],
  fresh: readonly AddressSpaceIoeventfd[],
  view: FlatView,
): void {
  let i = 0;
  let j = 0;
  while (i < old.length || j < fresh.length) {
    const a = old[i];
    const b = fresh[j];
    if (a && (!b || ioeventfdBefore(a, b))) {
      const sec = fdSection(a, view);
      callForward(list, (l) => l.eventfdDel?.(sec, a.matchData, a.data, a.notifier));
      i++;
    } else if (b && (!a || ioeventfdBefore(b, a))) {
      const sec = fdSection(b, view);
      callReverse(list, (l) => l.eventfdAdd?.(sec, b.matchData, b.data, b.notifier));
      j++;
    } else {
      i++;
      j++;
    }
  }
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
