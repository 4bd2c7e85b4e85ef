// A virtio-pci modern BAR: one container with four register blocks (common config, ISR, device
// config, notify). The PCI core maps the container when the guest programs the BAR; each block's
// callbacks see offsets relative to the block itself.
// Run after `npm run build`: node examples/virtio-pci-bar.mjs

import { formatMtree, MemorySystem } from '../dist/index.js';

const ms = new MemorySystem();
const system = ms.container('system', 2n ** 64n - 1n);
const pci = ms.container('pci', 2n ** 64n - 1n);
system.addSubregionOverlap(0, pci, -1);

const bar = ms.container('virtio-pci', 0x4000);
const seen = [];
for (const [i, part] of ['common', 'isr', 'device', 'notify'].entries()) {
  const block = ms.io(`virtio-pci-${part}-virtio-rng`, 0x1000, {
    endianness: 'little',
    read: (offset, size) => {
      seen.push(`${part} read  offset 0x${offset.toString(16)} size ${size}`);
      return i;
    },
    write: (offset, value, size) =>
      seen.push(`${part} write offset 0x${offset.toString(16)} size ${size} value 0x${value.toString(16)}`),
  });
  bar.addSubregion(i * 0x1000, block);
}
const memory = ms.addressSpace(system, 'memory');

// The guest programs BAR 4 at 0xfebf8000 and enables memory decoding.
pci.addSubregionOverlap(0xfebf8000, bar, 1);
process.stdout.write(formatMtree(ms));

memory.stlLe(0xfebf8014, 1); // common config, queue_select
memory.ldub(0xfebf9000); // ISR status
memory.lduwLe(0xfebfa002); // device config
memory.stwLe(0xfebfb000, 0); // notify queue 0
for (const line of seen) console.log(line);

// Reprogramming the BAR moves all four blocks at once.
ms.transaction(() => {
  pci.delSubregion(bar);
  pci.addSubregionOverlap(0xfe000000, bar, 1);
});
console.log(`after the move, 0xfe001000 is served by ${memory.lookup(0xfe001000).region.name}`);
