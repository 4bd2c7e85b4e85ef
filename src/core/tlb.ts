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
 * An address space that is never accessed costs little: the TLB and the I/O page cache start on a
 * shared empty table that no probe can hit, and allocate their own on the first fill, so a machine
 * with thousands of address spaces (one per PCI device's bus-master space) pays for those only
 * where they are used. The device-page cache does the same with shared tables of its full size
 * (the probe's index reaches every entry), and its address space takes its own arrays after a fill.
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

/** Entries per kind of access in {@link DevicePages} (a power of two). */
export const DEVICE_PAGES = 64;
/** log2 of {@link DEVICE_PAGES}. */
export const DEVICE_BITS = 6;
/**
 * Kinds of typed access the device-page cache tells apart: for reads and for writes, 1 byte, and 2,
 * 4 and 8 bytes in each byte order (see {@link deviceKind}).
 */
export const DEVICE_KINDS = 14;

/**
 * Index in {@link DevicePages} of the first entry of a kind of typed access: reads before writes,
 * then by size, then little-endian before big-endian (a single byte has no byte order).
 */
export function deviceKind(isWrite: boolean, size: number, bigEndian: boolean): number {
  const k =
    (isWrite ? 7 : 0) +
    (size === 1 ? 0 : size === 2 ? 1 : size === 4 ? 3 : 5) +
    (size !== 1 && bigEndian ? 1 : 0);
  return k << DEVICE_BITS;
}

/**
 * Device pages on which one kind of typed access (its size, direction and byte order) reaches a
 * device's plain `read` / `write` callbacks with no decision left but the device's implemented
 * width: the access is valid for the device at any aligned offset, and writes have no ioeventfd
 * to match. The typed helpers' miss path probes it first, before the TLB; the exact path's
 * general device probe fills it. An entry with a callback (`fn`) is exactly one call of it with
 * the access's size in the requested byte order, for a region without an owner; the others
 * (split, widened or byte-swapped accesses, and devices under a re-entrancy guard) go through
 * `IoDispatcher.readPlain` / `writePlain` with the entry's region.
 *
 * All kinds share flat arrays (kind × {@link DEVICE_PAGES} entries), so a probe is one index
 * computation and one element load from each array, with no table of tables to walk; an entry's
 * tag and base sit side by side in `e`, on one cache line.
 *
 * The tag holds the guest page address; the probe compares it with `addr - (addr & (PAGE_MASK &
 * ~(size - 1)))`, which equals the page address only when `addr` is size-aligned, so one compare
 * checks the page and the alignment. The base is the offset of the page inside its region, an
 * int32 (pages at larger offsets are not cached), which keeps the offset arithmetic in integers.
 */
export class DevicePages<R, F> {
  /** [tag, base] per entry; a shared table no probe can hit until the first fill. */
  e: Float64Array = UNFILLED_DEV_E;
  mr: (R | null)[] = UNFILLED_DEV_MR as (R | null)[];
  /** The callback to call directly, or null when the dispatcher adjusts the access. */
  fn: (F | null)[] = UNFILLED_DEV_FN as (F | null)[];
  private used = false;

  /**
   * Caches guest page `page` (its address) for the kind starting at entry `kind`: its first byte
   * is at offset `base` of region `mr`; `fn` is the callback to call directly, if any. The first
   * fill replaces the shared tables by the cache's own: a holder of the arrays reads them again.
   */
  fill(kind: number, page: number, base: number, mr: R, fn: F | null): void {
    if (this.e === UNFILLED_DEV_E) {
      this.e = new Float64Array(DEVICE_KINDS * DEVICE_PAGES * 2).fill(-1);
      this.mr = new Array<R | null>(DEVICE_KINDS * DEVICE_PAGES).fill(null);
      this.fn = new Array<F | null>(DEVICE_KINDS * DEVICE_PAGES).fill(null);
    }
    const k = kind | ((page / 4096) & (DEVICE_PAGES - 1));
    this.e[2 * k] = page;
    this.e[2 * k + 1] = base;
    this.mr[k] = mr;
    this.fn[k] = fn;
    this.used = true;
  }

  /** Drops every entry, or only those of writes. */
  flush(writesOnly = false): void {
    if (!this.used) return;
    const from = writesOnly ? deviceKind(true, 1, false) : 0;
    this.e.fill(-1, 2 * from);
    this.mr.fill(null, from);
    this.fn.fill(null, from);
    if (!writesOnly) this.used = false;
  }
}

// The tables of a device-page cache that was never filled: tags of -1 match no page. Never written
// (a cache with nothing filled has nothing to flush).
const UNFILLED_DEV_E = new Float64Array(DEVICE_KINDS * DEVICE_PAGES * 2).fill(-1);
const UNFILLED_DEV_MR: readonly null[] = new Array<null>(DEVICE_KINDS * DEVICE_PAGES).fill(null);
const UNFILLED_DEV_FN: readonly null[] = new Array<null>(DEVICE_KINDS * DEVICE_PAGES).fill(null);
