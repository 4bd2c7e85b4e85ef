/**
 * Bad calls into the library (issue #11): each throws a typed error with a `code`, and leaves the
 * tree, the flat views, RAM and the dirty bitmaps exactly as they were.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { DIRTY_MEMORY_MIGRATION, DIRTY_MEMORY_VGA } from './dirty.js';
import type { MemoryRegion } from './region.js';
import { MemorySystem } from './system.js';
import { assertRefused } from './test-support/state.js';
import { MEMTX_DECODE_ERROR } from './types.js';

/** pc.ram then a second block right after it in ram_addr space, both mapped in "memory". */
function twoBlocks() {
  const ms = new MemorySystem();
  const system = ms.container('system', 2n ** 32n);
  const r1 = ms.ram('r1', 0x4000);
  const r2 = ms.ram('r2', 0x4000);
  system.addSubregion(0, r1);
  system.addSubregion(0x100000, r2);
  const as = ms.addressSpace(system, 'memory');
  ms.globalDirtyLogStart(1);
  // Clean MIGRATION for both blocks, then dirty one page of each by a guest write.
  ms.snapshotAndClearDirty(r1, 0, 0x4000, DIRTY_MEMORY_MIGRATION);
  ms.snapshotAndClearDirty(r2, 0, 0x4000, DIRTY_MEMORY_MIGRATION);
  as.stb(0x1000, 1);
  as.stb(0x101000, 2);
  return { ms, system, r1, r2, as, regions: [system, r1, r2] };
}

describe('dirty-memory calls check their range and region (issue #11)', () => {
  it('snapshotAndClearDirty past the end of a region is refused, the next block keeps its bits', () => {
    const { ms, r1, r2, regions } = twoBlocks();
    assert.equal(r2.ramBlock!.offset, 0x40000); // the 64-page aligned gap after r1, by hand
    assertRefused(ms, regions, 'ERR_INVALID_ARGUMENT', () =>
      ms.snapshotAndClearDirty(r1, 0, 2 * 0x40000, DIRTY_MEMORY_MIGRATION),
    );
    const snap = ms.snapshotAndClearDirty(r2, 0, 0x4000, DIRTY_MEMORY_MIGRATION);
    assert.equal(ms.snapshotGetDirty(r2, snap, 0x1000, 0x1000), true);
    assert.equal(ms.snapshotGetDirty(r2, snap, 0, 0x1000), false);
  });

  for (const [name, call] of [
    [
      'snapshotAndClearDirty',
      (ms: MemorySystem, r: MemoryRegion) => ms.snapshotAndClearDirty(r, 0x3000, 0x2000, 2),
    ],
    ['setDirty', (ms: MemorySystem, r: MemoryRegion) => ms.setDirty(r, 0x4000, 1)],
    ['resetDirty', (ms: MemorySystem, r: MemoryRegion) => ms.resetDirty(r, -1, 0x1000, 2)],
    ['writeRam', (ms: MemorySystem, r: MemoryRegion) => ms.writeRam(r, 0x3fff, new Uint8Array(2))],
    ['readRam', (ms: MemorySystem, r: MemoryRegion) => ms.readRam(r, 0.5, new Uint8Array(1))],
  ] as const) {
    it(`${name} outside the region is refused`, () => {
      const { ms, r1, regions } = twoBlocks();
      assertRefused(ms, regions, 'ERR_INVALID_ARGUMENT', () => call(ms, r1));
    });
  }

  for (const [name, call] of [
    ['writeRam', (ms: MemorySystem, r: MemoryRegion) => ms.writeRam(r, 0, new Uint8Array([9]))],
    ['readRam', (ms: MemorySystem, r: MemoryRegion) => ms.readRam(r, 0, new Uint8Array(1))],
    ['setDirty', (ms: MemorySystem, r: MemoryRegion) => ms.setDirty(r, 0, 0x1000)],
    [
      'snapshotAndClearDirty',
      (ms: MemorySystem, r: MemoryRegion) => ms.snapshotAndClearDirty(r, 0, 0x1000, 2),
    ],
    ['resetDirty', (ms: MemorySystem, r: MemoryRegion) => ms.resetDirty(r, 0, 0x1000, 2)],
    ['ramResize', (ms: MemorySystem, r: MemoryRegion) => ms.ramResize(r, 0x2000)],
  ] as const) {
    it(`${name} with a region of another MemorySystem is ERR_FOREIGN_REGION`, () => {
      const { ms, r1, regions } = twoBlocks();
      const other = new MemorySystem();
      assertRefused(ms, regions, 'ERR_FOREIGN_REGION', () => call(other, r1));
    });
  }

  it('a dirty client that does not exist is a typed error', () => {
    const { ms, r1, regions } = twoBlocks();
    assertRefused(ms, regions, 'ERR_INVALID_ARGUMENT', () => ms.snapshotAndClearDirty(r1, 0, 0x1000, 9));
    assertRefused(ms, regions, 'ERR_INVALID_ARGUMENT', () => ms.resetDirty(r1, 0, 0x1000, -1));
    assertRefused(ms, regions, 'ERR_INVALID_ARGUMENT', () => r1.setLog(true, DIRTY_MEMORY_MIGRATION));
  });
});

