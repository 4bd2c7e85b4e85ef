/** The flat typed-array bus runs the same program to the same state as memtree's address space. */

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { FlatBus } from './flat-bus.js';
import { RiscvHart } from './hart.js';
import { asmSkip, assemble } from './test-support/asm.js';
import { miniMachine, RAM_BASE } from './test-support/mini-machine.js';
import { PRELUDE } from './test-support/run-asm.js';

const skip = asmSkip();

describe('FlatBus', { skip }, () => {
  it('gives the hart the same results as memtree, devices and faults included', () => {
    const image = assemble(`${PRELUDE}
      la t0, handler
      csrw mtvec, t0
      la s0, buf
      li t1, 0x1122334455667788
      sd t1, 0(s0)
      sw t1, 9(s0)             # misaligned within the page
      ld a0, 8(s0)
      lhu a1, 2(s0)
      li t2, 0x10000000
      lbu a2, 5(t2)            # a device register (the UART's line status)
      li t3, 0x90000000
      ld a3, 0(t3)             # nothing there: load access fault
      amoswap.d a4, t1, (s0)
      ld a5, 0(s0)
      EXIT
handler:
      csrr s1, mcause
      csrr s2, mtval
      csrr t4, mepc
      addi t4, t4, 4
      csrw mepc, t4
      mret
      .align 3
buf:  .fill 4, 8, 0
    `);
    const mt = miniMachine(16 * 2 ** 20);
    mt.load(RAM_BASE, image);
    mt.hart.setPc(BigInt(RAM_BASE));
    mt.run(10000);

    let exit: number | null = null;
    const flat = new FlatBus(RAM_BASE, 16 * 2 ** 20, [
      { base: 0x10000000, size: 0x100, read: (o) => (o === 5 ? 0x60 : 0), write: () => {} },
      {
        base: 0x100000,
        size: 0x1000,
        read: () => 0,
        write: (o, v) => {
          if (o === 0 && (Number(v) & 0xffff) === 0x5555) exit = 0;
        },
      },
    ]);
    flat.ram.set(image);
    const hart = new RiscvHart({ hartId: 0, bus: flat, resetPc: RAM_BASE, readTime: () => 0n });
    for (let i = 0; i < 100 && exit === null; i++) hart.run(100);

    assert.equal(mt.exitCode(), 0);
    assert.equal(exit, 0);
    for (let r = 1; r < 32; r++) assert.equal(hart.getReg(r), mt.hart.getReg(r), `x${r}`);
    // hand-checked: bytes 8..12 hold the word 0x55667788 stored at offset 9
    assert.equal(hart.getReg(10), 0x5566778800n);
    assert.equal(hart.getReg(12), 0x60n);
    assert.equal(hart.getReg(9), 5n);
    assert.equal(hart.getReg(18), 0x90000000n);
    assert.equal(hart.getReg(14), 0x1122334455667788n);
  });
});
