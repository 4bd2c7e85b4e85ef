/**
 * @module mtree/lookup
 * "What serves this guest address, and why": the flat range at an address of an address space,
 * plus the path through the region tree that put it there (the containers and aliases crossed from
 * the address space's root down to the terminating region).
 *
 * The path is found by walking the tree the way rendering does (spec 6.1): disabled regions and
 * regions whose extent (clipped by every ancestor's) misses the address are skipped, an alias
 * continues in its target, subregions are tried in list order (priority, then newest first) before
 * their parent, and the first terminating region reached wins. That is the first-writer rule for a
 * single address, so the walk ends at the region of the flat range.
 */

import type { AddressSpace } from '../core/address-space.js';
import type { FlatRange } from '../core/flatview.js';
import type { MemoryRegion } from '../core/region.js';

/** One region on the path to an address. */
export interface PathStep {
  readonly region: MemoryRegion;
  /** Guest address at which the region's offset 0 lies (through the aliases above it). */
  readonly origin: bigint;
  /** How the walk got here: the root, a subregion of the previous step, or the previous step's alias target. */
  readonly via: 'root' | 'subregion' | 'alias';
}

/** What serves one guest address of one address space. */
export interface AddressExplanation {
  readonly space: AddressSpace;
  readonly addr: bigint;
  /** The flat range containing the address, or null if nothing is mapped there. */
  readonly range: FlatRange | null;
  /** The terminating region, or null. */
  readonly region: MemoryRegion | null;
  /** Offset of the address in `region`. */
  readonly offset: bigint | null;
  /** From the root to the terminating region (empty when nothing is mapped). */
  readonly path: PathStep[];
}

function walk(mr: MemoryRegion, base: bigint, addr: bigint, via: PathStep['via'], path: PathStep[]): boolean {
  if (!mr.enabled) return false;
  const start = base + mr.addr;
  if (addr < start || addr >= start + mr.size) return false;
  path.push({ region: mr, origin: start, via });
  const t = mr.alias;
  if (t) {
    // The target's own address cancels out (spec R6.4): its offset 0 lies at start - aliasOffset.
    if (walk(t, start - t.addr - mr.aliasOffset, addr, 'alias', path)) return true;
  } else {
    for (const s of mr.subregions) if (walk(s, start, addr, 'subregion', path)) return true;
    if (mr.terminates) return true;
  }
  path.pop();
  return false;
}

/** Explains what serves guest address `addr` in `as`. */
export function explainAddress(as: AddressSpace, addr: bigint): AddressExplanation {
  const range = as.currentView.rangeAt(addr);
  const path: PathStep[] = [];
  // A root that resolves to nothing (e.g. disabled) renders nothing: no path then.
  if (range) walk(as.root, 0n, addr, 'root', path);
  return {
    space: as,
    addr,
    range,
    region: range ? range.mr : null,
    offset: range ? addr - range.start + range.offsetInRegion : null,
    path,
  };
}