describe('a failed topology change leaves the tree and the views as they were (issue #11)', () => {
  it('enabling a disabled alias that closes an endless loop is refused and it stays disabled', () => {
    const ms = new MemorySystem();
    const c = ms.container('c', 0x10000);
    const r = ms.ram('r', 0x1000);
    c.addSubregion(0, r);
    ms.addressSpace(c, 'as');
    // An alias of all of c, mapped at 0 of c: each round renders the same window again.
    const loop = ms.alias('loop', c, 0, 0x10000);
    loop.setEnabled(false);
    c.addSubregionOverlap(0, loop, 1); // QEMU accepts a disabled region anywhere
    assertRefused(ms, [c, r, loop], 'ERR_ALIAS_CYCLE', () => loop.setEnabled(true));
    assert.equal(loop.enabled, false);
  });

  it('moving a shrinking loop alias to where it never shrinks is refused and it stays put', () => {
    const ms = new MemorySystem();
    const c = ms.container('c', 0x10000);
    const r = ms.ram('r', 0x1000);
    c.addSubregion(0, r);
    const sib = ms.ram('sib', 0x1000);
    c.addSubregion(0x9000, sib);
    // The window [0x100, 0x8100) of c at 0x8000 of c: legal, every round is 0x7f00 further on.
    const loop = ms.alias('loop', c, 0x100, 0x8000);
    c.addSubregion(0x8000, loop);
    const as = ms.addressSpace(c, 'as');
    assert.equal(as.lookup(0x8000)?.region.name, 'r');
    const regions = [c, r, sib, loop];
    assertRefused(ms, regions, 'ERR_ALIAS_CYCLE', () => loop.setAddress(0x100));
    assert.equal(loop.addr, 0x8000n);
    assertRefused(ms, regions, 'ERR_ALIAS_CYCLE', () => loop.setAliasOffset(0x8000));
    assert.equal(loop.aliasOffset, 0x100n);
    assertRefused(ms, regions, 'ERR_ALIAS_CYCLE', () => ms.transaction(() => loop.setAddress(0x100)));
    // Guest accesses still see the old view.
    as.stb(0x8000, 7);
    assert.equal(as.ldub(0x100), 7); // 0x8000 shows c at 0x100, which is r at 0x100
  });
});

describe('garbage arguments are typed errors (issue #11)', () => {
  const ms = new MemorySystem();
  const r = ms.ram('r', 0x1000);
  const io = ms.io('dev', 0x100, { read: () => 0, write: () => {} });
  const root = ms.container('root', 0x10000);
  root.addSubregion(0, r);
  root.addSubregion(0x2000, io);
  const as = ms.addressSpace(root, 'as');
  const regions = [root, r, io];
  const bad = (x: unknown) => x as never;
  for (const [name, f] of [
    ['ram(null, ...)', () => ms.ram(bad(null), 0x1000)],
    ['ram(Symbol(), ...)', () => ms.ram(bad(Symbol('s')), 0x1000)],
    ['io(Symbol(), ...)', () => ms.io(bad(Symbol('s')), 0x1000, null)],
    ['ramResize(mr, Symbol())', () => ms.ramResize(r, bad(Symbol()))],
    ['setEnabled("yes")', () => r.setEnabled(bad('yes'))],
    ['setReadonly(1)', () => r.setReadonly(bad(1))],
    ['globalDirtyLogStop() without a start', () => ms.globalDirtyLogStop()],
    ['globalDirtyLogStart(8)', () => ms.globalDirtyLogStart(8)],
    ['transaction(5)', () => ms.transaction(bad(5))],
    ['as.stqLe(0, 1)', () => as.stqLe(0, bad(1))],
    ['as.stlLe(0, 1n)', () => as.stlLe(0, bad(1n))],
    ['as.ldub(-1n)', () => as.ldub(bad(-1n))],
    ['as.ldlLe(0x2000n)', () => as.ldlLe(bad(0x2000n))],
    ['as.stb("0", 1)', () => as.stb(bad('0'), 1)],
    ['as.ldub(-1)', () => as.ldub(-1)],
  ] as const) {
    it(name, () => {
      // Warm the windows and caches first: a bad call must be refused on every path.
      as.stlLe(0x10, 1);
      as.ldlLe(0x10);
      as.stqLe(0x18, 1n);
      as.ldub(0x2000);
      assertRefused(ms, regions, 'ERR_INVALID_ARGUMENT', f);
    });
  }
  it('setLog with a non-boolean', () => {
    assertRefused(ms, regions, 'ERR_INVALID_ARGUMENT', () => r.setLog(bad('on'), DIRTY_MEMORY_VGA));
  });
});

