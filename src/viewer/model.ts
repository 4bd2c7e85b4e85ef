/**
 * @module viewer/model
 * What the page draws, computed from a core {@link MemorySystem}: for each group of address spaces
 * that share a root region, the region tree as a flat array of nodes (cheap to filter, collapse and
 * render lazily with thousands of regions), the alias targets that live outside that tree, and the
 * flat view with its holes. Free of the DOM, so it is unit-tested in Node.
 */

import type { AddressSpace } from '../core/address-space.js';
import type { FlatRange } from '../core/flatview.js';
import { IntMinHeap } from '../core/int-heap.js';
import type { MemoryRegion } from '../core/region.js';
import type { MemorySystem } from '../core/system.js';
import { explainAddress } from '../mtree/lookup.js';
import { addressSpaceGroups, printedName, printOrder, regionTypeName } from '../mtree/print.js';
import type { PaintKind } from './scale.js';

/** One line of a region tree. */
export interface RegionNode {
  /** Index in {@link SpaceModel.nodes}. */
  readonly id: number;
  readonly region: MemoryRegion;
  /** Parent node, or -1 for the root of the tree or of an alias-target section. */
  readonly parent: number;
  readonly depth: number;
  /** Absolute first address as `info mtree` prints it (wraps modulo 2^64). */
  readonly start: bigint;
  readonly size: bigint;
  readonly children: number[];
  /** `info mtree` type: ram, rom, romd, ramd or i/o. */
  readonly type: string;
  /** What the region is, for the badge: container, alias, or its type. */
  readonly kind: PaintKind;
  /** False when the region or one of its ancestors is disabled: the flat view ignores it. */
  readonly live: boolean;
  /** The node of the alias target (in this tree or in a section), for aliases; else -1. */
  aliasNode: number;
  /** Bytes of the flat view served through this node (0 for a live region means fully hidden). */
  visibleBytes: bigint;
  /** Lower-case name, for search. */
  readonly key: string;
}

/** One piece of the flat map: a flat range, or a hole where nothing answers. */
export interface MapPiece {
  readonly start: bigint;
  /** First address past the piece. */
  readonly end: bigint;
  /** The flat range, or null for a hole. */
  readonly range: FlatRange | null;
  /** Colour kind: the printed type of the range, or `hole`. */
  readonly kind: PaintKind;
  /** Region name, or `unassigned`. */
  readonly label: string;
  /**
   * The range is a gap of a region that has subregions and answers where none of them does (the
   * x86 `io` region between its ports): drawn paler so the devices stand out.
   */
  readonly background: boolean;
}

/** A group of address spaces sharing one root region, with everything the page draws for it. */
export interface SpaceModel {
  /** Names of the address spaces (sorted as `info mtree` prints them). */
  readonly names: readonly string[];
  /** Label for a tab: the names joined with `, `. */
  readonly title: string;
  readonly spaces: readonly AddressSpace[];
  readonly root: MemoryRegion;
  /** End of the address space: the size of the root region. */
  readonly limit: bigint;
  /** Tree nodes in display order: the tree (node 0 is the root), then one section per alias target. */
  readonly nodes: readonly RegionNode[];
  /** Roots of the alias-target sections (regions reached only through aliases). */
  readonly sectionRoots: readonly number[];
  /** The flat map with its holes, in address order, covering `[0, limit)`. */
  readonly pieces: readonly MapPiece[];
  /** Flat ranges of the current view. */
  readonly ranges: readonly FlatRange[];
  /** Addresses where a piece starts or ends (for the piecewise scale and the ticks). */
  readonly breaks: readonly bigint[];
  /** First node of each region (the tree occurrence wins over a section). */
  readonly nodeOf: ReadonlyMap<MemoryRegion, number>;
}

