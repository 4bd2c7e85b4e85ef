/**
 * @module migration/ram-load
 * The receiving side of a RAM stream, free of Node imports: {@link RamLoader} loads pages into the
 * matching RAM blocks of a machine after checking the block list (QEMU `ram_load_precopy`), and
 * {@link StreamInventory} only counts what a stream holds per block (for `memtree migrate-info`).
 * Also the one-shot encoder of a whole machine's RAM into a QEMU stream.
 */

import { RAM_MIGRATABLE, RAM_RESIZEABLE, type RAMBlock } from '../core/ramblock.js';
import type { MemorySystem } from '../core/system.js';
import { ByteReader, type ByteSink, ByteWriter } from './bytes.js';
import { MigrationError } from './errors.js';
import {
  type DecodeOptions,
  decodeStream,
  QEMU_VM_SECTION_END,
  QEMU_VM_SECTION_PART,
  QEMU_VM_SECTION_START,
  QemuStreamWriter,
  RAM_SECTION_VERSION,
  RamPageEncoder,
  type StreamBlock,
  type StreamHandler,
  type StreamSummary,
  TARGET_PAGE_SIZE,
  xbzrleDecode,
} from './qemu-stream.js';

const hex = (v: number) => `0x${v.toString(16)}`;

/** The blocks of a machine that migration carries, in list order (QEMU `RAMBLOCK_FOREACH_MIGRATABLE`). */
export function migratableBlocks(ms: MemorySystem): RAMBlock[] {
  return ms.ramList.blocks.filter((b) => b.flags & RAM_MIGRATABLE);
}

/** One bit per page of a block (QEMU `bmap`/`receivedmap`). */
export class PageBitmap {
  readonly words: Uint32Array;
  constructor(readonly pages: number) {
    this.words = new Uint32Array(Math.ceil(pages / 32));
  }
  get(p: number): boolean {
    return ((this.words[p >>> 5]! >>> (p & 31)) & 1) === 1;
  }
  set(p: number): void {
    this.words[p >>> 5]! |= 1 << (p & 31);
  }
  clear(p: number): void {
    this.words[p >>> 5]! &= ~(1 << (p & 31));
  }
  fill(): void {
    this.words.fill(0xffffffff);
    const extra = this.words.length * 32 - this.pages;
    if (extra > 0) this.words[this.words.length - 1] = 0xffffffff >>> extra;
  }
  count(): number {
    let n = 0;
    for (let i = 0; i < this.words.length; i++) {
      let v = this.words[i]!;
      v -= (v >>> 1) & 0x55555555;
      v = (v & 0x33333333) + ((v >>> 2) & 0x33333333);
      n += (((v + (v >>> 4)) & 0x0f0f0f0f) * 0x01010101) >>> 24;
    }
    return n;
  }
  /** The first set bit at or after `from`, or -1. */
  next(from: number): number {
    let w = from >>> 5;
    if (w >= this.words.length) return -1;
    let v = this.words[w]! & (0xffffffff << (from & 31));
    for (;;) {
      if (v !== 0) {
        const p = w * 32 + (31 - Math.clz32(v & -v));
        return p < this.pages ? p : -1;
      }
      if (++w >= this.words.length) return -1;
      v = this.words[w]!;
    }
  }
}

/** Options of a {@link RamLoader}. */
export interface RamLoaderOptions {
  /** Mark loaded pages dirty for the clients that log them (default false, as QEMU's loader). */
  markDirty?: boolean;
}

/**
 * Loads a RAM stream into a machine's blocks. The MEM_SIZE list is checked before any page is
 * taken: every block must exist here, be migratable and have the same length (a resizeable block is
 * resized as QEMU does); pages then go to their block and set its received bit.
 */
export class RamLoader implements StreamHandler {
  /** Received pages per block id (QEMU `receivedmap`). */
  readonly received = new Map<string, PageBitmap>();
  private readonly blocks = new Map<string, RAMBlock>();
  /** Pages loaded with data. */
  pages = 0;
  /** ZERO records loaded. */
  zeroPages = 0;
  /** Called after every page is placed (postcopy waits on it). */
  onPage: ((id: string, offset: number) => void) | null = null;
  /** Pages to ignore because the destination already has a newer copy (postcopy). */
  skipReceived = false;

  constructor(
    readonly ms: MemorySystem,
    readonly options: RamLoaderOptions = {},
  ) {}

