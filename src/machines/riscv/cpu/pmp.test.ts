/**
 * PMP enforcement against hand-reasoned expectations from QEMU 7.2's target/riscv/pmp.c
 * (pmp_hart_has_privs, pmp_update_rule_addr, the lock rules of pmpcfg_csr_write and
 * pmpaddr_csr_write, pmp_is_range_in_tlb) and cpu_helper.c (riscv_cpu_tlb_fill: access faults of
 * the access's kind with the virtual address in mtval; get_physical_address: PTE reads checked as
 * S-mode loads).
 *
 * Every program starts with the prelude's catch-all entry 15 (all memory RWX for S and U). The
 * M-mode handler logs (mcause, mtval) pairs at LOG and skips the faulting instruction; after an
 * instruction access fault it resumes at ra (the faults come from `jalr ra`); an ecall from S or U
 * continues in M-mode at the address in s7.
 */

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { asmSkip, assemble } from './test-support/asm.js';
import { miniMachine, RAM_BASE } from './test-support/mini-machine.js';
import { PRELUDE, runAsm } from './test-support/run-asm.js';

const skip = asmSkip();

/** A data area of four pages, far from the code. */
const BUF = 0x80100000;
const LOG = 0x80200000;
/** `ret` (jalr x0, 0(ra)). */
const RET = 0x00008067;

const handler = `
      .align 2
mtrap:
      csrr t3, mcause
      addi t4, t3, -9
      beqz t4, 1f
      addi t4, t3, -8
      beqz t4, 1f
      sd t3, 0(s1)
      csrr t4, mtval
      sd t4, 8(s1)
      addi s1, s1, 16
      addi t4, t3, -1
      beqz t4, 2f
      csrr t4, mepc
      addi t4, t4, 4
      csrw mepc, t4
      mret
2:    csrw mepc, ra
      mret
1:    jr s7
`;

/** Program start: norvc (so mepc + 4 skips one instruction), handler, log pointer, s2 = BUF. */
const start = `
      .option norvc
      la t0, mtrap
      csrw mtvec, t0
      li s1, ${LOG}
      li s2, ${BUF}
`;

/** mret into S-mode at `label`; an ecall there continues in M-mode at `back`. */
const toS = (label: string, back: string) => `
      li t0, 0x1800
      csrc mstatus, t0
      li t0, 0x800
      csrs mstatus, t0
      la t0, ${label}
      csrw mepc, t0
      la s7, ${back}
      mret
`;

function run(body: string) {
  const m = runAsm(start + body + handler, 200000);
  const log: bigint[] = [];
  const end = Number(m.hart.getReg(9)); // s1
  for (let a = LOG; a < end; a += 8) log.push(m.bus.ldqLe(a));
  return { m, log, x: (i: number) => m.hart.getReg(i) };
}

const napot = (base: number, size: number) => (base >>> 2) | (size / 8 - 1);