/** A whole machine as the page shows it. */
export interface MachineModel {
  readonly label: string;
  readonly system: MemorySystem;
  readonly spaces: readonly SpaceModel[];
  /**
   * Set when the dump came with QEMU's flat view and the page's own re-render of the regions does
   * not reproduce it: where they first differ, in words.
   */
  readonly mismatch?: string;
}

const MOD = 1n << 64n;

/** The badge kind of a region. */
export function regionKind(mr: MemoryRegion): PaintKind {
  if (mr.alias) return 'alias';
  if (mr.isIommu) return 'iommu';
  if (!mr.terminates) return 'container';
  return regionTypeName(mr) as PaintKind;
}

/** Builds the model of every address-space group of `system`. */
export function buildMachine(system: MemorySystem, label: string): MachineModel {
  return { label, system, spaces: addressSpaceGroups(system).map((g) => buildSpace(g)) };
}

/** Builds the model of one group of address spaces sharing a root. */
export function buildSpace(group: readonly AddressSpace[]): SpaceModel {
  const first = group[0]!;
  const root = first.root;
  const nodes: RegionNode[] = [];
  const nodeOf = new Map<MemoryRegion, number>();
  const pendingTargets: MemoryRegion[] = [];
  const pending = new Set<MemoryRegion>();

  // Pre-order walk with an explicit stack (dumps can nest regions thousands deep), so ids are
  // assigned in print order and each node's children list is in print order.
  const add = (top: MemoryRegion): number => {
    const topId = nodes.length;
    const stack = [{ mr: top, parent: -1, depth: 0, base: 0n, live: true }];
    for (let f = stack.pop(); f; f = stack.pop()) {
      const mr = f.mr;
      const start = (f.base + mr.addr) % MOD;
      const id = nodes.length;
      const isLive = f.live && mr.enabled;
      nodes.push({
        id,
        region: mr,
        parent: f.parent,
        depth: f.depth,
        start,
        size: mr.size,
        children: [],
        type: regionTypeName(mr),
        kind: regionKind(mr),
        live: isLive,
        aliasNode: -1,
        visibleBytes: 0n,
        key: printedName(mr).toLowerCase(),
      });
      if (f.parent >= 0) nodes[f.parent]!.children.push(id);
      if (!nodeOf.has(mr)) nodeOf.set(mr, id);
      if (mr.alias && !pending.has(mr.alias)) {
        pending.add(mr.alias);
        pendingTargets.push(mr.alias);
      }
      const kids = printOrder(mr);
      for (let i = kids.length - 1; i >= 0; i--) {
        stack.push({ mr: kids[i]!, parent: id, depth: f.depth + 1, base: start, live: isLive });
      }
    }
    return topId;
  };

  add(root);
  const sectionRoots: number[] = [];
  for (let i = 0; i < pendingTargets.length; i++) {
    const t = pendingTargets[i]!;
    if (nodeOf.has(t)) continue;
    sectionRoots.push(add(t));
  }
  for (const n of nodes) if (n.region.alias) n.aliasNode = nodeOf.get(n.region.alias) ?? -1;

  const ranges = first.currentView.ranges;
  const limit = root.size === 0n ? 1n : root.size;
  const pieces = mapPieces(ranges, limit);
  const breakSet = new Set<bigint>();
  for (const p of pieces) {
    breakSet.add(p.start);
    breakSet.add(p.end);
  }
  const breaks = [...breakSet].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));

  const model: SpaceModel = {
    names: group.map((as) => as.name),
    title: group.map((as) => as.name).join(', '),
    spaces: group,
    root,
    limit,
    nodes,
    sectionRoots,
    pieces,
    ranges,
    breaks,
    nodeOf,
  };
  attributeRanges(model);
  return model;
}

