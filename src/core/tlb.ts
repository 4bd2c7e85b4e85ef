/**
 * @module core/tlb
 * A software TLB for guest RAM accesses (QEMU's per-CPU `CPUTLB`, reduced to what an address space
 * needs): a direct-mapped table from guest page to the host chunk that holds it.
 *
 * Layout, chosen for the access path: one Float64Array holds four numbers per entry — the guest page
 * address (the tag; -1 when empty), the index of the page in its host chunk, and the chunk's number —
 * so that a lookup touches a single cache line even when the table is large and accesses are random.
 * Chunk numbers index small per-TLB tables of typed-array views (bytes, 16/32/64-bit words, DataView)
 * over the same host memory, so an aligned access is one typed-array element access.
 *
 * The table grows (x4, up to 2^18 entries) while it keeps missing, like QEMU's dynamic TLB sizing,
 * and shrinks back when flushed.
 *
 * An address space that is never accessed costs no table: every cache here starts on a shared
 * empty table that no probe can hit, and allocates its own on the first fill. A machine with
 * thousands of address spaces (one per PCI device's bus-master space) then pays only for the ones
 * that are used.
 */

/** Entries a TLB starts with. */
export const TLB_MIN = 256;
/** Entries a TLB grows to at most (1 GiB of 4 KiB pages). */
export const TLB_MAX = 1 << 18;

/** Whether the host is little-endian: then LE guest words can use plain typed-array elements. */
export const HOST_LE = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

/** One entry whose tag (-1) matches no page: the table of a TLB that has never been filled. */
const UNFILLED_TLB = new Float64Array(4).fill(-1);

/** A direct-mapped guest-page → host-chunk table. See the module comment. */
export class Tlb {
  /** [tag, base, chunk, unused] per entry. */
  e: Float64Array;
  /** Entries - 1 (the table size is a power of two). */
  mask: number;
  /** Views of each chunk, indexed by chunk number. */
  u8: Uint8Array[] = [];
  u16: Uint16Array[] = [];
  u32: Uint32Array[] = [];
  u64: BigUint64Array[] = [];
  dv: DataView[] = [];
  private fills = 0;
  private readonly chunks = new Map<Uint8Array, number>();

  constructor() {
    this.e = UNFILLED_TLB;
    this.mask = 0;
  }

  /** Entry index (times 4) for guest address `addr`. Any page hash works: the tag is exact. */
  static slot(addr: number, mask: number): number {
    return ((addr >>> 12) & mask) << 2;
  }

  /**
   * Caches guest page `page` (its address) as bytes `[base, base + 4096)` of host chunk `chunk`.
   * Grows the table when it has missed more often than it has entries.
   */
  fill(page: number, chunk: Uint8Array, base: number): void {
    if (this.e === UNFILLED_TLB) this.reset(TLB_MIN);
    if (++this.fills > this.mask + 1 && this.mask + 1 < TLB_MAX) this.reset((this.mask + 1) * 4);
    let c = this.chunks.get(chunk);
    if (c === undefined) {
      c = this.u8.length;
      this.chunks.set(chunk, c);
      const buf = chunk.buffer;
      const off = chunk.byteOffset;
      this.u8.push(chunk);
      this.u16.push(new Uint16Array(buf, off, chunk.length >>> 1));
      this.u32.push(new Uint32Array(buf, off, chunk.length >>> 2));
      this.u64.push(new BigUint64Array(buf, off, chunk.length >>> 3));
      this.dv.push(new DataView(buf, off, chunk.length));
    }
    const i = Tlb.slot(page, this.mask);
    const e = this.e;
    e[i] = page;
    e[i + 1] = base;
    e[i + 2] = c;
  }

  /** Drops every entry (and the chunk tables, so no host memory is kept alive by the TLB). */
  flush(): void {
    if (this.e === UNFILLED_TLB) return;
    if (this.mask + 1 === TLB_MIN) {
      if (this.fills !== 0) this.e.fill(-1);
    } else {
      this.e = new Float64Array(TLB_MIN * 4).fill(-1);
      this.mask = TLB_MIN - 1;
    }
    this.fills = 0;
    this.chunks.clear();
    this.u8 = [];
    this.u16 = [];
    this.u32 = [];
    this.u64 = [];
    this.dv = [];
  }

