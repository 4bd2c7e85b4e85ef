/**
 * @module machines/riscv/virt-state.test
 * The virt machine's device state survives migration: each device is put by guest-style MMIO
 * accesses into a state far from reset (FIFO with bytes in it, timers armed, interrupts claimed,
 * flash in query mode...), the machine's state goes through the section's JSON encoding into a
 * freshly built machine, and then every register of every device, read in the same order on
 * both, gives the same values (reads with side effects included: both sides must react the same),
 * before and after the armed timers fire. Values that follow from the writes are also checked
 * against hand reasoning from QEMU's device sources. A missing, short or unknown-version entry is
 * a typed error that changes nothing on the destination.
 */

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { MigrationError } from '../../migration/errors.js';
import { decodeMachineState, encodeMachineState } from '../../migration/machine-state.js';
import { bootRiscvVirt } from './boot.js';
import { asmSkip, assemble } from './cpu/test-support/asm.js';
import { DeviceStateError } from './devices/state.js';
import {
  ECAM,
  FLASH0,
  FLASH1,
  FWCFG,
  MTIMER,
  PLIC,
  RTC,
  SWI,
  TEST,
  UART,
  VIRTIO,
} from './test-support/virt-map.js';
import { buildRiscvVirt, type RiscvVirtMachine } from './virt.js';
import { loadVirtState, saveVirtState } from './virt-state.js';

const build = (epoch: bigint) => buildRiscvVirt({ ramSize: 16 << 20, smp: 2, rtcEpochNs: epoch });

/** Puts every device into a state a reset machine does not have. */
function program(m: RiscvVirtMachine): void {
  const a = m.memory;
  m.clock.advanceTo(1_000_000);
  // UART: 7N2 at divisor 3, FIFO on with trigger level 4, all interrupts on, scratch, loopback off.
  a.stb(UART + 3, 0x80);
  a.stb(UART + 0, 0x03);
  a.stb(UART + 1, 0x00);
  a.stb(UART + 3, 0x06);
  a.stb(UART + 2, 0x41);
  a.stb(UART + 1, 0x0f);
  a.stb(UART + 7, 0x5a);
  a.stb(UART + 4, 0x0b);
  m.uart.receive([0x68, 0x69]); // "hi": below the trigger level, so the timeout timer runs
  // ACLINT: hart 1's software interrupt, timers in the future, mtime moved.
  a.stlLe(SWI + 4, 1);
  a.stqLe(MTIMER + 0x7ff8, 5000n);
  a.stqLe(MTIMER, 9000n);
  a.stqLe(MTIMER + 8, 5_000_000n);
  // PLIC: UART (10) and RTC (11) enabled for hart 0's S context, priorities, a threshold.
  a.stlLe(PLIC + 4 * 10, 5);
  a.stlLe(PLIC + 4 * 11, 3);
  a.stlLe(PLIC + 4 * 7, 1);
  a.stlLe(PLIC + 0x2000 + 0x80, (1 << 10) | (1 << 11));
  a.stlLe(PLIC + 0x2000 + 0x80 * 3, 1 << 7);
  a.stlLe(PLIC + 0x200000 + 0x1000, 1);
  a.stlLe(PLIC + 0x200000 + 0x3000, 6);
  // RTC: alarm 1 ms ahead, interrupt enabled; an alarm already past raises its line first.
  const now = a.ldlLe(RTC) + a.ldlLe(RTC + 4) * 2 ** 32;
  a.stlLe(RTC + 0x10, 1);
  a.stlLe(RTC + 0x0c, 0);
  a.stlLe(RTC + 0x08, 0);
  a.stlLe(RTC + 0x1c, 1); // clear it again
  const at = BigInt(now) + 1_000_000n;
  a.stlLe(RTC + 0x0c, Number(at >> 32n));
  a.stlLe(RTC + 0x08, Number(at & 0xffffffffn));
  // Raise the UART's line (THR empty with THRI on) and claim it in context 1.
  a.stb(UART + 0, 0x21);
  assert.equal(a.ldlLe(PLIC + 0x200000 + 0x1000 + 4), 10, 'context 1 claims the UART');
  // Flash 0 in read-identifier mode (I/O mode), flash 1 halfway through a buffered write.
  a.stlLe(FLASH0, 0x00900090);
  a.stlLe(FLASH1 + 0x40, 0x00e800e8);
  a.stlLe(FLASH1 + 0x40, 0x00010001);
  a.stlLe(FLASH1 + 0x40, 0x12345678);
  // fw_cfg: the signature selected, two bytes read; a DMA address half written.
  a.stwBe(FWCFG + 8, 0);
  assert.equal(a.lduwBe(FWCFG), 0x5145);
  a.stlBe(FWCFG + 16, 0x1);
  // gpex: bus mastering and memory decoding on, interrupt line 5.
  a.stlLe(ECAM + 4, 0x6);
  a.stb(ECAM + 0x3c, 5);
  m.clock.advanceTo(1_000_010);
}

