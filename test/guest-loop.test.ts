/**
 * @module test/guest-loop
 * The bench's hand-encoded riscv64 loop (bench/guest-loop.mjs): its words equal what binutils
 * assembles from the same source, and it runs on memtree's virt machine (as `-bios none -kernel`)
 * for exactly the instructions counted by hand and powers off with status 0.
 */

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
// @ts-expect-error: a plain .mjs module of the bench, without types
import { loopImage, loopWords } from '../bench/guest-loop.mjs';
import { bootRiscvVirt } from '../src/machines/riscv/boot.js';
import { asmSkip, assemble } from '../src/machines/riscv/cpu/test-support/asm.js';
import { buildRiscvVirt } from '../src/machines/riscv/virt.js';

const SOURCE = (n: number, load: string) => `
  lui s2, 0x10000
  auipc s3, 0
  lui a0, %hi(${n})
  addi a0, a0, %lo(${n})
loop:
  ${load}
  addi a0, a0, -1
  bne a0, zero, loop
  lui t0, 0x100
  lui t1, 0x5
  addi t1, t1, 0x555
  sw t1, 0(t0)
1: j 1b
`;

describe('the bench guest loop', () => {
  it('is what binutils assembles', { skip: asmSkip() }, () => {
    // 0x12345 needs lui + addi with a negative low part (0x345 < 0x800: positive; 0x12fff: negative).
    for (const n of [1, 0x12345, 0x12fff, 100_000_000]) {
      assert.deepEqual(loopImage('uart', n), assemble(SOURCE(n, 'lbu t0, 5(s2)')), `uart ${n}`);
      assert.deepEqual(loopImage('ram', n), assemble(SOURCE(n, 'lbu t0, 0(s3)')), `ram ${n}`);
    }
  });

  it('runs N iterations on the virt machine and powers off with status 0', () => {
    for (const kind of ['uart', 'ram']) {
      const m = buildRiscvVirt({ ramSize: 16 * 2 ** 20 });
      bootRiscvVirt(m, { bios: null, kernel: loopImage(kind, 1000) });
      // One instruction per quantum, so that the run stops right at the store that powers off.
      assert.equal(m.run(1_000_000, undefined, 1), 'exit');
      assert.equal(m.exitCode, 0);
      // QEMU's reset vector in the mrom (riscv_setup_rom_reset_vec: auipc, addi, csrr mhartid,
      // ld, ld, jr) runs first; then 4 set-up instructions, 3 per iteration, 4 to the power-off store.
      assert.equal(m.instructionCount, 6 + 4 + 3 * 1000 + 4, kind);
    }
    assert.equal(loopWords('ram', 1).length, 12);
  });
});
