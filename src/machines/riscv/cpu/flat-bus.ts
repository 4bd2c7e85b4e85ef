/**
 * @module machines/riscv/cpu/flat-bus
 * A hand-written {@link Bus} over one flat typed array of RAM, with a linear search over device
 * windows for everything else: the baseline that the bench row `guest-bus-memtree-vs-flat`
 * compares memtree's address space with (same hart, same guest). It models no region tree,
 * aliases, dirty tracking or access-size adaptation; devices get the guest's access as it is.
 */

import type { Bus } from './bus.js';

/** A device window of a {@link FlatBus}. */
export interface FlatDevice {
  /** Guest physical base address. */
  base: number;
  /** Size in bytes. */
  size: number;
  /** Reads `size` bytes at `offset` (an 8-byte read may return a bigint). */
  read(offset: number, size: number): number | bigint;
  /** Writes `size` bytes at `offset` (8-byte writes pass a bigint). */
  write(offset: number, value: number | bigint, size: number): void;
  /** Stores are dropped, as a CPU's stores to ROM are (e.g. the reset-vector ROM). */
  readonly?: boolean;
}

/** MEMTX_DECODE_ERROR: nothing at the address. */
const DECODE_ERROR = 2;

/** RAM in one typed array at `ramBase`, devices in a list. */
export class FlatBus implements Bus {
  /** The RAM, for loaders. */
  readonly ram: Uint8Array;
  private readonly u16: Uint16Array;
  private readonly u32: Uint32Array;
  private readonly u64: BigUint64Array;
  private readonly dv: DataView;
  private readonly base: number;
  private readonly size: number;
  private res = 0;

  constructor(
    ramBase: number,
    ramSize: number,
    private readonly devices: FlatDevice[] = [],
  ) {
    this.base = ramBase;
    this.size = ramSize;
    this.ram = new Uint8Array(ramSize);
    this.u16 = new Uint16Array(this.ram.buffer);
    this.u32 = new Uint32Array(this.ram.buffer);
    this.u64 = new BigUint64Array(this.ram.buffer);
    this.dv = new DataView(this.ram.buffer);
  }

  /** Result of the last access. */
  get lastResult(): number {
    return this.res;
  }

  private dev(addr: number, size: number): FlatDevice | undefined {
    for (const d of this.devices) if (addr >= d.base && addr + size <= d.base + d.size) return d;
    this.res = DECODE_ERROR;
    return undefined;
  }

  private rd(addr: number, size: number): number {
    const d = this.dev(addr, size);
    if (!d) return 0;
    this.res = 0;
    return Number(d.read(addr - d.base, size));
  }

  private wr(addr: number, v: number | bigint, size: number): void {
    const d = this.dev(addr, size);
    if (!d) return;
    this.res = 0;
    if (!d.readonly) d.write(addr - d.base, v, size);
  }

  ldub(addr: number): number {
    const o = addr - this.base;
    if (o >= 0 && o < this.size) {
      this.res = 0;
      return this.ram[o]!;
    }
    return this.rd(addr, 1);
  }
  lduwLe(addr: number): number {
    const o = addr - this.base;
    if (o >= 0 && o <= this.size - 2) {
      this.res = 0;
      return (o & 1) === 0 ? this.u16[o >> 1]! : this.dv.getUint16(o, true);
    }
    return this.rd(addr, 2);
  }
  ldlLe(addr: number): number {
    const o = addr - this.base;
    if (o >= 0 && o <= this.size - 4) {
      this.res = 0;
      return (o & 3) === 0 ? this.u32[o >> 2]! : this.dv.getUint32(o, true);
    }
    return this.rd(addr, 4) >>> 0;
  }
  ldqLe(addr: number): bigint {
    const o = addr - this.base;
    if (o >= 0 && o <= this.size - 8) {
      this.res = 0;
      return (o & 7) === 0 ? this.u64[o >> 3]! : this.dv.getBigUint64(o, true);
    }
    const d = this.dev(addr, 8);
    if (!d) return 0n;
    this.res = 0;
    return BigInt.asUintN(64, BigInt(d.read(addr - d.base, 8)));
  }
  stb(addr: number, v: number): void {
    const o = addr - this.base;
    if (o >= 0 && o < this.size) {
      this.res = 0;
      this.ram[o] = v;
      return;
    }
    this.wr(addr, v & 0xff, 1);
  }
  stwLe(addr: number, v: number): void {
    const o = addr - this.base;
    if (o >= 0 && o <= this.size - 2) {
      this.res = 0;
      if ((o & 1) === 0) this.u16[o >> 1] = v;
      else this.dv.setUint16(o, v, true);
      return;
    }
    this.wr(addr, v & 0xffff, 2);
  }
  stlLe(addr: number, v: number): void {
    const o = addr - this.base;
    if (o >= 0 && o <= this.size - 4) {
      this.res = 0;
      if ((o & 3) === 0) this.u32[o >> 2] = v;
      else this.dv.setUint32(o, v, true);
      return;
    }
    this.wr(addr, v >>> 0, 4);
  }
  stqLe(addr: number, v: bigint): void {
    const o = addr - this.base;
    if (o >= 0 && o <= this.size - 8) {
      this.res = 0;
      if ((o & 7) === 0) this.u64[o >> 3] = v;
      else this.dv.setBigUint64(o, v, true);
      return;
    }
    this.wr(addr, BigInt.asUintN(64, v), 8);
  }
}
