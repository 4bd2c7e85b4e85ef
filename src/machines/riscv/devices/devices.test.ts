/**
 * @module machines/riscv/devices/devices.test
 * The virt machine's device models seen from the bus, as a guest sees them: register values,
 * access sizes QEMU accepts or refuses, byte order, interrupts. Expected values come from QEMU's
 * device sources (named per test) and the specs they implement, reasoned by hand.
 */

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { MEMTX_DECODE_ERROR, MEMTX_OK } from '../../../core/index.js';
import { ECAM, FLASH0, FWCFG, MTIMER, PLIC, RTC, SWI, TEST, UART, VIRTIO } from '../test-support/virt-map.js';
import { buildRiscvVirt } from '../virt.js';

/** The mip bits a hart has now (read through its CSR). */
function mip(m: ReturnType<typeof buildRiscvVirt>, hart = 0): number {
  return Number(m.harts[hart]!.getCsr(0x344) ?? 0n);
}

test('sifive_test (sifive_test_write): 0x5555 powers off with 0, 0x3333 with the upper half, 0x7777 resets; 1-byte writes are refused', () => {
  const m = buildRiscvVirt();
  m.memory.stb(TEST, 0x55);
  assert.equal(m.memory.lastResult, MEMTX_DECODE_ERROR);
  assert.equal(m.exitCode, null);
  m.memory.stlLe(TEST, 0x1234);
  assert.equal(m.exitCode, null, 'an unknown status does nothing');
  m.memory.stlLe(TEST, (42 << 16) | 0x3333);
  assert.equal(m.exitCode, 42);
  const m2 = buildRiscvVirt();
  m2.memory.stwLe(TEST, 0x5555);
  assert.equal(m2.exitCode, 0);
  assert.equal(m2.memory.ldlLe(TEST), 0);
});

test('ACLINT mtimer (riscv_aclint_mtimer_*): mtime counts 10 MHz ticks of virtual time; mtimecmp raises MTIP when reached', () => {
  const m = buildRiscvVirt();
  // After reset mtimecmp is 0 <= mtime: MTIP is pending, as in QEMU.
  assert.equal(mip(m) & 0x80, 0x80);
  m.clock.advanceTo(12_345); // 123 ticks of 100 ns
  assert.equal(m.memory.ldqLe(MTIMER + 0x7ff8), 123n);
  assert.equal(m.memory.ldlLe(MTIMER + 0x7ff8), 123);
  assert.equal(m.memory.ldlLe(MTIMER + 0x7ffc), 0);
  m.memory.stqLe(MTIMER, 200n);
  assert.equal(mip(m) & 0x80, 0, 'a compare value in the future drops MTIP');
  assert.equal(m.memory.ldqLe(MTIMER), 200n);
  // QEMU arms its timer 77 ticks (7700 ns) after the write, at 20045 ns.
  m.clock.advanceTo(20_044);
  assert.equal(mip(m) & 0x80, 0);
  m.clock.advanceTo(20_045);
  assert.equal(mip(m) & 0x80, 0x80, 'the timer fires when mtime reaches mtimecmp');
  // 32-bit halves: writing the high word keeps the low one.
  m.memory.stlLe(MTIMER + 4, 1);
  assert.equal(m.memory.ldqLe(MTIMER), (1n << 32n) | 200n);
  assert.equal(mip(m) & 0x80, 0);
  // Writing mtime moves the time base (time_delta) and re-evaluates the compare.
  m.memory.stqLe(MTIMER + 0x7ff8, (1n << 32n) | 500n);
  assert.equal(mip(m) & 0x80, 0x80);
  assert.equal(m.memory.ldqLe(MTIMER + 0x7ff8), (1n << 32n) | 500n);
  // valid.min_access_size = 4
  m.memory.ldub(MTIMER);
  assert.equal(m.memory.lastResult, MEMTX_DECODE_ERROR);
});

test('ACLINT mswi (riscv_aclint_swi_*): msip of each hart drives its MSIP; other offsets read 0', () => {
  const m = buildRiscvVirt({ smp: 2 });
  m.memory.stlLe(SWI + 4, 1);
  assert.equal(mip(m, 1) & 0x8, 0x8);
  assert.equal(mip(m, 0) & 0x8, 0);
  assert.equal(m.memory.ldlLe(SWI + 4), 1);
  m.memory.stlLe(SWI + 4, 0);
  assert.equal(mip(m, 1) & 0x8, 0);
  assert.equal(m.memory.ldlLe(SWI + 8), 0, 'no third hart');
  m.memory.stwLe(SWI, 1);
  assert.equal(m.memory.lastResult, MEMTX_DECODE_ERROR, 'only 4-byte accesses');
});

