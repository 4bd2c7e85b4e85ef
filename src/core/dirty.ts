/**
 * @module core/dirty
 * Dirty memory bitmaps (QEMU `ram_list.dirty_memory`, `cpu_physical_memory_*_dirty*`): one bit per
 * target page of ram_addr space for each client — VGA (displays redraw dirty lines), CODE (a JIT
 * drops translations of written pages) and MIGRATION (live migration resends dirty pages).
 *
 * Bits are kept in 32-bit words that grow with ram_addr space. Marking is idempotent and cheap;
 * the guest-access fast path avoids it entirely by caching a page for writing only once it is dirty
 * for every client that logs it (QEMU's TLB_NOTDIRTY trick), which is why clearing bits must drop
 * cached write translations: {@link DirtyMemory.onClear} is how the system hears about it.
 */

import { DIRTY_MEMORY_CODE, DIRTY_MEMORY_MIGRATION, DIRTY_MEMORY_VGA } from './region.js';

/** Number of dirty memory clients. */
export const DIRTY_MEMORY_NUM = 3;
/** Mask of all clients. */
export const DIRTY_CLIENTS_ALL = (1 << DIRTY_MEMORY_NUM) - 1;
/** Mask of all clients but CODE. */
export const DIRTY_CLIENTS_NOCODE = DIRTY_CLIENTS_ALL & ~(1 << DIRTY_MEMORY_CODE);

export { DIRTY_MEMORY_CODE, DIRTY_MEMORY_MIGRATION, DIRTY_MEMORY_VGA };

const PAGE_BITS = 12;
const PAGE_SIZE = 1 << PAGE_BITS;

/** A copy of part of one client's bitmap, taken and cleared atomically (QEMU `DirtyBitmapSnapshot`). */
export interface DirtyBitmapSnapshot {
  /** First ram_addr covered (aligned down to 64 pages). */
  readonly start: number;
  /** End of the covered range (exclusive, aligned up to 64 pages). */
  readonly end: number;
  /** One bit per page from `start`. */
  readonly bits: Uint32Array;
}

function firstPage(start: number): number {
  return Math.floor(start / PAGE_SIZE);
}

function endPage(start: number, length: number): number {
  return Math.ceil((start + length) / PAGE_SIZE);
}

/** The three dirty bitmaps of one machine. */
export class DirtyMemory {
  private readonly maps: Uint32Array[] = [new Uint32Array(64), new Uint32Array(64), new Uint32Array(64)];
  /** Called after bits were cleared, with the ram_addr range; the system drops cached write paths. */
  onClear: ((start: number, length: number) => void) | null = null;

  /** Makes room for pages below ram_addr `end`. */
  grow(end: number): void {
    const words = Math.ceil(endPage(0, end) / 32);
    for (let c = 0; c < DIRTY_MEMORY_NUM; c++) {
      const m = this.maps[c]!;
      if (m.length < words) {
        const n = new Uint32Array(Math.max(words, m.length * 2));
        n.set(m);
        this.maps[c] = n;
      }
    }
  }

  private map(client: number): Uint32Array {
    const m = this.maps[client];
    if (!m) throw new RangeError(`dirty memory client ${client} does not exist`);
    return m;
  }

  /** QEMU `cpu_physical_memory_set_dirty_range`: marks the pages of `[start, start+length)`. */
  setRange(start: number, length: number, mask: number): void {
    if (mask === 0 || length <= 0) return;
    const p0 = firstPage(start);
    const p1 = endPage(start, length);
    this.grow(p1 * PAGE_SIZE);
    for (let c = 0; c < DIRTY_MEMORY_NUM; c++) {
      if (!(mask & (1 << c))) continue;
      const m = this.maps[c]!;
      for (let p = p0; p < p1; p++) m[p >>> 5]! |= 1 << (p & 31);
    }
  }

  /** Marks one page dirty for the clients in `mask` (the per-write path; no range arithmetic). */
  setPage(page: number, mask: number): void {
    const w = page >>> 5;
    const bit = 1 << (page & 31);
    if (w >= this.maps[0]!.length) this.grow((page + 1) * PAGE_SIZE);
    if (mask & 1) this.maps[0]![w]! |= bit;
    if (mask & 2) this.maps[1]![w]! |= bit;
    if (mask & 4) this.maps[2]![w]! |= bit;
  }

  /** QEMU `cpu_physical_memory_get_dirty`: whether any page of the range is dirty for `client`. */
  getDirty(start: number, length: number, client: number): boolean {
    const m = this.map(client);
    const p1 = endPage(start, length);
    for (let p = firstPage(start); p < p1; p++) {
      if ((m[p >>> 5] ?? 0) & (1 << (p & 31))) return true;
    }
    return false;
  }

  /** QEMU `cpu_physical_memory_all_dirty`: whether every page of the range is dirty for `client`. */
  allDirty(start: number, length: number, client: number): boolean {
    const m = this.map(client);
    const p1 = endPage(start, length);
    for (let p = firstPage(start); p < p1; p++) {
      if (!((m[p >>> 5] ?? 0) & (1 << (p & 31)))) return false;
    }
    return true;
  }

