/**
 * @module mtree/compare.test
 * Canonical comparison: QEMU's hash order (blocks, FlatView numbers) and the order of a view's AS
 * lines are free; every other byte counts.
 */

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { compareMtreeText } from './compare.js';

const A = `FlatView #0
 AS "memory", root: system
 AS "cpu-memory-0", root: system
 Root memory region: system
  0000000000000000-000000001fffffff (prio 0, ram): pc.ram

FlatView #1
 AS "I/O", root: io
 Root memory region: io
  0000000000000000-000000000000ffff (prio 0, i/o): io

`;

const B = `FlatView #0
 AS "I/O", root: io
 Root memory region: io
  0000000000000000-000000000000ffff (prio 0, i/o): io

FlatView #7
 AS "cpu-memory-0", root: system
 AS "memory", root: system
 Root memory region: system
  0000000000000000-000000001fffffff (prio 0, ram): pc.ram

`;

test('reordered blocks, renumbered views and reordered AS lines are equal', () => {
  assert.deepEqual(compareMtreeText(A, B), { equal: true });
  const t1 =
    'address-space: a\n  0000000000000000-0000000000000fff (prio 0, i/o): x\n\nmemory-region: x\n  0000000000000000-0000000000000fff (prio 0, i/o): x\n\n';
  const t2 =
    'memory-region: x\n  0000000000000000-0000000000000fff (prio 0, i/o): x\n\naddress-space: a\n  0000000000000000-0000000000000fff (prio 0, i/o): x\n\n';
  assert.equal(compareMtreeText(t1, t2).equal, true);
});

test('a changed line is a difference, reported with both versions of the line', () => {
  const changed = A.replace('(prio 0, ram): pc.ram', '(prio 0, rom): pc.ram');
  const r = compareMtreeText(A, changed);
  assert.equal(r.equal, false);
  assert.match(r.firstDifference!, /only in A/);
  assert.match(r.firstDifference!, /A: {3}0000000000000000-000000001fffffff \(prio 0, ram\): pc.ram/);
  assert.match(r.firstDifference!, /B: {3}0000000000000000-000000001fffffff \(prio 0, rom\): pc.ram/);
});

test('blocks are a multiset: a duplicated block is a difference', () => {
  const t = 'memory-region: x\n  0000000000000000-0000000000000fff (prio 0, i/o): x\n\n';
  assert.equal(compareMtreeText(t, t + t).equal, false);
  // Lines inside a tree block are not reordered.
  const a =
    'address-space: a\n  0000000000000000-0000000000000fff (prio 0, i/o): x\n    0000000000000000-0000000000000000 (prio 0, i/o): p\n    0000000000000001-0000000000000001 (prio 0, i/o): q\n\n';
  const b =
    'address-space: a\n  0000000000000000-0000000000000fff (prio 0, i/o): x\n    0000000000000001-0000000000000001 (prio 0, i/o): q\n    0000000000000000-0000000000000000 (prio 0, i/o): p\n\n';
  assert.equal(compareMtreeText(a, b).equal, false);
});