/** The flat map of `ranges` with holes filled in, covering `[0, limit)`. */
export function mapPieces(ranges: readonly FlatRange[], limit: bigint): MapPiece[] {
  const out: MapPiece[] = [];
  let cursor = 0n;
  const hole = (start: bigint, end: bigint): MapPiece => ({
    start,
    end,
    range: null,
    kind: 'hole',
    label: 'unassigned',
    background: false,
  });
  for (const r of ranges) {
    if (r.start >= limit) break;
    if (r.start > cursor) out.push(hole(cursor, r.start));
    const type = r.readonly ? 'rom' : regionTypeName(r.mr);
    const end = r.start + r.size > limit ? limit : r.start + r.size;
    out.push({
      start: r.start,
      end,
      range: r,
      kind: type as PaintKind,
      label: printedName(r.mr),
      background: r.mr.subregions.length > 0,
    });
    cursor = end;
  }
  if (cursor < limit) out.push(hole(cursor, limit));
  return out;
}

/** One step of the way from the root of an address space down to the region that serves an address. */
export interface ChainStep {
  readonly region: MemoryRegion;
  /** Where the region's first byte lies in the address space (the alias window shifts this). */
  readonly base: bigint;
  /** Offset of the looked-up address inside this region. */
  readonly offset: bigint;
  /** The tree node of this step, or -1. */
  readonly node: number;
  /** How the walk got here: the root, a subregion of the previous step, or its alias target. */
  readonly via: 'root' | 'subregion' | 'alias';
}

/** The answer to "what serves this address?" in one address space. */
export interface AddressAnswer {
  readonly addr: bigint;
  /** The flat range containing the address, or null (nothing answers: a hole). */
  readonly range: FlatRange | null;
  /** The region that serves the address (the terminating region of the range). */
  readonly region: MemoryRegion | null;
  /** Offset of the address inside {@link region}. */
  readonly offset: bigint;
  /** Root first, then each container and alias passed through, ending with {@link region}. */
  readonly chain: readonly ChainStep[];
}

/**
 * What serves `addr` in `space`: `mtree/lookup`'s explanation (the same answer as
 * `memtree lookup`), with the tree node of each step of the path.
 */
export function answerAt(space: SpaceModel, addr: bigint): AddressAnswer {
  if (addr >= MOD) return { addr, range: null, region: null, offset: 0n, chain: [] };
  const ex = explainAddress(space.spaces[0]!, addr);
  const chain: ChainStep[] = [];
  let node = -1;
  for (const step of ex.path) {
    if (step.via === 'root') node = 0;
    else if (step.via === 'alias') node = node >= 0 ? space.nodes[node]!.aliasNode : -1;
    else {
      const kids: readonly number[] = node >= 0 ? space.nodes[node]!.children : [];
      node = kids.find((k) => space.nodes[k]!.region === step.region) ?? -1;
    }
    chain.push({ region: step.region, base: step.origin, offset: addr - step.origin, node, via: step.via });
  }
  return { addr, range: ex.range, region: ex.region, offset: ex.offset ?? 0n, chain };
}

/**
 * Counts, for each region of the tree that could answer accesses (not containers), the bytes of the
 * flat view served through it. A flat range may merge pieces reached through different aliases
 * (QEMU merges contiguous pieces of one region), so each region is probed at its own start and at
 * every flat-range start inside it, not only once per range; a probe counts the rest of that range
 * inside the region when the region lies on the probe's path ({@link answerAt}'s chain).
 *
 * The paths come from one render of the node graph instead of one walk per probe (a walk tries
 * siblings one by one, which made many siblings quadratic): see {@link OwnerMap}.
 */
function attributeRanges(space: SpaceModel): void {
  const ranges = space.ranges;
  if (ranges.length === 0) return;
  const owners = new OwnerMap(space);
  for (const n of space.nodes) {
    if (!n.live || n.kind === 'container' || n.size === 0n) continue;
    const start = n.start;
    const end = n.start + n.size;
    let i = firstRangeEndingAfter(ranges, start);
    for (; i < ranges.length; i++) {
      const r = ranges[i]!;
      if (r.start >= end) break;
      const probe = r.start > start ? r.start : start;
      const stop = r.start + r.size < end ? r.start + r.size : end;
      if (owners.onPath(probe, n.id)) n.visibleBytes += stop - probe;
    }
  }
}

