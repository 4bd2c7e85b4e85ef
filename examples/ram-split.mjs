// A 16 GiB RAM stick split around the x86 3G-4G hole (QEMU's pc machine does the same with
// `ram-below-4g` and `ram-above-4g`). The stick itself is in no tree: two aliases show it.
// Run after `npm run build`: node examples/ram-split.mjs

import { formatFlat, MemorySystem } from '../dist/index.js';

const GiB = 2 ** 30;
const ms = new MemorySystem();
const system = ms.container('system', 2n ** 64n - 1n);
const ram = ms.ram('ram', 16 * GiB); // host memory is allocated per 1 GiB chunk, on first touch

ms.transaction(() => {
  system.addSubregion(0, ms.alias('ram-below-4g', ram, 0, 2 * GiB));
  system.addSubregion(4 * GiB, ms.alias('ram-above-4g', ram, 2 * GiB, 14 * GiB));
});
const memory = ms.addressSpace(system, 'memory');
process.stdout.write(formatFlat(ms));

// The guest writes just above 4 GiB; the bytes land 2 GiB into the stick.
memory.stqLe(4 * GiB + 0x10, 0x0123456789abcdefn);
const bytes = new Uint8Array(8);
ram.ramBlock.read(2 * GiB + 0x10, bytes, 0, 8);
console.log(
  `guest 0x${(4 * GiB + 0x10).toString(16)} -> ram offset 0x${(2 * GiB + 0x10).toString(16)}: ${Buffer.from(bytes).toString('hex')}`,
);

// And the last byte of the stick, written by the "host", is the guest's byte at 18 GiB - 1.
ram.ramBlock.write(16 * GiB - 1, Uint8Array.of(0x5a), 0, 1);
console.log(`guest 0x${(18 * GiB - 1).toString(16)} reads 0x${memory.ldub(18 * GiB - 1).toString(16)}`);
console.log(
  `guest 0x${(3 * GiB).toString(16)} (the hole) reads ${memory.ldub(3 * GiB)} with result ${memory.lastResult} (MEMTX_DECODE_ERROR)`,
);
