/**
 * @module machines/riscv/devices/gpex
 * The generic PCIe host of the virt board (hw/pci-host/gpex.c, hw/pci/pcie_host.c) with nothing
 * plugged in but its own function 00:00.0, `gpex-root` (Red Hat 1b36:0008, class host bridge).
 * ECAM (`pcie-mmcfg-mmio`, 256 MiB, little-endian, 1..4-byte accesses) decodes bus, devfn and
 * register from the offset (PCIE_MMCFG_BUS/DEVFN/CONFOFFSET); absent functions and registers past
 * the 256-byte space read all ones. The function's command register is writable as QEMU's wmask
 * allows, and its Bus Master Enable bit switches the `bus master` alias of its address space, as
 * pci_default_write_config does.
 */

import type { MemoryRegion, MemorySystem } from '../../../core/index.js';
import { DeviceStateError, StateReader } from './state.js';

/** Version of {@link GpexHost.saveState}'s layout. */
export const GPEX_STATE_VERSION = 1;

/** The host bridge function's migrated state: its configuration space (QEMU vmstate_pci_device). */
export interface GpexState {
  config: number[];
}

const PCI_COMMAND = 0x04;
const PCI_COMMAND_MASTER = 0x4;
/** IO | MEMORY | MASTER | SERR | INTX_DISABLE (pci_init_wmask). */
const COMMAND_WMASK = 0x1 | 0x2 | 0x4 | 0x100 | 0x400;
const CONFIG_SIZE = 256;

/** The host bridge's ECAM region and the one function behind it. */
export class GpexHost {
  readonly ecam: MemoryRegion;
  private readonly config = new Uint8Array(CONFIG_SIZE);
  private readonly wmask = new Uint8Array(CONFIG_SIZE);

  constructor(
    ms: MemorySystem,
    /** The function's `bus master` alias (enabled while Bus Master Enable is set). */
    private readonly busMaster: MemoryRegion,
  ) {
    const c = new DataView(this.config.buffer);
    c.setUint16(0x00, 0x1b36, true); // PCI_VENDOR_ID_REDHAT
    c.setUint16(0x02, 0x0008, true); // PCI_DEVICE_ID_REDHAT_PCIE_HOST
    c.setUint16(0x0a, 0x0600, true); // PCI_CLASS_BRIDGE_HOST
    c.setUint16(0x2c, 0x1af4, true); // subsystem vendor: Red Hat / Qumranet
    c.setUint16(0x2e, 0x1100, true); // subsystem: QEMU
    new DataView(this.wmask.buffer).setUint16(PCI_COMMAND, COMMAND_WMASK, true);
    this.wmask[0x0c] = 0xff; // cache line size
    this.wmask[0x3c] = 0xff; // interrupt line
    this.wmask.fill(0xff, 0x40);
    this.ecam = ms.io(
      'pcie-mmcfg-mmio',
      256 * 1024 * 1024,
      {
        read: (off, size) => this.cfgRead(off, size),
        write: (off, v, size) => this.cfgWrite(off, Number(v) >>> 0, size),
        endianness: 'little',
      },
      { owner: { name: 'gpex' } },
    );
  }

  /** The migrated state. */
  saveState(): GpexState {
    return { config: [...this.config] };
  }

  /**
   * Checks a migrated state: as QEMU's get_pci_config_device, bytes the guest cannot write must
   * equal this function's (a different device on the other side).
   */
  checkState(s: unknown, device = 'gpex'): GpexState {
    const config = new StateReader(device, s).uints('config', CONFIG_SIZE, 0xff);
    for (let i = 0; i < CONFIG_SIZE; i++) {
      if ((config[i]! & ~this.wmask[i]!) !== (this.config[i]! & ~this.wmask[i]!)) {
        throw new DeviceStateError(
          'corrupt',
          device,
          `read-only config byte 0x${i.toString(16)} is 0x${config[i]!.toString(16)}, not 0x${this.config[i]!.toString(16)}`,
        );
      }
    }
    return { config };
  }

  /** Loads a checked state; Bus Master Enable switches the alias as a guest write would. */
  loadState(s: GpexState): void {
    this.config.set(s.config);
    this.busMaster.setEnabled((this.config[PCI_COMMAND]! & PCI_COMMAND_MASTER) !== 0);
  }

  /** Whether an ECAM offset names function 00:00.0. */
  private present(off: number): boolean {
    return ((off >>> 20) & 0x1ff) === 0 && ((off >>> 12) & 0xff) === 0;
  }

  private cfgRead(off: number, size: number): number {
    const all = size === 4 ? 0xffffffff : (1 << (size * 8)) - 1;
    const reg = off & 0xfff;
    if (!this.present(off) || reg >= CONFIG_SIZE) return all;
    let v = 0;
    const n = Math.min(size, CONFIG_SIZE - reg);
    for (let i = n - 1; i >= 0; i--) v = v * 256 + this.config[reg + i]!;
    return v;
  }

  private cfgWrite(off: number, v: number, size: number): void {
    const reg = off & 0xfff;
    if (!this.present(off) || reg >= CONFIG_SIZE) return;
    const n = Math.min(size, CONFIG_SIZE - reg);
    for (let i = 0; i < n; i++) {
      const m = this.wmask[reg + i]!;
      const b = (v >>> (8 * i)) & 0xff;
      this.config[reg + i] = (this.config[reg + i]! & ~m) | (b & m);
    }
    if (reg <= PCI_COMMAND && reg + n > PCI_COMMAND) {
      this.busMaster.setEnabled((this.config[PCI_COMMAND]! & PCI_COMMAND_MASTER) !== 0);
    }
  }
}