describe('PMP address matching and S-mode faults', { skip }, () => {
  it('matches NA4, NAPOT and TOR entries in order, with the cause of the access and its address in mtval', () => {
    // entry 0: NA4 over BUF+0x10, R; entry 1: NAPOT over BUF+0x100..0x1ff, no permission;
    // entry 2: OFF, its address the start of entry 3; entry 3: TOR BUF+0x1000..0x1fff, X only
    const cfg = 0x11 | (0x18 << 8) | (0x0c << 24);
    const { log, x, m } = run(`
      li t0, ${(BUF + 0x10) >>> 2}
      csrw pmpaddr0, t0
      li t0, ${napot(BUF + 0x100, 0x100)}
      csrw pmpaddr1, t0
      li t0, ${(BUF + 0x1000) >>> 2}
      csrw pmpaddr2, t0
      li t0, ${(BUF + 0x2000) >>> 2}
      csrw pmpaddr3, t0
      li t0, ${cfg}
      csrw pmpcfg0, t0
      li t0, 0x11223344
      sw t0, 0x10(s2)
      li t0, 0x55667788
      sw t0, 0x14(s2)
      li t0, ${BUF + 0x1000}
      li t1, ${RET}
      sw t1, 0(t0)                 # M-mode: no entry is locked, so all of this is allowed
      ${toS('smode', 'mback')}
smode:
      lw a0, 0x10(s2)              # NA4, R: allowed
      sw a0, 0x10(s2)              # NA4 without W: store access fault
      ld a1, 0x10(s2)              # 8 bytes, only 4 inside the NA4 entry: load access fault
      lw a2, 0x14(s2)              # past the NA4 entry: the catch-all allows it
      addi t0, s2, 0x1ff
      lb a3, 0(t0)                 # last byte of the NAPOT entry: load access fault
      sb a0, 0x200(s2)             # first byte after it: allowed
      li t0, ${BUF + 0x1800}
      lw a4, 0(t0)                 # TOR, X only: load access fault
      addi t0, s2, 0x100
      jalr ra, 0(t0)               # fetch from the NAPOT entry: instruction access fault
      li t0, ${BUF + 0x1000}
      jalr ra, 0(t0)               # fetch from the TOR entry: allowed, runs the ret there
      li a5, 1
      ecall
mback:
      ld a6, 0x10(s2)              # M-mode too: an access partly inside an entry fails
      EXIT
    `);
    assert.deepEqual(log, [
      7n,
      BigInt(BUF + 0x10),
      5n,
      BigInt(BUF + 0x10),
      5n,
      BigInt(BUF + 0x1ff),
      5n,
      BigInt(BUF + 0x1800),
      1n,
      BigInt(BUF + 0x100),
      5n,
      BigInt(BUF + 0x10),
    ]);
    assert.equal(x(10), 0x11223344n);
    assert.equal(x(12), 0x55667788n);
    assert.equal(x(15), 1n);
    assert.equal(m.bus.ldub(BUF + 0x200), 0x44);
  });

  it('refuses S-mode what no entry matches, with and without active entries, and lets M-mode through', () => {
    // pmp_hart_has_privs_default: with no active entry, or none matching, M-mode is allowed and
    // S/U are not. First no active entry (the catch-all switched off), then one NA4 entry elsewhere.
    const m = runAsm(`
      .option norvc
      la t0, h
      csrw mtvec, t0
      li s2, ${BUF}
      li t0, 0x99
      sw t0, 0(s2)
      csrw pmpcfg2, zero
      lw a0, 0(s2)                 # M-mode, no active entry: allowed
      li t0, 0x1800
      csrc mstatus, t0
      li t0, 0x800
      csrs mstatus, t0
      la t0, slabel
      csrw mepc, t0
      mret
slabel:
      li a1, 1                     # never runs: fetching it faults
h:
      csrr a2, mcause
      csrr a3, mtval
      bnez s3, done
      li s3, 1
      mv s4, a2
      mv s5, a3
      li t0, ${(BUF + 0x800) >>> 2}
      csrw pmpaddr0, t0
      li t0, 0x17                  # NA4 RWX, away from the code
      csrw pmpcfg0, t0
      lw a5, 0(s2)                 # M-mode, no entry matching: allowed
      mret                         # back to S at slabel (MPP = S, mepc unchanged)
done:
      la a4, slabel
      EXIT
    `);
    const x = (i: number) => m.hart.getReg(i);
    assert.equal(x(10), 0x99n);
    assert.equal(x(15), 0x99n);
    assert.equal(x(11), 0n);
    assert.equal(x(20), 1n); // s4: instruction access fault
    assert.equal(x(21), x(14)); // s5: at slabel
    assert.equal(x(12), 1n);
    assert.equal(x(13), x(14));
  });
});

describe('PMP and fetches', { skip }, () => {
  it('checks a jump target on a page a range splits, not the page remembered from the jump', () => {
    // entry 0: NAPOT Q+0x100..0x1ff, X only; entry 1: NAPOT Q+0x200..0x2ff, no permission. The
    // jump at Q+0x100 runs; its target Q+0x200, on the same page, is an instruction access fault
    // (QEMU starts a translation block there and checks it).
    const q = BUF + 0x3000;
    const { log, x } = run(`
      li t0, ${napot(q + 0x100, 0x100)}
      csrw pmpaddr0, t0
      li t0, ${napot(q + 0x200, 0x100)}
      csrw pmpaddr1, t0
      li t0, 0x181c
      csrw pmpcfg0, t0
      li t0, ${q}
      li t1, 0x1000006f            # j .+0x100
      sw t1, 0x100(t0)
      li t1, ${RET}
      sw t1, 0x200(t0)
      li t1, 0x0000006f            # j . (never reached: S cannot fetch here)
      sw t1, 0x204(t0)
      ${toS('smode', 'mback')}
smode:
      li t0, ${q + 0x100}
      jalr ra, 0(t0)
      li a0, 1
      ecall
mback:
      EXIT
    `);
    assert.deepEqual(log, [1n, BigInt(q + 0x200)]);
    assert.equal(x(10), 1n);
  });
});

