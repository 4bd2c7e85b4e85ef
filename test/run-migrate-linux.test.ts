/**
 * @module test/run-migrate-linux
 * Debian 13's Linux, running, moves between `memtree run` processes as QEMU's live migration
 * moves a guest. The guest's /init (busybox sh) keeps appending its counter to a file in its RAM
 * file system, checks after every line that the file's checksum equals the one of the numbers
 * 1..count generated afresh (its own check of its memory), and prints `count N MD5`, or `BAD`
 * when they differ. Linux boots once, on the first process; then
 *
 * 1. migrations from it to a waiting second process are cut by a loopback proxy at fixed points
 *    (early in the stream, in the middle of RAM, near the end): each fails, the source keeps
 *    counting, the destination keeps waiting;
 * 2. a precopy migration to the second process completes, and the count goes on there;
 * 3. a postcopy migration from the second process to a third completes, and the count goes on;
 *    the third runs the guest as soon as it switched over, asking for the pages its harts touch.
 *    Its connection breaks on the way, inside the package that carries the device state: both
 *    sides pause and then recover over a new connection (migrate-recover, migrate resume=true).
 *
 * The serial output of the three, put end to end, must be the guest's one stream: every count from
 * 1 on, once, in order, with its check passed. Needs the built CLI, Debian's OpenSBI (qemu-system-data)
 * and the Debian archive (the tests skip without them, and fail under CI=true).
 */

