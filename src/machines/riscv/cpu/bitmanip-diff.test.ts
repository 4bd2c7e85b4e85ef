/**
 * Differential test of Zba, Zbb, Zbc, Zbs (and what is illegal around them) against QEMU 7.2:
 * generated programs (fixed seeds, see test-support/bitmanip-fuzz.ts) run on `qemu-system-riscv64
 * -M virt -bios none` with QEMU's default extensions and on memtree's virt machine; the logs of
 * results and traps must be equal line for line.
 */

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { assemble } from './test-support/asm.js';
import { generateBitmanipProgram } from './test-support/bitmanip-fuzz.js';
import { logDiffs, qemuSkip, runMemtree, runQemu } from './test-support/qemu-diff.js';

/** QEMU 7.2's default rv64 hart (Zba, Zbb, Zbc, Zbs, Zihintpause on), without H and the debug triggers. */
const CPU = 'rv64,h=false,debug=false';

describe('bit-manipulation differential test against QEMU 7.2', { skip: qemuSkip() }, () => {
  for (const seed of [1, 2, 3, 4]) {
    it(`seed ${seed}: 600 Zb*, neighbouring and random integer encodings print the same log`, () => {
      const bin = assemble(generateBitmanipProgram(seed, 600).source);
      const q = runQemu(bin, CPU);
      assert.match(q, /END\n$/, 'QEMU ran the program to its end');
      const diffs = logDiffs(q, runMemtree(bin));
      assert.deepEqual(diffs, [], `seed ${seed}: the logs differ (regenerate the program to read them)`);
    });
  }
});
