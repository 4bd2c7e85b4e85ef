/**
 * @module mtree/diff
 * Differences between two memory maps, address space by address space: which flat ranges were
 * added, removed or changed (same extent, different region, offset, type or priority). Works on
 * parsed `info mtree -f` dumps, so a tree dump is first rebuilt and rendered by the caller.
 */

import type { FlatDump, FlatRangeLine } from './parse.js';

/** One changed piece of an address space. */
export interface RangeChange {
  readonly kind: 'added' | 'removed' | 'changed';
  readonly start: bigint;
  /** Inclusive end. */
  readonly end: bigint;
  /** The range as printed in A (removed, changed). */
  readonly before?: string;
  /** The range as printed in B (added, changed). */
  readonly after?: string;
}

/** The differences of one address space (or of several that have exactly the same ones). */
export interface SpaceDiff {
  /** Address-space labels: `NAME` (with ` (root ROOT)` when a name is not unique). */
  readonly spaces: string[];
  /** Set when the address space exists on one side only. */
  readonly onlyIn?: 'A' | 'B';
  readonly changes: RangeChange[];
}

/** Flat ranges of every address space, keyed by a label unique within the dump. */
function spacesOf(d: FlatDump): Map<string, FlatRangeLine[]> {
  const count = new Map<string, number>();
  for (const v of d.views) for (const a of v.spaces) count.set(a.name, (count.get(a.name) ?? 0) + 1);
  const out = new Map<string, FlatRangeLine[]>();
  for (const v of d.views) {
    for (const a of v.spaces) {
      let label = count.get(a.name)! > 1 ? `${a.name} (root ${a.root})` : a.name;
      for (let k = 2; out.has(label); k++) label = `${a.name} (root ${a.root}) #${k}`;
      out.set(label, v.ranges);
    }
  }
  return out;
}

/** What a range says besides its extent: `(prio P, TYPE): NAME[ @OFF]`. */
function body(r: FlatRangeLine): string {
  return r.text.slice(r.text.indexOf(' (prio ') + 1);
}

function diffRanges(a: FlatRangeLine[], b: FlatRangeLine[]): RangeChange[] {
  const inB = new Set(b.map((r) => r.text));
  const inA = new Set(a.map((r) => r.text));
  const gone = a.filter((r) => !inB.has(r.text));
  const fresh = b.filter((r) => !inA.has(r.text));
  const key = (r: FlatRangeLine) => `${r.start}-${r.end}`;
  const freshByExtent = new Map(fresh.map((r) => [key(r), r]));
  const changes: RangeChange[] = [];
  const paired = new Set<FlatRangeLine>();
  for (const r of gone) {
    const peer = freshByExtent.get(key(r));
    if (peer && !paired.has(peer)) {
      paired.add(peer);
      changes.push({ kind: 'changed', start: r.start, end: r.end, before: body(r), after: body(peer) });
    } else {
      changes.push({ kind: 'removed', start: r.start, end: r.end, before: body(r) });
    }
  }
  for (const r of fresh) {
    if (!paired.has(r)) changes.push({ kind: 'added', start: r.start, end: r.end, after: body(r) });
  }
  const order = { removed: 0, changed: 1, added: 2 };
  return changes.sort((x, y) =>
    x.start < y.start ? -1 : x.start > y.start ? 1 : order[x.kind] - order[y.kind],
  );
}

/**
 * Per address space, the flat ranges that differ between `a` and `b`. Address spaces with no
 * difference are left out; address spaces with identical differences are reported together.
 */
export function diffFlatDumps(a: FlatDump, b: FlatDump): SpaceDiff[] {
  const sa = spacesOf(a);
  const sb = spacesOf(b);
  const out: SpaceDiff[] = [];
  const byKey = new Map<string, SpaceDiff>();
  const push = (label: string, onlyIn: 'A' | 'B' | undefined, changes: RangeChange[]) => {
    if (!changes.length && !onlyIn) return;
    const key = `${onlyIn ?? ''}\n${changes.map((c) => `${c.kind} ${c.start} ${c.end} ${c.before} ${c.after}`).join('\n')}`;
    const prev = byKey.get(key);
    if (prev) {
      prev.spaces.push(label);
      return;
    }
    const d: SpaceDiff = onlyIn ? { spaces: [label], onlyIn, changes } : { spaces: [label], changes };
    byKey.set(key, d);
    out.push(d);
  };
  for (const [label, ra] of sa) {
    const rb = sb.get(label);
    push(label, rb ? undefined : 'A', diffRanges(ra, rb ?? []));
  }
  for (const [label, rb] of sb) if (!sa.has(label)) push(label, 'B', diffRanges([], rb));
  return out;
}

function hex16(v: bigint): string {
  return v.toString(16).padStart(16, '0');
}

/** The differences as text for a person. Empty when there is none. */
export function formatDiff(diffs: SpaceDiff[]): string {
  const out: string[] = [];
  for (const d of diffs) {
    const names = d.spaces.map((s) => `"${s}"`).join(', ');
    const only = d.onlyIn ? ` (only in ${d.onlyIn})` : '';
    out.push(`address space${d.spaces.length > 1 ? 's' : ''} ${names}${only}:`);
    for (const c of d.changes) {
      const ext = `${hex16(c.start)}-${hex16(c.end)}`;
      if (c.kind === 'removed') out.push(`  - ${ext} ${c.before}`);
      else if (c.kind === 'added') out.push(`  + ${ext} ${c.after}`);
      else out.push(`  ~ ${ext} ${c.before}\n      now ${c.after}`);
    }
    out.push('');
  }
  return out.join('\n');
}
