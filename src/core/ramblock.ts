/**
 * @module core/ramblock
 * Host memory behind RAM, ROM, ROM-device and RAM-device regions (QEMU `RAMBlock`), and the list that
 * places blocks in ram_addr space (`RAMList`, `find_ram_offset`).
 *
 * A block's bytes live in chunks of at most {@link RAM_CHUNK_SIZE} bytes. Node 20 cannot create a
 * typed array over more than 4 GiB, and a resizable ArrayBuffer cannot reserve 16 GiB, so a 16 GiB
 * guest needs several buffers. Chunks are 1 GiB and page aligned, so a guest page never straddles
 * two chunks unless an alias maps it at a non-page-aligned offset. Chunks are allocated on first
 * use: an untouched chunk reads as zeros without costing host memory.
 */

import { hex } from './address.js';
import { RamBlockError } from './errors.js';

/** log2 of the chunk size. */
export const RAM_CHUNK_SHIFT = 30;
/** Bytes per host chunk (1 GiB). */
export const RAM_CHUNK_SIZE = 2 ** RAM_CHUNK_SHIFT;
/** Host page size used to round block lengths (QEMU `qemu_host_page_size` on the reference host). */
export const HOST_PAGE_SIZE = 4096;

/** RAMBlock flags (QEMU `RAM_*`), those the model uses. */
/** Host memory handed in from outside (RAM devices: QEMU `qemu_ram_alloc_from_ptr`). */
export const RAM_PREALLOC = 1 << 0;
/** The used length can change up to the max length (QEMU `qemu_ram_resize`). */
export const RAM_RESIZEABLE = 1 << 2;
/** The block takes part in migration (QEMU `qemu_ram_set_migratable`). */
export const RAM_MIGRATABLE = 1 << 4;

const EMPTY = new Uint8Array(0);
// Copies up to this many bytes (typed accesses on the slow path) go byte by byte: a subarray view
// plus TypedArray.prototype.set costs an allocation and more than the copy itself.
const SMALL_COPY = 16;

function roundUp(v: number, align: number): number {
  return Math.ceil(v / align) * align;
}

/** Called after a resizeable block changed its used length (QEMU `RAMBlock.resized`). */
export type RamResizedCallback = (idstr: string, newSize: number, block: RAMBlock) => void;

/**
 * A contiguous piece of guest RAM: host memory, its place in ram_addr space, and its lengths.
 * Offsets and lengths are `number`s: a block is far below 2^53 bytes.
 */
export class RAMBlock {
  // The fields the memory system maintains are getters for users, with setters kept out of the
  // published types: a write from outside would move the block without the RAM list or the dirty
  // bitmaps knowing.
  /** Id used by migration; unique among the blocks of one {@link RAMList} once set. */
  get idstr(): string {
    return this._idstr;
  }
  /** @internal */
  set idstr(v: string) {
    this._idstr = v;
  }
  private _idstr: string = '';
  /** Position of the block in ram_addr space. */
  get offset(): number {
    return this._offset;
  }
  /** @internal */
  set offset(v: number) {
    this._offset = v;
  }
  private _offset: number = 0;
  /** Bytes in use (≤ maxLength); only resizeable blocks have usedLength < maxLength. */
  get usedLength(): number {
    return this._usedLength;
  }
  /** @internal */
  set usedLength(v: number) {
    this._usedLength = v;
  }
  private _usedLength: number;
  /** Bytes reserved. */
  readonly maxLength: number;
  /** `RAM_*` flags. */
  get flags(): number {
    return this._flags;
  }
  /** @internal */
  set flags(v: number) {
    this._flags = v;
  }
  private _flags: number;
  /** Page size of the backing memory. */
  readonly pageSize = HOST_PAGE_SIZE;
  /** Called after a resize. */
  get resized(): RamResizedCallback | null {
    return this._resized;
  }
  /** @internal */
  set resized(v: RamResizedCallback | null) {
    this._resized = v;
  }
  private _resized: RamResizedCallback | null = null;
  /** The region this block backs (set by the region constructor). */
  get mr(): unknown {
    return this._mr;
  }
  /** @internal */
  set mr(v: unknown) {
    this._mr = v;
  }
  private _mr: unknown = null;

  private readonly chunks: Uint8Array[];
  private readonly dataViews: DataView[];