/** Every register of every device, read in one fixed order (side effects included). */
function readAll(m: RiscvVirtMachine): Array<number | bigint | boolean> {
  const a = m.memory;
  const out: Array<number | bigint | boolean> = [];
  out.push(m.clock.ns, m.clock.nextDeadline());
  for (const h of m.harts) out.push(h.getCsr(0x344) ?? -1n);
  for (let i = 0; i < 2; i++) out.push(a.ldlLe(SWI + 4 * i));
  out.push(a.ldqLe(MTIMER), a.ldqLe(MTIMER + 8), a.ldqLe(MTIMER + 0x7ff8));
  for (let i = 1; i < 96; i++) out.push(a.ldlLe(PLIC + 4 * i));
  for (let i = 0; i < 3; i++) out.push(a.ldlLe(PLIC + 0x1000 + 4 * i));
  for (let c = 0; c < 4; c++) for (let i = 0; i < 3; i++) out.push(a.ldlLe(PLIC + 0x2000 + 0x80 * c + 4 * i));
  for (let c = 0; c < 4; c++) out.push(a.ldlLe(PLIC + 0x200000 + 0x1000 * c));
  for (const r of [0x00, 0x04, 0x08, 0x0c, 0x10, 0x18]) out.push(a.ldlLe(RTC + r));
  out.push(a.ldlLe(TEST));
  for (let r = 0; r < 0x200; r += 4) out.push(a.ldlLe(VIRTIO + r));
  for (let r = 0; r < 256; r += 4) out.push(a.ldlLe(ECAM + r));
  out.push(m.flash[0].region.romdMode, m.flash[1].region.romdMode);
  for (let r = 0; r < 16; r += 4) out.push(a.ldlLe(FLASH0 + r), a.ldlLe(FLASH1 + r));
  out.push(a.ldqBe(FWCFG));
  // UART: line/modem/scratch/IER first, then IIR and the FIFO (these two change state when read).
  for (const r of [3, 4, 6, 7, 1, 5, 2]) out.push(a.ldub(UART + r));
  const lcr = a.ldub(UART + 3);
  a.stb(UART + 3, lcr | 0x80);
  out.push(a.ldub(UART + 0), a.ldub(UART + 1));
  a.stb(UART + 3, lcr);
  for (let i = 0; i < 3; i++) out.push(a.ldub(UART + 0), a.ldub(UART + 5));
  // Contexts claim what is pending for them.
  for (let c = 0; c < 4; c++) out.push(a.ldlLe(PLIC + 0x200000 + 0x1000 * c + 4));
  return out;
}

/** The machine's state after the section's own encoding and decoding (what the wire carries). */
function viaSection(m: RiscvVirtMachine) {
  const bytes = encodeMachineState({ machine: 'riscv-virt', devices: saveVirtState(m) });
  return decodeMachineState(1, bytes).devices;
}

