/**
 * Generates bare-metal M-mode programs (GNU as source, linked at 0x80000000) that run random CSR
 * instructions, in M-mode and after an mret into S or U, and log what they read and every trap
 * (cause, tval, epc, status) to memory. At the end the program prints the log as hex on the UART
 * (ns16550 at 0x10000000) and powers off through sifive_test. The same program runs on QEMU 7.2
 * and on memtree's hart; the two logs must be equal line for line.
 *
 * Invariants the generator keeps so that a program always reaches its end, on both:
 * - PMP entry 0 (NAPOT over everything, RWX) stays as set up, so S and U can fetch and store: no
 *   write sets a lock bit (a locked entry cannot be undone) nor changes pmpcfg0's byte 0 or
 *   pmpaddr0.
 * - mtvec and stvec are put back after every write to them (the written value is logged first).
 * - mstatus.MPRV is never set: with MPP = S/U and a paged satp it would translate the log stores.
 * - Before an mret to S/U: satp = 0, medeleg does not delegate illegal instructions or ecalls (the
 *   handlers themselves use sret/ecall) and TSR is clear; lower modes never write satp.
 * - WFI only runs in U-mode (always illegal there): elsewhere it may stop QEMU's hart for good.
 *
 * PMP entry 0 matters to QEMU only: memtree's hart keeps the PMP CSRs but does not check accesses
 * against them (docs/riscv-hart.md). A `csrw pmpcfg0, zero` once left QEMU with no rule, so S and
 * U could not fetch (pmp_hart_has_privs_default) and the program looped on access faults; hence
 * no CSR with a value rule is written from x0 by csrrw.
 *
 * Left out, on purpose: counters whose value depends on time or the host (cycle, time, instret,
 * mcycle, minstret and the hpm counters and events, which QEMU's PMU can map onto cycles), and
 * extensions memtree's hart lacks (H, debug triggers: QEMU runs with `-cpu rv64,h=false`; the
 * CSRs of those stay in the list of unknown ones to check that both call them illegal).
 *
 * Sstc is on, as in QEMU's default: stimecmp is read and written from every mode (whether S can
 * depends on the random mcounteren.TM and menvcfg.STCE) and STIP follows it, but only through
 * values whose comparison with `time` cannot depend on when it runs: 0 (reached at once) or 2^40
 * and more (30 hours of the 10 MHz time base: never reached).
 */

import { mulberry32 } from '../../../../../test/support/mulberry32.js';

/** A CSR the generator uses; `wr` makes a value for writes that keeps the invariants. */
interface CsrSpec {
  name: string;
  num: number;
  /** Transforms a random value for csrrw/csrrs (set bits) and csrrc (clear bits). */
  fix?: (v: bigint, op: 'w' | 's' | 'c') => bigint;
  /** Not written from S/U mode (reads still are). */
  noLowerWrite?: boolean;
  /** Only the register forms (a value rule that 5-bit immediates cannot keep). */
  noImm?: boolean;
}

const M64 = (1n << 64n) - 1n;
const MPRV = 1n << 17n;
const HIGH = 0xffn << 32n;
const LOCKS = 0x8080808080808080n;
/**
 * QEMU 7.2 lets mie, mip and mideleg hold the VS interrupt bits (2, 6, 10) and LCOFI (13) even
 * with h=false and without Sscofpmf (its delegable_ints and all_ints are fixed masks), and then
 * takes VS interrupts on a hart without H (a loop of cause 6 with nothing to clear it). memtree's
 * hart has neither extension and keeps those bits zero: a deliberate difference, so no write sets
 * them.
 */
const NO_VS = ~0x2444n;
const noVs = (v: bigint, op: 'w' | 's' | 'c') => (op === 'c' ? v : v & NO_VS);