test('PLIC (sifive_plic_*): WARL priorities, enables and threshold per context, claim takes the highest, complete re-arms', () => {
  const m = buildRiscvVirt();
  const M_CTX = 0;
  const S_CTX = 1;
  m.memory.stlLe(PLIC + 4 * 10, 9); // 7 priority levels + 0: 9 % 8 = 1
  assert.equal(m.memory.ldlLe(PLIC + 4 * 10), 1);
  m.memory.stlLe(PLIC + 4 * 11, 5);
  m.memory.stlLe(PLIC + 0x2000 + S_CTX * 0x80, (1 << 10) | (1 << 11));
  m.plic.line(10)(true);
  m.plic.line(11)(true);
  assert.equal(m.memory.ldlLe(PLIC + 0x1000), (1 << 10) | (1 << 11), 'pending bits');
  assert.equal(mip(m) & (1 << 9), 1 << 9, 'SEIP from the S context');
  assert.equal(mip(m) & (1 << 11), 0, 'the M context enables nothing');
  m.memory.stlLe(PLIC + 0x200000 + S_CTX * 0x1000, 5); // threshold 5 masks source 11 (5) and 10 (1)
  assert.equal(mip(m) & (1 << 9), 0);
  m.memory.stlLe(PLIC + 0x200000 + S_CTX * 0x1000, 0);
  assert.equal(m.memory.ldlLe(PLIC + 0x200004 + S_CTX * 0x1000), 11, 'highest priority first');
  assert.equal(m.memory.ldlLe(PLIC + 0x200004 + S_CTX * 0x1000), 10);
  assert.equal(m.memory.ldlLe(PLIC + 0x200004 + S_CTX * 0x1000), 0, 'nothing left');
  assert.equal(mip(m) & (1 << 9), 0);
  m.plic.line(10)(true); // raised again while claimed: pending, but not deliverable until completed
  assert.equal(mip(m) & (1 << 9), 0);
  m.memory.stlLe(PLIC + 0x200004 + S_CTX * 0x1000, 10);
  assert.equal(mip(m) & (1 << 9), 1 << 9);
  assert.equal(m.memory.ldlLe(PLIC + 0x200000 + M_CTX * 0x1000), 0);
  m.memory.stwLe(PLIC, 1);
  assert.equal(m.memory.lastResult, MEMTX_DECODE_ERROR, 'only 4-byte accesses');
});

test('ns16550a (serial_ioport_*): reset state, THR to the sink, FIFO and receive interrupts through the PLIC', () => {
  const out: number[] = [];
  const m = buildRiscvVirt({ uartSink: (b) => out.push(b) });
  assert.equal(m.memory.ldub(UART + 5), 0x60, 'LSR: THRE | TEMT');
  assert.equal(m.memory.ldub(UART + 2), 0x01, 'IIR: no interrupt');
  assert.equal(m.memory.ldub(UART + 4), 0x08, 'MCR: OUT2');
  assert.equal(m.memory.ldub(UART + 6), 0xb0, 'MSR: DCD DSR CTS');
  m.memory.stb(UART, 0x41);
  m.memory.stlLe(UART, 0x142); // a wide write reaches THR as one byte
  assert.deepEqual(out, [0x41, 0x42]);
  // Divisor latch.
  m.memory.stb(UART + 3, 0x80);
  m.memory.stb(UART, 0x34);
  m.memory.stb(UART + 1, 0x12);
  assert.equal(m.memory.ldub(UART), 0x34);
  assert.equal(m.memory.ldub(UART + 1), 0x12);
  m.memory.stb(UART + 3, 0x03);
  // FIFO on, trigger level 1; receive interrupt enabled; PLIC source 10 to the S context.
  m.memory.stb(UART + 2, 0x01);
  assert.equal(m.memory.ldub(UART + 2), 0xc1, 'IIR shows the FIFOs');
  m.memory.stlLe(PLIC + 4 * 10, 1);
  m.memory.stlLe(PLIC + 0x2000 + 0x80, 1 << 10);
  m.memory.stb(UART + 1, 0x01);
  assert.equal(m.uart.canReceive(), 1);
  m.uart.receive([0x7a]);
  assert.equal(m.memory.ldub(UART + 5) & 1, 1, 'LSR.DR');
  assert.equal(m.memory.ldub(UART + 2), 0xc4, 'IIR: received data available');
  assert.equal(mip(m) & (1 << 9), 1 << 9);
  assert.equal(m.memory.ldub(UART), 0x7a);
  assert.equal(m.memory.ldub(UART + 5) & 1, 0);
  assert.equal(m.memory.ldub(UART + 2), 0xc1);
  // THR-empty interrupt: enabling it with THRE set raises it; reading IIR clears it.
  m.memory.stb(UART + 1, 0x02);
  assert.equal(m.memory.ldub(UART + 2), 0xc2);
  assert.equal(m.memory.ldub(UART + 2), 0xc1);
});

