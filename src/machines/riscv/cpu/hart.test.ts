/**
 * The hart against hand-reasoned expectations: small programs assembled at test time with Debian's
 * riscv64 binutils, run on a stand-in board whose memory is a memtree address space.
 */

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { asmSkip } from './test-support/asm.js';
import { hex, runAsm } from './test-support/run-asm.js';

const skip = asmSkip();
const reg = (m: ReturnType<typeof runAsm>, i: number) => hex(m.hart.getReg(i));

describe('RV64I', { skip }, () => {
  it('adds and subtracts across the 32-bit halves', () => {
    const m = runAsm(`
      li a0, 0xffffffff
      addi a1, a0, 1          # carry into the high word: 0x1_0000_0000
      li a2, 0x100000000
      addi a3, a2, -1         # borrow: 0xffffffff
      sub a4, zero, a2        # -2^32
      li a5, -1
      add a6, a5, a5          # -2
      addiw a7, a0, 1         # 32-bit wrap: 0
      li t0, 0x7fffffff
      addw t1, t0, t0         # 0xfffffffe sign-extended
      EXIT
    `);
    assert.equal(reg(m, 11), '0x100000000');
    assert.equal(reg(m, 13), '0xffffffff');
    assert.equal(reg(m, 14), '0xffffffff00000000');
    assert.equal(reg(m, 16), '0xfffffffffffffffe');
    assert.equal(reg(m, 17), '0x0');
    assert.equal(reg(m, 6), '0xfffffffffffffffe');
  });

  it('shifts by 0..63 and the W forms sign-extend', () => {
    const m = runAsm(`
      li a0, 1
      slli a1, a0, 63         # 0x8000...
      srai a2, a1, 40         # arithmetic: 0xffffffffff800000
      srli a3, a1, 40         # logical: 0x800000
      li t0, 36
      sll a4, a0, t0          # 2^36
      li t1, 0x80000000
      sraiw a5, t1, 4         # word 0x80000000 >> 4 = 0xf8000000, sign-extended
      srliw a6, t1, 4         # 0x08000000
      slliw a7, a0, 31        # 0xffffffff80000000
      li t2, 0x123456789
      srl s2, t2, zero        # unchanged
      EXIT
    `);
    assert.equal(reg(m, 11), '0x8000000000000000');
    assert.equal(reg(m, 12), '0xffffffffff800000');
    assert.equal(reg(m, 13), '0x800000');
    assert.equal(reg(m, 14), '0x1000000000');
    assert.equal(reg(m, 15), '0xfffffffff8000000');
    assert.equal(reg(m, 16), '0x8000000');
    assert.equal(reg(m, 17), '0xffffffff80000000');
    assert.equal(reg(m, 18), '0x123456789');
  });

  it('compares and branches signed and unsigned', () => {
    const m = runAsm(`
      li a0, -1
      li a1, 1
      slt a2, a0, a1          # -1 < 1: 1
      sltu a3, a0, a1         # 2^64-1 < 1: 0
      slti a4, a0, 0          # 1
      sltiu a5, a1, -1        # 1 < 2^64-1: 1
      li s2, 0
      blt a0, a1, 1f
      ori s2, s2, 1           # not reached
1:    bgeu a0, a1, 2f
      ori s2, s2, 2
2:    li t0, 0x100000000
      li t1, 0x200000000
      bltu t0, t1, 3f         # differ only in the high word
      ori s2, s2, 4
3:    bne t0, t1, 4f
      ori s2, s2, 8
4:    EXIT
    `);
    assert.equal(reg(m, 12), '0x1');
    assert.equal(reg(m, 13), '0x0');
    assert.equal(reg(m, 14), '0x1');
    assert.equal(reg(m, 15), '0x1');
    assert.equal(reg(m, 18), '0x0');
  });

  it('loads sign- or zero-extend; stores truncate; misaligned accesses work as in QEMU', () => {
    const m = runAsm(`
      la s0, data
      li t0, 0x8081828384858687
      sd t0, 0(s0)
      lb a0, 0(s0)            # 0x87 -> negative
      lbu a1, 0(s0)
      lh a2, 0(s0)            # 0x8687
      lhu a3, 0(s0)
      lw a4, 4(s0)            # 0x80818283
      lwu a5, 4(s0)
      ld a6, 0(s0)
      ld a7, 1(s0)            # misaligned: bytes 1..8 (byte 8 = 0x11)
      sh t0, 12(s0)           # stores 0x8687
      lhu s2, 12(s0)
      EXIT
      .align 3
data: .dword 0, 0x11
    `);
    assert.equal(reg(m, 10), '0xffffffffffffff87');
    assert.equal(reg(m, 11), '0x87');
    assert.equal(reg(m, 12), '0xffffffffffff8687');
    assert.equal(reg(m, 13), '0x8687');
    assert.equal(reg(m, 14), '0xffffffff80818283');
    assert.equal(reg(m, 15), '0x80818283');
    assert.equal(reg(m, 16), '0x8081828384858687');
    assert.equal(reg(m, 17), '0x1180818283848586');
    assert.equal(reg(m, 18), '0x8687');
  });

  it('jal/jalr link the next pc and jalr clears bit 0', () => {
    const m = runAsm(`
      la t0, target
      addi t0, t0, 1          # odd target: bit 0 is ignored
      jalr ra, 0(t0)
back: la a1, back
      EXIT
target:
      mv a0, ra
      jr ra
    `);
    assert.equal(reg(m, 10), reg(m, 11));
  });
});

