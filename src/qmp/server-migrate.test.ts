/**
 * Live migration driven over QMP between two memtree machines, as a management tool drives two
 * QEMUs: `-incoming` on the destination, `migrate` / `query-migrate` / postcopy / cancel on the
 * source. The guest is a counter that keeps writing its value into RAM while it runs; the
 * destination must continue the count where the source stopped (no gap, no repeat), with RAM that
 * agrees with the count (the guest's own check), and a cut connection must cost nothing.
 */

import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type TestContext, test } from 'node:test';
import { runCli } from '../../test/support/run-cli.js';
import type { AddressSpace } from '../core/address-space.js';
import { MemorySystem } from '../core/system.js';
import type { PostcopyPages } from '../migration/incoming.js';
import { startProxy } from '../migration/test-support/proxy.js';
import { QmpClient } from './client.js';
import { type QmpMachine, QmpServer } from './server.js';

const RAM = 1 << 20;
const SLOTS = 128;

/** A machine whose guest counts: value n goes to slot n % SLOTS (one page each) and to 0x10. */
class CounterMachine implements QmpMachine {
  readonly ms = new MemorySystem();
  readonly machineType = 'counter';
  readonly as: AddressSpace;
  n = 0n;
  private running = false;
  private timer: NodeJS.Immediate | null = null;
  quitCalled = false;
  postcopyStart?: (pages: PostcopyPages) => void;
  postcopyEnd?: () => void;
  /** On a postcopy destination that runs before all pages arrived: which pages are here. */
  private pages: PostcopyPages | null = null;
  /** Bytes the guest also writes (the same every time) on each turn, dirtying their pages. */
  busy: { addr: number; bytes: Uint8Array } | null = null;

  /** `runsDuringPostcopy`: as a destination, the guest runs from postcopy's switch on. */
  constructor(o: { runsDuringPostcopy?: boolean } = {}) {
    const system = this.ms.container('system', 2n ** 64n - 1n);
    system.addSubregion(0, this.ms.ram('counter.ram', RAM));
    this.as = this.ms.addressSpace(system, 'memory');
    if (o.runsDuringPostcopy) {
      this.postcopyStart = (pages) => {
        this.pages = pages;
      };
      this.postcopyEnd = () => {
        this.pages = null;
      };
    }
  }

  private tick = () => {
    this.timer = null;
    if (this.busy && this.running) this.as.write(this.busy.addr, this.busy.bytes);
    for (let i = 0; i < 64 && this.running; i++) {
      const slot = Number(this.n % BigInt(SLOTS));
      const p = this.pages;
      if (p && !(p.has('counter.ram', 0) && p.has('counter.ram', 0x1000 + slot * 0x1000))) {
        // A page that has not arrived: the guest waits for it, as a CPU's access would fault.
        void Promise.all([
          p.ensure('counter.ram', 0, 8),
          p.ensure('counter.ram', 0x1000 + slot * 0x1000, 8),
        ]).then(() => {
          if (this.running) this.timer ??= setImmediate(this.tick);
        });
        return;
      }
      this.as.stqLe(0x1000 + slot * 0x1000, this.n);
      this.as.stqLe(0x10, this.n);
      this.n++;
    }
    if (this.running) this.timer = setImmediate(this.tick);
  };

  /** The count and RAM when the guest first ran (what a destination received). */
  startedWith: { n: bigint; ram: Uint8Array } | null = null;

  start(): void {
    if (!this.startedWith) {
      const ram = new Uint8Array(RAM);
      this.as.read(0, ram);
      this.startedWith = { n: this.n, ram };
    }
    this.running = true;
    this.timer ??= setImmediate(this.tick);
  }
  stop(): void {
    this.running = false;
    if (this.timer) clearImmediate(this.timer);
    this.timer = null;
  }
  reset(): void {}
  quit(): void {
    this.quitCalled = true;
    this.stop();
  }
  saveState() {
    return { counter: { version: 1, state: { n: this.n } } };
  }
  loadState(devices: Record<string, { version: number; state: unknown }>) {
    const c = devices.counter;
    if (c?.version !== 1 || !c) throw new Error('no counter state of version 1');
    this.n = (c.state as { n: bigint }).n;
  }