test('virtio-mmio without a backend (virtio_mmio_read): magic, legacy version 1, vendor QEMU, device id 0', () => {
  const m = buildRiscvVirt();
  for (let i = 0; i < 8; i++) {
    const base = VIRTIO + i * 0x1000;
    assert.equal(m.memory.ldlLe(base), 0x74726976);
    assert.equal(m.memory.ldlLe(base + 4), 1);
    assert.equal(m.memory.ldlLe(base + 8), 0);
    assert.equal(m.memory.ldlLe(base + 0xc), 0x554d4551);
  }
  m.memory.ldlLe(VIRTIO + 0x200);
  assert.equal(
    m.memory.lastResult,
    MEMTX_DECODE_ERROR,
    'the transport is 0x200 bytes; the rest is unassigned',
  );
});

test('fw_cfg (fw_cfg_data_read, fw_cfg_dma_mem_read, fw_cfg_ctl_mem_valid): selector, big-endian data stream, DMA signature', () => {
  const m = buildRiscvVirt({ smp: 3 });
  m.memory.stwLe(FWCFG + 8, 0x0000); // the selector is big-endian: 0x0000 either way
  assert.equal(m.memory.lastResult, MEMTX_OK);
  // The data register streams the item's bytes in order: "QEMU" lands in memory order.
  assert.equal(m.memory.ldlLe(FWCFG), 0x554d4551);
  m.memory.stwLe(FWCFG + 8, 0x0500); // FW_CFG_NB_CPUS, 0x0005 big-endian
  assert.equal(m.memory.ldub(FWCFG), 3);
  assert.equal(m.memory.ldub(FWCFG), 0);
  assert.equal(m.memory.ldub(FWCFG), 0, 'past the end of the item: zeros');
  m.memory.stb(FWCFG + 8, 0);
  assert.equal(m.memory.lastResult, MEMTX_DECODE_ERROR, 'the selector takes 2-byte writes only');
  m.memory.ldub(FWCFG + 1);
  assert.equal(m.memory.lastResult, MEMTX_DECODE_ERROR, 'data only at offset 0');
  // "QEMU CFG" read as a 64-bit big-endian register: bytes in memory order.
  const b = new Uint8Array(8);
  new DataView(b.buffer).setBigUint64(0, m.memory.ldqLe(FWCFG + 16), true);
  assert.equal(new TextDecoder().decode(b), 'QEMU CFG');
  // A DMA read of the signature item into RAM.
  const desc = 0x80001000;
  m.memory.stlBe(desc, (0 << 16) | 0x08 | 0x02); // select key 0, read
  m.memory.stlBe(desc + 4, 4);
  m.memory.stqBe(desc + 8, 0x80002000n);
  m.memory.stqBe(FWCFG + 16, BigInt(desc));
  assert.equal(m.memory.ldlLe(0x80002000), 0x554d4551);
  assert.equal(m.memory.ldlBe(desc), 0, 'control cleared: done, no error');
});

