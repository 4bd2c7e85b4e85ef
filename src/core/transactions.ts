/**
 * @module core/transactions
 * The commit of a memory transaction and the planning of what it re-renders: QEMU's
 * `memory_region_transaction_commit` (softmmu/memory.c) with `flatviews_reset` and
 * `address_space_set_flatview` for every address space, and the view cache behind
 * `address_space_get_flatview`. QEMU renders every view from scratch on every commit; here each
 * change is recorded as an interval of the region it touched ({@link topologyChanged}), mapped to
 * the guest addresses where it can show in each view, and only those are re-rendered (the result
 * is identical; docs/architecture.md explains why).
 */

import { SIZE_2_64 } from './address.js';
import { TransactionError } from './errors.js';
import { FlatView, generateFlatView, rerenderRanges, resolveFlatViewRoot } from './flatview.js';
import type { MemoryRegion } from './region.js';
import type { MemorySystem } from './system.js';

/**
 * Closes a transaction (QEMU `memory_region_transaction_commit`). At the outermost commit, if the
 * topology changed, flat views are rebuilt and listeners told; otherwise only ioeventfds are.
 */
export function commit(ms: MemorySystem): void {
  if (ms.depth === 0) throw new TransactionError('commit() without a matching begin()');
  if (--ms.depth > 0) return;
  if (ms.topologyPending) {
    ms.topologyPending = false;
    ms.ioeventfdPending = false;
    rebuildViews(ms);
    const regs = ms.registrations;
    for (const r of regs) r.listener.begin?.();
    for (const as of ms.addressSpaces) {
      as.setFlatView(ms.viewFor(as.root));
      as.updateIoeventfds();
    }
    for (const r of regs) r.listener.commit?.();
  } else if (ms.ioeventfdPending) {
    ms.ioeventfdPending = false;
    for (const as of ms.addressSpaces) as.updateIoeventfds();
  }
}

/**
 * `region` (a subregion of `parent`, or a region in no container) is about to change or
 * has just changed in a way that may alter flat views. Called before and after a change of
 * extent, so that both the old and the new place are re-rendered.
 */
export function topologyChanged(ms: MemorySystem, parent: MemoryRegion | null, region: MemoryRegion): void {
  ms.topologyPending = true;
  ms.moved.add(region);
  const c = ms.changes;
  if (c === null) return;
  // Where the region shows through its container, and where it shows through aliases that
  // target it directly (the walk from `region` also covers the container path it has now).
  if (parent) c.push({ node: parent, start: region.addr, end: region.addr + region.size });
  c.push({ node: region, start: 0n, end: region.size });
  if (c.length > MAX_CHANGES) ms.changes = null;
}

/** The current view of a root region (rendering it now if nobody has it yet). */
export function viewFor(ms: MemorySystem, root: MemoryRegion): FlatView {
  const physmr = resolveFlatViewRoot(root);
  let v = ms.views.get(physmr);
  if (!v) {
    v = generateFlatView(physmr);
    ms.views.set(physmr, v);
  }
  return v;
}

/**
 * QEMU `flatviews_reset`: one view per distinct resolved root. QEMU renders every view from
 * scratch on every topology commit; here a view is re-rendered only where the recorded changes can
 * show in it, which yields the same ranges (see {@link rerenderRanges}) and therefore the same
 * listener calls: a view nothing could touch is kept as it is and its listeners hear `regionNop`s.
 */
function rebuildViews(ms: MemorySystem): void {
  const changes = ms.changes;
  ms.changes = [];
  const old = ms.views;
  const fresh = new Map<MemoryRegion | null, FlatView>();
  fresh.set(null, ms.emptyView);
  const reach = changes === null ? null : reachingUp(changes);
  for (const as of ms.addressSpaces) {
    const physmr = resolveFlatViewRoot(as.root);
    if (fresh.has(physmr)) continue;
    const prev = old.get(physmr);
    // A view whose root no changed region can reach upwards renders none of them: it stays as it
    // is, without walking every change once per view (thousands of address spaces, one change).
    if (prev && reach && !reach.has(physmr!) && !ms.moved.has(physmr!)) fresh.set(physmr, prev);
    else fresh.set(physmr, updatedView(ms, physmr!, prev, changes));
  }
  ms.moved.clear();
  ms.views = fresh;
}

