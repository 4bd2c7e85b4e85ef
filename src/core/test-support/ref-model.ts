/**
 * @module core/test-support/ref-model
 * A deliberately simple reference model of QEMU's region tree for property tests. Every node is
 * mirrored: the test applies each operation to a core {@link MemoryRegion} and to a plain
 * {@link RefNode}, then compares what the core renders with what the reference derives from the spec
 * rules (section 3 for sibling order, 6 for rendering, 7 for root resolution) one address at a time.
 *
 * The reference shares no code with the core's rendering: it never calls `generateFlatView`, never
 * reads the core's subregion list order, and answers "who serves address a" by walking the tree
 * top-down (R6.1: subregions in priority order, newest first among equals, before the region itself;
 * R6.3 clipping; R6.4 alias arithmetic written directly as "target byte t at aliasStart - offset + t").
 * Test-only; excluded from the build.
 */

import { AliasCycleError } from '../errors.js';
import type { MemoryRegion } from '../region.js';
import type { MemorySystem } from '../system.js';

/** Region kinds the property tests generate. */
export type RefKind = 'container' | 'ram' | 'rom' | 'io' | 'reservation' | 'alias';

/** The reference twin of one core region. */
export interface RefNode {
  readonly id: number;
  readonly kind: RefKind;
  readonly mr: MemoryRegion;
  /** Size in units (see {@link RefWorld.scale}). */
  size: number;
  /** Size at creation: the RAM block behind a RAM/ROM region never grows. */
  readonly initialSize: number;
  addr: number;
  priority: number;
  /** Insertion stamp: larger = added (or re-added by setAddress) more recently. */
  seq: number;
  enabled: boolean;
  readonly: boolean;
  nonvolatile: boolean;
  parent: RefNode | null;
  /** Children in no particular order; the reference sorts them itself (R3.2). */
  readonly children: RefNode[];
  readonly target: RefNode | null;
  aliasOffset: number;
  /** Bytes of RAM/ROM regions (the reference byte model, indexed in bytes), else null. */
  readonly bytes: Uint8Array | null;
}

/** What serves one guest address according to the reference. */
export interface RefHit {
  readonly node: RefNode;
  readonly offset: number;
  readonly readonly: boolean;
  readonly nonvolatile: boolean;
}

/** The core rounds RAM blocks up to a host page. */
const HOST_PAGE = 4096;

const NO_OPS = {};

/**
 * A core memory system together with its reference twin. Every mutator applies the operation to
 * both sides; no-op changes are no-ops on both. The reference works in units of `scale` bytes: every
 * size, address and alias offset handed to the core is multiplied by `scale`, so a test can place
 * regions on page-sized boundaries while the reference paints only a few dozen units.
 */
export class RefWorld {
  readonly nodes: RefNode[] = [];
  private stamp = 0;

  constructor(
    readonly ms: MemorySystem,
    readonly scale = 1,
  ) {}

  /** Creates a detached region of `kind` (aliases need `target`). */
  create(kind: RefKind, size: number, target: RefNode | null = null, aliasOffset = 0): RefNode {
    // QEMU cannot allocate an empty RAM block; zero-sized RAM comes from setSize instead.
    if ((kind === 'ram' || kind === 'rom') && size === 0) size = 1;
    const id = this.nodes.length;
    const name = `${kind}${id}`;
    const g = this.scale;
    const bytes = size * g;
    let mr: MemoryRegion;
    switch (kind) {
      case 'container':
        mr = this.ms.container(name, bytes);
        break;
      case 'ram':
        mr = this.ms.ram(name, bytes, { nomigrate: true });
        break;
      case 'rom':
        mr = this.ms.rom(name, bytes, { nomigrate: true });
        break;
      case 'io':
        mr = this.ms.io(name, bytes, NO_OPS);
        break;
      case 'reservation':
        mr = this.ms.reservation(name, bytes);
        break;
      case 'alias':
        if (!target) throw new Error('alias needs a target');
        mr = this.ms.alias(name, target.mr, aliasOffset * g, bytes);
        break;
    }
    const node: RefNode = {
      id,
      kind,
      mr,
      size,
      initialSize: size,
      addr: 0,
      priority: 0,
      seq: 0,
      enabled: true,
      // A ROM is RAM with the readonly flag set (spec section 2).
      readonly: kind === 'rom',
      nonvolatile: false,
      parent: null,
      children: [],
      target: kind === 'alias' ? target : null,
      aliasOffset: kind === 'alias' ? aliasOffset : 0,
      bytes:
        kind === 'ram' || kind === 'rom' ? new Uint8Array(Math.ceil(bytes / HOST_PAGE) * HOST_PAGE) : null,
    };
    this.nodes.push(node);
    return node;
  }

