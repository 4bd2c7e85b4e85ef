/**
 * @module test/qmp-live-machines
 * `memtree qmp SOCK flat|mtree -D|lookup` against live QEMU 7.2 (this machine's Debian 12 packages)
 * and QEMU 10.0 (Debian 13, in the chroot made by scripts/make-debian-chroot.sh, default
 * /var/tmp/memtree-trixie or $MEMTREE_TRIXIE_CHROOT), on the machines whose flat view memtree used
 * to get wrong (PowerPC `mac99`, Aspeed `ast2600-evb`, Nuvoton `npcm750-evb`) and a PC. Each must
 * equal QEMU's own `info mtree -f` / `-D` canonically, with no warning. Without a QEMU the tests
 * skip; under CI they fail.
 */

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { compareMtreeText } from '../src/mtree/compare.js';
import { startQemu } from '../src/qmp/capture.js';
import { qemuCommand } from './support/qemu-command.js';
import { runCli } from './support/run-cli.js';

const LIVE = { timeout: 120_000 };

const MACHINES: Array<[string, string[]]> = [
  ['x86_64', ['-M', 'pc', '-m', '512M']],
  ['ppc', ['-M', 'mac99']],
  ['ppc64', ['-M', 'mac99']],
  ['arm', ['-M', 'ast2600-evb']],
  ['arm', ['-M', 'npcm750-evb']],
];

for (const version of ['7.2', '10.0'] as const) {
  for (const [bin, args] of MACHINES) {
    const name = `QEMU ${version} ${bin} ${args.join(' ')}`;
    test(`${name}: memtree qmp flat / mtree -D / lookup equal QEMU's own answers`, LIVE, async (t) => {
      const cmd = qemuCommand(t, version, bin);
      if (!cmd) return;
      // -S and -display none given explicitly: with `chroot` as the program, capture cannot add them.
      const q = await startQemu([...cmd, '-S', '-display', 'none', '-nodefaults', ...args]);
      t.after(() => q.dispose());
      const qemuFlat = await q.client.hmp('info mtree -f');
      const qemuTree = await q.client.hmp('info mtree -D');
      await q.client.close();
      const flat = await runCli(['qmp', q.socketPath, 'flat']);
      assert.equal(flat.code, 0, flat.err);
      assert.equal(flat.err, '', 'no warning: the rebuild reproduces QEMU');
      const f = compareMtreeText(flat.out, qemuFlat);
      assert.ok(f.equal, `flat: ${f.firstDifference}`);
      const tree = await runCli(['qmp', q.socketPath, 'mtree', '-D']);
      assert.equal(tree.code, 0, tree.err);
      const m = compareMtreeText(tree.out, qemuTree);
      assert.ok(m.equal, `mtree -D: ${m.firstDifference}`);
      // Every range of the system memory view: lookup names QEMU's region for its first byte.
      const block = qemuFlat.split('\n\n').find((b) => b.includes(' AS "memory",'));
      assert.ok(block, 'QEMU has an address space "memory"');
      const lines = block.split('\n').filter((l) => /^ {2}[0-9a-f]{16}-/.test(l));
      for (const l of lines.slice(0, 40)) {
        const addr = `0x${l.slice(2, 18)}`;
        const r = await runCli(['qmp', q.socketPath, 'lookup', addr, '--as', 'memory']);
        assert.equal(r.code, 0, r.err);
        assert.ok(r.out.includes(`range   ${l.trim()}`), `lookup ${addr}: expected ${l.trim()} in\n${r.out}`);
      }
      await q.quit();
    });
  }
}
