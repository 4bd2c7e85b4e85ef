/**
 * Runs a bare-metal program (linked at 0x80000000) on `qemu-system-riscv64 -M virt -bios none` and
 * on memtree's virt machine, for the differential tests: each prints its log on the UART.
 */

import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { bootRiscvVirt } from '../../boot.js';
import { buildRiscvVirt } from '../../virt.js';
import { asmSkip } from './asm.js';

const QEMU = 'qemu-system-riscv64';

/** The `skip` option of a differential suite: why it cannot run, or false (under CI, an error). */
export function qemuSkip(): string | false {
  const asm = asmSkip();
  if (asm) return asm;
  if (spawnSync(QEMU, ['--version'], { stdio: 'ignore' }).status === 0) return false;
  const why = `${QEMU} is not on PATH (Debian package qemu-system-misc)`;
  if (process.env.CI) throw new Error(`${why}; CI must run the RISC-V differential test`);
  return why;
}

/** What `bin` prints on QEMU 7.2 with `-cpu cpu`. */
export function runQemu(bin: Uint8Array, cpu: string): string {
  const dir = mkdtempSync(join(tmpdir(), 'memtree-rvdiff-'));
  try {
    writeFileSync(join(dir, 'p.bin'), bin);
    const r = spawnSync(
      QEMU,
      ['-M', 'virt', '-cpu', cpu, '-bios', 'none', '-kernel', join(dir, 'p.bin')].concat([
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

/** What `bin` prints on memtree's virt machine. */
export function runMemtree(bin: Uint8Array): string {
  let out = '';
  const m = buildRiscvVirt({ uartSink: (b) => (out += String.fromCharCode(b)) });
  bootRiscvVirt(m, { bios: null, kernel: bin, rngSeed: new Uint8Array(32) });
  m.run(200_000_000);
  return out;
}

/** The first lines (at most 8) where two logs differ, as readable text; empty when equal. */
export function logDiffs(qemu: string, memtree: string): string[] {
  const ql = qemu.split('\n');
  const ml = memtree.split('\n');
  const diffs: string[] = [];
  for (let i = 0; i < Math.max(ql.length, ml.length) && diffs.length < 8; i++) {
    if (ql[i] !== ml[i]) diffs.push(`line ${i}: qemu ${ql[i]} memtree ${ml[i]}`);
  }
  return diffs;
}
