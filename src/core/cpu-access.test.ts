import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { CpuAccess } from './cpu-access.js';
import { MemorySystem } from './system.js';
import { MEMTX_DECODE_ERROR, MEMTX_OK } from './types.js';

describe('CPU stores versus bus writes (R9.7, R9.27)', () => {
  function pc() {
    const ms = new MemorySystem();
    const sys = ms.container('system', 0x100000);
    const ram = ms.ram('pc.ram', 0x100000);
    const bios = ms.rom('pc.bios', 0x1000);
    bios.ramBlock!.write(0, Uint8Array.of(0xea), 0, 1);
    // PAM-style: the segment at 0xf0000 is RAM seen through a read-only alias.
    const pamRom = ms.alias('pam-rom', ram, 0xf0000, 0x10000);
    pamRom.setReadonly(true);
    const log: string[] = [];
    const dev = ms.io('dev', 0x100, { write: (o, v) => log.push(`${o}=${v}`), endianness: 'little' });
    const devRo = ms.alias('dev-ro', dev, 0, 0x100);
    devRo.setReadonly(true);
    sys.addSubregion(0, ram);
    sys.addSubregionOverlap(0xf0000, pamRom, 1);
    sys.addSubregionOverlap(0xe0000, bios, 1);
    sys.addSubregionOverlap(0xd0000, devRo, 1);
    const as = ms.addressSpace(sys, 'memory');
    return { as, cpu: new CpuAccess(as), ram, log };
  }

  it('discards CPU stores to RAM behind a read-only alias, where a bus write goes through', () => {
    const { as, cpu, ram } = pc();
    cpu.stlLe(0xf0010, 0x11223344);
    assert.equal(cpu.lastResult, MEMTX_OK);
    assert.equal(as.ldlLe(0xf0010), 0);
    as.stlLe(0xf0010, 0x55667788);
    assert.equal(as.lastResult, MEMTX_OK);
    const back = new Uint8Array(4);
    ram.ramBlock!.read(0xf0010, back, 0, 4);
    assert.deepEqual([...back], [0x88, 0x77, 0x66, 0x55]);
  });

  it('discards CPU stores to ROM silently, while the bus reports DECODE_ERROR', () => {
    const { as, cpu } = pc();
    cpu.stb(0xe0000, 0x90);
    assert.equal(cpu.lastResult, MEMTX_OK);
    assert.equal(as.ldub(0xe0000), 0xea);
    as.stb(0xe0000, 0x90);
    assert.equal(as.lastResult, MEMTX_DECODE_ERROR);
    assert.equal(as.ldub(0xe0000), 0xea);
  });

  it('still delivers CPU stores to device registers behind a read-only alias, and to plain RAM', () => {
    const { as, cpu, log } = pc();
    cpu.stlLe(0xd0004, 7);
    assert.deepEqual(log, ['4=7']);
    cpu.stqLe(0x1000, 0x0102030405060708n);
    assert.equal(as.ldqLe(0x1000), 0x0102030405060708n);
    assert.equal(cpu.ldqLe(0x1000), 0x0102030405060708n);
  });

  it('notices a map change after stores to RAM: the range turned read-only discards the next store', () => {
    const { as, cpu, ram } = pc();
    cpu.stb(0x1000, 1);
    cpu.stb(0x1001, 2);
    ram.setReadonly(true);
    cpu.stb(0x1000, 3);
    assert.equal(cpu.lastResult, MEMTX_OK);
    assert.equal(as.ldub(0x1000), 1);
    ram.setReadonly(false);
    cpu.stb(0x1000, 4);
    assert.equal(as.ldub(0x1000), 4);
  });
});
