/**
 * @module test/run-serve
 * `memtree run riscv-virt --serve PORT`: the viewer's live API on a guest that keeps running. The
 * guest (bare metal, assembled here) spins on the UART's line status register; for each byte it
 * receives it writes one doubleword into each of the five pages at 0x80200000..0x80204fff, prints
 * `D` and spins again. So between two readings the dirty pages are known by hand: none while it
 * spins, exactly those five after a byte. Needs the built CLI and page, and Debian's
 * binutils-riscv64-linux-gnu (skipped without them, failing under CI).
 */

import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { attachViewer } from '../src/cli/commands/run-serve.js';
import { DIRTY_MEMORY_MIGRATION, DIRTY_MEMORY_VGA } from '../src/core/index.js';
import { asmSkip, assemble } from '../src/machines/riscv/cpu/test-support/asm.js';
import { buildRiscvVirt } from '../src/machines/riscv/virt.js';
import { oneLineError, requireBuiltCli, runBin } from './support/run-bin.js';
import { startMachine, until } from './support/run-machine.js';

const GUEST = `
  .globl _start
_start:
  li s2, 0x10000000
wait:
  lbu t0, 5(s2)
  andi t0, t0, 1
  beqz t0, wait
  lbu t0, 0(s2)
  li t1, 0x80200000
  li t2, 0x80205000
  li t3, 4096
fill:
  sd t0, 16(t1)
  add t1, t1, t3
  bltu t1, t2, fill
  li t0, 68
  sb t0, 0(s2)
  li t0, 10
  sb t0, 0(s2)
  j wait
`;

interface DirtyRegion {
  region: string;
  size: string;
  pages: number;
  runs: [string, string][];
  truncated: boolean;
}

interface Reading {
  label: string;
  mtree: string;
  flat: string;
  pageSize: number;
  instructions: number;
  dirty: DirtyRegion[];
}

function dirtyOf(r: Reading): Record<string, { pages: number; runs: [string, string][] }> {
  return Object.fromEntries(r.dirty.map((d) => [d.region, { pages: d.pages, runs: d.runs }]));
}

