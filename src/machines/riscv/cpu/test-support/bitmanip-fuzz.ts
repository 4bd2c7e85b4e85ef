/**
 * Generates bare-metal M-mode programs (GNU as source, linked at 0x80000000) that run the Zba,
 * Zbb, Zbc and Zbs instructions of RV64, their neighbours in the encoding space and random
 * encodings of the four integer register opcodes (OP, OP-32, OP-IMM, OP-IMM-32), on edge values,
 * and log each result, and each trap's cause, tval and epc, to memory; at the end the log is
 * printed on the UART. The same program runs on QEMU 7.2 and on memtree's hart, whose logs must be
 * equal line for line.
 *
 * Instructions are emitted as `.word`s built here from the field layout, so that encodings the
 * assembler would refuse (the RV32 forms of rev8 and zext.h, the Zbk* ones, shift amounts of 64
 * and up) are tried too. Only x10..x17 and x0 are named as operands, so a random encoding never
 * touches the registers the program itself uses; an illegal instruction traps to a handler that
 * logs it and skips it. The PAUSE hint and other FENCE encodings are mixed in: they must run as
 * no-ops.
 */

import { mulberry32 } from '../../../../../test/support/mulberry32.js';
import { printLogSource } from './csr-fuzz.js';

const LOG_BASE = 0x81000000;
const MARK_TRAP = 0x7e000000000000n;
const M64 = (1n << 64n) - 1n;

/** [funct7, funct3] of the OP (0x33) and OP-32 (0x3b) instructions under test. */
const OP_R: Array<[number, number]> = [
  [0x10, 2], // sh1add
  [0x10, 4], // sh2add
  [0x10, 6], // sh3add
  [0x20, 7], // andn
  [0x20, 6], // orn
  [0x20, 4], // xnor
  [0x30, 1], // rol
  [0x30, 5], // ror
  [0x05, 4], // min
  [0x05, 5], // minu
  [0x05, 6], // max
  [0x05, 7], // maxu
  [0x05, 1], // clmul
  [0x05, 2], // clmulr
  [0x05, 3], // clmulh
  [0x24, 1], // bclr
  [0x24, 5], // bext
  [0x34, 1], // binv
  [0x14, 1], // bset
  [0x04, 4], // pack (Zbkb: illegal), zext.h's RV32 form with rs2 = x0 (illegal on RV64)
  [0x04, 7], // packh (Zbkb)
  [0x14, 2], // xperm4 (Zbkx)
  [0x14, 4], // xperm8 (Zbkx)
];
const OP32_R: Array<[number, number]> = [
  [0x04, 0], // add.uw
  [0x10, 2], // sh1add.uw
  [0x10, 4], // sh2add.uw
  [0x10, 6], // sh3add.uw
  [0x30, 1], // rolw
  [0x30, 5], // rorw
  [0x04, 4], // zext.h with rs2 = x0, packw (Zbkb) otherwise
];
/** [bits 31:20, funct3] of the unary OP-IMM (0x13) and OP-IMM-32 (0x1b) instructions. */
const OPIMM_UNARY: Array<[number, number]> = [
  [0x600, 1], // clz
  [0x601, 1], // ctz
  [0x602, 1], // cpop
  [0x604, 1], // sext.b
  [0x605, 1], // sext.h
  [0x287, 5], // orc.b
  [0x6b8, 5], // rev8
  [0x698, 5], // rev8's RV32 form: illegal on RV64
  [0x687, 5], // brev8 (Zbkb)
  [0x08f, 1], // zip (Zbkb, RV32)
  [0x08f, 5], // unzip (Zbkb, RV32)
];
const OPIMM32_UNARY: Array<[number, number]> = [
  [0x600, 1], // clzw
  [0x601, 1], // ctzw
  [0x602, 1], // cpopw
];
/** [bits 31:26, funct3] of the OP-IMM shifts by an immediate (bits 25:20). */
const OPIMM_SHIFT: Array<[number, number]> = [
  [0x0a, 1], // bseti
  [0x12, 1], // bclri
  [0x1a, 1], // binvi
  [0x12, 5], // bexti
  [0x18, 5], // rori
  [0x0b, 1], // bseti with shamt bit 6: illegal
  [0x13, 5], // bexti with shamt bit 6
  [0x19, 5], // rori with shamt bit 6
];

const OPS = [0x13, 0x1b, 0x33, 0x3b];

/** One generated program: its source and how many instructions it tests. */
export interface BitmanipFuzzProgram {
  source: string;
  cases: number;
}

