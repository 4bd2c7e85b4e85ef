/**
 * @module test/riscv-virt-mtree
 * memtree's riscv64 `virt` machine (src/machines/riscv/virt.ts) against QEMU itself, 7.2 and 10.0: for
 * several `-m` / `-smp` combinations, QEMU is started (`-S -nodefaults`) and its `info mtree -f`,
 * `info mtree`, `info mtree -D`, `info mtree -f -d` and `info ramblock` must equal what memtree's
 * printers give for the machine memtree builds, compared canonically (QEMU prints blocks in
 * hash-table order). QEMU 10.0's machine has the same regions and adds ACPI ROM blobs as RAM
 * blocks. Needs qemu-system-riscv64 (Debian: qemu-system-misc) and the QEMU 10.0 chroot
 * (test/support/qemu-command.ts); without them the live tests skip, except under CI, where they fail. The shared fixture recorded with QEMU 7.2 is
 * checked without QEMU.
 */

import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { test } from 'node:test';
import { buildRiscvVirt } from '../src/machines/riscv/virt.js';
import { compareMtreeText } from '../src/mtree/compare.js';
import { formatFlat, formatMtree } from '../src/mtree/print.js';
import { formatRamblock } from '../src/mtree/ramblock.js';
import { startQemu } from '../src/qmp/capture.js';
import { qemuCommand } from './support/qemu-command.js';

const FIXTURE = '../shared/fixtures/qemu-7.2/riscv64-virt';
const MiB = 1024 * 1024;

function same(ours: string, qemus: string, what: string): void {
  const r = compareMtreeText(ours, qemus);
  assert.ok(r.equal, `${what} differs from QEMU's:\n${r.firstDifference}`);
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

/** `info ramblock` rows as block name → "offset used total". */
function ramblockRows(text: string): Map<string, string> {
  const rows = new Map<string, string>();
  for (const l of text.split(/\r?\n/).slice(1)) {
    const f = l.trim().split(/\s+/);
    if (f.length >= 6) rows.set(f[0]!, f.slice(3, 6).join(' '));
  }
  return rows;
}

const CONFIGS: Array<{ m: string; bytes: number; smp: number }> = [
  { m: '128M', bytes: 128 * MiB, smp: 1 },
  { m: '3G', bytes: 3072 * MiB, smp: 2 },
  { m: '100M', bytes: 100 * MiB, smp: 3 },
  { m: '16G', bytes: 16384 * MiB, smp: 4 },
];

for (const version of ['7.2', '10.0'] as const) {
  for (const c of CONFIGS) {
    test(`live QEMU ${version} -M virt -m ${c.m} -smp ${c.smp}: memtree's machine prints the same maps${version === '7.2' ? ' and RAM blocks' : ''}`, {
      timeout: 120_000,
    }, async (t) => {
      const cmd = qemuCommand(t, version, 'riscv64');
      if (!cmd) return;
      const q = await startQemu([
        ...cmd,
        '-S',
        '-display',
        'none',
        '-nodefaults',
        '-M',
        'virt',
        '-m',
        c.m,
        '-smp',
        String(c.smp),
      ]);
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
      if (version === '7.2') {
        assert.equal(formatRamblock(m.ms), ramblock.replace(/\r\n/g, '\n'), 'info ramblock');
      } else {
        // QEMU 10.0's virt builds ACPI tables by default: their fw_cfg ROM blobs (`/rom@etc/...`) are
        // RAM blocks that no address space maps (so the maps above agree), and its `info ramblock`
        // adds host-address columns. memtree builds 7.2's machine: every block it has must be
        // QEMU 10.0's at the same offset and length, and QEMU's other blocks are those ROM blobs.
        const ours = ramblockRows(formatRamblock(m.ms));
        const theirs = ramblockRows(ramblock);
        for (const [name, place] of ours) assert.equal(theirs.get(name), place, `RAM block ${name}`);
        const extra = [...theirs.keys()].filter((n) => !ours.has(n));
        assert.ok(extra.length > 0 && extra.every((n) => n.startsWith('/rom@etc/')), `extra blocks ${extra}`);
      }
    });
  }
}