const CSRS: CsrSpec[] = [
  { name: 'fflags', num: 0x001 },
  { name: 'frm', num: 0x002 },
  { name: 'fcsr', num: 0x003 },
  { name: 'sstatus', num: 0x100, fix: (v) => v & ~HIGH },
  { name: 'sie', num: 0x104 },
  { name: 'stvec', num: 0x105 },
  { name: 'scounteren', num: 0x106 },
  { name: 'senvcfg', num: 0x10a },
  { name: 'sscratch', num: 0x140 },
  { name: 'sepc', num: 0x141 },
  { name: 'scause', num: 0x142 },
  { name: 'stval', num: 0x143 },
  { name: 'sip', num: 0x144 },
  // stimecmp holds 0 or at least 2^40, so that STIP never depends on the time (see above): a
  // write of less is 0, a set sets bit 40 too, a clear clears bits 39..0 too
  {
    name: 'stimecmp',
    num: 0x14d,
    noImm: true,
    fix: (v, op) => {
      const low = (1n << 40n) - 1n;
      if (op === 'w') return v > low ? v : 0n;
      if (op === 's') return v === 0n ? 0n : v | (1n << 40n);
      return v | low;
    },
  },
  // Deliberate: QEMU 7.2 takes satp mode 10 (Sv57); memtree's hart has no Sv57 (see hart.ts), so
  // no write makes mode 10: csrrw replaces it by 9, csrrs/csrrc leave the mode field alone.
  {
    name: 'satp',
    num: 0x180,
    noLowerWrite: true,
    fix: (v, op) => {
      const mode = 0xfn << 60n;
      if (op !== 'w') return v & ~mode;
      return (v & mode) === 10n << 60n ? (v & ~mode) | (9n << 60n) : v;
    },
  },
  // Deliberate: QEMU 7.2 write_mstatus/write_sstatus take a nonzero UXL (bits 33:32) as written,
  // and UXL = 1 then runs U-mode as RV32, which this RV64-only hart cannot; they also keep MPV and
  // GVA (39, 38) without H. memtree keeps UXL = 2 and those bits 0, so writes leave 39..32 alone.
  { name: 'mstatus', num: 0x300, fix: (v, op) => (op === 'c' ? v & ~HIGH : v & ~MPRV & ~HIGH) },
  { name: 'misa', num: 0x301 },
  { name: 'medeleg', num: 0x302 },
  { name: 'mideleg', num: 0x303, fix: noVs },
  { name: 'mie', num: 0x304, fix: noVs },
  { name: 'mtvec', num: 0x305 },
  { name: 'mcounteren', num: 0x306 },
  { name: 'menvcfg', num: 0x30a },
  { name: 'mcountinhibit', num: 0x320 },
  { name: 'mscratch', num: 0x340 },
  { name: 'mepc', num: 0x341 },
  { name: 'mcause', num: 0x342 },
  { name: 'mtval', num: 0x343 },
  { name: 'mip', num: 0x344, fix: noVs },
  {
    name: 'pmpcfg0',
    num: 0x3a0,
    fix: (v, op) => (op === 'w' ? (v & ~LOCKS & ~0xffn) | 0x1fn : v & ~LOCKS & ~0xffn),
  },
  { name: 'pmpcfg2', num: 0x3a2, fix: (v, op) => (op === 'c' ? v : v & ~LOCKS) },
  ...Array.from({ length: 15 }, (_, i) => ({ name: `pmpaddr${i + 1}`, num: 0x3b1 + i })),
  { name: 'mvendorid', num: 0xf11 },
  // marchid and mimpid are left out: QEMU derives them from its own version number (7.2.22 gives
  // 0x70216), so they name the build, not the machine; memtree's hart reads 0.
  { name: 'mhartid', num: 0xf14 },
  { name: 'mconfigptr', num: 0xf15 },
];

/**
 * CSR numbers both must call illegal: unknown ones, odd pmpcfg on RV64, and those of H,
 * Sscofpmf, Smstateen and the debug module, which the QEMU command line turns off or 7.2 lacks.
 * Not vstimecmp (0x24d): QEMU 7.2's `sstc` predicate lets M-mode reach it without H, and a write
 * there raises a VS timer interrupt; memtree's hart, without H, calls it illegal (a deliberate
 * difference, docs/riscv-hart.md).
 */
const ILLEGAL_CSRS = [0x5c0, 0x3a1, 0x3a3, 0x600, 0x680, 0x7a0, 0x7a1, 0x7b0, 0x30c, 0xda0, 0x8ff];

/** Every CSR the dump after each case reads, in M-mode (pmpaddr0 included). */
export const DUMP = [...CSRS.map((c) => c.num), 0x3b0].sort((a, b) => a - b);

const LOG_BASE = 0x81000000;
const MARK_OP = 0x0b0000000000n; // op marker: MARK_OP | case << 8 | op
const MARK_MTRAP = 0x7e000000000000n;
const MARK_STRAP = 0x5e000000000000n;
const MARK_DUMP = 0xd0000000000000n;

/** One generated program: its source and how many cases it has. */
export interface CsrFuzzProgram {
  source: string;
  cases: number;
}

