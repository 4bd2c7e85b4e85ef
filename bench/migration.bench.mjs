// Migration benchmarks (run against dist/ after `npm run build`). `run()` returns one entry per
// benchmark with `ratio` = memtree speed / baseline speed, both measured in this run:
//  - guest writes with dirty logging on vs off (target ratio >= 1/1.3),
//  - snapshot-and-clear of a 16 GiB guest's dirty bitmap vs copying and clearing the same words,
//  - migrating 1 GiB of non-zero RAM over loopback TCP vs a raw socket transfer of the same bytes
//    (target ratio >= 0.7).
import { once } from 'node:events';
import { connect, createServer } from 'node:net';
import { DIRTY_MEMORY_MIGRATION, MemorySystem } from '../dist/core/index.js';
import { migrateIncoming } from '../dist/migration/incoming.js';
import { socketConnection } from '../dist/migration/node-io.js';
import { migrateOutgoing } from '../dist/migration/precopy.js';

const MiB = 1024 * 1024;
const GiB = 1024 * MiB;
const now = () => performance.now();

function best(n, fn) {
  let t = Number.POSITIVE_INFINITY;
  for (let i = 0; i < n; i++) {
    const t0 = now();
    fn();
    t = Math.min(t, now() - t0);
  }
  return t;
}

function writeThroughput() {
  const ms = new MemorySystem();
  const root = ms.container('system', 2n ** 32n);
  const ram = ms.ram('pc.ram', 64 * MiB);
  root.addSubregion(0, ram);
  const as = ms.addressSpace(root, 'memory');
  const N = 4_000_000;
  const loop = () => {
    let a = 0;
    for (let i = 0; i < N; i++) {
      as.stlLe(a, i);
      a = (a + 4100) & (64 * MiB - 4);
    }
  };
  const off = best(3, loop);
  ms.globalDirtyLogStart(1);
  // Each round starts with clean pages: the logged writes pay for marking as a migration would.
  const on = best(3, () => {
    ms.dirty.snapshotAndClear(0, 64 * MiB, DIRTY_MEMORY_MIGRATION);
    loop();
  });
  ms.globalDirtyLogStop(1);
  return {
    name: 'dirty-logging-writes-on-vs-off',
    ratio: off / on,
    target: 1 / 1.3,
    ms: on,
    baseline: `${off.toFixed(1)} ms with logging off`,
    opsPerSecOn: (N / on) * 1000,
    opsPerSecOff: (N / off) * 1000,
  };
}

function snapshotAndClear16G() {
  const ms = new MemorySystem();
  const ram = ms.ram('pc.ram', 16 * GiB);
  const len = ram.ramBlock.usedLength;
  const words = len / 4096 / 32;
  let t = Number.POSITIVE_INFINITY;
  for (let i = 0; i < 5; i++) {
    ms.dirty.setRange(0, len, 7);
    const t0 = now();
    ms.snapshotAndClearDirty(ram, 0, len, DIRTY_MEMORY_MIGRATION);
    t = Math.min(t, now() - t0);
  }
  const src = new Uint32Array(words).fill(0xffffffff);
  const base = best(5, () => {
    const copy = src.slice();
    src.fill(0);
    src[0] = copy[0];
  });
  return {
    name: 'snapshot-and-clear-16GiB-bitmap',
    ratio: base / t,
    ms: t,
    baseline: `${base.toFixed(3)} ms copy+clear of the words`,
    baselineMs: base,
  };
}

/**
 * The baseline: the same RAM bytes over a loopback socket with nothing else — the sender writes the
 * source block's memory in 1 MiB pieces, the receiver copies what arrives into a preallocated
 * buffer of the same size, as any transfer of guest RAM must.
 */
async function rawTransfer(block, bytes) {
  const sink = new Uint8Array(bytes).fill(0); // touched before timing, like the destination's RAM
  const server = createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const done = new Promise((resolve) => {
    server.once('connection', (s) => {
      let n = 0;
      s.on('data', (c) => {
        sink.set(c.subarray(0, Math.min(c.length, bytes - n)), n);
        n += c.length;
      });
      s.on('end', () => resolve(n));
    });
  });
  const sock = connect(server.address().port, '127.0.0.1');
  await once(sock, 'connect');
  const t0 = now();
  const chunk = 1 * MiB;
  for (let off = 0; off < bytes; off += chunk) {
    const piece = block.hostView(off % block.maxLength, Math.min(chunk, bytes - off));
    if (!sock.write(piece)) await once(sock, 'drain');
  }
  sock.end();
  await done;
  const t = now() - t0;
  server.close();
  return t;
}

async function migrationThroughput() {
  const size = Number(process.env.MIG_BENCH_MIB ?? 1024) * MiB;
  const mk = () => {
    const ms = new MemorySystem();
    const ram = ms.ram('pc.ram', size);
    return { ms, ram };
  };
  const src = mk();
  const page = new Uint8Array(MiB);
  for (let i = 0; i < page.length; i++) page[i] = (i * 31 + 1) & 0xff || 1;
  for (let off = 0; off < size; off += MiB) src.ms.writeRam(src.ram, off, page);
  const dst = mk();
  // Preallocate the destination's RAM (as QEMU's -mem-prealloc): first-touch page faults of fresh
  // host memory cost more than the transfer itself on some hosts and are not migration work.
  for (let i = 0; i < dst.ram.ramBlock.chunkCount; i++) dst.ram.ramBlock.chunk(i).fill(0);
  const server = createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const incoming = new Promise((resolve, reject) => {
    server.once('connection', (s) => migrateIncoming(dst.ms, socketConnection(s)).then(resolve, reject));
  });
  // The baseline runs before and after the migration; the faster run counts (the first warms up
  // sockets and the JIT, the second runs with the destination's memory in place).
  const rawBefore = await rawTransfer(src.ram.ramBlock, size);
  const sock = connect(server.address().port, '127.0.0.1');
  await once(sock, 'connect');
  const t0 = now();
  const stats = await migrateOutgoing(src.ms, socketConnection(sock));
  await incoming;
  const t = now() - t0;
  server.close();
  const raw = Math.min(rawBefore, await rawTransfer(src.ram.ramBlock, stats.bytesSent));
  return {
    name: `migration-${size / MiB}MiB-vs-raw-socket`,
    ratio: raw / t,
    target: 0.7,
    ms: t,
    baseline: `${raw.toFixed(0)} ms raw socket`,
    migrationMs: t,
    rawMs: raw,
    mibPerSec: (size / MiB / t) * 1000,
  };
}

/** Runs the migration benchmarks. */
export async function run() {
  return [writeThroughput(), snapshotAndClear16G(), await migrationThroughput()];
}

if (import.meta.url === `file://${process.argv[1]}`) {
  for (const r of await run()) console.log(JSON.stringify(r));
}