/** Generates the program for `seed` with `cases` instructions under test. */
export function generateBitmanipProgram(seed: number, cases: number): BitmanipFuzzProgram {
  const rnd = mulberry32(seed);
  const int = (n: number) => Math.floor(rnd() * n);
  const pick = <T>(a: readonly T[]): T => a[int(a.length)]!;
  const r64 = () => (BigInt(int(2 ** 32)) << 32n) | BigInt(int(2 ** 32));
  const edges = [
    0n,
    M64,
    1n << 63n,
    (1n << 63n) - 1n,
    1n,
    0x7fffffffn,
    0x80000000n,
    0xffffffffn,
    0x100000000n,
    0xffffffff80000000n,
    0xffffffff7fffffffn,
    0x00000000ffff8000n,
    0x0123456789abcdefn,
    0xff00ff0000ff0100n,
  ];
  const value = (): bigint => {
    switch (int(8)) {
      case 0:
      case 1:
        return pick(edges);
      case 2:
        return 1n << BigInt(int(64));
      case 3:
        // shift amounts: the edges of 32 and 64, and beyond
        return (
          BigInt.asUintN(64, BigInt(pick([0, 1, 31, 32, 33, 63, 64, 95, 127, -1, -32]))) |
          (rnd() < 0.5 ? 0n : r64() & ~0xffn)
        );
      case 4:
        // some bytes zero (orc.b), the rest random
        return (
          r64() &
          [0xff00ff00ff00ff00n, 0x00000000ffffffffn, 0xffff00000000ffffn, 0x00ff000000000000n][int(4)]!
        );
      case 5:
        return r64() & r64();
      default:
        return r64();
    }
  };
  const reg = () => (rnd() < 0.08 ? 0 : 10 + int(8));
  const out: string[] = [];
  const emit = (s: string) => out.push(s);
  emit(`.option norvc
.globl _start
_start:
  la t0, mhandler
  csrw mtvec, t0
  li s11, 0x${LOG_BASE.toString(16)}
  j main

  .align 2
mhandler:
  li t0, 0x${MARK_TRAP.toString(16)}
  sd t0, 0(s11)
  csrr t0, mcause
  sd t0, 8(s11)
  csrr t1, mtval
  sd t1, 16(s11)
  csrr t1, mepc
  sd t1, 24(s11)
  addi s11, s11, 32
  addi t1, t1, 4
  csrw mepc, t1
  mret

main:`);
  for (let c = 0; c < cases; c++) {
    for (let r = 10; r < 18; r++) emit(`  li x${r}, 0x${value().toString(16)}`);
    const rd = reg();
    const rs1 = reg();
    const rs2 = reg();
    let word: number;
    const r = rnd();
    if (r < 0.03) {
      // PAUSE, or another FENCE encoding (any fields with funct3 0: QEMU's fence)
      word = rnd() < 0.5 ? 0x0100000f : ((int(1 << 17) << 15) | (rd << 7) | 0x0f) >>> 0;
      word &= ~(7 << 12);
    } else if (r < 0.85) {
      const kind = int(6);
      if (kind === 0) {
        const [f7, f3] = pick(OP_R);
        word = (f7 << 25) | (rs2 << 20) | (rs1 << 15) | (f3 << 12) | (rd << 7) | 0x33;
      } else if (kind === 1) {
        const [f7, f3] = pick(OP32_R);
        const r2 = f7 === 0x04 && f3 === 4 && rnd() < 0.7 ? 0 : rs2;
        word = (f7 << 25) | (r2 << 20) | (rs1 << 15) | (f3 << 12) | (rd << 7) | 0x3b;
      } else if (kind === 2) {
        const [imm, f3] = pick(OPIMM_UNARY);
        word = (imm << 20) | (rs1 << 15) | (f3 << 12) | (rd << 7) | 0x13;
      } else if (kind === 3) {
        const [imm, f3] = pick(OPIMM32_UNARY);
        word = (imm << 20) | (rs1 << 15) | (f3 << 12) | (rd << 7) | 0x1b;
      } else if (kind === 4) {
        const [top, f3] = pick(OPIMM_SHIFT);
        const sh = pick([0, 1, 31, 32, 33, 63, int(64)]);
        word = (top << 26) | (sh << 20) | (rs1 << 15) | (f3 << 12) | (rd << 7) | 0x13;
      } else {
        // OP-IMM-32: slli.uw (bits 31:26 = 2, and 3 for a shift of 64 and up) and roriw
        if (rnd() < 0.6) {
          const top = rnd() < 0.85 ? 0x02 : 0x03;
          const sh = pick([0, 1, 31, 32, 33, 63, int(64)]);
          word = (top << 26) | (sh << 20) | (rs1 << 15) | (1 << 12) | (rd << 7) | 0x1b;
        } else {
          const sh = pick([0, 1, 16, 31, int(32)]);
          word = (0x30 << 25) | (sh << 20) | (rs1 << 15) | (5 << 12) | (rd << 7) | 0x1b;
        }
      }
    } else {
      // anything in the four opcodes: funct7 (or the immediate) and funct3 at random, biased
      // towards the funct7 values bit manipulation uses
      const op = pick(OPS);
      const f3 = int(8);
      const f7 = rnd() < 0.5 ? pick([0x00, 0x01, 0x04, 0x05, 0x10, 0x14, 0x20, 0x24, 0x30, 0x34]) : int(128);
      const mid = op === 0x13 || op === 0x1b ? (rnd() < 0.5 ? int(32) : rs2) : rs2;
      word = (f7 << 25) | (mid << 20) | (rs1 << 15) | (f3 << 12) | (rd << 7) | op;
    }
    emit(`  .word 0x${(word >>> 0).toString(16)}`);
    emit(`  sd x${rd}, 0(s11)`);
    emit('  addi s11, s11, 8');
  }
  emit(printLogSource(LOG_BASE));
  return { source: out.join('\n'), cases };
}