  /** The guest's own check: the last SLOTS values sit in their slots, the newest at 0x10. */
  check(): void {
    assert.equal(this.as.ldqLe(0x10), this.n - 1n);
    for (let k = this.n - BigInt(SLOTS); k < this.n; k++) {
      if (k < 0n) continue;
      assert.equal(this.as.ldqLe(0x1000 + Number(k % BigInt(SLOTS)) * 0x1000), k);
    }
  }
}

function tmp(t: TestContext): string {
  const d = mkdtempSync(join(tmpdir(), 'memtree-qmpmig-'));
  t.after(() => rmSync(d, { recursive: true, force: true }));
  return d;
}

async function pair(t: TestContext, o: { runsDuringPostcopy?: boolean } = {}) {
  const dir = tmp(t);
  const src = new CounterMachine();
  const dst = new CounterMachine(o);
  const srcServer = new QmpServer(src);
  const dstServer = new QmpServer(dst, { initialState: 'inmigrate' });
  t.after(async () => {
    src.stop();
    dst.stop();
    await srcServer.close();
    await dstServer.close();
  });
  await srcServer.listen(`unix:${join(dir, 'src.sock')}`);
  await dstServer.listen(`unix:${join(dir, 'dst.sock')}`);
  const incoming = (await dstServer.incoming('tcp:127.0.0.1:0')) as { host: string; port: number };
  src.start();
  const events: string[] = [];
  const qs = await QmpClient.connect(join(dir, 'src.sock'), {
    timeoutMs: 20_000,
    onEvent: (e) => events.push(`${e.event}${e.data ? ` ${JSON.stringify(e.data)}` : ''}`),
  });
  const dstEvents: string[] = [];
  const qd = await QmpClient.connect(join(dir, 'dst.sock'), {
    timeoutMs: 20_000,
    onEvent: (e) => dstEvents.push(`${e.event}${e.data ? ` ${JSON.stringify(e.data)}` : ''}`),
  });
  t.after(async () => {
    await qs.close();
    await qd.close();
  });
  // let the guest write a while before migrating
  while (src.n < 5000n) await new Promise((r) => setImmediate(r));
  return { dir, src, dst, srcServer, dstServer, qs, qd, incoming, events, dstEvents };
}

async function waitStatus(q: QmpClient, done: (s: string) => boolean): Promise<Record<string, unknown>> {
  for (;;) {
    const info = (await q.execute('query-migrate')) as Record<string, unknown>;
    if (done(String(info.status))) return info;
    await new Promise((r) => setTimeout(r, 5));
  }
}

/** Records the guest's count when the source machine stops (the switch-over); -1 until then. */
function recordStop(p: Awaited<ReturnType<typeof pair>>): { at: bigint } {
  const stopped = { at: -1n };
  p.srcServer.machine.stop = ((orig) => () => {
    orig();
    stopped.at = p.src.n;
  })(p.src.stop.bind(p.src));
  return stopped;
}

async function assertMigrated(p: Awaited<ReturnType<typeof pair>>, stoppedAt: bigint) {
  await p.dstServer.whenIncomingDone();
  assert.deepEqual(await p.qs.execute('query-status'), {
    status: 'postmigrate',
    singlestep: false,
    running: false,
  });
  assert.equal(p.src.n, stoppedAt, 'the source guest ran no further after it stopped');
  assert.deepEqual(await p.qd.execute('query-status'), {
    status: 'running',
    singlestep: false,
    running: true,
  });
  // The destination took over the count where the source stopped: no gap, no repeat.
  assert.ok(stoppedAt > 5000n);
  assert.equal(p.dst.startedWith?.n, stoppedAt);
  // Its memory when it started was the source's, byte for byte.
  const a = new Uint8Array(RAM);
  p.src.as.read(0, a);
  assert.ok(Buffer.from(a).equals(Buffer.from(p.dst.startedWith.ram)), 'RAM differs');
  // and the guest's own check holds after it ran on
  while (p.dst.n < stoppedAt + 1000n) await new Promise((r) => setImmediate(r));
  p.dst.stop();
  p.dst.check();
}

