/**
 * @module viewer/changes
 * What changed between the flat maps of one address space in two machines, as the diff mode lists
 * it. The comparison itself is `mtree/diff` (the one `memtree diff` prints), run on the
 * `info mtree -f` text of both machines; on top of it, a range that vanished and one that appeared
 * with the same description (region, offset, priority, type) are reported as one range that moved
 * (or, at the same start, was resized): the BAR of a device being reprogrammed is a move, not a
 * removal plus an addition.
 */

import type { MemorySystem } from '../core/system.js';
import { diffFlatDumps, type RangeChange } from '../mtree/diff.js';
import { type FlatDump, parseFlatText } from '../mtree/parse.js';
import { formatFlat } from '../mtree/print.js';
import type { SpaceModel } from './model.js';

/** One difference, positioned by the range after the change (before it, for what vanished). */
export interface MapChange {
  readonly kind: 'appeared' | 'vanished' | 'moved' | 'resized' | 'changed';
  /** Region name (of B's range, or A's for what vanished). */
  readonly name: string;
  readonly before: RangeFacts | null;
  readonly after: RangeFacts | null;
}

/** A flat range as the diff sees it. */
export interface RangeFacts {
  readonly start: bigint;
  readonly size: bigint;
  /** `(prio P, TYPE): NAME[ @OFFSET]`, as `info mtree -f` prints it. */
  readonly text: string;
  readonly type: string;
}

const flatDumps = new WeakMap<MemorySystem, FlatDump>();

/** The `info mtree -f` dump of `system`, as `mtree/parse` reads it (cached per system). */
function flatDumpOf(system: MemorySystem): FlatDump {
  let d = flatDumps.get(system);
  if (!d) {
    d = parseFlatText(formatFlat(system), 'viewer');
    flatDumps.set(system, d);
  }
  return d;
}

const BODY = /^\(prio -?\d+, (?:nv-)?([^)]+)\): (.*?)(?: @[0-9a-f]{16})?$/;

function facts(start: bigint, end: bigint, text: string): RangeFacts {
  const m = BODY.exec(text);
  return { start, size: end - start + 1n, text, type: m?.[1] ?? '' };
}

function nameOf(text: string): string {
  return BODY.exec(text)?.[2] ?? text;
}

/** Whether a `memtree diff` address-space label names one of `names`. */
function labelMatches(label: string, names: readonly string[]): boolean {
  return names.some((n) => label === n || label.startsWith(`${n} (root `));
}

/** Differences from `a` to `b` (the same address space in two machines), in address order. */
export function diffSpaces(a: SpaceModel, b: SpaceModel): MapChange[] {
  const diffs = diffFlatDumps(flatDumpOf(a.spaces[0]!.system), flatDumpOf(b.spaces[0]!.system));
  const d = diffs.find((x) => x.spaces.some((l) => labelMatches(l, a.names) && labelMatches(l, b.names)));
  return d ? fromRangeChanges(d.changes) : [];
}

/** Turns `mtree/diff` changes into the page's, pairing removals and additions into moves. */
export function fromRangeChanges(changes: readonly RangeChange[]): MapChange[] {
  const removed = changes.filter((c) => c.kind === 'removed');
  const added = changes.filter((c) => c.kind === 'added');
  const out: MapChange[] = [];
  const used = new Set<RangeChange>();
  // Additions by their line text, each queue in address order: a removal pairs with the first
  // unused addition of the same text without scanning every addition (large dumps).
  const addedByText = new Map<string | undefined, RangeChange[]>();
  for (const x of added) {
    const q = addedByText.get(x.after);
    if (q) q.push(x);
    else addedByText.set(x.after, [x]);
  }
  for (const r of removed) {
    const peer = addedByText.get(r.before)?.shift();
    const before = facts(r.start, r.end, r.before!);
    if (peer) {
      used.add(peer);
      const after = facts(peer.start, peer.end, peer.after!);
      out.push({
        kind: before.start === after.start ? 'resized' : 'moved',
        name: nameOf(peer.after!),
        before,
        after,
      });
    } else {
      out.push({ kind: 'vanished', name: nameOf(r.before!), before, after: null });
    }
  }
  for (const x of added) {
    if (used.has(x)) continue;
    out.push({
      kind: 'appeared',
      name: nameOf(x.after!),
      before: null,
      after: facts(x.start, x.end, x.after!),
    });
  }
  for (const c of changes) {
    if (c.kind !== 'changed') continue;
    out.push({
      kind: 'changed',
      name: nameOf(c.after!),
      before: facts(c.start, c.end, c.before!),
      after: facts(c.start, c.end, c.after!),
    });
  }
  const pos = (c: MapChange): bigint => (c.after ?? c.before)!.start;
  return out.sort((x, y) => (pos(x) < pos(y) ? -1 : pos(x) > pos(y) ? 1 : 0));
}