/**
 * Every region from which a changed region can be rendered: the changed regions, their containers
 * and the aliases that target them, transitively. A view's content depends only on what its root
 * reaches downwards, so a root outside this set renders exactly what it rendered before.
 */
function reachingUp(changes: readonly Change[]): Set<MemoryRegion> {
  const seen = new Set<MemoryRegion>();
  const stack: MemoryRegion[] = [];
  for (const c of changes) stack.push(c.node);
  while (stack.length > 0) {
    const n = stack.pop()!;
    if (seen.has(n)) continue;
    seen.add(n);
    if (n.container) stack.push(n.container);
    for (const a of n.aliasedBy) stack.push(a);
  }
  return seen;
}

function updatedView(
  ms: MemorySystem,
  root: MemoryRegion,
  prev: FlatView | undefined,
  changes: Change[] | null,
): FlatView {
  if (!prev || changes === null || ms.moved.has(root)) return generateFlatView(root);
  const intervals = affectedIntervals(root, changes);
  if (intervals === null) return generateFlatView(root);
  if (intervals.length === 0) return prev;
  return new FlatView(root, rerenderRanges(root, prev.ranges, intervals));
}

/** A changed interval `[start, end)` in the coordinates of region `node`. */
export interface Change {
  readonly node: MemoryRegion;
  readonly start: bigint;
  readonly end: bigint;
}

/** Past this many changes in one commit, or origins of one region, render views from scratch. */
const MAX_CHANGES = 256;
const MAX_ORIGINS = 64;

/**
 * The guest-address intervals of the view of `root` where `changes` may show: every place each
 * changed node is rendered, found by walking up from the node through containers and through the
 * aliases that target it, the root included (an alias of the root, or of one of its ancestors,
 * shows the root's own contents again). Sorted, merged and clipped to [0, 2^64). null when the
 * walk meets a loop (a region shown inside itself: QEMU's render clips such a loop, and only a
 * full render clips it the same way) or when there are too many places: render from scratch then.
 */
function affectedIntervals(root: MemoryRegion, changes: Change[]): Array<[bigint, bigint]> | null {
  const memo = new Map<MemoryRegion, bigint[]>();
  const walking = new Set<MemoryRegion>();
  let budget = 4096;
  // Absolute guest addresses of offset 0 of `n` in this view (one per path from the root).
  const origins = (n: MemoryRegion): bigint[] | null => {
    const known = memo.get(n);
    if (known) return known;
    if (walking.has(n) || --budget < 0) return null;
    walking.add(n);
    const out: bigint[] = [];
    // render_memory_region starts the root at base 0 plus its own address.
    if (n === root) out.push(root.addr);
    if (n.container) {
      const up = origins(n.container);
      if (up === null) return null;
      for (const o of up) out.push(o + n.addr);
    }
    for (const a of n.aliasedBy) {
      const up = origins(a);
      if (up === null) return null;
      for (const o of up) out.push(o - a.aliasOffset);
    }
    walking.delete(n);
    if (out.length > MAX_ORIGINS) return null;
    memo.set(n, out);
    return out;
  };
  const iv: Array<[bigint, bigint]> = [];
  for (const c of changes) {
    if (c.end <= c.start) continue;
    const os = origins(c.node);
    if (os === null) return null;
    for (const o of os) {
      const s = o + c.start < 0n ? 0n : o + c.start;
      const e = o + c.end > SIZE_2_64 ? SIZE_2_64 : o + c.end;
      if (s < e) iv.push([s, e]);
    }
  }
  if (iv.length > MAX_CHANGES) return null;
  iv.sort((x, y) => (x[0] < y[0] ? -1 : x[0] > y[0] ? 1 : 0));
  const merged: Array<[bigint, bigint]> = [];
  for (const [s, e] of iv) {
    const last = merged[merged.length - 1];
    if (last && s <= last[1]) {
      if (e > last[1]) last[1] = e;
    } else merged.push([s, e]);
  }
  return merged;
}