test('precopy over tcp: the counter continues on the destination without a gap or a repeat', async (t) => {
  const p = await pair(t);
  await p.qs.execute('migrate-set-capabilities', { capabilities: [{ capability: 'events', state: true }] });
  const stopped = recordStop(p);
  await p.qs.execute('migrate', { uri: `tcp:${p.incoming.host}:${p.incoming.port}` });
  const info = await waitStatus(p.qs, (s) => s === 'completed' || s === 'failed');
  assert.equal(info.status, 'completed', JSON.stringify(info));
  // The fields QEMU 7.2 reports for a completed migration (from a live `query-migrate`).
  assert.deepEqual(Object.keys(info).sort(), ['downtime', 'ram', 'setup-time', 'status', 'total-time']);
  const ramInfo = info.ram as Record<string, number>;
  assert.deepEqual(Object.keys(ramInfo).sort(), [
    'dirty-pages-rate',
    'dirty-sync-count',
    'dirty-sync-missed-zero-copy',
    'downtime-bytes',
    'duplicate',
    'mbps',
    'multifd-bytes',
    'normal',
    'normal-bytes',
    'page-size',
    'pages-per-second',
    'postcopy-bytes',
    'postcopy-requests',
    'precopy-bytes',
    'remaining',
    'skipped',
    'total',
    'transferred',
  ]);
  const ram = (k: string): number => {
    const v = ramInfo[k];
    assert.equal(typeof v, 'number', k);
    return v as number;
  };
  assert.equal(ram('total'), RAM);
  assert.equal(ram('remaining'), 0);
  assert.equal(ram('page-size'), 4096);
  assert.ok(ram('dirty-sync-count') >= 2);
  assert.ok(ram('transferred') >= ram('normal-bytes') && ram('normal-bytes') > 0);
  assert.equal(ram('precopy-bytes') + ram('downtime-bytes'), ram('transferred'));
  assert.ok(ram('normal') + ram('duplicate') >= RAM / 4096, 'every page went at least once');
  assert.equal(typeof info.downtime, 'number');
  assert.equal(typeof info['total-time'], 'number');
  assert.equal(typeof info['setup-time'], 'number');
  await assertMigrated(p, stopped.at);
  assert.deepEqual(
    p.events.filter((e) => e.startsWith('MIGRATION') || e === 'STOP'),
    [
      'MIGRATION {"status":"setup"}',
      'MIGRATION {"status":"active"}',
      'STOP',
      'MIGRATION {"status":"completed"}',
    ],
  );
  // A second migrate of a postmigrate source is refused, as QEMU does.
  await assert.rejects(
    p.qs.execute('migrate', { uri: 'tcp:127.0.0.1:1' }),
    /paused due to previous migration/,
  );
});

test('postcopy: migrate-start-postcopy switches, and the count still continues exactly', async (t) => {
  const p = await pair(t);
  await p.qs.execute('migrate-set-capabilities', {
    capabilities: [
      { capability: 'postcopy-ram', state: true },
      { capability: 'events', state: true },
    ],
  });
  const stopped = recordStop(p);
  // With no downtime allowed, precopy cannot converge while the guest writes: it goes on until
  // the switch (as in QEMU), so the switch surely happens.
  await p.qs.execute('migrate-set-parameters', { 'downtime-limit': 0 });
  await p.qs.execute('migrate', { uri: `tcp:${p.incoming.host}:${p.incoming.port}` });
  await waitStatus(p.qs, (s) => s === 'active');
  const active = await p.qs.execute('query-migrate');
  assert.equal((active as { status: string }).status, 'active');
  await p.qs.execute('migrate-start-postcopy');
  const info = await waitStatus(p.qs, (s) => s === 'completed' || s === 'failed');
  assert.equal(info.status, 'completed', JSON.stringify(info));
  assert.ok(p.events.includes('MIGRATION {"status":"postcopy-active"}'), p.events.join(', '));
  // QEMU ram_transferred_add: after the switch every byte counts as postcopy, none as downtime
  const ram = info.ram as Record<string, number>;
  assert.ok(ram['postcopy-bytes']! > 0, JSON.stringify(ram));
  assert.equal(ram['downtime-bytes'], 0);
  assert.equal(ram['precopy-bytes']! + ram['postcopy-bytes']!, ram.transferred);
  await assertMigrated(p, stopped.at);
});

