/**
 * @module machines/riscv/devices/pflash-cfi01
 * Intel/Sharp CFI flash as QEMU's pflash_cfi01 models it (hw/block/pflash_cfi01.c), with the
 * virt board's parameters (virt_flash_create1): 256 KiB sectors, a 4-byte bank of two 16-bit
 * devices, little-endian, ids 0x89/0x18. The region is a ROM device: in romd mode reads come
 * straight from its RAM; the first write of a command switches it to I/O mode (reads then go
 * through the command state machine: status, device id, CFI query) and READ ARRAY switches back.
 */

import type { IoValue, MemoryRegion, MemorySystem } from '../../../core/index.js';
import { DeviceStateError, StateReader } from './state.js';

/** Version of {@link PflashCfi01.saveState}'s layout. */
export const PFLASH_STATE_VERSION = 1;

/**
 * The flash's migrated state: QEMU's vmstate_pflash (wcycle, cmd, status, counter, and the write
 * buffer while a buffered write is under way) plus the ROM-device mode. The array itself is RAM
 * and travels with the RAM blocks.
 */
export interface PflashState {
  wcycle: number;
  cmd: number;
  status: number;
  counter: number;
  /** Offset of the buffered write's block, -1 when none is under way. */
  blkOffset: number;
  blkBytes: number[];
  romd: boolean;
}

/** Flash parameters (QEMU device properties). */
export interface PflashOptions {
  name: string;
  sectorLength: number;
  blocks: number;
  bankWidth: number;
  deviceWidth: number;
  ident0: number;
  ident1: number;
}

const ctz = (n: number) => 31 - Math.clz32(n & -n);

/** One flash device. */
export class PflashCfi01 {
  readonly region: MemoryRegion;
  private readonly cfi = new Uint8Array(0x52);
  private wcycle = 0;
  private cmd = 0;
  private status = 0x80;
  private counter = 0;
  private blkOffset = -1;
  private readonly blkBytes: Uint8Array;
  private readonly writeblockSize: number;
  private readonly scratch = new Uint8Array(8);
  private readonly o: PflashOptions;
  private readonly maxDeviceWidth: number;

  constructor(
    private readonly ms: MemorySystem,
    o: PflashOptions,
  ) {
    this.o = o;
    this.maxDeviceWidth = o.deviceWidth;
    const total = o.sectorLength * o.blocks;
    this.region = ms.romDevice(
      o.name,
      total,
      {
        readWithAttrs: (off, size, _attrs, out: IoValue) => {
          out.value = this.read(off, size);
          return 0;
        },
        writeWithAttrs: (off, v, size) => {
          this.write(off, Number(BigInt.asUintN(32, BigInt(v))), size);
          return 0;
        },
        endianness: 'native',
      },
      { owner: { name: o.name } },
    );
    this.writeblockSize = this.fillCfiTable();
    this.blkBytes = new Uint8Array(this.writeblockSize);
  }

  /** pflash_cfi01_fill_cfi_table; returns the write-buffer size. */
  private fillCfiTable(): number {
    const o = this.o;
    const t = this.cfi;
    const devices = o.deviceWidth ? o.bankWidth / o.deviceWidth : 1;
    const blocksPerDevice = o.blocks;
    const sectorPerDevice = o.sectorLength / devices;
    const deviceLen = sectorPerDevice * blocksPerDevice;
    t.set([0x51, 0x52, 0x59, 0x01, 0x00, 0x31, 0x00, 0, 0, 0, 0, 0x45, 0x55, 0, 0], 0x10);
    t.set([0x07, 0x07, 0x0a, 0x00, 0x04, 0x04, 0x04, 0x00], 0x1f);
    t[0x27] = ctz(deviceLen);
    t[0x28] = 0x02;
    t[0x29] = 0x00;
    t[0x2a] = o.bankWidth === 1 ? 0x08 : 0x0b;
    t[0x2b] = 0;
    t[0x2c] = 0x01;
    t[0x2d] = (blocksPerDevice - 1) & 0xff;
    t[0x2e] = ((blocksPerDevice - 1) >> 8) & 0xff;
    t[0x2f] = (sectorPerDevice >> 8) & 0xff;
    t[0x30] = (sectorPerDevice >> 16) & 0xff;
    t.set([0x50, 0x52, 0x49, 0x31, 0x30], 0x31);
    t[0x3f] = 0x01;
    let wb = 1 << t[0x2a]!;
    if (devices > 1) wb *= devices;
    return wb;
  }