describe('PMP lock', { skip }, () => {
  it('binds M-mode to a locked entry, ignores writes to it, and to pmpaddr below a locked TOR', () => {
    // entry 0: L NAPOT over BUF's first page, R; entry 1: L TOR from pmpaddr0 << 2 to BUF+0x2000, RW
    const a0 = napot(BUF, 0x1000);
    const a1 = (BUF + 0x2000) >>> 2;
    const { log, x } = run(`
      li t0, ${a0}
      csrw pmpaddr0, t0
      li t0, ${a1}
      csrw pmpaddr1, t0
      li t0, 0x8b99
      csrw pmpcfg0, t0
      lw a0, 0(s2)                 # R: allowed
      sw a0, 0(s2)                 # locked, no W: store access fault in M-mode
      li t0, ${BUF + 0x1000}
      sw a0, 0(t0)                 # entry 1 allows it
      jalr ra, 0(t0)               # entry 1 has no X: instruction access fault
      csrw pmpcfg0, zero           # both locked: ignored
      csrr a1, pmpcfg0
      li t0, ${BUF >>> 2}
      csrw pmpaddr0, t0            # locked, and below a locked TOR: ignored
      csrr a2, pmpaddr0
      csrw pmpaddr1, t0            # locked: ignored
      csrr a3, pmpaddr1
      csrw pmpaddr2, t0            # entry 2 is not locked
      csrr a4, pmpaddr2
      sw a0, 0(s2)                 # still a store access fault
      EXIT
    `);
    assert.deepEqual(log, [7n, BigInt(BUF), 1n, BigInt(BUF + 0x1000), 7n, BigInt(BUF)]);
    assert.equal(x(11), 0x8b99n);
    assert.equal(x(12), BigInt(a0));
    assert.equal(x(13), BigInt(a1));
    assert.equal(x(14), BigInt(BUF >>> 2));
  });
});

describe('PMP and MPRV', { skip }, () => {
  it('checks M-mode loads and stores with MPRV as MPP, and not its fetches', () => {
    // entry 0: NAPOT over BUF's first page, R, unlocked: binds S and U, not M
    const { log, x } = run(`
      li t0, ${napot(BUF, 0x1000)}
      csrw pmpaddr0, t0
      li t0, 0x19
      csrw pmpcfg0, t0
      li t0, ${RET}
      sw t0, 0x400(s2)             # M without MPRV: allowed
      li a0, 0x77
      li t0, 0x1800
      csrc mstatus, t0
      li t0, 0x20800               # MPRV, MPP = S
      csrs mstatus, t0
      sw a0, 0(s2)                 # checked as S: store access fault
      li t0, 0x20800
      csrs mstatus, t0             # the trap set MPP = M, its mret U: S again
      lw a1, 0x400(s2)             # S may read
      addi t0, s2, 0x400
      jalr ra, 0(t0)               # fetches stay M: runs the ret
      li a2, 1
      li t0, 0x1800
      csrs mstatus, t0             # MPP = M
      sw a0, 4(s2)                 # checked as M: allowed
      li t0, 0x20000
      csrc mstatus, t0
      lw a3, 4(s2)
      EXIT
    `);
    assert.deepEqual(log, [7n, BigInt(BUF)]);
    assert.equal(x(11), BigInt(RET));
    assert.equal(x(12), 1n);
    assert.equal(x(13), 0x77n);
  });
});

/**
 * Sv39: root table PT, level 1 PT+0x1000, level 0 PT+0x2000. VA 0x80000000 is a gigapage
 * mapping the code (and everything else) to itself; VA 0x40000000 and 0x40001000 map the data
 * pages DATA and DATA+0x1000 (RWX, A and D set).
 */
const PT = 0x80180000;
const DATA = 0x80190000;
const paging = `
      li t0, ${PT}
      li t1, (0x80000 << 10) | 0xcf
      sd t1, 16(t0)
      li t1, (${(PT + 0x1000) / 4096} << 10) | 1
      sd t1, 8(t0)
      li t0, ${PT + 0x1000}
      li t1, (${(PT + 0x2000) / 4096} << 10) | 1
      sd t1, 0(t0)
      li t0, ${PT + 0x2000}
      li t1, (${DATA / 4096} << 10) | 0xcf
      sd t1, 0(t0)
      li t1, (${DATA / 4096 + 1} << 10) | 0xcf
      sd t1, 8(t0)
      li t0, ${DATA + 0x1000}
      li t1, ${RET}
      sw t1, 0(t0)
      li t0, (8 << 60) | ${PT / 4096}
      csrw satp, t0
      li s3, 0x40000000
      li s4, 0x40001000
`;

