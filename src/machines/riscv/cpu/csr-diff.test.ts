/**
 * Differential test of the hart's CSRs, traps, interrupt choice and PMP checks against QEMU 7.2: generated
 * programs (fixed seeds, see test-support/csr-fuzz.ts) run on `qemu-system-riscv64 -M virt -bios
 * none` and on memtree's virt machine; the logs they print must be equal line for line.
 */

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { assemble } from './test-support/asm.js';
import { generateCsrProgram } from './test-support/csr-fuzz.js';
import { logDiffs, qemuSkip, runMemtree, runQemu } from './test-support/qemu-diff.js';

/**
 * H and the debug triggers off: memtree's hart has neither (with debug on, QEMU 7.2 even aborts on
 * some tdata writes). Sstc is on, as in QEMU's default.
 */
const CPU = 'rv64,h=false,debug=false';

describe('CSR differential test against QEMU 7.2', { skip: qemuSkip() }, () => {
  for (const seed of [1, 2, 3, 4, 5, 6]) {
    it(`seed ${seed}: 150 cases of CSR ops, mode changes, traps, interrupts and PMP-checked accesses print the same log`, () => {
      const bin = assemble(generateCsrProgram(seed, 150).source);
      const q = runQemu(bin, CPU);
      assert.match(q, /END\n$/, 'QEMU ran the program to its end');
      const diffs = logDiffs(q, runMemtree(bin));
      assert.deepEqual(diffs, [], `seed ${seed}: the logs differ (regenerate the program to read them)`);
    });
  }
});
