/**
 * @module core/ramblock.property.test
 * RAM block placement against a plain transcription of QEMU's rules: `find_ram_offset` (for every
 * block in list order, the gap from its end rounded up to 64 pages to the first block starting at
 * or after that point; the smallest gap that fits wins, the first in list order on a tie) and
 * `ram_block_add` (list sorted by max length, largest first, a new block after those of equal
 * length). The model keeps per-block gaps incrementally; random adds and frees of random sizes
 * must place every block where the naive rule does.
 */

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { HOST_PAGE_SIZE, RAMBlock, RAMList } from './ramblock.js';

const ALIGN = 64 * HOST_PAGE_SIZE;

/** QEMU's `find_ram_offset` loop, as written there: quadratic, obviously right. */
function naiveOffset(list: readonly { offset: number; maxLength: number }[], size: number): number {
  if (list.length === 0) return 0;
  let offset = -1;
  let mingap = Number.POSITIVE_INFINITY;
  for (const b of list) {
    const candidate = Math.ceil((b.offset + b.maxLength) / ALIGN) * ALIGN;
    let next = Number.MAX_VALUE;
    for (const n of list) if (n.offset >= candidate && n.offset < next) next = n.offset;
    if (next - candidate >= size && next - candidate < mingap) {
      offset = candidate;
      mingap = next - candidate;
    }
  }
  return offset;
}

type Op = { t: 'add'; pages: number } | { t: 'free'; pick: number };

const opArb: fc.Arbitrary<Op> = fc.oneof(
  // Whole multiples of 64 pages make equal gaps (and so QEMU's list-order tie-break) common; odd
  // sizes leave gaps that are almost, but not quite, big enough.
  {
    weight: 3,
    arbitrary: fc.record({ t: fc.constant('add' as const), pages: fc.constantFrom(64, 128, 192, 256) }),
  },
  {
    weight: 1,
    arbitrary: fc.record({ t: fc.constant('add' as const), pages: fc.integer({ min: 1, max: 200 }) }),
  },
  { weight: 2, arbitrary: fc.record({ t: fc.constant('free' as const), pick: fc.nat(1000) }) },
);

describe('RAM list placement (QEMU find_ram_offset, ram_block_add)', () => {
  it('places every block where the naive rule does, through adds and frees', () => {
    fc.assert(
      fc.property(fc.array(opArb, { minLength: 1, maxLength: 60, size: 'max' }), (ops) => {
        const list = new RAMList();
        const ref: { offset: number; maxLength: number; block: RAMBlock }[] = [];
        for (const op of ops) {
          if (op.t === 'add') {
            const block = new RAMBlock(op.pages * HOST_PAGE_SIZE);
            const want = naiveOffset(ref, block.maxLength);
            list.add(block);
            assert.equal(block.offset, want);
            // ram_block_add: before the first block with a smaller max length.
            let i = ref.findIndex((r) => r.maxLength < block.maxLength);
            if (i < 0) i = ref.length;
            ref.splice(i, 0, { offset: block.offset, maxLength: block.maxLength, block });
          } else if (ref.length > 0) {
            const [gone] = ref.splice(op.pick % ref.length, 1);
            list.remove(gone!.block);
          }
          assert.deepEqual(
            list.blocks,
            ref.map((r) => r.block),
          );
        }
      }),
      { numRuns: 300, seed: 20261203 },
    );
  });

  it('places 20,000 equal blocks one after another, 64 pages apart', () => {
    // Every gap between them is 0 and the one after the last is open-ended, so each new block goes
    // after the last (by hand: block i at i * 64 pages).
    const list = new RAMList();
    const blocks: RAMBlock[] = [];
    for (let i = 0; i < 20_000; i++) {
      const b = new RAMBlock(HOST_PAGE_SIZE);
      list.add(b);
      blocks.push(b);
    }
    for (let i = 0; i < blocks.length; i++) assert.equal(blocks[i]!.offset, i * ALIGN);
    // Freeing one in the middle opens the only gap that fits a 64-page block.
    list.remove(blocks[5000]!);
    const b = new RAMBlock(ALIGN);
    list.add(b);
    assert.equal(b.offset, 5000 * ALIGN);
  });
});
