/**
 * @module core/test-support/ref-check
 * Compares a core {@link FlatView} with the reference painter's per-address answers: the oracle of
 * the property tests, independent of the core's own rendering. Free of Node imports (the core is
 * type-checked without them). Test-only; excluded from the build.
 */

import type { FlatView } from '../flatview.js';
import type { RefHit } from './ref-model.js';

function fmtHit(h: RefHit | null): string {
  return h
    ? `${h.node.mr.name}+${h.offset}${h.readonly ? ' ro' : ''}${h.nonvolatile ? ' nv' : ''}`
    : 'unassigned';
}

/**
 * Null when `view` serves every address below `limit` as `expected` says (region, offset,
 * read-only and non-volatile flags), else a description of the first address that differs.
 */
export function viewMismatch(
  view: FlatView,
  expected: ReadonlyArray<RefHit | null>,
  limit: number,
): string | null {
  const rs = view.ranges;
  let k = 0;
  for (let a = 0; a < limit; a++) {
    while (k < rs.length && rs[k]!.end <= BigInt(a)) k++;
    const r = rs[k];
    const inR = r !== undefined && r.start <= BigInt(a);
    const e = expected[a] ?? null;
    const ok = inR
      ? e !== null &&
        e.node.mr === r.mr &&
        BigInt(e.offset) === r.offsetInRegion + (BigInt(a) - r.start) &&
        e.readonly === r.readonly &&
        e.nonvolatile === r.nonvolatile
      : e === null;
    if (!ok) {
      const got = inR
        ? `${r.mr.name}+${r.offsetInRegion + (BigInt(a) - r.start)}${r.readonly ? ' ro' : ''}${r.nonvolatile ? ' nv' : ''}`
        : 'unassigned';
      return `address ${a}: the reference has ${fmtHit(e)}, the core ${got}`;
    }
  }
  if (rs.length && rs[rs.length - 1]!.end > BigInt(limit)) return `the view reaches past ${limit}`;
  return null;
}
