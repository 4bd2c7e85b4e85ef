/**
 * @module machines/riscv/devices/serial
 * The ns16550a UART of QEMU's virt board (hw/char/serial.c, serial_mm_init with regshift 0 and
 * baudbase 399193): region `serial`, 8 byte registers, little-endian; any access of 1..8 bytes
 * reaches the register at its offset as one byte access (serial_mm_read/write). Transmission is
 * immediate (the sink never refuses a byte), so THRE is set again as soon as THR is written, as
 * QEMU does with a chardev that accepts everything. Received bytes wait in the machine's input
 * queue until the UART can take them (serial_can_receive).
 */

import type { MemoryRegion, MemorySystem } from '../../../core/index.js';
import type { VirtualClock } from './clock.js';
import type { IrqLine } from './irq.js';
import { StateReader } from './state.js';

/** Version of {@link Serial16550.saveState}'s layout. */
export const SERIAL_STATE_VERSION = 1;

/** The UART's migrated state: its registers, receive FIFO and character-timeout timer. */
export interface SerialState {
  rbr: number;
  ier: number;
  iir: number;
  lcr: number;
  mcr: number;
  lsr: number;
  msr: number;
  scr: number;
  fcr: number;
  divider: number;
  thrIpending: boolean;
  timeoutIpending: boolean;
  recv: number[];
  /** The character-timeout timer's deadline (virtual ns), null when not armed. */
  timeout: number | null;
}

const LSR_DR = 0x01;
const LSR_OE = 0x02;
const LSR_BI = 0x10;
const LSR_THRE = 0x20;
const LSR_TEMT = 0x40;
const LSR_INT_ANY = 0x1e;
const IER_RDI = 0x01;
const IER_THRI = 0x02;
const IER_RLSI = 0x04;
const IER_MSI = 0x08;
const IIR_NO_INT = 0x01;
const IIR_THRI = 0x02;
const IIR_RDI = 0x04;
const IIR_RLSI = 0x06;
const IIR_CTI = 0x0c;
const IIR_MSI = 0x00;
const IIR_ID = 0x06;
const IIR_FE = 0xc0;
const FCR_FE = 0x01;
const FCR_RFR = 0x02;
const FCR_XFR = 0x04;
const LCR_DLAB = 0x80;
const MCR_LOOP = 0x10;
const MCR_OUT2 = 0x08;
const MSR_DCD = 0x80;
const MSR_DSR = 0x20;
const MSR_CTS = 0x10;
const MSR_ANY_DELTA = 0x0f;
const FIFO_LENGTH = 16;

/** One 16550A. */
export class Serial16550 {
  readonly region: MemoryRegion;
  private rbr = 0;
  private ier = 0;
  private iir = IIR_NO_INT;
  private lcr = 0;
  private mcr = MCR_OUT2;
  private lsr = LSR_TEMT | LSR_THRE;
  private msr = MSR_DCD | MSR_DSR | MSR_CTS;
  private scr = 0;
  private fcr = 0;
  private divider = 0x0c;
  private thrIpending = false;
  private timeoutIpending = false;
  private recvItl = 1;
  private readonly recv: number[] = [];
  private charTransmitNs = 0;
  private readonly timeoutTimer = {};

  constructor(
    ms: MemorySystem,
    private readonly clock: VirtualClock,
    private readonly irq: IrqLine,
    /** Where transmitted bytes go. */
    private readonly sink: (byte: number) => void,
    private readonly baudbase = 399193,
  ) {
    this.region = ms.io(
      'serial',
      8,
      {
        read: (off) => this.ioRead(off & 7),
        write: (off, v) => this.ioWrite(off & 7, Number(BigInt.asUintN(8, BigInt(v)))),
        endianness: 'little',
        valid: { maxAccessSize: 8 },
        impl: { maxAccessSize: 8 },
      },
      { owner: { name: 'serial' } },
    );
    this.reset();
  }

  /** How many bytes the UART takes now (serial_can_receive). */
  canReceive(): number {
    if (this.fcr & FCR_FE) {
      if (this.recv.length >= FIFO_LENGTH) return 0;
      return this.recv.length <= this.recvItl ? this.recvItl - this.recv.length : 1;
    }
    return this.lsr & LSR_DR ? 0 : 1;
  }

