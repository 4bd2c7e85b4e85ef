/**
 * Live migrations that go wrong (issue #11), both ends in this process, connected through a loopback
 * TCP proxy that stalls, cuts or garbles one direction. What must hold every time: never both sides
 * running, the source keeps running when the destination cannot have started, and a retry moves
 * all of RAM.
 */
import assert from 'node:assert/strict';
import { connect, createServer, type Server } from 'node:net';
import { after, describe, it } from 'node:test';
import { DIRTY_MEMORY_MIGRATION } from '../src/core/dirty.js';
import { ByteReader } from '../src/migration/bytes.js';
import { MigrationError } from '../src/migration/errors.js';
import { migrateIncoming } from '../src/migration/incoming.js';
import { socketConnection } from '../src/migration/node-io.js';
import { migrateOutgoing, type OutgoingOptions } from '../src/migration/precopy.js';
import { decodeStream, MIG_CMD_OPEN_RETURN_PATH } from '../src/migration/qemu-stream.js';
import {
  blockHashes,
  buildMachine,
  type TestMachine,
  Workload,
} from '../src/migration/test-support/machine.js';
import { type ProxyFaults, startProxy } from '../src/migration/test-support/proxy.js';

interface Attempt {
  started: boolean;
  result: Promise<{ ok: boolean; failure?: string; message?: string }>;
}

