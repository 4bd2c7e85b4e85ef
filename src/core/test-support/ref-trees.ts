/**
 * @module core/test-support/ref-trees
 * fast-check generators of random region trees and topology changes for the property tests, and a
 * builder that turns a generated recipe into a {@link RefWorld} (core regions plus reference twins).
 *
 * A recipe is a list of subtrees built in order; an alias may only target a node of an earlier
 * subtree, and a subtree may only be mounted into a later one (or the main root), so the graph of
 * subregion and alias links never has a cycle while still producing alias chains, aliases of
 * containers, and alias targets that are themselves mapped elsewhere at a non-zero address (R6.4).
 * Test-only; excluded from the build.
 */

import fc from 'fast-check';
import type { RefKind, RefNode, RefWorld } from './ref-model.js';

/** One generated region and its subtree. Numbers are in units (see {@link buildWorld}). */
export interface NodeRecipe {
  kind: RefKind;
  size: number;
  addr: number;
  prio: number;
  enabled: boolean;
  ro: boolean;
  nv: boolean;
  /** Picks the alias target among the candidates. */
  pick: number;
  aliasOffset: number;
  children: NodeRecipe[];
}

/** A subtree and where (if anywhere) it is mounted in a later subtree. */
export interface SubtreeRecipe {
  root: NodeRecipe;
  mount: { pick: number; addr: number; prio: number } | null;
}

/** One topology change; `pick`/`v` select the node and the value. */
export interface MutationRecipe {
  op: 'enable' | 'addr' | 'size' | 'aliasOffset' | 'readonly' | 'nonvolatile' | 'del' | 'add';
  pick: number;
  v: number;
  b: boolean;
  prio: number;
}

/**
 * An alias that closes a loop: a window onto a container (`pick` among the main container and the
 * containers below it, 0 = the main container itself, i.e. an alias of the root) mapped into that
 * container or one of its descendants. Most such windows shrink on every round and render; those
 * that show the same window again are refused by the core (ERR_ALIAS_CYCLE).
 */
export interface LoopRecipe {
  pick: number;
  into: number;
  offset: number;
  size: number;
  addr: number;
  prio: number;
  enabled: boolean;
}

/** A whole generated machine. */
export interface WorldRecipe {
  subtrees: SubtreeRecipe[];
  main: NodeRecipe[];
  /** Aliases that close loops (only with {@link TreeGenOptions.loops}). */
  loops: LoopRecipe[];
}

/** Options of the generators. */
export interface TreeGenOptions {
  kinds: readonly RefKind[];
  /** Size of the main container, in units. */
  space: number;
  /** Largest region size, in units. */
  maxSize: number;
  /** Nesting depth below a subtree root. */
  depth: number;
  /** Also generate aliases that map a container (the root included) into itself. */
  loops?: boolean;
}

const prioArb = fc.integer({ min: -1, max: 1 });

function sizeArb(max: number): fc.Arbitrary<number> {
  return fc.oneof(
    { arbitrary: fc.constant(0), weight: 1 },
    { arbitrary: fc.integer({ min: 1, max: Math.max(1, max >> 2) }), weight: 4 },
    { arbitrary: fc.integer({ min: 1, max }), weight: 3 },
  );
}

function nodeArb(o: TreeGenOptions, depth: number): fc.Arbitrary<NodeRecipe> {
  const children: fc.Arbitrary<NodeRecipe[]> =
    depth > 0 ? fc.array(nodeArb(o, depth - 1), { maxLength: 3 }) : fc.constant([]);
  return fc.record({
    kind: fc.constantFrom(...o.kinds),
    size: sizeArb(o.maxSize),
    addr: fc.nat(o.space * 2),
    prio: prioArb,
    enabled: fc.nat(7).map((v) => v !== 0),
    ro: fc.nat(5).map((v) => v === 0),
    nv: fc.nat(5).map((v) => v === 0),
    pick: fc.nat(1000),
    aliasOffset: fc.oneof(fc.constant(0), fc.nat(o.maxSize >> 1)),
    children,
  });
}

/** Random machines: 0..3 subtrees (optionally mounted) and the main container's children. */
export function worldArb(o: TreeGenOptions): fc.Arbitrary<WorldRecipe> {
  return fc.record({
    subtrees: fc.array(
      fc.record({
        root: nodeArb(o, o.depth - 1),
        mount: fc.option(fc.record({ pick: fc.nat(1000), addr: fc.nat(o.space), prio: prioArb }), {
          freq: 3,
        }),
      }),
      { maxLength: 3 },
    ),
    main: fc.array(nodeArb(o, o.depth - 1), { minLength: 1, maxLength: 4 }),
    loops: o.loops
      ? fc.array(
          fc.record({
            pick: fc.oneof(fc.constant(0), fc.nat(1000)),
            into: fc.nat(1000),
            offset: fc.oneof(fc.constant(0), fc.nat(o.space)),
            size: fc.integer({ min: 1, max: o.space }),
            addr: fc.nat(o.space + 8),
            prio: prioArb,
            enabled: fc.nat(3).map((v) => v !== 0),
          }),
          // One loop at most: two loops through one container make every render branch in two
          // at each round, exponential in QEMU as here.
          { maxLength: 1 },
        )
      : fc.constant([]),
  });
}

