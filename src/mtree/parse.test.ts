/**
 * @module mtree/parse.test
 * The dump readers: line formats of spec 13.2/13.5, names read from both ends (R14.2), and errors
 * that name the source, line number and line.
 */

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ParseError, parseFlatText, parseMtreeText } from './parse.js';

const TREE = `address-space: cpu-memory-0
address-space: memory
  0000000000000000-ffffffffffffffff (prio 0, i/o): system
    0000000000000000-000000001fffffff (prio 0, ram): alias ram below @4g @my @pc.ram 0000000000000000-000000001fffffff [disabled]
    00000000000a0000-00000000000bffff (prio 1, nv-ram): [weird] name @x
[DETECTED OVERFLOW!]     00000000fffff000-0000000000000fff (prio -3, romd): wrap

memory-region: my @pc.ram
  0000000000000000-000000001fffffff (prio 0, ram): my @pc.ram

`;

test('a tree dump: groups, levels, types, flags and names with spaces, brackets and @', () => {
  const d = parseMtreeText(TREE, 'tree.txt');
  assert.equal(d.blocks.length, 2);
  const [g, s] = d.blocks;
  assert.deepEqual(g!.names, ['cpu-memory-0', 'memory']);
  assert.equal(s!.kind, 'memory-region');
  const sys = g!.root!;
  assert.equal(sys.line.name, 'system');
  assert.equal(sys.line.start, 0n);
  assert.equal(sys.line.end, 2n ** 64n - 1n);
  const [alias, weird, wrap] = sys.children;
  // The alias target is the longest right part after " @" that names a known region.
  assert.equal(alias!.line.name, 'ram below @4g');
  assert.deepEqual(alias!.line.alias, { target: 'my @pc.ram', offset: 0n, offsetEnd: 0x1fffffffn });
  assert.equal(alias!.line.disabled, true);
  assert.equal(d.hasDisabled, true);
  assert.equal(weird!.line.name, '[weird] name @x');
  assert.equal(weird!.line.nonvolatile, true);
  assert.equal(weird!.line.priority, 1);
  assert.equal(wrap!.line.overflow, 1);
  assert.equal(wrap!.line.type, 'romd');
  assert.equal(wrap!.line.priority, -3);
});

test('without -D, children of a hidden top region are kept at level 2', () => {
  const d = parseMtreeText(
    'memory-region: smram\n    00000000000a0000-00000000000bffff (prio 0, ram): alias smram-low @pc.ram 00000000000a0000-00000000000bffff\n\nmemory-region: pc.ram\n  0000000000000000-000000001fffffff (prio 0, ram): pc.ram\n\n',
  );
  assert.equal(d.blocks[0]!.root, null);
  assert.equal(d.blocks[0]!.hiddenTop.length, 1);
  assert.equal(d.blocks[0]!.hiddenTop[0]!.line.level, 2);
});

test('a malformed line is a ParseError naming source, line number and line', () => {
  const bad =
    'address-space: memory\n  0000000000000000-ffffffffffffffff (prio 0, i/o): system\n    00000000000a0000 (prio 1, ram): broken\n';
  assert.throws(
    () => parseMtreeText(bad, 'dump.txt'),
    (e: unknown) =>
      e instanceof ParseError &&
      e.code === 'ERR_PARSE' &&
      e.line === 3 &&
      e.message.includes('dump.txt:3') &&
      e.message.includes('broken'),
  );
  assert.throws(
    () => parseMtreeText('  0000000000000000-0000000000000fff (prio 0, i/o): x\n', 's'),
    /s:1: region line outside/,
  );
  assert.throws(
    () => parseMtreeText('address-space: a\n   0000000000000000-0000000000000fff (prio 0, i/o): x\n', 's'),
    /s:2: indentation/,
  );
});

test('a flat dump: AS lines, root alias, offsets, empty views and the Dispatch subsection', () => {
  const f = parseFlatText(
    [
      'FlatView #0',
      ' AS "memory", root: system',
      ' AS "dev as", root: bus master, alias system',
      ' Root memory region: system',
      '  0000000000000000-00000000000bffff (prio 0, ram): pc.ram',
      '  00000000000e0000-00000000000fffff (prio 0, rom): pc.bios @0000000000020000',
      '  Dispatch',
      '    Physical sections',
      '      #0 @0000000000000000..ffffffffffffffff (noname) [unassigned]',
      '',
      'FlatView #1',
      ' AS "I/O", root: bus master container',
      ' Root memory region: (none)',
      '  No rendered FlatView',
      '',
    ].join('\n'),
    'flat.txt',
  );
  assert.equal(f.views.length, 2);
  const [v0, v1] = f.views;
  assert.deepEqual(v0!.spaces[1], { name: 'dev as', root: 'bus master', rootAlias: 'system' });
  assert.equal(v0!.ranges[1]!.name, 'pc.bios');
  assert.equal(v0!.ranges[1]!.offset, 0x20000n);
  assert.equal(v0!.dispatch.length, 3);
  assert.equal(v1!.root, null);
  assert.equal(v1!.ranges.length, 0);
  assert.throws(() => parseFlatText('FlatView #0\n AS "x", root: y\n  garbage\n', 'f'), /f:3: /);
});