  /** Delivers received bytes (serial_receive1); call only with at most {@link canReceive} bytes. */
  receive(bytes: ArrayLike<number>): void {
    if (bytes.length === 0) return;
    if (this.fcr & FCR_FE) {
      for (let i = 0; i < bytes.length; i++) {
        if (this.recv.length < FIFO_LENGTH) this.recv.push(bytes[i]! & 0xff);
        else this.lsr |= LSR_OE;
      }
      this.lsr |= LSR_DR;
      this.armTimeout();
    } else {
      if (this.lsr & LSR_DR) this.lsr |= LSR_OE;
      this.rbr = bytes[0]! & 0xff;
      this.lsr |= LSR_DR;
    }
    this.updateIrq();
  }

  private armTimeout(): void {
    this.clock.mod(this.timeoutTimer, this.clock.ns + this.charTransmitNs * 4, () => this.timeoutFired());
  }

  private timeoutFired(): void {
    if (this.recv.length) {
      this.timeoutIpending = true;
      this.updateIrq();
    }
  }

  /**
   * The guest-visible state, as QEMU's vmstate_serial carries it (registers, FIFO, timeout timer);
   * the transmit side needs nothing: a byte written leaves at once.
   */
  saveState(): SerialState {
    return {
      rbr: this.rbr,
      ier: this.ier,
      iir: this.iir,
      lcr: this.lcr,
      mcr: this.mcr,
      lsr: this.lsr,
      msr: this.msr,
      scr: this.scr,
      fcr: this.fcr,
      divider: this.divider,
      thrIpending: this.thrIpending,
      timeoutIpending: this.timeoutIpending,
      recv: [...this.recv],
      timeout: this.clock.deadline(this.timeoutTimer),
    };
  }

  /** Checks a migrated state; throws a DeviceStateError, changing nothing, when it is not one. */
  static checkState(s: unknown, device = 'serial'): SerialState {
    const r = new StateReader(device, s);
    return {
      rbr: r.uint('rbr', 0xff),
      ier: r.uint('ier', 0x0f),
      iir: r.uint('iir', 0xff),
      lcr: r.uint('lcr', 0xff),
      mcr: r.uint('mcr', 0x1f),
      lsr: r.uint('lsr', 0xff),
      msr: r.uint('msr', 0xff),
      scr: r.uint('scr', 0xff),
      fcr: r.uint('fcr', 0xff),
      divider: r.uint('divider', 0xffff),
      thrIpending: r.bool('thrIpending'),
      timeoutIpending: r.bool('timeoutIpending'),
      recv: r.uintList('recv', FIFO_LENGTH, 0xff),
      timeout: r.deadline('timeout'),
    };
  }

  /**
   * Loads a checked state (after the clock's): as QEMU's serial_post_load, the FIFO trigger level
   * and the character time are derived again; the interrupt line is not driven, its level travels
   * in the interrupt controller's and the hart's state.
   */
  loadState(s: SerialState): void {
    this.rbr = s.rbr;
    this.ier = s.ier;
    this.lcr = s.lcr;
    this.mcr = s.mcr;
    this.lsr = s.lsr;
    this.msr = s.msr;
    this.scr = s.scr;
    this.divider = s.divider;
    this.thrIpending = s.thrIpending;
    this.timeoutIpending = s.timeoutIpending;
    this.recv.length = 0;
    this.recv.push(...s.recv);
    this.writeFcr(s.fcr);
    this.iir = s.iir;
    this.updateParameters();
    if (s.timeout === null) this.clock.del(this.timeoutTimer);
    else this.clock.mod(this.timeoutTimer, s.timeout, () => this.timeoutFired());
  }

  private updateIrq(): void {
    let id = IIR_NO_INT;
    if (this.ier & IER_RLSI && this.lsr & LSR_INT_ANY) id = IIR_RLSI;
    else if (this.ier & IER_RDI && this.timeoutIpending) id = IIR_CTI;
    else if (
      this.ier & IER_RDI &&
      this.lsr & LSR_DR &&
      (!(this.fcr & FCR_FE) || this.recv.length >= this.recvItl)
    )
      id = IIR_RDI;
    else if (this.ier & IER_THRI && this.thrIpending) id = IIR_THRI;
    else if (this.ier & IER_MSI && this.msr & MSR_ANY_DELTA) id = IIR_MSI;
    this.iir = id | (this.iir & 0xf0);
    this.irq(id !== IIR_NO_INT);
  }

  private updateParameters(): void {
    let frame = 1;
    if (this.lcr & 0x08) frame++;
    frame += (this.lcr & 0x03) + 5 + (this.lcr & 0x04 ? 2 : 1);
    const speed = this.divider === 0 ? 3500 : this.baudbase / this.divider;
    this.charTransmitNs = Math.floor((1e9 / speed) * frame);
  }

