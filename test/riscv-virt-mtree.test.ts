/**
 * @module test/riscv-virt-mtree
 * memtree's riscv64 `virt` machine (src/machines/riscv/virt.ts) against QEMU 7.2 itself: for several
 * `-m` / `-smp` combinations, QEMU is started (`-S -nodefaults`) and its `info mtree -f`,
 * `info mtree`, `info mtree -D`, `info mtree -f -d` and `info ramblock` must equal what memtree's
 * printers give for the machine memtree builds, compared canonically (QEMU prints blocks in
 * hash-table order). Needs qemu-system-riscv64 (Debian: qemu-system-misc); without it the live
 * tests skip, except under CI, where they fail. The shared fixture recorded with QEMU 7.2 is
 * checked without QEMU.
 */

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { type TestContext, test } from 'node:test';
import { buildRiscvVirt } from '../src/machines/riscv/virt.js';
import { compareMtreeText } from '../src/mtree/compare.js';
import { formatFlat, formatMtree } from '../src/mtree/print.js';
import { formatRamblock } from '../src/mtree/ramblock.js';
import { startQemu } from '../src/qmp/capture.js';

const QEMU = 'qemu-system-riscv64';
const FIXTURE = '../shared/fixtures/qemu-7.2/riscv64-virt';
const MiB = 1024 * 1024;

function same(ours: string, qemus: string, what: string): void {
  const r = compareMtreeText(ours, qemus);
  assert.ok(r.equal, `${what} differs from QEMU's:\n${r.firstDifference}`);
}

function haveQemu(t: TestContext): boolean {
  if (spawnSync(QEMU, ['--version'], { stdio: 'ignore' }).status === 0) return true;
  const why = `${QEMU} is not on PATH (Debian package qemu-system-misc)`;
  if (process.env.CI) assert.fail(`${why}; CI must run the live QEMU tests`);
  t.skip(why);
  return false;
}

test('the recorded QEMU 7.2 riscv64 virt -m 512M fixture: info mtree -f, info mtree, info mtree -D', {
  skip: !existsSync(FIXTURE) && 'no shared fixtures',
}, () => {
  const m = buildRiscvVirt({ ramSize: 512 * MiB });
  const file = (f: string) => readFileSync(`${FIXTURE}/${f}`, 'utf8');
  same(formatFlat(m.ms), file('flat.txt'), 'info mtree -f');
  same(formatMtree(m.ms), file('mtree.txt'), 'info mtree');
  same(formatMtree(m.ms, { disabled: true }), file('mtree-D.txt'), 'info mtree -D');
  same(formatFlat(m.ms, { dispatch: true }), file('flat-d.txt').replace(/ \[MRU\]/g, ''), 'info mtree -f -d');
});

const CONFIGS: Array<{ m: string; bytes: number; smp: number }> = [
  { m: '128M', bytes: 128 * MiB, smp: 1 },
  { m: '3G', bytes: 3072 * MiB, smp: 2 },
  { m: '100M', bytes: 100 * MiB, smp: 3 },
  { m: '16G', bytes: 16384 * MiB, smp: 4 },
];

for (const c of CONFIGS) {
  test(`live QEMU 7.2 -M virt -m ${c.m} -smp ${c.smp}: memtree's machine prints the same maps and RAM blocks`, {
    timeout: 120_000,
  }, async (t) => {
    if (!haveQemu(t)) return;
    const q = await startQemu([QEMU, '-M', 'virt', '-m', c.m, '-smp', String(c.smp), '-nodefaults']);
    t.after(() => q.dispose());
    const flat = await q.client.hmp('info mtree -f');
    const tree = await q.client.hmp('info mtree');
    const treeD = await q.client.hmp('info mtree -D');
    const flatD = await q.client.hmp('info mtree -f -d');
    const ramblock = await q.client.hmp('info ramblock');
    await q.quit();
    const m = buildRiscvVirt({ ramSize: c.bytes, smp: c.smp });
    same(formatFlat(m.ms), flat, 'info mtree -f');
    same(formatMtree(m.ms), tree, 'info mtree');
    same(formatMtree(m.ms, { disabled: true }), treeD, 'info mtree -D');
    same(formatFlat(m.ms, { dispatch: true }), flatD.replace(/ \[MRU\]/g, ''), 'info mtree -f -d');
    assert.equal(formatRamblock(m.ms), ramblock.replace(/\r\n/g, '\n'), 'info ramblock');
  });
}
