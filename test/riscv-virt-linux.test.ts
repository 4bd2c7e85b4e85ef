/**
 * @module test/riscv-virt-linux
 * Debian 13's own riscv64 Linux kernel on memtree's riscv virt machine, against QEMU 7.2 with the
 * same files: the kernel (linux-image-riscv64) and an initramfs built here around Debian 13's
 * riscv64 busybox-static whose /init prints /proc/iomem and powers off. Both are fetched from the
 * Debian archive with a private apt configuration (test/support/debian-riscv64.ts). memtree runs
 * it through `memtree run riscv-virt`, which must exit with the guest's power-off status 0.
 *
 * The memory map Linux reports must equal QEMU's line for line, except the "Reserved" ranges the
 * kernel allocates at run time from the top of RAM (memblock, top-down: per-CPU areas, the
 * unflattened device tree, ISA-extension tables), whose sizes follow the CPU's extension list and
 * the device tree's size; QEMU's CPU lists more extensions than memtree's hart implements.
 *
 * The same boot with two harts (`-smp 2`) brings the second hart up through SBI's HSM calls and
 * runs Linux on both (IPIs through the ACLINT, remote fences, the PLIC's second context pair): the
 * kernel must list the same processors and harts in /proc/cpuinfo as under QEMU, and the same
 * memory map.
 */

import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { type TestContext, test } from 'node:test';
import { DEFAULT_BIOS } from '../src/cli/commands/run.js';
import { riscvLinuxImages } from './support/linux-images.js';
import { haveProgram, qemuSerial } from './support/qemu-serial.js';
import { runCli } from './support/run-cli.js';

const QEMU = 'qemu-system-riscv64';
const INIT = `#!/bin/busybox sh
/bin/busybox mount -t proc proc /proc
/bin/busybox mkdir -p /sys
/bin/busybox mount -t sysfs sysfs /sys
echo "rtc: $(/bin/busybox cat /sys/class/rtc/rtc0/date) $(/bin/busybox date -u +%Y-%m-%dT%H)"
echo "cpus: $(/bin/busybox grep -c ^processor /proc/cpuinfo)"
/bin/busybox grep -E '^hart[[:space:]]+:' /proc/cpuinfo
echo "--- iomem ---"
/bin/busybox cat /proc/iomem
echo "--- end ---"
/bin/busybox poweroff -f
`;

/** The /proc/iomem lines between the init script's markers. */
function iomem(serial: string): string[] {
  const m = /--- iomem ---\r?\n([\s\S]*?)--- end ---/.exec(serial);
  assert.ok(m, `no /proc/iomem in the guest's output:\n${serial.slice(-3000)}`);
  // Only /proc/iomem's own lines ("start-end : name"): the kernel's "reboot: Power down" can
  // overtake init's output still in the console's buffer (seen once from QEMU).
  return m[1]!.split(/\r?\n/).filter((l) => /^\s*[0-9a-f]+-[0-9a-f]+ : \S/.test(l));
}

/** The hart numbers /proc/cpuinfo lists ("hart : N" lines). */
function harts(serial: string): string[] {
  return [...serial.matchAll(/^hart\s+:\s*(\d+)/gm)].map((m) => m[1]!);
}

/**
 * Boots the kernel with `smp` harts on QEMU 7.2 and on memtree (fixed RTC start and rng-seed, at
 * most `maxInsns` instructions) and checks what the guest printed.
 */