describe('large inputs stay cheap (issue #11)', () => {
  it('a 64 TiB RAM region starts dirty without a bitmap of its size and works at its last page', () => {
    const ms = new MemorySystem();
    const system = ms.container('system', 2n ** 64n - 1n);
    const TiB = 2 ** 40;
    const big = ms.ram('big', 64 * TiB);
    system.addSubregion(0, big);
    const as = ms.addressSpace(system, 'memory');
    for (let c = 0; c < 3; c++) assert.equal(ms.dirty.allocatedWords(c), 0);
    ms.globalDirtyLogStart(1);
    const snap = ms.snapshotAndClearDirty(big, 64 * TiB - 0x40000, 0x40000, DIRTY_MEMORY_MIGRATION);
    assert.equal(ms.snapshotGetDirty(big, snap, 64 * TiB - 0x1000, 0x1000), true);
    as.stlLe(64 * TiB - 4, 0xdeadbeef);
    assert.equal(as.ldlLe(64 * TiB - 4), 0xdeadbeef);
    assert.equal(ms.dirty.getDirty(64 * TiB - 0x1000, 0x1000, DIRTY_MEMORY_MIGRATION), true);
    assert.equal(ms.dirty.getDirty(64 * TiB - 0x2000, 0x1000, DIRTY_MEMORY_MIGRATION), false);
    // Only the one bitmap block that was partly cleared exists as words.
    assert.ok(ms.dirty.allocatedWords(DIRTY_MEMORY_MIGRATION) <= 4096);
  });

  it('3,000 RAM siblings get the ram_addr places find_ram_offset gives them', () => {
    const ms = new MemorySystem();
    const system = ms.container('system', 2n ** 64n - 1n);
    const regions: MemoryRegion[] = [];
    ms.transaction(() => {
      for (let i = 0; i < 3000; i++) {
        const r = ms.ram(`r${i}`, 0x1000 * (1 + (i % 3)));
        system.addSubregion(i * 0x4000, r);
        regions.push(r);
      }
    });
    // By hand: every block fits the gap after the last one, at the next 64-page (0x40000) boundary.
    assert.deepEqual(
      regions.map((r) => r.ramBlock!.offset),
      regions.map((_, i) => i * 0x40000),
    );
    // Freeing one leaves a hole that the next block of a size that fits takes (smallest gap).
    ms.freeRegion(ms.ram('tmp', 0x1000)); // placed at the end, then removed again
    system.delSubregion(regions[10]!);
    ms.freeRegion(regions[10]!);
    const again = ms.ram('again', 0x1000);
    assert.equal(again.ramBlock!.offset, 10 * 0x40000);
  });
});

describe('failures the API fuzz found (issue #11)', () => {
  it('an add refused with ERR_ALIAS_CYCLE leaves the subregion at its old address', () => {
    const ms = new MemorySystem();
    const c = ms.container('c', 0x10000);
    c.addSubregion(0, ms.ram('r', 0x1000));
    const loop = ms.alias('loop', c, 0, 0x10000);
    const holder = ms.container('holder', 0x10000);
    holder.addSubregion(0x20, loop);
    holder.delSubregion(loop); // detached again, with addr 0x20 remembered
    ms.addressSpace(c, 'as');
    assertRefused(ms, [c, loop, holder], 'ERR_ALIAS_CYCLE', () => c.addSubregionOverlap(0, loop, 1));
    assert.equal(loop.addr, 0x20n);
  });

  it('bytes past the RAM block of an enlarged RAM region behave as unassigned', () => {
    const ms = new MemorySystem();
    const system = ms.container('system', 0x100000);
    const r = ms.ram('r', 0x1000);
    system.addSubregion(0, r);
    r.setSize(0x2000); // QEMU's set_size leaves the RAM block as it is
    const as = ms.addressSpace(system, 'as');
    // writeRom writes what the block holds and skips the rest, as it skips any non-RAM chunk.
    as.writeRom(0xffe, new Uint8Array([1, 2, 3, 4]));
    const inBlock = new Uint8Array(2);
    ms.readRam(r, 0xffe, inBlock);
    assert.deepEqual([...inBlock], [1, 2]);
    const buf = new Uint8Array(4).fill(9);
    assert.equal(as.read(0xffe, buf), MEMTX_DECODE_ERROR);
    assert.deepEqual([...buf], [1, 2, 0, 0]);
    assert.equal(as.write(0x1800, new Uint8Array(4)), MEMTX_DECODE_ERROR);
  });
});
