/**
 * @module core/flatview.property.test
 * Property tests pinning FlatView rendering to QEMU's rules. Random region
 * trees — containers, RAM, ROM, I/O regions with children, reservations, aliases (of containers, of
 * RAM, chains, with offsets, of regions also mapped elsewhere), overlapping siblings with equal and
 * different priorities, disabled subtrees, readonly/nonvolatile anywhere, zero sizes, children
 * sticking out of their container — are rendered by the core and compared, address by address, with
 * the independent painter of `test-support/ref-model.ts`.
 */

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import type { FlatRange, FlatView } from './flatview.js';
import { generateFlatView } from './flatview.js';
import { MemorySystem } from './system.js';
import { viewMismatch } from './test-support/ref-check.js';
import { type RefHit, type RefNode, RefWorld, refPaint, refResolveRoot } from './test-support/ref-model.js';
import {
  applyMutation,
  buildWorld,
  describeWorld,
  mutationArb,
  type TreeGenOptions,
  worldArb,
} from './test-support/ref-trees.js';

const OPTS: TreeGenOptions = {
  kinds: ['container', 'container', 'ram', 'rom', 'io', 'reservation', 'alias', 'alias', 'alias'],
  space: 256,
  maxSize: 256,
  depth: 4,
};
/**
 * No view can reach this far: a root sits at most at 263 (addresses are reduced modulo size + 8)
 * and spans at most 256 bytes, and root resolution only ever moves to a region that fits in the
 * previous one.
 */
const LIMIT = 640;

/** QEMU `can_merge`: the neighbours simplification would have merged. */
function mergeable(a: FlatRange, b: FlatRange): boolean {
  return (
    a.start + a.size === b.start &&
    a.mr === b.mr &&
    a.offsetInRegion + a.size === b.offsetInRegion &&
    a.dirtyLogMask === b.dirtyLogMask &&
    a.romdMode === b.romdMode &&
    a.readonly === b.readonly &&
    a.nonvolatile === b.nonvolatile
  );
}

function fmtView(v: FlatView): string {
  return v.ranges
    .map(
      (r) =>
        `[${r.start},${r.end}) ${r.mr.name}+${r.offsetInRegion}${r.readonly ? ' ro' : ''}${r.nonvolatile ? ' nv' : ''}`,
    )
    .join('\n');
}

/**
 * Asserts that `view` is canonical (sorted, disjoint, non-empty ranges of terminating regions that
 * simplification could not merge further) and serves every address as `expected` says.
 */
function checkView(view: FlatView, expected: Array<RefHit | null>, what: string, w: RefWorld): void {
  const rs = view.ranges;
  const ctx = () => `${what}\nview:\n${fmtView(view)}\ntree:\n${describeWorld(w)}`;
  for (let i = 0; i < rs.length; i++) {
    const r = rs[i]!;
    assert.ok(r.size > 0n, `empty range ${i}: ${ctx()}`);
    assert.ok(r.mr.terminates, `range ${i} served by non-terminating ${r.mr.name}: ${ctx()}`);
    assert.ok(r.end <= BigInt(LIMIT), `range ${i} beyond ${LIMIT}: ${ctx()}`);
    assert.equal(r.romdMode, r.mr.romdMode, `romdMode of range ${i}: ${ctx()}`);
    assert.equal(r.dirtyLogMask, 0, `dirty mask of range ${i}: ${ctx()}`);
    if (i > 0) {
      const p = rs[i - 1]!;
      assert.ok(p.end <= r.start, `ranges ${i - 1} and ${i} unsorted or overlapping: ${ctx()}`);
      assert.ok(!mergeable(p, r), `ranges ${i - 1} and ${i} should have been merged: ${ctx()}`);
    }
  }
  const mismatch = viewMismatch(view, expected, LIMIT);
  if (mismatch) assert.fail(`${mismatch}: ${ctx()}`);
}

