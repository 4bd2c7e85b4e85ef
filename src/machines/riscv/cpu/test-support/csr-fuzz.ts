/**
 * Generates bare-metal M-mode programs (GNU as source, linked at 0x80000000) that run random CSR
 * instructions, in M-mode and after an mret into S or U, and PMP cases (regions programmed over a
 * data area, then loads, stores and fetches there from M, M with MPRV, S or U), and log what they
 * read and every trap (cause, tval, epc, status) to memory. At the end the program prints the log as hex on the UART
 * (ns16550 at 0x10000000) and powers off through sifive_test. The same program runs on QEMU 7.2
 * and on memtree's hart; the two logs must be equal line for line.
 *
 * Invariants the generator keeps so that a program always reaches its end, on both:
 * - PMP entry 15 (NAPOT over everything, RWX; the lowest priority) stays as set up, so that S and
 *   U can fetch the code and store to the log: no write sets a lock bit (a locked entry cannot be
 *   undone: the lock rules are in priv.test.ts and pmp.test.ts) nor changes pmpcfg2's byte 7 or
 *   pmpaddr15. Random CSR writes leave entries 0 to 14 anywhere; they are switched off before an
 *   mret into S or U, except in PMP cases, whose regions lie inside PDATA (a TOR entry never at
 *   index 0 and always with a PDATA address below it), away from the code and the log. M-mode
 *   with no lock is refused only accesses partly inside an entry, which the 8-byte-aligned log
 *   stores never are for the fixed seeds (the test would not reach END).
 * - PDATA is filled with `ret`, and stores there write the same bytes, so that a fetch from
 *   anywhere in it returns; both handlers resume an instruction access fault at ra (the fetches
 *   are `jalr ra`).
 * - A PMP case writes its pmpaddr registers, then pmpcfg0 and pmpcfg2 last: QEMU 7.2 flushes its
 *   TLB on a pmpcfg write but not on a pmpaddr write (pmpaddr_csr_write), where memtree's hart
 *   flushes on both; a TLB entry QEMU kept from before would be a difference in caching, not in
 *   the rules. A pmpaddr write between the two pmpcfg writes checks that a TOR entry keeps the
 *   start computed at its last update (pmp_update_rule_addr runs for the written entry only).
 * - mtvec and stvec are put back after every write to them (the written value is logged first).
 * - mstatus.MPRV is set only around one access of a PMP case, with satp = 0 (with MPP = S/U and a
 *   paged satp it would translate the log stores).
 * - Before an mret to S/U: satp = 0, medeleg does not delegate illegal instructions or ecalls (the
 *   handlers themselves use sret/ecall) and TSR is clear; lower modes never write satp.
 * - WFI only runs in U-mode (always illegal there): elsewhere it may stop QEMU's hart for good.
 *
 * Without any matching entry S and U cannot fetch (pmp_hart_has_privs_default) and the program
 * would loop on access faults; hence no CSR with a value rule is written from x0 by csrrw. AMOs, LR
 * and SC are not used on PMP regions: with one vCPU QEMU runs them as a load then a store (no
 * CF_PARALLEL), so a refused AMO is a load access fault there, where the hart checks an AMO as a
 * store, as QEMU's atomic path with several vCPUs does.
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
/** pmpcfg2's byte 7: entry 15, NAPOT RWX (with pmpaddr15 all ones: everything). */
const TOP = 0xffn << 56n;
const CATCH_ALL = 0x1fn << 56n;
/** The data area of the PMP cases: two pages above the code and the log, filled with `ret`. */
const PDATA = 0x81800000;
const PDATA_SIZE = 0x2000;
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
  { name: 'pmpcfg0', num: 0x3a0, fix: (v, op) => (op === 'c' ? v : v & ~LOCKS) },
  {
    name: 'pmpcfg2',
    num: 0x3a2,
    fix: (v, op) => (op === 'w' ? (v & ~LOCKS & ~TOP) | CATCH_ALL : op === 's' ? v & ~LOCKS : v & ~TOP),
  },
  ...Array.from({ length: 15 }, (_, i) => ({ name: `pmpaddr${i}`, num: 0x3b0 + i })),
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