  private reset(size: number): void {
    this.e = new Float64Array(size * 4).fill(-1);
    this.mask = size - 1;
    this.fills = 0;
  }
}

/**
 * A direct-mapped cache of guest pages served by I/O regions, so that a device register access skips
 * the flat-view search: the region and the offset to add to a guest address to get the offset in it.
 */
export class IoTlb<R> {
  // One shared entry that matches no page until the first fill (see the module comment).
  tag: Float64Array = UNFILLED_IO_TAG;
  delta: Float64Array = UNFILLED_IO_DELTA;
  mr: (R | null)[] = UNFILLED_IO_MR as (R | null)[];
  mask = 0;

  /** Caches guest page `page` (its address) as served by `mr`, at offset `page + delta` in it. */
  fill(page: number, mr: R, delta: number): void {
    if (this.tag === UNFILLED_IO_TAG) {
      this.tag = new Float64Array(IO_TLB_SIZE).fill(-1);
      this.delta = new Float64Array(IO_TLB_SIZE);
      this.mr = new Array<R | null>(IO_TLB_SIZE).fill(null);
      this.mask = IO_TLB_SIZE - 1;
    }
    const k = (page / 4096) & this.mask;
    this.tag[k] = page;
    this.mr[k] = mr;
    this.delta[k] = delta;
  }

  flush(): void {
    if (this.tag === UNFILLED_IO_TAG) return;
    this.tag.fill(-1);
    this.mr.fill(null);
  }
}

const IO_TLB_SIZE = 64;
const UNFILLED_IO_TAG = new Float64Array(1).fill(-1);
const UNFILLED_IO_DELTA = new Float64Array(1);
const UNFILLED_IO_MR: readonly null[] = [null];

/** Entries of a {@link DevicePages} cache (a power of two). */
export const DEVICE_PAGES = 64;

const UNFILLED_PAGES_TAG = new Float64Array(DEVICE_PAGES).fill(-1);
const UNFILLED_PAGES_BASE = new Int32Array(DEVICE_PAGES);
const UNFILLED_PAGES_MR: readonly null[] = new Array<null>(DEVICE_PAGES).fill(null);

/**
 * Device pages on which one kind of typed access (its size, direction and byte order) is exactly
 * one callback of the same size in the device's byte order: no splitting, widening, byte swap or
 * ioeventfd. The typed helpers' miss path probes it first, before the TLB; the exact path's
 * general device probe fills it.
 *
 * The tag holds the guest page address; the probe compares it with `addr - (addr & (PAGE_MASK &
 * ~(size - 1)))`, which equals the page address only when `addr` is size-aligned, so one compare
 * checks the page and the alignment. The offset of the page inside its region is an int32 (pages
 * at larger offsets are not cached), which keeps the offset arithmetic in integers.
 */
export class DevicePages<R> {
  // Shared, never-written tables until the first fill (see the module comment).
  tag: Float64Array = UNFILLED_PAGES_TAG;
  base: Int32Array = UNFILLED_PAGES_BASE;
  mr: (R | null)[] = UNFILLED_PAGES_MR as (R | null)[];
  private used = false;

  /** Caches guest page `page` (its address): its first byte is at offset `base` of region `mr`. */
  fill(page: number, base: number, mr: R): void {
    if (this.tag === UNFILLED_PAGES_TAG) {
      this.tag = new Float64Array(DEVICE_PAGES).fill(-1);
      this.base = new Int32Array(DEVICE_PAGES);
      this.mr = new Array<R | null>(DEVICE_PAGES).fill(null);
    }
    const k = (page / 4096) & (DEVICE_PAGES - 1);
    this.tag[k] = page;
    this.base[k] = base;
    this.mr[k] = mr;
    this.used = true;
  }

  flush(): void {
    if (!this.used) return;
    this.tag.fill(-1);
    this.mr.fill(null);
    this.used = false;
  }
}
