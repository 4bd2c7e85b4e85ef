/**
 * @module core/dirty
 * Dirty memory bitmaps (QEMU `ram_list.dirty_memory`, `cpu_physical_memory_*_dirty*`): one bit per
 * target page of ram_addr space for each client — VGA (displays redraw dirty lines), CODE (a JIT
 * drops translations of written pages) and MIGRATION (live migration resends dirty pages).
 *
 * Bits are kept in 32-bit words, grouped in blocks of {@link BLOCK_WORDS} words (512 MiB of guest
 * RAM each), like QEMU's `DirtyMemoryBlocks`. A block nobody marked is not allocated, and a block
 * marked whole (a new RAM block starts dirty for every client) shares one all-ones block until a
 * bit of it is cleared: so a 64 TiB RAM region costs a few hundred kilobytes of bitmap, not
 * gigabytes, and range operations go a word (or a whole block) at a time, never page by page.
 *
 * Marking is idempotent and cheap; the guest-access fast path avoids it entirely by caching a page
 * for writing only once it is dirty for every client that logs it (QEMU's TLB_NOTDIRTY trick),
 * which is why clearing bits must drop cached write translations: {@link DirtyMemory.onClear} is
 * how the system hears about it.
 */

import { InvalidArgumentError } from './errors.js';
import { DIRTY_MEMORY_CODE, DIRTY_MEMORY_MIGRATION, DIRTY_MEMORY_VGA } from './region.js';

/** Number of dirty memory clients. */
export const DIRTY_MEMORY_NUM = 3;
/** Mask of all clients. */
export const DIRTY_CLIENTS_ALL = (1 << DIRTY_MEMORY_NUM) - 1;

export { DIRTY_MEMORY_CODE, DIRTY_MEMORY_MIGRATION, DIRTY_MEMORY_VGA };

const PAGE_BITS = 12;
const PAGE_SIZE = 1 << PAGE_BITS;
/** Words per bitmap block: 2^17 pages. */
const BLOCK_WORDS = 1 << 12;
const BLOCK_MASK = BLOCK_WORDS - 1;
/** The shared block of a range marked whole; replaced by a copy before any bit of it is cleared. */
const FULL = new Uint32Array(BLOCK_WORDS).fill(0xffffffff);

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

function endPage(ramAddr: number, length: number): number {
  return Math.ceil((ramAddr + length) / PAGE_SIZE);
}

/** The bitmap word of page `p` (ram_addr pages go beyond 2^32 for 16 TiB of RAM: no `>>>`). */
function wordOf(p: number): number {
  return Math.floor(p / 32);
}

/** The bitmap block of word `w`. */
function blockOf(w: number): number {
  return Math.floor(w / BLOCK_WORDS);
}

/** The bits of word `w` that lie in pages `[p0, p1)`. */
function wordMask(w: number, p0: number, p1: number): number {
  const lo = Math.max(p0 - w * 32, 0);
  const hi = Math.min(p1 - w * 32, 32);
  if (lo >= hi) return 0;
  const upper = hi === 32 ? -1 : (1 << hi) - 1;
  return upper & ~((1 << lo) - 1);
}

/** Whether client `client` exists; the public entry points refuse anything else. */
function checkClient(client: number): void {
  if (!Number.isInteger(client) || client < 0 || client >= DIRTY_MEMORY_NUM) {
    throw new InvalidArgumentError(`dirty memory client ${String(client)} does not exist (0, 1 or 2)`);
  }
}

/**
 * The three dirty bitmaps of one machine (see the module comment). Every `ramAddr` here is a byte
 * address in ram_addr space (a block's `offset` plus an offset in the block) and every `length` a
 * byte count; `page` arguments are ram_addr page numbers. {@link MemorySystem.setDirty} and its
 * siblings take region offsets instead and convert.
 */
export class DirtyMemory {
  // Per client, the blocks by index: undefined = all clean, FULL = all dirty (shared).
  private readonly maps: Array<Array<Uint32Array | undefined>> = [[], [], []];
  /** @internal Called after bits were cleared, with the ram_addr range; the system drops cached write paths. */
  onClear: ((ramAddr: number, length: number) => void) | null = null;

  /** Word `w` of client `c`'s bitmap. */
  private word(c: number, w: number): number {
    const b = this.maps[c]![blockOf(w)];
    return b === undefined ? 0 : b[w & BLOCK_MASK]!;
  }

  /** Block `bi` of client `c`, allocated or copied so that it can be written. */
  private writable(c: number, bi: number): Uint32Array {
    const m = this.maps[c]!;
    let b = m[bi];
    if (b === undefined) {
      while (m.length < bi) m.push(undefined);
      b = new Uint32Array(BLOCK_WORDS);
      m[bi] = b;
    } else if (b === FULL) {
      b = FULL.slice();
      m[bi] = b;
    }
    return b;
  }

