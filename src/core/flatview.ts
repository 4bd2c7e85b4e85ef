/**
 * @module core/flatview
 * Flattening a region tree into a FlatView: sorted, disjoint ranges, each served by one terminating
 * region (QEMU `render_memory_region`, `flatview_simplify`, `memory_region_get_flatview_root`).
 *
 * Rendering is exact (bigint) and follows QEMU's algorithm to the letter: regions are visited in
 * subregion-list order, subregions before their parent, and a range once painted is never replaced
 * ("first writer wins"). The only departure is speed: QEMU inserts each gap a terminating region
 * fills into the sorted range list (a shift of every later range, so quadratic in the ranges);
 * here the walk records each terminating region's clip in paint order and one sweep over the sorted
 * clip ends gives every address to the first region that painted it, which is the same result.
 */

import { SIZE_2_64 } from './address.js';
import { AliasCycleError } from './errors.js';

/** Deepest nesting of regions and alias hops one render follows. */
const MAX_RENDER_DEPTH = 1024;
/** The default target page size of dispatch sections (QEMU `TARGET_PAGE_SIZE` on x86 and Arm virt). */
const SECTION_PAGE = 4096;

const EXACT = 2n ** 53n;

import { IntMinHeap } from './int-heap.js';
import type { MemoryRegion } from './region.js';

/** One piece of a flat view (QEMU `FlatRange`). Immutable once the view is built. */
export class FlatRange {
  constructor(
    /** The terminating region that serves this range (never an alias or container). */
    readonly mr: MemoryRegion,
    /** First guest address. */
    readonly start: bigint,
    /** Length in bytes (1 .. 2^64). */
    readonly size: bigint,
    /** Offset of `start` inside `mr`. */
    readonly offsetInRegion: bigint,
    /** Dirty logging clients active when the view was rendered. */
    readonly dirtyLogMask: number,
    /** `mr.romdMode` when the view was rendered. */
    readonly romdMode: boolean,
    /** Read-only through some region on the path (alias, container or mr itself). */
    readonly readonly: boolean,
    /** Non-volatile through some region on the path. */
    readonly nonvolatile: boolean,
  ) {
    this.startN = Number(start);
    this.endN = Number(start + size);
    this.offsetN = offsetInRegion < EXACT ? Number(offsetInRegion) : Number.NaN;
  }

  /**
   * `start` and `start + size` as doubles, for the hot path. Conversion is monotonic, so for an
   * address below 2^53 comparisons against them agree with the exact ones.
   */
  readonly startN: number;
  readonly endN: number;
  /** `offsetInRegion` as a number, or NaN when it is 2^53 or more (then use the bigint). */
  readonly offsetN: number;

  /** First address after the range. */
  get end(): bigint {
    return this.start + this.size;
  }

  /** QEMU `flatrange_equal` (the dirty mask is deliberately not compared). */
  equals(o: FlatRange): boolean {
    return (
      this.mr === o.mr &&
      this.start === o.start &&
      this.size === o.size &&
      this.offsetInRegion === o.offsetInRegion &&
      this.romdMode === o.romdMode &&
      this.readonly === o.readonly &&
      this.nonvolatile === o.nonvolatile
    );
  }
}

/**
 * What listeners and lookups receive (QEMU `MemoryRegionSection`): a piece of a region as it appears
 * in a flat view.
 */
export interface MemoryRegionSection {
  readonly mr: MemoryRegion | null;
  /** The view the section belongs to (during a topology diff: the address space's previous view). */
  readonly fv: FlatView | null;
  readonly offsetWithinRegion: bigint;
  readonly offsetWithinAddressSpace: bigint;
  readonly size: bigint;
  readonly readonly: boolean;
  readonly nonvolatile: boolean;
}

/** QEMU `section_from_flat_range`. */
export function sectionFromRange(fr: FlatRange, fv: FlatView | null): MemoryRegionSection {
  return {
    mr: fr.mr,
    fv,
    offsetWithinRegion: fr.offsetInRegion,
    offsetWithinAddressSpace: fr.start,
    size: fr.size,
    readonly: fr.readonly,
    nonvolatile: fr.nonvolatile,
  };
}

/** A flattened address space: the ranges of one resolved root region (QEMU `FlatView`). */
export class FlatView {
  /** The region the view was rendered from (after root resolution), or null for the empty view. */
  readonly root: MemoryRegion | null;
  /** Sorted, disjoint, simplified ranges. */
  readonly ranges: readonly FlatRange[];
  /**
   * Range starts as doubles, for the hot path's binary search. `Number(bigint)` is monotonic, so a
   * comparison with an exact address below 2^53 gives the same answer as the exact comparison.
   */
  private starts: Float64Array | null = null;

