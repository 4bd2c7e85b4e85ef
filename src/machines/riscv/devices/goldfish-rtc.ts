/**
 * @module machines/riscv/devices/goldfish-rtc
 * The Goldfish RTC (hw/rtc/goldfish_rtc.c): region `goldfish_rtc`, 0x24 bytes, little-endian,
 * 4-byte accesses only. The count is nanoseconds since the epoch: the wall-clock time given when
 * the machine was built plus the machine's virtual time (QEMU: host time, read at realize, plus
 * rtc_clock). Reading TIME_LOW latches the high half for TIME_HIGH.
 */

import type { MemoryRegion, MemorySystem } from '../../../core/index.js';
import type { VirtualClock } from './clock.js';
import type { IrqLine } from './irq.js';
import { StateReader } from './state.js';

/** Version of {@link GoldfishRtc.saveState}'s layout. */
export const RTC_STATE_VERSION = 1;

/** The RTC's migrated state (QEMU vmstate_goldfish_rtc). */
export interface RtcState {
  /** The count (ns since the epoch) at the moment of saving, as goldfish_rtc_pre_save stores it. */
  count: bigint;
  timeHigh: number;
  alarmNext: bigint;
  alarmRunning: number;
  irqPending: number;
  irqEnabled: number;
  /** The alarm timer's deadline (virtual ns), null when not armed. */
  alarm: number | null;
}

const M32 = 0xffffffffn;

/** The RTC. */
export class GoldfishRtc {
  readonly region: MemoryRegion;
  private tickOffset: bigint;
  private timeHigh = 0;
  private alarmNext = 0n;
  private alarmRunning = 0;
  private irqPending = 0;
  private irqEnabled = 0;
  private readonly timer = {};

  constructor(
    ms: MemorySystem,
    private readonly clock: VirtualClock,
    private readonly irq: IrqLine,
    /** Nanoseconds since the epoch at virtual time 0. */
    epochNs: bigint,
  ) {
    this.tickOffset = epochNs;
    this.region = ms.io(
      'goldfish_rtc',
      0x24,
      {
        read: (off) => this.read(off),
        write: (off, v) => this.write(off, BigInt(v) & M32),
        endianness: 'little',
        valid: { minAccessSize: 4, maxAccessSize: 4 },
      },
      { owner: { name: 'goldfish_rtc' } },
    );
  }

  private count(): bigint {
    return BigInt.asUintN(64, this.tickOffset + BigInt(Math.floor(this.clock.ns)));
  }

  private read(off: number): number {
    switch (off) {
      case 0x00: {
        const r = this.count();
        this.timeHigh = Number(r >> 32n);
        return Number(r & M32);
      }
      case 0x04:
        return this.timeHigh;
      case 0x08:
        return Number(this.alarmNext & M32);
      case 0x0c:
        return Number(this.alarmNext >> 32n);
      case 0x10:
        return this.irqEnabled;
      case 0x18:
        return this.alarmRunning;
      default:
        return 0;
    }
  }

  private write(off: number, v: bigint): void {
    switch (off) {
      case 0x00: {
        const cur = this.count();
        this.tickOffset += ((cur & ~M32) | v) - cur;
        break;
      }
      case 0x04: {
        const cur = this.count();
        this.tickOffset += ((cur & M32) | (v << 32n)) - cur;
        break;
      }
      case 0x08:
        this.alarmNext = (this.alarmNext & ~M32) | v;
        this.setAlarm();
        break;
      case 0x0c:
        this.alarmNext = (this.alarmNext & M32) | (v << 32n);
        break;
      case 0x10:
        this.irqEnabled = Number(v & 1n);
        this.update();
        break;
      case 0x14:
        this.clearAlarm();
        break;
      case 0x1c:
        this.irqPending = 0;
        this.update();
        break;
      default:
        break;
    }
  }

  private update(): void {
    this.irq((this.irqPending & this.irqEnabled) !== 0);
  }

  private interrupt(): void {
    this.alarmRunning = 0;
    this.irqPending = 1;
    this.update();
  }

  private clearAlarm(): void {
    this.clock.del(this.timer);
    this.alarmRunning = 0;
  }

  /** goldfish_rtc_set_alarm: an alarm in the past fires now, else when the count gets there. */
  private setAlarm(): void {
    const ticks = this.count();
    if (this.alarmNext <= ticks) {
      this.clearAlarm();
      this.interrupt();
    } else {
      this.clock.mod(this.timer, this.clock.ns + Number(this.alarmNext - ticks), () => this.interrupt());
      this.alarmRunning = 1;
    }
  }

  /** The migrated state. */
  saveState(): RtcState {
    return {
      count: this.count(),
      timeHigh: this.timeHigh,
      alarmNext: this.alarmNext,
      alarmRunning: this.alarmRunning,
      irqPending: this.irqPending,
      irqEnabled: this.irqEnabled,
      alarm: this.clock.deadline(this.timer),
    };
  }

  /** Checks a migrated state. */
  static checkState(s: unknown, device = 'goldfish_rtc'): RtcState {
    const r = new StateReader(device, s);
    return {
      count: r.u64('count'),
      timeHigh: r.uint('timeHigh', 0xffffffff),
      alarmNext: r.u64('alarmNext'),
      alarmRunning: r.uint('alarmRunning', 1),
      irqPending: r.uint('irqPending', 1),
      irqEnabled: r.uint('irqEnabled', 1),
      alarm: r.deadline('alarm'),
    };
  }

  /**
   * Loads a checked state (after the clock's): the count goes on from the saved one, as QEMU's
   * goldfish_rtc_post_load derives tick_offset from it and the clock; the alarm is re-armed.
   */
  loadState(s: RtcState): void {
    this.tickOffset = s.count - BigInt(Math.floor(this.clock.ns));
    this.timeHigh = s.timeHigh;
    this.alarmNext = s.alarmNext;
    this.alarmRunning = s.alarmRunning;
    this.irqPending = s.irqPending;
    this.irqEnabled = s.irqEnabled;
    if (s.alarm === null) this.clock.del(this.timer);
    else this.clock.mod(this.timer, s.alarm, () => this.interrupt());
  }

  /** Device reset (goldfish_rtc_reset): the count keeps running. */
  reset(): void {
    this.clock.del(this.timer);
    this.alarmNext = 0n;
    this.alarmRunning = 0;
    this.irqPending = 0;
    this.irqEnabled = 0;
  }
}