  blockList(list: readonly StreamBlock[]): void {
    const found: RAMBlock[] = [];
    for (const e of list) {
      const b = this.ms.ramList.byId(e.id);
      if (!b) {
        throw new MigrationError('unknown-block', `Unknown ramblock "${e.id}", cannot accept migration`, {
          block: e.id,
        });
      }
      if (!(b.flags & RAM_MIGRATABLE)) {
        throw new MigrationError('unknown-block', `block ${e.id} should not be migrated !`, { block: e.id });
      }
      if (e.length !== b.usedLength && (!(b.flags & RAM_RESIZEABLE) || e.length > b.maxLength)) {
        throw new MigrationError(
          'length-mismatch',
          `Size mismatch: ${e.id}: ${hex(e.length)} != ${hex(b.usedLength)}: Invalid argument`,
          { block: e.id },
        );
      }
      found.push(b);
    }
    list.forEach((e, i) => {
      const b = found[i]!;
      if (e.length !== b.usedLength)
        this.ms.ramResize(b.mr as Parameters<MemorySystem['ramResize']>[0], e.length);
      this.blocks.set(e.id, b);
      if (!this.received.has(e.id))
        this.received.set(e.id, new PageBitmap(Math.ceil(b.maxLength / TARGET_PAGE_SIZE)));
    });
  }

  private block(id: string, offset: number): RAMBlock {
    const b = this.blocks.get(id);
    if (!b) {
      throw new MigrationError(
        'unknown-block',
        `Can't find block ${id} (Illegal RAM offset ${hex(offset)})`,
        {
          block: id,
          offset,
        },
      );
    }
    if (offset + TARGET_PAGE_SIZE > b.usedLength) {
      throw new MigrationError('bad-offset', `Illegal RAM offset ${hex(offset)} in block ${id}`, {
        block: id,
        offset,
      });
    }
    return b;
  }

  private placed(id: string, b: RAMBlock, offset: number): void {
    this.received.get(id)!.set(offset / TARGET_PAGE_SIZE);
    if (this.options.markDirty) {
      const mr = b.mr as Parameters<MemorySystem['setDirty']>[0];
      this.ms.setDirty(mr, offset, TARGET_PAGE_SIZE);
    }
    this.onPage?.(id, offset);
  }

  /** Whether the page at `offset` of block `id` has arrived. */
  isReceived(id: string, offset: number): boolean {
    return this.received.get(id)?.get(Math.floor(offset / TARGET_PAGE_SIZE)) ?? false;
  }

  page(id: string, offset: number, data: Uint8Array): void {
    const b = this.block(id, offset);
    if (this.skipReceived && this.isReceived(id, offset)) return;
    b.write(offset, data, 0, TARGET_PAGE_SIZE);
    this.pages++;
    this.placed(id, b, offset);
  }

  zero(id: string, offset: number, fill: number): void {
    const b = this.block(id, offset);
    if (this.skipReceived && this.isReceived(id, offset)) return;
    const ci = Math.floor(offset / 2 ** 30);
    // QEMU does not rewrite a page that already reads as zero (and an unallocated chunk is zero).
    if (fill !== 0 || b.isChunkAllocated(ci)) {
      const v = b.hostView(offset, TARGET_PAGE_SIZE);
      if (fill !== 0 || !isZero(v)) v.fill(fill);
    }
    this.zeroPages++;
    this.placed(id, b, offset);
  }

  xbzrle(id: string, offset: number, encoded: Uint8Array): void {
    const b = this.block(id, offset);
    const page = new Uint8Array(TARGET_PAGE_SIZE);
    b.read(offset, page, 0, TARGET_PAGE_SIZE);
    applyXbzrle(id, offset, encoded, page);
    b.write(offset, page, 0, TARGET_PAGE_SIZE);
    this.pages++;
    this.placed(id, b, offset);
  }
}

function isZero(v: Uint8Array): boolean {
  for (let i = 0; i < v.length; i++) if (v[i] !== 0) return false;
  return true;
}

/** Per-block counts of a stream, as `memtree migrate-info` prints them. */
export interface BlockInventory {
  readonly id: string;
  /** Used length in bytes (from the MEM_SIZE list). */
  readonly length: number;
  /** Distinct pages of the block present in the stream. */
  pages: number;
  /** Of those, the pages whose last record was a ZERO record. */
  zeroPages: number;
}

/**
 * Counts the pages of each block in a stream without a machine to load into; optionally keeps the
 * bytes of one block (for `memtree migrate-extract`).
 */
export class StreamInventory implements StreamHandler {
  private readonly seen = new Map<string, { present: PageBitmap; zero: PageBitmap; length: number }>();
  /** The block whose bytes are kept, once the block list named it. */
  extracted: { id: string; bytes: ExtractTarget } | null = null;

  constructor(
    private readonly extractId: string | null = null,
    private readonly makeTarget: (length: number) => ExtractTarget = (n) => new Uint8Array(n),
  ) {}

  blockList(list: readonly StreamBlock[]): void {
    for (const b of list) {
      if (this.seen.has(b.id)) continue;
      const pages = Math.ceil(b.length / TARGET_PAGE_SIZE);
      this.seen.set(b.id, { present: new PageBitmap(pages), zero: new PageBitmap(pages), length: b.length });
      if (b.id === this.extractId) {
        let bytes: ExtractTarget;
        try {
          bytes = this.makeTarget(b.length);
        } catch (e) {
          if (e instanceof MigrationError) throw e;
          throw new MigrationError(
            'state',
            `cannot hold the ${b.length} bytes of block ${b.id}: ${(e as Error).message}`,
            { block: b.id },
          );
        }
        this.extracted = { id: b.id, bytes };
      }
    }
  }

