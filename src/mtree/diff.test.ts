/**
 * @module mtree/diff.test
 * Per-address-space differences between two flat dumps.
 */

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { diffFlatDumps, formatDiff } from './diff.js';
import { parseFlatText } from './parse.js';

const before = `FlatView #0
 AS "memory", root: system
 AS "cpu-memory-0", root: system
 Root memory region: system
  0000000000000000-00000000000bffff (prio 0, ram): pc.ram
  00000000000c0000-00000000000dffff (prio 1, rom): pc.rom
  00000000fec00000-00000000fec00fff (prio 0, i/o): ioapic

FlatView #1
 AS "I/O", root: io
 Root memory region: io
  0000000000000000-000000000000ffff (prio 0, i/o): io

`;

// PAM switched to RAM at 0xc0000 (same extent, other region), the IOAPIC unmapped, an HPET mapped.
const after = `FlatView #3
 AS "I/O", root: io
 Root memory region: io
  0000000000000000-000000000000ffff (prio 0, i/o): io

FlatView #4
 AS "cpu-memory-0", root: system
 AS "memory", root: system
 Root memory region: system
  0000000000000000-00000000000bffff (prio 0, ram): pc.ram
  00000000000c0000-00000000000dffff (prio 0, ram): pc.ram @00000000000c0000
  00000000fed00000-00000000fed003ff (prio 0, i/o): hpet

`;

test('changed, removed and added ranges, with identical address spaces reported together', () => {
  const d = diffFlatDumps(parseFlatText(before), parseFlatText(after));
  assert.equal(d.length, 1);
  assert.deepEqual(d[0]!.spaces, ['memory', 'cpu-memory-0']);
  assert.deepEqual(
    d[0]!.changes.map((c) => [c.kind, c.start]),
    [
      ['changed', 0xc0000n],
      ['removed', 0xfec00000n],
      ['added', 0xfed00000n],
    ],
  );
  assert.equal(d[0]!.changes[0]!.before, '(prio 1, rom): pc.rom');
  assert.equal(d[0]!.changes[0]!.after, '(prio 0, ram): pc.ram @00000000000c0000');
  const text = formatDiff(d);
  assert.match(text, /address spaces "memory", "cpu-memory-0":/);
  assert.match(text, /- 00000000fec00000-00000000fec00fff \(prio 0, i\/o\): ioapic/);
});

test('no difference gives an empty list; an address space on one side only is reported', () => {
  assert.deepEqual(diffFlatDumps(parseFlatText(before), parseFlatText(before)), []);
  const noIo = before.slice(0, before.indexOf('FlatView #1'));
  const d = diffFlatDumps(parseFlatText(before), parseFlatText(noIo));
  assert.equal(d.length, 1);
  assert.equal(d[0]!.onlyIn, 'A');
  assert.deepEqual(d[0]!.spaces, ['I/O']);
});
