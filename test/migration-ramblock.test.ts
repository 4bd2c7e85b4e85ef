/**
 * RAM blocks and dirty memory: placement in ram_addr space (spec R10.4, checked against the real
 * binary's `info ramblock`), ids, lookup, resize, free, device writes and the dirty clients.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { DIRTY_MEMORY_MIGRATION, DIRTY_MEMORY_VGA } from '../src/core/dirty.js';
import { RamBlockError, RegionInUseError } from '../src/core/errors.js';
import { MemorySystem } from '../src/core/system.js';
import { formatRamblock, sizeToStr } from '../src/mtree/ramblock.js';

const KiB = 1024;
const MiB = 1024 * KiB;

/**
 * `info ramblock` of `qemu-system-x86_64 -M pc -m 128M -nodefaults -S -device VGA -device e1000`
 * (QEMU 7.2.22), copied from the monitor.
 */
const QEMU_PC_128M_VGA_E1000 = `              Block Name    PSize              Offset               Used              Total
                  pc.ram    4 KiB  0x0000000000000000 0x0000000008000000 0x0000000008000000
   0000:00:02.0/vga.vram    4 KiB  0x0000000008080000 0x0000000001000000 0x0000000001000000
    /rom@etc/acpi/tables    4 KiB  0x0000000009100000 0x0000000000020000 0x0000000000200000
                 pc.bios    4 KiB  0x0000000008000000 0x0000000000040000 0x0000000000040000
  0000:00:03.0/e1000.rom    4 KiB  0x00000000090c0000 0x0000000000040000 0x0000000000040000
                  pc.rom    4 KiB  0x0000000008040000 0x0000000000020000 0x0000000000020000
    0000:00:02.0/vga.rom    4 KiB  0x0000000009080000 0x0000000000010000 0x0000000000010000
   /rom@etc/table-loader    4 KiB  0x0000000009300000 0x0000000000001000 0x0000000000010000
      /rom@etc/acpi/rsdp    4 KiB  0x0000000009340000 0x0000000000001000 0x0000000000001000
`;

/** The blocks of that machine, created in the order QEMU creates them (board, devices, firmware). */
function pcMachine() {
  const ms = new MemorySystem();
  const vga = { devicePath: '0000:00:02.0' };
  const e1000 = { devicePath: '0000:00:03.0' };
  const r = {
    ram: ms.ram('pc.ram', 128 * MiB),
    bios: ms.rom('pc.bios', 256 * KiB),
    rom: ms.ram('pc.rom', 128 * KiB),
    vram: ms.ram('vga.vram', 16 * MiB, { owner: vga }),
    vgaRom: ms.rom('vga.rom', 64 * KiB, { owner: vga }),
    e1000Rom: ms.rom('e1000.rom', 256 * KiB, { owner: e1000 }),
    acpi: ms.ram('/rom@etc/acpi/tables', 128 * KiB, { maxSize: 2 * MiB }),
    loader: ms.ram('/rom@etc/table-loader', 4 * KiB, { maxSize: 64 * KiB }),
    rsdp: ms.ram('/rom@etc/acpi/rsdp', 4 * KiB, { maxSize: 4 * KiB }),
  };
  return { ms, r };
}

describe('RAM list placement and ids', () => {
  it('places and orders the pc + VGA + e1000 blocks as QEMU does (R10.2-R10.4, R10.11)', () => {
    const { ms, r } = pcMachine();
    // Offsets from the spec's worked example: each new block goes after the last one, aligned to
    // 64 pages (256 KiB), because no earlier gap is large enough.
    assert.equal(r.bios.ramBlock!.offset, 0x8000000);
    assert.equal(r.vram.ramBlock!.offset, 0x8080000);
    assert.equal(r.rsdp.ramBlock!.offset, 0x9340000);
    assert.equal(formatRamblock(ms), QEMU_PC_128M_VGA_E1000);
  });

  it('finds blocks by ram address, by region and by id (R10.5, R10.7)', () => {
    const { ms, r } = pcMachine();
    const list = ms.ramList;
    assert.equal(list.blockAt(0x8040000 + 5), r.rom.ramBlock);
    assert.equal(list.blockAt(0x8060000), null, 'the alignment gap after pc.rom belongs to no block');
    assert.equal(list.byRegion(r.vram), r.vram.ramBlock);
    assert.equal(list.byId('0000:00:02.0/vga.vram'), r.vram.ramBlock);
    assert.equal(list.byId('vga.vram'), null, 'the device path is part of the id');
  });

  it('refuses a second block with the same id (R10.12)', () => {
    const ms = new MemorySystem();
    ms.ram('pc.ram', MiB);
    assert.throws(
      () => ms.ram('pc.ram', MiB),
      (e: unknown) => {
        assert.ok(e instanceof RamBlockError);
        assert.match(e.message, /RAMBlock "pc\.ram" already registered/);
        return true;
      },
    );
  });

  it('reuses the ram_addr range of a freed block as a gap after another block (R10.5 free)', () => {
    const ms = new MemorySystem();
    const a = ms.ram('a', MiB);
    const b = ms.ram('b', MiB);
    ms.ram('c', MiB);
    assert.equal(b.ramBlock!.offset, MiB);
    ms.freeRegion(b);
    assert.equal(ms.ramList.byId('b'), null);
    // The hole [1 MiB, 2 MiB) after block a is the best (smallest) fit for a 512 KiB block.
    const d = ms.ram('d', 512 * KiB);
    assert.equal(d.ramBlock!.offset, MiB);
    const root = ms.container('root', 4 * MiB);
    root.addSubregion(0, a);
    assert.throws(() => ms.freeRegion(a), RegionInUseError);
  });
});

