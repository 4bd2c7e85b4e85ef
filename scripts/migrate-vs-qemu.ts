/**
 * Live-migrates the same running Linux guest with QEMU 7.2 and with memtree, over loopback TCP, and
 * prints what each side's `query-migrate` reports: `downtime` and `total-time` (ms), and the bytes
 * transferred. The guest is Debian 13's riscv64 kernel with the counting /init of the migration
 * tests (test/support/linux-images.ts), the same files and the same -m for both. For each
 * emulator and mode (precopy, postcopy): boot the source, wait for its init to count, start a
 * destination with -incoming, migrate, wait for `completed`, and check the count goes on there.
 *
 * Usage: npm run build && node --import tsx scripts/migrate-vs-qemu.ts [-m SIZE] [--runs N]
 * Needs qemu-system-riscv64 (qemu-system-misc), Debian's OpenSBI and the Debian archive.
 */

import { type ChildProcess, spawn } from 'node:child_process';
import { rmSync } from 'node:fs';
import { cpus } from 'node:os';
import { join, resolve } from 'node:path';
import { QmpClient } from '../src/qmp/client.js';
import { COUNTING_INIT, linuxImages } from '../test/support/linux-images.js';

const args = process.argv.slice(2);
const opt = (name: string, dflt: string) => {
  const i = args.indexOf(name);
  return i >= 0 && args[i + 1] ? args[i + 1]! : dflt;
};
const RAM = opt('-m', '128M');
const RUNS = Number(opt('--runs', '1'));
const BIN = resolve('dist/cli/bin.js');
const APPEND = 'console=ttyS0 quiet';

interface Proc {
  p: ChildProcess;
  out: string;
  err: string;
}

function launch(cmd: string, argv: string[]): Proc {
  const p = spawn(cmd, argv, { stdio: ['ignore', 'pipe', 'pipe'] });
  const r: Proc = { p, out: '', err: '' };
  p.stdout!.setEncoding('utf8').on('data', (s: string) => {
    r.out += s;
  });
  p.stderr!.setEncoding('utf8').on('data', (s: string) => {
    r.err += s;
  });
  return r;
}

const counts = (r: Proc) => [...r.out.matchAll(/^count (\d+) [0-9a-f]{32}\r?$/gm)].length;

async function until(what: string, cond: () => boolean, r: Proc, ms = 900_000): Promise<void> {
  const t0 = Date.now();
  while (!cond()) {
    if (Date.now() - t0 > ms || r.p.exitCode !== null) {
      throw new Error(`gave up waiting for ${what}: ${r.err.slice(-500)} ${r.out.slice(-500)}`);
    }
    await new Promise((res) => setTimeout(res, 50));
  }
}

async function qmp(path: string): Promise<QmpClient> {
  for (let i = 0; ; i++) {
    try {
      return await QmpClient.connect(path, { timeoutMs: 60_000 });
    } catch (e) {
      if (i > 200) throw e;
      await new Promise((res) => setTimeout(res, 100));
    }
  }
}

type Emulator = 'qemu' | 'memtree';

function command(emu: Emulator, img: { kernel: string; initrd: string }, sock: string, incoming?: number) {
  const common = [
    '-m',
    RAM,
    '-kernel',
    img.kernel,
    '-initrd',
    img.initrd,
    '-append',
    APPEND,
    '-qmp',
    `unix:${sock}`,
  ];
  if (emu === 'qemu') {
    return {
      cmd: 'qemu-system-riscv64',
      argv: [
        '-M',
        'virt',
        '-nodefaults',
        '-serial',
        'stdio',
        '-display',
        'none',
        '-monitor',
        'none',
        ...common.map((a) => (a === '-qmp' ? '-qmp' : a)),
        ...(incoming !== undefined ? ['-incoming', `tcp:127.0.0.1:${incoming}`] : []),
      ].map((a, i, all) => (all[i - 1] === '-qmp' ? `${a},server=on,wait=off` : a)),
    };
  }
  return {
    cmd: process.execPath,
    argv: [
      BIN,
      'run',
      'riscv-virt',
      ...common,
      ...(incoming !== undefined ? ['-incoming', `tcp:127.0.0.1:${incoming}`] : []),
    ],
  };
}