  /**
   * @param usedLength bytes in use; rounded up to the host page size.
   * @param maxLength bytes reserved (resizeable blocks); defaults to `usedLength`.
   */
  constructor(usedLength: number, maxLength = usedLength, flags = 0) {
    if (!Number.isSafeInteger(usedLength) || usedLength < 0) {
      throw new RamBlockError(`RAM block length ${usedLength} is not a non-negative safe integer`);
    }
    if (!Number.isSafeInteger(maxLength) || maxLength < usedLength) {
      throw new RamBlockError(
        `RAM block max length ${maxLength} is smaller than its used length ${usedLength}`,
      );
    }
    this._usedLength = roundUp(usedLength, HOST_PAGE_SIZE);
    this.maxLength = roundUp(maxLength, HOST_PAGE_SIZE);
    this._flags = flags;
    const n = Math.ceil(this.maxLength / RAM_CHUNK_SIZE);
    this.chunks = new Array<Uint8Array>(n).fill(EMPTY);
    this.dataViews = new Array<DataView>(n);
  }

  /** Number of host chunks. */
  get chunkCount(): number {
    return this.chunks.length;
  }

  /** Host bytes of chunk `i`, allocated (zero-filled) on first use. */
  chunk(i: number): Uint8Array {
    let c = this.chunks[i];
    if (c === undefined) throw new RamBlockError(`RAM block "${this.idstr}": no chunk ${i}`);
    if (c === EMPTY && this.maxLength > 0) {
      const len = Math.min(RAM_CHUNK_SIZE, this.maxLength - i * RAM_CHUNK_SIZE);
      c = new Uint8Array(len);
      this.chunks[i] = c;
      this.dataViews[i] = new DataView(c.buffer, c.byteOffset, c.byteLength);
    }
    return c;
  }

  /** A DataView over chunk `i` (allocating it if needed). */
  chunkView(i: number): DataView {
    this.chunk(i);
    return this.dataViews[i]!;
  }

  /** Whether chunk `i` has been allocated (an unallocated chunk is all zeros). */
  isChunkAllocated(i: number): boolean {
    return this.chunks[i] !== EMPTY;
  }

  private check(offset: number, len: number): void {
    if (!(offset >= 0 && len >= 0 && offset + len <= this.maxLength)) {
      throw new RamBlockError(
        `RAM block "${this.idstr}": range ${hex(offset)}+${hex(len)} is outside its ${hex(this.maxLength)} bytes`,
      );
    }
  }

  /** Copies `len` bytes at block offset `offset` into `dst[dstOff...]`. */
  read(offset: number, dst: Uint8Array, dstOff: number, len: number): void {
    this.check(offset, len);
    const co = offset % RAM_CHUNK_SIZE;
    if (len <= SMALL_COPY && co + len <= RAM_CHUNK_SIZE) {
      const c = this.chunks[(offset - co) / RAM_CHUNK_SIZE]!;
      for (let i = 0; i < len; i++) dst[dstOff + i] = c === EMPTY ? 0 : c[co + i]!;
      return;
    }
    while (len > 0) {
      const ci = Math.floor(offset / RAM_CHUNK_SIZE);
      const co = offset - ci * RAM_CHUNK_SIZE;
      const n = Math.min(len, RAM_CHUNK_SIZE - co);
      if (this.chunks[ci] === EMPTY) dst.fill(0, dstOff, dstOff + n);
      else dst.set(this.chunks[ci]!.subarray(co, co + n), dstOff);
      offset += n;
      dstOff += n;
      len -= n;
    }
  }

  /** Copies `len` bytes from `src[srcOff...]` to block offset `offset`. Marks nothing dirty. */
  write(offset: number, src: Uint8Array, srcOff: number, len: number): void {
    this.check(offset, len);
    const co = offset % RAM_CHUNK_SIZE;
    if (len <= SMALL_COPY && co + len <= RAM_CHUNK_SIZE) {
      const c = this.chunk((offset - co) / RAM_CHUNK_SIZE);
      for (let i = 0; i < len; i++) c[co + i] = src[srcOff + i]!;
      return;
    }
    while (len > 0) {
      const ci = Math.floor(offset / RAM_CHUNK_SIZE);
      const co = offset - ci * RAM_CHUNK_SIZE;
      const n = Math.min(len, RAM_CHUNK_SIZE - co);
      // Whole-buffer copies (a migrated page, a bulk write) need no subarray view.
      this.chunk(ci).set(srcOff === 0 && n === src.length ? src : src.subarray(srcOff, srcOff + n), co);
      offset += n;
      srcOff += n;
      len -= n;
    }
  }

  /**
   * A zero-copy view of `[offset, offset + len)`, clamped to the end of the chunk that holds
   * `offset` (the caller loops for the rest, as with QEMU's `address_space_map`).
   */
  hostView(offset: number, len: number): Uint8Array {
    this.check(offset, 0);
    const ci = Math.floor(offset / RAM_CHUNK_SIZE);
    const co = offset - ci * RAM_CHUNK_SIZE;
    const c = this.chunk(ci);
    return c.subarray(co, Math.min(c.length, co + len));
  }
}

