/**
 * @module machines/riscv/virt.test
 * The virt machine as a whole with tiny hand-assembled guests: QEMU's boot flow (reset vector in
 * the mask ROM jumping to the firmware at 0x80000000 with a0 = hart id, a1 = FDT address), power-off
 * and reset through sifive_test, idling in WFI, and `memtree run`'s exit status and errors.
 */

import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { runCli } from '../../../test/support/run-cli.js';
import { bootRiscvVirt } from './boot.js';
import { readFdt } from './fdt.js';
import { buildRiscvVirt } from './virt.js';

/** Little-endian bytes of 32-bit instruction words. */
function program(words: number[]): Uint8Array {
  const b = new Uint8Array(words.length * 4);
  const dv = new DataView(b.buffer);
  for (const [i, w] of words.entries()) dv.setUint32(i * 4, w >>> 0, true);
  return b;
}

const LUI_T0_TEST = 0x001002b7; // lui t0, 0x100  (sifive_test at 0x100000)
const SW_T1_T0 = 0x0062a023; // sw t1, 0(t0)
const J_SELF = 0x0000006f; // j .
const WFI = 0x10500073;
/** Writes (code << 16) | 0x3333 to sifive_test: power off with status `code` (code < 0x80). */
const exitWith = (code: number) => [
  LUI_T0_TEST,
  0x00000337 | (code << 16) | 0x3000, // lui t1, (code << 4) | 3
  0x33330313, // addi t1, t1, 0x333
  SW_T1_T0,
  J_SELF,
];

test('the reset vector enters the firmware at 0x80000000 with a0 = mhartid and a1 = the FDT address (riscv_setup_rom_reset_vec)', () => {
  const m = buildRiscvVirt({ ramSize: 256 * 2 ** 20, smp: 2 });
  const info = bootRiscvVirt(m, { bios: program([J_SELF]), rngSeed: new Uint8Array(32) });
  // riscv_load_fdt: 2 MiB-aligned below the end of RAM, leaving FDT_MAX_SIZE (1 MiB).
  assert.equal(info.fdtAddr, 0x8fe00000);
  const blob = new Uint8Array(0x2000);
  m.memory.read(info.fdtAddr, blob);
  const fdt = readFdt(blob);
  assert.deepEqual(
    [...fdt.root.find('/memory@80000000')!.get('reg')!],
    [0, 0, 0, 0, 0x80, 0, 0, 0, 0, 0, 0, 0, 0x10, 0, 0, 0],
  );
  assert.equal(fdt.root.find('/cpus')!.children.filter((c) => c.name.startsWith('cpu@')).length, 2);
  m.run(100);
  for (const [i, h] of m.harts.entries()) {
    assert.equal(h.getPc(), 0x80000000n);
    assert.equal(h.getReg(10), BigInt(i));
    assert.equal(h.getReg(11), 0x8fe00000n);
  }
});

test('a guest powers off through sifive_test with its status; run() says exit', () => {
  const m = buildRiscvVirt();
  bootRiscvVirt(m, { bios: program(exitWith(7)) });
  assert.equal(m.run(10_000), 'exit');
  assert.equal(m.exitCode, 7);
});

test('0x7777 to sifive_test resets the machine: harts back at the mask ROM, loaded images written again', () => {
  const m = buildRiscvVirt();
  // lui t1, 0x7; addi t1, t1, 0x777; then a store over the firmware's own first word, then reset.
  const words = [
    LUI_T0_TEST,
    0x00007337,
    0x77730313,
    0x80000537, // lui a0, 0x80000
    0x00052023, // sw zero, 0(a0): clobbers the first instruction
    SW_T1_T0,
    J_SELF,
  ];
  bootRiscvVirt(m, { bios: program(words) });
  m.run(7); // five instructions of the reset vector... then into the firmware
  m.run(7);
  assert.equal(m.exitCode, null);
  assert.equal(m.memory.ldlLe(0x80000000), LUI_T0_TEST, 'the firmware image is back after the reset');
  assert.equal(m.harts[0]!.getPc() < 0x80000000n, true, 'the hart restarted from the mask ROM');
});

test('run() returns idle when every hart waits in WFI and no timer can wake it', () => {
  const m = buildRiscvVirt();
  bootRiscvVirt(m, { bios: program([WFI, J_SELF]) });
  assert.equal(m.run(1_000_000), 'idle');
  assert.equal(m.harts[0]!.waitingForInterrupt, true);
});

test('memtree run riscv-virt exits with the guest status; bad usage exits 2, unreadable files 1, in one line', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'memtree-run-'));
  try {
    const fw = join(dir, 'fw.bin');
    writeFileSync(fw, program(exitWith(5)));
    const ok = await runCli(['run', 'riscv-virt', '-m', '64M', '-bios', fw]);
    assert.equal(ok.code, 5, ok.err);
    const usage = await runCli(['run', 'riscv-pc']);
    assert.equal(usage.code, 2);
    assert.match(usage.err, /^memtree run: unknown machine 'riscv-pc'/);
    assert.equal(usage.err.trim().split('\n').length, 1);
    const badM = await runCli(['run', 'riscv-virt', '-m', '1000X']);
    assert.equal(badM.code, 2);
    const plainMiB = await runCli(['run', 'riscv-virt', '-m', '1000', '--mtree']);
    assert.match(plainMiB.out, /0000000080000000-00000000be7fffff \(prio 0, ram\): riscv_virt_board.ram/);
    const missing = await runCli(['run', 'riscv-virt', '--kernel', join(dir, 'nope')]);
    assert.equal(missing.code, 1);
    assert.equal(missing.err.trim().split('\n').length, 1);
    const mtree = await runCli(['run', 'riscv-virt', '-smp', '2', '--mtree']);
    assert.equal(mtree.code, 0);
    assert.match(mtree.out, / AS "cpu-memory-1", root: system/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('boot: a raw firmware or kernel that does not fit in RAM is refused, naming it', () => {
  // Raw images: the firmware at the start of RAM (0x80000000), the kernel at the firmware's end
  // rounded up to 2 MiB (riscv_calc_kernel_start_addr): after 4 bytes of firmware, 0x80200000,
  // where 15 MiB runs 1 MiB past the end of 16 MiB of RAM.
  const m = buildRiscvVirt({ ramSize: 16 << 20 });
  assert.throws(() => bootRiscvVirt(m, { bios: new Uint8Array(17 << 20) }), {
    code: 'ERR_INVALID_ARGUMENT',
    message: 'the firmware (17825792 bytes at 0x80000000) does not fit in 16 MiB of RAM',
  });
  assert.throws(() => bootRiscvVirt(m, { bios: new Uint8Array(4), kernel: new Uint8Array(15 << 20) }), {
    code: 'ERR_INVALID_ARGUMENT',
    message: 'the kernel (15728640 bytes at 0x80200000) does not fit in 16 MiB of RAM',
  });
});
