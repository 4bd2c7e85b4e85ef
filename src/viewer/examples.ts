/**
 * @module viewer/examples
 * Machines the viewer shows when it is given nothing else. The first is built here with the core
 * library: a PC-like guest with 16 GiB of RAM split around the 32-bit PCI hole, the classic example
 * of aliases (one RAM region, two windows onto it) and of a low-priority container (PCI) that shows
 * through wherever RAM does not answer.
 */

import { MemorySystem } from '../core/system.js';
import type { MemoryRegionOps } from '../core/types.js';

const GiB = 1n << 30n;
const MiB = 1n << 20n;
const KiB = 1n << 10n;

/** Device callbacks that read as zero and ignore writes: the viewer never runs guest code. */
const NOP_OPS: MemoryRegionOps = { read: () => 0, write: () => {} };

/**
 * The 16 GiB split: `ram` (16 GiB, in no tree) is mapped by `ram-below-4g` (its first 2 GiB, at 0)
 * and `ram-above-4g` (the other 14 GiB, at 4 GiB), both in the 2^64 `system` container. A `pci`
 * container at priority -1 spans the whole space, so its BARs appear only in the hole between
 * 2 GiB and 4 GiB that RAM leaves free (`pc.rom`, under RAM, stays hidden). There is also a 64 KiB
 * x86 I/O port space.
 */
export function build16GiBSplit(): MemorySystem {
  return build16GiB(false);
}

/**
 * The same machine after the guest reprogrammed its PCI devices: the VGA frame buffer BAR moved
 * from 0xe0000000 to 0xc0000000, the virtio BAR was switched off, and a new 64 KiB NIC ROM BAR
 * appeared. Compared with {@link build16GiBSplit} it shows what the diff mode reports.
 */
export function build16GiBSplitReprogrammed(): MemorySystem {
  return build16GiB(true);
}

function build16GiB(reprogrammed: boolean): MemorySystem {
  const ms = new MemorySystem();
  ms.transaction(() => {
    const system = ms.container('system', 1n << 64n);
    const ram = ms.ram('ram', 16n * GiB);
    const below = ms.alias('ram-below-4g', ram, 0, 2n * GiB);
    const above = ms.alias('ram-above-4g', ram, 2n * GiB, 14n * GiB);
    system.addSubregion(0, below);
    system.addSubregion(4n * GiB, above);

    const pci = ms.container('pci', 1n << 64n);
    system.addSubregionOverlap(0, pci, -1);
    pci.addSubregionOverlap(0xc0000, ms.rom('pc.rom', 128n * KiB), 1);
    pci.addSubregion(reprogrammed ? 0xc0000000n : 0xe0000000n, ms.ram('vga.vram', 16n * MiB));
    pci.addSubregion(0xfeb80000n, ms.io('e1000-mmio', 128n * KiB, NOP_OPS));
    if (!reprogrammed) pci.addSubregion(0xfebd1000n, ms.io('virtio-pci-common', 4n * KiB, NOP_OPS));
    else pci.addSubregion(0xfeb40000n, ms.rom('e1000.rom', 256n * KiB));
    pci.addSubregion(0xfffc0000n, ms.rom('pc.bios', 256n * KiB));

    system.addSubregion(0xfec00000n, ms.io('ioapic', 4n * KiB, NOP_OPS));
    system.addSubregion(0xfed00000n, ms.io('hpet', 1n * KiB, NOP_OPS));
    system.addSubregionOverlap(0xfee00000n, ms.io('apic-msi', 1n * MiB, NOP_OPS), 4096);
    ms.addressSpace(system, 'memory');

    const io = ms.container('io', 64n * KiB);
    io.addSubregion(0x20, ms.io('pic', 2, NOP_OPS));
    io.addSubregion(0x40, ms.io('pit', 4, NOP_OPS));
    io.addSubregion(0x60, ms.io('i8042-data', 1, NOP_OPS));
    io.addSubregion(0x64, ms.io('i8042-cmd', 1, NOP_OPS));
    io.addSubregion(0x70, ms.io('rtc', 2, NOP_OPS));
    io.addSubregion(0x3f8, ms.io('serial', 8, NOP_OPS));
    io.addSubregion(0xcf8, ms.io('pci-conf-idx', 4, NOP_OPS));
    io.addSubregion(0xcfc, ms.io('pci-conf-data', 4, NOP_OPS));
    io.addSubregion(0xc000, ms.io('e1000-io', 64, NOP_OPS));
    ms.addressSpace(io, 'I/O');
  });
  return ms;
}