  /** The migrated state. */
  saveState(): PflashState {
    return {
      wcycle: this.wcycle,
      cmd: this.cmd,
      status: this.status,
      counter: this.counter,
      blkOffset: this.blkOffset,
      blkBytes: [...this.blkBytes],
      romd: this.region.romdMode,
    };
  }

  /** Checks a migrated state against this flash's geometry. */
  checkState(s: unknown, device = this.o.name): PflashState {
    const r = new StateReader(device, s);
    const st: PflashState = {
      wcycle: r.uint('wcycle', 0xff),
      cmd: r.uint('cmd', 0xff),
      status: r.uint('status', 0xff),
      // the buffered write's count runs one below zero after its last word
      counter: r.int('counter', -1, 0xffffffff),
      blkOffset: r.int('blkOffset', -1, this.o.sectorLength * this.o.blocks - this.writeblockSize),
      blkBytes: r.uints('blkBytes', this.blkBytes.length, 0xff),
      romd: r.bool('romd'),
    };
    if (st.blkOffset % this.writeblockSize !== 0 && st.blkOffset !== -1) {
      throw new DeviceStateError('corrupt', device, 'blkOffset is not the start of a write block');
    }
    return st;
  }

  /** Loads a checked state. */
  loadState(s: PflashState): void {
    this.wcycle = s.wcycle;
    this.cmd = s.cmd;
    this.status = s.status;
    this.counter = s.counter;
    this.blkOffset = s.blkOffset;
    this.blkBytes.set(s.blkBytes);
    this.region.setRomdMode(s.romd);
  }

  private dataRead(off: number, width: number): number {
    this.ms.readRam(this.region, off, this.scratch.subarray(0, width));
    let v = 0;
    for (let i = width - 1; i >= 0; i--) v = v * 256 + this.scratch[i]!;
    return v;
  }

  private dataWrite(off: number, value: number, width: number): void {
    if (this.blkOffset !== -1) {
      if (off < this.blkOffset || off + width > this.blkOffset + this.writeblockSize) {
        this.status |= 0x10;
        return;
      }
      for (let i = 0; i < width; i++) this.blkBytes[off - this.blkOffset + i] = (value >>> (8 * i)) & 0xff;
      return;
    }
    for (let i = 0; i < width; i++) this.scratch[i] = (value >>> (8 * i)) & 0xff;
    this.ms.writeRam(this.region, off, this.scratch.slice(0, width));
  }

  /** Replicates a device's answer across the bank (the "Replicate responses" loops). */
  private replicate(resp: number): number {
    const { deviceWidth: dw, bankWidth: bw } = this.o;
    let r = resp;
    for (let i = dw; i < bw; i += dw) {
      const bits = 8 * dw;
      const mask = bits >= 32 ? 0xffffffff : (1 << bits) - 1;
      r = (r & ~(mask << (8 * i))) | ((r & mask) << (8 * i));
    }
    return r >>> 0;
  }

  private boff(offset: number): number {
    return offset >> (ctz(this.o.bankWidth) + ctz(this.maxDeviceWidth) - ctz(this.o.deviceWidth));
  }

  private cfiQuery(offset: number): number {
    const b = this.boff(offset);
    if (b >= this.cfi.length) return 0;
    return this.replicate(this.cfi[b]!);
  }

  private devidQuery(offset: number): number {
    const b = this.boff(offset) & 0xff;
    if (b === 0) return this.replicate(this.o.ident0);
    if (b === 1) return this.replicate(this.o.ident1);
    return 0;
  }