/** Every CSR the dump after each case reads, in M-mode (pmpaddr15 included). */
export const DUMP = [...CSRS.map((c) => c.num), 0x3bf].sort((a, b) => a - b);

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

  /**
   * A PMP case: programs 1 to 4 of entries 0..14 over PDATA (NA4, NAPOT, TOR or OFF, random RWX,
   * no lock) and returns where their ranges start and end, the mode its accesses run in and how
   * many there are.
   */
  const pmpCase = () => {
    const entries = new Set<number>();
    const k = 1 + int(4);
    while (entries.size < k) entries.add(int(15));
    const idx = [...entries].sort((a, b) => a - b);
    emit('  csrw satp, zero');
    const addr = new Map<number, number>();
    const cfg = new Array<number>(16).fill(0);
    const bounds: number[] = [];
    const inData = (n: number) => PDATA + n;
    for (const i of idx) {
      const perm = int(8);
      let a = pick(['NA4', 'NAPOT', 'TOR', 'OFF'] as const);
      if (a === 'TOR' && i === 0) a = 'NA4';
      if (a === 'NA4') {
        const base = inData(4 * int(PDATA_SIZE / 4));
        addr.set(i, base / 4);
        bounds.push(base, base + 4);
      } else if (a === 'NAPOT') {
        const size = 2 ** (3 + int(10));
        const base = inData(Math.floor(int(PDATA_SIZE) / size) * size);
        addr.set(i, base / 4 + (size / 8 - 1));
        bounds.push(base, base + size);
      } else if (a === 'TOR') {
        const top = inData(4 * (1 + int(PDATA_SIZE / 4)));
        addr.set(i, top / 4);
        if (!entries.has(i - 1)) {
          const below = inData(4 * int(PDATA_SIZE / 4));
          addr.set(i - 1, below / 4);
          bounds.push(below);
        }
        bounds.push(top);
      } else {
        const at = inData(4 * int(PDATA_SIZE / 4));
        addr.set(i, at / 4);
        bounds.push(at);
      }
      cfg[i] = perm | ({ OFF: 0, TOR: 1, NA4: 2, NAPOT: 3 }[a] << 3);
    }
    for (const [i, v] of [...addr].sort((p, q) => p[0] - q[0])) {
      emit(`  li t3, 0x${v.toString(16)}`);
      emit(`  csrw pmpaddr${i}, t3`);
    }
    const word = (from: number) => {
      let v = 0n;
      for (let b = 7; b >= 0; b--) v = (v << 8n) | BigInt(cfg[from + b]!);
      return v;
    };
    emit(`  li t3, 0x${word(0).toString(16)}`);
    emit('  csrw pmpcfg0, t3');
    // a TOR entry in pmpcfg0 whose lower neighbour's pmpaddr changes now keeps its old start
    const stale = idx.find((i) => i > 0 && i < 8 && cfg[i]! >> 3 === 1);
    if (stale !== undefined && rnd() < 0.5) {
      const below = inData(4 * int(PDATA_SIZE / 4));
      emit(`  li t3, 0x${(below / 4).toString(16)}`);
      emit(`  csrw pmpaddr${stale - 1}, t3`);
      bounds.push(below);
    }
    emit(`  li t3, 0x${(word(8) | CATCH_ALL).toString(16)}`);
    emit('  csrw pmpcfg2, t3');
    const mode = pick(['M', 'MPRV-S', 'MPRV-U', 'S', 'U'] as const);
    return { bounds, mode, accesses: 3 + int(8) };
  };

  /** One load, store or fetch at or near a range's boundary, or anywhere in PDATA. */
  const pmpAccess = (bounds: number[], mode: string) => {
    const kind = pick(['l', 'l', 's', 's', 'x'] as const);
    const size = kind === 'x' ? 4 : pick([1, 2, 4, 8]);
    let a = rnd() < 0.8 ? pick(bounds) + 4 * int(5) - 8 : PDATA + int(PDATA_SIZE);
    a = Math.floor(a / size) * size;
    a = Math.min(Math.max(a, PDATA), PDATA + PDATA_SIZE - size);
    emit(`  li t3, 0x${a.toString(16)}`);
    const mprv = mode.startsWith('MPRV') && kind !== 'x';
    if (mprv) {
      // set before each access: a trap on the way sets MPP to M, and its mret to U
      emit(`  li t4, 0x${((1 << 17) | 0x1800).toString(16)}`);
      emit('  csrc mstatus, t4');
      emit(`  li t4, 0x${((1 << 17) | (mode === 'MPRV-S' ? 0x800 : 0)).toString(16)}`);
      emit('  csrs mstatus, t4');
    }
    const w = { 1: 'b', 2: 'h', 4: 'w', 8: 'd' }[size]!;
    if (kind === 'l') {
      emit(`  l${w} a0, 0(t3)`);
    } else if (kind === 's') {
      // the bytes already there (ret, ret, ...), so that fetches keep finding ret
      const v = 0x0000806700008067n >> BigInt(8 * (a % 8));
      emit(`  li t5, 0x${v.toString(16)}`);
      emit(`  s${w} t5, 0(t3)`);
    } else {
      emit('  li a0, 0');
      emit('  jalr ra, 0(t3)');
      emit('  li a0, 1');
    }
    if (mprv) {
      emit(`  li t4, 0x${(1 << 17).toString(16)}`);
      emit('  csrc mstatus, t4');
    }
    log('a0');
  };

  emit(`.option norvc
.globl _start
_start:
  la t0, mhandler
  csrw mtvec, t0
  li t0, -1
  csrw pmpaddr15, t0
  li t0, 0x${CATCH_ALL.toString(16)}
  csrw pmpcfg2, t0
  li t0, 0x${PDATA.toString(16)}
  li t1, 0x${(PDATA + PDATA_SIZE).toString(16)}
  li t2, 0x0000806700008067
1:
  sd t2, 0(t0)
  addi t0, t0, 8
  bltu t0, t1, 1b
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
  addi t1, t0, -1
  beqz t1, 3f
  csrr t1, mepc
  addi t1, t1, 4
  csrw mepc, t1
  mret
3: # an instruction access fault: the fetch was a jalr ra
  csrw mepc, ra
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
  addi t1, t0, -1
  beqz t1, 2f
  csrr t1, sepc
  addi t1, t1, 4
  csrw sepc, t1
  sret
2:
  csrw sepc, ra
  sret
1:
  csrw sie, zero
  sret

main:`);

  for (let c = 0; c < cases; c++) {
    const pmp = rnd() < 0.3 ? pmpCase() : null;
    const lower = pmp ? pmp.mode : rnd() < 0.35 ? pick(['S', 'U'] as const) : null;
    if (lower === 'S' || lower === 'U') {
      if (!pmp) {
        // entries 0..14 off: what random writes left there must not take the code from S and U
        emit('  csrw pmpcfg0, zero');
        emit(`  li t3, 0x${CATCH_ALL.toString(16)}`);
        emit('  csrw pmpcfg2, t3');
      }
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
    const n = pmp ? 0 : 1 + int(10);
    if (pmp) {
      for (let k = 0; k < pmp.accesses; k++) {
        mark(MARK_OP | BigInt((c << 8) | k));
        pmpAccess(pmp.bounds, pmp.mode);
      }
    }
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
      let immV = rnd() < 0.2 ? 0n : BigInt(int(32));
      if (imm && spec?.fix) immV = spec.fix(immV, op);
      if (imm && immV < 32n) {
        src = immV.toString();
      } else if (imm) {
        // the fixed value does not fit the 5-bit immediate (pmpcfg2 keeps entry 15)
        src = pick(regs);
        emit(`  li ${src}, 0x${immV.toString(16)}`);
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
      emit(`  csrr${op}${imm && /^\d/.test(src) ? 'i' : ''} ${rd}, 0x${num.toString(16)}, ${src}`);
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
    if (lower === 'S' || lower === 'U') {
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
