/**
 * @module test/riscv-virt-boot
 * Real software on memtree's riscv64 virt machine, compared with QEMU 7.2 running the same files:
 * OpenSBI from Debian's qemu-system-data (its banner's platform, firmware and domain lines), and
 * U-Boot from Debian's u-boot-qemu as -kernel (its DRAM: and Flash: lines, and reaching its prompt).
 * Needs qemu-system-riscv64 (qemu-system-misc), the OpenSBI image (qemu-system-data / opensbi) and
 * u-boot-qemu; without them the tests skip, except under CI, where they fail.
 */

import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { type TestContext, test } from 'node:test';
import { DEFAULT_BIOS } from '../src/cli/commands/run.js';
import { bootRiscvVirt } from '../src/machines/riscv/boot.js';
import { buildRiscvVirt } from '../src/machines/riscv/virt.js';
import { haveProgram, qemuSerial } from './support/qemu-serial.js';
import { runCli } from './support/run-cli.js';

const QEMU = 'qemu-system-riscv64';
const UBOOT = '/usr/lib/u-boot/qemu-riscv64_smode/u-boot.bin';
const MiB = 1024 * 1024;

function haveFile(t: TestContext, path: string, pkg: string): boolean {
  if (existsSync(path)) return true;
  const why = `${path} is missing (Debian package ${pkg})`;
  if (process.env.CI) assert.fail(`${why}; CI must run this test`);
  t.skip(why);
  return false;
}

/** The lines of `text` that start with one of `prefixes`, trailing blanks removed. */
function linesStarting(text: string, prefixes: RegExp): string[] {
  return text
    .split(/\r?\n/)
    .map((l) => l.trimEnd())
    .filter((l) => prefixes.test(l));
}

/** Runs memtree's machine until `until` shows in the UART output (or `limit` instructions). */
function runOurs(
  o: { ramSize: number; smp?: number; kernel?: Uint8Array },
  until: RegExp,
  limit: number,
  answer?: { when: RegExp; send: string },
): string {
  let out = '';
  const m = buildRiscvVirt({
    ramSize: o.ramSize,
    smp: o.smp,
    uartSink: (b) => {
      out += String.fromCharCode(b);
    },
  });
  bootRiscvVirt(m, { bios: new Uint8Array(readFileSync(DEFAULT_BIOS)), kernel: o.kernel });
  let answered = false;
  const r = m.run(limit, () => {
    if (answer && !answered && answer.when.test(out)) {
      answered = true;
      m.input.push(...Buffer.from(answer.send));
    }
    return until.test(out);
  });
  assert.equal(
    r,
    'until',
    `the guest did not print ${until} within ${limit} instructions; it printed:\n${out}`,
  );
  return out;
}

const BANNER = /^(Platform|Firmware|Domain0) /;

for (const c of [
  { m: '512M', bytes: 512 * MiB, smp: 1 },
  { m: '256M', bytes: 256 * MiB, smp: 2 },
]) {
  test(`OpenSBI on -m ${c.m} -smp ${c.smp}: memtree run prints the banner's platform, firmware and domain lines QEMU prints`, {
    timeout: 180_000,
  }, async (t) => {
    if (!haveProgram(t, QEMU, 'qemu-system-misc') || !haveFile(t, DEFAULT_BIOS, 'qemu-system-data')) return;
    const qemu = await qemuSerial(
      [QEMU, '-M', 'virt', '-m', c.m, '-smp', String(c.smp), '-nodefaults'],
      /Boot HART ID/,
    );
    const expected = linesStarting(qemu, BANNER);
    assert.ok(expected.length >= 20, `QEMU printed only:\n${qemu}`);
    // Through the CLI: the firmware then jumps to address 0 in S-mode and never powers off, so the
    // run ends at the instruction limit (exit status 3).
    const r = await runCli([
      'run',
      'riscv-virt',
      '-m',
      c.m,
      '-smp',
      String(c.smp),
      '--max-insns',
      '40000000',
    ]);
    assert.equal(r.code, 3, r.err);
    // With several harts OpenSBI's cold-boot hart is whichever wins its lottery first; QEMU runs
    // its harts in parallel threads, so that line varies from run to run there. Ours must name one
    // of the harts; every other line must be QEMU's.
    const boot = /^Domain0 Boot HART\s+: (\d+)$/;
    const ours = linesStarting(r.out, BANNER);
    if (c.smp > 1) {
      const hart = ours.map((l) => boot.exec(l)).find((m) => m);
      assert.ok(hart && Number(hart[1]) < c.smp, `no valid boot hart in ${ours.join('\n')}`);
      const other = (ls: string[]) => ls.filter((l) => !boot.test(l));
      assert.deepEqual(other(ours), other(expected));
    } else {
      assert.deepEqual(ours, expected);
    }
  });
}

test("U-Boot (u-boot-qemu, qemu-riscv64_smode) reaches its prompt with QEMU's DRAM: and Flash: lines", {
  timeout: 300_000,
}, async (t) => {
  if (
    !haveProgram(t, QEMU, 'qemu-system-misc') ||
    !haveFile(t, DEFAULT_BIOS, 'qemu-system-data') ||
    !haveFile(t, UBOOT, 'u-boot-qemu')
  )
    return;
  const stop = { when: /Hit any key to stop autoboot/, send: ' ' };
  const qemu = await qemuSerial(
    [QEMU, '-M', 'virt', '-m', '512M', '-nodefaults', '-kernel', UBOOT],
    /\n=> $/,
    {
      answer: stop,
    },
  );
  const ours = runOurs(
    { ramSize: 512 * MiB, kernel: new Uint8Array(readFileSync(UBOOT)) },
    /\n=> $/,
    300_000_000,
    stop,
  );
  const lines = /^(DRAM|Flash|Model|In|Out|Err|Net): /;
  const expected = linesStarting(qemu, lines);
  assert.deepEqual(
    expected.filter((l) => /^(DRAM|Flash)/.test(l)).length,
    2,
    `QEMU's U-Boot printed no DRAM:/Flash: lines:\n${qemu}`,
  );
  assert.deepEqual(linesStarting(ours, lines), expected);
});