  /** Sets `bits` in word `w` of client `c`. */
  private orWord(c: number, w: number, bits: number): void {
    if (bits === 0) return;
    const bi = blockOf(w);
    const b = this.maps[c]![bi];
    if (b === FULL) return;
    (b ?? this.writable(c, bi))[w & BLOCK_MASK]! |= bits;
  }

  /** Clears `bits` in word `w` of client `c`; returns whether any of them was set. */
  private clearWord(c: number, w: number, bits: number): boolean {
    if ((this.word(c, w) & bits) === 0) return false;
    this.writable(c, blockOf(w))[w & BLOCK_MASK]! &= ~bits;
    return true;
  }

  /** QEMU `cpu_physical_memory_set_dirty_range`: marks the pages of ram_addr `[start, start+length)`. */
  setRange(ramAddr: number, length: number, mask: number): void {
    if (mask === 0 || length <= 0) return;
    const p0 = firstPage(ramAddr);
    const p1 = endPage(ramAddr, length);
    for (let c = 0; c < DIRTY_MEMORY_NUM; c++) {
      if (!(mask & (1 << c))) continue;
      const m = this.maps[c]!;
      for (let w = wordOf(p0); w * 32 < p1; ) {
        const bi = blockOf(w);
        // A whole block inside the range: share the all-ones block.
        if ((w & BLOCK_MASK) === 0 && (w + BLOCK_WORDS) * 32 <= p1 && w * 32 >= p0) {
          while (m.length < bi) m.push(undefined);
          m[bi] = FULL;
          w += BLOCK_WORDS;
          continue;
        }
        this.orWord(c, w, wordMask(w, p0, p1));
        w++;
      }
    }
  }

  /** Marks one page dirty for the clients in `mask` (the per-write path; no range arithmetic). */
  setPage(page: number, mask: number): void {
    const w = wordOf(page);
    const bit = 1 << (page & 31);
    for (let c = 0; c < DIRTY_MEMORY_NUM; c++) if (mask & (1 << c)) this.orWord(c, w, bit);
  }

  /**
   * Calls `f(block, firstWord, endWord)` for the stretch of each bitmap block of client `c` that
   * the pages `[p0, p1)` touch, in order, until `f` returns true; returns whether one did.
   */
  private someBlock(
    c: number,
    p0: number,
    p1: number,
    f: (b: Uint32Array | undefined, bi: number, w0: number, w1: number) => boolean,
  ): boolean {
    const m = this.maps[c]!;
    const wEnd = Math.ceil(p1 / 32);
    for (let w = wordOf(p0); w < wEnd; ) {
      const bi = blockOf(w);
      const next = Math.min((bi + 1) * BLOCK_WORDS, wEnd);
      if (f(m[bi], bi, w, next)) return true;
      w = next;
    }
    return false;
  }

  /** QEMU `cpu_physical_memory_get_dirty`: whether any page of the range is dirty for `client`. */
  getDirty(ramAddr: number, length: number, client: number): boolean {
    checkClient(client);
    const p0 = firstPage(ramAddr);
    const p1 = endPage(ramAddr, length);
    return this.someBlock(client, p0, p1, (b, bi, w0, w1) => {
      if (b === undefined) return false;
      for (let w = w0; w < w1; w++) {
        if (b[w - bi * BLOCK_WORDS]! & wordMask(w, p0, p1)) return true;
      }
      return false;
    });
  }

  /** QEMU `cpu_physical_memory_all_dirty`: whether every page of the range is dirty for `client`. */
  allDirty(ramAddr: number, length: number, client: number): boolean {
    checkClient(client);
    const p0 = firstPage(ramAddr);
    const p1 = endPage(ramAddr, length);
    const clean = this.someBlock(client, p0, p1, (b, bi, w0, w1) => {
      if (b === FULL) return false;
      if (b === undefined) return true;
      for (let w = w0; w < w1; w++) {
        const need = wordMask(w, p0, p1);
        if ((b[w - bi * BLOCK_WORDS]! & need) !== need) return true;
      }
      return false;
    });
    return !clean;
  }

  /** QEMU `cpu_physical_memory_range_includes_clean`: the clients of `mask` with a clean page in range. */
  rangeIncludesClean(ramAddr: number, length: number, mask: number): number {
    let r = 0;
    for (let c = 0; c < DIRTY_MEMORY_NUM; c++) {
      if (mask & (1 << c) && !this.allDirty(ramAddr, length, c)) r |= 1 << c;
    }
    return r;
  }

