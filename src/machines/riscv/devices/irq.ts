/**
 * @module machines/riscv/devices/irq
 * Interrupt wiring between the virt machine's devices (QEMU's `qemu_irq`): a line is a function
 * taking the new level.
 */

/** One interrupt line (QEMU `qemu_set_irq`). */
export type IrqLine = (level: boolean) => void;

/** A line that goes nowhere (an unconnected GPIO in QEMU). */
export const NO_IRQ: IrqLine = () => {};