test('every device register reads the same after the state moved to a fresh machine, before and after its timers fire', () => {
  const src = build(1_700_000_000_000_000_000n);
  program(src);
  const dst = build(5n);
  loadVirtState(dst, viaSection(src));
  // Hand-reasoned values (QEMU serial.c, aclint, sifive_plic, goldfish_rtc, pflash_cfi01):
  const d = dst.memory;
  assert.equal(d.ldub(UART + 3), 0x06, 'LCR: 7 data bits, 2 stop bits');
  assert.equal(d.ldub(UART + 7), 0x5a, 'scratch');
  assert.equal(d.ldub(UART + 4), 0x0b, 'MCR');
  assert.equal(d.ldqLe(MTIMER + 8), 5_000_000n, "hart 1's mtimecmp");
  assert.equal(d.ldlLe(SWI + 4), 1, "hart 1's msip");
  assert.equal(d.ldlLe(PLIC + 4 * 10), 5, 'UART priority');
  assert.equal(d.ldlLe(PLIC + 0x200000 + 0x3000), 6, "context 3's threshold");
  assert.equal(dst.flash[0].region.romdMode, false, 'flash 0 is in I/O mode (read identifier)');
  assert.equal(d.ldlLe(FLASH0), 0x00890089, 'manufacturer id 0x89 in both devices of the bank');
  assert.equal(d.ldlLe(ECAM + 4) & 0xffff, 0x6, 'PCI command register');
  const srcTime = src.memory.ldlLe(RTC) + src.memory.ldlLe(RTC + 4) * 2 ** 32;
  const dstTime = d.ldlLe(RTC) + d.ldlLe(RTC + 4) * 2 ** 32;
  assert.equal(dstTime, srcTime, "the RTC's count moved with the machine, not the destination's epoch");

  // Now all of it, read the same way on both sides, then again once every timer has fired.
  const src2 = build(1_700_000_000_000_000_000n);
  program(src2);
  const dst2 = build(5n);
  loadVirtState(dst2, viaSection(src2));
  assert.deepEqual(readAll(dst2), readAll(src2));
  const again = build(1_700_000_000_000_000_000n);
  program(again);
  const dst3 = build(5n);
  loadVirtState(dst3, viaSection(again));
  for (const m of [again, dst3]) m.clock.advanceTo(10_000_000);
  const after = readAll(dst3);
  assert.deepEqual(after, readAll(again));
  // Hand reasoning: by 10 ms hart 1's mtimecmp (5e6 ticks) is not reached, hart 0's (9000) is.
  assert.equal(Number(dst3.harts[0]!.getCsr(0x344)) & 0x80, 0x80, "hart 0's MTIP");
  assert.equal(Number(dst3.harts[1]!.getCsr(0x344)) & 0x80, 0, "hart 1's MTIP");
  assert.equal(Number(dst3.harts[1]!.getCsr(0x344)) & 0x8, 0x8, "hart 1's MSIP");
});

test('the harts move too: a destination hart has the source hart state, field for field', () => {
  const src = build(0n);
  src.harts[1]!.setReg(5, 0x1234n);
  src.harts[1]!.setPc(0x80001000n);
  const dst = build(0n);
  loadVirtState(dst, viaSection(src));
  assert.equal(dst.harts[1]!.getReg(5), 0x1234n);
  assert.equal(dst.harts[1]!.getPc(), 0x80001000n);
  assert.deepEqual(dst.harts[1]!.saveState(), src.harts[1]!.saveState());
});

test("Sstc: a hart's stimecmp and its armed timer move, and STIP rises on the destination when it would have on the source", () => {
  const src = build(0n);
  src.clock.advanceTo(1_000_000); // mtime 10000 (10 MHz)
  const hart = src.harts[1]!;
  src.memory.stlLe(0x80000000, 0x14d51073); // csrw stimecmp, a0
  hart.setReg(10, 10_500n);
  hart.setPc(0x80000000n);
  assert.equal(hart.run(1), 1);
  assert.equal(hart.getCsr(0x14d), 10_500n);
  const dst = build(0n);
  loadVirtState(dst, viaSection(src));
  const d = dst.harts[1]!;
  assert.equal(d.getCsr(0x14d), 10_500n);
  // 500 ticks of 100 ns after the write at 1 ms
  assert.equal(dst.clock.nextDeadline(), 1_050_000);
  dst.clock.advanceTo(1_049_999);
  assert.equal(Number(d.getCsr(0x344)) & 0x20, 0, 'STIP not yet');
  dst.clock.advanceTo(1_050_000);
  assert.equal(Number(d.getCsr(0x344)) & 0x20, 0x20, 'STIP once time reached stimecmp');
});