  constructor(root: MemoryRegion | null, ranges: readonly FlatRange[]) {
    this.root = root;
    this.ranges = ranges;
  }

  /** Index of the range that contains `addr` (a safe integer), or -1 (unassigned). */
  indexOf(addr: number): number {
    let s = this.starts;
    if (s === null) {
      s = new Float64Array(this.ranges.length);
      for (let i = 0; i < s.length; i++) s[i] = this.ranges[i]!.startN;
      this.starts = s;
    }
    let lo = 0;
    let hi = s.length - 1;
    // Last range whose start <= addr.
    while (lo <= hi) {
      const mid = (lo + hi) >>> 1;
      if (s[mid]! <= addr) lo = mid + 1;
      else hi = mid - 1;
    }
    if (hi < 0) return -1;
    const r = this.ranges[hi]!;
    // Exact end check: the double end could round for ranges above 2^53.
    return BigInt(addr) < r.start + r.size ? hi : -1;
  }

  /** Index of the range that contains the exact address `addr`, or -1. */
  indexOfBig(addr: bigint): number {
    const rs = this.ranges;
    let lo = 0;
    let hi = rs.length - 1;
    while (lo <= hi) {
      const mid = (lo + hi) >>> 1;
      if (rs[mid]!.start <= addr) lo = mid + 1;
      else hi = mid - 1;
    }
    if (hi < 0) return -1;
    const r = rs[hi]!;
    return addr < r.start + r.size ? hi : -1;
  }

  /** The range containing `addr`, or null. */
  rangeAt(addr: bigint): FlatRange | null {
    const i = this.indexOfBig(addr);
    return i < 0 ? null : this.ranges[i]!;
  }
}

/**
 * One terminating region's claim on the addresses of its clip, in paint order: QEMU paints it into
 * whatever parts of the clip no earlier region painted (`render_memory_region`'s gap filling).
 */
interface Paint {
  readonly mr: MemoryRegion;
  /** Guest address of the region's offset 0. */
  readonly regionStart: bigint;
  readonly start: bigint;
  readonly end: bigint;
  readonly mask: number;
  readonly romd: boolean;
  readonly readonly: boolean;
  readonly nonvolatile: boolean;
}

/**
 * Rendering state of one view. The walk records each terminating region's paint in QEMU's order;
 * {@link Renderer.ranges} then gives every address to the first paint that covers it, which is
 * what painting gaps one by one into a sorted list gives, with one sort and a sweep instead of an
 * insertion (and a shift of every later range) per gap.
 */
class Renderer {
  private readonly paints: Paint[] = [];

  render(
    mr: MemoryRegion,
    base: bigint,
    clipStart: bigint,
    clipEnd: bigint,
    readonly: boolean,
    nonvolatile: boolean,
    depth = 0,
  ): void {
    if (!mr.enabled) return;
    // An alias may map part of a container into that same container (Arm's SSE does): the alias
    // window shrinks the clip on every round, so QEMU's recursion ends. One that never shrinks
    // would recurse forever; stop it with a typed error instead of a stack overflow.
    if (depth > MAX_RENDER_DEPTH) {
      throw new AliasCycleError(
        `rendering ${mr.label} nests more than ${MAX_RENDER_DEPTH} levels: an alias maps a region into itself without end`,
      );
    }
    base += mr.addr;
    readonly ||= mr.readonly;
    nonvolatile ||= mr.nonvolatile;
    const end = base + mr.size;
    // Intersect [base, end) with the clip; an empty intersection renders nothing.
    if (base > clipStart) clipStart = base;
    if (end < clipEnd) clipEnd = end;
    if (clipStart >= clipEnd) return;
    const target = mr.alias;
    if (target) {
      this.render(
        target,
        base - target.addr - mr.aliasOffset,
        clipStart,
        clipEnd,
        readonly,
        nonvolatile,
        depth + 1,
      );
      return;
    }
    const subs = mr.subregions;
    for (let k = 0; k < subs.length; k++) {
      this.render(subs[k]!, base, clipStart, clipEnd, readonly, nonvolatile, depth + 1);
    }
    if (!mr.terminates) return;
    this.paints.push({
      mr,
      regionStart: base,
      start: clipStart,
      end: clipEnd,
      mask: mr.dirtyMask(),
      romd: mr.romdMode,
      readonly,
      nonvolatile,
    });
  }