describe('memtree run --serve', { skip: asmSkip() }, () => {
  it('shows the running guest and, per RAM block, the pages written since the last reading', async (t) => {
    requireBuiltCli();
    const dir = mkdtempSync(join(tmpdir(), 'memtree-runserve-'));
    t.after(() => rmSync(dir, { recursive: true, force: true }));
    const prog = join(dir, 'guest.bin');
    writeFileSync(prog, assemble(GUEST));
    const run = startMachine(t, ['-m', '64M', '--bios', prog, '--serve', '0'], { input: true });
    await until('the viewer URL', () => /viewer on (http:\S+)/.test(run.err), run);
    const url = /viewer on (http:\S+)/.exec(run.err)![1]!;
    assert.match(url, /^http:\/\/127\.0\.0\.1:\d+\/$/, 'loopback by default');
    const get = async (path: string) => {
      const res = await fetch(new URL(path, url), { headers: { 'x-memtree-live': '1' } });
      assert.equal(res.status, 200, `${path}: HTTP ${res.status}`);
      return res;
    };
    const list = (await (await get('api/dumps')).json()) as { live: { label: string } | null };
    assert.match(list.live?.label ?? '', /riscv-virt, 64 MiB, 1 hart/);
    assert.match(await (await get('')).text(), /memtree/);
    const read = async () => (await (await get('api/live')).json()) as Reading;

    // First reading: QEMU's ram_block_add marks a new block dirty for every client, so every page
    // of every RAM block counts as written since the machine was built.
    const r1 = await read();
    assert.equal(r1.pageSize, 4096);
    assert.deepEqual(dirtyOf(r1), {
      'riscv_virt_board.ram': { pages: 0x4000, runs: [['0x0', '0x4000000']] },
      'riscv_virt_board.mrom': { pages: 15, runs: [['0x0', '0xf000']] },
      'virt.flash0': { pages: 0x2000, runs: [['0x0', '0x2000000']] },
      'virt.flash1': { pages: 0x2000, runs: [['0x0', '0x2000000']] },
    });
    // The machine as QEMU prints it: RAM at 0x80000000 for -m 64M, the disabled bus-master alias.
    assert.match(r1.flat, /^ {2}0000000080000000-0000000083ffffff \(prio 0, ram\): riscv_virt_board\.ram$/m);
    assert.match(r1.mtree, /^address-space: memory$/m);
    assert.match(r1.mtree, /alias bus master @system 0000000000000000-ffffffffffffffff \[disabled\]$/m);

    // The guest spins on the UART and writes nothing; it keeps running while the server answers.
    const r2 = await read();
    const clean = {
      'riscv_virt_board.ram': { pages: 0, runs: [] },
      'riscv_virt_board.mrom': { pages: 0, runs: [] },
      'virt.flash0': { pages: 0, runs: [] },
      'virt.flash1': { pages: 0, runs: [] },
    };
    assert.deepEqual(dirtyOf(r2), clean);
    let r3 = await read();
    for (let i = 0; r3.instructions === r2.instructions && i < 500; i++) r3 = await read();
    assert.ok(r3.instructions > r2.instructions, `the guest ran on: ${r3.instructions} > ${r2.instructions}`);
    assert.deepEqual(dirtyOf(r3), clean);

    // One byte in: five doublewords, one per page at RAM offsets 0x200000..0x204fff.
    run.proc.stdin!.write('x');
    await until('the guest to print D', () => run.out.includes('D\n'), run);
    // A request without the viewer's header (what another site's page could send) is refused and
    // clears nothing: the reading after it still shows the pages.
    const blind = await fetch(new URL('api/live', url));
    assert.equal(blind.status, 403);
    assert.match(((await blind.json()) as { error: string }).error, /x-memtree-live: 1/);
    const r4 = await read();
    assert.deepEqual(dirtyOf(r4), {
      ...clean,
      'riscv_virt_board.ram': { pages: 5, runs: [['0x200000', '0x205000']] },
    });
    assert.deepEqual(dirtyOf(await read()), clean);
    // Again: pages written before and cleared by a reading are caught when written once more.
    run.proc.stdin!.write('y');
    await until('the guest to print D again', () => run.out === 'D\nD\n', run);
    assert.deepEqual(dirtyOf(await read()), {
      ...clean,
      'riscv_virt_board.ram': { pages: 5, runs: [['0x200000', '0x205000']] },
    });
    assert.equal(run.proc.exitCode, null, 'the guest still runs');
  });

  it('refuses a bad --serve and a port in use with one line', async (t) => {
    const bad = await runBin(['run', 'riscv-virt', '--bios', 'none', '--serve', 'localhost']);
    assert.equal(oneLineError(bad, 2), undefined);
    assert.match(bad.err, /--serve wants \[HOST:\]PORT/);
    const taken = createServer();
    await new Promise<void>((ok) => taken.listen(0, '127.0.0.1', ok));
    t.after(() => taken.close());
    const port = (taken.address() as AddressInfo).port;
    const busy = await runBin(['run', 'riscv-virt', '--bios', 'none', '--serve', `127.0.0.1:${port}`]);
    assert.equal(oneLineError(busy, 1), undefined);
    assert.match(busy.err, /cannot listen on 127\.0\.0\.1:\d+/);
  });
});

describe('memtree run --serve beside live migration', () => {
  it("reads and clears its own dirty bits only: migration's stay set", async (t) => {
    requireBuiltCli(); // the server hands out the built page
    const m = buildRiscvVirt({ ramSize: 16 * 2 ** 20 });
    const ms = m.ms;
    const viewer = await attachViewer(m, '0');
    t.after(() => viewer.close());
    const size = Number(m.ram.size);
    const read = async () =>
      (await (
        await fetch(new URL('api/live', viewer.url), { headers: { 'x-memtree-live': '1' } })
      ).json()) as Reading;
    ms.globalDirtyLogStart(); // as migration does: the MIGRATION client now logs RAM
    await read(); // the viewer's first reading clears its bits
    ms.resetDirty(m.ram, 0, size, DIRTY_MEMORY_MIGRATION); // and migration's first pass its own
    m.memory.stqLe(0x80003008, 1n); // RAM page 3
    assert.deepEqual(dirtyOf(await read())['riscv_virt_board.ram'], {
      pages: 1,
      runs: [['0x3000', '0x4000']],
    });
    // The reading cleared VGA's bit of page 3, not MIGRATION's: migration still sends the page.
    const snap = ms.snapshotAndClearDirty(m.ram, 0, size, DIRTY_MEMORY_MIGRATION);
    assert.equal(ms.snapshotGetDirty(m.ram, snap, 0x3000, 0x1000), true);
    assert.equal(ms.snapshotGetDirty(m.ram, snap, 0x4000, size - 0x4000), false);
    ms.globalDirtyLogStop();
    // Closing the viewer turns its logging off again.
    await viewer.close();
    assert.equal(m.ram.dirtyLogMask & (1 << DIRTY_MEMORY_VGA), 0);
  });
});
