/**
 * @module machines/riscv/cpu/hart
 * An RV64GC hart (skeleton: the API the virt machine builds on; the interpreter follows).
 */

import type { Bus } from './bus.js';

/** How a hart is built. */
export interface HartOptions {
  /** Value of `mhartid`. */
  hartId: number;
  /** Physical memory: every fetch, load, store and page-table walk goes through it. */
  bus: Bus;
  /** Address of the first instruction after reset. */
  resetPc: number;
  /** Reads the ACLINT mtime for the `time` CSR. */
  readTime: () => bigint;
  /** Floating-point extensions (both on by default). */
  isa?: { f: boolean; d: boolean };
}

/** One RV64GC hart. */
export class RiscvHart {
  /** Value of `mhartid`. */
  readonly hartId: number;
  /** The ISA string this hart implements, for the device tree. */
  readonly isaString: string;
  private pc = 0;
  private readonly xl = new Int32Array(32);
  private readonly xh = new Int32Array(32);
  private wfi = false;
  private readonly opts: HartOptions;

  constructor(o: HartOptions) {
    this.opts = o;
    this.hartId = o.hartId;
    this.isaString = 'rv64imafdc';
    this.reset();
  }

  /** True while the hart idles in WFI with no interrupt pending. */
  get waitingForInterrupt(): boolean {
    return this.wfi;
  }

  /** Executes up to `n` instructions; returns how many ran. */
  run(n: number): number {
    return n - n;
  }

  /** Drives an external interrupt line of `mip`. */
  setIrq(bit: number, level: boolean): void {
    void bit;
    void level;
  }

  /** Resets the hart. */
  reset(): void {
    this.pc = this.opts.resetPc;
    this.xl.fill(0);
    this.xh.fill(0);
    this.wfi = false;
  }

  /** Current pc. */
  getPc(): bigint {
    return BigInt(this.pc);
  }
  /** Sets the pc. */
  setPc(pc: bigint): void {
    this.pc = Number(BigInt.asIntN(64, pc));
  }
  /** Reads x`i`. */
  getReg(i: number): bigint {
    return (BigInt(this.xh[i]!) << 32n) | BigInt(this.xl[i]! >>> 0);
  }
  /** Writes x`i` (x0 stays zero). */
  setReg(i: number, v: bigint): void {
    if (i === 0) return;
    this.xl[i] = Number(BigInt.asIntN(32, v));
    this.xh[i] = Number(BigInt.asIntN(32, v >> 32n));
  }
  /** Plain-object snapshot of the hart's state. */
  saveState(): object {
    return { pc: this.pc, xl: [...this.xl], xh: [...this.xh] };
  }
  /** Restores a snapshot made by {@link saveState}. */
  loadState(s: object): void {
    void s;
  }
}
