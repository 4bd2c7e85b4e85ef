/**
 * @module migration/snapshot
 * Snapshots of a machine's RAM in a file format of memtree's own (no Node imports; see
 * snapshot-file.ts for files). A base snapshot holds every non-zero page of every migratable block;
 * an increment holds only the pages dirtied since the previous snapshot of the same chain (tracked
 * with the MIGRATION dirty client), zero pages as ranges without bytes. Restoring a base and its
 * increments in order reproduces the RAM at the last one. Every file is checked completely (header,
 * chain, blocks, records, CRC-32) before memory is touched.
 *
 * Format (all integers big-endian):
 *
 *     header   u32 magic 0x4D54534E ("MTSN"), u16 version 1, u16 flags (bit 0: increment),
 *              16 bytes chain id, u32 sequence (0 = base), u32 block count,
 *              per block: u8 id length, id bytes, u64 used length
 *     records  u8 type, then
 *              1 DATA: u16 block index, u64 first page, u32 count, count × 4096 bytes
 *              2 ZERO: u16 block index, u64 first page, u32 count        (increments only)
 *              0 END:  u64 pages recorded, u32 CRC-32 of every byte before this field
 */

import { DIRTY_CLIENTS_ALL } from '../core/dirty.js';
import type { RAMBlock } from '../core/ramblock.js';
import { DIRTY_MEMORY_MIGRATION } from '../core/region.js';
import type { MemorySystem } from '../core/system.js';
import { ByteReader, type ByteSink, ByteWriter, latin1 } from './bytes.js';
import { Crc32 } from './crc32.js';
import { MigrationError } from './errors.js';
import { isZeroPage, TARGET_PAGE_SIZE } from './qemu-stream.js';
import { migratableBlocks, PageBitmap } from './ram-load.js';

export const SNAPSHOT_MAGIC = 0x4d54534e;
export const SNAPSHOT_VERSION = 1;
const REC_END = 0;
const REC_DATA = 1;
const REC_ZERO = 2;
const MAX_RUN = 256;

export { Crc32 };

/** What one saved snapshot holds. */
export interface SnapshotStats {
  sequence: number;
  incremental: boolean;
  /** Pages stored with their bytes. */
  dataPages: number;
  /** Dirtied pages that were zero (increments: stored as ranges; base: not stored at all). */
  zeroPages: number;
  bytes: number;
}

/**
 * Takes a base snapshot and then increments of one machine. Between snapshots the MIGRATION dirty
 * client logs writes (global dirty logging is on while the tracker is active), so a live migration of
 * the same machine cannot run at the same time.
 */
export class SnapshotTracker {
  private sequence = -1;
  private readonly chainId = new Uint8Array(16);
  private bitmaps = new Map<RAMBlock, PageBitmap>();

  constructor(readonly ms: MemorySystem) {
    for (let i = 0; i < 16; i++) this.chainId[i] = Math.floor(Math.random() * 256);
  }

  /** Whether the tracker logs writes (between the first snapshot and {@link stop}). */
  get active(): boolean {
    return this.sequence >= 0;
  }

  /** Folds and clears the MIGRATION bits of each block into the tracker's bitmaps. */
  private sync(): void {
    this.ms.logSync();
    for (const b of migratableBlocks(this.ms)) {
      let bm = this.bitmaps.get(b);
      if (!bm) {
        bm = new PageBitmap(Math.ceil(b.maxLength / TARGET_PAGE_SIZE));
        this.bitmaps.set(b, bm);
      }
      const snap = this.ms.dirty.snapshotAndClear(b.offset, b.usedLength, DIRTY_MEMORY_MIGRATION);
      const k0 = (b.offset - snap.start) / TARGET_PAGE_SIZE / 32;
      for (let k = 0; k < bm.words.length; k++) bm.words[k]! |= snap.bits[k0 + k] ?? 0;
    }
    this.ms.logGlobalAfterSync();
  }

