/**
 * The stream codec and snapshots in one process: a memtree stream reads back into an identical
 * machine, bad streams give typed errors naming block and offset (and load nothing), and snapshot
 * chains restore byte for byte.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { MigrationError } from '../src/migration/errors.js';
import {
  RAM_SAVE_FLAG_CONTINUE,
  RAM_SAVE_FLAG_PAGE,
  RAM_SAVE_FLAG_ZERO,
  xbzrleDecode,
} from '../src/migration/qemu-stream.js';
import { inspectStream, loadRamStream, saveRamStream } from '../src/migration/ram-load.js';
import { restoreSnapshots, SnapshotTracker } from '../src/migration/snapshot.js';
import { restoreSnapshotFiles, saveSnapshotFile } from '../src/migration/snapshot-file.js';
import { blockHashes, buildMachine } from '../src/migration/test-support/machine.js';

async function streamOf(spec = {}) {
  const m = buildMachine(spec, true);
  const parts: Uint8Array[] = [];
  const stats = await saveRamStream(m.ms, (c) => {
    parts.push(c.slice());
  });
  return { m, bytes: new Uint8Array(Buffer.concat(parts)), stats };
}

function isMigErr(failure: string, re?: RegExp, block?: string) {
  return (e: unknown) => {
    assert.ok(e instanceof MigrationError, String(e));
    assert.equal(e.failure, failure, e.message);
    if (re) assert.match(e.message, re);
    if (block !== undefined) assert.equal(e.block, block);
    return true;
  };
}

/** Offset of the first page record of `id` (the header word, then the counted name). */
function firstRecordOf(bytes: Uint8Array, id: string): number {
  const name = Buffer.from(id);
  const b = Buffer.from(bytes);
  let i = b.indexOf(Buffer.concat([Buffer.from([name.length]), name]), 0);
  // Skip the MEM_SIZE list entry; the next occurrence is the first page record.
  i = b.indexOf(Buffer.concat([Buffer.from([name.length]), name]), i + 1);
  return i - 8;
}

