/**
 * @module test/qmp-live
 * memtree against a real QEMU 7.2: `memtree qmp SOCKET flat|mtree|lookup` must reproduce what QEMU
 * itself prints for the same running machine, and `memtree capture` must record exactly what QEMU
 * prints. Needs qemu-system-x86_64 and qemu-system-aarch64 on PATH (Debian: qemu-system-x86,
 * qemu-system-arm); without them the tests skip, except under CI, where they fail.
 */

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type TestContext, test } from 'node:test';
import { compareMtreeText } from '../src/mtree/compare.js';
import { CAPTURE_DUMPS, type RunningQemu, startQemu } from '../src/qmp/capture.js';
import { oneLineError, runBin } from './support/run-bin.js';
import { runCli } from './support/run-cli.js';

const FIXTURES = '../shared/fixtures/qemu-7.2';
const X86_PC = ['qemu-system-x86_64', '-M', 'pc', '-m', '512M', '-nodefaults', '-S', '-display', 'none'];
const ARM_VIRT = ['qemu-system-aarch64', '-M', 'virt', '-m', '1G', '-nodefaults', '-S', '-display', 'none'];
const LIVE = { timeout: 120_000 };

/** True if `program` runs; otherwise skips the test, or fails it under CI. */
function haveQemu(t: TestContext, program: string): boolean {
  if (spawnSync(program, ['--version'], { stdio: 'ignore' }).status === 0) return true;
  const why = `${program} is not on PATH (Debian packages qemu-system-x86 and qemu-system-arm)`;
  if (process.env.CI) assert.fail(`${why}; CI must run the live QEMU tests`);
  t.skip(why);
  return false;
}

/** Starts QEMU; it is killed when the test ends, whether the test passed or not. */
async function live(t: TestContext, argv: string[]): Promise<RunningQemu> {
  const q = await startQemu(argv);
  t.after(() => q.dispose());
  return q;
}

/** Runs `memtree ARGS` in-process, files from disk. */
const memtree = (args: string[]) => runCli(args);

function assertSameDump(ours: string, qemus: string, what: string): void {
  const r = compareMtreeText(ours, qemus);
  assert.ok(r.equal, `${what} differs from QEMU's:\n${r.firstDifference}`);
}

/**
 * The flat range QEMU's own `info mtree -f` shows at `addr` in the FlatView of address space `as`:
 * the line that covers it, without its indentation.
 */
function rangeInQemuFlat(flat: string, as: string, addr: bigint): string {
  for (const block of flat.split('\n\n')) {
    const lines = block.split('\n');
    if (!lines.some((l) => l.startsWith(` AS "${as}",`))) continue;
    for (const l of lines) {
      const m = /^ {2}([0-9a-f]{16})-([0-9a-f]{16}) \([^)]*\): (\S+)/.exec(l);
      if (m && BigInt(`0x${m[1]}`) <= addr && addr <= BigInt(`0x${m[2]}`)) return l.trim();
    }
  }
  throw new Error(`QEMU's flat view of ${as} has nothing at 0x${addr.toString(16)}`);
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

async function liveFlatMatchesQemu(t: TestContext, argv: string[]): Promise<void> {
  if (!haveQemu(t, argv[0]!)) return;
  const q = await live(t, argv);
  const qemuFlat = await q.client.hmp('info mtree -f');
  const qemuTree = await q.client.hmp('info mtree -D');
  const qemuTreeEnabled = await q.client.hmp('info mtree');
  // QEMU serves one QMP client at a time: let memtree's own connection in.
  await q.client.close();

  const flat = await memtree(['qmp', q.socketPath, 'flat']);
  assert.equal(flat.code, 0, flat.err);
  assertSameDump(flat.out, qemuFlat, `memtree qmp ${argv[0]} flat`);

  const tree = await memtree(['qmp', q.socketPath, 'mtree', '-D']);
  assert.equal(tree.code, 0, tree.err);
  assertSameDump(tree.out, qemuTree, `memtree qmp ${argv[0]} mtree -D`);

  const enabled = await memtree(['qmp', q.socketPath, 'mtree']);
  assert.equal(enabled.code, 0, enabled.err);
  assertSameDump(enabled.out, qemuTreeEnabled, `memtree qmp ${argv[0]} mtree`);

  await q.quit();
  assert.ok(q.pid !== undefined && !isAlive(q.pid), 'QEMU still runs after quit');
}

test('memtree qmp SOCK flat / mtree [-D] on a live i440FX PC equal QEMU info mtree -f / [-D]', LIVE, (t) =>
  liveFlatMatchesQemu(t, X86_PC),
);

test('memtree qmp SOCK flat / mtree [-D] on a live aarch64 virt equal QEMU info mtree -f / [-D]', LIVE, (t) =>
  liveFlatMatchesQemu(t, ARM_VIRT),
);

