// The built-in example: a PC-like machine with 16 GiB of RAM split around the 3G-4G PCI hole.
// It prints `info mtree` and `info mtree -f` exactly as QEMU 7.2 would for the same regions, then
// answers a few address lookups and shows RAM written through one alias read back through another.
// Run: npm start   (or: npm run build && node examples/pc-machine.mjs)

import { formatFlat, formatMtree, MemorySystem } from '../dist/index.js';

const GiB = 1n << 30n;
const ms = new MemorySystem();

// Physical memory: a 2^64 container, as QEMU's `system`.
const system = ms.container('system', 2n ** 64n - 1n);
// The RAM stick is on no tree: two aliases map it below and above the PCI hole.
const ram = ms.ram('pc.ram', 16n * GiB);
const below = ms.alias('ram-below-4g', ram, 0, 2n * GiB);
const above = ms.alias('ram-above-4g', ram, 2n * GiB, 14n * GiB);

// PCI address space: everything RAM does not cover shows through from here (priority -1).
const pci = ms.container('pci', 2n ** 64n - 1n);
const bios = ms.rom('pc.bios', 256 * 1024);
const isaBios = ms.alias('isa-bios', bios, 0x20000, 0x20000);
const pcRom = ms.rom('pc.rom', 128 * 1024);
const vram = ms.ram('vga.vram', 16 * 1024 * 1024);

// A virtio-pci modern BAR: a container with four register blocks.
const bar = ms.container('virtio-pci', 0x4000);
const regs = {};
for (const [i, part] of ['common', 'isr', 'device', 'notify'].entries()) {
  regs[part] = ms.io(`virtio-pci-${part}-virtio-net`, 0x1000, {
    read: (offset, _size) => (i << 16) | offset, // which block, and the offset it saw
    write: () => {},
    endianness: 'little',
  });
  bar.addSubregion(i * 0x1000, regs[part]);
}

const mmio = (name, size) => ms.io(name, size, { read: () => 0, write: () => {}, endianness: 'little' });

ms.transaction(() => {
  system.addSubregion(0, below);
  system.addSubregion(4n * GiB, above);
  system.addSubregionOverlap(0, pci, -1);
  pci.addSubregion(0xfffc0000, bios);
  pci.addSubregionOverlap(0xe0000, isaBios, 1);
  pci.addSubregionOverlap(0xc0000, pcRom, 1);
  pci.addSubregionOverlap(0xfd000000, vram, 1);
  pci.addSubregionOverlap(0xfebf8000, bar, 1);
  // Legacy VGA window: an alias of `pci` that lets PCI content through at 0xa0000.
  system.addSubregionOverlap(0xa0000, ms.alias('smram-region', pci, 0xa0000, 0x20000), 1);
  system.addSubregion(0xfec00000, mmio('ioapic', 0x1000));
  system.addSubregion(0xfed00000, mmio('hpet', 0x400));
  system.addSubregionOverlap(0xfee00000, mmio('apic-msi', 0x100000), 4096);
});

// Port I/O: a 64 KiB region whose gaps read as all ones, as on a PC.
const io = ms.io('io', 0x10000, {
  read: (_o, size) => (size === 4 ? 0xffffffff : (1 << (size * 8)) - 1),
  write: () => {},
});
const serial = mmio('serial', 8);
io.addSubregion(0x3f8, serial);
io.addSubregion(0xcf8, mmio('pci-conf-idx', 4));
io.addSubregion(0xcfc, mmio('pci-conf-data', 4));

const memory = ms.addressSpace(system, 'memory');
ms.addressSpace(system, 'cpu-memory-0');
const ioSpace = ms.addressSpace(io, 'I/O');

console.log('=== info mtree ===');
process.stdout.write(formatMtree(ms));
console.log('=== info mtree -f ===');
process.stdout.write(formatFlat(ms));

console.log('=== lookups ===');
const hex = (v) => `0x${v.toString(16)}`;
for (const [as, addr] of [
  [memory, 0x1000n],
  [memory, 0xa0000n],
  [memory, 0xe0000n],
  [memory, 0xc0000000n],
  [memory, 0xfebf9004n],
  [memory, 0xfee00000n],
  [memory, 0x100000000n],
  [memory, 0x480000000n],
  [ioSpace, 0x3f8n],
  [ioSpace, 0x80n],
]) {
  const hit = as.lookup(addr);
  console.log(
    `${as.name.padEnd(6)} ${hex(addr).padEnd(12)} -> ${
      hit ? `${hit.region.name} (${hit.region.kind}) @ offset ${hex(hit.offset)}` : 'unassigned'
    }`,
  );
}

console.log('=== accesses ===');
memory.stqLe(0x100000000, 0x1122334455667788n); // first byte above 4 GiB...
const view = new Uint8Array(8);
ram.ramBlock.read(2 * 2 ** 30, view, 0, 8); // ...is byte 2 GiB of the RAM stick
console.log(`stqLe 0x100000000 -> pc.ram[2 GiB..] = ${Buffer.from(view).toString('hex')}`);
console.log(`ldlLe 0xfebf9004 = ${hex(memory.ldlLe(0xfebf9004))} (block 1 = isr, offset 4)`);
console.log(`ldub  I/O 0x80  = ${hex(ioSpace.ldub(0x80))} (no device: the io background reads all ones)`);
console.log(
  `ldlLe 0x480000000 = ${hex(memory.ldlLe(0x480000000))}, result ${memory.lastResult} (2 = MEMTX_DECODE_ERROR)`,
);