  /** QEMU `cpu_physical_memory_range_includes_clean`: the clients of `mask` with a clean page in range. */
  rangeIncludesClean(start: number, length: number, mask: number): number {
    let r = 0;
    for (let c = 0; c < DIRTY_MEMORY_NUM; c++) {
      if (mask & (1 << c) && !this.allDirty(start, length, c)) r |= 1 << c;
    }
    return r;
  }

  /** Whether page `page` (a ram_addr page number) is dirty for every client in `mask`. */
  pageDirtyForAll(page: number, mask: number): boolean {
    const w = page >>> 5;
    const bit = 1 << (page & 31);
    for (let c = 0; c < DIRTY_MEMORY_NUM; c++) {
      if (mask & (1 << c) && !((this.maps[c]![w] ?? 0) & bit)) return false;
    }
    return true;
  }

  /** The 32 pages of bitmap word `w` that are dirty for every client in `mask`, as a bit mask. */
  private wordDirtyForAll(w: number, mask: number): number {
    let bits = -1;
    for (let c = 0; c < DIRTY_MEMORY_NUM; c++) if (mask & (1 << c)) bits &= this.maps[c]![w] ?? 0;
    return bits;
  }

  /**
   * The first page of the run of pages dirty for every client in `mask` that ends at `page` (itself
   * dirty), looking no further back than `limit`. Whole words are checked at once.
   */
  dirtyRunStart(page: number, mask: number, limit: number): number {
    let p = page;
    while (p > limit) {
      const q = p - 1;
      if ((q & 31) === 31 && q - 31 >= limit && this.wordDirtyForAll(q >>> 5, mask) === -1) p -= 32;
      else if (this.pageDirtyForAll(q, mask)) p = q;
      else break;
    }
    return p;
  }

  /**
   * The end (exclusive) of the run of pages dirty for every client in `mask` that starts at `page`
   * (itself dirty), looking no further than `limit`. Whole words are checked at once.
   */
  dirtyRunEnd(page: number, mask: number, limit: number): number {
    let p = page + 1;
    while (p < limit) {
      if ((p & 31) === 0 && p + 32 <= limit && this.wordDirtyForAll(p >>> 5, mask) === -1) p += 32;
      else if (this.pageDirtyForAll(p, mask)) p++;
      else break;
    }
    return Math.min(p, limit);
  }

  /** QEMU `cpu_physical_memory_is_clean`: clean for all three clients. */
  isClean(addr: number): boolean {
    return this.rangeIncludesClean(addr, 1, DIRTY_CLIENTS_ALL) === DIRTY_CLIENTS_ALL;
  }

  /**
   * QEMU `cpu_physical_memory_test_and_clear_dirty`: clears `client`'s bits for the range and
   * returns whether any was set.
   */
  testAndClear(start: number, length: number, client: number): boolean {
    const m = this.map(client);
    const p1 = endPage(start, length);
    let any = false;
    for (let p = firstPage(start); p < p1; p++) {
      const w = p >>> 5;
      const bit = 1 << (p & 31);
      if ((m[w] ?? 0) & bit) {
        any = true;
        m[w]! &= ~bit;
      }
    }
    if (any) this.onClear?.(start, length);
    return any;
  }

  /**
   * QEMU `cpu_physical_memory_snapshot_and_clear_dirty`: copies and clears `client`'s bits for the
   * range widened to 64-page boundaries.
   */
  snapshotAndClear(start: number, length: number, client: number): DirtyBitmapSnapshot {
    const m = this.map(client);
    const align = 64 * PAGE_SIZE;
    const s = Math.floor(start / align) * align;
    const e = Math.ceil((start + length) / align) * align;
    const p0 = s / PAGE_SIZE;
    const pages = (e - s) / PAGE_SIZE;
    const bits = new Uint32Array(Math.ceil(pages / 32));
    const w0 = p0 >>> 5;
    for (let k = 0; k < bits.length; k++) {
      const v = m[w0 + k] ?? 0;
      bits[k] = v;
      if (v && w0 + k < m.length) m[w0 + k] = 0;
    }
    this.onClear?.(s, e - s);
    return { start: s, end: e, bits };
  }

  /** QEMU `cpu_physical_memory_snapshot_get_dirty`: whether the snapshot has a dirty page in range. */
  snapshotGetDirty(snap: DirtyBitmapSnapshot, start: number, length: number): boolean {
    if (start < snap.start || start + length > snap.end) {
      throw new RangeError(`range 0x${start.toString(16)}+0x${length.toString(16)} is outside the snapshot`);
    }
    const p1 = endPage(start, length) - snap.start / PAGE_SIZE;
    for (let p = firstPage(start) - snap.start / PAGE_SIZE; p < p1; p++) {
      if (snap.bits[p >>> 5]! & (1 << (p & 31))) return true;
    }
    return false;
  }
}