describe('M and A', { skip }, () => {
  it('multiplies (all four MUL forms) and divides with the spec results for zero and overflow', () => {
    const m = runAsm(`
      li t0, 0x123456789abcdef0
      li t1, 0x0fedcba987654321
      mul a0, t0, t1
      li t2, 0x8000000000000000
      li t3, 2
      mulh a1, t2, t3         # -2^64: high word -1
      mulhu a2, t2, t3        # 2^64: high word 1
      li t4, 0xfedcba9876543210
      mulhsu a3, t4, t4
      li t5, -1
      div a4, t2, t5          # overflow: MIN
      rem a5, t2, t5          # 0
      div a6, t0, zero        # -1
      remu a7, t0, zero       # dividend
      li s0, -7
      li s1, 2
      div s2, s0, s1          # -3 (toward zero)
      rem s3, s0, s1          # -1
      divuw s4, s0, s1        # 0xfffffff9 / 2 = 0x7ffffffc
      remw s5, s0, zero       # dividend, sign-extended
      mulw s6, t4, t4         # low word of 0x76543210^2 sign-extended
      li s7, 0x80000000
      divw s8, s7, t5         # word overflow: 0xffffffff80000000
      EXIT
    `);
    assert.equal(reg(m, 10), '0x2236d88fe5618cf0');
    assert.equal(reg(m, 11), '0xffffffffffffffff');
    assert.equal(reg(m, 12), '0x1');
    assert.equal(reg(m, 13), '0xfede05ff528828bc');
    assert.equal(reg(m, 14), '0x8000000000000000');
    assert.equal(reg(m, 15), '0x0');
    assert.equal(reg(m, 16), '0xffffffffffffffff');
    assert.equal(reg(m, 17), '0x123456789abcdef0');
    assert.equal(reg(m, 18), '0xfffffffffffffffd');
    assert.equal(reg(m, 19), '0xffffffffffffffff');
    assert.equal(reg(m, 20), '0x7ffffffc');
    assert.equal(reg(m, 21), '0xfffffffffffffff9');
    // 0x76543210^2 mod 2^32 = 0xa44a4100, negative as a word
    assert.equal(reg(m, 22), '0xffffffffa44a4100');
    assert.equal(reg(m, 24), '0xffffffff80000000');
  });

  it('AMOs return the old value sign-extended; LR/SC pair; unsigned min/max on words', () => {
    const m = runAsm(`
      la s0, word
      la s1, dword
      li t1, 5
      amoadd.w a0, t1, (s0)   # 0x7fffffff + 5
      lw a1, 0(s0)
      li t2, 1
      amomaxu.w a2, t2, (s0)  # 0x80000004 stays (unsigned larger)
      amomin.w a3, t2, (s0)   # 0x80000004 stays (negative)
      amominu.w a4, t2, (s0)  # becomes 1
      lw a5, 0(s0)
      lr.d a6, (s1)
      sc.d a7, t1, (s1)       # succeeds: 0
      sc.d s2, t1, (s1)       # reservation gone: 1
      amoswap.d s3, t2, (s1)  # old 5
      ld s4, 0(s1)
      EXIT
      .align 3
word: .word 0x7fffffff, 0
dword: .dword 0x1122334455667788
    `);
    assert.equal(reg(m, 10), '0x7fffffff');
    assert.equal(reg(m, 11), '0xffffffff80000004');
    assert.equal(reg(m, 12), '0xffffffff80000004');
    assert.equal(reg(m, 13), '0xffffffff80000004');
    assert.equal(reg(m, 14), '0xffffffff80000004');
    assert.equal(reg(m, 15), '0x1');
    assert.equal(reg(m, 16), '0x1122334455667788');
    assert.equal(reg(m, 17), '0x0');
    assert.equal(reg(m, 18), '0x1');
    assert.equal(reg(m, 19), '0x5');
    assert.equal(reg(m, 20), '0x1');
  });
});

describe('C', { skip }, () => {
  it('executes compressed instructions, linking pc + 2', () => {
    const m = runAsm(`
      .option rvc
      c.li a0, -3
      c.addi a0, 10           # 7
      c.slli a0, 60           # 7 << 60 = 0x7000...
      c.srai a0, 4            # 0x0700...
      c.lui a1, 0x1f          # 0x1f000
      c.addiw a1, -1          # 0x1efff
      c.mv a2, a1
      c.add a2, a1            # 0x3dffe
      li s1, 0x10
      c.sub a2, s1            # 0x3dfee (s1 is x9: a compressed register)
      li sp, 0x80100000
      addi sp, sp, -16
      c.sdsp a2, 8(sp)
      c.ldsp a3, 8(sp)
      c.addi16sp sp, 16
      la t0, sub
      c.li a4, 0
      c.jalr t0
after: c.beqz a4, 1f
      c.li a4, 1              # skipped
1:    c.j 2f
      c.li a4, 2              # skipped
2:    .option norvc
      la a6, after
      EXIT
sub:  mv a5, ra
      ret
    `);
    assert.equal(reg(m, 10), '0x700000000000000');
    assert.equal(reg(m, 11), '0x1efff');
    assert.equal(reg(m, 12), '0x3dfee');
    assert.equal(reg(m, 13), '0x3dfee');
    assert.equal(reg(m, 14), '0x0');
    // the link of the 2-byte c.jalr is its address + 2, the label after it
    assert.equal(reg(m, 15), reg(m, 16));
  });
});
