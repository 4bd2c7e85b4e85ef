// A PCI hole: the `pci` container covers the whole space at priority -1, under RAM. Device BARs
// mapped into it show only where RAM does not cover them; where RAM is, RAM wins.
// Run after `npm run build`: node examples/pci-hole.mjs

import { formatFlat, MemorySystem } from '../dist/index.js';

const MiB = 2 ** 20;
const ms = new MemorySystem();
const system = ms.container('system', 2n ** 64n - 1n);
const ram = ms.ram('pc.ram', 3072 * MiB);
const pci = ms.container('pci', 2n ** 64n - 1n);
ms.transaction(() => {
  system.addSubregion(0, ms.alias('ram-below-4g', ram, 0, 3072 * MiB));
  system.addSubregionOverlap(0, pci, -1);
  // A BAR the guest put inside RAM: it stays hidden.
  pci.addSubregion(0x80000000, ms.io('hidden-bar', 0x1000, { read: () => 0xbad }));
  // BARs in the hole between 3 GiB and 4 GiB: visible.
  pci.addSubregion(0xc0000000, ms.ram('vga.vram', 16 * MiB));
  pci.addSubregion(0xfebf0000, ms.io('e1000-mmio', 0x20000, { read: () => 0x1234 }));
});
const memory = ms.addressSpace(system, 'memory');
process.stdout.write(formatFlat(ms));
for (const addr of [0x80000000, 0xc0000000, 0xfebf0000, 0xf0000000]) {
  const hit = memory.lookup(addr);
  console.log(`0x${addr.toString(16)} -> ${hit ? hit.region.name : 'unassigned (the hole with no BAR)'}`);
}