/**
 * The path {@link answerAt} finds for every address of a space, all at once. That walk (the one of
 * `mtree/lookup`) ends at the first terminating region, in render order (subregions in list order
 * before their parent, an alias continuing in its target), whose extent and every ancestor's contain
 * the address: QEMU's first-writer rule of `render_memory_region`. So one render over the nodes
 * (each occurrence of a node below an alias is its own occurrence, as QEMU renders a target once per
 * alias) records every terminating occurrence's clip in paint order, and a sweep over the clip ends
 * gives each address its first paint, as the core's renderer does. The path to an address is then
 * the chain of occurrences from that paint up to the root, and its nodes are those of
 * {@link answerAt}: a subregion step goes to the child node of that region, an alias step to the
 * alias's {@link RegionNode.aliasNode}.
 */
class OwnerMap {
  /** Per occurrence: its node, its parent occurrence (-1 for the root) and its depth. */
  private readonly occNode: number[] = [];
  private readonly occParent: number[] = [];
  private readonly occDepth: number[] = [];
  /** Per node, the smallest depth of its occurrences (a path above it cannot hold it). */
  private readonly minDepth: Int32Array;
  /** Subregion nodes of each node in the region's list order, made on first use. */
  private readonly listKids: Array<number[] | undefined> = [];
  private readonly paintOcc: number[] = [];
  private readonly paintStart: bigint[] = [];
  private readonly paintEnd: bigint[] = [];
  /** Sorted runs of addresses with one owning occurrence (-1: nothing paints there). */
  private readonly runStart: bigint[] = [];
  private readonly runEnd: bigint[] = [];
  private readonly runOcc: number[] = [];
  private readonly nodes: readonly RegionNode[];

  constructor(space: SpaceModel) {
    this.nodes = space.nodes;
    this.minDepth = new Int32Array(space.nodes.length).fill(0x7fffffff);
    this.render(0, -1, 0n, 0n, MOD);
    this.sweep();
  }

  /** Whether node `node` lies on the path to `addr`. */
  onPath(addr: bigint, node: number): boolean {
    let o = this.ownerAt(addr);
    const floor = this.minDepth[node]!;
    while (o >= 0 && this.occDepth[o]! >= floor) {
      if (this.occNode[o] === node) return true;
      o = this.occParent[o]!;
    }
    return false;
  }

