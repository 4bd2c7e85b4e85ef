/**
 * A minimal stand-in for QEMU's riscv64 `virt` board, only for the hart's own tests: RAM at
 * 0x80000000, the reset-vector ROM at 0x1000 (the code riscv_setup_rom_reset_vec writes), an
 * ns16550a-like UART at 0x10000000 (transmit only), a CLINT at 0x2000000, sifive_test at 0x100000,
 * and a catch-all I/O region over the rest of the low 2 GiB that reads 0 (for the PLIC and the
 * devices OpenSBI probes but does not need). The real machine is src/machines/riscv/virt.ts.
 */

import { CpuAccess, MemorySystem } from '../../../../core/index.js';
import type { Bus } from '../bus.js';
import { type HartTimer, RiscvHart } from '../hart.js';

/** A running stand-in machine. */
export interface MiniMachine {
  hart: RiscvHart;
  bus: Bus;
  /** Everything the guest wrote to the UART. */
  uart(): string;
  /** Exit code written to sifive_test (0x5555 pass → 0, 0x3333 fail → code), or null while running. */
  exitCode(): number | null;
  /** Runs until `until()` is true, power-off, or `limit` instructions; returns instructions run. */
  run(limit: number, until?: () => boolean): number;
  /** Writes bytes into RAM/ROM through the address space (as a loader would). */
  load(addr: number, data: Uint8Array): void;
  mtime(): bigint;
}

export const RAM_BASE = 0x80000000;

/** Builds the stand-in; `ramSize` bytes of RAM. */
export function miniMachine(ramSize = 128 * 2 ** 20): MiniMachine {
  const ms = new MemorySystem();
  const system = ms.container('system', 2n ** 64n - 1n);
  let out = '';
  let exit: number | null = null;
  let mtime = 0n;
  let mtimecmp = (1n << 64n) - 1n;
  let msip = 0;
  let hart: RiscvHart;
  // Sstc's timer: fires once when mtime reaches the armed tick count (deadlines are in ticks)
  let stimerAt: bigint | null = null;
  let stimerFire = () => {};
  const stimer: HartTimer = {
    arm(ticks, fire) {
      stimerAt = ticks;
      stimerFire = fire;
    },
    deadline: () => (stimerAt === null ? null : Number(stimerAt)),
    restore(deadline, fire) {
      stimerAt = deadline === null ? null : BigInt(deadline);
      stimerFire = fire;
    },
  };
  const timerIrq = () => {
    hart.setIrq(7, mtime >= mtimecmp);
    if (stimerAt !== null && mtime >= stimerAt) {
      stimerAt = null;
      stimerFire();
    }
  };
  ms.transaction(() => {
    system.addSubregion(RAM_BASE, ms.ram('riscv_virt_board.ram', ramSize));
    system.addSubregion(0x1000, ms.rom('riscv_virt_board.mrom', 0xf000));
    system.addSubregionOverlap(
      0,
      ms.io('background', 0x80000000, { read: () => 0, write: () => {}, endianness: 'little' }),
      -1,
    );
    system.addSubregion(
      0x10000000,
      ms.io('serial', 0x100, {
        read: (off) => (off === 5 ? 0x60 : 0),
        write: (off, v) => {
          if (off === 0) out += String.fromCharCode(Number(v) & 0xff);
        },
        endianness: 'little',
        valid: { minAccessSize: 1, maxAccessSize: 1 },
      }),
    );
    system.addSubregion(
      0x100000,
      ms.io('sifive_test', 0x1000, {
        read: () => 0,
        write: (off, v) => {
          const n = Number(v);
          if (off !== 0) return;
          if ((n & 0xffff) === 0x5555) exit = 0;
          else if ((n & 0xffff) === 0x3333) exit = n >>> 16;
        },
        endianness: 'little',
        valid: { minAccessSize: 2, maxAccessSize: 4 },
      }),
    );
    system.addSubregion(
      0x2000000,
      ms.io('clint', 0x10000, {
        read: (off, size) => {
          let v = 0n;
          if (off === 0) v = BigInt(msip);
          else if (off >= 0x4000 && off < 0x4008) v = mtimecmp >> BigInt(8 * (off - 0x4000));
          else if (off >= 0xbff8) v = mtime >> BigInt(8 * (off - 0xbff8));
          return size === 8 ? BigInt.asUintN(64, v) : Number(BigInt.asUintN(8 * size, v));
        },
        write: (off, value, size) => {
          const v = BigInt(value);
          if (off === 0) {
            msip = Number(v & 1n);
            hart.setIrq(3, msip !== 0);
          } else if (off >= 0x4000 && off < 0x4008) {
            const sh = BigInt(8 * (off - 0x4000));
            const mask = ((1n << BigInt(8 * size)) - 1n) << sh;
            mtimecmp = (mtimecmp & ~mask) | ((v << sh) & mask);
            timerIrq();
          }
        },
        endianness: 'little',
        valid: { minAccessSize: 4, maxAccessSize: 8 },
        impl: { minAccessSize: 4, maxAccessSize: 8 },
      }),
    );
  });
  const as = ms.addressSpace(system, 'cpu-memory-0');
  const bus = new CpuAccess(as);
  hart = new RiscvHart({ hartId: 0, bus, resetPc: 0x1000, readTime: () => mtime, stimer });
  return {
    hart,
    bus,
    uart: () => out,
    exitCode: () => exit,
    mtime: () => mtime,
    load(addr, data) {
      as.writeRom(addr, data);
    },
    run(limit, until) {
      let n = 0;
      while (n < limit && exit === null && !(until?.() ?? false)) {
        const k = hart.run(Math.min(1000, limit - n));
        n += k;
        // 10 MHz timebase at an assumed 100 instructions per microsecond... any monotonic clock will do
        mtime += k === 0 ? 1000n : BigInt(Math.max(1, k >> 4));
        timerIrq();
      }
      return n;
    },
  };
}