  page(id: string, offset: number, data: Uint8Array): void {
    const s = this.seen.get(id)!;
    const p = offset / TARGET_PAGE_SIZE;
    s.present.set(p);
    s.zero.clear(p);
    if (this.extracted?.id === id) this.extracted.bytes.set(data, offset);
  }

  zero(id: string, offset: number, fill: number): void {
    const s = this.seen.get(id)!;
    const p = offset / TARGET_PAGE_SIZE;
    s.present.set(p);
    if (fill === 0) s.zero.set(p);
    else s.zero.clear(p);
    if (this.extracted?.id === id)
      this.extracted.bytes.set(new Uint8Array(TARGET_PAGE_SIZE).fill(fill), offset);
  }

  xbzrle(id: string, offset: number, encoded: Uint8Array): void {
    const s = this.seen.get(id)!;
    const p = offset / TARGET_PAGE_SIZE;
    s.present.set(p);
    s.zero.clear(p);
    if (this.extracted?.id === id) {
      const page = this.extracted.bytes.subarray(offset, offset + TARGET_PAGE_SIZE).slice();
      applyXbzrle(id, offset, encoded, page);
      this.extracted.bytes.set(page, offset);
    }
  }

  /** The counts, in stream block-list order. */
  blocks(): BlockInventory[] {
    return [...this.seen].map(([id, s]) => ({
      id,
      length: s.length,
      pages: s.present.count(),
      zeroPages: s.zero.count(),
    }));
  }
}

/** Where an extracted block's bytes go: a byte array or anything with the same two methods. */
export interface ExtractTarget {
  set(src: Uint8Array, offset: number): void;
  subarray(begin: number, end: number): Uint8Array;
}

/**
 * Loads the RAM section of a QEMU (or memtree) stream into `ms`. Resolves with what the stream held;
 * throws a {@link MigrationError} on any fault, before touching memory if the block list does not
 * match.
 */
export async function loadRamStream(
  ms: MemorySystem,
  source: AsyncIterable<Uint8Array> | Uint8Array,
  options: DecodeOptions & RamLoaderOptions = {},
): Promise<StreamSummary & { loader: RamLoader }> {
  const loader = new RamLoader(ms, options);
  const reader = new ByteReader(source);
  try {
    const summary = await decodeStream(reader, loader, options);
    return { ...summary, loader };
  } finally {
    await reader.close();
  }
}

/** Reads a stream and counts pages per block (see {@link StreamInventory}). */
export async function inspectStream(
  source: AsyncIterable<Uint8Array> | Uint8Array,
  options: DecodeOptions & { extract?: string; makeTarget?: (length: number) => ExtractTarget } = {},
): Promise<StreamSummary & { inventory: StreamInventory }> {
  const inv = new StreamInventory(options.extract ?? null, options.makeTarget);
  const reader = new ByteReader(source);
  try {
    const summary = await decodeStream(reader, inv, options);
    return { ...summary, inventory: inv };
  } finally {
    await reader.close();
  }
}

/**
 * Writes every migratable block of a stopped machine as one complete QEMU stream (what `migrate` of
 * a paused guest produces, without device sections): setup, one pass over all pages, END, EOF.
 */
export async function saveRamStream(
  ms: MemorySystem,
  sink: ByteSink,
  options: { machine?: string } = {},
): Promise<{ pages: number; zeroPages: number; bytes: number }> {
  const w = new ByteWriter(sink);
  const s = new QemuStreamWriter(w);
  const enc = new RamPageEncoder(w);
  const blocks = migratableBlocks(ms);
  s.header(options.machine ?? 'memtree');
  const RAM_ID = 2;
  s.sectionStart(QEMU_VM_SECTION_START, RAM_ID, 'ram', 0, RAM_SECTION_VERSION);
  enc.setup(blocks.map((b) => ({ id: b.idstr, length: b.usedLength })));
  s.footer(RAM_ID);
  s.sectionPart(QEMU_VM_SECTION_PART, RAM_ID);
  for (const b of blocks) {
    for (let off = 0; off < b.usedLength; off += TARGET_PAGE_SIZE) {
      enc.page(b, off);
      if (w.pendingBytes > 4 << 20) await w.flushFull();
    }
  }
  enc.eos();
  s.footer(RAM_ID);
  s.sectionPart(QEMU_VM_SECTION_END, RAM_ID);
  enc.eos();
  s.footer(RAM_ID);
  s.eof();
  await w.flush();
  return { pages: enc.pages, zeroPages: enc.zeroPages, bytes: w.written };
}

/** Applies an XBZRLE delta to `page` in place, or fails with QEMU's message naming block and offset. */
function applyXbzrle(id: string, offset: number, encoded: Uint8Array, page: Uint8Array): void {
  if (!xbzrleDecode(encoded, page)) {
    throw new MigrationError('corrupt', `Failed to load XBZRLE page - decode error! (${id} ${hex(offset)})`, {
      block: id,
      offset,
    });
  }
}
