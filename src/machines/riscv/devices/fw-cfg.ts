/**
 * @module machines/riscv/devices/fw-cfg
 * QEMU's fw_cfg in its wide MMIO form (hw/nvram/fw_cfg.c, fw_cfg_init_mem_wide as create_fw_cfg
 * calls it): `fwcfg.data` (8 bytes, any width up to 8, only at offset 0), `fwcfg.ctl` (2-byte
 * big-endian selector writes) and `fwcfg.dma` (the 64-bit big-endian address of a DMA descriptor,
 * written whole or as two halves, the low half starting the transfer). The items are the ones QEMU
 * puts in every fw_cfg (signature, interface id, UUID, empty file directory) plus the CPU count the
 * virt board adds; the virt machine adds no files without `-fw_cfg` options.
 */

import type { AddressSpace, MemoryRegion, MemorySystem } from '../../../core/index.js';
import { StateReader } from './state.js';

/** Version of {@link FwCfg.saveState}'s layout. */
export const FW_CFG_STATE_VERSION = 1;

/** fw_cfg's migrated state (QEMU vmstate_fw_cfg: cur_entry, cur_offset, dma_addr). */
export interface FwCfgState {
  cur: number;
  offset: number;
  dmaAddr: bigint;
}

const FW_CFG_SIGNATURE = 0x00;
const FW_CFG_ID = 0x01;
const FW_CFG_UUID = 0x02;
const FW_CFG_NB_CPUS = 0x05;
const FW_CFG_FILE_DIR = 0x19;
const FW_CFG_INVALID = 0xffff;
const DMA_CTL_ERROR = 0x01;
const DMA_CTL_READ = 0x02;
const DMA_CTL_SKIP = 0x04;
const DMA_CTL_SELECT = 0x08;
const DMA_CTL_WRITE = 0x10;
/** "QEMU CFG", what the DMA register reads as (FW_CFG_DMA_SIGNATURE). */
const DMA_SIGNATURE = 0x51454d5520434647n;

/** The fw_cfg device of the virt board. */
export class FwCfg {
  readonly data: MemoryRegion;
  readonly ctl: MemoryRegion;
  readonly dma: MemoryRegion;
  private readonly items = new Map<number, Uint8Array>();
  private cur = FW_CFG_INVALID;
  private offset = 0;
  private dmaAddr = 0n;

  constructor(
    ms: MemorySystem,
    private readonly dmaAs: AddressSpace,
    cpus: number,
  ) {
    const owner = { name: 'fw_cfg' };
    const id = new Uint8Array(4);
    new DataView(id.buffer).setUint32(0, 3, true); // traditional interface and DMA
    const nb = new Uint8Array(2);
    new DataView(nb.buffer).setUint16(0, cpus, true);
    this.items.set(FW_CFG_SIGNATURE, new TextEncoder().encode('QEMU'));
    this.items.set(FW_CFG_ID, id);
    this.items.set(FW_CFG_UUID, new Uint8Array(16));
    this.items.set(FW_CFG_NB_CPUS, nb);
    this.items.set(FW_CFG_FILE_DIR, new Uint8Array(4));
    this.data = ms.io(
      'fwcfg.data',
      8,
      {
        read: (_off, size) => this.dataRead(size),
        write: () => {},
        endianness: 'big',
        valid: { minAccessSize: 1, maxAccessSize: 8, accepts: (off) => off === 0 },
        impl: { maxAccessSize: 8 },
      },
      { owner },
    );
    this.ctl = ms.io(
      'fwcfg.ctl',
      2,
      {
        read: () => 0,
        write: (_off, v) => this.select(Number(v) & 0xffff),
        endianness: 'big',
        valid: { accepts: (_off, size, isWrite) => isWrite && size === 2 },
      },
      { owner },
    );
    this.dma = ms.io(
      'fwcfg.dma',
      8,
      {
        read: (off, size) => {
          const v =
            size === 8 ? DMA_SIGNATURE : (DMA_SIGNATURE >> BigInt(8 * (8 - size - off))) & 0xffffffffn;
          return size === 8 ? v : Number(v);
        },
        write: (off, v, size) => {
          const x = BigInt(v);
          if (size === 4 && off === 0) this.dmaAddr = (x & 0xffffffffn) << 32n;
          else if (size === 4 && off === 4) {
            this.dmaAddr |= x & 0xffffffffn;
            this.transfer();
          } else if (size === 8 && off === 0) {
            this.dmaAddr = x;
            this.transfer();
          }
        },
        endianness: 'big',
        valid: {
          maxAccessSize: 8,
          accepts: (off, size) => (size === 4 && (off === 0 || off === 4)) || (size === 8 && off === 0),
        },
        impl: { maxAccessSize: 8 },
      },
      { owner },
    );
  }