  /** Core refusals of a change that would render without end (ERR_ALIAS_CYCLE). */
  refusals = 0;

  /**
   * Runs a core change that may close a loop. If the core refuses it as endless, the reference
   * must agree: `check` is the change applied to the reference on trial, judged by its own walk
   * ({@link refEndless}) from `top`, and undone. Returns whether the core accepted the change.
   */
  private tryCore(core: () => void, trial: () => () => void, top: () => RefNode): boolean {
    try {
      core();
      return true;
    } catch (e) {
      if (!(e instanceof AliasCycleError)) throw e;
      const undo = trial();
      const endless = refEndless(top());
      undo();
      if (!endless) throw new Error(`the core refused a change the reference renders fine: ${e.message}`);
      this.refusals++;
      return false;
    }
  }

  /** R3.1: `addSubregionOverlap(addr, child, priority)`; false if the core refused an endless loop. */
  add(parent: RefNode, child: RefNode, addr: number, priority: number): boolean {
    const link = () => {
      child.parent = parent;
      parent.children.push(child);
      const old = [child.addr, child.priority, child.seq];
      child.addr = addr;
      child.priority = priority;
      child.seq = this.stamp + 1;
      return () => {
        child.parent = null;
        parent.children.pop();
        [child.addr, child.priority, child.seq] = old as [number, number, number];
      };
    };
    if (
      !this.tryCore(
        () => parent.mr.addSubregionOverlap(addr * this.scale, child.mr, priority),
        link,
        () => topOf(parent),
      )
    )
      return false;
    child.parent = parent;
    child.addr = addr;
    child.priority = priority;
    child.seq = ++this.stamp;
    parent.children.push(child);
    return true;
  }

  /** R3.3 */
  del(child: RefNode): void {
    const p = child.parent;
    if (!p) throw new Error('not mapped');
    p.mr.delSubregion(child.mr);
    child.parent = null;
    p.children.splice(p.children.indexOf(child), 1);
  }

  setEnabled(n: RefNode, v: boolean): void {
    if (
      !this.tryCore(
        () => n.mr.setEnabled(v),
        () => trialSet(n, 'enabled', v),
        () => topOf(n),
      )
    )
      return;
    n.enabled = v;
  }

  /** R3.4: moving re-adds the region, so it becomes the newest of its priority. */
  setAddress(n: RefNode, addr: number): void {
    if (
      !this.tryCore(
        () => n.mr.setAddress(addr * this.scale),
        () => trialSet(n, 'addr', addr),
        () => topOf(n),
      )
    )
      return;
    if (addr === n.addr) return;
    n.addr = addr;
    if (n.parent) n.seq = ++this.stamp;
  }

  setSize(n: RefNode, size: number): void {
    if (
      !this.tryCore(
        () => n.mr.setSize(size * this.scale),
        () => trialSet(n, 'size', size),
        () => topOf(n),
      )
    )
      return;
    n.size = size;
  }

  setAliasOffset(n: RefNode, off: number): void {
    const core = () => n.mr.setAliasOffset(off * this.scale);
    if (
      !this.tryCore(
        core,
        () => trialSet(n, 'aliasOffset', off),
        () => topOf(n),
      )
    )
      return;
    n.aliasOffset = off;
  }

  setReadonly(n: RefNode, v: boolean): void {
    n.mr.setReadonly(v);
    n.readonly = v;
  }

  setNonvolatile(n: RefNode, v: boolean): void {
    n.mr.setNonvolatile(v);
    n.nonvolatile = v;
  }

  /**
   * Whether `child` may be placed under `parent` without a cycle: neither a subregion cycle nor a
   * loop through alias targets (QEMU would recurse forever rendering it).
   */
  canAdd(parent: RefNode, child: RefNode): boolean {
    if (child.parent) return false;
    return !reaches(child, parent);
  }

  /** Nodes of the map under `root` (following subregions and alias targets). */
  reachable(root: RefNode): Set<RefNode> {
    const seen = new Set<RefNode>();
    const stack = [root];
    while (stack.length) {
      const n = stack.pop()!;
      if (seen.has(n)) continue;
      seen.add(n);
      if (n.target) stack.push(n.target);
      stack.push(...n.children);
    }
    return seen;
  }
}

/** Sets one field of `n` on trial; returns the undo. */
function trialSet<K extends 'enabled' | 'addr' | 'size' | 'aliasOffset'>(
  n: RefNode,
  key: K,
  v: RefNode[K],
): () => void {
  const old = n[key];
  n[key] = v;
  return () => {
    n[key] = old;
  };
}

/** The outermost container of `n` (`n` itself when it is in none). */
function topOf(n: RefNode): RefNode {
  while (n.parent) n = n.parent;
  return n;
}

