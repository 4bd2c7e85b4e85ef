/**
 * The hart against hand-reasoned expectations: small programs assembled at test time with Debian's
 * riscv64 binutils, run on a stand-in board whose memory is a memtree address space.
 */

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { RiscvHart } from './hart.js';
import { asmSkip, assemble } from './test-support/asm.js';
import { miniMachine, RAM_BASE } from './test-support/mini-machine.js';
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

/** Enables the FPU (mstatus.FS = Initial). */
const FS_ON = `
      li t0, 0x2000
      csrs mstatus, t0
`;

describe('F and D', { skip }, () => {
  it('rounds 1 + 2^-24 (a tie in single precision) in each rounding mode, flagging inexact', () => {
    const m = runAsm(`${FS_ON}
      li t0, 0x3f800000
      fmv.w.x f1, t0          # 1.0
      li t0, 0x33800000
      fmv.w.x f2, t0          # 2^-24
      fadd.s f3, f1, f2, rne
      fmv.x.w a0, f3
      fadd.s f3, f1, f2, rtz
      fmv.x.w a1, f3
      fadd.s f3, f1, f2, rdn
      fmv.x.w a2, f3
      fadd.s f3, f1, f2, rup
      fmv.x.w a3, f3
      fadd.s f3, f1, f2, rmm
      fmv.x.w a4, f3
      fneg.s f4, f1
      fsub.s f3, f4, f2, rdn  # -(1 + 2^-24) toward -inf
      fmv.x.w a5, f3
      csrr a6, fflags
      li t0, 2                # frm = RDN, used by the dynamic mode
      csrw frm, t0
      fadd.s f3, f1, f2
      fmv.x.w a7, f3
      csrr s2, fcsr
      EXIT
    `);
    assert.equal(reg(m, 10), '0x3f800000');
    assert.equal(reg(m, 11), '0x3f800000');
    assert.equal(reg(m, 12), '0x3f800000');
    assert.equal(reg(m, 13), '0x3f800001');
    assert.equal(reg(m, 14), '0x3f800001');
    assert.equal(reg(m, 15), '0xffffffffbf800001');
    assert.equal(reg(m, 16), '0x1'); // NX
    assert.equal(reg(m, 17), '0x3f800000');
    assert.equal(reg(m, 18), '0x41'); // frm 2, NX
  });

  it('divides, square-roots and fuses exactly', () => {
    const m = runAsm(`${FS_ON}
      li t0, 0x3ff0000000000000
      fmv.d.x f1, t0          # 1.0
      li t0, 0x4008000000000000
      fmv.d.x f2, t0          # 3.0
      fdiv.d f3, f1, f2, rne
      fmv.x.d a0, f3
      fdiv.d f3, f1, f2, rup
      fmv.x.d a1, f3
      li t0, 0x40000000
      fmv.w.x f4, t0          # 2.0f
      fsqrt.s f5, f4, rne
      fmv.x.w a2, f5
      fsqrt.s f5, f4, rup
      fmv.x.w a3, f5
      # (1 + 2^-30)(1 - 2^-30) - 1 = -2^-60 when fused; the rounded product would give 0
      li t0, 0x3ff0000000400000
      fmv.d.x f6, t0
      li t0, 0x3fefffffff800000
      fmv.d.x f7, t0
      fneg.d f8, f1
      fmadd.d f9, f6, f7, f8
      fmv.x.d a4, f9
      fnmsub.d f9, f6, f7, f1 # -(a*b) + 1 = 2^-60
      fmv.x.d a5, f9
      EXIT
    `);
    assert.equal(reg(m, 10), '0x3fd5555555555555');
    assert.equal(reg(m, 11), '0x3fd5555555555556');
    assert.equal(reg(m, 12), '0x3fb504f3');
    assert.equal(reg(m, 13), '0x3fb504f4');
    assert.equal(reg(m, 14), '0xbc30000000000000');
    assert.equal(reg(m, 15), '0x3c30000000000000');
  });

  it('NaN-boxes singles: an unboxed value reads as the canonical NaN', () => {
    const m = runAsm(`${FS_ON}
      li t0, 0x3f800000
      fmv.w.x f1, t0
      fmv.x.d a0, f1          # upper 32 bits all ones
      fmv.d.x f2, t0          # same bits, not boxed
      fadd.s f3, f2, f1
      fmv.x.w a1, f3          # canonical NaN
      fclass.s a2, f2         # quiet NaN
      csrr a3, fflags         # a quiet NaN operand raises nothing
      flw f4, word, t1
      fmv.x.d a4, f4          # flw boxes too
      EXIT
      .align 2
word: .word 0xc0000000
    `);
    assert.equal(reg(m, 10), '0xffffffff3f800000');
    assert.equal(reg(m, 11), '0x7fc00000');
    assert.equal(reg(m, 12), '0x200');
    assert.equal(reg(m, 13), '0x0');
    assert.equal(reg(m, 14), '0xffffffffc0000000');
  });

  it('flags invalid, divide-by-zero; saturates conversions; orders -0 below +0', () => {
    const m = runAsm(`${FS_ON}
      li t0, 0xbf800000
      fmv.w.x f1, t0          # -1.0f
      fsqrt.s f2, f1
      fmv.x.w a0, f2          # canonical NaN
      csrrw a1, fflags, zero  # NV
      fmv.w.x f3, zero        # +0
      li t0, 0x3f800000
      fmv.w.x f4, t0
      fdiv.s f5, f4, f3
      fmv.x.w a2, f5          # +inf
      csrrw a3, fflags, zero  # DZ
      fcvt.w.s a4, f2         # NaN -> 2^31 - 1, NV
      fcvt.wu.s a5, f1        # -1 -> 0, NV
      csrrw a6, fflags, zero
      li t0, 0x4004000000000000
      fmv.d.x f6, t0          # 2.5
      fcvt.w.d a7, f6, rne    # 2
      fcvt.w.d s2, f6, rmm    # 3
      fneg.d f7, f6
      fcvt.l.d s3, f7, rdn    # -3
      fcvt.l.d s4, f7, rtz    # -2
      csrrw s5, fflags, zero  # NX
      li t0, 0x43f0000000000000
      fmv.d.x f8, t0          # 2^64
      fcvt.lu.d s6, f8        # saturates: 2^64 - 1
      li t0, 0x80000000
      fmv.w.x f9, t0          # -0
      fmin.s f10, f3, f9
      fmv.x.w s7, f10         # -0
      fmax.s f10, f9, f3
      fmv.x.w s8, f10         # +0
      flt.s s9, f9, f3        # -0 < +0 is false
      feq.s s10, f2, f2       # NaN != NaN, quiet
      EXIT
    `);
    assert.equal(reg(m, 10), '0x7fc00000');
    assert.equal(reg(m, 11), '0x10');
    assert.equal(reg(m, 12), '0x7f800000');
    assert.equal(reg(m, 13), '0x8');
    assert.equal(reg(m, 14), '0x7fffffff');
    assert.equal(reg(m, 15), '0x0');
    assert.equal(reg(m, 16), '0x10');
    assert.equal(reg(m, 17), '0x2');
    assert.equal(reg(m, 18), '0x3');
    assert.equal(reg(m, 19), '0xfffffffffffffffd');
    assert.equal(reg(m, 20), '0xfffffffffffffffe');
    assert.equal(reg(m, 21), '0x1');
    assert.equal(reg(m, 22), '0xffffffffffffffff');
    assert.equal(reg(m, 23), '0xffffffff80000000');
    assert.equal(reg(m, 24), '0x0');
    assert.equal(reg(m, 25), '0x0');
    assert.equal(reg(m, 26), '0x0');
  });

  it('converts between formats and from integers with rounding', () => {
    const m = runAsm(`${FS_ON}
      li t0, 0x3fd5555555555555
      fmv.d.x f1, t0          # 1/3
      fcvt.s.d f2, f1, rne
      fmv.x.w a0, f2          # 0x3eaaaaab
      fcvt.s.d f2, f1, rtz
      fmv.x.w a1, f2          # 0x3eaaaaaa
      fcvt.d.s f3, f2
      fmv.x.d a2, f3          # exact widening
      li t0, 0x1000001        # 2^24 + 1 is not a single
      fcvt.s.w f4, t0, rne
      fmv.x.w a3, f4          # 2^24 (tie to even)
      fcvt.s.w f4, t0, rup
      fmv.x.w a4, f4          # 2^24 + 2
      li t0, -1
      fcvt.d.lu f5, t0, rtz   # 2^64 - 1 -> 0x43efffffffffffff
      fmv.x.d a5, f5
      fcvt.d.l f5, t0         # -1.0
      fmv.x.d a6, f5
      EXIT
    `);
    assert.equal(reg(m, 10), '0x3eaaaaab');
    assert.equal(reg(m, 11), '0x3eaaaaaa');
    assert.equal(reg(m, 12), '0x3fd5555540000000');
    assert.equal(reg(m, 13), '0x4b800000');
    assert.equal(reg(m, 14), '0x4b800001');
    assert.equal(reg(m, 15), '0x43efffffffffffff');
    assert.equal(reg(m, 16), '0xbff0000000000000');
  });

  it('is illegal while mstatus.FS is Off, with the instruction in mtval', () => {
    const m = runAsm(`
      la t0, handler
      csrw mtvec, t0
      fadd.d f1, f2, f3       # FS is Off after reset
      EXIT
handler:
      csrr a0, mcause
      csrr a1, mtval
      EXIT
    `);
    assert.equal(reg(m, 10), '0x2');
    // fadd.d f1, f2, f3 (rm dyn) = 0000001 00011 00010 111 00001 1010011
    assert.equal(reg(m, 11), '0x23170d3');
  });
});