  /** pflash_read (I/O mode only: in romd mode the core reads the RAM itself). */
  private read(off: number, width: number): number {
    switch (this.cmd) {
      case 0x00:
        return this.dataRead(off, width);
      case 0x10:
      case 0x20:
      case 0x28:
      case 0x40:
      case 0x50:
      case 0x60:
      case 0x70:
      case 0xe8: {
        let ret = this.status;
        const dw = this.o.deviceWidth;
        if (dw && width > dw) {
          for (let shift = dw * 8; shift + dw * 8 <= width * 8; shift += dw * 8) ret |= this.status << shift;
        }
        return ret >>> 0;
      }
      case 0x90:
      case 0x98: {
        let ret = 0xffffffff;
        const bw = this.o.bankWidth;
        for (let i = 0; i < width; i += bw) {
          const q = this.cmd === 0x90 ? this.devidQuery(off + i * bw) : this.cfiQuery(off + i * bw);
          const bits = bw * 8;
          const mask = bits >= 32 ? 0xffffffff : ((1 << bits) - 1) << (i * 8);
          ret = bits >= 32 ? q : (ret & ~mask) | ((q << (i * 8)) & mask);
        }
        return ret >>> 0;
      }
      default:
        this.wcycle = 0;
        this.cmd = 0;
        return this.dataRead(off, width);
    }
  }

  private readArray(): void {
    this.region.setRomdMode(true);
    this.wcycle = 0;
    this.cmd = 0;
  }

  /** pflash_write: the command state machine. */
  private write(off: number, value: number, width: number): void {
    const cmd = value & 0xff;
    if (this.wcycle === 0) this.region.setRomdMode(false);
    switch (this.wcycle) {
      case 0:
        switch (cmd) {
          case 0x00:
          case 0xf0:
          case 0xff:
            this.readArray();
            return;
          case 0x10:
          case 0x40:
          case 0x60:
          case 0x98:
            break;
          case 0x20: {
            const s = off & ~(this.o.sectorLength - 1);
            this.ms.writeRam(this.region, s, new Uint8Array(this.o.sectorLength).fill(0xff));
            this.status |= 0x80;
            break;
          }
          case 0x50:
            this.status = 0;
            this.readArray();
            return;
          case 0x70:
          case 0x90:
            this.cmd = cmd;
            return;
          case 0xe8:
            this.status |= 0x80;
            break;
          default:
            this.readArray();
            return;
        }
        this.wcycle++;
        this.cmd = cmd;
        return;
      case 1:
        switch (this.cmd) {
          case 0x10:
          case 0x40:
            this.dataWrite(off, value, width);
            this.status |= 0x80;
            this.wcycle = 0;
            return;
          case 0x20:
          case 0x28:
            if (cmd === 0xd0) {
              this.wcycle = 0;
              this.status |= 0x80;
              return;
            }
            this.readArray();
            return;
          case 0xe8: {
            const dw = this.o.deviceWidth || this.o.bankWidth;
            this.counter = dw >= 4 ? value >>> 0 : value & ((1 << (dw * 8)) - 1);
            this.wcycle++;
            this.blkOffset = off & ~(this.writeblockSize - 1);
            this.ms.readRam(this.region, this.blkOffset, this.blkBytes);
            return;
          }
          case 0x60:
            if (cmd === 0xd0 || cmd === 0x01) {
              this.wcycle = 0;
              this.status |= 0x80;
              return;
            }
            this.readArray();
            return;
          case 0x98:
            if (cmd === 0xff) {
              this.readArray();
              return;
            }
            return;
          default:
            this.readArray();
            return;
        }
      case 2:
        if (this.cmd !== 0xe8) {
          this.readArray();
          return;
        }
        if (this.blkOffset !== -1) this.dataWrite(off, value, width);
        else this.status |= 0x10;
        this.status |= 0x80;
        if (!this.counter) this.wcycle++;
        this.counter--;
        return;
      case 3:
        if (this.cmd === 0xe8 && cmd === 0xd0 && !(this.status & 0x10)) {
          this.ms.writeRam(this.region, this.blkOffset, this.blkBytes.slice());
          this.blkOffset = -1;
          this.wcycle = 0;
          this.status |= 0x80;
          return;
        }
        this.blkOffset = -1;
        this.readArray();
        return;
      default:
        this.readArray();
        return;
    }
  }
}