  /** The occurrence that paints `addr`, or -1. */
  private ownerAt(addr: bigint): number {
    const starts = this.runStart;
    let lo = 0;
    let hi = starts.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (starts[mid]! <= addr) lo = mid + 1;
      else hi = mid;
    }
    return lo > 0 && addr < this.runEnd[lo - 1]! ? this.runOcc[lo - 1]! : -1;
  }

  /**
   * Renders node `id` whose parent's offset 0 lies at `base`, inside the clip: the walk's `covers`
   * test (enabled, extent contains the address) for every address of the clip at once. Recursive
   * like the core's render, whose 1024-level limit this space's view has passed.
   */
  private render(id: number, parentOcc: number, base: bigint, clipStart: bigint, clipEnd: bigint): void {
    const node = this.nodes[id]!;
    const mr = node.region;
    if (!mr.enabled) return;
    const start = base + mr.addr;
    const end = start + mr.size;
    if (start > clipStart) clipStart = start;
    if (end < clipEnd) clipEnd = end;
    if (clipStart >= clipEnd) return;
    const occ = this.occNode.length;
    const depth = parentOcc < 0 ? 0 : this.occDepth[parentOcc]! + 1;
    this.occNode.push(id);
    this.occParent.push(parentOcc);
    this.occDepth.push(depth);
    if (depth < this.minDepth[id]!) this.minDepth[id] = depth;
    const target = mr.alias;
    if (target) {
      // The target's offset 0 lies where the alias window starts, less the alias offset.
      if (node.aliasNode >= 0)
        this.render(node.aliasNode, occ, start - target.addr - mr.aliasOffset, clipStart, clipEnd);
      return;
    }
    const kids = this.kidsInListOrder(id);
    for (let k = 0; k < kids.length; k++) this.render(kids[k]!, occ, start, clipStart, clipEnd);
    if (!mr.terminates) return;
    this.paintOcc.push(occ);
    this.paintStart.push(clipStart);
    this.paintEnd.push(clipEnd);
  }

  /** The child nodes of `id` in the order of its region's subregion list (render order). */
  private kidsInListOrder(id: number): readonly number[] {
    const cached = this.listKids[id];
    if (cached) return cached;
    const node = this.nodes[id]!;
    const byRegion = new Map<MemoryRegion, number>();
    for (let k = 0; k < node.children.length; k++) {
      const c = node.children[k]!;
      byRegion.set(this.nodes[c]!.region, c);
    }
    const subs = node.region.subregions;
    const out: number[] = [];
    for (let k = 0; k < subs.length; k++) {
      const c = byRegion.get(subs[k]!);
      if (c !== undefined) out.push(c);
    }
    this.listKids[id] = out;
    return out;
  }

  /** Gives each address to its first paint: sorted clip starts and ends, earliest paint on a heap. */
  private sweep(): void {
    const n = this.paintOcc.length;
    if (n === 0) return;
    const ps = this.paintStart;
    const pe = this.paintEnd;
    const byStart = Array.from({ length: n }, (_, i) => i);
    const byEnd = byStart.slice();
    byStart.sort((a, b) => cmpBig(ps[a]!, ps[b]!));
    byEnd.sort((a, b) => cmpBig(pe[a]!, pe[b]!));
    const heap = new IntMinHeap(n);
    const ended = new Uint8Array(n);
    let si = 0;
    let ei = 0;
    let owner = -1;
    let from = 0n;
    while (ei < n) {
      const x = si < n && ps[byStart[si]!]! < pe[byEnd[ei]!]! ? ps[byStart[si]!]! : pe[byEnd[ei]!]!;
      while (ei < n && pe[byEnd[ei]!] === x) ended[byEnd[ei++]!] = 1;
      while (si < n && ps[byStart[si]!] === x) heap.push(byStart[si++]!);
      while (heap.size > 0 && ended[heap.top()] === 1) heap.pop();
      const next = heap.size > 0 ? heap.top() : -1;
      if (next === owner) continue;
      if (owner >= 0) {
        this.runStart.push(from);
        this.runEnd.push(x);
        this.runOcc.push(this.paintOcc[owner]!);
      }
      owner = next;
      from = x;
    }
  }
}

function cmpBig(a: bigint, b: bigint): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

function firstRangeEndingAfter(ranges: readonly FlatRange[], addr: bigint): number {
  let lo = 0;
  let hi = ranges.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    const r = ranges[mid]!;
    if (r.start + r.size <= addr) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** The piece of `space`'s map that contains `addr` (binary search), or null beyond the space. */
export function pieceAt(space: SpaceModel, addr: bigint): MapPiece | null {
  const ps = space.pieces;
  let lo = 0;
  let hi = ps.length - 1;
  while (lo <= hi) {
    const mid = (lo + hi) >>> 1;
    const p = ps[mid]!;
    if (addr < p.start) hi = mid - 1;
    else if (addr >= p.end) lo = mid + 1;
    else return p;
  }
  return null;
}

/** The address space group to show first: the one named `memory`, else the one with most ranges. */
export function defaultSpace(machine: MachineModel): number {
  const mem = machine.spaces.findIndex((s) => s.names.includes('memory'));
  if (mem >= 0) return mem;
  let best = 0;
  machine.spaces.forEach((s, i) => {
    if (s.ranges.length > machine.spaces[best]!.ranges.length) best = i;
  });
  return best;
}
