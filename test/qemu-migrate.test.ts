/**
 * Reads the RAM of a real QEMU 7.2 migration stream: QEMU is started paused (-S) with a QMP monitor
 * on stdio, migrates to a file with `migrate "exec:cat > FILE"`, and memtree loads the "ram" section
 * into matching RAM blocks. The pc.bios block must equal the SeaBIOS image QEMU loaded
 * (Debian's /usr/share/seabios/bios-256k.bin). Skipped when QEMU is not installed, except on CI.
 */
import assert from 'node:assert/strict';
import { type ChildProcessWithoutNullStreams, spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { connect, createServer, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { after, before, describe, it } from 'node:test';
import { main } from '../src/cli/main.js';
import { MemorySystem } from '../src/core/system.js';
import { MigrationError } from '../src/migration/errors.js';
import { socketConnection } from '../src/migration/node-io.js';
import { migrateOutgoing } from '../src/migration/precopy.js';
import { inspectStream, loadRamStream } from '../src/migration/ram-load.js';
import { formatRamblock } from '../src/mtree/ramblock.js';
import { runCli } from './support/run-cli.js';

const QEMU = 'qemu-system-x86_64';
const BIOS = '/usr/share/seabios/bios-256k.bin';
const KiB = 1024;
const MiB = 1024 * KiB;

const haveQemu = spawnSync(QEMU, ['--version']).status === 0 && existsSync(BIOS);
if (!haveQemu && process.env.CI) throw new Error(`${QEMU} or ${BIOS} is missing on CI`);
const skip = haveQemu ? false : `${QEMU} or ${BIOS} is not installed`;

/** A minimal QMP conversation over QEMU's stdio. */
class Qmp {
  private readonly replies: Array<(v: Record<string, unknown>) => void> = [];
  constructor(readonly proc: ChildProcessWithoutNullStreams) {
    const rl = createInterface({ input: proc.stdout });
    rl.on('line', (line) => {
      const msg = JSON.parse(line) as Record<string, unknown>;
      if ('return' in msg || 'error' in msg) this.replies.shift()?.(msg);
    });
  }
  execute(cmd: string, args?: object): Promise<Record<string, unknown>> {
    return new Promise((resolve) => {
      this.replies.push(resolve);
      this.proc.stdin.write(
        `${JSON.stringify(args ? { execute: cmd, arguments: args } : { execute: cmd })}\n`,
      );
    });
  }
}

/** The command line of a paused 32 MiB pc machine with QMP on stdio, plus `extra`. */
function pausedPc(...extra: string[]): string[] {
  return ['-M', 'pc', '-m', '32M', '-nodefaults', '-S', '-display', 'none', ...extra, '-qmp', 'stdio'];
}

/** Runs QEMU paused and migrates it into `file`; resolves with the `info ramblock` text. */
async function qemuMigrateToFile(file: string): Promise<string> {
  const proc = spawn(QEMU, pausedPc());
  const qmp = new Qmp(proc);
  try {
    await qmp.execute('qmp_capabilities');
    const info = await qmp.execute('human-monitor-command', { 'command-line': 'info ramblock' });
    const r = await qmp.execute('migrate', { uri: `exec:cat > ${file}` });
    assert.deepEqual(r.return, {}, `migrate failed: ${JSON.stringify(r)}`);
    for (let i = 0; i < 600; i++) {
      const q = (await qmp.execute('query-migrate')).return as { status?: string };
      if (q.status === 'completed') return info.return as string;
      if (q.status === 'failed') throw new Error('QEMU reports the migration failed');
      await new Promise((res) => setTimeout(res, 50));
    }
    throw new Error('migration did not complete');
  } finally {
    await qmp.execute('quit').catch(() => {});
    proc.kill();
  }
}

/** The RAM blocks of `-M pc -m 32M -nodefaults`, in the order QEMU creates them. */
function pc32m() {
  const ms = new MemorySystem();
  const r = {
    ram: ms.ram('pc.ram', 32 * MiB),
    bios: ms.rom('pc.bios', 256 * KiB),
    rom: ms.ram('pc.rom', 128 * KiB),
    acpi: ms.ram('/rom@etc/acpi/tables', 128 * KiB, { maxSize: 2 * MiB }),
    loader: ms.ram('/rom@etc/table-loader', 4 * KiB, { maxSize: 64 * KiB }),
    rsdp: ms.ram('/rom@etc/acpi/rsdp', 4 * KiB, { maxSize: 4 * KiB }),
  };
  return { ms, r };
}

describe('reading a real QEMU 7.2 migration stream', { skip }, () => {
  let dir = '';
  let file = '';
  let ramblockText = '';
  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'memtree-qemu-mig-'));
    file = join(dir, 'pc.mig');
    ramblockText = await qemuMigrateToFile(file);
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('loads the RAM section into matching blocks; pc.bios equals the SeaBIOS image', async () => {
    const { ms, r } = pc32m();
    // Our model places and orders the blocks as QEMU did (compare with its own info ramblock).
    assert.equal(formatRamblock(ms).replace(/\r/g, ''), ramblockText.replace(/\r/g, ''));
    const bytes = new Uint8Array(readFileSync(file));
    const res = await loadRamStream(ms, bytes, { readTail: true });
    assert.equal(res.machine, 'pc-i440fx-7.2');
    assert.equal(res.ramComplete, true);
    assert.deepEqual(
      res.blocks.map((b) => b.id),
      ms.ramList.blocks.map((b) => b.idstr),
      'the MEM_SIZE list is in RAM list order (R12.2)',
    );
    const bios = new Uint8Array(r.bios.ramBlock!.usedLength);
    ms.readRam(r.bios, 0, bios);
    assert.deepEqual(Buffer.from(bios), readFileSync(BIOS));
    // Every page of every block arrived exactly as one record (a paused guest, one pass).
    for (const b of ms.ramList.blocks)
      assert.equal(res.loader.received.get(b.idstr)!.count(), b.usedLength / 4096);
    // The device sections after RAM are reported, not read: the first is QEMU's "timer".
    assert.equal(res.skipped[0]?.idstr, 'timer');
    assert.ok(res.skipped.some((s) => s.idstr === 'globalstate'));
  });

  it('migrate-info and migrate-extract read the same file', async () => {
    const out: string[] = [];
    const err: string[] = [];
    const io = {
      stdout: { write: (s: string) => out.push(s) },
      stderr: { write: (s: string) => err.push(s) },
      readText: async () => '',
    };
    assert.equal(await main(['migrate-info', file, '--json'], io), 0);
    const list = JSON.parse(out.join('')) as Array<{
      id: string;
      length: number;
      pages: number;
      zeroPages: number;
    }>;
    const bios = list.find((b) => b.id === 'pc.bios')!;
    assert.equal(bios.length, 256 * KiB);
    assert.equal(bios.pages, 64);
    // Zero pages of the BIOS image counted independently from the image itself.
    const img = readFileSync(BIOS);
    let zeros = 0;
    for (let p = 0; p < img.length; p += 4096) if (img.subarray(p, p + 4096).every((x) => x === 0)) zeros++;
    assert.equal(bios.zeroPages, zeros);
    assert.equal(list.find((b) => b.id === 'pc.ram')!.length, 32 * MiB);
    const target = join(dir, 'bios.bin');
    assert.equal(await main(['migrate-extract', file, 'pc.bios', target], io), 0);
    assert.deepEqual(readFileSync(target), img);
    out.length = 0;
    assert.equal(await main(['migrate-info', file], io), 0);
    assert.match(out.join(''), /machine: pc-i440fx-7\.2/);
    assert.match(out.join(''), /skipped \d+ device sections: timer, /);
    assert.equal(await main(['migrate-extract', file, 'nope', target], io), 1);
    assert.match(err.join(''), /block "nope" is not in/);
  });

  it('refuses the stream on a machine that lacks a block, before taking any page', async () => {
    const ms = new MemorySystem();
    const ram = ms.ram('pc.ram', 32 * MiB);
    ms.writeRam(ram, 0, new Uint8Array([0xaa]));
    await assert.rejects(loadRamStream(ms, new Uint8Array(readFileSync(file))), (e: unknown) => {
      assert.ok(e instanceof MigrationError);
      assert.equal(e.failure, 'unknown-block');
      assert.equal(e.block, '/rom@etc/acpi/tables');
      assert.match(e.message, /Unknown ramblock "\/rom@etc\/acpi\/tables", cannot accept migration/);
      return true;
    });
    const first = new Uint8Array(1);
    ms.readRam(ram, 0, first);
    assert.equal(first[0], 0xaa, 'no page was loaded');
  });

  it('a copy cut anywhere in the device sections after RAM is truncated: migrate-info exits 1', async () => {
    const bytes = new Uint8Array(readFileSync(file));
    // Where the RAM section ends and QEMU's device sections begin.
    const ramEnd = (await inspectStream(bytes)).bytes;
    assert.ok(ramEnd > 256 * KiB && ramEnd < bytes.length - 1000, `${ramEnd} of ${bytes.length}`);
    for (const n of [ramEnd + 1, ramEnd + 200, Math.floor((ramEnd + bytes.length) / 2), bytes.length - 1]) {
      const cutFile = join(dir, `cut-${n}.mig`);
      writeFileSync(cutFile, bytes.subarray(0, n));
      const r = await runCli(['migrate-info', cutFile]);
      assert.equal(r.code, 1, `cut at ${n} of ${bytes.length}: ${r.out}`);
      assert.match(r.err, /truncated/);
      rmSync(cutFile);
    }
  });

  it('reports a truncated copy of the file as truncated', async () => {
    const bytes = new Uint8Array(readFileSync(file));
    const cut = bytes.subarray(0, 100_000);
    await assert.rejects(
      inspectStream(cut),
      (e: unknown) => e instanceof MigrationError && e.failure === 'truncated',
    );
  });
});

