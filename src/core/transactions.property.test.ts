/**
 * @module core/transactions.property.test
 * Property tests of transactions, view sharing and listener diffs (spec sections 5, 7 and 8).
 *
 * Random topology changes run one by one or inside nested begin/commit pairs on a machine with
 * several address spaces: two sharing the main root, one rooted at an alias of a container, one whose
 * root resolves to nothing, and some on random regions. After every outermost topology commit each
 * address space must hold exactly what a fresh render of its resolved root gives (R5.1, R7.4); spaces
 * whose roots resolve to the same region share one view object and null roots get the system's empty
 * view (R7.2). Nothing may change while a transaction is open (R5.3, R5.4). Listeners must hear, per
 * commit, all deletions before any addition (R8.6) and a sequence whose replay rebuilds the new view.
 */

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import type { AddressSpace } from './address-space.js';
import { type FlatRange, type FlatView, generateFlatView, resolveFlatViewRoot } from './flatview.js';
import type { MemoryListener } from './listener.js';
import { MemorySystem } from './system.js';
import { viewMismatch } from './test-support/ref-check.js';
import { type RefNode, RefWorld, refPaint, refResolveRoot } from './test-support/ref-model.js';
import {
  applyMutation,
  buildWorld,
  describeWorld,
  type MutationRecipe,
  mutationArb,
  type TreeGenOptions,
  worldArb,
} from './test-support/ref-trees.js';

const OPTS: TreeGenOptions = {
  kinds: ['container', 'container', 'ram', 'rom', 'io', 'alias', 'alias'],
  space: 256,
  maxSize: 256,
  depth: 3,
  loops: true,
};

/** Beyond every view: roots sit below 264 and span at most 256 units. */
const LIMIT = 640;

type Step = { t: 'mut'; m: MutationRecipe } | { t: 'begin' } | { t: 'commit' };

const stepArb: fc.Arbitrary<Step> = fc.oneof(
  { arbitrary: mutationArb(OPTS).map((m) => ({ t: 'mut' as const, m })), weight: 6 },
  { arbitrary: fc.constant({ t: 'begin' as const }), weight: 1 },
  { arbitrary: fc.constant({ t: 'commit' as const }), weight: 1 },
);

function sameRange(a: FlatRange, b: FlatRange): boolean {
  return (
    a.mr === b.mr &&
    a.start === b.start &&
    a.size === b.size &&
    a.offsetInRegion === b.offsetInRegion &&
    a.readonly === b.readonly &&
    a.nonvolatile === b.nonvolatile &&
    a.romdMode === b.romdMode &&
    a.dirtyLogMask === b.dirtyLogMask
  );
}

function fmt(v: FlatView): string {
  return v.ranges.map((r) => `[${r.start},${r.end}) ${r.mr.name}+${r.offsetInRegion}`).join(', ');
}

interface Section {
  readonly mr: { readonly name: string | null } | null;
  readonly offsetWithinAddressSpace: bigint;
  readonly size: bigint;
  readonly offsetWithinRegion: bigint;
  readonly readonly: boolean;
  readonly nonvolatile: boolean;
}

function key(s: Section): string {
  return `${s.mr?.name}|${s.offsetWithinAddressSpace}|${s.size}|${s.offsetWithinRegion}|${s.readonly}|${s.nonvolatile}`;
}

function viewKeys(v: FlatView): string[] {
  return v.ranges
    .map((r) =>
      key({
        mr: r.mr,
        offsetWithinAddressSpace: r.start,
        size: r.size,
        offsetWithinRegion: r.offsetInRegion,
        readonly: r.readonly,
        nonvolatile: r.nonvolatile,
      }),
    )
    .sort();
}

/**
 * A listener that replays what it hears: starting from the ranges announced at registration, each
 * commit removes the deleted ranges and adds the added ones; the result must be the new view.
 */
class ReplayListener implements MemoryListener {
  readonly name: string;
  state = new Set<string>();
  commits = 0;
  failure: string | null = null;
  private dels: string[] = [];
  private adds: string[] = [];
  private nops: string[] = [];
  private sawAddOrNop = false;

  constructor(
    readonly as: AddressSpace,
    private readonly ctx: () => string,
  ) {
    this.name = `replay-${as.name}`;
  }

  private fail(msg: string): void {
    this.failure ??= `${this.name}: ${msg}\n${this.ctx()}`;
  }

  begin(): void {
    this.dels = [];
    this.adds = [];
    this.nops = [];
    this.sawAddOrNop = false;
  }

  regionDel(s: Section): void {
    if (this.sawAddOrNop) this.fail(`regionDel ${key(s)} after an add or nop of the same commit`);
    this.dels.push(key(s));
  }

  regionAdd(s: Section): void {
    this.sawAddOrNop = true;
    this.adds.push(key(s));
  }

  regionNop(s: Section): void {
    this.sawAddOrNop = true;
    this.nops.push(key(s));
  }

  commit(): void {
    this.commits++;
    const next = new Set(this.state);
    for (const d of this.dels) {
      if (!next.delete(d)) this.fail(`regionDel of ${d}, which was not present`);
    }
    for (const a of this.adds) {
      if (next.has(a)) this.fail(`regionAdd of ${a}, which is already present`);
      next.add(a);
    }
    for (const n of this.nops) {
      if (!this.state.has(n) || !next.has(n)) this.fail(`regionNop of ${n}, not present before and after`);
    }
    this.state = next;
    const want = viewKeys(this.as.currentView);
    const got = [...next].sort();
    if (want.join('\n') !== got.join('\n')) {
      this.fail(`replay gives\n  ${got.join('\n  ')}\nview is\n  ${want.join('\n  ')}`);
    }
  }
}