describe('LR/SC across harts', { skip }, () => {
  it('fails the SC when another hart changed the word between LR and SC (QEMU compares the value)', () => {
    const m = miniMachine(16 * 2 ** 20);
    // hart 0: LR, (pause), SC; hart 1 stores to the word while hart 0 is paused
    m.load(
      RAM_BASE,
      assemble(`
      la s0, word
      lr.w a0, (s0)
      li t0, 9
      sc.w a1, t0, (s0)
      lw a2, 0(s0)
      j .
      .align 3
word: .word 5
    `),
    );
    m.hart.setPc(BigInt(RAM_BASE));
    const other = new RiscvHart({ hartId: 1, bus: m.bus, resetPc: 0, readTime: () => 0n });
    m.hart.run(3); // la (2) + lr.w
    const word = Number(m.hart.getReg(8));
    assert.equal(m.hart.getReg(10), 5n);
    // hart 1 writes 7 to the word (li t1, 7; sw t1, 0(t0) with t0 = word)
    m.load(0x80100000, assemble('li t1, 7\n sw t1, 0(t0)\n j .', 0x80100000));
    other.setPc(0x80100000n);
    other.setReg(5, BigInt(word));
    other.run(2);
    m.hart.run(3); // li, sc.w, lw
    assert.equal(m.hart.getReg(11), 1n);
    assert.equal(m.hart.getReg(12), 7n);
  });
});

describe('ISA string', () => {
  it("is QEMU 7.2's riscv,isa for its default rv64 hart with h=false", () => {
    // `qemu-system-riscv64 -M virt,dumpdtb=x.dtb -cpu rv64,h=false`, then `dtc -I dtb x.dtb`
    assert.equal(miniMachine().hart.isaString, 'rv64imafdc_zicsr_zifencei_zihintpause_zba_zbb_zbc_zbs_sstc');
  });

  it('names Sstc only when the hart has a timer for it, and F and D only when it has them', () => {
    const h = new RiscvHart({
      hartId: 0,
      bus: miniMachine().bus,
      resetPc: 0,
      readTime: () => 0n,
      isa: { f: false, d: false },
    });
    assert.equal(h.isaString, 'rv64imac_zicsr_zifencei_zihintpause_zba_zbb_zbc_zbs');
  });
});