/** Generates the program for `seed` with `cases` cases (each: some CSR ops, then a dump). */
export function generateCsrProgram(seed: number, cases: number): CsrFuzzProgram {
  const rnd = mulberry32(seed); // the program depends only on the seed
  const pick = <T>(a: readonly T[]): T => a[Math.floor(rnd() * a.length)]!;
  const int = (n: number) => Math.floor(rnd() * n);
  const r64 = () => (BigInt(Math.floor(rnd() * 2 ** 32)) << 32n) | BigInt(Math.floor(rnd() * 2 ** 32));
  const value = (): bigint => {
    switch (int(7)) {
      case 0:
        return M64;
      case 1:
        return 0n;
      case 2:
        return 1n << BigInt(int(64));
      case 3:
        return r64() & r64() & r64();
      case 4:
        return BigInt(int(0x1000));
      case 5:
        return M64 ^ (1n << BigInt(int(64)));
      default:
        return r64();
    }
  };
  const out: string[] = [];
  const emit = (s: string) => out.push(s);
  const log = (reg: string) => {
    emit(`  sd ${reg}, 0(s11)`);
    emit('  addi s11, s11, 8');
  };
  const mark = (v: bigint) => {
    emit(`  li t3, 0x${v.toString(16)}`);
    log('t3');
  };
  const regs = ['a0', 'a1', 'a2', 'a3', 'a4', 'a5', 'a6', 'a7'];

  emit(`.option norvc
.globl _start
_start:
  la t0, mhandler
  csrw mtvec, t0
  li t0, -1
  csrw pmpaddr0, t0
  li t0, 0x1f
  csrw pmpcfg0, t0
  li s11, 0x${LOG_BASE.toString(16)}
  j main

  .align 2
mhandler:
  li t0, 0x${MARK_MTRAP.toString(16)}
  sd t0, 0(s11)
  csrr t0, mcause
  sd t0, 8(s11)
  csrr t1, mtval
  sd t1, 16(s11)
  csrr t1, mepc
  sd t1, 24(s11)
  csrr t1, mstatus
  sd t1, 32(s11)
  addi s11, s11, 40
  bltz t0, 1f
  addi t1, t0, -8
  beqz t1, 2f
  addi t1, t0, -9
  beqz t1, 2f
  csrr t1, mepc
  addi t1, t1, 4
  csrw mepc, t1
  mret
1: # an interrupt: disable them all so that it is not taken again
  csrw mie, zero
  mret
2: # ecall from S/U: back to M at the case's resume point
  csrw mepc, s10
  li t1, 0x1800
  csrs mstatus, t1
  mret

  .align 2
shandler:
  li t0, 0x${MARK_STRAP.toString(16)}
  sd t0, 0(s11)
  csrr t0, scause
  sd t0, 8(s11)
  csrr t1, stval
  sd t1, 16(s11)
  csrr t1, sepc
  sd t1, 24(s11)
  csrr t1, sstatus
  sd t1, 32(s11)
  addi s11, s11, 40
  bltz t0, 1f
  csrr t1, sepc
  addi t1, t1, 4
  csrw sepc, t1
  sret
1:
  csrw sie, zero
  sret

main:`);

  for (let c = 0; c < cases; c++) {
    const lower = rnd() < 0.35 ? pick(['S', 'U'] as const) : null;
    if (lower) {
      emit('  csrw satp, zero');
      emit(`  li t3, ${(1 << 2) | (1 << 8) | (1 << 9)}`);
      emit('  csrc medeleg, t3');
      emit(`  li t3, ${(1 << 22) | (1 << 17) | 0x1800}`);
      emit('  csrc mstatus, t3');
      if (lower === 'S') {
        emit('  li t3, 0x800');
        emit('  csrs mstatus, t3');
      }
      emit('  la t3, shandler');
      emit('  csrw stvec, t3');
      emit(`  la s10, resume${c}`);
      emit(`  la t3, lower${c}`);
      emit('  csrw mepc, t3');
      emit('  mret');
      emit(`lower${c}:`);
    }
    const n = 1 + int(10);
    for (let k = 0; k < n; k++) {
      mark(MARK_OP | BigInt((c << 8) | k));
      const r = rnd();
      if (r < 0.04 && !lower) {
        // interrupt sources outside the CSRs: the CLINT's msip for hart 0, and mtimecmp far in the
        // past (0: MTIP pending at once) or the future (all ones: MTIP clear), so that no pending
        // bit depends on the time. QEMU takes an interrupt a device raises at the end of the
        // translation block, not after the store, so MIE is off around the store and the CSR write
        // that restores it (which ends the block in QEMU) is where the interrupt comes
        emit('  csrrci t5, mstatus, 8');
        emit('  andi t5, t5, 8');
        if (rnd() < 0.5) {
          emit(`  li t3, 0x2000000`);
          emit(`  li t4, ${int(2)}`);
          emit('  sw t4, 0(t3)');
        } else {
          emit(`  li t3, 0x2004000`);
          emit(`  li t4, ${rnd() < 0.5 ? 0 : -1}`);
          emit('  sd t4, 0(t3)');
        }
        emit('  csrs mstatus, t5');
        continue;
      }
      if (r < 0.1) {
        // special instructions
        const ins =
          lower === 'U'
            ? pick(['ecall', 'ebreak', 'wfi', 'sret', 'mret', 'sfence.vma'])
            : lower === 'S'
              ? pick(['ebreak', 'mret', 'sfence.vma'])
              : pick(['ecall', 'ebreak']);
        // an ecall from S/U ends the lower part early: keep the case's shape by using it only in M
        if (ins !== 'ecall' || !lower) emit(`  ${ins}`);
        continue;
      }
      const illegal = r < 0.16;
      const spec: CsrSpec | null = illegal ? null : pick(CSRS);
      const num = spec ? spec.num : pick(ILLEGAL_CSRS);
      const op = pick(['w', 's', 'c'] as const);
      const imm = !spec?.noImm && rnd() < 0.3;
      const rd = rnd() < 0.25 ? 'zero' : pick(regs);
      let src: string;
      if (imm) {
        let v = rnd() < 0.2 ? 0n : BigInt(int(32));
        if (spec?.fix) v = spec.fix(v, op);
        src = v.toString();
      } else if (!(spec?.fix && op === 'w') && rnd() < 0.15) {
        src = 'zero';
      } else {
        let v = value();
        if (spec?.fix) v = spec.fix(v, op);
        src = pick(regs);
        emit(`  li ${src}, 0x${v.toString(16)}`);
      }
      const writes = op === 'w' || (src !== 'zero' && src !== '0');
      if (lower && spec?.noLowerWrite && writes) continue;
      emit(`  csrr${op}${imm ? 'i' : ''} ${rd}, 0x${num.toString(16)}, ${src}`);
      if (rd !== 'zero') log(rd);
      if (!lower && spec) {
        emit(`  csrr t4, 0x${num.toString(16)}`);
        log('t4');
      }
      if (num === 0x305 && writes) {
        emit('  la t3, mhandler');
        emit('  csrw mtvec, t3');
      }
      if (num === 0x105 && writes) {
        emit('  la t3, shandler');
        emit('  csrw stvec, t3');
      }
    }
    if (lower) {
      emit('  ecall');
      emit(`resume${c}:`);
    }
    mark(MARK_DUMP | BigInt(c));
    for (const num of DUMP) {
      emit(`  csrr t4, 0x${num.toString(16)}`);
      log('t4');
    }
    for (const r of regs) log(r);
  }

  emit(printLogSource(LOG_BASE));
  return { source: out.join('\n'), cases };
}

