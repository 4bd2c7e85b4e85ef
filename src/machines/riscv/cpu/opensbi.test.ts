/**
 * Real firmware on the hart: Debian's OpenSBI (fw_dynamic, from QEMU's package) boots on the
 * stand-in board to the end of its banner, and every banner line, those that describe the ISA
 * and the delegation it allows included, equals what QEMU 7.2 prints for `-M virt -cpu rv64,h=false
 * -m 128M -bios default`: QEMU's default hart without H, the one extension this hart lacks.
 */

import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { resetVector } from '../boot.js';
import { miniMachine, RAM_BASE } from './test-support/mini-machine.js';

const QEMU = 'qemu-system-riscv64';
const FW = '/usr/share/qemu/opensbi-riscv64-generic-fw_dynamic.bin';
const haveQemu = spawnSync(QEMU, ['--version']).status === 0 && existsSync(FW);
if (!haveQemu && process.env.CI)
  throw new Error(`${QEMU} or ${FW} is missing on CI (Debian: qemu-system-misc)`);
const skip = haveQemu ? false : `${QEMU} or ${FW} is not installed`;

/** QEMU's default rv64 hart without H. */
const CPU = 'rv64,h=false';
const END = /Boot HART MEDELEG[^\n]*\n/;

function banner(text: string): string[] {
  return text
    .split('\n')
    .map((l) => l.trimEnd())
    .filter((l) => /^(Platform|Firmware|Runtime|Domain0|Boot HART)/.test(l));
}

/** QEMU's own banner for the same firmware, read until its last line. */
function qemuBanner(): Promise<string> {
  return new Promise((resolve, reject) => {
    const p = spawn(QEMU, [
      '-M',
      'virt',
      '-cpu',
      CPU,
      '-m',
      '128M',
      '-smp',
      '1',
      '-display',
      'none',
      '-serial',
      'stdio',
      '-monitor',
      'none',
      '-bios',
      'default',
    ]);
    let out = '';
    const timer = setTimeout(() => {
      p.kill('SIGKILL');
      reject(new Error(`QEMU did not print the OpenSBI banner in 60 s:\n${out}`));
    }, 60000);
    p.stdout.on('data', (d: Buffer) => {
      out += d.toString('latin1');
      if (END.test(out)) {
        clearTimeout(timer);
        p.kill('SIGKILL');
        resolve(out);
      }
    });
    p.on('error', reject);
  });
}

describe('OpenSBI on the hart', { skip }, () => {
  it('prints the banner QEMU 7.2 prints, ISA and delegation lines included', async () => {
    // QEMU's device tree for the board (the stand-in has the same devices at the same addresses)
    const dir = mkdtempSync(join(tmpdir(), 'memtree-dtb-'));
    let dtb: Buffer;
    try {
      const r = spawnSync(QEMU, [
        '-M',
        `virt,dumpdtb=${join(dir, 'virt.dtb')}`,
        '-cpu',
        CPU,
        '-m',
        '128M',
        '-smp',
        '1',
        '-display',
        'none',
      ]);
      assert.equal(r.status, 0, r.stderr.toString());
      dtb = readFileSync(join(dir, 'virt.dtb'));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
    const expected = banner(await qemuBanner());
    const m = miniMachine(128 * 2 ** 20);
    // riscv_compute_fdt_addr: the fdt sits 2 MiB below the end of RAM (aligned down to 2 MiB)
    const fdt = RAM_BASE + 128 * 2 ** 20 - 2 * 2 ** 20;
    m.load(RAM_BASE, new Uint8Array(readFileSync(FW)));
    m.load(fdt, new Uint8Array(dtb.subarray(0, dtb.readUInt32BE(4))));
    m.load(0x1000, resetVector(RAM_BASE, fdt, 0));
    m.run(100_000_000, () => END.test(m.uart()));
    assert.match(m.uart(), END, `no complete banner; the UART got:\n${m.uart()}`);
    assert.ok(expected.length > 25, `QEMU's banner is too short:\n${expected.join('\n')}`);
    assert.deepEqual(banner(m.uart()), expected);
  });
});