describe('QEMU 7.2 as the destination of a memtree live migration', { skip }, () => {
  it('with the memtree extensions off, QEMU loads the stream: status completed, RAM as sent', async () => {
    const { ms, r } = pc32m();
    const marker = new TextEncoder().encode('memtree was here');
    ms.writeRam(r.ram, 0x100000, marker);
    const port = await new Promise<number>((resolve) => {
      const probe = createServer();
      probe.listen(0, '127.0.0.1', () => {
        const p = (probe.address() as { port: number }).port;
        probe.close(() => resolve(p));
      });
    });
    const proc = spawn(QEMU, pausedPc('-incoming', `tcp:127.0.0.1:${port}`));
    const qmp = new Qmp(proc);
    try {
      await qmp.execute('qmp_capabilities');
      let sock: Socket | null = null;
      for (let i = 0; i < 50 && !sock; i++) {
        sock = await new Promise<Socket | null>((resolve) => {
          const s = connect(port, '127.0.0.1', () => resolve(s));
          s.once('error', () => resolve(null));
        });
        if (!sock) await new Promise((res) => setTimeout(res, 100));
      }
      assert.ok(sock, 'QEMU listens for the migration');
      // QEMU checks the machine type of the configuration record; SHUT(0) on its return path
      // (migration_incoming_state_destroy) completes the source.
      const stats = await migrateOutgoing(ms, socketConnection(sock), {
        machine: 'pc-i440fx-7.2',
        confirmSwitchover: false,
        timeoutMs: 10_000,
      });
      assert.ok(stats.pagesSent >= 1);
      let status = '';
      for (let i = 0; i < 100 && status !== 'completed'; i++) {
        status = ((await qmp.execute('query-migrate')).return as { status?: string }).status ?? '';
        if (status !== 'completed') await new Promise((res) => setTimeout(res, 50));
      }
      assert.equal(status, 'completed');
      const xp = (await qmp.execute('human-monitor-command', { 'command-line': 'xp /16cb 0x100000' }))
        .return as string;
      assert.equal(
        xp.replace(/\r/g, ''),
        "0000000000100000: 'm' 'e' 'm' 't' 'r' 'e' 'e' ' '\n0000000000100008: 'w' 'a' 's' ' ' 'h' 'e' 'r' 'e'\n",
      );
    } finally {
      await qmp.execute('quit').catch(() => {});
      proc.kill();
    }
  });
});
