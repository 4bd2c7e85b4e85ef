/**
 * @module machines/riscv/devices/virtio-mmio
 * A virtio-mmio transport with no backend (hw/virtio/virtio-mmio.c, virtio_mmio_read without a
 * vdev): region `virtio-mmio`, 0x200 bytes, legacy (QEMU 7.2's default `force-legacy=on`, so native
 * byte order, little on RISC-V). Every register reads 0 except the magic "virt", the version (1,
 * legacy) and the vendor id "QEMU"; device id 0 tells the guest nothing is plugged in. Writes are
 * ignored.
 */

import type { MemoryRegion, MemorySystem } from '../../../core/index.js';

const MAGIC = 0x74726976;
const VERSION_LEGACY = 1;
const VENDOR = 0x554d4551;

/** Creates one empty transport's region. */
export function virtioMmioRegion(ms: MemorySystem, index: number): MemoryRegion {
  return ms.io(
    'virtio-mmio',
    0x200,
    {
      read: (off) => (off === 0 ? MAGIC : off === 4 ? VERSION_LEGACY : off === 0xc ? VENDOR : 0),
      write: () => {},
      endianness: 'native',
    },
    { owner: { name: `virtio-mmio.${index}` } },
  );
}