  /** The unsimplified ranges: each address served by the first paint that covers it. */
  ranges(): FlatRange[] {
    const paints = this.paints;
    const n = paints.length;
    const out: FlatRange[] = [];
    if (n === 0) return out;
    const byStart = Array.from({ length: n }, (_, i) => i);
    const byEnd = byStart.slice();
    byStart.sort((a, b) => cmp(paints[a]!.start, paints[b]!.start));
    byEnd.sort((a, b) => cmp(paints[a]!.end, paints[b]!.end));
    // Paints that cover the current address, earliest paint on top; a paint whose end has passed
    // is dropped when it reaches the top.
    const heap = new IntMinHeap(n);
    const ended = new Uint8Array(n);
    let si = 0;
    let ei = 0;
    let owner = -1;
    let runStart = 0n;
    while (ei < n) {
      const x =
        si < n && paints[byStart[si]!]!.start < paints[byEnd[ei]!]!.end
          ? paints[byStart[si]!]!.start
          : paints[byEnd[ei]!]!.end;
      while (ei < n && paints[byEnd[ei]!]!.end === x) ended[byEnd[ei++]!] = 1;
      while (si < n && paints[byStart[si]!]!.start === x) heap.push(byStart[si++]!);
      while (heap.size > 0 && ended[heap.top()] === 1) heap.pop();
      const next = heap.size > 0 ? heap.top() : -1;
      if (next === owner) continue;
      if (owner >= 0) out.push(slice(paints[owner]!, runStart, x));
      owner = next;
      runStart = x;
    }
    return out;
  }
}

function cmp(a: bigint, b: bigint): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** The part `[s, e)` of a paint as a flat range. */
function slice(p: Paint, s: bigint, e: bigint): FlatRange {
  return new FlatRange(p.mr, s, e - s, s - p.regionStart, p.mask, p.romd, p.readonly, p.nonvolatile);
}

/** QEMU `can_merge`. */
function canMerge(a: FlatRange, b: FlatRange): boolean {
  // Identity first: most neighbours differ in region, and that test costs no bigint arithmetic.
  return (
    a.mr === b.mr &&
    a.start + a.size === b.start &&
    a.offsetInRegion + a.size === b.offsetInRegion &&
    a.dirtyLogMask === b.dirtyLogMask &&
    a.romdMode === b.romdMode &&
    a.readonly === b.readonly &&
    a.nonvolatile === b.nonvolatile
  );
}

/** QEMU `flatview_simplify`: merges each maximal run of mergeable neighbours. */
export function simplifyRanges(rs: readonly FlatRange[]): FlatRange[] {
  const out: FlatRange[] = [];
  let i = 0;
  while (i < rs.length) {
    const first = rs[i]!;
    let size = first.size;
    let j = i + 1;
    while (j < rs.length && canMerge(rs[j - 1]!, rs[j]!)) {
      size += rs[j]!.size;
      j++;
    }
    out.push(
      j === i + 1
        ? first
        : new FlatRange(
            first.mr,
            first.start,
            size,
            first.offsetInRegion,
            first.dirtyLogMask,
            first.romdMode,
            first.readonly,
            first.nonvolatile,
          ),
    );
    i = j;
  }
  return out;
}

/**
 * Renders the unsimplified ranges of `root` that fall in `[clipStart, clipEnd)` (the whole space by
 * default). Used by {@link generateFlatView} and by incremental re-rendering.
 */
export function renderRanges(root: MemoryRegion, clipStart = 0n, clipEnd = SIZE_2_64): FlatRange[] {
  const r = new Renderer();
  r.render(root, 0n, clipStart, clipEnd, false, false);
  return r.ranges();
}