/** Random topology changes. */
export function mutationArb(o: TreeGenOptions): fc.Arbitrary<MutationRecipe> {
  return fc.record({
    op: fc.constantFrom('enable', 'addr', 'size', 'aliasOffset', 'readonly', 'nonvolatile', 'del', 'add'),
    pick: fc.nat(1000),
    v: fc.nat(o.space * 2),
    b: fc.boolean(),
    prio: prioArb,
  });
}

/** The result of {@link buildWorld}. */
export interface BuiltWorld {
  world: RefWorld;
  main: RefNode;
}

/**
 * Builds `recipe` in `world`. Children's addresses are reduced modulo a little more than their
 * parent's size, so most children overlap their parent while some stick out or lie outside it.
 */
export function buildWorld(world: RefWorld, recipe: WorldRecipe, o: TreeGenOptions): BuiltWorld {
  const pools: RefNode[][] = [];
  const roots: RefNode[] = [];
  for (const st of recipe.subtrees) {
    const candidates = pools.flat();
    const out: RefNode[] = [];
    roots.push(buildNode(world, st.root, candidates, out));
    pools.push(out);
  }
  const main = world.create('container', o.space);
  const mainNodes: RefNode[] = [main];
  const all = pools.flat();
  for (const c of recipe.main) {
    const n = buildNode(world, c, all, mainNodes);
    world.add(main, n, c.addr % (o.space + 8), c.prio);
  }
  recipe.subtrees.forEach((st, i) => {
    if (!st.mount) return;
    const parents = [...pools.slice(i + 1).flat(), ...mainNodes];
    const p = parents[st.mount.pick % parents.length]!;
    const r = roots[i]!;
    if (world.canAdd(p, r)) world.add(p, r, st.mount.addr % (p.size + 8), st.mount.prio);
  });
  for (const l of recipe.loops) {
    const containers = [main, ...world.nodes.filter((n) => n.kind === 'container' && n !== main)];
    const target = containers[l.pick % containers.length]!;
    const inside = [...world.reachable(target)].filter((n) => n.kind === 'container' || n.kind === 'ram');
    const into = inside[l.into % inside.length]!;
    const loop = world.create('alias', l.size, target, l.offset % (target.size + 1));
    if (!l.enabled) world.setEnabled(loop, false);
    world.add(into, loop, l.addr % (into.size + 8), l.prio);
  }
  return { world, main };
}

function buildNode(world: RefWorld, r: NodeRecipe, candidates: RefNode[], out: RefNode[]): RefNode {
  let n: RefNode;
  if (r.kind === 'alias') {
    // Without an earlier node to point at, alias a fresh detached RAM region.
    const target = candidates.length
      ? candidates[r.pick % candidates.length]!
      : world.create('ram', Math.max(1, r.size));
    n = world.create('alias', r.size, target, r.aliasOffset);
  } else {
    n = world.create(r.kind, r.size);
  }
  out.push(n);
  if (r.ro) world.setReadonly(n, true);
  if (r.nv) world.setNonvolatile(n, true);
  for (const c of r.children) {
    const child = buildNode(world, c, candidates, out);
    world.add(n, child, c.addr % (n.size + 8), c.prio);
  }
  if (!r.enabled) world.setEnabled(n, false);
  return n;
}

/**
 * Applies one topology change to both sides. Returns false when the change does not apply (e.g.
 * `aliasOffset` on a non-alias). `growRam` allows RAM/ROM regions to grow past their creation size.
 */
export function applyMutation(w: RefWorld, m: MutationRecipe, o: TreeGenOptions, growRam = true): boolean {
  const nodes = w.nodes;
  const n = nodes[m.pick % nodes.length]!;
  switch (m.op) {
    case 'enable':
      w.setEnabled(n, m.b);
      return true;
    case 'addr':
      w.setAddress(n, m.v % (o.space + 8));
      return true;
    case 'size': {
      const s = m.v % (o.maxSize + 1);
      if (!growRam && (n.kind === 'ram' || n.kind === 'rom') && s > n.initialSize) return false;
      w.setSize(n, s);
      return true;
    }
    case 'aliasOffset':
      if (n.kind !== 'alias') return false;
      w.setAliasOffset(n, m.v % (o.maxSize >> 1));
      return true;
    case 'readonly':
      w.setReadonly(n, m.b);
      return true;
    case 'nonvolatile':
      w.setNonvolatile(n, m.b);
      return true;
    case 'del':
      if (!n.parent) return false;
      w.del(n);
      return true;
    case 'add': {
      const p = nodes[m.v % nodes.length]!;
      if (!w.canAdd(p, n)) return false;
      w.add(p, n, m.v % (p.size + 8), m.prio);
      return true;
    }
  }
}

/** A one-line-per-region dump of the reference tree, for failure messages. */
export function describeWorld(w: RefWorld): string {
  return w.nodes
    .map((n) => {
      const parts = [
        `${n.mr.name}`,
        n.parent
          ? `in ${n.parent.mr.name}@${n.addr} prio ${n.priority} seq ${n.seq}`
          : `detached addr ${n.addr}`,
        `size ${n.size}`,
      ];
      if (n.target) parts.push(`-> ${n.target.mr.name} off ${n.aliasOffset}`);
      if (!n.enabled) parts.push('DISABLED');
      if (n.readonly) parts.push('ro');
      if (n.nonvolatile) parts.push('nv');
      return parts.join(' ');
    })
    .join('\n');
}