  /** Whether page `page` (a ram_addr page number) is dirty for every client in `mask`. */
  pageDirtyForAll(page: number, mask: number): boolean {
    const w = wordOf(page);
    const bit = 1 << (page & 31);
    for (let c = 0; c < DIRTY_MEMORY_NUM; c++) {
      if (mask & (1 << c) && !(this.word(c, w) & bit)) return false;
    }
    return true;
  }

  /** The 32 pages of bitmap word `w` that are dirty for every client in `mask`, as a bit mask. */
  private wordDirtyForAll(w: number, mask: number): number {
    let bits = -1;
    for (let c = 0; c < DIRTY_MEMORY_NUM; c++) if (mask & (1 << c)) bits &= this.word(c, w);
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
      if ((q & 31) === 31 && q - 31 >= limit && this.wordDirtyForAll(wordOf(q), mask) === -1) p -= 32;
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
      if ((p & 31) === 0 && p + 32 <= limit && this.wordDirtyForAll(wordOf(p), mask) === -1) p += 32;
      else if (this.pageDirtyForAll(p, mask)) p++;
      else break;
    }
    return Math.min(p, limit);
  }

  /**
   * QEMU `cpu_physical_memory_test_and_clear_dirty`: clears `client`'s bits for the range and
   * returns whether any was set.
   */
  testAndClear(ramAddr: number, length: number, client: number): boolean {
    checkClient(client);
    const p0 = firstPage(ramAddr);
    const p1 = endPage(ramAddr, length);
    const m = this.maps[client]!;
    let any = false;
    this.someBlock(client, p0, p1, (b, bi, w0, w1) => {
      if (b === undefined) return false;
      if (
        b === FULL &&
        w0 === bi * BLOCK_WORDS &&
        w1 === w0 + BLOCK_WORDS &&
        w0 * 32 >= p0 &&
        w1 * 32 <= p1
      ) {
        m[bi] = undefined;
        any = true;
        return false;
      }
      for (let w = w0; w < w1; w++) if (this.clearWord(client, w, wordMask(w, p0, p1))) any = true;
      return false;
    });
    if (any) this.onClear?.(ramAddr, length);
    return any;
  }

  /**
   * QEMU `cpu_physical_memory_snapshot_and_clear_dirty`: copies and clears `client`'s bits for the
   * range widened to 64-page boundaries.
   */
  snapshotAndClear(ramAddr: number, length: number, client: number): DirtyBitmapSnapshot {
    checkClient(client);
    const align = 64 * PAGE_SIZE;
    const s = Math.floor(ramAddr / align) * align;
    const e = Math.ceil((ramAddr + length) / align) * align;
    const p0 = s / PAGE_SIZE;
    const bits = new Uint32Array(Math.ceil((e - s) / PAGE_SIZE / 32));
    const w0 = wordOf(p0);
    const m = this.maps[client]!;
    // 64-page alignment makes every word whole: copy, then drop or zero what was copied.
    this.someBlock(client, p0, e / PAGE_SIZE, (b, bi, wa, wb) => {
      if (b === undefined) return false;
      const at = wa - bi * BLOCK_WORDS;
      bits.set(b.subarray(at, at + (wb - wa)), wa - w0);
      if (at === 0 && wb - wa === BLOCK_WORDS) m[bi] = undefined;
      else this.writable(client, bi).fill(0, at, at + (wb - wa));
      return false;
    });
    this.onClear?.(s, e - s);
    return { start: s, end: e, bits };
  }

  /** QEMU `cpu_physical_memory_snapshot_get_dirty`: whether the snapshot has a dirty page in range. */
  snapshotGetDirty(snap: DirtyBitmapSnapshot, ramAddr: number, length: number): boolean {
    if (ramAddr < snap.start || ramAddr + length > snap.end) {
      throw new InvalidArgumentError(
        `range 0x${ramAddr.toString(16)}+0x${length.toString(16)} is outside the snapshot`,
      );
    }
    const p1 = endPage(ramAddr, length) - snap.start / PAGE_SIZE;
    for (let p = firstPage(ramAddr) - snap.start / PAGE_SIZE; p < p1; p++) {
      if (snap.bits[p >>> 5]! & (1 << (p & 31))) return true;
    }
    return false;
  }

  /** Bitmap words allocated for `client` (shared all-ones blocks not counted): a measure of cost. */
  allocatedWords(client: number): number {
    checkClient(client);
    let n = 0;
    for (const b of this.maps[client]!) if (b !== undefined && b !== FULL) n += b.length;
    return n;
  }
}
