/**
 * @module machines/riscv/devices/aclint
 * The ACLINT of QEMU's virt board in its SiFive CLINT layout (hw/intc/riscv_aclint.c): an MSWI
 * block of one 32-bit `msip` word per hart (region `riscv.aclint.swi`, 16 KiB) followed by an
 * MTIMER block (region `riscv.aclint.mtimer`, 32 KiB) with one 64-bit `mtimecmp` per hart at 0 and
 * `mtime` at 0x7ff8. The timebase is QEMU's 10 MHz; mtime is derived from the machine's
 * {@link VirtualClock}.
 */

import type { MemoryRegion, MemorySystem } from '../../../core/index.js';
import type { HartTimer } from '../cpu/hart.js';
import type { VirtualClock } from './clock.js';
import type { IrqLine } from './irq.js';
import { StateReader } from './state.js';

/** Version of {@link AclintSwi.saveState}'s layout. */
export const ACLINT_SWI_STATE_VERSION = 1;
/** Version of {@link AclintMtimer.saveState}'s layout. */
export const ACLINT_MTIMER_STATE_VERSION = 1;

/** The MSWI block's migrated state: `msip` of each hart. */
export interface AclintSwiState {
  msip: number[];
}

/** The MTIMER block's migrated state (QEMU vmstate_riscv_mtimer: timecmp, time_delta, timers). */
export interface AclintMtimerState {
  timecmp: bigint[];
  timeDelta: bigint;
  /** Each hart's timer deadline (virtual ns), null when not armed. */
  timers: Array<number | null>;
}

/** QEMU RISCV_ACLINT_SWI_SIZE. */
export const ACLINT_SWI_SIZE = 0x4000;
/** QEMU RISCV_ACLINT_DEFAULT_MTIMER_SIZE. */
export const ACLINT_MTIMER_SIZE = 0x8000;
/** QEMU RISCV_ACLINT_DEFAULT_MTIME: offset of mtime in the MTIMER block. */
export const ACLINT_MTIME = 0x7ff8;
/** QEMU RISCV_ACLINT_DEFAULT_TIMEBASE_FREQ (Hz). */
export const TIMEBASE_FREQ = 10_000_000;
const NS_PER_TICK = 1e9 / TIMEBASE_FREQ;
const U64 = (1n << 64n) - 1n;
const U32 = 0xffffffffn;

/** The MSWI block: `msip` per hart drives the hart's MSIP line (riscv_aclint_swi_read/write). */
export class AclintSwi {
  readonly region: MemoryRegion;
  private readonly msip: Uint8Array;

  constructor(
    ms: MemorySystem,
    private readonly irqs: IrqLine[],
  ) {
    this.msip = new Uint8Array(irqs.length);
    this.region = ms.io(
      'riscv.aclint.swi',
      ACLINT_SWI_SIZE,
      {
        read: (off) => (off < irqs.length * 4 && (off & 3) === 0 ? this.msip[off >> 2]! : 0),
        write: (off, value) => {
          if (off >= irqs.length * 4 || (off & 3) !== 0) return;
          const h = off >> 2;
          this.msip[h] = Number(value) & 1;
          irqs[h]!(this.msip[h] === 1);
        },
        endianness: 'little',
        valid: { minAccessSize: 4, maxAccessSize: 4 },
      },
      { owner: { name: 'riscv.aclint.swi' } },
    );
  }

  /** The migrated state. */
  saveState(): AclintSwiState {
    return { msip: [...this.msip] };
  }

  /** Checks a migrated state against this machine's hart count. */
  checkState(s: unknown, device = 'aclint-swi'): AclintSwiState {
    return { msip: new StateReader(device, s).uints('msip', this.msip.length, 1) };
  }

  /** Loads a checked state; the MSIP levels themselves travel in the harts' mip. */
  loadState(s: AclintSwiState): void {
    this.msip.set(s.msip);
  }

  /** Device reset: the MSIP lines are low (mip is cleared by the hart's own reset). */
  reset(): void {
    this.msip.fill(0);
    for (const irq of this.irqs) irq(false);
  }
}

/** The MTIMER block: mtime and one mtimecmp per hart, driving the harts' MTIP lines. */
export class AclintMtimer {
  readonly region: MemoryRegion;
  private readonly timecmp: bigint[];
  private readonly timerIds: object[];
  /** QEMU's `time_delta`: mtime minus the clock's tick count, changed by writes to mtime. */
  private timeDelta = 0n;

  constructor(
    ms: MemorySystem,
    private readonly clock: VirtualClock,
    private readonly irqs: IrqLine[],
  ) {
    this.timecmp = irqs.map(() => 0n);
    this.timerIds = irqs.map(() => ({}));
    this.region = ms.io(
      'riscv.aclint.mtimer',
      ACLINT_MTIMER_SIZE,
      {
        read: (off, size) => this.read(off, size),
        write: (off, value, size) => this.write(off, BigInt(value), size),
        endianness: 'little',
        valid: { minAccessSize: 4, maxAccessSize: 8 },
        impl: { minAccessSize: 4, maxAccessSize: 8 },
      },
      { owner: { name: 'riscv.aclint.mtimer' } },
    );
  }

  /** The current mtime (QEMU cpu_riscv_read_rtc): 10 MHz ticks of the virtual clock plus the delta. */
  mtime(): bigint {
    return BigInt.asUintN(64, BigInt(Math.floor(this.clock.ns / NS_PER_TICK)) + this.timeDelta);
  }