async function bootBoth(t: TestContext, smp: number, maxInsns: number): Promise<void> {
  if (!haveProgram(t, QEMU, 'qemu-system-misc')) return;
  const img = riscvLinuxImages(t, INIT);
  if (!img) return;
  t.after(() => rmSync(img.dir, { recursive: true, force: true }));
  const ramMiB = 256;
  const append = 'console=ttyS0 quiet';
  // The RTC starts at a fixed date on both (memtree's RTC always runs on virtual time, QEMU's
  // clock=vm). memtree also gets a fixed /chosen/rng-seed, so its boot is the same every run; QEMU
  // has no such option and seeds afresh.
  const rtcBase = '2006-06-17T16:00:00';
  const qemu = await qemuSerial(
    [
      QEMU,
      '-M',
      'virt',
      '-smp',
      String(smp),
      '-m',
      `${ramMiB}M`,
      '-nodefaults',
      '-kernel',
      img.kernel,
      '-initrd',
      img.initrd,
      '-append',
      append,
      '-rtc',
      `base=${rtcBase},clock=vm`,
    ],
    /--- end ---/,
    { timeoutMs: 300_000 },
  );
  const r = await runCli([
    'run',
    'riscv-virt',
    '--smp',
    String(smp),
    '-m',
    `${ramMiB}M`,
    '--bios',
    DEFAULT_BIOS,
    '--kernel',
    img.kernel,
    '--initrd',
    img.initrd,
    '--append',
    append,
    '--rtc',
    `base=${rtcBase}`,
    '--rng-seed',
    '6d656d747265652072697363762d7669727420626f6f74206f66204c696e7578',
    // A guest that stops making progress fails here, with the harts' pcs and the options to run
    // the same boot again, instead of running on.
    '--max-insns',
    String(maxInsns),
  ]);
  assert.equal(r.code, 0, `exit status ${r.code}: ${r.err}\n${r.out.slice(-3000)}`);
  assert.match(r.out, /reboot: Power down/);
  const topAllocations = 0x80000000 + ramMiB * 2 ** 20 - 2 * 2 ** 20;
  const runtime = (l: string) => {
    const m = /^\s+([0-9a-f]+)-[0-9a-f]+ : Reserved$/.exec(l);
    return m !== null && Number.parseInt(m[1]!, 16) >= topAllocations;
  };
  // hctosys set the system clock from the RTC: the date QEMU's RTC started from, an hour not yet over
  const rtc = /^rtc: (.*)$/m;
  assert.equal(rtc.exec(r.out)?.[1]?.trim(), '2006-06-17 2006-06-17T16');
  assert.equal(rtc.exec(qemu)?.[1]?.trim(), '2006-06-17 2006-06-17T16');
  // Every hart came online, numbered 0..smp-1 as in the device tree. Linux lists the boot hart as
  // processor 0, and the boot hart is whichever wins OpenSBI's cold-boot lottery (an atomic add
  // in its fw_base.S): under QEMU's MTTCG any hart can win, so the order of the
  // "hart" lines varies between QEMU runs (seen: 1 then 0) and only the set is compared.
  const cpus = /^cpus: (\d+)/m;
  const all = Array.from({ length: smp }, (_, i) => String(i));
  const sorted = (l: string[]) => [...l].sort((a, b) => Number(a) - Number(b));
  assert.equal(cpus.exec(qemu)?.[1], String(smp));
  assert.deepEqual(sorted(harts(qemu)), all);
  assert.equal(cpus.exec(r.out)?.[1], String(smp));
  assert.deepEqual(sorted(harts(r.out)), all);
  const ours = iomem(r.out);
  const theirs = iomem(qemu);
  t.diagnostic(
    `run-time Reserved ranges at the top of RAM: QEMU ${theirs.filter(runtime).length}, memtree ${ours.filter(runtime).length}`,
  );
  assert.deepEqual(
    ours.filter((l) => !runtime(l)),
    theirs.filter((l) => !runtime(l)),
  );
  assert.ok(ours.some((l) => /: Kernel code$/.test(l)) && ours.some((l) => /: System RAM$/.test(l)));
}

test("Debian 13's Linux boots to its init on memtree run riscv-virt, prints QEMU's /proc/iomem and powers off", {
  // About 1.05 billion guest instructions: 75 to 90 s on an idle 2-core machine, far more on a loaded one.
  timeout: 3_000_000,
}, async (t) => {
  // The boot takes about 1.05 billion
  await bootBoth(t, 1, 4_000_000_000);
});

test("Debian 13's Linux boots on two harts (-smp 2) like QEMU's: both harts online, the same /proc/iomem", {
  // About 1.23 billion guest instructions over both harts (90 s of CPU time measured on a loaded
  // 2-core machine; about 1.2 times the one-hart boot's).
  timeout: 3_000_000,
}, async (t) => {
  // The boot took 1.16 to 1.28 billion over ten random rng-seeds, 1.44 billion with four harts
  await bootBoth(t, 2, 4_000_000_000);
});