test('PMP moves with the hart: a guest protected on the source stays protected on the destination', {
  skip: asmSkip(),
}, () => {
  // Hand reasoning (QEMU pmp_hart_has_privs; its pmp_post_load rebuilds the ranges from the
  // migrated registers): entry 0 is NAPOT over the 4 KiB at 0x80100000, R only, so the S-mode
  // store there is a store access fault (7) with the address in mtval, and the li after it never runs.
  const image = assemble(`
      .option norvc
      .globl _start
_start:
      li a1, 0
      la t0, h
      csrw mtvec, t0
      li t0, ${(0x80100000 >>> 2) | 0x1ff}
      csrw pmpaddr0, t0
      li t0, 0x19
      csrw pmpcfg0, t0
      li t0, -1
      csrw pmpaddr15, t0
      li t0, 0x1f00000000000000
      csrw pmpcfg2, t0
      li t0, 0x1800
      csrc mstatus, t0
      li t0, 0x800
      csrs mstatus, t0
      la t0, s
      csrw mepc, t0
      li s2, 0x80100000
      mret
s:    bnez s5, 1f
      j s
1:    sd s5, 0(s2)
      li a1, 1
      j 1b
h:    csrr a0, mcause
      csrr a2, mtval
2:    j 2b
  `);
  const boot = (m: RiscvVirtMachine) =>
    bootRiscvVirt(m, { bios: null, kernel: image, rngSeed: new Uint8Array(32) });
  const src = build(0n);
  boot(src);
  src.run(20_000);
  assert.equal(src.harts[0]!.privilege, 1, 'the source hart spins in S-mode');
  const dst = build(0n);
  boot(dst);
  loadVirtState(dst, viaSection(src));
  dst.harts[0]!.setReg(21, 1n); // s5: leave the spin
  dst.run(20_000);
  const h = dst.harts[0]!;
  assert.equal(h.getReg(10), 7n);
  assert.equal(h.getReg(12), 0x80100000n);
  assert.equal(h.getReg(11), 0n);
  assert.equal(dst.memory.ldqLe(0x80100000), 0n);
});

/** Checks that loading `devices` into a fresh machine fails as `failure` for `device`, changing nothing. */
function refused(
  devices: Record<string, { version: number; state: unknown }>,
  failure: string,
  device: string,
): void {
  const dst = build(5n);
  const before = encodeMachineState({ machine: 'riscv-virt', devices: saveVirtState(dst) });
  const regsBefore = readAll(build(5n));
  assert.throws(
    () => loadVirtState(dst, devices),
    (e: unknown) => {
      assert.ok(e instanceof DeviceStateError, String(e));
      assert.equal(e.code, 'ERR_MIGRATION');
      assert.equal(e.failure, failure, e.message);
      assert.equal(e.device, device, e.message);
      return true;
    },
  );
  assert.deepEqual(encodeMachineState({ machine: 'riscv-virt', devices: saveVirtState(dst) }), before);
  assert.deepEqual(readAll(dst), regsBefore);
}

test('a missing, short, malformed or unknown-version device entry is a typed error that changes nothing', () => {
  const src = build(1n);
  program(src);
  const good = () => structuredClone(viaSection(src)) as Record<string, { version: number; state: unknown }>;

  const missing = good();
  delete missing.plic;
  refused(missing, 'truncated', 'plic');
  const noHart = good();
  delete noHart.hart1;
  refused(noHart, 'truncated', 'hart1');

  const short = good();
  (short.plic!.state as { enable: number[] }).enable.pop();
  refused(short, 'truncated', 'plic');
  const lacking = good();
  delete (lacking.serial!.state as Record<string, unknown>).lsr;
  refused(lacking, 'truncated', 'serial');
  const shortHart = good();
  (shortHart.hart0!.state as { x: string[] }).x.length = 31;
  refused(shortHart, 'truncated', 'hart0');

  const version = good();
  version.serial = { ...version.serial!, version: 2 };
  refused(version, 'bad-version', 'serial');

  const range = good();
  (range.plic!.state as { threshold: number[] }).threshold[0] = 8;
  refused(range, 'corrupt', 'plic');
  const fifo = good();
  (fifo.serial!.state as { recv: number[] }).recv = new Array(17).fill(0);
  refused(fifo, 'corrupt', 'serial');
  const virtio = good();
  virtio['virtio-mmio'] = { version: 1, state: { transports: 4 } };
  refused(virtio, 'corrupt', 'virtio-mmio');
  const unknown = good();
  unknown.hart2 = unknown.hart1!;
  refused(unknown, 'corrupt', 'hart2');
  const otherDevice = good();
  const cfg = (otherDevice.gpex!.state as { config: number[] }).config;
  cfg[0] = 0x86; // vendor id: another function
  refused(otherDevice, 'corrupt', 'gpex');
});

test('the section itself: another version or a cut payload is refused before any device loads', () => {
  const src = build(1n);
  const bytes = encodeMachineState({ machine: 'riscv-virt', devices: saveVirtState(src) });
  assert.throws(
    () => decodeMachineState(2, bytes),
    (e: unknown) => e instanceof MigrationError && e.failure === 'bad-version',
  );
  assert.throws(
    () => decodeMachineState(1, bytes.subarray(0, bytes.length - 7)),
    (e: unknown) => e instanceof MigrationError && e.failure === 'truncated',
  );
});
