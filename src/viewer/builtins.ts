/**
 * @module viewer/builtins
 * The examples bundled into the page: real machines captured from QEMU 7.2 (their
 * `info mtree -D` and `info mtree -f` text, rebuilt in the browser like any dump) and the 16 GiB
 * split built with the core library.
 */

import pc8Flat from '../../fixtures/qemu-7.2/pc-8g/flat.txt?raw';
import pc8Tree from '../../fixtures/qemu-7.2/pc-8g/mtree-D.txt?raw';
import pc512Flat from './examples/pc-512m/flat.txt?raw';
import pc512Tree from './examples/pc-512m/mtree-D.txt?raw';
import pcProgFlat from './examples/pc-prog/flat.txt?raw';
import pcProgTree from './examples/pc-prog/mtree-D.txt?raw';
import { build16GiBSplit, build16GiBSplitReprogrammed } from './examples.js';
import type { Entry } from './main.js';
import { buildMachine } from './model.js';
import { machineFromText } from './sources.js';

/** The built-in machines, the default first. */
export function builtinEntries(): Entry[] {
  const dump = (id: string, label: string, mtree: string, flat: string): Entry => ({
    id,
    label,
    load: async () => machineFromText({ label, mtree, flat }),
  });
  return [
    dump('pc-512m', 'PC (i440FX, 512 MiB) — captured from QEMU 7.2', pc512Tree, pc512Flat),
    dump('pc-8g', 'PC with 8 GiB: RAM split around the PCI hole — QEMU 7.2', pc8Tree, pc8Flat),
    dump(
      'pc-prog',
      'PC with VGA, e1000, virtio-net, ivshmem, BARs programmed — QEMU 7.2',
      pcProgTree,
      pcProgFlat,
    ),
    {
      id: '16g',
      label: '16 GiB split around the PCI hole — built with the core',
      load: async () => buildMachine(build16GiBSplit(), '16 GiB split'),
    },
    {
      id: '16g-moved',
      label: '16 GiB split, PCI BARs reprogrammed — built with the core',
      load: async () => buildMachine(build16GiBSplitReprogrammed(), '16 GiB split, BARs reprogrammed'),
    },
  ];
}