describe('memtree RAM streams', () => {
  it('round-trips a machine: QEMU layout, one record per page, zero pages carry no bytes', async () => {
    const { m, bytes, stats } = await streamOf();
    const header = Buffer.from(bytes.subarray(0, 8)).toString('hex');
    assert.equal(header, '5145564d00000003');
    // 16 MiB RAM (1/4 data), 4 MiB vram (zero), 256 KiB bios (data).
    assert.equal(stats.pages, 1024 + 64);
    assert.equal(stats.zeroPages, 3072 + 1024);
    const dst = buildMachine();
    const res = await loadRamStream(dst.ms, bytes);
    assert.equal(res.reachedEof, true);
    assert.deepEqual(blockHashes(dst.ms), blockHashes(m.ms));
    const inv = await inspectStream(bytes);
    assert.deepEqual(
      inv.inventory.blocks().map((b) => [b.id, b.pages, b.zeroPages]),
      [
        ['pc.ram', 4096, 3072],
        ['0000:00:02.0/vga.vram', 1024, 1024],
        ['pc.bios', 64, 0],
      ],
    );
  });

  it('rejects a wrong magic, a wrong version and a truncated stream', async () => {
    const { bytes } = await streamOf();
    const bad = bytes.slice();
    bad[0] = 0x51 ^ 1;
    await assert.rejects(loadRamStream(buildMachine().ms, bad), isMigErr('bad-magic'));
    const v = bytes.slice();
    v[7] = 2;
    await assert.rejects(loadRamStream(buildMachine().ms, v), isMigErr('bad-version', /obsolete/));
    await assert.rejects(
      loadRamStream(buildMachine().ms, bytes.subarray(0, bytes.length - 5000)),
      isMigErr('truncated'),
    );
  });

  it('names the block and offset of a page outside its block, and of an unknown block', async () => {
    const { bytes } = await streamOf();
    const at = firstRecordOf(bytes, 'pc.bios');
    const dv = new DataView(bytes.buffer, bytes.byteOffset);
    assert.equal(dv.getUint32(at + 4) & 0xfff, RAM_SAVE_FLAG_PAGE);
    const off = bytes.slice();
    new DataView(off.buffer).setUint32(at + 4, 0x40000 | RAM_SAVE_FLAG_PAGE);
    await assert.rejects(
      loadRamStream(buildMachine().ms, off),
      isMigErr('bad-offset', /Illegal RAM offset 0x40000/, 'pc.bios'),
    );
    const unk = bytes.slice();
    unk[at + 9] = 'q'.charCodeAt(0); // "pc.bios" -> "qc.bios"
    await assert.rejects(
      loadRamStream(buildMachine().ms, unk),
      isMigErr('unknown-block', /Can't find block qc\.bios/, 'qc.bios'),
    );
    // A continuation record at the very start of the RAM pages has no block to continue.
    const cont = bytes.slice();
    const first = firstRecordOf(bytes, 'pc.ram');
    const cdv = new DataView(cont.buffer);
    cdv.setUint32(first + 4, cdv.getUint32(first + 4) | RAM_SAVE_FLAG_CONTINUE);
    await assert.rejects(loadRamStream(buildMachine().ms, cont), isMigErr('corrupt', /no block was named/));
    assert.equal(RAM_SAVE_FLAG_ZERO, 2);
  });

  it('checks the block list before taking a page: missing block, length mismatch', async () => {
    const { bytes } = await streamOf();
    const noVram = buildMachine({ noVram: true });
    await assert.rejects(
      loadRamStream(noVram.ms, bytes),
      isMigErr('unknown-block', /Unknown ramblock/, '0000:00:02.0/vga.vram'),
    );
    const before = blockHashes(noVram.ms);
    assert.deepEqual(blockHashes(noVram.ms), before);
    const small = buildMachine({ biosKiB: 128 });
    const h0 = blockHashes(small.ms);
    await assert.rejects(
      loadRamStream(small.ms, bytes),
      isMigErr('length-mismatch', /Size mismatch: pc\.bios: 0x40000 != 0x20000/),
    );
    assert.deepEqual(blockHashes(small.ms), h0, 'nothing was loaded');
  });

  it('decodes XBZRLE deltas as spec R12.10 describes', () => {
    const page = new Uint8Array(4096).fill(1);
    // 3 unchanged bytes, then 2 new bytes (9, 9); then 200 unchanged (2-byte ULEB 0xc8 0x01), 1 new.
    const enc = new Uint8Array([3, 2, 9, 9, 0xc8, 0x01, 1, 7]);
    assert.equal(xbzrleDecode(enc, page), true);
    assert.deepEqual([...page.subarray(0, 6)], [1, 1, 1, 9, 9, 1]);
    assert.equal(page[5 + 200], 7);
    assert.equal(xbzrleDecode(new Uint8Array([3, 0]), page), false, 'a data run of length 0 is invalid');
  });
});

describe('snapshots', () => {
  it('restores a base plus increments byte for byte; zero pages are not stored', async () => {
    const m = buildMachine({}, true);
    const t = new SnapshotTracker(m.ms);
    const files: Uint8Array[] = [];
    const save = async () => {
      const parts: Uint8Array[] = [];
      const s = await t.save((c) => {
        parts.push(c.slice());
      });
      files.push(new Uint8Array(Buffer.concat(parts)));
      return s;
    };
    const base = await save();
    assert.equal(base.dataPages, 1024 + 64);
    assert.ok(base.bytes < (1024 + 64) * 4096 + 64 * 1024, 'the 4096 zero pages took no room');
    m.as.stlLe(0x100000, 0xdeadbeef); // a zero page becomes data
    m.as.write(0, new Uint8Array(4096)); // a data page becomes zero
    const hashes1 = blockHashes(m.ms);
    const inc1 = await save();
    assert.equal(inc1.dataPages, 1);
    assert.equal(inc1.zeroPages, 1);
    m.as.stb(0xe0000000 + 0x2000, 5);
    const inc2 = await save();
    assert.equal(inc2.dataPages, 1);
    const hashes2 = blockHashes(m.ms);
    t.stop();
    const fresh = buildMachine();
    fresh.as.stb(0x300000, 0x77); // garbage that the base must clear
    await restoreSnapshots(
      fresh.ms,
      files.map((f, i) => ({ name: `snap${i}`, open: () => f })),
    );
    assert.deepEqual(blockHashes(fresh.ms), hashes2);
    const upTo1 = buildMachine();
    await restoreSnapshots(
      upTo1.ms,
      files.slice(0, 2).map((f, i) => ({ name: `snap${i}`, open: () => f })),
    );
    assert.deepEqual(blockHashes(upTo1.ms), hashes1);
  });

  it('refuses a broken chain or a corrupted file before touching memory', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'memtree-snap-'));
    try {
      const m = buildMachine({}, true);
      const t = new SnapshotTracker(m.ms);
      const p0 = join(dir, 'base.snap');
      const p1 = join(dir, 'inc1.snap');
      await saveSnapshotFile(t, p0);
      m.as.stb(0x5000, 1);
      await saveSnapshotFile(t, p1);
      t.stop();
      const target = buildMachine();
      target.as.stb(0x9000, 0x42);
      const h0 = blockHashes(target.ms);
      await assert.rejects(restoreSnapshotFiles(target.ms, [p1]), isMigErr('state', /must be a base/));
      const corrupt = readFileSync(p1);
      corrupt[corrupt.length - 4100]! ^= 0xff; // inside the page data
      const pc = join(dir, 'inc1-corrupt.snap');
      writeFileSync(pc, corrupt);
      await assert.rejects(restoreSnapshotFiles(target.ms, [p0, pc]), isMigErr('corrupt', /CRC mismatch/));
      assert.deepEqual(blockHashes(target.ms), h0, 'memory untouched');
      await restoreSnapshotFiles(target.ms, [p0, p1]);
      assert.deepEqual(blockHashes(target.ms), blockHashes(m.ms));
      const other = buildMachine({ noVram: true });
      await assert.rejects(restoreSnapshotFiles(other.ms, [p0]), isMigErr('unknown-block', /no RAM block/));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