describe('RAM block resize (R10.8-R10.10)', () => {
  it('grows a resizeable block, marks the new range dirty and calls resized', () => {
    const { ms, r } = pcMachine();
    const calls: Array<[string, number]> = [];
    r.acpi.ramBlock!.resized = (id, size) => calls.push([id, size]);
    ms.resetDirty(r.acpi, 0, 128 * KiB, DIRTY_MEMORY_VGA);
    ms.ramResize(r.acpi, 0x30001);
    assert.equal(r.acpi.ramBlock!.usedLength, 0x31000);
    assert.equal(r.acpi.size, 0x30001n, 'the region takes the unrounded size');
    assert.deepEqual(calls, [['/rom@etc/acpi/tables', 0x30001]]);
    assert.equal(ms.dirty.allDirty(r.acpi.ramBlock!.offset, 0x31000, DIRTY_MEMORY_VGA), true);
    // Same rounded length, different unrounded size: only the region size and the callback change.
    ms.ramResize(r.acpi, 0x30002);
    assert.equal(r.acpi.size, 0x30002n);
    assert.equal(calls.length, 2);
  });

  it('reports QEMU errors for fixed-size blocks and sizes beyond the maximum', () => {
    const { ms, r } = pcMachine();
    assert.throws(() => ms.ramResize(r.bios, 512 * KiB), {
      message: 'Size mismatch: pc.bios: 0x80000 != 0x40000',
    });
    assert.throws(() => ms.ramResize(r.loader, 128 * KiB), {
      message: 'Size too large: /rom@etc/table-loader: 0x20000 > 0x10000',
    });
    assert.equal(r.loader.ramBlock!.usedLength, 4 * KiB);
  });

  it('tells resize observers before the change', () => {
    const { ms, r } = pcMachine();
    const seen: number[][] = [];
    ms.ramResizeObservers.add((b, o, n) => seen.push([b.usedLength, o, n]));
    ms.ramResize(r.loader, 8 * KiB);
    assert.deepEqual(seen, [[4 * KiB, 4 * KiB, 8 * KiB]]);
  });
});