  /** The migrated state. */
  saveState(): FwCfgState {
    return { cur: this.cur, offset: this.offset, dmaAddr: this.dmaAddr };
  }

  /** Checks a migrated state. */
  static checkState(s: unknown, device = 'fw_cfg'): FwCfgState {
    const r = new StateReader(device, s);
    return { cur: r.uint('cur', 0xffff), offset: r.uint('offset', 0xffffffff), dmaAddr: r.u64('dmaAddr') };
  }

  /** Loads a checked state. */
  loadState(s: FwCfgState): void {
    this.cur = s.cur;
    this.offset = s.offset;
    this.dmaAddr = s.dmaAddr;
  }

  private select(key: number): void {
    this.offset = 0;
    this.cur = (key & 0x3fff) < 0x40 ? key : FW_CFG_INVALID;
  }

  private item(): Uint8Array | undefined {
    return this.cur === FW_CFG_INVALID ? undefined : this.items.get(this.cur & 0x3fff);
  }

  /** fw_cfg_data_read: the next bytes of the item as a big-endian number, zero-padded on the right. */
  private dataRead(size: number): number | bigint {
    const e = this.item();
    let v = 0n;
    let left = size;
    if (e && this.offset < e.length) {
      do {
        v = (v << 8n) | BigInt(e[this.offset++]!);
      } while (--left && this.offset < e.length);
      v <<= BigInt(8 * left);
    }
    return size === 8 ? v : Number(v);
  }

  /** fw_cfg_dma_transfer. */
  private transfer(): void {
    const at = this.dmaAddr;
    this.dmaAddr = 0n;
    const desc = new Uint8Array(16);
    const dv = new DataView(desc.buffer);
    const statusAddr = at;
    if (this.dmaAs.read(at, desc) !== 0) {
      this.writeControl(statusAddr, DMA_CTL_ERROR);
      return;
    }
    let control = dv.getUint32(0, false);
    let length = dv.getUint32(4, false);
    let address = dv.getBigUint64(8, false);
    if (control & DMA_CTL_SELECT) this.select(control >>> 16);
    const read = (control & DMA_CTL_READ) !== 0;
    const write = !read && (control & DMA_CTL_WRITE) !== 0;
    if (!read && !write && !(control & DMA_CTL_SKIP)) length = 0;
    control = 0;
    const e = this.item();
    while (length > 0 && !(control & DMA_CTL_ERROR)) {
      let len: number;
      if (!e || this.offset >= e.length) {
        len = length;
        if (read && this.dmaAs.write(address, new Uint8Array(len)) !== 0) control |= DMA_CTL_ERROR;
        if (write) control |= DMA_CTL_ERROR;
      } else {
        len = Math.min(length, e.length - this.offset);
        if (read && this.dmaAs.write(address, e.subarray(this.offset, this.offset + len)) !== 0) {
          control |= DMA_CTL_ERROR;
        }
        if (write) control |= DMA_CTL_ERROR; // no item of this machine is writable
        this.offset += len;
      }
      address += BigInt(len);
      length -= len;
    }
    this.writeControl(statusAddr, control);
  }

  private writeControl(addr: bigint, control: number): void {
    const b = new Uint8Array(4);
    new DataView(b.buffer).setUint32(0, control, false);
    this.dmaAs.write(addr, b);
  }
}
