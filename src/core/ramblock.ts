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
 * The blocks of one machine, placed in ram_addr space as QEMU does (`ram_block_add`): best-fit gap
 * after an existing block aligned to 64 pages, list kept sorted by max length, largest first.
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

  /** QEMU `find_ram_offset`: where a block of `size` bytes goes in ram_addr space. */
  findRamOffset(size: number): number {
    const sorted = this.byOffset;
    if (sorted.length === 0) return 0;
    const align = 64 * HOST_PAGE_SIZE;
    // QEMU takes, over the blocks in list order, the smallest gap after a block's 64-page aligned
    // end that fits; the first such block wins a tie. Blocks never overlap, so in ram_addr order
    // those ends only grow and the next block after each is found by one forward sweep: O(n).
    let best = -1;
    let bestBlock: RAMBlock | null = null;
    let mingap = Number.POSITIVE_INFINITY;
    let j = 0;
    for (const b of sorted) {
      const candidate = roundUp(b.offset + b.maxLength, align);
      while (j < sorted.length && sorted[j]!.offset < candidate) j++;
      // QEMU's RAM_ADDR_MAX: a gap to "the end" is finite, so it still beats the initial mingap.
      const next = j < sorted.length ? sorted[j]!.offset : Number.MAX_VALUE;
      const gap = next - candidate;
      if (gap < size) continue;
      if (gap < mingap || (gap === mingap && this.blocks.indexOf(b) < this.blocks.indexOf(bestBlock!))) {
        best = candidate;
        bestBlock = b;
        mingap = gap;
      }
    }
    if (best < 0) throw new RamBlockError(`no ram_addr space left for a block of ${hex(size)} bytes`);
    return best;
  }

  /** Places `block` in ram_addr space and inserts it in list order. */
  add(block: RAMBlock): void {
    block.offset = this.findRamOffset(block.maxLength);
    let i = this.blocks.findIndex((b) => b.maxLength < block.maxLength);
    if (i < 0) i = this.blocks.length;
    this.list.splice(i, 0, block);
    const sorted = this.byOffset;
    let k = sorted.length;
    while (k > 0 && sorted[k - 1]!.offset > block.offset) k--;
    sorted.splice(k, 0, block);
    this.mru = null;
    this._version++;
  }

  /** Removes `block` from the list; its ram_addr range becomes free. */
  remove(block: RAMBlock): void {
    const i = this.blocks.indexOf(block);
    if (i >= 0) {
      this.list.splice(i, 1);
      this.byOffset.splice(this.byOffset.indexOf(block), 1);
      this.mru = null;
      this._version++;
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
    return this.blocks.find((b) => b.idstr === id) ?? null;
  }

  /** Sets a block's id (`qemu_ram_set_idstr`): `devicePath/name` truncated to 255 characters. */
  setIdstr(block: RAMBlock, name: string, devicePath?: string): void {
    const id = (devicePath ? `${devicePath}/${name}` : name).slice(0, 255);
    if (this.blocks.some((b) => b !== block && b.idstr === id)) {
      throw new RamBlockError(`RAMBlock "${id}" already registered`);
    }
    block.idstr = id;
  }
}
