/** saveState/loadState: a hart restored from a JSON round trip of a snapshot carries on identically. */

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { asmSkip, assemble } from './test-support/asm.js';
import { miniMachine, RAM_BASE } from './test-support/mini-machine.js';
import { PRELUDE } from './test-support/run-asm.js';

const skip = asmSkip();

describe('hart state', { skip }, () => {
  it('restores registers, f registers, fcsr, CSRs, privilege and counters', () => {
    const image = assemble(`${PRELUDE}
      li t0, 0x2000
      csrs mstatus, t0
      la t0, strap
      csrw stvec, t0
      li t0, 0x100
      csrw medeleg, t0
      csrwi mcounteren, 4      # instret for S
      li s0, 0x123456789
      csrw sscratch, s0
      li t0, 0x3ff8000000000000
      fmv.d.x f1, t0
      li t0, 0x1800
      csrc mstatus, t0
      la t0, umode
      csrw mepc, t0
      mret
umode:
      li a0, 0
      li a1, 1
      li a2, 200
1:    add a0, a0, a1           # the snapshot falls somewhere in this loop, in U-mode
      fadd.d f2, f2, f1
      addi a2, a2, -1
      bnez a2, 1b
      ecall
strap:
      csrr a3, scause
      csrr a4, sscratch
      fmv.x.d a5, f2
      frcsr a6
      rdinstret a7
      EXIT
    `);
    const start = () => {
      const m = miniMachine(16 * 2 ** 20);
      m.load(RAM_BASE, image);
      m.hart.setPc(BigInt(RAM_BASE));
      return m;
    };
    const a = start();
    a.hart.run(300);
    assert.equal(a.hart.privilege, 0);
    const snap = JSON.parse(JSON.stringify(a.hart.saveState()));
    a.run(100000);
    const b = start();
    b.hart.loadState(snap);
    b.run(100000);
    assert.equal(a.exitCode(), 0);
    assert.equal(b.exitCode(), 0);
    for (let r = 1; r < 32; r++) assert.equal(b.hart.getReg(r), a.hart.getReg(r), `x${r}`);
    for (let r = 0; r < 32; r++) assert.equal(b.hart.getFReg(r), a.hart.getFReg(r), `f${r}`);
    assert.equal(a.hart.getReg(10), 200n);
    assert.equal(a.hart.getReg(13), 8n);
    assert.equal(a.hart.getReg(14), 0x123456789n);
    assert.equal(a.hart.getReg(15), 0x4072c00000000000n); // 200 * 1.5 = 300
    assert.deepEqual(b.hart.saveState(), a.hart.saveState());
  });
});