  private ioWrite(addr: number, val: number): void {
    switch (addr) {
      case 0:
        if (this.lcr & LCR_DLAB) {
          this.divider = (this.divider & 0xff00) | val;
          this.updateParameters();
        } else {
          this.thrIpending = false;
          this.lsr &= ~(LSR_THRE | LSR_TEMT);
          this.updateIrq();
          this.sink(val);
          // serial_xmit with a sink that takes every byte: the shift register empties at once.
          this.lsr |= LSR_THRE | LSR_TEMT;
          this.thrIpending = true;
          this.updateIrq();
        }
        break;
      case 1:
        if (this.lcr & LCR_DLAB) {
          this.divider = (this.divider & 0x00ff) | (val << 8);
          this.updateParameters();
        } else {
          const changed = (this.ier ^ val) & 0x0f;
          this.ier = val & 0x0f;
          if (changed & IER_THRI)
            this.thrIpending = (this.ier & IER_THRI) !== 0 && (this.lsr & LSR_THRE) !== 0;
          if (changed) this.updateIrq();
        }
        break;
      case 2: {
        let v = val;
        if ((v ^ this.fcr) & FCR_FE) v |= FCR_XFR | FCR_RFR;
        if (v & FCR_RFR) {
          this.lsr &= ~(LSR_DR | LSR_BI);
          this.clock.del(this.timeoutTimer);
          this.timeoutIpending = false;
          this.recv.length = 0;
        }
        if (v & FCR_XFR) {
          this.lsr |= LSR_THRE;
          this.thrIpending = true;
        }
        this.writeFcr(v & 0xc9);
        this.updateIrq();
        break;
      }
      case 3:
        this.lcr = val;
        this.updateParameters();
        break;
      case 4:
        this.mcr = val & 0x1f;
        break;
      case 7:
        this.scr = val;
        break;
      default:
        break;
    }
  }

  private writeFcr(v: number): void {
    this.fcr = v;
    if (v & FCR_FE) {
      this.iir |= IIR_FE;
      this.recvItl = [1, 4, 8, 14][(v & 0xc0) >> 6]!;
    } else {
      this.iir &= ~IIR_FE;
    }
  }

  private ioRead(addr: number): number {
    switch (addr) {
      case 0: {
        if (this.lcr & LCR_DLAB) return this.divider & 0xff;
        let ret: number;
        if (this.fcr & FCR_FE) {
          ret = this.recv.length ? this.recv.shift()! : 0;
          if (this.recv.length === 0) this.lsr &= ~(LSR_DR | LSR_BI);
          else this.armTimeout();
          this.timeoutIpending = false;
        } else {
          ret = this.rbr;
          this.lsr &= ~(LSR_DR | LSR_BI);
        }
        this.updateIrq();
        return ret;
      }
      case 1:
        return this.lcr & LCR_DLAB ? this.divider >> 8 : this.ier;
      case 2: {
        const ret = this.iir;
        if ((ret & IIR_ID) === IIR_THRI) {
          this.thrIpending = false;
          this.updateIrq();
        }
        return ret;
      }
      case 3:
        return this.lcr;
      case 4:
        return this.mcr;
      case 5: {
        const ret = this.lsr;
        if (this.lsr & (LSR_BI | LSR_OE)) {
          this.lsr &= ~(LSR_BI | LSR_OE);
          this.updateIrq();
        }
        return ret;
      }
      case 6: {
        if (this.mcr & MCR_LOOP) {
          return ((this.mcr & 0x0c) << 4) | ((this.mcr & 0x02) << 3) | ((this.mcr & 0x01) << 5);
        }
        const ret = this.msr;
        if (this.msr & MSR_ANY_DELTA) {
          this.msr &= 0xf0;
          this.updateIrq();
        }
        return ret;
      }
      default:
        return this.scr;
    }
  }

  /** Device reset (serial_reset). */
  reset(): void {
    this.rbr = 0;
    this.ier = 0;
    this.iir = IIR_NO_INT;
    this.lcr = 0;
    this.lsr = LSR_TEMT | LSR_THRE;
    this.msr = MSR_DCD | MSR_DSR | MSR_CTS;
    this.divider = 0x0c;
    this.mcr = MCR_OUT2;
    this.scr = 0;
    this.fcr = 0;
    this.timeoutIpending = false;
    this.thrIpending = false;
    this.recv.length = 0;
    this.clock.del(this.timeoutTimer);
    this.updateParameters();
    this.irq(false);
  }
}