/**
 * Assembly that prints the 8-byte words from `logBase` up to s11 on the UART (ns16550 at
 * 0x10000000), one 16-digit hex number a line, then `END`, and powers off through sifive_test.
 */
export function printLogSource(logBase: number): string {
  return `  li s0, 0x${logBase.toString(16)}
  li s1, 0x10000000
1:
  bgeu s0, s11, 5f
  ld s2, 0(s0)
  addi s0, s0, 8
  li s3, 60
2:
  srl t0, s2, s3
  andi t0, t0, 15
  addi t0, t0, 48
  li t1, 58
  blt t0, t1, 3f
  addi t0, t0, 39
3:
  lbu t1, 5(s1)
  andi t1, t1, 0x20
  beqz t1, 3b
  sb t0, 0(s1)
  addi s3, s3, -4
  bgez s3, 2b
4:
  lbu t1, 5(s1)
  andi t1, t1, 0x20
  beqz t1, 4b
  li t0, 10
  sb t0, 0(s1)
  j 1b
5:
  la s0, endmsg
6:
  lbu t1, 5(s1)
  andi t1, t1, 0x20
  beqz t1, 6b
  lbu t0, 0(s0)
  beqz t0, 7f
  sb t0, 0(s1)
  addi s0, s0, 1
  j 6b
7:
  li t0, 0x100000
  li t1, 0x5555
  sw t1, 0(t0)
8: j 8b
endmsg: .asciz "END\\n"
`;
}