describe('transactions, view sharing and listener diffs (R5.1-R5.4, R7.1-R7.4, R8.2-R8.6)', () => {
  it('after every outermost commit each AS holds a fresh render of its resolved root', () => {
    fc.assert(
      fc.property(
        worldArb(OPTS),
        fc.array(fc.nat(1000), { maxLength: 3 }),
        fc.array(stepArb, { minLength: 1, maxLength: 25 }),
        fc.nat(25),
        fc.nat(1000),
        fc.boolean(),
        (recipe, picks, steps, lateAt, latePick, fullAlias) => {
          const ms = new MemorySystem();
          const w = new RefWorld(ms);
          const { main } = buildWorld(w, recipe, OPTS);
          // An alias of a container as a root: whole (resolves to the container) or a window.
          const containers = w.nodes.filter((n) => n.kind === 'container');
          const aliased = containers[(picks[0] ?? 0) % containers.length] ?? main;
          const rootAlias = fullAlias
            ? w.create('alias', aliased.size, aliased, 0)
            : w.create('alias', Math.max(1, aliased.size >> 1), aliased, aliased.size >> 2);
          // A root that resolves to nothing: a container whose only child is disabled.
          const empty = w.create('container', 64);
          const hidden = w.create('ram', 16);
          w.add(empty, hidden, 0, 0);
          w.setEnabled(hidden, false);
          const roots: RefNode[] = [
            main,
            main,
            rootAlias,
            empty,
            ...picks.map((p) => w.nodes[p % w.nodes.length]!),
          ];
          const ases = roots.map((r, i) => ms.addressSpace(r.mr, `as${i}`));
          assert.equal(
            ases[3]!.currentView,
            ms.emptyView,
            'R7.2: a root resolving to nothing has the empty view',
          );
          let stepNo = -1;
          const ctx = () => `after step ${stepNo}\n${describeWorld(w)}`;
          const listeners = [new ReplayListener(ases[0]!, ctx), new ReplayListener(ases[2]!, ctx)];
          const register = (l: ReplayListener) => {
            // R8.2: registration announces the current view as additions, inside begin/commit.
            l.as.addListener(l);
            assert.equal(l.failure, null, l.failure ?? '');
          };
          for (const l of listeners) register(l);

          const checkViews = (why: string) => {
            const byRoot = new Map<unknown, FlatView>();
            ases.forEach((as, i) => {
              const physmr = resolveFlatViewRoot(as.root);
              assert.equal(
                physmr,
                refResolveRoot(roots[i]!)?.mr ?? null,
                `R7.1 resolution of ${as.name}: ${ctx()}`,
              );
              const v = as.currentView;
              if (physmr === null)
                assert.equal(v, ms.emptyView, `${as.name} should have the empty view (${why})`);
              const shared = byRoot.get(physmr);
              if (shared)
                assert.equal(v, shared, `R7.2: ${as.name} must share the view of its resolved root`);
              byRoot.set(physmr, v);
              // The oracle: the independent reference painter, address by address.
              const bad = viewMismatch(v, refPaint(refResolveRoot(roots[i]!), LIMIT), LIMIT);
              if (bad) assert.fail(`${as.name} (${why}): ${bad}\nview\n  ${fmt(v)}\n${ctx()}`);
              // And the incremental re-render must give exactly the ranges of a full render.
              const fresh = generateFlatView(physmr);
              const same =
                v.ranges.length === fresh.ranges.length &&
                v.ranges.every((r, k) => sameRange(r, fresh.ranges[k]!));
              if (!same) {
                assert.fail(
                  `${as.name} (${why}): view\n  ${fmt(v)}\nfresh render\n  ${fmt(fresh)}\n${ctx()}`,
                );
              }
            });
          };

          checkViews('initial');
          let depth = 0;
          let commitsSeen = listeners[0]!.commits;
          let before = ases.map((as) => as.currentView);
          const all = [...steps, ...Array.from({ length: 8 }, () => ({ t: 'commit' as const }))];
          for (stepNo = 0; stepNo < all.length; stepNo++) {
            const s = all[stepNo]!;
            if (stepNo === lateAt) {
              const l = new ReplayListener(ases[latePick % ases.length]!, ctx);
              if (!listeners.some((x) => x.as === l.as)) {
                register(l);
                listeners.push(l);
              }
            }
            if (s.t === 'begin') {
              ms.begin();
              depth++;
            } else if (s.t === 'commit') {
              if (depth === 0) continue;
              ms.commit();
              depth--;
            } else {
              applyMutation(w, s.m, OPTS);
            }
            for (const l of listeners) assert.equal(l.failure, null, l.failure ?? '');
            if (depth > 0) {
              // R5.4: nothing is visible before the outermost commit.
              ases.forEach((as, i) => {
                assert.equal(as.currentView, before[i], `${as.name} changed inside a transaction: ${ctx()}`);
              });
              assert.equal(
                listeners[0]!.commits,
                commitsSeen,
                'a listener heard a commit inside a transaction',
              );
              continue;
            }
            if (listeners[0]!.commits !== commitsSeen) {
              // R5.3: one update per outermost commit.
              assert.equal(listeners[0]!.commits, commitsSeen + 1, 'nested commits must coalesce');
              commitsSeen = listeners[0]!.commits;
              checkViews(`commit at step ${stepNo}`);
            } else {
              // No topology commit: views are untouched (a moved root without a container waits).
              ases.forEach((as, i) => {
                assert.equal(as.currentView, before[i], `${as.name} changed without a topology commit`);
              });
            }
            before = ases.map((as) => as.currentView);
          }
          assert.equal(ms.transactionDepth, 0);
        },
      ),
      { numRuns: 300, seed: 20261203 },
    );
  });
});