/**
 * A postcopy migration of a guest that runs on the destination from the switch on, just switched
 * (both sides `postcopy-active`), with a slow background stream and events on both sides.
 */
async function postcopyUnderWay(t: TestContext) {
  const p = await pair(t, { runsDuringPostcopy: true });
  // Pages the guest never writes hold random bytes: a page lost in a recovery would show.
  const untouched = 0x1000 + SLOTS * 0x1000;
  const pattern = new Uint8Array(RAM - untouched);
  for (let i = 0; i < pattern.length; i++) pattern[i] = (i * 2654435761) >>> 24;
  p.src.as.write(untouched, pattern);
  // The source guest rewrites them all the time, so that they are still due when postcopy starts.
  p.src.busy = { addr: untouched, bytes: pattern };
  const caps = [
    { capability: 'postcopy-ram', state: true },
    { capability: 'events', state: true },
  ];
  await p.qs.execute('migrate-set-capabilities', { capabilities: caps });
  await p.qd.execute('migrate-set-capabilities', { capabilities: caps });
  const stopped = recordStop(p);
  // Precopy cannot converge with no downtime allowed. After the switch the background stream is
  // slow: it sends 64 pages, then waits 4 s at 64 KiB/s, and starts afresh after a recovery, so
  // each pause below comes while the source waits, long before the last page.
  await p.qs.execute('migrate-set-parameters', { 'downtime-limit': 0, 'max-postcopy-bandwidth': 64 << 10 });
  await assert.rejects(p.qs.execute('migrate-pause'), /only supported during postcopy-active state/);
  await p.qs.execute('migrate', { uri: `tcp:${p.incoming.host}:${p.incoming.port}` });
  await waitStatus(p.qs, (s) => s === 'active');
  await assert.rejects(
    p.qs.execute('migrate', { uri: 'tcp:127.0.0.1:1', resume: true }),
    /Cannot resume if there is no paused migration/,
  );
  await p.qs.execute('migrate-start-postcopy');
  await waitStatus(p.qd, (s) => s === 'postcopy-active');

  return { p, stopped, untouched, pattern };
}

test('postcopy paused (migrate-pause on either side) goes on after migrate-recover and migrate resume=true, and the count continues exactly', {
  timeout: 60_000,
}, async (t) => {
  const { p, stopped, untouched, pattern } = await postcopyUnderWay(t);

  // 1: the source pauses (QEMU shuts its stream down); the destination notices and pauses too.
  await p.qs.execute('migrate-pause');
  await waitStatus(p.qs, (s) => s === 'postcopy-paused');
  await waitStatus(p.qd, (s) => s === 'postcopy-paused');
  await assert.rejects(
    p.qs.execute('migrate', { uri: `tcp:${p.incoming.host}:${p.incoming.port}` }),
    /There is a migration process in progress/,
  );
  await assert.rejects(
    p.qs.execute('migrate-recover', { uri: `unix:${join(p.dir, 'nowhere.sock')}` }),
    /Migrate recover can only be run when postcopy is paused\./,
  );
  const r1 = `unix:${join(p.dir, 'recover-1.sock')}`;
  await p.qd.execute('migrate-recover', { uri: r1 });
  await p.qs.execute('migrate', { uri: r1, resume: true });
  await waitStatus(p.qd, (s) => s === 'postcopy-active' || s === 'completed');

  // 2: the destination pauses its side.
  await p.qd.execute('migrate-pause');
  await waitStatus(p.qd, (s) => s === 'postcopy-paused');
  await waitStatus(p.qs, (s) => s === 'postcopy-paused');
  const r2 = `unix:${join(p.dir, 'recover-2.sock')}`;
  await p.qd.execute('migrate-recover', { uri: r2 });
  await p.qs.execute('migrate', { uri: r2, resume: true });

  const info = await waitStatus(p.qs, (s) => s === 'completed' || s === 'failed' || s === 'cancelled');
  console.error('INFO', JSON.stringify(info));
  assert.equal(info.status, 'completed', JSON.stringify(info));
  await p.dstServer.whenIncomingDone();
  assert.equal(((await p.qd.execute('query-migrate')) as { status: string }).status, 'completed');
  // QEMU's states, each announced (migrate_set_state): paused when the stream broke, recover
  // while the new connection is set up, active again once the destination answered.
  const recovery = [
    'MIGRATION {"status":"postcopy-paused"}',
    'MIGRATION {"status":"postcopy-recover"}',
    'MIGRATION {"status":"postcopy-active"}',
  ];
  const migration = (l: string[]) => l.filter((e) => e.startsWith('MIGRATION'));
  assert.deepEqual(migration(p.events), [
    'MIGRATION {"status":"setup"}',
    'MIGRATION {"status":"active"}',
    'MIGRATION {"status":"postcopy-active"}',
    ...recovery,
    ...recovery,
    'MIGRATION {"status":"completed"}',
  ]);
  assert.deepEqual(migration(p.dstEvents), [
    'MIGRATION {"status":"active"}',
    'MIGRATION {"status":"postcopy-active"}',
    ...recovery,
    ...recovery,
    'MIGRATION {"status":"completed"}',
  ]);
  // The destination took the count over where the source stopped, and ran on it through both
  // pauses; its own check holds, and the pages it never wrote are the source's.
  assert.ok(stopped.at > 5000n);
  assert.equal(p.dst.startedWith?.n, stopped.at);
  assert.equal(p.src.n, stopped.at, 'the source guest ran no further after it stopped');
  while (p.dst.n < stopped.at + 1000n) await new Promise((r) => setImmediate(r));
  p.dst.stop();
  p.dst.check();
  const got = new Uint8Array(pattern.length);
  p.dst.as.read(untouched, got);
  assert.ok(Buffer.from(got).equals(Buffer.from(pattern)), 'the pages the guest never wrote differ');
});