test('CFI flash (pflash_cfi01): romd reads, CFI query "QRY" replicated across the two x16 devices, program, read array', () => {
  const m = buildRiscvVirt();
  const flash = m.flash[0].region;
  assert.equal(flash.romdMode, true);
  assert.equal(m.memory.ldlLe(FLASH0), 0);
  m.memory.stlLe(FLASH0 + 0x55 * 4, 0x98);
  assert.equal(flash.romdMode, false, 'a command leaves romd mode');
  assert.equal(m.memory.ldlLe(FLASH0 + 0x10 * 4), 0x00510051, "'Q' from each device");
  assert.equal(m.memory.ldlLe(FLASH0 + 0x11 * 4), 0x00520052);
  assert.equal(m.memory.ldlLe(FLASH0 + 0x12 * 4), 0x00590059);
  assert.equal(m.memory.ldlLe(FLASH0 + 0x27 * 4), 0x00180018, 'device size 2^24 per x16 device');
  m.memory.stlLe(FLASH0, 0x90);
  assert.equal(m.memory.ldlLe(FLASH0), 0, 'in query mode only 0xff leaves: 0x90 is ignored, cfi[0] is 0');
  m.memory.stlLe(FLASH0, 0xff);
  m.memory.stlLe(FLASH0, 0x90);
  assert.equal(m.memory.ldlLe(FLASH0), 0x00890089, 'manufacturer id');
  assert.equal(m.memory.ldlLe(FLASH0 + 4), 0x00180018, 'device id');
  m.memory.stlLe(FLASH0, 0xff);
  assert.equal(flash.romdMode, true);
  m.memory.stlLe(FLASH0 + 8, 0x40);
  m.memory.stlLe(FLASH0 + 8, 0xcafef00d);
  assert.equal(m.memory.ldlLe(FLASH0 + 8), 0x00800080, 'status register of each device after programming');
  m.memory.stlLe(FLASH0, 0xff);
  assert.equal(m.memory.ldlLe(FLASH0 + 8), 0xcafef00d, 'programmed word in array mode');
  m.memory.stlLe(FLASH0, 0x20);
  m.memory.stlLe(FLASH0, 0xd0);
  m.memory.stlLe(FLASH0, 0xff);
  assert.equal(m.memory.ldlLe(FLASH0 + 8), 0xffffffff, 'block erase');
});

test('gpex ECAM (pcie_mmcfg_data_read): 00:00.0 is the Red Hat host bridge, other functions read all ones; Bus Master Enable maps its bus-master space', () => {
  const m = buildRiscvVirt();
  assert.equal(m.memory.ldlLe(ECAM), 0x00081b36);
  assert.equal(m.memory.ldlLe(ECAM + 8) >>> 8, 0x060000, 'class: host bridge');
  assert.equal(m.memory.ldlLe(ECAM + 0x2c), 0x11001af4);
  assert.equal(m.memory.ldlLe(ECAM + 0x8000), 0xffffffff, 'device 1 is absent');
  assert.equal(m.memory.ldlLe(ECAM + 0x100000), 0xffffffff, 'bus 1 is absent');
  const bmSpace = m.ms.addressSpaces.find((a) => a.name === 'gpex-root')!;
  assert.equal(bmSpace.lookup(0x80000000n), null);
  m.memory.stwLe(ECAM + 4, 0x0004);
  assert.equal(m.memory.lduwLe(ECAM + 4), 0x0004);
  assert.equal(bmSpace.lookup(0x80000000n)?.region.name, 'riscv_virt_board.ram');
  m.memory.stwLe(ECAM + 4, 0xffff);
  assert.equal(m.memory.lduwLe(ECAM + 4), 0x0507, 'only the bits of QEMU wmask stick');
  m.memory.stwLe(ECAM, 0x1234);
  assert.equal(m.memory.lduwLe(ECAM), 0x1b36, 'the vendor id is read-only');
});

test('goldfish RTC (goldfish_rtc_read/write): nanoseconds since the epoch, TIME_HIGH latched by TIME_LOW; alarm interrupt', () => {
  const epoch = 1_700_000_000_000_000_000n;
  const m = buildRiscvVirt({ rtcEpochNs: epoch });
  m.clock.advanceTo(5000);
  const lo = m.memory.ldlLe(RTC);
  const hi = m.memory.ldlLe(RTC + 4);
  assert.equal((BigInt(hi) << 32n) | BigInt(lo), epoch + 5000n);
  m.memory.stlLe(RTC + 0x10, 1); // irq enabled
  m.memory.stlLe(RTC + 0x0c, Number((epoch + 10_000n) >> 32n));
  m.memory.stlLe(RTC + 0x08, Number((epoch + 10_000n) & 0xffffffffn));
  assert.equal(m.memory.ldlLe(RTC + 0x18), 1, 'alarm running');
  m.clock.advanceTo(10_000);
  assert.equal(m.memory.ldlLe(RTC + 0x18), 0);
  assert.equal(m.memory.ldlLe(PLIC + 0x1000) & (1 << 11), 1 << 11, 'PLIC source 11 pending');
  m.memory.ldub(RTC);
  assert.equal(m.memory.lastResult, MEMTX_DECODE_ERROR, 'only 4-byte accesses');
});