async function freePort(): Promise<number> {
  const { createServer } = await import('node:net');
  return new Promise((res) => {
    const s = createServer();
    s.listen(0, '127.0.0.1', () => {
      const a = s.address() as { port: number };
      s.close(() => res(a.port));
    });
  });
}

async function once(
  emu: Emulator,
  mode: 'precopy' | 'postcopy',
  img: { kernel: string; initrd: string; dir: string },
) {
  const sSock = join(img.dir, `${emu}-src.sock`);
  const dSock = join(img.dir, `${emu}-dst.sock`);
  const s = command(emu, img, sSock);
  const src = launch(s.cmd, s.argv);
  let dst: Proc | null = null;
  try {
    const bootT0 = Date.now();
    await until(`${emu} to boot and count`, () => counts(src) >= 3, src);
    const bootMs = Date.now() - bootT0;
    const port = await freePort();
    const d = command(emu, img, dSock, port);
    dst = launch(d.cmd, d.argv);
    const qs = await qmp(sSock);
    const qd = await qmp(dSock);
    if (mode === 'postcopy') {
      for (const q of [qs, qd]) {
        await q.execute('migrate-set-capabilities', {
          capabilities: [{ capability: 'postcopy-ram', state: true }],
        });
      }
    }
    await qs.execute('migrate', { uri: `tcp:127.0.0.1:${port}` });
    if (mode === 'postcopy') {
      for (;;) {
        const st = ((await qs.execute('query-migrate')) as { status: string }).status;
        if (st === 'active') break;
        if (st === 'failed') throw new Error(`${emu} ${mode}: migration failed before postcopy`);
        await new Promise((res) => setTimeout(res, 10));
      }
      await qs.execute('migrate-start-postcopy');
    }
    let info: Record<string, unknown>;
    for (;;) {
      info = (await qs.execute('query-migrate')) as Record<string, unknown>;
      if (info.status === 'completed' || info.status === 'failed') break;
      await new Promise((res) => setTimeout(res, 20));
    }
    if (info.status !== 'completed') throw new Error(`${emu} ${mode}: ${JSON.stringify(info)}`);
    const dd = dst;
    await until(`${emu} to count on the destination`, () => counts(dd) >= 2, dd, 300_000);
    if (/BAD/.test(src.out + dd.out)) throw new Error(`${emu} ${mode}: the guest found its memory wrong`);
    const ram = info.ram as Record<string, number>;
    await qs.close();
    await qd.close();
    return {
      downtime: info.downtime as number,
      total: info['total-time'] as number,
      mib: ram.transferred! / 2 ** 20,
      bootMs,
    };
  } finally {
    src.p.kill('SIGKILL');
    dst?.p.kill('SIGKILL');
  }
}

const img = linuxImages(COUNTING_INIT);
try {
  process.stdout.write(
    `# ${cpus().length} x ${cpus()[0]?.model ?? 'cpu'}, node ${process.version}, -m ${RAM}, ${RUNS} run(s) each\n`,
  );
  process.stdout.write('emulator  mode      downtime ms  total-time ms  transferred MiB\n');
  for (const mode of ['precopy', 'postcopy'] as const) {
    for (const emu of ['qemu', 'memtree'] as const) {
      for (let i = 0; i < RUNS; i++) {
        try {
          const r = await once(emu, mode, img);
          process.stdout.write(
            `${emu.padEnd(9)} ${mode.padEnd(9)} ${String(r.downtime).padStart(11)}  ${String(r.total).padStart(13)}  ${r.mib.toFixed(1).padStart(15)}\n`,
          );
        } catch (e) {
          process.stdout.write(
            `${emu.padEnd(9)} ${mode.padEnd(9)} failed: ${(e as Error).message.split('\n')[0]}\n`,
          );
        }
      }
    }
  }
} finally {
  rmSync(img.dir, { recursive: true, force: true });
}