  /**
   * Writes the next snapshot to `sink`: the base the first time (every non-zero page), then an
   * increment with the pages dirtied since the previous call.
   */
  async save(sink: ByteSink): Promise<SnapshotStats> {
    const ms = this.ms;
    const incremental = this.sequence >= 0;
    if (!incremental) {
      if (ms.globalDirtyTracking & 1) {
        throw new MigrationError('state', 'dirty logging for migration is already active on this machine');
      }
      ms.globalDirtyLogStart(1);
    }
    this.sync();
    const blocks = migratableBlocks(ms);
    const seq = this.sequence + 1;
    const crc = new Crc32();
    const w = new ByteWriter((chunk) => {
      crc.update(chunk);
      return sink(chunk);
    });
    w.u32(SNAPSHOT_MAGIC);
    w.u16(SNAPSHOT_VERSION);
    w.u16(incremental ? 1 : 0);
    w.bytes(this.chainId);
    w.u32(seq);
    w.u32(blocks.length);
    for (const b of blocks) {
      w.countedString(b.idstr);
      w.u64(b.usedLength);
    }
    const stats: SnapshotStats = { sequence: seq, incremental, dataPages: 0, zeroPages: 0, bytes: 0 };
    const page = new Uint8Array(TARGET_PAGE_SIZE);
    for (let bi = 0; bi < blocks.length; bi++) {
      const b = blocks[bi]!;
      const bm = this.bitmaps.get(b)!;
      const pages = b.usedLength / TARGET_PAGE_SIZE;
      // kind of the current run: 0 none, 1 data, 2 zero
      let runKind = 0;
      let runStart = 0;
      let runLen = 0;
      let runBytes: Uint8Array[] = [];
      const endRun = () => {
        if (runKind === 0) return;
        w.u8(runKind === 1 ? REC_DATA : REC_ZERO);
        w.u16(bi);
        w.u64(runStart);
        w.u32(runLen);
        for (const p of runBytes) w.bytes(p);
        runKind = 0;
        runBytes = [];
      };
      for (let p = 0; p < pages; p++) {
        if (incremental && !bm.get(p)) {
          endRun();
          continue;
        }
        bm.clear(p);
        const ci = Math.floor((p * TARGET_PAGE_SIZE) / 2 ** 30);
        let zero = !b.isChunkAllocated(ci);
        if (!zero) {
          b.read(p * TARGET_PAGE_SIZE, page, 0, TARGET_PAGE_SIZE);
          zero = isZeroPage(page);
        }
        if (zero) stats.zeroPages++;
        else stats.dataPages++;
        if (zero && !incremental) {
          endRun();
          continue;
        }
        const kind = zero ? 2 : 1;
        if (kind !== runKind || runLen >= MAX_RUN) {
          endRun();
          runKind = kind;
          runStart = p;
          runLen = 0;
        }
        runLen++;
        if (!zero) runBytes.push(page.slice());
        if (w.pendingBytes >= 4 << 20) await w.flushFull();
      }
      endRun();
    }
    w.u8(REC_END);
    w.u64(stats.dataPages + (incremental ? stats.zeroPages : 0));
    await w.flush();
    const tail = new Uint8Array(4);
    new DataView(tail.buffer).setUint32(0, crc.value);
    await sink(tail);
    stats.bytes = w.written + 4;
    this.sequence = seq;
    return stats;
  }

  /** Stops logging; later saves start a new chain with a base snapshot. */
  stop(): void {
    if (this.sequence >= 0) this.ms.globalDirtyLogStop(1);
    this.sequence = -1;
    this.bitmaps = new Map();
    for (let i = 0; i < 16; i++) this.chainId[i] = Math.floor(Math.random() * 256);
  }
}

/** Opens a snapshot's bytes (called twice: once to check it, once to apply it). */
export type SnapshotOpener = () =>
  | AsyncIterable<Uint8Array>
  | Uint8Array
  | Promise<AsyncIterable<Uint8Array> | Uint8Array>;

interface Header {
  incremental: boolean;
  chainId: string;
  sequence: number;
  blocks: Array<{ id: string; length: number }>;
}

