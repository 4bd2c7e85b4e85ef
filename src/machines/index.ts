/**
 * @module machines
 * Whole machines built on memtree: QEMU 7.2's riscv64 `virt` board with its devices and RV64GC
 * harts (`memtree/machines`). Imports the core; the core never imports this.
 */

export type { Bus } from './riscv/cpu/bus.js';
export { type HartOptions, RiscvHart } from './riscv/cpu/hart.js';
export {
  buildRiscvVirt,
  HIGH_PCIE_MMIO_SIZE,
  RiscvVirtMachine,
  type RiscvVirtOptions,
  type RunStop,
  VIRT_IRQ,
  VIRT_MEMMAP,
  VIRTIO_COUNT,
} from './riscv/virt.js';
