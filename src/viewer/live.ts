/**
 * @module viewer/live
 * The page's view of a machine running in `memtree run --serve`: the server lists, per RAM block,
 * the pages written since the previous reading as runs of offsets in the block's region; here they
 * become guest address ranges of one address space, through the flat ranges that show that region
 * (a RAM region can appear several times, through aliases, or not at all). Free of the DOM.
 */

import type { SpaceModel } from './model.js';

/** One RAM block's dirty pages as `GET /api/live` lists them (offsets are hex strings). */
export interface LiveDirtyRegion {
  readonly region: string;
  readonly size: string;
  readonly pages: number;
  readonly runs: ReadonlyArray<readonly [string, string]>;
  readonly truncated: boolean;
}

/** The live fields of a `GET /api/live` answer besides the dump text. */
export interface LiveInfo {
  readonly pageSize: number;
  readonly instructions: number;
  readonly clockNs: number;
  readonly dirty: readonly LiveDirtyRegion[];
}

/** A region's dirty pages as seen in one address space. */
export interface DirtyInSpace {
  readonly region: string;
  /** Dirty pages of the whole region (mapped here or not). */
  readonly pages: number;
  /** Pages of the region. */
  readonly totalPages: number;
  /** Guest address ranges `[start, end)` of this space whose bytes lie in dirty pages. */
  readonly ranges: ReadonlyArray<{ readonly start: bigint; readonly end: bigint }>;
  /** Whether the region appears in this space's flat view at all. */
  readonly mapped: boolean;
  readonly truncated: boolean;
}

/** Reads the live fields of an `/api/live` answer, or null when they are not there. */
export function liveInfoOf(body: Record<string, unknown>): LiveInfo | null {
  if (!Array.isArray(body.dirty) || typeof body.pageSize !== 'number') return null;
  return {
    pageSize: body.pageSize,
    instructions: typeof body.instructions === 'number' ? body.instructions : 0,
    clockNs: typeof body.clockNs === 'number' ? body.clockNs : 0,
    dirty: body.dirty as LiveDirtyRegion[],
  };
}

/**
 * Maps the dirty runs of each region onto `space`: for every flat range served by a region of that
 * name, the part of each run that the range shows, at its guest address. Ranges come in address
 * order, adjacent ones merged.
 */
export function dirtyInSpace(space: SpaceModel, info: LiveInfo): DirtyInSpace[] {
  return info.dirty.map((d) => {
    const shown = space.ranges.filter((r) => r.mr.name === d.region);
    const out: { start: bigint; end: bigint }[] = [];
    for (const fr of shown) {
      const o0 = fr.offsetInRegion;
      const o1 = o0 + fr.size;
      for (const [a, b] of d.runs) {
        const s = BigInt(a) > o0 ? BigInt(a) : o0;
        const e = BigInt(b) < o1 ? BigInt(b) : o1;
        if (s < e) out.push({ start: fr.start + (s - o0), end: fr.start + (e - o0) });
      }
    }
    out.sort((x, y) => (x.start < y.start ? -1 : x.start > y.start ? 1 : 0));
    const merged: { start: bigint; end: bigint }[] = [];
    for (const r of out) {
      const last = merged[merged.length - 1];
      if (last && r.start <= last.end) {
        if (r.end > last.end) last.end = r.end;
      } else merged.push({ ...r });
    }
    return {
      region: d.region,
      pages: d.pages,
      totalPages: Math.ceil(Number(BigInt(d.size)) / info.pageSize),
      ranges: merged,
      mapped: shown.length > 0,
      truncated: d.truncated,
    };
  });
}
