#!/usr/bin/env node
// Live migration of a small machine between two processes over TCP (run `npm run build` first).
// The parent process is the source: its guest keeps writing memory while RAM is sent. It spawns
// itself with --destination as the destination process, which builds the same machine, loads the
// pages and reports a checksum of its RAM. Usage: node examples/migrate.mjs [--postcopy]
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { connect, createServer } from 'node:net';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { MemorySystem } from '../dist/core/index.js';
import { migrateIncoming } from '../dist/migration/incoming.js';
import { socketConnection } from '../dist/migration/node-io.js';
import { migrateOutgoing } from '../dist/migration/precopy.js';

const MiB = 1024 * 1024;

/**
 * One step of the guest's pseudo-random numbers (the ANSI C LCG, modulo 2^32). The product must be
 * taken in exact 32-bit arithmetic: as a double, seed * 1103515245 exceeds 2^53 and loses its low
 * bits, and the sequence then falls into a short cycle that leaves RAM unchanged.
 */
export function nextSeed(seed) {
  return (Math.imul(seed, 1103515245) + 12345) >>> 0;
}

// Imported (by the tests, for nextSeed) rather than run: do nothing.
const isMain = process.argv[1] !== undefined && fileURLToPath(import.meta.url) === process.argv[1];

function machine() {
  const ms = new MemorySystem();
  const root = ms.container('system', 2n ** 32n);
  const ram = ms.ram('pc.ram', 64 * MiB);
  const bios = ms.rom('pc.bios', 256 * 1024);
  const vram = ms.ram('vga.vram', 8 * MiB, { owner: { devicePath: '0000:00:02.0' } });
  root.addSubregion(0, ram);
  root.addSubregion(0xfffc0000, bios);
  root.addSubregion(0xe0000000, vram);
  return { ms, as: ms.addressSpace(root, 'memory'), ram, bios };
}

function checksum(ms) {
  const h = createHash('sha256');
  const buf = new Uint8Array(MiB);
  for (const b of ms.ramList.blocks) {
    for (let off = 0; off < b.usedLength; off += buf.length) {
      const n = Math.min(buf.length, b.usedLength - off);
      b.read(off, buf, 0, n);
      h.update(buf.subarray(0, n));
    }
  }
  return h.digest('hex').slice(0, 16);
}

if (!isMain) {
  // nothing to run
} else if (process.argv.includes('--destination')) {
  const m = machine();
  const server = createServer(async (sock) => {
    const stats = await migrateIncoming(m.ms, socketConnection(sock), {
      start: () => process.stderr.write('destination: guest started\n'),
    });
    process.stdout.write(
      `${JSON.stringify({ done: true, checksum: checksum(m.ms), pages: stats.pages, zeroPages: stats.zeroPages })}\n`,
    );
    server.close();
  });
  server.listen(0, '127.0.0.1', () =>
    process.stdout.write(`${JSON.stringify({ port: server.address().port })}\n`),
  );
} else {
  const m = machine();
  // Firmware and a quarter of RAM hold data; the rest is zero and travels as ZERO records.
  const page = new Uint8Array(4096);
  for (let off = 0; off < 16 * MiB; off += 4096) {
    page.fill((off >>> 12) & 0xff);
    m.ms.writeRam(m.ram, off, page);
  }
  m.ms.writeRam(m.bios, 0, new Uint8Array(256 * 1024).fill(0x90));
  // The guest: keeps writing words into the first 4 MiB on every event-loop turn.
  let running = true;
  let seed = 1;
  let writes = 0;
  const tick = () => {
    if (!running) return;
    for (let i = 0; i < 16; i++) {
      seed = nextSeed(seed);
      m.as.stlLe(((seed >>> 10) % (4 * MiB)) & ~3, seed);
      writes++;
    }
    setImmediate(tick);
  };
  const guest = {
    stop: () => {
      running = false;
    },
    resume: () => {
      running = true;
      setImmediate(tick);
    },
  };
  guest.resume();

  const child = spawn(process.execPath, [fileURLToPath(import.meta.url), '--destination'], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const lines = createInterface({ input: child.stdout })[Symbol.asyncIterator]();
  const { port } = JSON.parse((await lines.next()).value);
  const sock = connect(port, '127.0.0.1');
  await new Promise((r) => sock.once('connect', r));
  const stats = await migrateOutgoing(m.ms, socketConnection(sock), {
    guest,
    downtimeLimitMs: 50,
    postcopy: process.argv.includes('--postcopy'),
  });
  const dest = JSON.parse((await lines.next()).value);
  const src = checksum(m.ms);
  console.log(`mode:              ${stats.postcopy ? 'postcopy' : 'precopy'}`);
  console.log(`guest writes:      ${writes} during the migration`);
  console.log(
    `iterations:        ${stats.iterations} (${stats.dirtySyncCount} bitmap syncs, converged: ${stats.converged})`,
  );
  console.log(`pages sent:        ${stats.pagesSent}`);
  console.log(`zero pages:        ${stats.zeroPages} (skipped: no bytes sent)`);
  console.log(`bytes sent:        ${stats.bytesSent}`);
  console.log(
    `bandwidth:         ${(stats.bandwidth / MiB).toFixed(1)} MiB/s (${stats.mbps.toFixed(0)} Mbit/s)`,
  );
  console.log(
    `downtime:          ${stats.downtimeMs.toFixed(1)} ms (dirty at stop: ${stats.remainingAtStop} bytes)`,
  );
  console.log(`total time:        ${stats.totalTimeMs.toFixed(0)} ms`);
  if (stats.postcopy) console.log(`postcopy requests: ${stats.postcopyRequests}`);
  console.log(
    `RAM checksum:      source ${src}, destination ${dest.checksum} -> ${src === dest.checksum ? 'identical' : 'DIFFERENT'}`,
  );
  process.exitCode = src === dest.checksum ? 0 : 1;
}
