/**
 * @module machines/riscv/test-support/virt-map
 * Guest addresses of the virt board's devices, for tests that reach them from the bus. Written by
 * hand from QEMU 7.2's `virt_memmap` (hw/riscv/virt.c) and the ACLINT layout behind its CLINT
 * window (`riscv_aclint_swi_create` at the base, the mtimer `RISCV_ACLINT_SWI_SIZE` above it), not
 * taken from the board under test, so that a wrong address in the board shows as a failing test.
 */

/** sifive_test. */
export const TEST = 0x100000;
/** goldfish RTC. */
export const RTC = 0x101000;
/** ACLINT MSWI, the start of the CLINT window. */
export const SWI = 0x2000000;
/** ACLINT MTIMER. */
export const MTIMER = 0x2004000;
/** PLIC. */
export const PLIC = 0xc000000;
/** 16550 UART. */
export const UART = 0x10000000;
/** The first virtio-mmio transport. */
export const VIRTIO = 0x10001000;
/** fw_cfg. */
export const FWCFG = 0x10100000;
/** pflash0: the first half of the flash window. */
export const FLASH0 = 0x20000000;
/** pflash1: the second half. */
export const FLASH1 = 0x22000000;
/** PCIe ECAM. */
export const ECAM = 0x30000000;