import assert from 'node:assert/strict';
import { existsSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { DEFAULT_BIOS } from '../src/cli/commands/run.js';
import { type DirectionFaults, startProxy } from '../src/migration/test-support/proxy.js';
import { QmpClient } from '../src/qmp/client.js';
import { COUNTING_INIT, riscvLinuxImages } from './support/linux-images.js';
import { requireBuiltCli } from './support/run-bin.js';
import { type RunningMachine, startMachine, until, waitMigrateStatus } from './support/run-machine.js';

/** Guest RAM: small, so that each migration is short, but enough for the kernel and its init. */
const RAM = '128M';

/** The counts a run printed. */
function counts(r: RunningMachine): number[] {
  return [...r.out.matchAll(/^count (\d+) /gm)].map((m) => Number(m[1]));
}

const RUNNING = { status: 'running', singlestep: false, running: true };
const WAITING = { status: 'inmigrate', singlestep: false, running: false };

test('a running Linux guest migrates precopy (after cut connections) and then postcopy (paused and recovered) between three memtree run processes, its count and its own memory check continuing', {
  // Linux boots once (about 1e9 guest instructions: minutes on a loaded 2-core machine).
  timeout: 1_800_000,
}, async (t) => {
  if (!existsSync(DEFAULT_BIOS)) {
    if (process.env.CI) assert.fail(`${DEFAULT_BIOS} is missing (Debian's qemu-system-data)`);
    t.skip(`${DEFAULT_BIOS} is missing`);
    return;
  }
  requireBuiltCli();
  const img = riscvLinuxImages(t, COUNTING_INIT);
  if (!img) return;
  t.after(() => rmSync(img.dir, { recursive: true, force: true }));
  const common = [
    '-m',
    RAM,
    '--kernel',
    img.kernel,
    '--initrd',
    img.initrd,
    '--append',
    'console=ttyS0 quiet',
    // The same boot on every run up to the first migration (the passes then follow the sockets).
    '--rtc',
    'base=2006-06-17T16:00:00',
    '--rng-seed',
    '6d656d747265652072697363762d7669727420626f6f74206f66204c696e7578',
  ];
  const sock = (n: string) => join(img.dir, `${n}.sock`);
  const destination = async (name: string) => {
    const r = startMachine(t, [...common, '--qmp', `unix:${sock(name)}`, '--incoming', 'tcp:127.0.0.1:0']);
    await until(`${name} to listen`, () => /migration on tcp:[^:]+:(\d+)/.test(r.err), r, 120_000);
    const port = Number(/migration on tcp:[^:]+:(\d+)/.exec(r.err)![1]);
    const q = await QmpClient.connect(sock(name), { timeoutMs: 60_000 });
    t.after(() => q.close());
    return { r, port, q };
  };

  const src = startMachine(t, [...common, '--qmp', `unix:${sock('src')}`]);
  await until('Linux to boot and count', () => counts(src).length >= 3, src, 1_500_000);
  const qs = await QmpClient.connect(sock('src'), { timeoutMs: 60_000 });
  t.after(() => qs.close());
  const d1 = await destination('dst1');
  assert.deepEqual(await d1.q.execute('query-status'), WAITING);

  // 1. Cuts: among the first pages, in the middle of RAM, and inside the device section that
  // follows the last RAM pass (the guest is stopped by then: the source must resume it).
  const cuts: Array<[string, DirectionFaults]> = [
    ['after 3000 bytes', { cutAfter: 3000 }],
    ['after 16 MiB', { cutAfter: 16 << 20 }],
    ['in the device section', { cutBefore: new TextEncoder().encode('memtree-machine'), cutBeforeShift: 40 }],
  ];
  for (const [cut, forward] of cuts) {
    const proxy = await startProxy(d1.port, () => ({ forward }));
    try {
      await qs.execute('migrate', { uri: `tcp:127.0.0.1:${proxy.port}` });
      const info = await waitMigrateStatus(qs, (s) => s === 'failed' || s === 'completed');
      assert.equal(info.status, 'failed', `cut ${cut}: ${JSON.stringify(info)}`);
    } finally {
      await proxy.close();
    }
    assert.deepEqual(await qs.execute('query-status'), RUNNING, `the source runs on after the cut at ${cut}`);
    const n = counts(src).length;
    await until('the source to go on counting', () => counts(src).length >= n + 2, src, 120_000);
    assert.deepEqual(
      await d1.q.execute('query-status'),
      WAITING,
      `the destination waits after the cut at ${cut}`,
    );
  }
  assert.equal(d1.r.out, '', 'the destination printed nothing while it waited');

  // 2. Precopy to the second process.
  await qs.execute('migrate', { uri: `tcp:127.0.0.1:${d1.port}` });
  const pre = await waitMigrateStatus(qs, (s) => s === 'failed' || s === 'completed');
  assert.equal(pre.status, 'completed', JSON.stringify(pre));
  assert.deepEqual(await qs.execute('query-status'), {
    status: 'postmigrate',
    singlestep: false,
    running: false,
  });
  const srcCounts = counts(src).length;
  await until('the guest to count on the second process', () => counts(d1.r).length >= 3, d1.r, 120_000);
  assert.deepEqual(await d1.q.execute('query-status'), RUNNING);
  assert.equal(counts(src).length, srcCounts, 'the source printed nothing once it stopped');

  // 3. Postcopy from the second process to a third.
  const d2 = await destination('dst2');
  await d1.q.execute('migrate-set-capabilities', {
    capabilities: [{ capability: 'postcopy-ram', state: true }],
  });
  // A slow background stream (1 MiB/s), so the guest, running at once on the third process, must
  // ask for the pages it touches (the harts wait for them).
  await d1.q.execute('migrate-set-parameters', { 'max-postcopy-bandwidth': 1 << 20 });
  // The connection breaks inside the postcopy package (after LISTEN, in the device state, before
  // RUN): both sides pause, and migrate-recover there and `migrate resume=true` here carry the
  // migration on over a new connection; the harts' and devices' state must arrive whole.
  const proxy = await startProxy(d2.port, () => ({
    forward: { cutBefore: new TextEncoder().encode('memtree-machine'), cutBeforeShift: 40 },
  }));
  t.after(() => proxy.close());
  await d1.q.execute('migrate', { uri: `tcp:127.0.0.1:${proxy.port}` });
  await waitMigrateStatus(d1.q, (s) => s === 'active');
  await d1.q.execute('migrate-start-postcopy');
  const settled = (s: string) => s === 'postcopy-paused' || s === 'failed' || s === 'completed';
  await waitMigrateStatus(d1.q, settled);
  const paused = await waitMigrateStatus(d2.q, settled);
  assert.equal(paused.status, 'postcopy-paused', JSON.stringify(paused));
  assert.equal(((await d1.q.execute('query-migrate')) as { status: string }).status, 'postcopy-paused');
  await d2.q.execute('migrate-recover', { uri: `unix:${sock('recover')}` });
  await d1.q.execute('migrate', { uri: `unix:${sock('recover')}`, resume: true });
  const post = await waitMigrateStatus(d1.q, (s) => s === 'failed' || s === 'completed');
  assert.equal(post.status, 'completed', JSON.stringify(post));
  assert.ok((post.ram as Record<string, number>)['postcopy-requests']! > 0, JSON.stringify(post));
  await until('the guest to count on the third process', () => counts(d2.r).length >= 3, d2.r, 120_000);
  assert.deepEqual(await d2.q.execute('query-status'), RUNNING);

  // One stream: every count once, in order, each with its memory check passed.
  const all = src.out + d1.r.out + d2.r.out;
  assert.doesNotMatch(all, /BAD/, 'the guest found its memory wrong');
  const seen = [...all.matchAll(/^count (\d+) [0-9a-f]{32}\r?$/gm)].map((m) => Number(m[1]));
  assert.ok(seen.length > 12, `only ${seen.length} counts`);
  seen.forEach((n, i) => {
    assert.equal(
      n,
      i + 1,
      `count ${i + 1} is followed by ${n}: ${seen.slice(Math.max(0, i - 3), i + 3).join(' ')}`,
    );
  });
  t.diagnostic(
    `precopy: downtime ${pre.downtime} ms, total ${pre['total-time']} ms; postcopy: downtime ${post.downtime} ms, total ${post['total-time']} ms`,
  );

  for (const q of [qs, d1.q, d2.q]) await q.execute('quit').catch(() => {});
  assert.equal(await src.exited, 0);
  assert.equal(await d1.r.exited, 0);
  assert.equal(await d2.r.exited, 0);
});
