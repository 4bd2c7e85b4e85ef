import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { CpuAccess } from './cpu-access.js';
import { MemorySystem } from './system.js';
import { MEMTX_DECODE_ERROR, MEMTX_OK } from './types.js';

describe('CPU stores versus bus writes', () => {
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

  it('discards CPU stores to RAM behind a read-only alias after bus writes there filled the write caches', () => {
    const { as, cpu, ram } = pc();
    // Bus stores go through the read-only alias (QEMU: the region itself is writable), so the
    // address space caches the range for writing; CPU stores there must still be discarded.
    for (let i = 0; i < 64; i++) as.stlLe(0xf0000 + i * 4, 0x01010101);
    for (let i = 0; i < 64; i++) cpu.stlLe(0xf0000 + i * 4, 0x22222222);
    cpu.stb(0xf0001, 0x33);
    cpu.stwLe(0xf0002, 0x4444);
    cpu.stqLe(0xf0008, 0x5555555555555555n);
    assert.equal(cpu.lastResult, MEMTX_OK);
    const back = new Uint8Array(16);
    ram.ramBlock!.read(0xf0000, back, 0, 16);
    assert.deepEqual([...back], new Array(16).fill(1));
  });

  it('marks pages dirty for a logging client on CPU stores, also after its bits were cleared', () => {
    const { as, cpu, ram } = pc();
    const ms = as.system;
    ms.globalDirtyLogStart(1);
    const MIGRATION = 2;
    ms.snapshotAndClearDirty(ram, 0, 0x100000, MIGRATION);
    // Round after round: pages clean for MIGRATION must take the marking path even though the
    // previous round's stores made the same pages writable at full speed.
    for (let round = 0; round < 3; round++) {
      // Two stores per page: the first marks the page, the second may then use the fast path.
      for (let p = 0; p < 8; p++) {
        cpu.stlLe(0x10000 + p * 0x1000 + round * 8, round);
        cpu.stlLe(0x10000 + p * 0x1000 + round * 8 + 4, round);
      }
      cpu.stb(0x20000 + round, 1);
      cpu.stwLe(0x21000 + round * 2, 1);
      cpu.stqLe(0x22000 + round * 8, 1n);
      const snap = ms.snapshotAndClearDirty(ram, 0, 0x100000, MIGRATION);
      for (let p = 0; p < 8; p++) {
        assert.ok(ms.snapshotGetDirty(ram, snap, 0x10000 + p * 0x1000, 4), `round ${round} page ${p}`);
      }
      for (const a of [0x20000, 0x21000, 0x22000]) {
        assert.ok(ms.snapshotGetDirty(ram, snap, a, 8), `round ${round} 0x${a.toString(16)}`);
      }
      assert.ok(!ms.snapshotGetDirty(ram, snap, 0x30000, 0x1000), 'an untouched page stays clean');
    }
    assert.equal(as.ldlLe(0x10000 + 7 * 0x1000 + 16), 2);
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

describe('CPU stores on the fast path (issue #10 bug 6)', () => {
  function machine() {
    const ms = new MemorySystem();
    const sys = ms.container('system', 0x100000);
    const ram = ms.ram('ram', 0x100000);
    sys.addSubregion(0, ram);
    const win = ms.alias('win', ram, 0x8000, 0x2000);
    sys.addSubregionOverlap(0x8000, win, 1);
    const as = ms.addressSpace(sys, 'memory');
    return { ms, as, ram, win, cpu: new CpuAccess(as) };
  }

  it('does not search the flat view again for stores to a page it has seen', () => {
    const { as, cpu } = machine();
    const view = as.currentView;
    let searches = 0;
    const indexOf = view.indexOf.bind(view);
    view.indexOf = (addr: number) => {
      searches++;
      return indexOf(addr);
    };
    for (let i = 0; i < 1000; i++) cpu.stlLe(0x1000 + (i & 0x3ff) * 4, i);
    // Before: one binary search of the view per store (1000). Now: the first store of the page.
    assert.ok(searches <= 4, `${searches} searches`);
    assert.equal(as.ldlLe(0x1000 + (999 & 0x3ff) * 4), 999);
  });

  it('forgets what it knew when the view changes: a page made read-only discards at once', () => {
    const { as, cpu, win } = machine();
    cpu.stlLe(0x8010, 1);
    cpu.stlLe(0x8010, 2);
    assert.equal(as.ldlLe(0x8010), 2);
    win.setReadonly(true);
    cpu.stlLe(0x8010, 3);
    assert.equal(cpu.lastResult, MEMTX_OK);
    assert.equal(as.ldlLe(0x8010), 2);
    win.setReadonly(false);
    cpu.stlLe(0x8010, 4);
    assert.equal(as.ldlLe(0x8010), 4);
  });

  it('does not remember a page that a read-only section covers only in part', () => {
    const { ms, as, cpu, ram } = machine();
    const ro = ms.alias('ro', ram, 0x20800, 0x100);
    ro.setReadonly(true);
    ms.transaction(() => as.root.addSubregionOverlap(0x20800, ro, 2));
    cpu.stb(0x20000, 1); // the writable start of the page
    cpu.stb(0x20810, 5); // the read-only part: discarded
    assert.equal(as.ldub(0x20000), 1);
    assert.equal(as.ldub(0x20810), 0);
    assert.throws(() => cpu.stb(-1, 0), { code: 'ERR_INVALID_ARGUMENT' });
  });
});