/** How deep a render may nest before it counts as endless (the core's limit too). */
const ENDLESS_DEPTH = 1024;

/**
 * Whether rendering `root` never ends: a walk over every region a render visits — all enabled
 * subregions, alias targets shifted by the alias arithmetic (R6.4), each clipped to the region
 * above — that is still going after {@link ENDLESS_DEPTH} levels. A loop whose window shrinks dies
 * out; one that shows the same window again does not. Written apart from the core's renderer.
 */
export function refEndless(root: RefNode): boolean {
  type Frame = { n: RefNode; start: number; lo: number; hi: number; depth: number };
  const stack: Frame[] = [{ n: root, start: root.addr, lo: -Infinity, hi: Infinity, depth: 0 }];
  while (stack.length) {
    const f = stack.pop()!;
    if (!f.n.enabled) continue;
    if (f.depth > ENDLESS_DEPTH) return true;
    const lo = Math.max(f.lo, f.start);
    const hi = Math.min(f.hi, f.start + f.n.size);
    if (lo >= hi) continue;
    if (f.n.kind === 'alias') {
      stack.push({ n: f.n.target!, start: f.start - f.n.aliasOffset, lo, hi, depth: f.depth + 1 });
      continue;
    }
    for (const c of f.n.children) stack.push({ n: c, start: f.start + c.addr, lo, hi, depth: f.depth + 1 });
  }
  return false;
}

function reaches(from: RefNode, to: RefNode): boolean {
  const seen = new Set<RefNode>();
  const stack = [from];
  while (stack.length) {
    const n = stack.pop()!;
    if (n === to) return true;
    if (seen.has(n)) continue;
    seen.add(n);
    if (n.target) stack.push(n.target);
    stack.push(...n.children);
  }
  return false;
}

/** Whether a kind paints the gaps it covers (every kind but container and alias). */
export function refTerminates(n: RefNode): boolean {
  return n.kind !== 'container' && n.kind !== 'alias';
}

/** R3.2: priority descending, and among equal priorities the most recently added first. */
function ordered(n: RefNode, cache: Map<RefNode, RefNode[]>): RefNode[] {
  let c = cache.get(n);
  if (!c) {
    c = [...n.children].sort((a, b) => b.priority - a.priority || b.seq - a.seq);
    cache.set(n, c);
  }
  return c;
}

/**
 * Who serves address `a` when `n` sits with its first byte at absolute address `nStart`, having
 * inherited `ro`/`nv` from the path above. The first terminating region found in the visiting order
 * wins (R6.1); an address outside the region is never served by it or its subtree (R6.3).
 */
function serve(
  n: RefNode,
  a: number,
  nStart: number,
  ro: boolean,
  nv: boolean,
  cache: Map<RefNode, RefNode[]>,
): RefHit | null {
  if (!n.enabled) return null;
  if (a < nStart || a >= nStart + n.size) return null;
  ro ||= n.readonly;
  nv ||= n.nonvolatile;
  if (n.kind === 'alias') {
    // R6.4: the target's byte t appears at aliasStart - aliasOffset + t; its own addr is irrelevant.
    // R2.4: the alias's own subregions are never rendered.
    return serve(n.target!, a, nStart - n.aliasOffset, ro, nv, cache);
  }
  for (const c of ordered(n, cache)) {
    const h = serve(c, a, nStart + c.addr, ro, nv, cache);
    if (h) return h;
  }
  return refTerminates(n) ? { node: n, offset: a - nStart, readonly: ro, nonvolatile: nv } : null;
}

/**
 * Per-address answers for a view rendered from `root` over `[0, limit)`. R6.7: the root's own addr
 * shifts the view.
 */
export function refPaint(root: RefNode | null, limit: number): Array<RefHit | null> {
  const out = new Array<RefHit | null>(limit).fill(null);
  if (!root) return out;
  const cache = new Map<RefNode, RefNode[]>();
  for (let a = 0; a < limit; a++) out[a] = serve(root, a, root.addr, false, false, cache);
  return out;
}

/** R7.1: the region a view is really rendered from, or null for the shared empty view. */
export function refResolveRoot(r: RefNode): RefNode | null {
  for (;;) {
    if (!r.enabled) return null;
    if (r.kind === 'alias') {
      const t = r.target!;
      if (r.aliasOffset === 0 && r.size >= t.size) {
        r = t;
        continue;
      }
      return r;
    }
    if (r.kind === 'container') {
      const live = r.children.filter((c) => c.enabled);
      if (live.length === 0) return null;
      const only = live[0]!;
      if (live.length === 1 && only.addr === 0 && only.size <= r.size) {
        r = only;
        continue;
      }
    }
    return r;
  }
}
