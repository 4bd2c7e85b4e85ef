/**
 * @module test/mtree-cli
 * Exit codes and streams of the dump-based commands (flat, mtree, lookup, diff, compare): data on
 * stdout, errors on stderr, 0 on success, 1 for user errors (bad dump, missing file, different
 * dumps for compare), 2 for usage errors. Files are served by a fake CliIo.
 */

import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { runCli } from './support/run-cli.js';

const PC = '../shared/fixtures/qemu-7.2/pc-512m';
const files: Record<string, string> = {
  'tree.txt': readFileSync(`${PC}/mtree-D.txt`, 'utf8'),
  'flat.txt': readFileSync(`${PC}/flat.txt`, 'utf8'),
  'bad.txt': 'address-space: memory\n  0000000000000000-ffffffffffffffff (prio 0, i/o): system\n    zzz\n',
};

const run = (args: string[], stdin = '') => runCli(args, files, stdin);

test('flat: success on stdout, a bad dump is exit 1 naming the line, bad options exit 2', async () => {
  const ok = await run(['flat', 'tree.txt', '--flat', 'flat.txt']);
  assert.equal(ok.code, 0);
  assert.match(ok.out, /^FlatView #0\n/);
  const bad = await run(['flat', 'bad.txt']);
  assert.equal(bad.code, 1);
  assert.match(bad.err, /bad\.txt:3: /);
  assert.equal(bad.out, '');
  assert.equal((await run(['flat', 'nope.txt'])).code, 1);
  assert.equal((await run(['flat', 'tree.txt', '--bogus'])).code, 2);
  assert.equal((await run(['flat'])).code, 2);
  // An `info mtree -f` dump given as DUMP is a user error, not a crash.
  assert.equal((await run(['flat', 'flat.txt'])).code, 1);
  const json = await run(['flat', 'tree.txt', '--json']);
  assert.equal(json.code, 0);
  assert.ok(Array.isArray(JSON.parse(json.out).views));
});

test('mtree: -D prints disabled regions, the dump can come from stdin', async () => {
  const d = await run(['mtree', '-', '-D'], files['tree.txt']);
  assert.equal(d.code, 0);
  assert.match(d.out, /alias pam-ram @pc\.ram 00000000000c0000-00000000000c3fff \[disabled\]/);
  const nd = await run(['mtree', 'tree.txt']);
  assert.doesNotMatch(nd.out, /\[disabled\]/);
});

test('lookup: the reset vector of a PC is pc.bios through isa-bios (flat.txt line 96 says so)', async () => {
  const r = await run(['lookup', 'tree.txt', '0xffff0', '--as', 'memory', '--flat', 'flat.txt']);
  assert.equal(r.code, 0, r.err);
  // isa-bios maps pc.bios [0x20000, 0x40000) at 0xe0000, so 0xffff0 is pc.bios offset 0x3fff0.
  assert.match(
    r.out,
    /range {3}00000000000e0000-00000000000fffff \(prio 0, rom\): pc\.bios @0000000000020000/,
  );
  assert.match(r.out, /region {2}pc\.bios, offset 0x3fff0/);
  assert.match(r.out, /alias isa-bios -> pc\.bios @0x20000/);
  assert.equal((await run(['lookup', 'tree.txt', 'xyz'])).code, 2);
  assert.equal((await run(['lookup', 'tree.txt', '0x0', '--as', 'no such'])).code, 1);
  const j = JSON.parse((await run(['lookup', 'tree.txt', '0xffff0', '--as', 'memory', '--json'])).out);
  assert.equal(j.answers[0].offset, '0x3fff0');
});

test('compare: 0 when equal, 1 with the first difference when not, 2 on usage errors', async () => {
  assert.equal((await run(['compare', 'flat.txt', 'flat.txt'])).code, 0);
  const changed = files['flat.txt']!.replace('pc.rom', 'pc.rum');
  const r = await run(['compare', 'flat.txt', '-'], changed);
  assert.equal(r.code, 1);
  assert.match(r.out, /pc\.rum/);
  assert.equal((await run(['compare', 'flat.txt'])).code, 2);
});

test('diff: no differences for the same machine, a readable change otherwise', async () => {
  const same = await run(['diff', 'flat.txt', 'flat.txt']);
  assert.equal(same.code, 0);
  assert.equal(same.out, 'no differences\n');
  const changed = files['flat.txt']!.replaceAll('(prio 1, rom): pc.rom', '(prio 1, ram): pc.rom');
  const r = await run(['diff', 'flat.txt', '-'], changed);
  assert.equal(r.code, 0);
  assert.match(
    r.out,
    / ~ 00000000000c0000-00000000000dffff \(prio 1, rom\): pc\.rom\n {6}now \(prio 1, ram\): pc\.rom/,
  );
  assert.equal((await run(['diff', 'flat.txt'])).code, 2);
});