test('postcopy cut inside its package (device state, before RUN) pauses both sides, and recovery still starts the guest with the source state', {
  timeout: 60_000,
}, async (t) => {
  const p = await pair(t, { runsDuringPostcopy: true });
  await p.qs.execute('migrate-set-capabilities', {
    capabilities: [{ capability: 'postcopy-ram', state: true }],
  });
  await p.qd.execute('migrate-set-capabilities', {
    capabilities: [{ capability: 'postcopy-ram', state: true }],
  });
  const stopped = recordStop(p);
  await p.qs.execute('migrate-set-parameters', { 'downtime-limit': 0 });
  // The machine section goes after LISTEN, in the postcopy package; the cut falls inside it.
  const proxy = await startProxy(p.incoming.port, () => ({
    forward: { cutBefore: new TextEncoder().encode('memtree-machine'), cutBeforeShift: 20 },
  }));
  t.after(() => proxy.close());
  await p.qs.execute('migrate', { uri: `tcp:127.0.0.1:${proxy.port}` });
  await waitStatus(p.qs, (s) => s === 'active');
  await p.qs.execute('migrate-start-postcopy');
  await waitStatus(p.qs, (s) => s === 'postcopy-paused' || s === 'failed' || s === 'completed');
  const d = await waitStatus(p.qd, (s) => s === 'postcopy-paused' || s === 'failed' || s === 'completed');
  assert.equal(d.status, 'postcopy-paused', JSON.stringify(d));
  const r = `unix:${join(p.dir, 'recover.sock')}`;
  await p.qd.execute('migrate-recover', { uri: r });
  await p.qs.execute('migrate', { uri: r, resume: true });
  const info = await waitStatus(p.qs, (s) => s === 'completed' || s === 'failed');
  assert.equal(info.status, 'completed', JSON.stringify(info));
  await p.dstServer.whenIncomingDone();
  assert.equal(p.dst.startedWith?.n, stopped.at, 'the destination started from the source state');
  while (p.dst.n < stopped.at + 1000n) await new Promise((r) => setImmediate(r));
  p.dst.stop();
  p.dst.check();
});