/** A reader that keeps a CRC of everything consumed. */
class CrcReader {
  readonly crc = new Crc32();
  constructor(readonly r: ByteReader) {}
  async need(n: number, what: string): Promise<void> {
    await this.r.need(n, what);
  }
  take(n: number): Uint8Array {
    const v = this.r.view(n);
    this.crc.update(v);
    return v;
  }
  u8(): number {
    return this.take(1)[0]!;
  }
  u16(): number {
    const v = this.take(2);
    return (v[0]! << 8) | v[1]!;
  }
  u32(): number {
    const v = this.take(4);
    return ((v[0]! << 24) | (v[1]! << 16) | (v[2]! << 8) | v[3]!) >>> 0;
  }
  u64(): number {
    const hi = this.u32();
    return hi * 2 ** 32 + this.u32();
  }
}

async function readHeader(c: CrcReader, name: string): Promise<Header> {
  await c.need(32, `${name}: the snapshot header`);
  const magic = c.u32();
  if (magic !== SNAPSHOT_MAGIC) {
    throw new MigrationError('bad-magic', `${name}: not a memtree snapshot (magic 0x${magic.toString(16)})`, {
      offset: 0,
    });
  }
  const version = c.u16();
  if (version !== SNAPSHOT_VERSION) {
    throw new MigrationError(
      'bad-version',
      `${name}: snapshot version ${version} is not supported (expected 1)`,
      {
        offset: 4,
      },
    );
  }
  const flags = c.u16();
  const chainId = [...c.take(16)].map((x) => x.toString(16).padStart(2, '0')).join('');
  const sequence = c.u32();
  const n = c.u32();
  const blocks: Header['blocks'] = [];
  for (let i = 0; i < n; i++) {
    await c.need(1, `${name}: the block list`);
    const l = c.u8();
    await c.need(l + 8, `${name}: the block list`);
    const id = latin1(c.take(l));
    blocks.push({ id, length: c.u64() });
  }
  return { incremental: (flags & 1) === 1, chainId, sequence, blocks };
}

/**
 * Restores a base snapshot and its increments (in order) into `ms`. All files are read and checked
 * first — magic, version, chain, blocks against the machine, record bounds, CRC — so a bad file
 * leaves memory untouched; then the base is applied (blocks zeroed, stored pages written) and each
 * increment on top. Restored blocks end up dirty for every client.
 */
export async function restoreSnapshots(
  ms: MemorySystem,
  files: Array<{ name: string; open: SnapshotOpener }>,
): Promise<void> {
  if (files.length === 0) throw new MigrationError('state', 'no snapshot to restore');
  let chain = '';
  for (let i = 0; i < files.length; i++) {
    const f = files[i]!;
    const h = await readSnapshot(ms, f.name, await f.open(), null);
    if (i === 0) {
      if (h.incremental)
        throw new MigrationError(
          'state',
          `${f.name}: the first snapshot must be a base, not increment ${h.sequence}`,
        );
      chain = h.chainId;
    } else {
      if (!h.incremental || h.chainId !== chain) {
        throw new MigrationError('state', `${f.name}: not an increment of ${files[0]!.name}`);
      }
      if (h.sequence !== i) {
        throw new MigrationError(
          'state',
          `${f.name}: increment ${h.sequence} where increment ${i} was expected`,
        );
      }
    }
  }
  for (const f of files) await readSnapshot(ms, f.name, await f.open(), (b) => b);
  for (const b of migratableBlocks(ms)) ms.dirty.setRange(b.offset, b.usedLength, DIRTY_CLIENTS_ALL);
}

async function readSnapshot(
  ms: MemorySystem,
  name: string,
  source: AsyncIterable<Uint8Array> | Uint8Array,
  apply: ((b: RAMBlock) => RAMBlock) | null,
): Promise<Header> {
  const reader = new ByteReader(source);
  try {
    return await readSnapshotFrom(ms, name, new CrcReader(reader), apply);
  } finally {
    await reader.close();
  }
}