/** First index whose range ends after `addr`. */
function firstEndingAfter(rs: readonly FlatRange[], addr: bigint): number {
  let lo = 0;
  let hi = rs.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    const r = rs[mid]!;
    if (r.start + r.size <= addr) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** First index whose range starts at or after `addr`. */
function firstStartingFrom(rs: readonly FlatRange[], addr: bigint): number {
  let lo = 0;
  let hi = rs.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (rs[mid]!.start < addr) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** The part of `r` inside `[s, e)` (which must intersect it). */
function trim(r: FlatRange, s: bigint, e: bigint): FlatRange {
  const start = r.start > s ? r.start : s;
  const end = r.start + r.size < e ? r.start + r.size : e;
  if (start === r.start && end === r.start + r.size) return r;
  return new FlatRange(
    r.mr,
    start,
    end - start,
    r.offsetInRegion + (start - r.start),
    r.dirtyLogMask,
    r.romdMode,
    r.readonly,
    r.nonvolatile,
  );
}

/**
 * Re-renders only the address intervals `intervals` (sorted, disjoint, within [0, 2^64)) of a view
 * of `root` whose other addresses did not change, and returns the new simplified ranges.
 *
 * Exactness: rendering is "first writer wins" per address, so rendering the tree clipped to an
 * interval paints every address of it exactly as a full render would; and simplification yields
 * the one canonical list of maximal mergeable runs, so re-simplifying around each interval (with
 * the unchanged neighbour on each side) gives exactly what simplifying a full render gives.
 */
export function rerenderRanges(
  root: MemoryRegion,
  ranges: readonly FlatRange[],
  intervals: ReadonlyArray<readonly [bigint, bigint]>,
): FlatRange[] {
  let rs = ranges as FlatRange[];
  for (const [s, e] of intervals) {
    const a = firstEndingAfter(rs, s);
    const b = firstStartingFrom(rs, e);
    const mid: FlatRange[] = [];
    if (a > 0) mid.push(rs[a - 1]!);
    const first = rs[a];
    if (first !== undefined && a < b && first.start < s) mid.push(trim(first, first.start, s));
    for (const r of renderRanges(root, s, e)) mid.push(r);
    const last = rs[b - 1];
    if (last !== undefined && b - 1 >= a && last.start + last.size > e)
      mid.push(trim(last, e, last.start + last.size));
    if (b < rs.length) mid.push(rs[b]!);
    const merged = simplifyRanges(mid);
    const head = rs.slice(0, a > 0 ? a - 1 : 0);
    const tail = rs.slice(b < rs.length ? b + 1 : rs.length);
    rs = head.concat(merged, tail);
  }
  return rs;
}

/** QEMU `generate_memory_topology` without the dispatch part: render and simplify `root`. */
export function generateFlatView(root: MemoryRegion | null): FlatView {
  if (!root) return new FlatView(null, []);
  return new FlatView(root, simplifyRanges(renderRanges(root)));
}

/**
 * QEMU `memory_region_get_flatview_root`: the region a view is really rendered from. Address spaces
 * whose roots resolve to the same region share one view; a disabled or empty root resolves to null.
 */
export function resolveFlatViewRoot(mr: MemoryRegion): MemoryRegion | null {
  let r: MemoryRegion = mr;
  while (r.enabled) {
    const target = r.alias;
    if (target) {
      if (r.aliasOffset === 0n && r.size >= target.size) {
        r = target;
        continue;
      }
    } else if (!r.terminates) {
      let found = 0;
      let next: MemoryRegion | null = null;
      for (const child of r.subregions) {
        if (!child.enabled) continue;
        if (++found > 1) {
          next = null;
          break;
        }
        if (child.addr === 0n && r.size >= child.size) next = child;
      }
      if (found === 0) return null;
      if (next) {
        r = next;
        continue;
      }
    }
    return r;
  }
  return null;
}

/**
 * End of the dispatch section holding `addr` in the flat range `[start, end)`. QEMU registers a flat
 * range as up to three sections — a head up to the first page boundary, the whole pages, and a tail
 * after the last boundary (`flatview_add_to_dispatch`) — and clamps RAM accesses to the section, so
 * a typed access crossing those boundaries is not served directly even inside one range.
 */
export function sectionEnd(start: number, end: number, addr: number, page = SECTION_PAGE): number {
  const headEnd = start % page === 0 ? start : Math.min(end, start - (start % page) + page);
  if (addr < headEnd) return headEnd;
  const tailStart = Math.max(headEnd, end - (end % page));
  return addr < tailStart ? tailStart : end;
}

/** {@link sectionEnd} with exact bigints. */
export function sectionEndBig(start: bigint, end: bigint, addr: bigint, page = SECTION_PAGE): bigint {
  const P = BigInt(page);
  const headEnd = start % P === 0n ? start : start - (start % P) + P < end ? start - (start % P) + P : end;
  if (addr < headEnd) return headEnd;
  const down = end - (end % P);
  const tailStart = down > headEnd ? down : headEnd;
  return addr < tailStart ? tailStart : end;
}