test('migrate_cancel of a paused postcopy ends it cancelled; the source stays stopped, as its guest may run on the destination', {
  timeout: 60_000,
}, async (t) => {
  const { p } = await postcopyUnderWay(t);
  await p.qs.execute('migrate-pause');
  await waitStatus(p.qs, (s) => s === 'postcopy-paused');
  await p.qs.execute('migrate_cancel');
  const info = await waitStatus(p.qs, (s) => s === 'cancelled' || s === 'failed' || s === 'completed');
  assert.equal(info.status, 'cancelled', JSON.stringify(info));
  assert.equal(((await p.qs.execute('query-status')) as { running: boolean }).running, false);
  // nothing is paused any more: there is nothing to resume
  await assert.rejects(
    p.qs.execute('migrate', { uri: 'tcp:127.0.0.1:1', resume: true }),
    /Cannot resume if there is no paused migration/,
  );
});

/** A loopback proxy (the migration tests' own) that cuts both sides after `limit` bytes towards `port`. */
async function cuttingProxy(t: TestContext, port: number, limit: number): Promise<number> {
  const proxy = await startProxy(port, () => ({ forward: { cutAfter: limit } }));
  t.after(() => proxy.close());
  return proxy.port;
}

test('a connection cut mid-stream fails the migration, the source runs on, and a retry succeeds', async (t) => {
  const p = await pair(t);
  // Cut points from a fixed list: early in the RAM stream, deep in it.
  for (const limit of [300, 200_000]) {
    const port = await cuttingProxy(t, p.incoming.port, limit);
    await p.qs.execute('migrate', { uri: `tcp:127.0.0.1:${port}` });
    const failed = await waitStatus(p.qs, (s) => s === 'completed' || s === 'failed');
    assert.equal(failed.status, 'failed', JSON.stringify(failed));
    assert.equal(typeof failed['error-desc'], 'string');
    assert.deepEqual(await p.qs.execute('query-status'), {
      status: 'running',
      singlestep: false,
      running: true,
    });
    const before = p.src.n;
    while (p.src.n < before + 1000n) await new Promise((r) => setImmediate(r));
    p.src.check();
  }
  const stopped = recordStop(p);
  await p.qs.execute('migrate', { uri: `tcp:${p.incoming.host}:${p.incoming.port}` });
  const ok = await waitStatus(p.qs, (s) => s === 'completed' || s === 'failed');
  assert.equal(ok.status, 'completed', JSON.stringify(ok));
  await assertMigrated(p, stopped.at);
});

test('migrate_cancel: the migration ends cancelled and the source keeps running', async (t) => {
  const p = await pair(t);
  // A destination that accepts but never reads keeps the migration in progress.
  const stalled = createServer(() => {});
  await new Promise<void>((r) => stalled.listen(0, '127.0.0.1', () => r()));
  t.after(() => stalled.close());
  const port = (stalled.address() as { port: number }).port;
  await p.qs.execute('migrate', { uri: `tcp:127.0.0.1:${port}` });
  await waitStatus(p.qs, (s) => s === 'active');
  await assert.rejects(
    p.qs.execute('migrate', { uri: `tcp:127.0.0.1:${port}` }),
    /There is a migration process in progress/,
  );
  await p.qs.execute('migrate_cancel');
  const info = await waitStatus(p.qs, (s) => s === 'cancelled' || s === 'failed' || s === 'completed');
  assert.equal(info.status, 'cancelled');
  assert.deepEqual(await p.qs.execute('query-status'), {
    status: 'running',
    singlestep: false,
    running: true,
  });
});

test('exec: migration writes a stream that memtree migrate-info reads, machine section included', async (t) => {
  const p = await pair(t);
  const file = join(p.dir, 'out.mig');
  await p.qs.execute('migrate', { uri: `exec:cat > '${file}'` });
  const info = await waitStatus(p.qs, (s) => s === 'completed' || s === 'failed');
  assert.equal(info.status, 'completed', JSON.stringify(info));
  const r = await runCli(['migrate-info', file, '--json']);
  assert.equal(r.code, 0, r.err);
  const blocks = JSON.parse(r.out) as Array<{ id: string; length: number; pages: number }>;
  assert.deepEqual(
    blocks.map((b) => [b.id, b.length, b.pages]),
    [['counter.ram', RAM, RAM / 4096]],
  );
  const text = await runCli(['migrate-info', file]);
  assert.match(text.out, /^machine: counter\n/);
  assert.match(text.out, /skipped 1 device section: memtree-machine\n$/);
});
