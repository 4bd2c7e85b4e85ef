/**
 * Differential test of the hart's CSRs, traps, interrupt choice and PMP checks against QEMU 7.2: generated
 * programs (fixed seeds, see test-support/csr-fuzz.ts) run on `qemu-system-riscv64 -M virt -bios
 * none` and on memtree's virt machine; the logs they print must be equal line for line.
 */

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { bootRiscvVirt } from '../boot.js';
import { buildRiscvVirt } from '../virt.js';
import { asmSkip, assemble } from './test-support/asm.js';
import { generateCsrProgram } from './test-support/csr-fuzz.js';

const QEMU = 'qemu-system-riscv64';

function qemuSkip(): string | false {
  const asm = asmSkip();
  if (asm) return asm;
  if (spawnSync(QEMU, ['--version'], { stdio: 'ignore' }).status === 0) return false;
  const why = `${QEMU} is not on PATH (Debian package qemu-system-misc)`;
  if (process.env.CI) throw new Error(`${why}; CI must run the RISC-V differential test`);
  return why;
}

/**
 * H, Sstc and the debug triggers off: memtree's hart has none of them (with debug on, QEMU 7.2
 * even aborts on some tdata writes).
 */
const CPU = 'rv64,h=false,sstc=false,debug=false';

function runQemu(bin: Uint8Array): string {
  const dir = mkdtempSync(join(tmpdir(), 'memtree-csrdiff-'));
  try {
    writeFileSync(join(dir, 'p.bin'), bin);
    const r = spawnSync(
      QEMU,
      ['-M', 'virt', '-cpu', CPU, '-bios', 'none', '-kernel', join(dir, 'p.bin')].concat([
        '-display',
        'none',
        '-serial',
        'stdio',
        '-monitor',
        'none',
      ]),
      { timeout: 30_000, maxBuffer: 1 << 26 },
    );
    return r.stdout.toString('latin1');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

function runMemtree(bin: Uint8Array): string {
  let out = '';
  const m = buildRiscvVirt({ uartSink: (b) => (out += String.fromCharCode(b)) });
  bootRiscvVirt(m, { bios: null, kernel: bin, rngSeed: new Uint8Array(32) });
  m.run(200_000_000);
  return out;
}

describe('CSR differential test against QEMU 7.2', { skip: qemuSkip() }, () => {
  for (const seed of [1, 2, 3, 4, 5, 6]) {
    it(`seed ${seed}: 150 cases of CSR ops, mode changes, traps, interrupts and PMP-checked accesses print the same log`, () => {
      const bin = assemble(generateCsrProgram(seed, 150).source);
      const q = runQemu(bin);
      assert.match(q, /END\n$/, 'QEMU ran the program to its end');
      const m = runMemtree(bin).split('\n');
      const ql = q.split('\n');
      const diffs: string[] = [];
      for (let i = 0; i < Math.max(ql.length, m.length) && diffs.length < 8; i++) {
        if (ql[i] !== m[i]) diffs.push(`line ${i}: qemu ${ql[i]} memtree ${m[i]}`);
      }
      assert.deepEqual(diffs, [], `seed ${seed}: the logs differ (regenerate the program to read them)`);
    });
  }
});
