import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { DIRTY_MEMORY_MIGRATION, DIRTY_MEMORY_VGA, DirtyMemory } from './dirty.js';

const PAGE = 4096;
const MIG = 1 << DIRTY_MEMORY_MIGRATION;
const VGA = 1 << DIRTY_MEMORY_VGA;

describe('DirtyMemory runs of pages dirty for every client', () => {
  it('finds the run around a page across bitmap words, within the limits', () => {
    const d = new DirtyMemory();
    // Pages 5..99 dirty for MIGRATION: the run crosses the words of pages 0-31, 32-63, 64-95, 96-127.
    d.setRange(5 * PAGE, 95 * PAGE, MIG);
    assert.equal(d.dirtyRunStart(70, MIG, 0), 5);
    assert.equal(d.dirtyRunEnd(70, MIG, 1000), 100);
    assert.equal(d.dirtyRunStart(5, MIG, 0), 5);
    assert.equal(d.dirtyRunEnd(99, MIG, 1000), 100);
    // The limits stop the search early, also in the middle of a whole dirty word.
    assert.equal(d.dirtyRunStart(70, MIG, 40), 40);
    assert.equal(d.dirtyRunEnd(70, MIG, 80), 80);
    assert.equal(d.dirtyRunEnd(33, MIG, 64), 64);
  });

  it('needs every client of the mask: a page clean for one ends the run', () => {
    const d = new DirtyMemory();
    d.setRange(0, 64 * PAGE, MIG);
    d.setRange(10 * PAGE, 30 * PAGE, VGA);
    assert.equal(d.dirtyRunStart(20, MIG | VGA, 0), 10);
    assert.equal(d.dirtyRunEnd(20, MIG | VGA, 1000), 40);
    assert.equal(d.dirtyRunEnd(20, MIG, 1000), 64);
    // Past the end of the bitmap every page is clean.
    assert.equal(d.dirtyRunEnd(63, MIG, 1 << 20), 64);
  });
});

describe('DirtyMemory against a plain one-byte-per-page model', () => {
  // Pages around the edges of the 2^17-page bitmap blocks, and whole blocks now and then.
  const BLOCK_PAGES = 1 << 17;
  const PAGES = 3 * BLOCK_PAGES;
  it('agrees on every operation (fixed seed)', () => {
    let seed = 12345;
    const rnd = (n: number) => {
      seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
      return Math.floor((seed / 2 ** 32) * n);
    };
    const d = new DirtyMemory();
    const model = [0, 1, 2].map(() => new Uint8Array(PAGES));
    const range = (): [number, number] => {
      const whole = rnd(8) === 0;
      const edge = (1 + rnd(2)) * BLOCK_PAGES;
      const p0 = whole ? rnd(2) * BLOCK_PAGES : edge - rnd(100);
      const p1 = whole ? p0 + BLOCK_PAGES * (1 + rnd(2)) - rnd(2) * 33 : Math.min(PAGES, edge + rnd(100) + 1);
      return [p0, Math.max(p1, p0 + 1)];
    };
    for (let step = 0; step < 3000; step++) {
      const [p0, p1] = range();
      const c = rnd(3);
      const start = p0 * PAGE;
      const len = (p1 - p0) * PAGE;
      const m = model[c]!;
      switch (rnd(5)) {
        case 0:
          d.setRange(start, len, 1 << c);
          m.fill(1, p0, p1);
          break;
        case 1: {
          const any = m.subarray(p0, p1).includes(1);
          assert.equal(d.testAndClear(start, len, c), any, `testAndClear ${p0}-${p1} step ${step}`);
          m.fill(0, p0, p1);
          break;
        }
        case 2:
          assert.equal(d.getDirty(start, len, c), m.subarray(p0, p1).includes(1), `getDirty ${p0}-${p1}`);
          break;
        case 3:
          assert.equal(d.allDirty(start, len, c), !m.subarray(p0, p1).includes(0), `allDirty ${p0}-${p1}`);
          break;
        default: {
          const snap = d.snapshotAndClear(start, len, c);
          const s0 = snap.start / PAGE;
          for (let p = s0; p < snap.end / PAGE; p++) {
            const bit = (snap.bits[(p - s0) >>> 5]! >>> ((p - s0) & 31)) & 1;
            assert.equal(bit, p < PAGES ? m[p] : 0, `snapshot page ${p}`);
          }
          m.fill(0, s0, Math.min(PAGES, snap.end / PAGE));
        }
      }
    }
  });

  it('keeps 64 TiB of ram_addr space in a few blocks and tells pages above 2^32 apart', () => {
    const d = new DirtyMemory();
    const TiB = 2 ** 40;
    d.setRange(0, 64 * TiB, 7);
    // Whole blocks share one all-ones block: nothing is allocated.
    for (let c = 0; c < 3; c++) assert.equal(d.allocatedWords(c), 0);
    assert.equal(d.allDirty(0, 64 * TiB, DIRTY_MEMORY_MIGRATION), true);
    const high = 2 ** 32 + 5; // page numbers past 2^32: `>>> 5` would fold them onto page 5
    assert.equal(d.testAndClear(high * PAGE, PAGE, DIRTY_MEMORY_MIGRATION), true);
    assert.equal(d.getDirty(5 * PAGE, PAGE, DIRTY_MEMORY_MIGRATION), true);
    assert.equal(d.getDirty(high * PAGE, PAGE, DIRTY_MEMORY_MIGRATION), false);
    assert.equal(d.allDirty(0, 64 * TiB, DIRTY_MEMORY_MIGRATION), false);
    // Clearing one page copied one block, no more.
    assert.equal(d.allocatedWords(DIRTY_MEMORY_MIGRATION), 4096);
    assert.throws(() => d.getDirty(0, PAGE, 3), { code: 'ERR_INVALID_ARGUMENT' });
  });
});