describe('dirty memory tracking (R11)', () => {
  function machine() {
    const ms = new MemorySystem();
    const root = ms.container('system', 64 * MiB);
    const ram = ms.ram('ram', 16 * MiB);
    const vram = ms.ram('vram', MiB);
    root.addSubregion(0, ram);
    root.addSubregion(32 * MiB, vram);
    const as = ms.addressSpace(root, 'memory');
    // New blocks start dirty for every client (R10.3); start from a clean slate.
    for (const c of [0, 1, 2]) {
      ms.dirty.testAndClear(ram.ramBlock!.offset, ram.ramBlock!.usedLength, c);
      ms.dirty.testAndClear(vram.ramBlock!.offset, vram.ramBlock!.usedLength, c);
    }
    return { ms, ram, vram, as };
  }

  it('new blocks start dirty for all three clients (R10.3)', () => {
    const ms = new MemorySystem();
    const r = ms.ram('r', 64 * KiB);
    for (const c of [0, 1, 2]) assert.equal(ms.dirty.allDirty(r.ramBlock!.offset, 64 * KiB, c), true);
  });

  it('marks MIGRATION only while global dirty logging is on (R11.3, R11.5)', () => {
    const { ms, ram, as } = machine();
    const base = ram.ramBlock!.offset;
    as.stlLe(0x5000, 1);
    assert.equal(ms.dirty.getDirty(base + 0x5000, 1, DIRTY_MEMORY_MIGRATION), false);
    ms.globalDirtyLogStart();
    as.stlLe(0x5000, 2);
    as.write(0x9ffe, new Uint8Array(4)); // straddles pages 9 and 10
    assert.equal(ms.dirty.getDirty(base + 0x5000, 1, DIRTY_MEMORY_MIGRATION), true);
    assert.equal(ms.dirty.allDirty(base + 0x9000, 0x2000, DIRTY_MEMORY_MIGRATION), true);
    assert.equal(ms.dirty.getDirty(base + 0x6000, 0x3000, DIRTY_MEMORY_MIGRATION), false);
    assert.equal(ms.dirty.getDirty(base, 16 * MiB, DIRTY_MEMORY_VGA), false, 'VGA is not logged here');
    // Test-and-clear returns whether anything was set, then a write marks the page again even
    // though it was cached for writing before (the clear drops cached write paths).
    assert.equal(ms.resetDirty(ram, 0x5000, 4, DIRTY_MEMORY_MIGRATION), true);
    assert.equal(ms.resetDirty(ram, 0x5000, 4, DIRTY_MEMORY_MIGRATION), false);
    as.stlLe(0x5004, 3);
    assert.equal(ms.dirty.getDirty(base + 0x5000, 1, DIRTY_MEMORY_MIGRATION), true);
    ms.globalDirtyLogStop();
    ms.resetDirty(ram, 0, 16 * MiB, DIRTY_MEMORY_MIGRATION);
    as.stlLe(0x7000, 1);
    assert.equal(ms.dirty.getDirty(base + 0x7000, 1, DIRTY_MEMORY_MIGRATION), false);
  });

  it('logs VGA per region, and snapshot-and-clear hands the bits over once', () => {
    const { ms, ram, vram, as } = machine();
    vram.setLog(true, DIRTY_MEMORY_VGA);
    as.stb(32 * MiB + 0x3000, 1);
    as.stb(0x3000, 1);
    assert.equal(ms.dirty.getDirty(ram.ramBlock!.offset + 0x3000, 1, DIRTY_MEMORY_VGA), false);
    const snap = ms.snapshotAndClearDirty(vram, 0, MiB, DIRTY_MEMORY_VGA);
    assert.equal(ms.snapshotGetDirty(vram, snap, 0x3000, 0x1000), true);
    assert.equal(ms.snapshotGetDirty(vram, snap, 0x4000, 0x1000), false);
    const again = ms.snapshotAndClearDirty(vram, 0, MiB, DIRTY_MEMORY_VGA);
    assert.equal(ms.snapshotGetDirty(vram, again, 0, MiB), false);
    vram.setLog(false, DIRTY_MEMORY_VGA);
    as.stb(32 * MiB + 0x3000, 2);
    assert.equal(ms.dirty.getDirty(vram.ramBlock!.offset + 0x3000, 1, DIRTY_MEMORY_VGA), false);
  });

  it('marks zero-copy mappings when released and device direct writes', () => {
    const { ms, ram, as } = machine();
    ms.globalDirtyLogStart();
    const base = ram.ramBlock!.offset;
    const m = as.map(0x20000, 0x2000, true);
    assert.ok(m);
    m.data.fill(7);
    assert.equal(ms.dirty.getDirty(base + 0x20000, 0x2000, DIRTY_MEMORY_MIGRATION), false);
    as.unmap(m);
    assert.equal(ms.dirty.allDirty(base + 0x20000, 0x2000, DIRTY_MEMORY_MIGRATION), true);
    ms.writeRam(ram, 0x40000, new Uint8Array([1, 2, 3]));
    assert.equal(ms.dirty.getDirty(base + 0x40000, 1, DIRTY_MEMORY_MIGRATION), true);
    assert.equal(as.ldub(0x40001), 2);
    assert.throws(() => ms.writeRam(ram, 16 * MiB - 1, new Uint8Array(2)), {
      code: 'ERR_INVALID_ARGUMENT',
      message: /runs past/,
    });
  });

  it('prints page sizes as QEMU size_to_str does', () => {
    assert.equal(sizeToStr(4096), '4 KiB');
    assert.equal(sizeToStr(2 * MiB), '2 MiB');
    assert.equal(sizeToStr(1536), '1.5 KiB');
    assert.equal(sizeToStr(1000), '0.977 KiB');
  });
});