  private read(off: number, size: number): number | bigint {
    const n = this.irqs.length;
    if (off < n * 8) {
      const cmp = this.timecmp[off >> 3]!;
      if ((off & 7) === 0) return size === 4 ? Number(cmp & U32) : cmp;
      if ((off & 7) === 4) return Number(cmp >> 32n);
      return 0;
    }
    if (off === ACLINT_MTIME) {
      const t = this.mtime();
      return size === 4 ? Number(t & U32) : t;
    }
    if (off === ACLINT_MTIME + 4) return Number(this.mtime() >> 32n);
    return 0;
  }

  private write(off: number, value: bigint, size: number): void {
    const n = this.irqs.length;
    if (off < n * 8) {
      const h = off >> 3;
      const old = this.timecmp[h]!;
      if ((off & 7) === 0) {
        this.writeTimecmp(h, size === 4 ? (old & ~U32) | (value & U32) : value & U64);
      } else if ((off & 7) === 4 && size === 4) {
        this.writeTimecmp(h, ((value & U32) << 32n) | (old & U32));
      }
      return;
    }
    if (off === ACLINT_MTIME || off === ACLINT_MTIME + 4) {
      const raw = BigInt(Math.floor(this.clock.ns / NS_PER_TICK));
      const rtc = this.mtime();
      let t: bigint;
      if (off === ACLINT_MTIME) t = size === 4 ? (rtc & ~U32) | (value & U32) : value;
      else if (size === 4) t = ((value & U32) << 32n) | (rtc & U32);
      else return; // QEMU ignores an 8-byte write to time_hi
      this.timeDelta = BigInt.asUintN(64, t - raw);
      for (let h = 0; h < n; h++) this.writeTimecmp(h, this.timecmp[h]!);
    }
  }

  /**
   * QEMU riscv_aclint_mtimer_write_timecmp: a compare value already reached raises MTIP at once;
   * otherwise MTIP drops and a timer raises it when mtime gets there.
   */
  private writeTimecmp(h: number, value: bigint): void {
    this.timecmp[h] = value;
    const rtc = this.mtime();
    if (value <= rtc) {
      this.clock.del(this.timerIds[h]!);
      this.irqs[h]!(true);
      return;
    }
    this.irqs[h]!(false);
    // QEMU arms the timer at now + diff ticks in ns, from the current (unrounded) time.
    const due = this.clock.ns + Number(value - rtc) * NS_PER_TICK;
    if (due < 2 ** 62) this.clock.mod(this.timerIds[h]!, due, () => this.fire(h));
    else this.clock.del(this.timerIds[h]!);
  }

  private fire(h: number): void {
    if (this.timecmp[h]! <= this.mtime()) this.irqs[h]!(true);
    else this.writeTimecmp(h, this.timecmp[h]!);
  }

  /** The migrated state, timer deadlines included, so the destination fires them when this one would. */
  saveState(): AclintMtimerState {
    return {
      timecmp: [...this.timecmp],
      timeDelta: this.timeDelta,
      timers: this.timerIds.map((id) => this.clock.deadline(id)),
    };
  }

  /** Checks a migrated state against this machine's hart count. */
  checkState(s: unknown, device = 'aclint-mtimer'): AclintMtimerState {
    const r = new StateReader(device, s);
    const n = this.timecmp.length;
    return { timecmp: r.u64s('timecmp', n), timeDelta: r.u64('timeDelta'), timers: r.deadlines('timers', n) };
  }

  /** Loads a checked state (after the clock's) and re-arms the timers at their deadlines. */
  loadState(s: AclintMtimerState): void {
    this.timeDelta = s.timeDelta;
    s.timecmp.forEach((v, h) => {
      this.timecmp[h] = v;
      const at = s.timers[h];
      if (at === null || at === undefined) this.clock.del(this.timerIds[h]!);
      else this.clock.mod(this.timerIds[h]!, at, () => this.fire(h));
    });
  }

  /** Device reset (riscv_aclint_mtimer_reset_enter): mtime is written 0, which re-evaluates every timer. */
  reset(): void {
    this.write(ACLINT_MTIME, 0n, 8);
  }
}

/**
 * A hart's Sstc timer (QEMU's `env->stimer`) on the machine's clock, in the ticks of the MTIMER's
 * time base: riscv_timer_write_timecmp turns the ticks still to go into a deadline of the virtual
 * clock, as {@link AclintMtimer} does for mtimecmp.
 */
export class AclintHartTimer implements HartTimer {
  private readonly id = {};

  /** `mtime` reads the MTIMER's time (the hart's `time`). */
  constructor(
    private readonly clock: VirtualClock,
    private readonly mtime: () => bigint,
  ) {}

  arm(ticks: bigint, fire: () => void): void {
    const rtc = this.mtime();
    const due = ticks <= rtc ? this.clock.ns : this.clock.ns + Number(ticks - rtc) * NS_PER_TICK;
    // QEMU caps a deadline that far at INT64_MAX ns: never
    if (due < 2 ** 62) this.clock.mod(this.id, due, fire);
    else this.clock.del(this.id);
  }

  deadline(): number | null {
    return this.clock.deadline(this.id);
  }

  restore(deadline: number | null, fire: () => void): void {
    if (deadline === null) this.clock.del(this.id);
    else this.clock.mod(this.id, deadline, fire);
  }
}
