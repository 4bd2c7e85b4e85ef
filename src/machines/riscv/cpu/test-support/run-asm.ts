/** Runs an assembled test program on the stand-in board, entering it at RAM_BASE in M-mode. */

import { assemble } from './asm.js';
import { type MiniMachine, miniMachine, RAM_BASE } from './mini-machine.js';

/**
 * Assembler macros every program gets: EXIT powers off through sifive_test (code 0). An unexpected
 * trap (before the program installs its own mtvec) powers off with a failure code. The start
 * opens all memory to S and U through PMP entry 15 (NAPOT over everything, RWX), as firmware must:
 * with no PMP entry matching, S and U can access nothing (QEMU's pmp_hart_has_privs_default).
 * Entry 15 has the lowest priority, so tests programming entries 0 to 14 still decide.
 */
export const PRELUDE = `
.macro EXIT
  li t6, 0x100000
  li t5, 0x5555
  sw t5, 0(t6)
99: j 99b
.endm
.globl _start
_start:
  la t6, __unexpected_trap
  csrw mtvec, t6
  li t6, -1
  csrw pmpaddr15, t6
  li t6, 0x1f00000000000000
  csrw pmpcfg2, t6
  j __main
__unexpected_trap:
  li t6, 0x100000
  li t5, 0x13333
  sw t5, 0(t6)
98: j 98b
__main:
`;

/** Assembles and runs `body` (after PRELUDE) until it exits; throws if it does not within `limit`. */
export function runAsm(body: string, limit = 100000, setup?: (m: MiniMachine) => void): MiniMachine {
  const m = miniMachine(16 * 2 ** 20);
  m.load(RAM_BASE, assemble(PRELUDE + body));
  m.hart.setPc(BigInt(RAM_BASE));
  setup?.(m);
  m.run(limit);
  if (m.exitCode() !== 0) {
    throw new Error(
      `program did not exit cleanly (${m.exitCode()}): pc=0x${m.hart.getPc().toString(16)} mcause=0x${m.hart.getCsr(0x342)?.toString(16)} mepc=0x${m.hart.getCsr(0x341)?.toString(16)} mtval=0x${m.hart.getCsr(0x343)?.toString(16)}`,
    );
  }
  return m;
}

/** x`i` as a signed/unsigned-agnostic hex string (64-bit, no prefix padding). */
export const hex = (v: bigint) => `0x${BigInt.asUintN(64, v).toString(16)}`;