/**
 * Where a block's gap starts and how long it is: the gap QEMU's `find_ram_offset` measures after
 * the block (from its end rounded up to 64 pages to the next block's start).
 */
interface GapSlot {
  readonly block: RAMBlock;
  /** Insertion number: with max length, the block's place in list order. */
  readonly seq: number;
  /** The block's end rounded up to 64 pages: where a new block after it would go. */
  readonly candidate: number;
  /** From `candidate` to the first block that starts at or after it (or to the end of space). */
  gap: number;
}

/** Where the ram_addr space ends for `find_ram_offset` (QEMU's RAM_ADDR_MAX as a gap bound). */
const SPACE_END = Number.MAX_VALUE;
const ALIGN = 64 * HOST_PAGE_SIZE;

/** Smallest gap first; equal gaps in list order (larger max length first, then older first). */
function gapBefore(a: GapSlot, b: GapSlot): boolean {
  if (a.gap !== b.gap) return a.gap < b.gap;
  if (a.block.maxLength !== b.block.maxLength) return a.block.maxLength > b.block.maxLength;
  return a.seq < b.seq;
}

function candidateBefore(a: GapSlot, b: GapSlot): boolean {
  return a.candidate !== b.candidate ? a.candidate < b.candidate : a.seq < b.seq;
}