test('memtree qmp SOCK lookup finds the region QEMU maps at the address', LIVE, async (t) => {
  if (!haveQemu(t, X86_PC[0]!)) return;
  const q = await live(t, X86_PC);
  const qemuFlat = await q.client.hmp('info mtree -f');
  await q.client.close();
  // The local APIC's MSI window and the BIOS ROM at the top of 4 GiB, as QEMU's flat view has them.
  for (const addr of [0xfee00000n, 0xfffffff0n, 0x1000n]) {
    const expected = rangeInQemuFlat(qemuFlat, 'memory', addr);
    const r = await memtree(['qmp', q.socketPath, 'lookup', `0x${addr.toString(16)}`, '--as', 'memory']);
    assert.equal(r.code, 0, r.err);
    assert.ok(r.out.includes(expected), `lookup 0x${addr.toString(16)}: expected ${expected} in:\n${r.out}`);
  }
  const io = await memtree(['qmp', q.socketPath, 'lookup', '0x70', '--as', 'I/O']);
  assert.equal(io.code, 0, io.err);
  assert.ok(io.out.includes(rangeInQemuFlat(qemuFlat, 'I/O', 0x70n)), io.out);
});

test('memtree capture records exactly what QEMU prints, and the command line', LIVE, async (t) => {
  if (!haveQemu(t, X86_PC[0]!)) return;
  const dir = await mkdtemp(join(tmpdir(), 'memtree-capture-test-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const out = join(dir, 'pc');
  const argv = ['qemu-system-x86_64', '-nodefaults', '-M', 'pc', '-m', '512M'];
  const r = await memtree(['capture', out, '--', ...argv]);
  assert.equal(r.code, 0, r.err);
  assert.deepEqual((await readdir(out)).sort(), [
    'cmdline.txt',
    'flat-d.txt',
    'flat.txt',
    'mtree-D.txt',
    'mtree.txt',
  ]);
  // -S and -display none were added in the fixtures' place; the private -qmp option is not recorded.
  assert.equal(
    await readFile(join(out, 'cmdline.txt'), 'utf8'),
    'qemu-system-x86_64 -S -display none -nodefaults -M pc -m 512M\n',
  );

  // The same machine started afresh prints the same dumps (up to QEMU's hash-table order).
  const q = await live(t, argv);
  const greeting = q.client.greeting.version.qemu;
  for (const d of CAPTURE_DUMPS) {
    const saved = await readFile(join(out, d.file), 'utf8');
    assert.ok(!saved.includes('\r'), `${d.file} still has \\r`);
    assertSameDump(saved, await q.client.hmp(d.command), d.file);
    // The shared fixture pc-512m is this machine, recorded by the same QEMU version.
    if (greeting.major === 7 && greeting.minor === 2) {
      assertSameDump(
        saved,
        await readFile(join(FIXTURES, 'pc-512m', d.file), 'utf8'),
        `${d.file} vs fixture`,
      );
    }
  }
  await q.quit();
});

test('memtree capture reports a QEMU that exits early, with its exit code and stderr', LIVE, async (t) => {
  if (!haveQemu(t, X86_PC[0]!)) return;
  const dir = await mkdtemp(join(tmpdir(), 'memtree-capture-test-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const r = await memtree(['capture', join(dir, 'out'), '--', 'qemu-system-x86_64', '-M', 'no-such-machine']);
  assert.equal(r.code, 1);
  assert.match(r.err, /exited with code 1/);
  assert.match(r.err, /unsupported machine type/);
  // Nothing was written.
  assert.deepEqual(await readdir(dir), []);
});

test('memtree qmp on a socket nobody serves is a one-line user error', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'memtree-qmp-test-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const r = await memtree(['qmp', join(dir, 'none.sock'), 'hmp', 'info mtree']);
  assert.equal(r.code, 1);
  assert.match(r.err, /^memtree qmp: no QMP socket at .*none\.sock\n$/);
});

test('the repository fixtures are what this QEMU prints for their command lines', LIVE, async (t) => {
  const root = 'fixtures/qemu-7.2';
  // Only folders `memtree capture` wrote; pc-kvm-owners was taken by hand with `-o` (its README).
  const cases = (await readdir(root, { withFileTypes: true }))
    .filter((d) => d.isDirectory() && existsSync(join(root, d.name, 'mtree.txt')))
    .map((d) => d.name);
  assert.ok(cases.length >= 5, `only ${cases.length} cases in ${root}`);
  const dir = await mkdtemp(join(tmpdir(), 'memtree-capture-test-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  for (const name of cases.sort()) {
    await t.test(name, async (st) => {
      // cmdline.txt of these cases has no quoting: the argv is its words.
      const argv = (await readFile(join(root, name, 'cmdline.txt'), 'utf8')).trimEnd().split(' ');
      if (!haveQemu(st, argv[0]!)) return;
      const version = spawnSync(argv[0]!, ['--version'], { encoding: 'utf8' }).stdout;
      if (!/version 7\.2\./.test(version)) {
        st.skip(`recorded with QEMU 7.2, this is ${version.split('\n')[0]}`);
        return;
      }
      const r = await memtree(['capture', join(dir, name), '--', ...argv]);
      assert.equal(r.code, 0, r.err);
      for (const d of [...CAPTURE_DUMPS.map((x) => x.file), 'cmdline.txt']) {
        const again = await readFile(join(dir, name, d), 'utf8');
        assertSameDump(again, await readFile(join(root, name, d), 'utf8'), `${name}/${d}`);
      }
    });
  }
});

/** Timers that keep Node's event loop alive right now. */
const pendingTimers = () => process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length;

test('a finished capture or quit leaves no timer behind to hold the process', LIVE, async (t) => {
  if (!haveQemu(t, X86_PC[0]!)) return;
  const before = pendingTimers();
  const q = await startQemu(X86_PC, { quitTimeoutMs: 600_000 });
  await q.quit();
  // The 10-minute quit timer of the race against QEMU's exit must be gone with the race.
  assert.equal(pendingTimers(), before);

  const dir = await mkdtemp(join(tmpdir(), 'memtree-capture-test-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const { capture } = await import('../src/qmp/capture.js');
  await capture(
    join(dir, 'a'),
    X86_PC.filter((a) => a !== '-S'),
    { quitTimeoutMs: 600_000 },
  );
  assert.equal(pendingTimers(), before);
  // And the real command exits as soon as its work is done: with a pending 10 s timer it would
  // still be waiting when the safety net kills it.
  const r = await runBin(['capture', join(dir, 'b'), '--', 'qemu-system-x86_64', '-M', 'pc', '-nodefaults'], {
    killAfterMs: 9000,
  });
  assert.equal(r.signal, null, 'memtree capture did not exit by itself');
  assert.equal(r.code, 0, r.err);
});

test('memtree qmp ... hmp with a command line QEMU refuses is exit 1 with its complaint', LIVE, async (t) => {
  if (!haveQemu(t, X86_PC[0]!)) return;
  const q = await live(t, X86_PC);
  await q.client.close();
  const unknown = await runBin(['qmp', q.socketPath, 'hmp', 'info nosuch']);
  assert.equal(oneLineError(unknown, 1), undefined, unknown.err);
  assert.match(unknown.err, /unknown command: 'info nosuch'/);
  const badOption = await runBin(['qmp', q.socketPath, 'hmp', 'info mtree -z']);
  assert.equal(oneLineError(badOption, 1), undefined, badOption.err);
  assert.match(badOption.err, /mtree: unsupported option -z/);
  const ok = await runBin(['qmp', q.socketPath, 'hmp', 'info mtree -f']);
  assert.equal(ok.code, 0, ok.err);
  assert.match(ok.out, /^FlatView #0\n/);
});

test('a QMP peer that sends terminal escapes or endless JSON gets one escaped error line', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'memtree-qmp-test-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  // Greets with something that is not QMP, full of control characters.
  const liar = createServer((s) => s.end('{"hello":\r\n\t"\\u001b[2J rm -rf /"}\r\n'));
  const liarPath = join(dir, 'liar.sock');
  await new Promise<void>((r) => liar.listen(liarPath, r));
  t.after(() => liar.close());
  const r = await runBin(['qmp', liarPath, 'flat']);
  assert.equal(oneLineError(r, 1), undefined, r.err);
  assert.match(r.err, /did not greet with QMP: \{"hello":\\r\\n\\t"\\u001b\[2J rm -rf \/"\}/);

  // Greets properly, then answers with one string that never ends.
  const flood = createServer((s) => {
    s.write(
      '{"QMP": {"version": {"qemu": {"micro": 0, "minor": 2, "major": 7}, "package": ""}, "capabilities": []}}\r\n',
    );
    s.once('data', () => {
      s.write('{"return": {}, "id": 1}\r\n{"return": "');
      const chunk = 'x'.repeat(1 << 16);
      const pump = () => {
        while (!s.destroyed) if (!s.write(chunk)) return void s.once('drain', pump);
      };
      s.on('error', () => {});
      pump();
    });
  });
  const floodPath = join(dir, 'flood.sock');
  await new Promise<void>((r) => flood.listen(floodPath, r));
  t.after(() => {
    flood.close();
  });
  const f = await runBin(['qmp', floodPath, 'flat']);
  assert.equal(oneLineError(f, 1), undefined, f.err);
  assert.match(f.err, /QMP message longer than/);
});
