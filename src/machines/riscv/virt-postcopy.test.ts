/**
 * @module machines/riscv/virt-postcopy.test
 * A postcopy destination's harts stop at pages that have not arrived: the access does not happen,
 * the instruction is neither executed nor trapped nor counted, `run` returns 'page' naming the
 * block and page, and once the page is there the same instruction runs again. Expected values are
 * reasoned from the program by hand.
 */

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { asmSkip, assemble } from './cpu/test-support/asm.js';
import { buildRiscvVirt } from './virt.js';

const PROGRAM = `
  .globl _start
_start:
  li t0, 0x80100000
  li t1, 0x80200000
  ld a0, 0(t0)
  addi a0, a0, 1
  sd a0, 0(t1)
  li t2, 0x100000
  li t3, 0x5555
  sw t3, 0(t2)
1:
  j 1b
`;

test('a hart stops before an access to a page that has not arrived and runs the instruction again once it is there', {
  skip: asmSkip(),
}, () => {
  const m = buildRiscvVirt({ ramSize: 4 << 20 });
  m.loadBlob(0x80000000, assemble(PROGRAM));
  m.memory.stqLe(0x80100000, 41n);
  m.memory.stqLe(0x80200000, 7n);
  m.harts[0]!.setPc(0x80000000n);
  const present = new Set<number>([0]); // the program's page only
  m.startPostcopy((block, offset) => {
    assert.equal(block, 'riscv_virt_board.ram');
    return present.has(Math.floor(offset / 4096));
  });

  assert.equal(m.run(1000), 'page');
  assert.deepEqual(m.waitingPage, { block: 'riscv_virt_board.ram', offset: 0x100000 });
  // The hart stopped at the load: it has not run (a0 is still 0) and did not trap.
  const h = m.harts[0]!;
  assert.equal(h.getReg(10), 0n);
  assert.equal(h.getCsr(0x342), 0n, 'mcause: no trap was taken');
  const pcAtLoad = h.getPc();
  const countAtLoad = h.instructionCount;
  // Asked again without the page: nothing moves.
  m.waitingPage = null;
  assert.equal(m.run(1000), 'page');
  assert.equal(h.getPc(), pcAtLoad);
  assert.equal(h.instructionCount, countAtLoad);

  present.add(0x100);
  m.waitingPage = null;
  assert.equal(m.run(1000), 'page', 'the store goes to another missing page');
  assert.deepEqual(m.waitingPage, { block: 'riscv_virt_board.ram', offset: 0x200000 });
  assert.equal(h.getReg(10), 42n, 'the load ran once its page arrived');
  assert.equal(m.memory.ldqLe(0x80200000), 7n, 'the store to the missing page did not happen');

  present.add(0x200);
  m.waitingPage = null;
  assert.equal(m.run(1000), 'exit');
  assert.equal(m.memory.ldqLe(0x80200000), 42n);
  assert.equal(m.exitCode, 0);
  m.endPostcopy();
  assert.equal(m.waitingPage, null);
});
