/**
 * @module test/run-migrate
 * A running riscv64 guest moves between two `memtree run` processes, driven over QMP as QEMU is.
 * The guest (bare metal, assembled here) counts, writes each value into one of 128 pages, checks
 * the last 128 values in memory every 65536 counts and prints the count in hex on the UART, or
 * `BAD` and a failing power-off if its memory disagrees. The lines the source and then the
 * destination print must be consecutive: no gap, no repeat. Needs the built CLI and Debian's
 * binutils-riscv64-linux-gnu (skipped without them, failing under CI).
 */

import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it, type TestContext } from 'node:test';
import { asmSkip, assemble } from '../src/machines/riscv/cpu/test-support/asm.js';
import { startProxy } from '../src/migration/test-support/proxy.js';
import { QmpClient } from '../src/qmp/client.js';
import { requireBuiltCli } from './support/run-bin.js';
import { startMachine, until, waitMigrateStatus } from './support/run-machine.js';

const GUEST = `
  .globl _start
_start:
  li s0, 0x80100000
  li s1, 0
  li s2, 0x10000000
  li s3, 0xffff
loop:
  andi t0, s1, 127
  slli t0, t0, 12
  add t0, t0, s0
  sd s1, 0(t0)
  addi s1, s1, 1
  and t1, s1, s3
  bnez t1, loop
  addi t2, s1, -128
check:
  andi t0, t2, 127
  slli t0, t0, 12
  add t0, t0, s0
  ld t3, 0(t0)
  bne t3, t2, bad
  addi t2, t2, 1
  bne t2, s1, check
  srli t4, s1, 16
  li t5, 28
digit:
  srl t6, t4, t5
  andi t6, t6, 15
  li a1, 10
  blt t6, a1, 1f
  addi t6, t6, 39
1:
  addi t6, t6, 48
  sb t6, 0(s2)
  addi t5, t5, -4
  bgez t5, digit
  li t6, 10
  sb t6, 0(s2)
  j loop
bad:
  li t6, 66
  sb t6, 0(s2)
  li t6, 10
  sb t6, 0(s2)
  li t0, 0x100000
  li t1, 0x13333
  sw t1, 0(t0)
1:
  j 1b
`;

/** A loopback proxy (the migration tests' own) that cuts both sides after `limit` bytes towards `port`. */
async function cuttingProxy(t: TestContext, port: number, limit: number): Promise<number> {
  const proxy = await startProxy(port, () => ({ forward: { cutAfter: limit } }));
  t.after(() => proxy.close());
  return proxy.port;
}

function assertConsecutive(lines: string[]): void {
  assert.ok(!lines.includes('B'), `the guest found its memory wrong: ${lines.join(' ')}`);
  lines.forEach((l, i) => {
    assert.equal(l, (i + 1).toString(16).padStart(8, '0'), `line ${i + 1} of ${lines.join(' ')}`);
  });
}

async function migrateGuest(t: TestContext, mode: 'precopy' | 'postcopy', cuts: number[]) {
  requireBuiltCli();
  const dir = mkdtempSync(join(tmpdir(), 'memtree-runmig-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const prog = join(dir, 'guest.bin');
  writeFileSync(prog, assemble(GUEST));
  const common = ['-m', '64M', '--bios', prog];
  const src = startMachine(t, [...common, '--qmp', `unix:${join(dir, 'src.sock')}`]);
  const dst = startMachine(t, [
    ...common,
    '--qmp',
    `unix:${join(dir, 'dst.sock')}`,
    '--incoming',
    'tcp:127.0.0.1:0',
  ]);
  await until('the destination to listen', () => /migration on tcp:[^:]+:(\d+)/.test(dst.err), dst);
  const port = Number(/migration on tcp:[^:]+:(\d+)/.exec(dst.err)![1]);
  await until('the source QMP socket', () => /QMP on/.test(src.err), src);
  const qs = await QmpClient.connect(join(dir, 'src.sock'), { timeoutMs: 30_000 });
  const qd = await QmpClient.connect(join(dir, 'dst.sock'), { timeoutMs: 30_000 });
  t.after(async () => {
    await qs.close();
    await qd.close();
  });
  assert.deepEqual(await qd.execute('query-status'), {
    status: 'inmigrate',
    singlestep: false,
    running: false,
  });
  await until('the guest to count', () => src.lines().length >= 3, src);
  assert.equal(dst.out, '', 'the destination ran nothing before the migration');

  for (const limit of cuts) {
    const proxy = await cuttingProxy(t, port, limit);
    await qs.execute('migrate', { uri: `tcp:127.0.0.1:${proxy}` });
    const info = await waitMigrateStatus(qs, (s) => s === 'failed' || s === 'completed');
    assert.equal(info.status, 'failed', JSON.stringify(info));
    assert.deepEqual(await qs.execute('query-status'), {
      status: 'running',
      singlestep: false,
      running: true,
    });
    const n = src.lines().length;
    await until('the source to go on counting', () => src.lines().length >= n + 2, src);
    assert.deepEqual(await qd.execute('query-status'), {
      status: 'inmigrate',
      singlestep: false,
      running: false,
    });
  }

  if (mode === 'postcopy') {
    await qs.execute('migrate-set-capabilities', {
      capabilities: [{ capability: 'postcopy-ram', state: true }],
    });
    // The background stream is slow (16 KiB/s: the ~130 pages the guest dirtied would take 30 s):
    // the destination runs at once and asks for the pages its guest touches.
    await qs.execute('migrate-set-parameters', { 'downtime-limit': 0, 'max-postcopy-bandwidth': 16384 });
  }
  await qs.execute('migrate', { uri: `tcp:127.0.0.1:${port}` });
  if (mode === 'postcopy') {
    await waitMigrateStatus(qs, (s) => s === 'active');
    await qs.execute('migrate-start-postcopy');
  }
  const info = await waitMigrateStatus(qs, (s) => s === 'failed' || s === 'completed');
  assert.equal(info.status, 'completed', JSON.stringify(info));
  if (mode === 'postcopy') {
    assert.ok(
      (info.ram as { 'postcopy-requests': number })['postcopy-requests'] > 0,
      `only a guest running before its pages arrived asks for them: ${JSON.stringify(info)}`,
    );
  }
  assert.deepEqual(await qs.execute('query-status'), {
    status: 'postmigrate',
    singlestep: false,
    running: false,
  });
  const srcLines = src.lines().length;
  await until('the destination to count on', () => dst.lines().length >= 3, dst);
  assert.deepEqual(await qd.execute('query-status'), { status: 'running', singlestep: false, running: true });
  assert.equal(src.lines().length, srcLines, 'the source printed nothing after it stopped');
  assertConsecutive([...src.lines(), ...dst.lines()]);
  // The destination's memory map is the machine's, as QEMU's monitor prints it.
  const flat = await qd.hmp('info mtree -f');
  assert.match(flat, /riscv_virt_board\.ram/);

  await qs.execute('quit').catch(() => {});
  await qd.execute('quit').catch(() => {});
  assert.equal(await src.exited, 0);
  assert.equal(await dst.exited, 0);
  return info;
}

describe('memtree run: live migration of a running guest between two processes', { skip: asmSkip() }, () => {
  it('precopy, after two connections cut mid-stream: the count goes on without gap or repeat', async (t) => {
    const info = await migrateGuest(t, 'precopy', [2000, 600_000]);
    assert.equal((info.ram as { total: number }).total >= 64 << 20, true);
  });
  it('postcopy: the count goes on without gap or repeat', async (t) => {
    await migrateGuest(t, 'postcopy', []);
  });
});