async function readSnapshotFrom(
  ms: MemorySystem,
  name: string,
  c: CrcReader,
  apply: ((b: RAMBlock) => RAMBlock) | null,
): Promise<Header> {
  const h = await readHeader(c, name);
  const blocks: RAMBlock[] = [];
  for (const e of h.blocks) {
    const b = ms.ramList.byId(e.id);
    if (!b)
      throw new MigrationError('unknown-block', `${name}: the machine has no RAM block "${e.id}"`, {
        block: e.id,
      });
    if (b.usedLength !== e.length) {
      throw new MigrationError(
        'length-mismatch',
        `${name}: block ${e.id} is 0x${e.length.toString(16)} bytes in the snapshot but 0x${b.usedLength.toString(16)} here`,
        { block: e.id },
      );
    }
    blocks.push(b);
  }
  if (apply && !h.incremental) {
    for (const b of blocks) {
      for (let ci = 0; ci < b.chunkCount; ci++) if (b.isChunkAllocated(ci)) b.chunk(ci).fill(0);
    }
  }
  let count = 0;
  for (;;) {
    const at = c.r.consumed;
    await c.need(1, `${name}: a record`);
    const type = c.u8();
    if (type === REC_END) {
      await c.need(12, `${name}: the end record`);
      const total = c.u64();
      const expect = c.crc.value;
      const got = ((): number => {
        const v = c.r.view(4);
        return ((v[0]! << 24) | (v[1]! << 16) | (v[2]! << 8) | v[3]!) >>> 0;
      })();
      if (total !== count) {
        throw new MigrationError(
          'corrupt',
          `${name}: end record counts ${total} pages, the records hold ${count}`,
          {
            offset: at,
          },
        );
      }
      if (got !== expect) {
        throw new MigrationError(
          'corrupt',
          `${name}: CRC mismatch (stored 0x${got.toString(16)}, computed 0x${expect.toString(16)})`,
          {
            offset: at,
          },
        );
      }
      if (!(await c.r.atEnd()))
        throw new MigrationError('corrupt', `${name}: bytes after the end record`, { offset: c.r.consumed });
      return h;
    }
    if (type !== REC_DATA && type !== REC_ZERO) {
      throw new MigrationError('corrupt', `${name}: unknown record type ${type} at offset ${at}`, {
        offset: at,
      });
    }
    await c.need(14, `${name}: a record header`);
    const bi = c.u16();
    const first = c.u64();
    const n = c.u32();
    const b = blocks[bi];
    if (!b)
      throw new MigrationError(
        'corrupt',
        `${name}: record at offset ${at} names block #${bi} of ${blocks.length}`,
        { offset: at },
      );
    if ((first + n) * TARGET_PAGE_SIZE > b.usedLength) {
      throw new MigrationError(
        'bad-offset',
        `${name}: pages 0x${(first * TARGET_PAGE_SIZE).toString(16)}+${n} lie outside block ${b.idstr} (0x${b.usedLength.toString(16)} bytes)`,
        { block: b.idstr, offset: first * TARGET_PAGE_SIZE },
      );
    }
    if (type === REC_ZERO && !h.incremental) {
      throw new MigrationError('corrupt', `${name}: a zero-page record in a base snapshot`, { offset: at });
    }
    for (let k = 0; k < n; k++) {
      const off = (first + k) * TARGET_PAGE_SIZE;
      if (type === REC_DATA) {
        await c.need(TARGET_PAGE_SIZE, `${name}: page 0x${off.toString(16)} of ${b.idstr}`);
        const data = c.take(TARGET_PAGE_SIZE);
        if (apply) b.write(off, data, 0, TARGET_PAGE_SIZE);
      } else if (apply) {
        const ci = Math.floor(off / 2 ** 30);
        if (b.isChunkAllocated(ci)) b.hostView(off, TARGET_PAGE_SIZE).fill(0);
      }
    }
    count += n;
  }
}
