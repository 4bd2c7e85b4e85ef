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
