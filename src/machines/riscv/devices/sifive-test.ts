/**
 * @module machines/riscv/devices/sifive-test
 * The SiFive test finisher (hw/misc/sifive_test.c): region `riscv.sifive.test`, 4 KiB, native
 * (little) endian, 2..4-byte accesses. A write at offset 0 of 0x5555 powers off with status 0,
 * 0x3333 with the status in the upper 16 bits, 0x7777 asks for a reset; reads give 0.
 */

import type { MemoryRegion, MemorySystem } from '../../../core/index.js';

const FINISHER_FAIL = 0x3333;
const FINISHER_PASS = 0x5555;
const FINISHER_RESET = 0x7777;

/** What the guest asked for. */
export type FinisherEvent = { kind: 'exit'; code: number } | { kind: 'reset' };

/** The test finisher. */
export class SifiveTest {
  readonly region: MemoryRegion;

  constructor(ms: MemorySystem, onEvent: (e: FinisherEvent) => void) {
    this.region = ms.io(
      'riscv.sifive.test',
      0x1000,
      {
        read: () => 0,
        write: (off, v) => {
          if (off !== 0) return;
          const n = Number(BigInt.asUintN(32, BigInt(v)));
          const status = n & 0xffff;
          if (status === FINISHER_FAIL) onEvent({ kind: 'exit', code: n >>> 16 });
          else if (status === FINISHER_PASS) onEvent({ kind: 'exit', code: 0 });
          else if (status === FINISHER_RESET) onEvent({ kind: 'reset' });
        },
        endianness: 'native',
        valid: { minAccessSize: 2, maxAccessSize: 4 },
      },
      { owner: { name: 'riscv.sifive.test' } },
    );
  }
}