/** A destination machine listening on loopback; every connection is one incoming attempt. */
async function destination(timeoutMs = 3000) {
  const m = buildMachine({ ramMiB: 8 });
  const attempts: Attempt[] = [];
  const waiting: Array<(a: Attempt) => void> = [];
  const server: Server = createServer((sock) => {
    const a: Attempt = { started: false, result: Promise.resolve({ ok: false }) };
    a.result = migrateIncoming(m.ms, socketConnection(sock), {
      timeoutMs,
      start: () => {
        a.started = true;
      },
    }).then(
      () => ({ ok: true }),
      (e: MigrationError) => ({ ok: false, failure: e.failure, message: e.message }),
    );
    const w = waiting.shift();
    if (w) w(a);
    else attempts.push(a);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const port = (server.address() as { port: number }).port;
  return {
    m,
    port,
    next: () => new Promise<Attempt>((r) => (attempts.length ? r(attempts.shift()!) : waiting.push(r))),
    close: () => new Promise<void>((r) => server.close(() => r())),
  };
}

function connectTo(port: number) {
  return new Promise<ReturnType<typeof socketConnection>>((resolve, reject) => {
    const s = connect(port, '127.0.0.1', () => resolve(socketConnection(s)));
    s.once('error', reject);
  });
}

/** Migrates `src` to `dest` through a proxy with `faults`. */
async function attempt(
  src: TestMachine,
  guest: Workload,
  dest: Awaited<ReturnType<typeof destination>>,
  faults: ProxyFaults,
  options: OutgoingOptions = {},
) {
  const proxy = await startProxy(dest.port, () => faults);
  try {
    const conn = await connectTo(proxy.port);
    const incoming = dest.next();
    const outcome = await migrateOutgoing(src.ms, conn, { guest, timeoutMs: 1000, ...options }).then(
      (stats) => ({ ok: true as const, stats, error: null }),
      (error: unknown) => ({ ok: false as const, stats: null, error: error as MigrationError }),
    );
    const a = await incoming;
    const d = await a.result;
    return { outcome, dest: { ...d, started: a.started }, counts: { ...proxy.counts } };
  } finally {
    await proxy.close();
  }
}

/** The source after a failure that leaves it in charge: running, logging off, RAM due again. */
function assertSourceRecovered(src: TestMachine, guest: Workload) {
  assert.equal(guest.running, true, 'the source guest runs on');
  assert.equal(src.ms.running, true);
  assert.equal(src.ms.globalDirtyTracking, 0, 'dirty logging is off again');
  const rb = src.ram.ramBlock!;
  assert.equal(
    src.ms.dirty.allDirty(rb.offset, rb.usedLength, DIRTY_MEMORY_MIGRATION),
    true,
    'every page is due again for the next attempt',
  );
}

/** A clean retry: the destination ends with the source's RAM and runs, the source stays stopped. */
async function retrySucceeds(
  src: TestMachine,
  guest: Workload,
  dest: Awaited<ReturnType<typeof destination>>,
) {
  const r = await attempt(src, guest, dest, {});
  assert.equal(r.outcome.ok, true, r.outcome.error?.message);
  assert.equal(r.dest.ok, true, r.dest.message);
  assert.equal(r.dest.started, true);
  assert.equal(guest.running, false);
  assert.deepEqual(blockHashes(dest.m.ms), blockHashes(src.ms));
  src.ms.setRunning(true);
}

const cleanup: Array<() => Promise<void>> = [];
after(async () => {
  for (const c of cleanup) await c();
});

async function setup() {
  const src = buildMachine({ ramMiB: 8 }, true);
  const guest = new Workload(src);
  const dest = await destination();
  cleanup.push(dest.close);
  guest.start();
  return { src, guest, dest };
}

describe('precopy hand-over', { timeout: 60_000 }, () => {
  it('return path stalled from the start: the destination never starts, the source runs on (was: both ran)', async () => {
    const { src, guest, dest } = await setup();
    const r = await attempt(src, guest, dest, { backward: { stallAfter: 0 } });
    assert.equal(r.outcome.ok, false);
    assert.equal(r.outcome.error?.failure, 'timeout', r.outcome.error?.message);
    assert.equal(r.dest.started, false, 'no go-ahead, no start');
    assert.equal(r.dest.ok, false);
    assertSourceRecovered(src, guest);
    await retrySucceeds(src, guest, dest);
  });

  it('return path stalled after READY: the destination runs, the source stays stopped and says so', async () => {
    const { src, guest, dest } = await setup();
    // READY is the first return-path message of a precopy migration: 4 bytes (type, length).
    const r = await attempt(src, guest, dest, { backward: { stallAfter: 4 } });
    assert.equal(r.outcome.ok, false);
    assert.equal(r.outcome.error?.failure, 'unconfirmed', r.outcome.error?.message);
    assert.match(r.outcome.error!.message, /the source stays stopped/);
    assert.equal(r.dest.started, true);
    assert.equal(r.dest.ok, true);
    assert.equal(guest.running, false, 'never both running');
    assert.deepEqual(blockHashes(dest.m.ms), blockHashes(src.ms), 'the destination has all of RAM');
  });

  it('a stalled forward path while the guest runs ends in a timeout; cancel ends a migration at once', async () => {
    const { src, guest, dest } = await setup();
    const r = await attempt(src, guest, dest, { forward: { stallAfter: 1_000_000 } });
    assert.equal(r.outcome.error?.failure, 'timeout', r.outcome.error?.message);
    assert.equal(r.dest.started, false);
    assertSourceRecovered(src, guest);
    const ac = new AbortController();
    setTimeout(() => ac.abort(), 50);
    const c = await attempt(
      src,
      guest,
      dest,
      { forward: { stallAfter: 2_000_000 } },
      { signal: ac.signal, timeoutMs: 60_000 },
    );
    assert.equal(c.outcome.error?.failure, 'cancelled', c.outcome.error?.message);
    assert.equal(c.dest.started, false);
    assertSourceRecovered(src, guest);
    await retrySucceeds(src, guest, dest);
  });
});

describe('integrity check', { timeout: 60_000 }, () => {
  it('turns a garbled byte into a clean failure; the retry succeeds', async () => {
    const { src, guest, dest } = await setup();
    // Offset 600 000 lies in the page data of the first pass (the first 2 MiB of RAM hold data).
    const r = await attempt(
      src,
      guest,
      dest,
      { forward: { corruptAt: 600_000, corruptMask: 0x01 } },
      { integrity: true },
    );
    assert.equal(r.outcome.ok, false);
    assert.match(r.outcome.error!.message, /integrity check failed/);
    assert.equal(r.dest.started, false);
    assert.equal(r.dest.failure, 'corrupt');
    assertSourceRecovered(src, guest);
    const ok = await attempt(src, guest, dest, {}, { integrity: true });
    assert.equal(ok.outcome.ok, true, ok.outcome.error?.message);
    assert.equal(ok.dest.started, true);
    assert.deepEqual(blockHashes(dest.m.ms), blockHashes(src.ms));
  });

  it("off, the stream is QEMU's plain format: no memtree command in it", async () => {
    const { src, guest, dest } = await setup();
    const chunks: Uint8Array[] = [];
    // Capture what the source writes, through a real connection to the destination.
    const conn = await connectTo(dest.port);
    const incoming = dest.next();
    const write = conn.output;
    await migrateOutgoing(
      src.ms,
      {
        ...conn,
        output: (c, rel) => {
          chunks.push(c.slice());
          return write(c, rel);
        },
      },
      { guest, confirmSwitchover: false },
    );
    assert.equal((await (await incoming).result).ok, true);
    const commands: number[] = [];
    const seen = await decodeStream(new ByteReader(new Uint8Array(Buffer.concat(chunks))), {
      page: () => {},
      zero: () => {},
      command: (cmd) => {
        commands.push(cmd);
      },
    });
    assert.equal(seen.extensions, 0);
    assert.equal(seen.checksums, 0);
    assert.deepEqual(commands, [MIG_CMD_OPEN_RETURN_PATH], 'only QEMU commands');
    assert.deepEqual(blockHashes(dest.m.ms), blockHashes(src.ms));
  });
});

/** LISTEN then RUN, as the source sends them: the RUN command starts 5 bytes in. */
const LISTEN_RUN = Uint8Array.of(0x08, 0, 4, 0, 0, 0x08, 0, 5, 0, 0);

/**
 * A destination for postcopy: its first connection is an incoming migration that recovers from the
 * connections after it; its guest, once started, reads pages it does not have yet.
 */
async function postcopyDestination(recover: boolean) {
  const m = buildMachine({ ramMiB: 8 });
  const spare: Array<import('node:net').Socket> = [];
  const wanting: Array<(s: import('node:net').Socket) => void> = [];
  let first: Promise<{ ok: boolean; failure?: string; message?: string; recoveries?: number }> | null = null;
  const state = { started: false, touched: 0 };
  const nextSocket = () =>
    new Promise<import('node:net').Socket>((r) => (spare.length ? r(spare.shift()!) : wanting.push(r)));
  const server = createServer((sock) => {
    if (first === null) {
      first = migrateIncoming(m.ms, socketConnection(sock), {
        timeoutMs: 3000,
        ...(recover ? { recover: async () => socketConnection(await nextSocket()) } : {}),
        start: async (pages) => {
          state.started = true;
          if (!pages) return;
          for (const off of pages.missing('pc.ram', 16)) {
            await pages.ensure('pc.ram', off, 4096);
            state.touched++;
          }
        },
      }).then(
        (s) => ({ ok: true, recoveries: s.recoveries }),
        (e: MigrationError) => ({ ok: false, failure: e.failure, message: e.message }),
      );
      return;
    }
    const w = wanting.shift();
    if (w) w(sock);
    else spare.push(sock);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  cleanup.push(() => new Promise<void>((r) => server.close(() => r())));
  return {
    m,
    port: (server.address() as { port: number }).port,
    state,
    result: () => first!,
  };
}

describe('postcopy failures', { timeout: 60_000 }, () => {
  it('lost RUN with recovery: the source reconnects, sends RUN again and the destination runs', async () => {
    const src = buildMachine({ ramMiB: 8 }, true);
    const guest = new Workload(src);
    guest.start();
    const dest = await postcopyDestination(true);
    const proxy = await startProxy(dest.port, (n) =>
      n === 0 ? { forward: { cutBefore: LISTEN_RUN, cutBeforeShift: 5 } } : {},
    );
    cleanup.push(proxy.close);
    // The cut lands after LISTEN, before RUN: the destination listens but never started.
    const stats = await migrateOutgoing(src.ms, await connectTo(proxy.port), {
      guest,
      postcopy: true,
      timeoutMs: 2000,
      reconnect: () => connectTo(proxy.port),
    });
    assert.equal(stats.postcopy, true);
    assert.equal(stats.recoveries, 1);
    const d = await dest.result();
    assert.equal(d.ok, true, d.message);
    assert.equal(d.recoveries, 1);
    assert.equal(dest.state.started, true);
    assert.equal(guest.running, false);
    assert.deepEqual(blockHashes(dest.m.ms), blockHashes(src.ms));
  });

  it('lost RUN without recovery: a clear "paused" failure, logging stopped, a retry is not refused', async () => {
    const src = buildMachine({ ramMiB: 8 }, true);
    const guest = new Workload(src);
    guest.start();
    const dest = await postcopyDestination(false);
    const proxy = await startProxy(dest.port, () => ({
      forward: { cutBefore: LISTEN_RUN, cutBeforeShift: 5 },
    }));
    cleanup.push(proxy.close);
    await assert.rejects(
      migrateOutgoing(src.ms, await connectTo(proxy.port), { guest, postcopy: true, timeoutMs: 2000 }),
      (e: unknown) => {
        assert.ok(e instanceof MigrationError);
        assert.equal(e.failure, 'paused', e.message);
        assert.match(e.message, /^postcopy paused: .*the source stays stopped/);
        return true;
      },
    );
    const d = await dest.result();
    assert.equal(d.ok, false);
    assert.equal(dest.state.started, false, 'RUN never arrived');
    assert.equal(guest.running, false, 'the source does not resume on its own after LISTEN');
    assert.equal(src.ms.globalDirtyTracking, 0, 'the source stopped dirty logging (was: still on)');
    // The destination is known not to run: resume the source and migrate again, to a new one.
    src.ms.setRunning(true);
    guest.resume();
    const again = await destination();
    cleanup.push(again.close);
    const r = await attempt(src, guest, again, {});
    assert.equal(r.outcome.ok, true, r.outcome.error?.message);
    assert.deepEqual(blockHashes(again.m.ms), blockHashes(src.ms));
  });

  it('a cut in the page stream after RUN: the destination runs on, waits, and recovery completes it', async () => {
    const src = buildMachine({ ramMiB: 8 }, true);
    const guest = new Workload(src, 2 * 1024 * 1024, 64);
    guest.start();
    const dest = await postcopyDestination(true);
    // 20 KB after RUN: the pages dirtied during the first pass are still on their way.
    const proxy = await startProxy(dest.port, (n) =>
      n === 0 ? { forward: { cutBefore: LISTEN_RUN, cutBeforeShift: 5 + 20_000 } } : {},
    );
    cleanup.push(proxy.close);
    const stats = await migrateOutgoing(src.ms, await connectTo(proxy.port), {
      guest,
      postcopy: true,
      postcopyBandwidth: 1024 * 1024,
      timeoutMs: 2000,
      reconnect: () => connectTo(proxy.port),
    });
    assert.equal(stats.recoveries, 1);
    assert.ok(stats.remainingAtStop > 20_000, `dirty at stop ${stats.remainingAtStop}`);
    const d = await dest.result();
    assert.equal(d.ok, true, d.message);
    assert.equal(d.recoveries, 1);
    assert.equal(dest.state.started, true);
    assert.deepEqual(blockHashes(dest.m.ms), blockHashes(src.ms));
  });
});
