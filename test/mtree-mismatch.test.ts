/**
 * @module test/mtree-mismatch
 * When the rebuilt regions cannot reproduce the flat dump the user gave, memtree says so in one
 * stderr line, prints QEMU's flat view rather than its own, and answers `lookup` from QEMU's flat
 * view with the tree path marked uncertain.
 */

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { runCli } from './support/run-cli.js';

// A tree whose two RAM regions cannot render what this flat dump shows (a device the tree lacks).
const TREE =
  'address-space: memory\n  0000000000000000-000000000000ffff (prio 0, i/o): system\n    0000000000000000-0000000000000fff (prio 0, ram): ram0\n    0000000000008000-0000000000008fff (prio 0, ram): ram1\n\n';
const FLAT =
  'FlatView #0\n AS "memory", root: system\n Root memory region: system\n  0000000000000000-0000000000000fff (prio 0, ram): ram0\n  0000000000002000-0000000000002fff (prio 0, i/o): mystery-device\n  0000000000008000-0000000000008fff (prio 0, ram): ram1\n\n';
const files = { 'tree.txt': TREE, 'flat.txt': FLAT };

test("flat: a rebuild that differs from the given flat dump prints QEMU's view and one warning line", async () => {
  const r = await runCli(['flat', 'tree.txt', '--flat', 'flat.txt'], files);
  assert.equal(r.code, 0, r.err);
  assert.equal(r.out, FLAT);
  const lines = r.err.trimEnd().split('\n');
  assert.equal(lines.length, 1, r.err);
  assert.match(lines[0]!, /AS "memory".*0000000000002000-0000000000002fff \(prio 0, i\/o\): mystery-device/);
});

test("lookup: answered from QEMU's flat view, path marked uncertain", async () => {
  const r = await runCli(['lookup', 'tree.txt', '0x2004', '--flat', 'flat.txt'], files);
  assert.equal(r.code, 0, r.err);
  assert.match(r.out, /range {3}0000000000002000-0000000000002fff \(prio 0, i\/o\): mystery-device/);
  assert.match(r.out, /region {2}mystery-device, offset 0x4/);
  assert.match(r.out, /path {4}uncertain/);
  const j = await runCli(['lookup', 'tree.txt', '0x2004', '--flat', 'flat.txt', '--json'], files);
  const data = JSON.parse(j.out);
  assert.equal(data.answers[0].region, 'mystery-device');
  assert.equal(data.answers[0].pathUncertain, true);
});

test('a rebuild that reproduces the flat dump prints no warning', async () => {
  const ok = FLAT.replace('  0000000000002000-0000000000002fff (prio 0, i/o): mystery-device\n', '');
  const r = await runCli(['flat', 'tree.txt', '--flat', 'flat.txt'], { ...files, 'flat.txt': ok });
  assert.equal(r.code, 0);
  assert.equal(r.err, '');
  assert.equal(r.out, ok);
});

// Issue #11: input-controlled depth and alias loops end in one error line, never a stack overflow.
const deep = (n: number) => {
  const lines = ['address-space: memory', '  0000000000000000-000000000000ffff (prio 0, i/o): system'];
  for (let i = 0; i < n; i++)
    lines.push(`${'  '.repeat(i + 2)}0000000000000000-000000000000ffff (prio 0, i/o): c${i}`);
  lines.push(`${'  '.repeat(n + 2)}0000000000000000-0000000000000fff (prio 0, ram): ram0`);
  lines.push(`${'  '.repeat(n + 2)}0000000000002000-0000000000002fff (prio 0, ram): ram1`);
  return `${lines.join('\n')}\n\n`;
};

test('a dump nested 5,000 levels deep is read, printed and looked up without recursion', async () => {
  const tree = deep(5000);
  const flat =
    'FlatView #0\n AS "memory", root: system\n Root memory region: c4999\n  0000000000000000-0000000000000fff (prio 0, ram): ram0\n  0000000000002000-0000000000002fff (prio 0, ram): ram1\n\n';
  const f = { 'deep.txt': tree, 'flat.txt': flat };
  const r = await runCli(['flat', 'deep.txt', '--flat', 'flat.txt'], f);
  assert.equal(r.code, 0, r.err);
  assert.equal(r.err, '');
  assert.equal(r.out, flat);
  const m = await runCli(['mtree', 'deep.txt'], f);
  assert.equal(m.code, 0, m.err);
  assert.equal(m.out, tree);
  const l = await runCli(['lookup', 'deep.txt', '0x2010', '--json'], f);
  assert.equal(l.code, 0, l.err);
  const path = JSON.parse(l.out).answers[0].path;
  assert.equal(path.length, 5002);
  assert.equal(path[5001].region, 'ram1');
});

test('an alias that maps its own container into itself, with --flat: one error line, exit 1', async () => {
  const w = '0000000000008000-0000000000008fff';
  const sys = `  0000000000000000-000000000000ffff (prio 0, i/o): system\n    0000000000000000-0000000000000fff (prio 0, ram): ram0\n    ${w} (prio 0, i/o): alias loop @system ${w}\n`;
  const tree = `address-space: memory\n${sys}\nmemory-region: system\n${sys}\n`;
  const flat =
    'FlatView #0\n AS "memory", root: system\n Root memory region: system\n  0000000000000000-0000000000000fff (prio 0, ram): ram0\n\n';
  const r = await runCli(['flat', 'loop.txt', '--flat', 'flat.txt'], { 'loop.txt': tree, 'flat.txt': flat });
  assert.equal(r.code, 1);
  assert.equal(r.out, '');
  assert.equal(r.err.trimEnd().split('\n').length, 1, r.err);
  assert.match(r.err, /loop/);
});
