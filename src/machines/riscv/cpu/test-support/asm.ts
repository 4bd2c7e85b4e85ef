/**
 * Assembles RISC-V test programs with Debian's cross binutils at test time. Without them the tests
 * are skipped with a message, except under CI, where that is a failure.
 */

import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const AS = 'riscv64-linux-gnu-as';
const LD = 'riscv64-linux-gnu-ld';
const OBJCOPY = 'riscv64-linux-gnu-objcopy';

/** Why the toolchain is unusable, or null when it works. */
export function toolchainMissing(): string | null {
  for (const t of [AS, LD, OBJCOPY]) {
    if (spawnSync(t, ['--version']).status !== 0)
      return `${t} is not installed (Debian: binutils-riscv64-linux-gnu)`;
  }
  return null;
}

/** The `skip` option for a test suite needing the toolchain (and an error under CI without it). */
export function asmSkip(): string | false {
  const why = toolchainMissing();
  if (why && process.env.CI) throw new Error(`${why}; CI must run the RISC-V hart tests`);
  return why ?? false;
}

/** Assembles `source` (GNU as syntax) for rv64gc, linked at `base`; returns the flat image. */
export function assemble(source: string, base = 0x80000000): Uint8Array {
  const dir = mkdtempSync(join(tmpdir(), 'memtree-rv-'));
  try {
    writeFileSync(join(dir, 't.S'), `.option norvc\n${source}\n`);
    execFileSync(AS, ['-march=rv64gc', '-mabi=lp64d', '-o', join(dir, 't.o'), join(dir, 't.S')], {
      stdio: 'pipe',
    });
    execFileSync(
      LD,
      [
        '-Ttext',
        `0x${base.toString(16)}`,
        '-e',
        `0x${base.toString(16)}`,
        '-o',
        join(dir, 't.elf'),
        join(dir, 't.o'),
      ],
      {
        stdio: 'pipe',
      },
    );
    execFileSync(OBJCOPY, ['-O', 'binary', join(dir, 't.elf'), join(dir, 't.bin')], { stdio: 'pipe' });
    return new Uint8Array(readFileSync(join(dir, 't.bin')));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
