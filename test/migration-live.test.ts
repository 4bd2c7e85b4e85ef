/**
 * Live migration between two processes over a real TCP socket: the destination is a child Node
 * process (src/migration/test-support/dest-child.ts) that builds the same machine and reports block
 * hashes; the source runs here with a guest workload that keeps writing memory.
 */
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { connect } from 'node:net';
import { createInterface } from 'node:readline';
import { describe, it } from 'node:test';
import { DIRTY_MEMORY_MIGRATION, DIRTY_MEMORY_VGA } from '../src/core/dirty.js';
import { MigrationError } from '../src/migration/errors.js';
import { socketConnection } from '../src/migration/node-io.js';
import { migrateOutgoing, type OutgoingOptions } from '../src/migration/precopy.js';
import {
  blockHashes,
  buildMachine,
  type MachineSpec,
  Workload,
} from '../src/migration/test-support/machine.js';

const CHILD = new URL('../src/migration/test-support/dest-child.ts', import.meta.url).pathname;

interface Child {
  proc: ChildProcess;
  port: number;
  next(): Promise<Record<string, unknown>>;
}

/** Starts the destination process and waits for its port. */
async function startDestination(opts: object): Promise<Child> {
  const proc = spawn(process.execPath, ['--import', 'tsx', CHILD, JSON.stringify(opts)], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const lines: Array<Record<string, unknown>> = [];
  const waiting: Array<(v: Record<string, unknown>) => void> = [];
  createInterface({ input: proc.stdout! }).on('line', (l) => {
    const v = JSON.parse(l) as Record<string, unknown>;
    const w = waiting.shift();
    if (w) w(v);
    else lines.push(v);
  });
  const next = () =>
    new Promise<Record<string, unknown>>((resolve) => {
      const v = lines.shift();
      if (v) resolve(v);
      else waiting.push(resolve);
    });
  const first = await next();
  return { proc, port: first.port as number, next };
}

function connectTo(port: number) {
  return new Promise<ReturnType<typeof socketConnection>>((resolve, reject) => {
    const s = connect(port, '127.0.0.1', () => resolve(socketConnection(s)));
    s.once('error', reject);
  });
}

async function migrate(spec: MachineSpec, dest: object, options: OutgoingOptions = {}) {
  const src = buildMachine(spec, true);
  const guest = new Workload(src);
  const child = await startDestination({ ...spec, ...dest });
  guest.start();
  return {
    src,
    guest,
    child,
    run: async () => migrateOutgoing(src.ms, await connectTo(child.port), { guest, ...options }),
  };
}

describe('live migration over TCP between two processes', () => {
  it('precopy: the destination ends with the source RAM byte for byte while the guest writes', async () => {
    const { src, guest, child, run } = await migrate({}, {}, { downtimeLimitMs: 300 });
    const stats = await run();
    const dest = await child.next();
    assert.equal(guest.running, false, 'the source guest stays stopped after a good migration');
    assert.ok(guest.writes > 0, 'the guest wrote memory during the migration');
    assert.equal(dest.ok, true, JSON.stringify(dest));
    assert.equal(dest.started, true);
    assert.deepEqual(dest.hashes, blockHashes(src.ms));
    // 16 MiB of RAM, 3/4 zero; 4 MiB of vram, all zero: most pages go as ZERO records.
    const totalPages = (16 + 4) * 256 + 64;
    assert.ok(stats.zeroPages >= (12 + 4) * 256 - 1024, `zero pages ${stats.zeroPages}`);
    assert.ok(stats.pagesSent + stats.zeroPages >= totalPages);
    assert.ok(
      stats.bytesSent < (stats.pagesSent + 64) * 4200 + stats.zeroPages * 40,
      'zero pages carry no bytes',
    );
    assert.ok(stats.iterations >= 1 && stats.dirtySyncCount >= 2);
    assert.ok(stats.bandwidth > 0 && stats.downtimeMs >= 0);
    // QEMU postpones the dirty-log stop while the source VM is stopped (R11.9): logging stays on
    // until the source runs again.
    assert.equal(src.ms.running, false);
    assert.equal(src.ms.globalDirtyTracking, 1, 'still logging while the source is stopped');
    src.ms.setRunning(true);
    assert.equal(src.ms.globalDirtyTracking, 0, 'dirty logging is off once the source runs');
    child.proc.kill();
  });

  it('refuses a destination without one of the blocks: nothing loaded, source keeps running', async () => {
    const { src, guest, child, run } = await migrate({}, { noVram: true });
    src.vram!.setLog(true, DIRTY_MEMORY_VGA);
    src.as.stb(0xe0000000 + 0x5000, 9);
    await assert.rejects(run(), (e: unknown) => {
      assert.ok(e instanceof MigrationError);
      assert.match(e.message, /Unknown ramblock "0000:00:02.0\/vga.vram", cannot accept migration/);
      return true;
    });
    const dest = await child.next();
    assert.equal(dest.ok, false);
    assert.equal(dest.started, false);
    assert.equal(dest.failure, 'unknown-block');
    assert.equal(dest.block, '0000:00:02.0/vga.vram');
    assert.equal(guest.running, true, 'the source guest runs on');
    assert.equal(src.ms.globalDirtyTracking, 0);
    const vb = src.vram!.ramBlock!;
    assert.equal(
      src.ms.dirty.getDirty(vb.offset + 0x5000, 1, DIRTY_MEMORY_VGA),
      true,
      'VGA dirty state intact',
    );
    guest.stop();
    child.proc.kill();
  });

  it('reports a length mismatch naming the block', async () => {
    const { guest, child, run } = await migrate({}, { biosKiB: 128 });
    await assert.rejects(run(), /Size mismatch: pc\.bios: 0x40000 != 0x20000/);
    const dest = await child.next();
    assert.equal(dest.failure, 'length-mismatch');
    assert.equal(dest.started, false);
    guest.stop();
    child.proc.kill();
  });

  it('survives a connection that drops mid-migration; a second attempt succeeds', async () => {
    const { src, guest, child, run } = await migrate({}, { dropAfterBytes: 2_000_000, attempts: 2 });
    await assert.rejects(run(), (e: unknown) => e instanceof MigrationError && e.failure === 'connection');
    const first = await child.next();
    assert.equal(first.ok, false);
    assert.equal(first.started, false, 'no guest on partial memory');
    assert.equal(guest.running, true);
    assert.equal(src.ms.globalDirtyTracking, 0);
    const rb = src.ram.ramBlock!;
    assert.equal(src.ms.dirty.allDirty(rb.offset, rb.usedLength, DIRTY_MEMORY_MIGRATION), true);
    const stats = await migrateOutgoing(src.ms, await connectTo(child.port), { guest });
    const second = await child.next();
    assert.equal(second.ok, true, JSON.stringify(second));
    assert.deepEqual(second.hashes, blockHashes(src.ms));
    assert.ok(stats.pagesSent > 0);
    child.proc.kill();
  });

  it('postcopy: the destination runs after the first pass and fetches missing pages on demand', async () => {
    const { src, child, run } = await migrate(
      {},
      { touchMissing: 8 },
      { postcopy: true, postcopyBandwidth: 2 * 1024 * 1024 },
    );
    const stats = await run();
    const dest = await child.next();
    assert.equal(dest.ok, true, JSON.stringify(dest));
    assert.equal(stats.postcopy, true);
    assert.deepEqual(dest.hashes, blockHashes(src.ms));
    // The guest wrote during the first pass, so some pages were discarded and re-sent; the ones the
    // destination touched first were requested and served ahead of the background stream.
    assert.ok((dest.touched as number) > 0, 'the destination found pages it did not have');
    assert.ok(stats.postcopyRequests > 0, `requests ${stats.postcopyRequests}`);
    assert.ok((dest.requestedPages as number) >= stats.postcopyRequests);
    child.proc.kill();
  });
});