describe('PMP with paging', { skip }, () => {
  it('checks page-table reads as S-mode loads and reports an access fault of the access', () => {
    // entry 0: NAPOT over the level-0 table, no permission
    const { log, x } = run(`
      ${paging}
      li t0, ${napot(PT + 0x2000, 0x1000)}
      csrw pmpaddr0, t0
      li t0, 0x18
      csrw pmpcfg0, t0
      ${toS('smode', 'mback')}
smode:
      ld a0, 0(s3)                 # walk reads the level-0 PTE: load access fault
      sd a0, 0(s3)                 # store access fault
      jalr ra, 0(s4)               # instruction access fault
      ecall
mback:
      csrw pmpcfg0, zero
      ${toS('smode2', 'mback2')}
smode2:
      jalr ra, 0(s4)               # the table is open again: runs the ret
      li a1, 1
      ecall
mback2:
      EXIT
    `);
    assert.deepEqual(log, [5n, 0x40000000n, 7n, 0x40000000n, 1n, 0x40001000n]);
    assert.equal(x(11), 1n);
  });

  it('drops cached translations on pmpcfg and pmpaddr writes', () => {
    // S stores to both data pages (filling the write TLB), then M makes DATA read-only through
    // entry 1 (a pmpcfg write), then moves entry 1 to DATA+0x1000 with a pmpaddr write only
    const { log } = run(`
      ${paging}
      li t0, ${napot(DATA, 0x1000)}
      csrw pmpaddr1, t0
      ${toS('s1', 'm1')}
s1:
      sd s3, 0(s3)
      sd s3, 0(s4)
      ecall
m1:
      li t0, 0x1900
      csrw pmpcfg0, t0
      ${toS('s2', 'm2')}
s2:
      sd s3, 0(s3)                 # store access fault
      sd s3, 0(s4)                 # allowed
      ld a0, 0(s3)                 # allowed
      ecall
m2:
      li t0, ${napot(DATA + 0x1000, 0x1000)}
      csrw pmpaddr1, t0
      ${toS('s3l', 'm3')}
s3l:
      sd s3, 0(s4)                 # store access fault
      sd s3, 8(s3)                 # allowed
      ecall
m3:
      EXIT
    `);
    assert.deepEqual(log, [7n, 0x40000000n, 7n, 0x40001000n]);
  });

  it('does not cache a page that a PMP range covers in part (pmp_get_tlb_size)', () => {
    // entry 0: NA4 over DATA+0x10, R. A store to DATA+0x18 fills nothing, so the store to
    // DATA+0x10 is checked on its own
    const { log, m } = run(`
      ${paging}
      li t0, ${(DATA + 0x10) >>> 2}
      csrw pmpaddr0, t0
      li t0, 0x11
      csrw pmpcfg0, t0
      ${toS('smode', 'mback')}
smode:
      li t0, 0x5a
      sd t0, 0x18(s3)              # allowed
      sw t0, 0x10(s3)              # store access fault
      sw t0, 0x14(s3)              # allowed
      lw a0, 0x10(s3)              # allowed
      csrw satp, zero
      sfence.vma
      li s3, ${DATA}
      sd t0, 0x20(s3)              # bare S-mode: allowed
      sw t0, 0x10(s3)              # store access fault
      ecall
mback:
      EXIT
    `);
    assert.deepEqual(log, [7n, 0x40000010n, 7n, BigInt(DATA + 0x10)]);
    assert.equal(m.bus.ldqLe(DATA + 0x18), 0x5an);
    assert.equal(m.bus.ldlLe(DATA + 0x14), 0x5a);
  });
});

describe('PMP state', { skip }, () => {
  it('survives saveState/loadState: the restored hart keeps the protection', () => {
    // M sets entry 0 (NAPOT over BUF's page, R) and enters S, which spins; the state is moved to a
    // fresh machine, where S's store faults (QEMU migrates the registers, pmp_post_load the ranges)
    const image = assemble(`${PRELUDE}
      .option norvc
      la t0, h
      csrw mtvec, t0
      li t0, ${napot(BUF, 0x1000)}
      csrw pmpaddr0, t0
      li t0, 0x19
      csrw pmpcfg0, t0
      li t0, 0x1800
      csrc mstatus, t0
      li t0, 0x800
      csrs mstatus, t0
      la t0, smode
      csrw mepc, t0
      li s2, ${BUF}
      mret
smode:
      bnez s5, 1f
      j smode
1:    sd s5, 0(s2)                 # store access fault
      li a1, 1
      j 1b
h:
      csrr a0, mcause
      csrr a2, mtval
      EXIT
    `);
    const src = miniMachine(16 * 2 ** 20);
    src.load(RAM_BASE, image);
    src.hart.setPc(BigInt(RAM_BASE));
    src.run(2000);
    assert.equal(src.hart.privilege, 1);
    const dst = miniMachine(16 * 2 ** 20);
    dst.load(RAM_BASE, image);
    dst.hart.loadState(JSON.parse(JSON.stringify(src.hart.saveState())));
    dst.hart.setReg(21, 1n); // s5: leave the spin
    dst.run(1000);
    assert.equal(dst.exitCode(), 0);
    assert.equal(dst.hart.getReg(10), 7n);
    assert.equal(dst.hart.getReg(12), BigInt(BUF));
    assert.equal(dst.hart.getReg(11), 0n);
  });
});