/** Index of the first element of sorted `list` for which `before(element, x)` is false. */
function lowerBound<T>(list: readonly T[], x: T, before: (a: T, b: T) => boolean): number {
  let lo = 0;
  let hi = list.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (before(list[mid]!, x)) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

function insertSorted<T>(list: T[], x: T, before: (a: T, b: T) => boolean): void {
  const i = lowerBound(list, x, before);
  if (i === list.length) list.push(x);
  else list.splice(i, 0, x);
}

function removeSorted<T>(list: T[], x: T, before: (a: T, b: T) => boolean): void {
  const i = lowerBound(list, x, before);
  if (list[i] === x) list.splice(i, 1);
  else list.splice(list.indexOf(x), 1);
}

/**
 * The blocks of one machine, placed in ram_addr space as QEMU does (`ram_block_add`): best-fit gap
 * after an existing block aligned to 64 pages, list kept sorted by max length, largest first.
 *
 * QEMU's `find_ram_offset` looks at every block and, for each, searches the next block: O(n^2) per
 * new block. Here each block's gap is kept, sorted by (gap, list order), and updated when a block
 * comes or goes (only the blocks whose candidate lies before it and after its predecessor see their
 * gap change), so placing a block is a binary search and building n blocks is not quadratic.
 */
export class RAMList {
  /** Blocks in list order (max length descending; equal lengths in insertion order). */
  get blocks(): readonly RAMBlock[] {
    return this.list;
  }
  private readonly list: RAMBlock[] = [];
  /** Incremented on every add and remove. */
  get version(): number {
    return this._version;
  }
  private _version = 0;
  private mru: RAMBlock | null = null;
  /** The same blocks in ram_addr order. */
  private readonly byOffset: RAMBlock[] = [];
  /** Each block's gap, in the order `find_ram_offset` prefers them. */
  private readonly byGap: GapSlot[] = [];
  /** The same slots by candidate. */
  private readonly byCandidate: GapSlot[] = [];
  private readonly slots = new Map<RAMBlock, GapSlot>();
  private readonly ids = new Map<string, RAMBlock>();
  private seq = 0;

  /** QEMU `find_ram_offset`: where a block of `size` bytes goes in ram_addr space. */
  findRamOffset(size: number): number {
    if (this.byOffset.length === 0) return 0;
    // The smallest gap that fits; on a tie the first block in list order (QEMU compares with <).
    const list = this.byGap;
    let lo = 0;
    let hi = list.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (list[mid]!.gap < size) lo = mid + 1;
      else hi = mid;
    }
    const best = list[lo];
    if (!best) throw new RamBlockError(`no ram_addr space left for a block of ${hex(size)} bytes`);
    return best.candidate;
  }

  /** Places `block` in ram_addr space and inserts it in list order. */
  add(block: RAMBlock): void {
    const offset = this.findRamOffset(block.maxLength);
    block.offset = offset;
    // QEMU `ram_block_add`: before the first block with a smaller max length.
    const blocks = this.list;
    let lo = 0;
    let hi = blocks.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (blocks[mid]!.maxLength >= block.maxLength) lo = mid + 1;
      else hi = mid;
    }
    if (lo === blocks.length) blocks.push(block);
    else blocks.splice(lo, 0, block);
    const k = lowerBound(this.byOffset, block, (a, b) => a.offset < b.offset);
    if (k === this.byOffset.length) this.byOffset.push(block);
    else this.byOffset.splice(k, 0, block);
    // Blocks whose candidate lies after the previous block's start and at or before this one's now
    // end their gap here.
    this.regap(k > 0 ? this.byOffset[k - 1]!.offset : Number.NEGATIVE_INFINITY, offset, offset);
    const candidate = roundUp(offset + block.maxLength, ALIGN);
    const slot: GapSlot = { block, seq: this.seq++, candidate, gap: this.nextStart(candidate) - candidate };
    this.slots.set(block, slot);
    insertSorted(this.byGap, slot, gapBefore);
    insertSorted(this.byCandidate, slot, candidateBefore);
    if (block.idstr !== '' && !this.ids.has(block.idstr)) this.ids.set(block.idstr, block);
    this.mru = null;
    this._version++;
  }

  /** Removes `block` from the list; its ram_addr range becomes free. */
  remove(block: RAMBlock): void {
    const slot = this.slots.get(block);
    if (!slot) return;
    this.slots.delete(block);
    this.list.splice(this.list.indexOf(block), 1);
    const k = this.byOffset.indexOf(block);
    this.byOffset.splice(k, 1);
    removeSorted(this.byGap, slot, gapBefore);
    removeSorted(this.byCandidate, slot, candidateBefore);
    // The blocks whose gap ended at this one now reach the next block (or the end of space).
    const next = k < this.byOffset.length ? this.byOffset[k]!.offset : SPACE_END;
    this.regap(k > 0 ? this.byOffset[k - 1]!.offset : Number.NEGATIVE_INFINITY, block.offset, next);
    if (this.ids.get(block.idstr) === block) {
      this.ids.delete(block.idstr);
      const other = this.blocks.find((b) => b.idstr === block.idstr);
      if (other) this.ids.set(other.idstr, other);
    }
    this.mru = null;
    this._version++;
  }

  /** Start of the first block at or after `addr`, or the end of space. */
  private nextStart(addr: number): number {
    const list = this.byOffset;
    let lo = 0;
    let hi = list.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (list[mid]!.offset < addr) lo = mid + 1;
      else hi = mid;
    }
    return lo < list.length ? list[lo]!.offset : SPACE_END;
  }

  /** Sets the gap of every block whose candidate is in (`after`, `upTo`] to end at `next`. */
  private regap(after: number, upTo: number, next: number): void {
    const byCand = this.byCandidate;
    let lo = 0;
    let hi = byCand.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (byCand[mid]!.candidate <= after) lo = mid + 1;
      else hi = mid;
    }
    for (let i = lo; i < byCand.length && byCand[i]!.candidate <= upTo; i++) {
      const s = byCand[i]!;
      removeSorted(this.byGap, s, gapBefore);
      s.gap = next - s.candidate;
      insertSorted(this.byGap, s, gapBefore);
    }
  }

  /** QEMU `qemu_get_ram_block`: the block that holds ram_addr `addr`, or null. */
  blockAt(addr: number): RAMBlock | null {
    const m = this.mru;
    if (m && addr - m.offset >= 0 && addr - m.offset < m.maxLength) return m;
    for (const b of this.blocks) {
      if (addr - b.offset >= 0 && addr - b.offset < b.maxLength) {
        this.mru = b;
        return b;
      }
    }
    return null;
  }

  /** The block that backs region `mr` (QEMU `mr->ram_block`) if it is in this list, or null. */
  byRegion(mr: unknown): RAMBlock | null {
    return this.blocks.find((b) => b.mr === mr) ?? null;
  }

  /** Block by id (`qemu_ram_block_by_name`), or null. */
  byId(id: string): RAMBlock | null {
    if (id === '') return this.blocks.find((b) => b.idstr === id) ?? null;
    return this.ids.get(id) ?? null;
  }

  /** Sets a block's id (`qemu_ram_set_idstr`): `devicePath/name` truncated to 255 characters. */
  setIdstr(block: RAMBlock, name: string, devicePath?: string): void {
    const id = (devicePath ? `${devicePath}/${name}` : name).slice(0, 255);
    const holder = this.ids.get(id);
    if (holder && holder !== block) throw new RamBlockError(`RAMBlock "${id}" already registered`);
    if (this.slots.has(block)) {
      if (this.ids.get(block.idstr) === block) this.ids.delete(block.idstr);
      this.ids.set(id, block);
    }
    block.idstr = id;
  }
}
