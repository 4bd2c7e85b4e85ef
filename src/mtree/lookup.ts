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

/**
 * Fills `path` with the regions from `root` down to the one that serves `addr`; false if none does.
 * Depth first without recursion (the nesting depth comes from the input): each frame is a region on
 * the current path and the next of its candidates (alias target or subregions) to try.
 */
function walk(root: MemoryRegion, addr: bigint, path: PathStep[]): boolean {
  const covers = (mr: MemoryRegion, base: bigint) =>
    mr.enabled && addr >= base + mr.addr && addr < base + mr.addr + mr.size;
  if (!covers(root, 0n)) return false;
  const frames: Array<{ next: readonly MemoryRegion[]; bases: bigint[]; i: number }> = [];
  const enter = (mr: MemoryRegion, base: bigint, via: PathStep['via']): void => {
    const start = base + mr.addr;
    path.push({ region: mr, origin: start, via });
    const t = mr.alias;
    // The target's own address cancels out (spec R6.4): its offset 0 lies at start - aliasOffset.
    if (t) frames.push({ next: [t], bases: [start - t.addr - mr.aliasOffset], i: 0 });
    else frames.push({ next: mr.subregions, bases: [start], i: 0 });
  };
  enter(root, 0n, 'root');
  while (frames.length) {
    const f = frames[frames.length - 1]!;
    const step = path[path.length - 1]!;
    const viaAlias = step.region.alias !== null;
    if (f.i < f.next.length) {
      const c = f.next[f.i++]!;
      const base = viaAlias ? f.bases[0]! : step.origin;
      if (covers(c, base)) enter(c, base, viaAlias ? 'alias' : 'subregion');
      continue;
    }
    // No candidate below serves the address: this region does if it terminates.
    if (!viaAlias && step.region.terminates) return true;
    frames.pop();
    path.pop();
  }
  return false;
}

/** Explains what serves guest address `addr` in `as`. */
export function explainAddress(as: AddressSpace, addr: bigint): AddressExplanation {
  const range = as.currentView.rangeAt(addr);
  const path: PathStep[] = [];
  // A root that resolves to nothing (e.g. disabled) renders nothing: no path then.
  if (range) walk(as.root, addr, path);
  return {
    space: as,
    addr,
    range,
    region: range ? range.mr : null,
    offset: range ? addr - range.start + range.offsetInRegion : null,
    path,
  };
}
