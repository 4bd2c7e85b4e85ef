/**
 * @module cli/commands/run-qmp.test
 * Two riscv virt machines behind `memtree run`'s QMP glue, migrating over loopback TCP: the
 * device state arrives with the RAM (a UART register and the PLIC's programming read the same on
 * the destination), and a device state the destination refuses fails the migration with the
 * destination still waiting (`inmigrate`, not running) and the source running on; the retry with
 * a good state completes.
 */

import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type TestContext, test } from 'node:test';
import { buildRiscvVirt, type RiscvVirtMachine } from '../../machines/riscv/virt.js';
import { QmpClient } from '../../qmp/client.js';
import { attachQmp } from './run-qmp.js';

const UART = 0x10000000;
const PLIC = 0xc000000;

async function waitFor(q: QmpClient, cmd: string, done: (r: Record<string, unknown>) => boolean) {
  for (;;) {
    const r = (await q.execute(cmd)) as Record<string, unknown>;
    if (done(r)) return r;
    await new Promise((res) => setTimeout(res, 20));
  }
}

async function pair(t: TestContext) {
  const dir = mkdtempSync(join(tmpdir(), 'memtree-runqmp-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const machine = () => buildRiscvVirt({ ramSize: 8 << 20, rtcEpochNs: 0n });
  const src = machine();
  const dst = machine();
  let incoming = '';
  const cs = await attachQmp(src, { qmp: `unix:${join(dir, 's.sock')}` });
  const cd = await attachQmp(dst, {
    qmp: `unix:${join(dir, 'd.sock')}`,
    incoming: 'tcp:127.0.0.1:0',
    announce: (l) => {
      const m = /waiting for a migration on (\S+)/.exec(l);
      if (m) incoming = m[1]!;
    },
  });
  const qs = await QmpClient.connect(join(dir, 's.sock'));
  const qd = await QmpClient.connect(join(dir, 'd.sock'));
  t.after(async () => {
    qs.close();
    qd.close();
    await cs.close();
    await cd.close();
  });
  return { src, dst, qs, qd, incoming, cd };
}

function programDevices(m: RiscvVirtMachine): void {
  m.memory.stb(UART + 7, 0xa5);
  m.memory.stb(UART + 3, 0x1b);
  m.memory.stlLe(PLIC + 4 * 10, 6);
}

test('the device state moves with the machine; a refused one leaves the destination waiting and the source running, and a retry succeeds', async (t) => {
  const p = await pair(t);
  programDevices(p.src);
  const good = p.src.uart.saveState.bind(p.src.uart);
  // A source whose UART state lacks a register: the destination must refuse it.
  p.src.uart.saveState = () => ({ ...good(), lsr: undefined }) as unknown as ReturnType<typeof good>;
  await p.qs.execute('migrate', { uri: p.incoming });
  const failed = await waitFor(
    p.qs,
    'query-migrate',
    (r) => r.status === 'failed' || r.status === 'completed',
  );
  assert.equal(failed.status, 'failed');
  assert.match(String(failed['error-desc']), /serial.*lsr/);
  assert.deepEqual(await p.qs.execute('query-status'), {
    status: 'running',
    singlestep: false,
    running: true,
  });
  assert.deepEqual(await p.qd.execute('query-status'), {
    status: 'inmigrate',
    singlestep: false,
    running: false,
  });
  assert.equal(p.dst.memory.ldub(UART + 7), 0, "the destination's UART is untouched");

  p.src.uart.saveState = good;
  await p.qs.execute('migrate', { uri: p.incoming });
  const done = await waitFor(p.qs, 'query-migrate', (r) => r.status === 'failed' || r.status === 'completed');
  assert.equal(done.status, 'completed', String(done['error-desc']));
  await waitFor(p.qd, 'query-status', (r) => r.status === 'running');
  assert.equal(p.dst.memory.ldub(UART + 7), 0xa5, 'scratch register');
  assert.equal(p.dst.memory.ldub(UART + 3), 0x1b, 'line control register');
  assert.equal(p.dst.memory.ldlLe(PLIC + 4 * 10), 6, "the UART source's priority");
});

test("max-postcopy-bandwidth is set and read back as QEMU's migrate-set-parameters does; a fraction is refused with QEMU's text and changes nothing", async (t) => {
  const p = await pair(t);
  await p.qs.execute('migrate-set-parameters', { 'max-postcopy-bandwidth': 16384 });
  assert.deepEqual(await p.qs.execute('query-migrate-parameters'), {
    'downtime-limit': 300,
    'max-postcopy-bandwidth': 16384,
  });
  await assert.rejects(
    p.qs.execute('migrate-set-parameters', { 'downtime-limit': 10, 'max-postcopy-bandwidth': 1.5 }),
    /Parameter 'max-postcopy-bandwidth' expects uint64/,
  );
  assert.deepEqual(await p.qs.execute('query-migrate-parameters'), {
    'downtime-limit': 300,
    'max-postcopy-bandwidth': 16384,
  });
});