function checkAll(
  w: RefWorld,
  main: RefNode,
  asNodes: RefNode[],
  ases: ReturnType<MemorySystem['addressSpace']>[],
) {
  // The view of the main root rendered directly (no root resolution).
  checkView(generateFlatView(main.mr), refPaint(main, LIMIT), 'generateFlatView(main)', w);
  // Every address space: its root resolved as memory_region_get_flatview_root does, rendered
  // from there (the root's own address shifts the view).
  ases.forEach((as, i) => {
    const node = asNodes[i]!;
    const physmr = refResolveRoot(node);
    checkView(
      as.currentView,
      refPaint(physmr, LIMIT),
      `AS on ${node.mr.name} (resolves to ${physmr?.mr.name ?? 'null'})`,
      w,
    );
  });
}

describe('FlatView rendering vs an independent per-address reference', () => {
  it('renders random trees exactly as the rules say', () => {
    fc.assert(
      fc.property(worldArb(OPTS), fc.array(fc.nat(1000), { maxLength: 3 }), (recipe, asPicks) => {
        const w = new RefWorld(new MemorySystem());
        const { main } = buildWorld(w, recipe, OPTS);
        const asNodes = [main, ...asPicks.map((p) => w.nodes[p % w.nodes.length]!)];
        const ases = asNodes.map((n) => w.ms.addressSpace(n.mr));
        checkAll(w, main, asNodes, ases);
        // Any region rendered as a root on its own (its own addr shifts the view).
        for (const p of asPicks) {
          const n = w.nodes[(p * 7 + 3) % w.nodes.length]!;
          checkView(generateFlatView(n.mr), refPaint(n, LIMIT), `generateFlatView(${n.mr.name})`, w);
        }
      }),
      { numRuns: 2000 },
    );
  });

  it('keeps rendering exactly after random topology changes (re-adding, moves, resizes, flags)', () => {
    fc.assert(
      fc.property(
        worldArb(OPTS),
        fc.array(fc.nat(1000), { maxLength: 2 }),
        fc.array(mutationArb(OPTS), { minLength: 1, maxLength: 6 }),
        fc.boolean(),
        (recipe, asPicks, muts, batched) => {
          const w = new RefWorld(new MemorySystem());
          const { main } = buildWorld(w, recipe, OPTS);
          const asNodes = [main, ...asPicks.map((p) => w.nodes[p % w.nodes.length]!)];
          const ases = asNodes.map((n) => w.ms.addressSpace(n.mr));
          // Moving a region that has no container changes nothing until the next topology commit
          // (QEMU memory_region_set_address only re-adds mapped regions), so each check is preceded
          // by an unrelated topology change, which rebuilds every view.
          const scratch = w.ms.container('scratch', 16);
          const dummy = w.ms.container('dummy', 16);
          const flush = () =>
            w.ms.transaction(() => {
              scratch.addSubregion(0, dummy);
              scratch.delSubregion(dummy);
            });
          if (batched) {
            w.ms.transaction(() => {
              for (const m of muts) applyMutation(w, m, OPTS);
            });
            flush();
            checkAll(w, main, asNodes, ases);
          } else {
            for (const m of muts) {
              if (!applyMutation(w, m, OPTS)) continue;
              flush();
              checkAll(w, main, asNodes, ases);
            }
          }
        },
      ),
      { numRuns: 1000 },
    );
  });

  it('an alias of a region mapped elsewhere at a non-zero address ignores that address', () => {
    // Worked by hand: ram "r" (16 bytes) lives at 0x40 of sys; alias "a" of r, offset 4, size 8, at 0x80.
    // r's byte 4 must appear at 0x80 (aliasStart - aliasOffset + t = 0x80 - 4 + 4), not at 0x80 + 0x40.
    const ms = new MemorySystem();
    const sys = ms.container('sys', 256);
    const r = ms.ram('r', 16);
    const a = ms.alias('a', r, 4, 8);
    sys.addSubregion(0x40, r);
    sys.addSubregion(0x80, a);
    const ranges = generateFlatView(sys).ranges.map((x) => [x.mr.name, x.start, x.size, x.offsetInRegion]);
    assert.deepEqual(ranges, [
      ['r', 0x40n, 16n, 0n],
      ['r', 0x80n, 8n, 4n],
    ]);
  });
});
