/**
 * @module machines/riscv/cpu/hart
 * An RV64GC hart (RV64IMAFDC, Zicsr, Zifencei, Zihintpause, Zba, Zbb, Zbc, Zbs, Sstc: QEMU 7.2's
 * default rv64 hart without H; M, S and U privilege; Sv39 and Sv48 paging) that reaches memory
 * only through a {@link Bus}. The rules follow the RISC-V unprivileged spec
 * 20191213 and privileged spec 1.12, and where those leave a choice, QEMU 7.2's target/riscv (the
 * function each rule comes from is named beside it).
 *
 * Speed: the 64-bit integer registers are two Int32Array halves, so that the integer hot path
 * never allocates; bigints appear only for 8-byte bus accesses (the Bus API carries them), CSRs,
 * MULH/DIV of wide values and traps. Compressed instructions are expanded once per distinct
 * halfword into their 32-bit form through a 64K-entry table. A 256-entry software TLB per access
 * kind (read, write, execute) sits in front of the page-table walker.
 */

import { BUS_PAGE_MISSING, type Bus } from './bus.js';
import { Fpu } from './fpu.js';
import { expandCompressed } from './rvc.js';

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
  /** Floating-point extensions (both on by default; D needs F). */
  isa?: { f: boolean; d: boolean };
  /**
   * The timer behind Sstc's `stimecmp` (QEMU's per-hart `stimer`). Without it the hart has no
   * Sstc, as QEMU's `sstc` predicate also wants a time source.
   */
  stimer?: HartTimer;
}

/** A one-shot timer the machine runs for a hart, on the clock `readTime` reads. */
export interface HartTimer {
  /** Arms the timer to call `fire` once when `time` reaches `ticks`, replacing the one armed before. */
  arm(ticks: bigint, fire: () => void): void;
  /** When the armed timer fires, in the machine's clock units (what migration carries), or null. */
  deadline(): number | null;
  /** Arms the timer at a deadline {@link deadline} gave on the source (null: disarmed). */
  restore(deadline: number | null, fire: () => void): void;
}

/** Privilege levels. */
const PRV_U = 0;
const PRV_S = 1;
const PRV_M = 3;

// mstatus fields (low 32 bits; UXL, SXL and SD are computed on read).
const MS_SIE = 1 << 1;
const MS_MIE = 1 << 3;
const MS_SPIE = 1 << 5;
const MS_MPIE = 1 << 7;
const MS_SPP = 1 << 8;
const MS_VS = 3 << 9;
const MS_MPP = 3 << 11;
const MS_FS = 3 << 13;
const MS_MPRV = 1 << 17;
const MS_SUM = 1 << 18;
const MS_MXR = 1 << 19;
const MS_TVM = 1 << 20;
const MS_TW = 1 << 21;
const MS_TSR = 1 << 22;
/** Writable mstatus bits (QEMU write_mstatus without H; FS only with F). */
const MSTATUS_WMASK =
  MS_SIE |
  MS_SPIE |
  MS_MIE |
  MS_MPIE |
  MS_SPP |
  MS_MPRV |
  MS_SUM |
  MS_MPP |
  MS_MXR |
  MS_TVM |
  MS_TSR |
  MS_TW |
  MS_VS;
/** sstatus view (QEMU sstatus_v1_10_mask; UXL and SD added on read). */
const SSTATUS_MASK = MS_SIE | MS_SPIE | MS_SPP | MS_FS | MS_VS | MS_SUM | MS_MXR | (3 << 15);

// Interrupt bits.
const IRQ_SSIP = 1 << 1;
const IRQ_MSIP = 1 << 3;
const IRQ_STIP = 1 << 5;
const IRQ_MTIP = 1 << 7;
const IRQ_SEIP = 1 << 9;
const IRQ_MEIP = 1 << 11;
const S_INTS = IRQ_SSIP | IRQ_STIP | IRQ_SEIP;
const ALL_INTS = S_INTS | IRQ_MSIP | IRQ_MTIP | IRQ_MEIP;

// Exception causes.
const EXC_INST_MISALIGNED = 0;
const EXC_INST_ACCESS = 1;
const EXC_ILLEGAL = 2;
const EXC_BREAKPOINT = 3;
const EXC_LOAD_MISALIGNED = 4;
const EXC_LOAD_ACCESS = 5;
const EXC_STORE_MISALIGNED = 6;
const EXC_STORE_ACCESS = 7;
const EXC_ECALL_U = 8;
const EXC_INST_PAGE = 12;
const EXC_LOAD_PAGE = 13;
const EXC_STORE_PAGE = 15;
/**
 * medeleg's writable bits: QEMU 7.2's DELEGABLE_EXCPS, a fixed mask that keeps ecall from VS and M
 * (10, 11) and the guest faults of H (20..23) even without H. They only read back: an M-mode ecall
 * is never delegated and this hart raises none of the others.
 */
const DELEGABLE_EXCPS = 0xf0bfff;

/** Access kinds; also the index of the TLB. */
const ACC_R = 0;
const ACC_W = 1;
const ACC_X = 2;

const TLB_BITS = 8;
const TLB_N = 1 << TLB_BITS;
const TLB_MASK = TLB_N - 1;
const TWO32 = 4294967296;
/** Physical addresses a bare access may name (56 bits, as RV64 physical addresses). */
const PA_LIMIT = 2 ** 56;

/** Thrown (never escaping the hart) when an instruction traps; the trap is in the hart's fields. */
const TRAP = { trap: true };

/** Trailing zeros of a nonzero 32-bit value. */
function ctz32(x: number): number {
  return 31 - Math.clz32(x & -x);
}

/** Set bits of a 32-bit value. */
function popcount32(x: number): number {
  x -= (x >>> 1) & 0x55555555;
  x = (x & 0x33333333) + ((x >>> 2) & 0x33333333);
  x = (x + (x >>> 4)) & 0x0f0f0f0f;
  return Math.imul(x, 0x01010101) >>> 24;
}

/** orc.b on 32 bits: each nonzero byte becomes 0xff. */
function orcb32(x: number): number {
  let r = 0;
  for (let k = 0; k < 32; k += 8) if (((x >>> k) & 0xff) !== 0) r |= 0xff << k;
  return r;
}

/** The four bytes of a 32-bit value in reverse order. */
function bswap32(x: number): number {
  return ((x & 0xff) << 24) | ((x & 0xff00) << 8) | ((x >>> 8) & 0xff00) | (x >>> 24);
}

/** Extension bits of misa: A C D F I M S U. */
function misaBits(f: boolean, d: boolean): number {
  const bit = (c: string) => 1 << (c.charCodeAt(0) - 97);
  let m = bit('a') | bit('c') | bit('i') | bit('m') | bit('s') | bit('u');
  if (f) m |= bit('f');
  if (f && d) m |= bit('d');
  return m;
}

/** One RV64GC hart. All its state is in the instance; several harts share nothing but the bus. */
export class RiscvHart {
  /** Value of `mhartid`. */
  readonly hartId: number;
  /**
   * The ISA string this hart implements, for the device tree: QEMU 7.2's `riscv,isa` of its
   * default rv64 hart without H, its extensions in the order of QEMU's riscv_isa_string, e.g.
   * `rv64imafdc_zicsr_zifencei_zihintpause_zba_zbb_zbc_zbs_sstc`.
   */
  readonly isaString: string;

  private bus: Bus;
  private readonly readTime: () => bigint;
  private readonly resetPc: number;
  private readonly hasF: boolean;
  private readonly hasD: boolean;
  private readonly misaExt: number;
  private readonly stimer: HartTimer | undefined;

  /** pc as a number: the 64-bit value read as signed (exact for every canonical address). */
  private pc = 0;
  /** Address of the instruction after the current one. */
  private npc = 0;
  /** Low and high halves of x0..x31. */
  private readonly xl = new Int32Array(32);
  private readonly xh = new Int32Array(32);
  /** The floating-point unit (registers, fcsr and operations). */
  private readonly fpu: Fpu;

  private priv = PRV_M;
  private wfi = false;
  /** Retired instructions (mcycle and minstret count the same). */
  private icount = 0;
  private cycleOff = 0n;
  private instretOff = 0n;

  // CSRs
  private mstatus = 0;
  private mip = 0;
  private externalSeip = false;
  private softwareSeip = false;
  private mie = 0;
  private mideleg = 0;
  private medeleg = 0;
  private mtvec = 0n;
  private stvec = 0n;
  private mepc = 0n;
  private sepc = 0n;
  private mcause = 0n;
  private scause = 0n;
  private mtval = 0n;
  private stval = 0n;
  private mscratch = 0n;
  private sscratch = 0n;
  private satp = 0n;
  // target_ulong in QEMU (write_mcounteren/write_scounteren/write_mcountinhibit keep all 64 bits)
  private mcounteren = 0n;
  private scounteren = 0n;
  private mcountinhibit = 0n;
  private menvcfg = 0n;
  private senvcfg = 0n;
  /** Sstc's stimecmp; like QEMU's, set to 0 once when the hart is made and kept across resets. */
  private stimecmp = 0n;
  /** QEMU's riscv_stimer_cb: the timer raises STIP, whatever stimecmp holds by then. */
  private readonly stimerFired = (): void => {
    this.mip |= IRQ_STIP;
    this.updateIrq();
  };
  /** mhpmcounter3..18 (QEMU 7.2's default pmu-num of 16; they count nothing) and mhpmevent3..31. */
  private readonly hpmCounter: bigint[] = new Array<bigint>(32).fill(0n);
  private readonly hpmEvent: bigint[] = new Array<bigint>(32).fill(0n);
  private readonly pmpcfg = new Uint8Array(16);
  private readonly pmpaddr: bigint[] = new Array<bigint>(16).fill(0n);

  /** Translation state derived from satp/priv/mstatus, recomputed on every change of those. */
  private fetchLevels = 0;
  private dataLevels = 0;
  private dataPriv = PRV_M;
  private rootPpn = 0;
  private irqPending = false;

  /**
   * Software TLB: virtual page number tags and physical page bases, one table per privilege (U,
   * S) and access kind (read, write, execute), as QEMU keeps one per MMU index: a permission is
   * checked once at fill time for that privilege, so changing privilege needs no flush.
   */
  private readonly tlbTag = new Float64Array(6 * TLB_N);
  private readonly tlbPhys = new Float64Array(6 * TLB_N);
  /** Offsets of the fetch and data tables of the current (effective) privilege. */
  private fetchSet = 0;
  private dataSet = 0;

  /** LR/SC reservation: virtual address (-1 for none) and the value LR loaded (halves). */
  private resAddr = -1;
  private resLo = 0;
  private resHi = 0;
  /** Virtual and physical base of the page the last instruction came from (NaN: none). */
  private fetchV = Number.NaN;
  private fetchP = 0;
  /** The same for the last data read and the last data write. */
  private rdV = Number.NaN;
  private rdP = 0;
  private wrV = Number.NaN;
  private wrP = 0;
  /**
   * Virtual range covering every superpage put in the TLB since the last full flush: SFENCE.VMA
   * of an address in it flushes everything (QEMU's tlb_flush_page keeps such a range too).
   */
  private superLo = Number.POSITIVE_INFINITY;
  private superHi = Number.NEGATIVE_INFINITY;

  /** Trap in flight. */
  private trapCause = 0;
  private trapTval = 0n;

  /** 64-bit results of helpers, as halves. */
  private rl = 0;
  private rh = 0;
  /** Current instruction, for mtval on illegal instruction (QEMU fills tval with the bits). */
  private inst = 0;

  private readonly q64 = new BigUint64Array(1);
  private readonly q32 = new Int32Array(this.q64.buffer);
  /** RVC expansions by halfword; 0 = not yet expanded, 1 = illegal (no 32-bit instruction is 1). */
  private readonly rvc = new Int32Array(65536);

  // PMP, last: fields the hot path reads come first, so that they stay in the object itself
  /**
   * Each PMP entry's range, first and last byte, as QEMU's pmp_update_rule_addr caches them
   * (`pmp_state.addr[i].sa`/`.ea`): recomputed only where QEMU recomputes them, so a TOR entry
   * keeps the start it had when it was last updated even after pmpaddr of the entry below changes.
   * Numbers: values past 2^53 round, which keeps their order against every physical address the
   * hart forms (below 2^56, and exact below 2^53).
   */
  private readonly pmpSa = new Float64Array(16);
  private readonly pmpEa = new Float64Array(16);
  /** Entries whose A field is not OFF (pmp_update_rule_nums). */
  private pmpRules = 0;
  /**
   * The entries that can decide or fail an access outside page 0, in order: all but those whose
   * range is [0, 0] (never computed, or an empty TOR) and the OFF ones covering everything, which
   * can neither match nor hold an access in part. Page 0 goes through all 16.
   */
  private readonly pmpList = new Int8Array(16);
  private pmpListLen = 0;
  /** Whether the page of the last translation or PMP check may be cached (see {@link pmpCheck}). */
  private fillCacheable = true;
  /** The remembered fetch page is one a PMP range splits: forget it before the next instruction. */
  private fetchDrop = false;

  constructor(o: HartOptions) {
    this.bus = o.bus;
    this.readTime = o.readTime;
    this.resetPc = o.resetPc;
    this.hartId = o.hartId;
    this.hasF = o.isa?.f ?? true;
    this.hasD = this.hasF && (o.isa?.d ?? true);
    this.misaExt = misaBits(this.hasF, this.hasD);
    this.stimer = o.stimer;
    // riscv_isa_string: the single letters in QEMU's order (IEMAFDQCPVH), then the multi-letter
    // extensions of its table that are on, in table order
    const multi = ['zicsr', 'zifencei', 'zihintpause', 'zba', 'zbb', 'zbc', 'zbs'];
    if (this.stimer) multi.push('sstc');
    this.isaString = `rv64ima${this.hasF ? 'f' : ''}${this.hasD ? 'd' : ''}c_${multi.join('_')}`;
    this.fpu = new Fpu();
    this.reset();
  }

  /** True while the hart idles in WFI with no interrupt pending (it resumes when one is). */
  get waitingForInterrupt(): boolean {
    return this.wfi;
  }

  /** Current privilege level: 0 U, 1 S, 3 M. */
  get privilege(): number {
    return this.priv;
  }

  /** Retired instruction count since reset. */
  get instructionCount(): number {
    return this.icount;
  }

  /**
   * Drives an external interrupt line into mip (level-triggered): bit 1 SSIP, 3 MSIP, 5 STIP,
   * 7 MTIP, 9 SEIP, 11 MEIP. SEIP is the OR of the line and the bit software wrote (QEMU keeps
   * `external_seip` and `software_seip` apart the same way).
   */
  setIrq(bit: number, level: boolean): void {
    const m = 1 << bit;
    if ((ALL_INTS & m) === 0) throw new RangeError(`no interrupt line for mip bit ${bit}`);
    if (m === IRQ_SEIP) {
      this.externalSeip = level;
      level = level || this.softwareSeip;
    }
    this.mip = level ? this.mip | m : this.mip & ~m;
    this.updateIrq();
  }

  /** Resets the hart as QEMU's riscv_cpu_reset does: M-mode, pc at the reset vector, interrupts off. */
  reset(): void {
    this.pc = this.resetPc;
    this.xl.fill(0);
    this.xh.fill(0);
    this.fpu.reset();
    this.priv = PRV_M;
    this.wfi = false;
    this.icount = 0;
    this.cycleOff = 0n;
    this.instretOff = 0n;
    this.mstatus = 0;
    this.mip = 0;
    this.externalSeip = false;
    this.softwareSeip = false;
    this.mie = 0;
    this.mideleg = 0;
    this.medeleg = 0;
    this.mtvec = 0n;
    this.stvec = 0n;
    this.mepc = 0n;
    this.sepc = 0n;
    this.mcause = 0n;
    this.scause = 0n;
    this.mtval = 0n;
    this.stval = 0n;
    this.mscratch = 0n;
    this.sscratch = 0n;
    this.satp = 0n;
    this.mcounteren = 0n;
    this.scounteren = 0n;
    this.mcountinhibit = 0n;
    this.menvcfg = 0n;
    this.senvcfg = 0n;
    this.pmpcfg.fill(0);
    this.pmpaddr.fill(0n);
    // a newly created QEMU hart's pmp_state is all zero: every cached range is [0, 0]
    this.pmpSa.fill(0);
    this.pmpEa.fill(0);
    this.pmpUpdateRuleNums();
    this.fetchDrop = false;
    this.hpmCounter.fill(0n);
    this.hpmEvent.fill(0n);
    this.resAddr = -1;
    this.flushTlb();
    this.xlateChanged();
  }

  /** Current pc. */
  getPc(): bigint {
    return BigInt.asUintN(64, BigInt(this.pc));
  }
  /** Sets the pc (the hart keeps addresses whose top 12 bits are a sign extension). */
  setPc(pc: bigint): void {
    this.pc = Number(BigInt.asIntN(64, pc));
  }
  /** Reads x`i` as an unsigned 64-bit value. */
  getReg(i: number): bigint {
    return (BigInt(this.xh[i]! >>> 0) << 32n) | BigInt(this.xl[i]! >>> 0);
  }
  /** Writes x`i` (writes to x0 are dropped). */
  setReg(i: number, v: bigint): void {
    if (i === 0) return;
    this.xl[i] = Number(BigInt.asIntN(32, v));
    this.xh[i] = Number(BigInt.asIntN(32, v >> 32n));
  }
  /** Reads f`i`'s raw 64 bits. */
  getFReg(i: number): bigint {
    return this.fpu.getRaw(i);
  }
  /** Writes f`i`'s raw 64 bits. */
  setFReg(i: number, v: bigint): void {
    this.fpu.setRaw(i, v);
  }
  /** Reads a CSR as M-mode software would (undefined for CSRs the hart does not have). */
  getCsr(csr: number): bigint | undefined {
    const p = this.priv;
    this.priv = PRV_M;
    try {
      return this.csrRead(csr);
    } catch (e) {
      if (e === TRAP) return undefined;
      throw e;
    } finally {
      this.priv = p;
    }
  }

  /** Plain-object snapshot of the architectural state (JSON-safe: 64-bit values as hex strings). */
  saveState(): object {
    const h = (v: bigint) => `0x${BigInt.asUintN(64, v).toString(16)}`;
    const regs: string[] = [];
    for (let i = 0; i < 32; i++) regs.push(h(this.getReg(i)));
    const fregs: string[] = [];
    for (let i = 0; i < 32; i++) fregs.push(h(this.fpu.getRaw(i)));
    return {
      pc: h(this.getPc()),
      priv: this.priv,
      wfi: this.wfi,
      x: regs,
      f: fregs,
      fcsr: this.fpu.fcsr,
      icount: this.icount,
      csr: {
        mstatus: this.mstatus,
        mip: this.mip,
        externalSeip: this.externalSeip,
        softwareSeip: this.softwareSeip,
        mie: this.mie,
        mideleg: this.mideleg,
        medeleg: this.medeleg,
        mtvec: h(this.mtvec),
        stvec: h(this.stvec),
        mepc: h(this.mepc),
        sepc: h(this.sepc),
        mcause: h(this.mcause),
        scause: h(this.scause),
        mtval: h(this.mtval),
        stval: h(this.stval),
        mscratch: h(this.mscratch),
        sscratch: h(this.sscratch),
        satp: h(this.satp),
        mcounteren: h(this.mcounteren),
        scounteren: h(this.scounteren),
        mcountinhibit: h(this.mcountinhibit),
        menvcfg: h(this.menvcfg),
        senvcfg: h(this.senvcfg),
        stimecmp: h(this.stimecmp),
        // the armed Sstc timer: QEMU 7.2 migrates stimecmp but not its timer, so a guest waiting
        // for it would wait for good on the destination; carried here (-1: not armed)
        stimer: this.stimer?.deadline() ?? -1,
        cycleOff: h(this.cycleOff),
        instretOff: h(this.instretOff),
        pmpcfg: [...this.pmpcfg],
        pmpaddr: this.pmpaddr.map(h),
        hpmCounter: this.hpmCounter.map(h),
        hpmEvent: this.hpmEvent.map(h),
      },
      reservation: this.resAddr,
      reservationValue: [this.resLo, this.resHi],
    };
  }

  /** Restores a snapshot made by {@link saveState} (of a hart with the same options). */
  loadState(s: object): void {
    // biome-ignore lint/suspicious/noExplicitAny: a snapshot is plain JSON whose shape saveState fixes
    const o = s as any;
    const b = (v: string) => BigInt(v);
    this.setPc(b(o.pc));
    this.priv = o.priv;
    this.wfi = o.wfi;
    for (let i = 0; i < 32; i++) {
      this.setReg(i, b(o.x[i]));
      this.fpu.setRaw(i, b(o.f[i]));
    }
    this.fpu.fcsr = o.fcsr;
    this.icount = o.icount;
    const c = o.csr;
    this.mstatus = c.mstatus;
    this.mip = c.mip;
    this.externalSeip = c.externalSeip;
    this.softwareSeip = c.softwareSeip;
    this.mie = c.mie;
    this.mideleg = c.mideleg;
    this.medeleg = c.medeleg;
    this.mtvec = b(c.mtvec);
    this.stvec = b(c.stvec);
    this.mepc = b(c.mepc);
    this.sepc = b(c.sepc);
    this.mcause = b(c.mcause);
    this.scause = b(c.scause);
    this.mtval = b(c.mtval);
    this.stval = b(c.stval);
    this.mscratch = b(c.mscratch);
    this.sscratch = b(c.sscratch);
    this.satp = b(c.satp);
    // older snapshots kept these three as 32-bit numbers
    const n = (v: number | string) => (typeof v === 'number' ? BigInt(v >>> 0) : b(v));
    this.mcounteren = n(c.mcounteren);
    this.scounteren = n(c.scounteren);
    this.mcountinhibit = n(c.mcountinhibit);
    this.menvcfg = b(c.menvcfg);
    this.senvcfg = b(c.senvcfg);
    this.stimecmp = b(c.stimecmp);
    this.stimer?.restore(c.stimer >= 0 ? c.stimer : null, this.stimerFired);
    this.cycleOff = b(c.cycleOff);
    this.instretOff = b(c.instretOff);
    this.pmpcfg.set(c.pmpcfg);
    for (let i = 0; i < 16; i++) this.pmpaddr[i] = b(c.pmpaddr[i]);
    // QEMU migrates only the registers; pmp_post_load recomputes every range and the rule count
    for (let i = 0; i < 16; i++) this.pmpUpdateRuleAddr(i);
    this.pmpUpdateRuleNums();
    for (let i = 0; i < 32; i++) {
      this.hpmCounter[i] = b(c.hpmCounter[i]);
      this.hpmEvent[i] = b(c.hpmEvent[i]);
    }
    this.resAddr = o.reservation;
    this.resLo = o.reservationValue[0];
    this.resHi = o.reservationValue[1];
    this.flushTlb();
    this.xlateChanged();
  }

  // ---------------------------------------------------------------------------------------------
  // Execution

  /**
   * Executes up to `n` instructions and returns how many ran (a trapping instruction counts as one
   * step). Stops early when the hart executes WFI with nothing pending; while it waits, `run`
   * returns 0 until an interrupt is pending in mip & mie. Also stops, before the instruction and
   * without counting it, when an access reports {@link BUS_PAGE_MISSING}.
   */
  run(n: number): number {
    if (this.wfi) {
      if ((this.mip & this.mie) === 0) return 0;
      this.wfi = false;
    }
    let i = 0;
    while (i < n) {
      try {
        while (i < n) {
          if (this.irqPending) this.takeInterrupt();
          this.step();
          this.icount++;
          i++;
          if (this.wfi) return i;
        }
      } catch (e) {
        if (e !== TRAP) throw e;
        // A page that has not arrived: the instruction did nothing a retry would not redo (its
        // register results come after its accesses), so it runs again from the start later.
        if ((this.bus.lastResult & BUS_PAGE_MISSING) !== 0) return i;
        i++;
        this.takeTrap();
      }
    }
    return i;
  }

  /** Replaces the hart's memory (e.g. by one that stops at missing pages during postcopy). */
  setBus(bus: Bus): void {
    this.bus = bus;
  }

  /** Takes the highest-priority enabled interrupt (riscv_cpu_local_irq_pending). */
  private takeInterrupt(): void {
    if (this.fetchDrop) {
      this.fetchDrop = false;
      this.fetchV = Number.NaN;
    }
    const irq = this.pendingIrq();
    if (irq < 0) {
      this.irqPending = false;
      return;
    }
    this.trap(irq, true, 0n);
  }

  /** The interrupt to take now, or -1. */
  private pendingIrq(): number {
    const pending = this.mip & this.mie;
    if (pending === 0) return -1;
    const mOn = this.priv < PRV_M || (this.mstatus & MS_MIE) !== 0;
    const mPend = pending & ~this.mideleg;
    const sOn = this.priv < PRV_S || (this.priv === PRV_S && (this.mstatus & MS_SIE) !== 0);
    const sPend = pending & this.mideleg;
    const take = (mOn ? mPend : 0) | (sOn ? sPend : 0);
    if (take === 0) return -1;
    const m = mOn && mPend ? mPend : sPend;
    // QEMU 7.2 without AIA (riscv_cpu_pending_to_irq) takes the lowest-numbered pending interrupt,
    // not the spec's order (MEI, MSI, MTI, SEI, SSI, STI): SSIP goes before MTIP
    return 31 - Math.clz32(m & -m);
  }

  private updateIrq(): void {
    this.irqPending = this.fetchDrop || this.pendingIrq() >= 0;
  }

  /** Raises exception `cause` for the current instruction. */
  private raise(cause: number, tval: bigint): never {
    this.trapCause = cause;
    this.trapTval = tval;
    throw TRAP;
  }

  private illegal(): never {
    this.raise(EXC_ILLEGAL, BigInt(this.inst >>> 0));
  }

  private takeTrap(): void {
    this.trap(this.trapCause, false, this.trapTval);
  }

  /** Enters the trap handler (riscv_cpu_do_interrupt). */
  private trap(cause: number, isIrq: boolean, tval: bigint): void {
    this.resAddr = -1;
    this.wfi = false;
    const deleg = isIrq ? this.mideleg : this.medeleg;
    const epc = BigInt.asUintN(64, BigInt(this.pc));
    const causeVal = isIrq ? (1n << 63n) | BigInt(cause) : BigInt(cause);
    let ms = this.mstatus;
    let vec: bigint;
    if (this.priv <= PRV_S && ((deleg >>> cause) & 1) !== 0) {
      this.scause = causeVal;
      this.sepc = epc;
      this.stval = tval;
      ms = (ms & ~MS_SPIE) | ((ms & MS_SIE) !== 0 ? MS_SPIE : 0);
      ms = (ms & ~(MS_SPP | MS_SIE)) | (this.priv === PRV_S ? MS_SPP : 0);
      vec = this.stvec;
      this.priv = PRV_S;
    } else {
      this.mcause = causeVal;
      this.mepc = epc;
      this.mtval = tval;
      ms = (ms & ~MS_MPIE) | ((ms & MS_MIE) !== 0 ? MS_MPIE : 0);
      ms = (ms & ~(MS_MPP | MS_MIE)) | (this.priv << 11);
      vec = this.mtvec;
      this.priv = PRV_M;
    }
    this.mstatus = ms;
    let target = vec & ~3n;
    if (isIrq && (vec & 3n) === 1n) target += BigInt(4 * cause);
    this.pc = Number(BigInt.asIntN(64, target));
    this.xlateChanged();
  }

  private setx(rd: number, lo: number, hi: number): void {
    if (rd !== 0) {
      this.xl[rd] = lo;
      this.xh[rd] = hi;
    }
  }

  /** x`r` as a number (exact while it is below 2^53 in magnitude, which addresses are). */
  private xnum(r: number): number {
    return this.xh[r]! * TWO32 + (this.xl[r]! >>> 0);
  }

  private step(): void {
    const pc = this.pc;
    const bus = this.bus;
    // The page of the last fetch is remembered (virtual and physical base), so that straight-line
    // code skips the TLB. Offsets in the page, not addresses, are what get masked: addresses are
    // past 2^31, where a bit operation costs V8 a slow truncation.
    let off = pc - this.fetchV;
    if (!(off >= 0 && off <= 4092)) {
      this.fetchSlow(pc);
      off = pc - this.fetchV;
    }
    const pa = this.fetchP + off;
    if ((off & 3) === 0) {
      // an aligned 4-byte read fetches a whole 32-bit instruction at once
      const w = bus.ldlLe(pa);
      if (bus.lastResult === 0) {
        if ((w & 3) === 3) {
          this.inst = w | 0;
          this.npc = pc + 4;
          this.exec(w | 0, 4);
        } else {
          const e = this.expand(w & 0xffff);
          this.npc = pc + 2;
          this.exec(e, 2);
        }
        this.pc = this.npc;
        return;
      }
    }
    const lo = bus.lduwLe(pa);
    if (bus.lastResult !== 0) this.raise(EXC_INST_ACCESS, BigInt.asUintN(64, BigInt(pc)));
    let inst: number;
    let len: number;
    if ((lo & 3) === 3) {
      const pc2 = pc + 2;
      const pa2 = off === 4094 ? this.fetchSlow(pc2) : pa + 2;
      const hi = bus.lduwLe(pa2);
      if (bus.lastResult !== 0) this.raise(EXC_INST_ACCESS, BigInt.asUintN(64, BigInt(pc2)));
      inst = lo | (hi << 16);
      this.inst = inst;
      len = 4;
    } else {
      inst = this.expand(lo);
      len = 2;
    }
    this.npc = pc + len;
    this.exec(inst, len);
    this.pc = this.npc;
  }

  /** The 32-bit form of a compressed instruction (illegal instruction if it has none). */
  private expand(h: number): number {
    this.inst = h;
    let e = this.rvc[h]!;
    if (e === 0) {
      e = expandCompressed(h, this.hasD);
      this.rvc[h] = e;
    }
    if (e === 1) this.illegal();
    return e;
  }

  /** Translates a fetch address and remembers its page for the next fetches. */
  private fetchSlow(pc: number): number {
    if (pc % 2 !== 0) this.raise(EXC_INST_MISALIGNED, BigInt.asUintN(64, BigInt(pc)));
    // QEMU checks a fetch as it starts a translation block, for one byte (get_page_addr_code);
    // the second half of a 32-bit instruction only when it lies on the next page
    const pa = this.fetchLevels ? this.translate(pc, ACC_X, 1) : this.bareAddr(pc, ACC_X, 1, this.priv);
    const poff = pc - Math.floor(pc / 4096) * 4096;
    if (!this.fillCacheable) {
      // A page a PMP range splits serves this one instruction only: fetchDrop forgets it before
      // the next (run() looks at irqPending before every instruction anyway, so the hot path
      // pays nothing)
      this.fetchDrop = true;
      this.irqPending = true;
    }
    this.fetchV = pc - poff;
    this.fetchP = pa - poff;
    return pa;
  }

  private exec(inst: number, len: number): void {
    const xl = this.xl;
    const xh = this.xh;
    const rd = (inst >>> 7) & 31;
    const rs1 = (inst >>> 15) & 31;
    const rs2 = (inst >>> 20) & 31;
    const f3 = (inst >>> 12) & 7;
    switch (inst & 0x7f) {
      case 0x37: // LUI
        this.setx(rd, inst & 0xfffff000, inst >> 31);
        return;
      case 0x17: {
        // AUIPC
        const v = this.pc + (inst & 0xfffff000);
        this.setNum(rd, v);
        return;
      }
      case 0x6f: {
        // JAL
        const imm =
          ((inst >> 31) << 20) |
          (((inst >>> 12) & 0xff) << 12) |
          (((inst >>> 20) & 1) << 11) |
          (((inst >>> 21) & 0x3ff) << 1);
        const ret = this.pc + len;
        this.npc = this.pc + imm;
        this.setNum(rd, ret);
        return;
      }
      case 0x67: {
        // JALR
        if (f3 !== 0) this.illegal();
        const target = this.xnum(rs1) + (inst >> 20);
        const ret = this.pc + len;
        // clear bit 0 (arithmetically: a bit operation on an address past 2^31 is slow in V8)
        this.npc = Math.floor(target / 2) * 2;
        this.setNum(rd, ret);
        return;
      }
      case 0x63: {
        // Branches
        const al = xl[rs1]!;
        const ah = xh[rs1]!;
        const bl = xl[rs2]!;
        const bh = xh[rs2]!;
        let taken: boolean;
        switch (f3) {
          case 0:
            taken = al === bl && ah === bh;
            break;
          case 1:
            taken = al !== bl || ah !== bh;
            break;
          case 4:
            taken = ah < bh || (ah === bh && al >>> 0 < bl >>> 0);
            break;
          case 5:
            taken = !(ah < bh || (ah === bh && al >>> 0 < bl >>> 0));
            break;
          case 6:
            taken = ah >>> 0 < bh >>> 0 || (ah === bh && al >>> 0 < bl >>> 0);
            break;
          case 7:
            taken = !(ah >>> 0 < bh >>> 0 || (ah === bh && al >>> 0 < bl >>> 0));
            break;
          default:
            this.illegal();
        }
        if (taken) {
          const imm =
            ((inst >> 31) << 12) |
            (((inst >>> 7) & 1) << 11) |
            (((inst >>> 25) & 0x3f) << 5) |
            (((inst >>> 8) & 0xf) << 1);
          this.npc = this.pc + imm;
        }
        return;
      }
      case 0x03: {
        // Loads
        const va = this.xnum(rs1) + (inst >> 20);
        switch (f3) {
          case 0: {
            const v = (this.load(va, 1) << 24) >> 24;
            this.setx(rd, v, v >> 31);
            return;
          }
          case 1: {
            const v = (this.load(va, 2) << 16) >> 16;
            this.setx(rd, v, v >> 31);
            return;
          }
          case 2: {
            const v = this.load(va, 4) | 0;
            this.setx(rd, v, v >> 31);
            return;
          }
          case 3:
            this.load64(va);
            this.setx(rd, this.rl, this.rh);
            return;
          case 4:
            this.setx(rd, this.load(va, 1), 0);
            return;
          case 5:
            this.setx(rd, this.load(va, 2), 0);
            return;
          case 6:
            this.setx(rd, this.load(va, 4) | 0, 0);
            return;
          default:
            this.illegal();
        }
        return;
      }
      case 0x23: {
        // Stores
        const imm = ((inst >> 25) << 5) | ((inst >>> 7) & 31);
        const va = this.xnum(rs1) + imm;
        switch (f3) {
          case 0:
            this.store(va, 1, xl[rs2]!);
            return;
          case 1:
            this.store(va, 2, xl[rs2]!);
            return;
          case 2:
            this.store(va, 4, xl[rs2]!);
            return;
          case 3:
            this.store64(va, xl[rs2]!, xh[rs2]!);
            return;
          default:
            this.illegal();
        }
        return;
      }
      case 0x13:
        this.opImm(inst, rd, rs1, f3);
        return;
      case 0x1b:
        this.opImm32(inst, rd, rs1, f3);
        return;
      case 0x33:
        this.op(inst, rd, rs1, rs2, f3);
        return;
      case 0x3b:
        this.op32(inst, rd, rs1, rs2, f3);
        return;
      case 0x0f:
        // FENCE, FENCE.I: one hart, no decode cache to invalidate: nothing to do
        if (f3 > 1) this.illegal();
        return;
      case 0x73:
        this.system(inst, rd, rs1, f3);
        return;
      case 0x2f:
        this.amo(inst, rd, rs1, rs2, f3);
        return;
      case 0x07:
      case 0x27:
      case 0x43:
      case 0x47:
      case 0x4b:
      case 0x4f:
      case 0x53:
        this.fp(inst, rd, rs1, rs2, f3);
        return;
      default:
        this.illegal();
    }
  }

  /** Writes a number (a signed 64-bit value exact in a double, or wrapped mod 2^64) to rd. */
  private setNum(rd: number, v: number): void {
    if (rd === 0) return;
    const hi = Math.floor(v / TWO32);
    this.xl[rd] = v - hi * TWO32;
    this.xh[rd] = hi;
  }

  private opImm(inst: number, rd: number, rs1: number, f3: number): void {
    const al = this.xl[rs1]!;
    const ah = this.xh[rs1]!;
    const imm = inst >> 20;
    switch (f3) {
      case 0: {
        const lo = (al + imm) | 0;
        const carry = (al >>> 0) + (imm >>> 0) > 0xffffffff ? 1 : 0;
        this.setx(rd, lo, (ah + (imm >> 31) + carry) | 0);
        return;
      }
      case 1: {
        if (inst >>> 26 !== 0) {
          this.opImmB(inst, rd, al, ah, f3);
          return;
        }
        this.sll(al, ah, imm & 63);
        this.setx(rd, this.rl, this.rh);
        return;
      }
      case 2: {
        const ih = imm >> 31;
        this.setx(rd, ah < ih || (ah === ih && al >>> 0 < imm >>> 0) ? 1 : 0, 0);
        return;
      }
      case 3: {
        const ih = imm >> 31;
        this.setx(rd, ah >>> 0 < ih >>> 0 || (ah === ih && al >>> 0 < imm >>> 0) ? 1 : 0, 0);
        return;
      }
      case 4:
        this.setx(rd, al ^ imm, ah ^ (imm >> 31));
        return;
      case 5: {
        const top = inst >>> 26;
        if (top === 0) this.srl(al, ah, imm & 63);
        else if (top === 0x10) this.sra(al, ah, imm & 63);
        else {
          this.opImmB(inst, rd, al, ah, f3);
          return;
        }
        this.setx(rd, this.rl, this.rh);
        return;
      }
      case 6:
        this.setx(rd, al | imm, ah | (imm >> 31));
        return;
      default:
        this.setx(rd, al & imm, ah & (imm >> 31));
    }
  }

  private opImm32(inst: number, rd: number, rs1: number, f3: number): void {
    const a = this.xl[rs1]!;
    const sh = (inst >>> 20) & 31;
    let v: number;
    switch (f3) {
      case 0:
        v = (a + (inst >> 20)) | 0;
        break;
      case 1:
        if (inst >>> 25 !== 0) {
          this.opImm32B(inst, rd, rs1, f3);
          return;
        }
        v = a << sh;
        break;
      case 5:
        if (inst >>> 25 === 0) v = (a >>> sh) | 0;
        else if (inst >>> 25 === 0x20) v = a >> sh;
        else {
          this.opImm32B(inst, rd, rs1, f3);
          return;
        }
        break;
      default:
        this.illegal();
    }
    this.setx(rd, v, v >> 31);
  }

  private sll(l: number, h: number, s: number): void {
    if (s === 0) {
      this.rl = l;
      this.rh = h;
    } else if (s < 32) {
      this.rh = (h << s) | (l >>> (32 - s));
      this.rl = l << s;
    } else {
      this.rh = l << (s - 32);
      this.rl = 0;
    }
  }
  private srl(l: number, h: number, s: number): void {
    if (s === 0) {
      this.rl = l;
      this.rh = h;
    } else if (s < 32) {
      this.rl = (l >>> s) | (h << (32 - s));
      this.rh = (h >>> s) | 0;
    } else {
      this.rl = (h >>> (s - 32)) | 0;
      this.rh = 0;
    }
  }
  private sra(l: number, h: number, s: number): void {
    if (s === 0) {
      this.rl = l;
      this.rh = h;
    } else if (s < 32) {
      this.rl = (l >>> s) | (h << (32 - s));
      this.rh = h >> s;
    } else {
      this.rl = h >> (s - 32);
      this.rh = h >> 31;
    }
  }

  /** Unsigned 32x32 -> 64 product of a and b into rl/rh. */
  private mulu32(a: number, b: number): void {
    const a0 = a & 0xffff;
    const a1 = a >>> 16;
    const b0 = b & 0xffff;
    const b1 = b >>> 16;
    const p00 = a0 * b0;
    const mid = a1 * b0 + a0 * b1; // < 2^33
    const lo = p00 + (mid % 65536) * 65536;
    const hi = a1 * b1 + Math.floor(mid / 65536) + Math.floor(lo / TWO32);
    this.rl = lo | 0;
    this.rh = hi | 0;
  }

  private op(inst: number, rd: number, rs1: number, rs2: number, f3: number): void {
    const al = this.xl[rs1]!;
    const ah = this.xh[rs1]!;
    const bl = this.xl[rs2]!;
    const bh = this.xh[rs2]!;
    const f7 = inst >>> 25;
    if (f7 === 1) {
      this.mulDiv(rd, al, ah, bl, bh, f3);
      return;
    }
    if (f7 !== 0 && !(f7 === 0x20 && (f3 === 0 || f3 === 5))) {
      this.opB(inst, rd, al, ah, bl, bh, f3);
      return;
    }
    switch (f3) {
      case 0: {
        if (f7 === 0) {
          const carry = (al >>> 0) + (bl >>> 0) > 0xffffffff ? 1 : 0;
          this.setx(rd, (al + bl) | 0, (ah + bh + carry) | 0);
        } else {
          const borrow = al >>> 0 < bl >>> 0 ? 1 : 0;
          this.setx(rd, (al - bl) | 0, (ah - bh - borrow) | 0);
        }
        return;
      }
      case 1:
        this.sll(al, ah, bl & 63);
        this.setx(rd, this.rl, this.rh);
        return;
      case 2:
        this.setx(rd, ah < bh || (ah === bh && al >>> 0 < bl >>> 0) ? 1 : 0, 0);
        return;
      case 3:
        this.setx(rd, ah >>> 0 < bh >>> 0 || (ah === bh && al >>> 0 < bl >>> 0) ? 1 : 0, 0);
        return;
      case 4:
        this.setx(rd, al ^ bl, ah ^ bh);
        return;
      case 5:
        if (f7 === 0) this.srl(al, ah, bl & 63);
        else this.sra(al, ah, bl & 63);
        this.setx(rd, this.rl, this.rh);
        return;
      case 6:
        this.setx(rd, al | bl, ah | bh);
        return;
      default:
        this.setx(rd, al & bl, ah & bh);
    }
  }

  private mulDiv(rd: number, al: number, ah: number, bl: number, bh: number, f3: number): void {
    if (f3 === 0) {
      // MUL: low 64 bits of the product
      this.mulu32(al, bl);
      const hi = (this.rh + Math.imul(al, bh) + Math.imul(ah, bl)) | 0;
      this.setx(rd, this.rl, hi);
      return;
    }
    const a = (BigInt(ah) << 32n) | BigInt(al >>> 0);
    const b = (BigInt(bh) << 32n) | BigInt(bl >>> 0);
    const ua = BigInt.asUintN(64, a);
    const ub = BigInt.asUintN(64, b);
    let r: bigint;
    switch (f3) {
      case 1:
        r = (a * b) >> 64n;
        break;
      case 2:
        r = (a * ub) >> 64n;
        break;
      case 3:
        r = (ua * ub) >> 64n;
        break;
      case 4:
        // DIV: by zero gives -1; MIN / -1 overflows to MIN (unprivileged spec 7.2)
        r = b === 0n ? -1n : a === -(1n << 63n) && b === -1n ? a : a / b;
        break;
      case 5:
        r = ub === 0n ? -1n : ua / ub;
        break;
      case 6:
        r = b === 0n ? a : a === -(1n << 63n) && b === -1n ? 0n : a % b;
        break;
      default:
        r = ub === 0n ? ua : ua % ub;
    }
    this.setBig(rd, r);
  }

  private setBig(rd: number, v: bigint): void {
    if (rd === 0) return;
    this.q64[0] = BigInt.asUintN(64, v);
    this.xl[rd] = this.q32[0]!;
    this.xh[rd] = this.q32[1]!;
  }

  private op32(inst: number, rd: number, rs1: number, rs2: number, f3: number): void {
    const a = this.xl[rs1]!;
    const b = this.xl[rs2]!;
    const f7 = inst >>> 25;
    let v: number;
    if (f7 === 1) {
      switch (f3) {
        case 0:
          v = Math.imul(a, b);
          break;
        case 4:
          v = b === 0 ? -1 : a === -0x80000000 && b === -1 ? a : (a / b) | 0;
          break;
        case 5:
          v = b === 0 ? -1 : Math.trunc((a >>> 0) / (b >>> 0)) | 0;
          break;
        case 6:
          v = b === 0 ? a : a === -0x80000000 && b === -1 ? 0 : (a % b) | 0;
          break;
        case 7:
          v = b === 0 ? a : ((a >>> 0) % (b >>> 0)) | 0;
          break;
        default:
          this.illegal();
      }
    } else if (f7 === 0) {
      switch (f3) {
        case 0:
          v = (a + b) | 0;
          break;
        case 1:
          v = a << (b & 31);
          break;
        case 5:
          v = (a >>> (b & 31)) | 0;
          break;
        default:
          this.illegal();
      }
    } else if (f7 === 0x20 && f3 === 0) v = (a - b) | 0;
    else if (f7 === 0x20 && f3 === 5) v = a >> (b & 31);
    else {
      this.op32B(inst, rd, rs1, rs2, f3);
      return;
    }
    this.setx(rd, v, v >> 31);
  }

  // ---------------------------------------------------------------------------------------------
  // Zba, Zbb, Zbc, Zbs (QEMU 7.2 trans_rvb.c.inc). They share the major opcodes of the base integer
  // instructions; the base ones are decoded first, and only what they leave over comes here, so
  // the hot path pays nothing. Encodings QEMU 7.2 decodes only for RV32 (rev8 and zext.h in their
  // RV32 forms) or only for Zbk* (pack, packh, packw, brev8, zip, unzip, xperm) are illegal, as on
  // QEMU's default rv64 hart, which has Zbb/Zbc but no Zbk*.

  /** OP-IMM with funct6 other than slli/srli/srai: Zbs immediates, Zbb unary ops, rori. */
  private opImmB(inst: number, rd: number, al: number, ah: number, f3: number): void {
    const top = inst >>> 26;
    // the shift amount (bits 25:20); QEMU decodes 7 bits (26:20) and calls 64 and up illegal,
    // which is bit 26 clear, part of `top` here
    const sh = (inst >>> 20) & 63;
    if (f3 === 1) {
      switch (top) {
        case 0x0a: // bseti
          this.bitOp(rd, al, ah, sh, 1);
          return;
        case 0x12: // bclri
          this.bitOp(rd, al, ah, sh, 2);
          return;
        case 0x1a: // binvi
          this.bitOp(rd, al, ah, sh, 3);
          return;
        case 0x18:
          switch (sh) {
            case 0: // clz
              this.setx(rd, ah !== 0 ? Math.clz32(ah) : 32 + Math.clz32(al), 0);
              return;
            case 1: // ctz
              this.setx(rd, al !== 0 ? ctz32(al) : ah !== 0 ? 32 + ctz32(ah) : 64, 0);
              return;
            case 2: // cpop
              this.setx(rd, popcount32(al) + popcount32(ah), 0);
              return;
            case 4: {
              // sext.b
              const v = (al << 24) >> 24;
              this.setx(rd, v, v >> 31);
              return;
            }
            case 5: {
              // sext.h
              const v = (al << 16) >> 16;
              this.setx(rd, v, v >> 31);
              return;
            }
          }
      }
    } else if (f3 === 5) {
      switch (top) {
        case 0x12: // bexti
          this.bitOp(rd, al, ah, sh, 0);
          return;
        case 0x18: // rori
          this.rotr(al, ah, sh);
          this.setx(rd, this.rl, this.rh);
          return;
        case 0x0a:
          if (sh === 0x07) {
            // orc.b
            this.setx(rd, orcb32(al), orcb32(ah));
            return;
          }
          break;
        case 0x1a:
          if (sh === 0x38) {
            // rev8 (RV64 form; the RV32 one, 0x698, is illegal on RV64 as QEMU's REQUIRE_32BIT)
            this.setx(rd, bswap32(ah), bswap32(al));
            return;
          }
          break;
      }
    }
    this.illegal();
  }

  /**
   * Zbs on the bit `s` (0..63): 0 bext, 1 bset, 2 bclr, 3 binv.
   */
  private bitOp(rd: number, al: number, ah: number, s: number, kind: number): void {
    const inHi = s >= 32;
    const m = 1 << (s & 31);
    if (kind === 0) {
      this.setx(rd, ((inHi ? ah : al) & m) !== 0 ? 1 : 0, 0);
      return;
    }
    let w = inHi ? ah : al;
    w = kind === 1 ? w | m : kind === 2 ? w & ~m : w ^ m;
    if (inHi) this.setx(rd, al, w);
    else this.setx(rd, w, ah);
  }

  /** 64-bit rotate right of (l, h) by s (0..63) into rl/rh. */
  private rotr(l: number, h: number, s: number): void {
    if (s >= 32) {
      const t = l;
      l = h;
      h = t;
      s -= 32;
    }
    if (s === 0) {
      this.rl = l;
      this.rh = h;
      return;
    }
    this.rl = (l >>> s) | (h << (32 - s));
    this.rh = (h >>> s) | (l << (32 - s));
  }

  /** OP with funct7 other than the base and M ones: Zba shNadd, Zbb, Zbc, Zbs. */
  private opB(inst: number, rd: number, al: number, ah: number, bl: number, bh: number, f3: number): void {
    switch (inst >>> 25) {
      case 0x05:
        switch (f3) {
          case 1: // clmul
            this.clmul(al, ah, bl, bh);
            this.setx(rd, this.rl, this.rh);
            return;
          case 2: // clmulr
            this.clmulr(al, ah, bl, bh);
            this.setx(rd, this.rl, this.rh);
            return;
          case 3: // clmulh: QEMU's gen_clmulh is clmulr shifted right by one
            this.clmulr(al, ah, bl, bh);
            this.setx(rd, (this.rl >>> 1) | (this.rh << 31), this.rh >>> 1);
            return;
          case 4:
          case 6: {
            // min, max
            const aLess = ah < bh || (ah === bh && al >>> 0 < bl >>> 0);
            const a = aLess === (f3 === 4);
            this.setx(rd, a ? al : bl, a ? ah : bh);
            return;
          }
          case 5:
          case 7: {
            // minu, maxu
            const aLess = ah >>> 0 < bh >>> 0 || (ah === bh && al >>> 0 < bl >>> 0);
            const a = aLess === (f3 === 5);
            this.setx(rd, a ? al : bl, a ? ah : bh);
            return;
          }
        }
        break;
      case 0x10:
        if (f3 === 2 || f3 === 4 || f3 === 6) {
          // sh1add, sh2add, sh3add
          this.sll(al, ah, f3 >>> 1);
          this.add(rd, this.rl, this.rh, bl, bh);
          return;
        }
        break;
      case 0x20:
        switch (f3) {
          case 4: // xnor
            this.setx(rd, ~(al ^ bl), ~(ah ^ bh));
            return;
          case 6: // orn
            this.setx(rd, al | ~bl, ah | ~bh);
            return;
          case 7: // andn
            this.setx(rd, al & ~bl, ah & ~bh);
            return;
        }
        break;
      case 0x30:
        if (f3 === 1 || f3 === 5) {
          // rol, ror (the amount is rs2 mod 64, gen_shift)
          this.rotr(al, ah, f3 === 5 ? bl & 63 : (64 - (bl & 63)) & 63);
          this.setx(rd, this.rl, this.rh);
          return;
        }
        break;
      case 0x24:
        if (f3 === 1 || f3 === 5) {
          // bclr, bext
          this.bitOp(rd, al, ah, bl & 63, f3 === 1 ? 2 : 0);
          return;
        }
        break;
      case 0x34:
        if (f3 === 1) {
          // binv
          this.bitOp(rd, al, ah, bl & 63, 3);
          return;
        }
        break;
      case 0x14:
        if (f3 === 1) {
          // bset
          this.bitOp(rd, al, ah, bl & 63, 1);
          return;
        }
        break;
    }
    this.illegal();
  }

  /** rd = (al, ah) + (bl, bh). */
  private add(rd: number, al: number, ah: number, bl: number, bh: number): void {
    const carry = (al >>> 0) + (bl >>> 0) > 0xffffffff ? 1 : 0;
    this.setx(rd, (al + bl) | 0, (ah + bh + carry) | 0);
  }

  /** Carry-less product, low 64 bits, into rl/rh (QEMU helper_clmul). */
  private clmul(al: number, ah: number, bl: number, bh: number): void {
    let rl = 0;
    let rh = 0;
    for (let i = 0; i < 32; i++) {
      if (((bl >>> i) & 1) !== 0) {
        // a << i
        rl ^= al << i;
        rh ^= i === 0 ? ah : (ah << i) | (al >>> (32 - i));
      }
      if (((bh >>> i) & 1) !== 0) rh ^= al << i; // a << (32 + i)
    }
    this.rl = rl;
    this.rh = rh;
  }

  /** Bits 126:63 of the carry-less product into rl/rh (QEMU helper_clmulr: a >> (63 - i) for each bit i of b). */
  private clmulr(al: number, ah: number, bl: number, bh: number): void {
    let rl = 0;
    let rh = 0;
    for (let i = 0; i < 64; i++) {
      const bit = i < 32 ? (bl >>> i) & 1 : (bh >>> (i - 32)) & 1;
      if (bit === 0) continue;
      const s = 63 - i;
      if (s >= 32) rl ^= ah >>> (s - 32);
      else if (s === 0) {
        rl ^= al;
        rh ^= ah;
      } else {
        rl ^= (al >>> s) | (ah << (32 - s));
        rh ^= ah >>> s;
      }
    }
    this.rl = rl;
    this.rh = rh;
  }

  /** OP-IMM-32 beyond slliw/srliw/sraiw: slli.uw, clzw/ctzw/cpopw, roriw. */
  private opImm32B(inst: number, rd: number, rs1: number, f3: number): void {
    const al = this.xl[rs1]!;
    const ah = this.xh[rs1]!;
    if (f3 === 1) {
      if (inst >>> 26 === 0x02) {
        // slli.uw: the low word, zero-extended, shifted by bits 25:20 (bit 26 set would be a
        // shift of 64 or more, illegal in QEMU's 7-bit decode)
        this.sll(al, 0, (inst >>> 20) & 63);
        this.setx(rd, this.rl, this.rh);
        return;
      }
      if (inst >>> 25 === 0x30) {
        switch ((inst >>> 20) & 31) {
          case 0: // clzw
            this.setx(rd, Math.clz32(al), 0);
            return;
          case 1:
            // ctzw: QEMU 7.2's gen_ctzw counts over all 64 bits (32 only when all are zero), so
            // with a zero low word it gives 32 + the trailing zeros of the high one. A QEMU 7.2
            // bug (QEMU 10.0 gives 32), kept: the differential test compares against 7.2.
            this.setx(rd, al !== 0 ? ctz32(al) : ah !== 0 ? 32 + ctz32(ah) : 32, 0);
            return;
          case 2: // cpopw
            this.setx(rd, popcount32(al), 0);
            return;
        }
      }
    } else if (f3 === 5 && inst >>> 25 === 0x30) {
      // roriw
      const s = (inst >>> 20) & 31;
      const v = s === 0 ? al : (al >>> s) | (al << (32 - s));
      this.setx(rd, v, v >> 31);
      return;
    }
    this.illegal();
  }

  /** OP-32 beyond the base and M ones: add.uw, shNadd.uw, zext.h, rolw, rorw. */
  private op32B(inst: number, rd: number, rs1: number, rs2: number, f3: number): void {
    const al = this.xl[rs1]!;
    const bl = this.xl[rs2]!;
    const bh = this.xh[rs2]!;
    switch (inst >>> 25) {
      case 0x04:
        if (f3 === 0) {
          // add.uw
          this.add(rd, al, 0, bl, bh);
          return;
        }
        if (f3 === 4 && rs2 === 0) {
          // zext.h (RV64 form; with rs2 other than x0 it is Zbkb's packw)
          this.setx(rd, al & 0xffff, 0);
          return;
        }
        break;
      case 0x10:
        if (f3 === 2 || f3 === 4 || f3 === 6) {
          // sh1add.uw, sh2add.uw, sh3add.uw
          this.sll(al, 0, f3 >>> 1);
          this.add(rd, this.rl, this.rh, bl, bh);
          return;
        }
        break;
      case 0x30:
        if (f3 === 1 || f3 === 5) {
          // rolw, rorw: 32-bit rotate by rs2 mod 32, sign-extended
          let s = bl & 31;
          if (f3 === 1) s = (32 - s) & 31;
          const v = s === 0 ? al : (al >>> s) | (al << (32 - s));
          this.setx(rd, v, v >> 31);
          return;
        }
        break;
    }
    this.illegal();
  }

  // ---------------------------------------------------------------------------------------------
  // Memory

  /** Physical address of an untranslated access of `size` bytes by privilege `mode`, or an access fault. */
  private bareAddr(va: number, acc: number, size: number, mode: number): number {
    if (va < 0 || va >= PA_LIMIT) this.accessFault(va, acc);
    this.pmpCheck(va, va, size, acc, mode);
    return va;
  }

  /**
   * The PMP check of an access QEMU's riscv_cpu_tlb_fill makes through get_physical_address_pmp,
   * here made where the hart fills its TLB or remembers a page: an access fault of the access's
   * kind at `va` when pmp_hart_has_privs refuses it. Sets {@link fillCacheable} to whether the page
   * may be cached: QEMU's pmp_is_range_in_tlb makes the TLB entry 1 byte (used once) when a PMP
   * range starts or ends inside the page, so every access there is checked again.
   */
  private pmpCheck(va: number, pa: number, size: number, acc: number, mode: number): void {
    if (!this.pmpAllows(pa, size, acc, mode)) this.accessFault(va, acc);
    this.fillCacheable = !this.pmpSplitsPage(pa - (pa % 4096));
  }

  /**
   * pmp_hart_has_privs (no ePMP: QEMU 7.2's default hart has no mseccfg): entries in order, the
   * first whose range holds both the first and the last byte decides; an entry holding only one of
   * them fails the access whatever its A field (also for M-mode). A matching entry grants its RWX
   * bits, to M-mode only when locked (otherwise all); no match grants M everything and S/U
   * nothing, and with no active entry at all the same (pmp_hart_has_privs_default).
   */
  private pmpAllows(pa: number, size: number, acc: number, mode: number): boolean {
    if (this.pmpRules === 0) return mode === PRV_M;
    const last = pa + size - 1;
    const sa = this.pmpSa;
    const ea = this.pmpEa;
    const all = pa < 4096;
    const n = all ? 16 : this.pmpListLen;
    for (let k = 0; k < n; k++) {
      const i = all ? k : this.pmpList[k]!;
      const s = pa >= sa[i]! && pa <= ea[i]!;
      const e = last >= sa[i]! && last <= ea[i]!;
      if (s !== e) return false;
      const cfg = this.pmpcfg[i]!;
      if (s && (cfg & 0x18) !== 0) {
        if (mode === PRV_M && (cfg & 0x80) === 0) return true;
        return ((cfg >>> acc) & 1) !== 0;
      }
    }
    return mode === PRV_M;
  }

  /** pmp_is_range_in_tlb/pmp_get_tlb_size: whether some entry's range covers part of the page only. */
  private pmpSplitsPage(pbase: number): boolean {
    const pend = pbase + 4095;
    const all = pbase === 0;
    const n = all ? 16 : this.pmpListLen;
    for (let k = 0; k < n; k++) {
      const i = all ? k : this.pmpList[k]!;
      const s = this.pmpSa[i]!;
      const e = this.pmpEa[i]!;
      // the part of the page the range covers, when it starts or ends in the page
      let part = 0;
      if (s >= pbase && e <= pend) part = e - s + 1;
      else if (s >= pbase && s <= pend && e >= pend) part = pend - s + 1;
      else if (e <= pend && e >= pbase && s <= pbase) part = e - pbase + 1;
      if (part !== 0 && part < 4096) return true;
    }
    return false;
  }

  /** pmp_update_rule_addr: entry `i`'s range from its A field, its pmpaddr and the one below (TOR). */
  private pmpUpdateRuleAddr(i: number): void {
    const M = (1n << 64n) - 1n;
    const a = this.pmpaddr[i]!;
    let sa = 0n;
    let ea = 0n;
    switch ((this.pmpcfg[i]! >>> 3) & 3) {
      case 0:
        ea = M;
        break;
      case 1:
        // TOR: [pmpaddr(i-1) << 2, (pmpaddr(i) << 2) - 1] in 64-bit arithmetic, so pmpaddr(i) = 0
        // wraps to the top of the address space; an empty range becomes [0, 0]
        sa = i > 0 ? (this.pmpaddr[i - 1]! << 2n) & M : 0n;
        ea = ((a << 2n) - 1n) & M;
        if (sa > ea) {
          sa = 0n;
          ea = 0n;
        }
        break;
      case 2:
        sa = (a << 2n) & M;
        ea = (sa + 3n) & M;
        break;
      default: {
        // NAPOT (pmp_decode_napot): the trailing ones of pmpaddr give the size
        const t = ((a << 2n) | 3n) & M;
        const t1 = (t + 1n) & M;
        sa = t & t1;
        ea = t | t1;
      }
    }
    this.pmpSa[i] = Number(sa);
    this.pmpEa[i] = Number(ea);
  }

  /** pmp_update_rule_nums: how many entries are active; and the list of those that matter. */
  private pmpUpdateRuleNums(): void {
    let n = 0;
    let len = 0;
    for (let i = 0; i < 16; i++) {
      const on = (this.pmpcfg[i]! & 0x18) !== 0;
      if (on) n++;
      const s = this.pmpSa[i]!;
      const e = this.pmpEa[i]!;
      if (s === 0 && (e === 0 || (!on && e >= 2 ** 64))) continue;
      this.pmpList[len++] = i;
    }
    this.pmpRules = n;
    this.pmpListLen = len;
  }

  private accessFault(va: number, acc: number): never {
    this.raise(
      acc === ACC_R ? EXC_LOAD_ACCESS : acc === ACC_W ? EXC_STORE_ACCESS : EXC_INST_ACCESS,
      BigInt.asUintN(64, BigInt(va)),
    );
  }

  private pageFault(va: number, acc: number): never {
    this.raise(
      acc === ACC_R ? EXC_LOAD_PAGE : acc === ACC_W ? EXC_STORE_PAGE : EXC_INST_PAGE,
      BigInt.asUintN(64, BigInt(va)),
    );
  }

  /** Physical address of a data access of `size` bytes, through the TLB when paging applies. */
  private dataAddr(va: number, acc: number, size: number): number {
    return this.dataLevels ? this.translate(va, acc, size) : this.bareAddr(va, acc, size, this.dataPriv);
  }

  /**
   * Virtual to physical through the TLB; on a miss, walks the page table and checks PMP for this
   * access (riscv_cpu_tlb_fill), and caches the page unless a PMP range splits it.
   */
  private translate(va: number, acc: number, size: number): number {
    const vpn = Math.floor(va / 4096);
    const i = (acc === ACC_X ? this.fetchSet : this.dataSet) + acc * TLB_N + (vpn & TLB_MASK);
    const base = vpn * 4096;
    if (this.tlbTag[i] === vpn) {
      this.fillCacheable = true;
      return this.tlbPhys[i]! + (va - base);
    }
    const pbase = this.walk(va, acc);
    const pa = pbase + (va - base);
    this.pmpCheck(va, pa, size, acc, acc === ACC_X ? this.priv : this.dataPriv);
    if (this.fillCacheable) {
      this.tlbTag[i] = vpn;
      this.tlbPhys[i] = pbase;
    }
    return pa;
  }

  /**
   * Page-table walk (get_physical_address in QEMU 7.2): returns the physical base of the 4 KiB
   * page holding `va`, setting A (and D on writes) in the leaf PTE as hardware must. QEMU
   * turns a failed PTE read into a page fault (not an access fault), and so does this walk.
   */
  private walk(va: number, acc: number): number {
    const levels = acc === ACC_X ? this.fetchLevels : this.dataLevels;
    const vaBits = 12 + 9 * levels;
    const half = 2 ** (vaBits - 1);
    if (va < -half || va >= half) this.pageFault(va, acc);
    const priv = acc === ACC_X ? this.priv : this.dataPriv;
    // The VPN of the sign-extended address read as unsigned
    const vpn = Math.floor(va / 4096);
    const vpnAll = vpn < 0 ? vpn + 2 ** (vaBits - 12) : vpn;
    let base = this.rootPpn * 4096;
    for (let level = levels - 1; level >= 0; level--) {
      const idx = Math.floor(vpnAll / 2 ** (9 * level)) % 512;
      const pteAddr = base + idx * 8;
      // get_physical_address checks each PTE read against PMP as an S-mode 8-byte load, whatever
      // the mode of the access; a refusal is an access fault of the access's kind
      if (!this.pmpAllows(pteAddr, 8, ACC_R, PRV_S)) this.accessFault(va, acc);
      const pteBig = this.bus.ldqLe(pteAddr);
      if (this.bus.lastResult !== 0) this.pageFault(va, acc);
      this.q64[0] = pteBig;
      const lo = this.q32[0]!;
      const hi = this.q32[1]!;
      // Reserved bits 63:54 (PBMT, N and the rest) must be zero: QEMU 7.2's default CPU has
      // neither Svpbmt nor Svnapot
      if ((hi & 0xffc00000) !== 0) this.pageFault(va, acc);
      if ((lo & 1) === 0 || (lo & 6) === 4) this.pageFault(va, acc);
      const ppn = (hi & 0x3fffff) * 4194304 + (lo >>> 10);
      if ((lo & 0xe) === 0) {
        base = ppn * 4096;
        continue;
      }
      // Leaf
      const u = (lo & 0x10) !== 0;
      if (priv === PRV_U ? !u : u && (acc === ACC_X || (this.mstatus & MS_SUM) === 0))
        this.pageFault(va, acc);
      let ok: boolean;
      if (acc === ACC_R) ok = (lo & 2) !== 0 || ((lo & 8) !== 0 && (this.mstatus & MS_MXR) !== 0);
      else if (acc === ACC_W) ok = (lo & 4) !== 0;
      else ok = (lo & 8) !== 0;
      if (!ok) this.pageFault(va, acc);
      const span = 2 ** (9 * level);
      if (ppn % span !== 0) this.pageFault(va, acc);
      if (level > 0) {
        const bytes = span * 4096;
        const lo = Math.floor(va / bytes) * bytes;
        if (lo < this.superLo) this.superLo = lo;
        if (lo + bytes > this.superHi) this.superHi = lo + bytes;
      }
      const want = lo | 0x40 | (acc === ACC_W ? 0x80 : 0);
      if (want !== lo) {
        this.q32[0] = want;
        this.q32[1] = hi;
        this.bus.stqLe(pteAddr, this.q64[0]!);
        if (this.bus.lastResult !== 0) this.pageFault(va, acc);
      }
      return (ppn + (vpnAll % span)) * 4096;
    }
    this.pageFault(va, acc);
  }

  /**
   * Physical address of a data read of `size` bytes at `va`, or -1 when it crosses a page. The
   * page of the last read is remembered; see {@link step} on why offsets are computed arithmetically.
   */
  private rdAddr(va: number, size: number): number {
    const off = va - this.rdV;
    if (off >= 0 && off <= 4096 - size) return this.rdP + off;
    const poff = va - Math.floor(va / 4096) * 4096;
    if (poff + size > 4096) return -1;
    const pa = this.dataAddr(va, ACC_R, size);
    if (this.fillCacheable) {
      this.rdV = va - poff;
      this.rdP = pa - poff;
    } else this.rdV = Number.NaN;
    return pa;
  }

  /** As {@link rdAddr}, for a write. */
  private wrAddr(va: number, size: number): number {
    const off = va - this.wrV;
    if (off >= 0 && off <= 4096 - size) return this.wrP + off;
    const poff = va - Math.floor(va / 4096) * 4096;
    if (poff + size > 4096) return -1;
    const pa = this.dataAddr(va, ACC_W, size);
    if (this.fillCacheable) {
      this.wrV = va - poff;
      this.wrP = pa - poff;
    } else this.wrV = Number.NaN;
    return pa;
  }

  /** Loads 1, 2 or 4 bytes, zero-extended. */
  private load(va: number, size: number): number {
    const pa = this.rdAddr(va, size);
    if (pa < 0) return this.loadSplit(va, size);
    const bus = this.bus;
    const v = size === 4 ? bus.ldlLe(pa) : size === 2 ? bus.lduwLe(pa) : bus.ldub(pa);
    if (bus.lastResult !== 0) this.accessFault(va, ACC_R);
    return v;
  }

  /** A misaligned load that crosses a page: byte by byte, both pages translated first (as QEMU splits it). */
  private loadSplit(va: number, size: number): number {
    // QEMU's load_helper: the first page is filled for the access's address, then the second
    // for its first byte (so a fault there reports the page's start)
    // (PMP: both fills are checked with the access's size, from its address and from the second
    // page's start, as load_helper's aligned halves are; store_helper_unaligned checks the second
    // page for the bytes in it only)
    this.dataAddr(va, ACC_R, size);
    this.dataAddr(Math.floor((va + size) / 4096) * 4096, ACC_R, size);
    let v = 0;
    for (let k = size - 1; k >= 0; k--) {
      const b = this.bus.ldub(this.dataAddr(va + k, ACC_R, 1));
      if (this.bus.lastResult !== 0) this.accessFault(va + k, ACC_R);
      v = v * 256 + b;
    }
    return v;
  }

  /** Loads 8 bytes into rl/rh. */
  private load64(va: number): void {
    const pa = this.rdAddr(va, 8);
    if (pa < 0) {
      const lo = this.loadSplit(va, 4);
      const hi = this.loadSplit(va + 4, 4);
      this.rl = lo | 0;
      this.rh = hi | 0;
      return;
    }
    const v = this.bus.ldqLe(pa);
    if (this.bus.lastResult !== 0) this.accessFault(va, ACC_R);
    this.q64[0] = v;
    this.rl = this.q32[0]!;
    this.rh = this.q32[1]!;
  }

  private store(va: number, size: number, v: number): void {
    const pa = this.wrAddr(va, size);
    if (pa < 0) {
      this.storeSplit(va, size, v, 0);
      return;
    }
    const bus = this.bus;
    if (size === 4) bus.stlLe(pa, v >>> 0);
    else if (size === 2) bus.stwLe(pa, v & 0xffff);
    else bus.stb(pa, v & 0xff);
    if (bus.lastResult !== 0) this.accessFault(va, ACC_W);
  }

  private storeSplit(va: number, size: number, lo: number, hi: number): void {
    // both pages before any byte is written, faults reported as in loadSplit (store_helper_unaligned)
    const page2 = Math.floor((va + size) / 4096) * 4096;
    this.dataAddr(va, ACC_W, size);
    this.dataAddr(page2, ACC_W, va + size - page2);
    for (let k = 0; k < size; k++) {
      const b = (k < 4 ? lo >>> (8 * k) : hi >>> (8 * (k - 4))) & 0xff;
      this.bus.stb(this.dataAddr(va + k, ACC_W, 1), b);
      if (this.bus.lastResult !== 0) this.accessFault(va + k, ACC_W);
    }
  }

  private store64(va: number, lo: number, hi: number): void {
    const pa = this.wrAddr(va, 8);
    if (pa < 0) {
      this.storeSplit(va, 8, lo, hi);
      return;
    }
    this.q32[0] = lo;
    this.q32[1] = hi;
    this.bus.stqLe(pa, this.q64[0]!);
    if (this.bus.lastResult !== 0) this.accessFault(va, ACC_W);
  }

  // ---------------------------------------------------------------------------------------------
  // A extension. QEMU 7.2 makes LR/SC/AMOs MO_ALIGN: a misaligned one raises the misaligned
  // exception (load for LR, store/AMO for the rest; riscv_cpu_do_unaligned_access), and an AMO is
  // checked as a store before anything is read.

  private amo(inst: number, rd: number, rs1: number, rs2: number, f3: number): void {
    if (f3 !== 2 && f3 !== 3) this.illegal();
    const size = f3 === 2 ? 4 : 8;
    const op = inst >>> 27;
    const va = this.xnum(rs1);
    if (op === 2) {
      // LR
      if (rs2 !== 0) this.illegal();
      if (va % size !== 0) this.raise(EXC_LOAD_MISALIGNED, BigInt.asUintN(64, BigInt(va)));
      let lo: number;
      let hi: number;
      if (size === 4) {
        lo = this.load(va, 4) | 0;
        hi = lo >> 31;
      } else {
        this.load64(va);
        lo = this.rl;
        hi = this.rh;
      }
      this.setx(rd, lo, hi);
      this.resAddr = va;
      this.resLo = lo;
      this.resHi = hi;
      return;
    }
    if (va % size !== 0) this.raise(EXC_STORE_MISALIGNED, BigInt.asUintN(64, BigInt(va)));
    if (op === 3) {
      // SC (gen_sc): with the reserved address, a compare-and-swap against the value LR loaded,
      // so that a store by another hart in between (harts run in turn) makes it fail; with
      // another address it fails without touching memory. Either way the reservation is gone.
      const match = this.resAddr === va;
      this.resAddr = -1;
      let ok = false;
      if (match) {
        const pa = this.dataAddr(va, ACC_W, size);
        const bus = this.bus;
        if (size === 4) {
          const cur = bus.ldlLe(pa) | 0;
          if (bus.lastResult !== 0) this.accessFault(va, ACC_W);
          ok = cur === this.resLo;
          if (ok) bus.stlLe(pa, this.xl[rs2]! >>> 0);
        } else {
          this.q64[0] = bus.ldqLe(pa);
          if (bus.lastResult !== 0) this.accessFault(va, ACC_W);
          ok = this.q32[0] === this.resLo && this.q32[1] === this.resHi;
          if (ok) {
            this.q32[0] = this.xl[rs2]!;
            this.q32[1] = this.xh[rs2]!;
            bus.stqLe(pa, this.q64[0]!);
          }
        }
        if (bus.lastResult !== 0) this.accessFault(va, ACC_W);
      }
      this.setx(rd, ok ? 0 : 1, 0);
      return;
    }
    const pa = this.dataAddr(va, ACC_W, size);
    const bus = this.bus;
    let ol: number;
    let oh: number;
    if (size === 4) {
      ol = bus.ldlLe(pa) | 0;
      oh = ol >> 31;
    } else {
      this.q64[0] = bus.ldqLe(pa);
      ol = this.q32[0]!;
      oh = this.q32[1]!;
    }
    if (bus.lastResult !== 0) this.accessFault(va, ACC_W);
    let bl = this.xl[rs2]!;
    let bh = size === 4 ? bl >> 31 : this.xh[rs2]!;
    switch (op) {
      case 1: // AMOSWAP
        break;
      case 0: {
        // AMOADD
        const carry = (ol >>> 0) + (bl >>> 0) > 0xffffffff ? 1 : 0;
        const nl = (ol + bl) | 0;
        bh = (oh + bh + carry) | 0;
        bl = nl;
        break;
      }
      case 4:
        bl ^= ol;
        bh ^= oh;
        break;
      case 12:
        bl &= ol;
        bh &= oh;
        break;
      case 8:
        bl |= ol;
        bh |= oh;
        break;
      case 16:
      case 20:
      case 24:
      case 28: {
        const signed = op === 16 || op === 20;
        const aLess = signed
          ? oh < bh || (oh === bh && ol >>> 0 < bl >>> 0)
          : oh >>> 0 < bh >>> 0 || (oh === bh && ol >>> 0 < bl >>> 0);
        const wantMin = op === 16 || op === 24;
        if (aLess === wantMin) {
          bl = ol;
          bh = oh;
        }
        break;
      }
      default:
        this.illegal();
    }
    if (size === 4) bus.stlLe(pa, bl >>> 0);
    else {
      this.q32[0] = bl;
      this.q32[1] = bh;
      bus.stqLe(pa, this.q64[0]!);
    }
    if (bus.lastResult !== 0) this.accessFault(va, ACC_W);
    this.setx(rd, ol, oh);
  }

  // ---------------------------------------------------------------------------------------------
  // SYSTEM: ECALL, EBREAK, xRET, WFI, SFENCE.VMA, CSR instructions

  private system(inst: number, rd: number, rs1: number, f3: number): void {
    if (f3 === 0) {
      const f12 = inst >>> 20;
      if (inst >>> 25 === 0x09) {
        // SFENCE.VMA (TVM traps it in S-mode; U-mode never has it)
        if (rd !== 0) this.illegal();
        if (this.priv === PRV_U || (this.priv === PRV_S && (this.mstatus & MS_TVM) !== 0)) this.illegal();
        // rs1 names one page (the ASID in rs2 is ignored: entries are not tagged by ASID)
        if (rs1 !== 0) this.flushPage(this.xnum(rs1));
        else this.flushTlb();
        return;
      }
      if (rd !== 0 || rs1 !== 0) this.illegal();
      switch (f12) {
        case 0:
          this.raise(EXC_ECALL_U + this.priv, 0n);
          break;
        case 1:
          // riscv_cpu_do_interrupt gives a breakpoint no tval (the spec allows 0)
          this.raise(EXC_BREAKPOINT, 0n);
          break;
        case 0x102:
          this.sret();
          return;
        case 0x302:
          this.mret();
          return;
        case 0x105:
          // WFI (helper_wfi): illegal in U-mode, and in S-mode when TW is set
          if (this.priv === PRV_U || (this.priv === PRV_S && (this.mstatus & MS_TW) !== 0)) this.illegal();
          if ((this.mip & this.mie) === 0) this.wfi = true;
          return;
        default:
          this.illegal();
      }
      return;
    }
    if (f3 === 4) this.illegal();
    const csr = inst >>> 20;
    const src =
      f3 >= 5
        ? BigInt(rs1)
        : BigInt.asUintN(64, (BigInt(this.xh[rs1]!) << 32n) | BigInt(this.xl[rs1]! >>> 0));
    const op = f3 & 3;
    // QEMU 7.2 (riscv_csrrw_check, riscv_csrrw_do64) calls csrrs/csrrc a write only when the mask,
    // the value of rs1 (or the immediate), is nonzero, not when rs1 names a register other than
    // x0: a set/clear of 0 bits reads even a read-only CSR without trapping
    const writes = op === 1 || src !== 0n;
    // privilege and read-only checks (riscv_csrrw_check)
    if (((csr >>> 8) & 3) > this.priv) this.illegal();
    if (writes && csr >>> 10 === 3) this.illegal();
    // a CSRRW to x0 does not read in QEMU, but no CSR read here has side effects: read to check it exists
    const old = this.csrRead(csr);
    if (writes) {
      // QEMU's riscv_csrrw takes a value and a write mask: csrrw writes rs1 under all ones,
      // csrrs/csrrc all ones/zero under rs1. Most CSRs store (old & ~mask) | (value & mask), the
      // `nv` here; mip writes only the bits of the mask (rmw_mip64), see csrWrite.
      const nv = op === 1 ? src : op === 2 ? old | src : old & ~src;
      this.csrWrite(csr, nv, op === 1 ? -1 : Number(BigInt.asIntN(32, src)));
    }
    this.setBig(rd, old);
  }

  private mret(): void {
    if (this.priv < PRV_M) this.illegal();
    let ms = this.mstatus;
    let prev = (ms & MS_MPP) >>> 11;
    if (prev === 2) prev = PRV_U;
    ms = (ms & ~MS_MIE) | ((ms & MS_MPIE) !== 0 ? MS_MIE : 0);
    ms |= MS_MPIE;
    ms &= ~MS_MPP;
    if (prev !== PRV_M) ms &= ~MS_MPRV;
    this.mstatus = ms;
    this.priv = prev;
    this.npc = Number(BigInt.asIntN(64, this.mepc & ~1n));
    this.resAddr = -1;
    this.xlateChanged();
  }

  private sret(): void {
    if (this.priv < PRV_S || (this.priv === PRV_S && (this.mstatus & MS_TSR) !== 0)) this.illegal();
    let ms = this.mstatus;
    const prev = (ms & MS_SPP) !== 0 ? PRV_S : PRV_U;
    ms = (ms & ~MS_SIE) | ((ms & MS_SPIE) !== 0 ? MS_SIE : 0);
    ms |= MS_SPIE;
    ms &= ~MS_SPP;
    // priv 1.12: leaving for a mode below M clears MPRV (helper_sret)
    ms &= ~MS_MPRV;
    this.mstatus = ms;
    this.priv = prev;
    this.npc = Number(BigInt.asIntN(64, this.sepc & ~1n));
    this.resAddr = -1;
    this.xlateChanged();
  }

  /** Full mstatus value: SD, SXL = UXL = 2 (64-bit) added to the stored low half. */
  private mstatusValue(): bigint {
    let v = BigInt(this.mstatus >>> 0) | (2n << 32n) | (2n << 34n);
    if ((this.mstatus & MS_FS) === MS_FS || (this.mstatus & MS_VS) === MS_VS) v |= 1n << 63n;
    return v;
  }

  /** Whether a counter CSR is visible at the current privilege (QEMU ctr()). */
  private counterOk(bit: number): void {
    const m = 1n << BigInt(bit);
    if (this.priv < PRV_M && (this.mcounteren & m) === 0n) this.illegal();
    if (this.priv < PRV_S && (this.scounteren & m) === 0n) this.illegal();
  }

  private fsOn(): void {
    if (!this.hasF || (this.mstatus & MS_FS) === 0) this.illegal();
  }

  private csrRead(csr: number): bigint {
    switch (csr) {
      case 0x001:
        this.fsOn();
        return BigInt(this.fpu.fcsr & 0x1f);
      case 0x002:
        this.fsOn();
        return BigInt(this.fpu.fcsr >>> 5);
      case 0x003:
        this.fsOn();
        return BigInt(this.fpu.fcsr);
      case 0xc00:
        this.counterOk(0);
        return this.cycle();
      case 0xc01:
        this.counterOk(1);
        return BigInt.asUintN(64, this.readTime());
      case 0xc02:
        this.counterOk(2);
        return this.instret();
      case 0x100:
        return this.mstatusValue() & (BigInt(SSTATUS_MASK) | (3n << 32n) | (1n << 63n));
      case 0x104:
        return BigInt(this.mie & this.mideleg);
      case 0x105:
        return this.stvec;
      case 0x106:
        return this.scounteren;
      case 0x10a:
        return this.senvcfg;
      case 0x140:
        return this.sscratch;
      case 0x141:
        return this.sepc;
      case 0x142:
        return this.scause;
      case 0x143:
        return this.stval;
      case 0x144:
        return BigInt(this.mip & this.mideleg);
      case 0x14d:
        this.sstcOk();
        return this.stimecmp;
      case 0x180:
        // satp: TVM traps S-mode accesses
        if (this.priv === PRV_S && (this.mstatus & MS_TVM) !== 0) this.illegal();
        return this.satp;
      case 0xf11:
      case 0xf12:
      case 0xf13:
      case 0xf15:
        return 0n;
      case 0xf14:
        return BigInt(this.hartId);
      case 0x300:
        return this.mstatusValue();
      case 0x301:
        return (2n << 62n) | BigInt(this.misaExt);
      case 0x302:
        return BigInt(this.medeleg);
      case 0x303:
        return BigInt(this.mideleg);
      case 0x304:
        return BigInt(this.mie);
      case 0x305:
        return this.mtvec;
      case 0x306:
        return this.mcounteren;
      case 0x30a:
        return this.menvcfg;
      case 0x320:
        return this.mcountinhibit;
      case 0x340:
        return this.mscratch;
      case 0x341:
        return this.mepc;
      case 0x342:
        return this.mcause;
      case 0x343:
        return this.mtval;
      case 0x344:
        return BigInt(this.mip);
      case 0xb00:
        return this.cycle();
      case 0xb02:
        return this.instret();
    }
    if (csr >= 0x3a0 && csr <= 0x3a3) {
      if (csr & 1) this.illegal();
      let v = 0n;
      const base = (csr - 0x3a0) * 4;
      for (let k = 7; k >= 0; k--) v = (v << 8n) | BigInt(this.pmpcfg[base + k]!);
      return v;
    }
    if (csr >= 0x3b0 && csr <= 0x3bf) return this.pmpaddr[csr - 0x3b0]!;
    // QEMU 7.2 (mctr/ctr): counters 3..18 exist, 19..31 are illegal; events 3..31 all exist
    if (csr >= 0xb03 && csr <= 0xb12) return this.hpmCounter[csr - 0xb00]!;
    if (csr >= 0x323 && csr <= 0x33f) return this.hpmEvent[csr - 0x320]!;
    if (csr >= 0xc03 && csr <= 0xc12) {
      this.counterOk(csr - 0xc00);
      return this.hpmCounter[csr - 0xc00]!;
    }
    this.illegal();
  }

  /**
   * QEMU's `sstc` predicate for stimecmp: the hart has Sstc, and below M-mode both
   * mcounteren.TM and menvcfg.STCE are set. (QEMU 7.2 also lets M-mode reach vstimecmp on a hart
   * without H, and a write there raises the VS timer interrupt this hart does not have: without
   * H, vstimecmp is an unknown CSR here, as the other H CSRs are.)
   */
  private sstcOk(): void {
    if (!this.stimer) this.illegal();
    if (this.priv === PRV_M) return;
    if ((this.mcounteren & 2n) === 0n || this.menvcfg >> 63n === 0n) this.illegal();
  }

  /**
   * riscv_timer_write_timecmp: a stimecmp already reached raises STIP at once (and leaves a timer
   * armed before as it is); a later one clears STIP and arms the timer for it.
   */
  private writeStimecmp(): void {
    if (this.stimecmp <= BigInt.asUintN(64, this.readTime())) {
      this.mip |= IRQ_STIP;
    } else {
      this.mip &= ~IRQ_STIP;
      this.stimer!.arm(this.stimecmp, this.stimerFired);
    }
    this.updateIrq();
  }

  private cycle(): bigint {
    return BigInt.asUintN(64, BigInt(this.icount) + this.cycleOff);
  }
  private instret(): bigint {
    return BigInt.asUintN(64, BigInt(this.icount) + this.instretOff);
  }

  /**
   * rmw_mip64: writes the bits of `mask` of mip from `value`; SSIP, STIP and SEIP are writable.
   * SEIP is kept apart from the PLIC's line: a write to it sets the software bit, which mip shows
   * ORed with the line.
   */
  private writeMip(value: number, mask: number): void {
    let m = mask & S_INTS;
    // with Sstc and menvcfg.STCE, STIP is stimecmp's alone: M-mode cannot write it (rmw_mip64)
    if (this.stimer && this.priv === PRV_M && this.menvcfg >> 63n !== 0n) m &= ~IRQ_STIP;
    let nv = value;
    if ((m & IRQ_SEIP) !== 0) {
      this.softwareSeip = (value & IRQ_SEIP) !== 0;
      if (this.externalSeip) nv |= IRQ_SEIP;
    }
    this.mip = (this.mip & ~m) | (nv & m);
    this.updateIrq();
  }

  /** Writes `v` to `csr`; `mask` holds the low 32 bits of the write mask (see the CSR instruction). */
  private csrWrite(csr: number, v: bigint, mask: number): void {
    const lo = Number(v & 0xffffffffn) | 0;
    switch (csr) {
      case 0x001:
        this.fsOn();
        this.fpu.fcsr = (this.fpu.fcsr & ~0x1f) | (lo & 0x1f);
        this.mstatus |= MS_FS;
        return;
      case 0x002:
        this.fsOn();
        this.fpu.fcsr = (this.fpu.fcsr & 0x1f) | ((lo & 7) << 5);
        this.mstatus |= MS_FS;
        return;
      case 0x003:
        this.fsOn();
        this.fpu.fcsr = lo & 0xff;
        this.mstatus |= MS_FS;
        return;
      case 0x100: {
        const m = SSTATUS_MASK & ~(3 << 15) & (this.hasF ? ~0 : ~MS_FS);
        this.setMstatus((this.mstatus & ~m) | (lo & m));
        return;
      }
      case 0x104: {
        const m = this.mideleg;
        this.mie = (this.mie & ~m) | (lo & m);
        this.updateIrq();
        return;
      }
      case 0x105:
        if ((v & 3n) < 2n) this.stvec = v;
        return;
      case 0x106:
        this.scounteren = v;
        return;
      case 0x10a:
        // QEMU 7.2 write_senvcfg keeps FIOM and the CBIE/CBCFE/CBZE bits (7..4) whatever the
        // extensions; this hart has no CBO instructions, so those bits only read back
        this.senvcfg = v & 0xf1n;
        return;
      case 0x140:
        this.sscratch = v;
        return;
      case 0x141:
        // write_sepc/write_mepc keep bit 0 (it reads back); sret/mret drop it when jumping
        this.sepc = v;
        return;
      case 0x142:
        this.scause = v;
        return;
      case 0x143:
        this.stval = v;
        return;
      case 0x144: {
        // sip: only SSIP is writable, and only when delegated (rmw_sip)
        const m = IRQ_SSIP & this.mideleg;
        this.mip = (this.mip & ~m) | (lo & m);
        this.updateIrq();
        return;
      }
      case 0x14d:
        this.stimecmp = v;
        this.writeStimecmp();
        return;
      case 0x180: {
        if (this.priv === PRV_S && (this.mstatus & MS_TVM) !== 0) this.illegal();
        // WARL: a write with an unsupported mode is ignored (write_satp / validate_vm)
        // Sv57 (which QEMU 7.2 also has) is left out: its 57-bit virtual addresses do not fit
        // the 53 exact bits of the numbers this hart computes addresses with. Linux then uses Sv48.
        const mode = Number(v >> 60n);
        if (mode !== 0 && mode !== 8 && mode !== 9) return;
        // QEMU keeps 16 ASID bits writable and the 44-bit PPN
        this.satp = v & ((0xfn << 60n) | (0xffffn << 44n) | ((1n << 44n) - 1n));
        this.flushTlb();
        this.xlateChanged();
        return;
      }
      case 0x300: {
        const m = MSTATUS_WMASK | (this.hasF ? MS_FS : 0);
        this.setMstatus((this.mstatus & ~m) | (lo & m));
        return;
      }
      case 0x301:
        // misa: QEMU 7.2 drops changes of MXL and keeps the extensions it was built with
        return;
      case 0x302:
        this.medeleg = lo & DELEGABLE_EXCPS;
        return;
      case 0x303:
        this.mideleg = lo & S_INTS;
        this.updateIrq();
        return;
      case 0x304:
        this.mie = lo & ALL_INTS;
        this.updateIrq();
        return;
      case 0x305:
        if ((v & 3n) < 2n) this.mtvec = v;
        return;
      case 0x306:
        this.mcounteren = v;
        return;
      case 0x30a:
        // QEMU 7.2 write_menvcfg keeps FIOM, CBIE/CBCFE/CBZE, PBMTE and STCE on RV64 whatever the
        // extensions. Only STCE changes something here (stimecmp's access, mip.STIP's
        // writability), as in QEMU without Zicbo* and Svpbmt (its page walk checks the extension,
        // not PBMTE). Changing STCE leaves STIP as it is in QEMU 7.2
        this.menvcfg = v & (0xf1n | (3n << 62n));
        return;
      case 0x320:
        // write_mcountinhibit stores the whole value, TM (bit 1) included
        this.mcountinhibit = v;
        return;
      case 0x340:
        this.mscratch = v;
        return;
      case 0x341:
        this.mepc = v;
        return;
      case 0x342:
        this.mcause = v;
        return;
      case 0x343:
        this.mtval = v;
        return;
      case 0x344:
        // Writing back the whole value read would latch the PLIC's line, ORed into the read, as
        // software SEIP: rmw_mip64 sets software_seip only when the mask holds SEIP.
        this.writeMip(lo, mask);
        return;
      case 0xb00:
        this.cycleOff = v - BigInt(this.icount + 1);
        return;
      case 0xb02:
        this.instretOff = v - BigInt(this.icount + 1);
        return;
    }
    if (csr >= 0x3a0 && csr <= 0x3a3) {
      // pmpcfg_csr_write: each unlocked byte is stored and its entry's range recomputed
      // (pmp_write_cfg), then the TLB is flushed
      const base = (csr - 0x3a0) * 4;
      for (let k = 0; k < 8; k++) {
        const idx = base + k;
        if ((this.pmpcfg[idx]! & 0x80) !== 0) continue;
        this.pmpcfg[idx] = Number((v >> BigInt(8 * k)) & 0xffn);
        this.pmpUpdateRuleAddr(idx);
      }
      this.pmpUpdateRuleNums();
      this.flushTlb();
      return;
    }
    if (csr >= 0x3b0 && csr <= 0x3bf) {
      // pmpaddr_csr_write: ignored when the entry is locked or the next one is a locked TOR; only
      // this entry's range is recomputed. QEMU 7.2 does not flush its TLB here (later QEMU does);
      // the hart flushes, as its TLB holds other entries than QEMU's would and a stale permission
      // could not be reproduced anyway.
      const idx = csr - 0x3b0;
      const next = idx + 1 < 16 ? this.pmpcfg[idx + 1]! : 0;
      if ((next & 0x80) !== 0 && ((next >>> 3) & 3) === 1) return;
      if ((this.pmpcfg[idx]! & 0x80) !== 0) return;
      this.pmpaddr[idx] = v;
      this.pmpUpdateRuleAddr(idx);
      this.pmpUpdateRuleNums();
      this.flushTlb();
      return;
    }
    if (csr >= 0xb03 && csr <= 0xb12) {
      this.hpmCounter[csr - 0xb00] = v;
      return;
    }
    if (csr >= 0x323 && csr <= 0x33f) {
      this.hpmEvent[csr - 0x320] = v;
      return;
    }
    this.illegal();
  }

  private setMstatus(ms: number): void {
    // QEMU 7.2 write_mstatus stores MPP = 2 (reserved) as written; mret then treats it as U
    // SUM and MXR change what the filled entries allow (QEMU write_mstatus flushes on them; its
    // MPRV/MPP flush is for its MMU index choice, which here is the table choice in xlateChanged)
    if (((ms ^ this.mstatus) & (MS_SUM | MS_MXR)) !== 0) this.flushTlb();
    this.mstatus = ms;
    this.xlateChanged();
  }

  /**
   * Recomputes what translation applies to fetches and data (M-mode and MPRV included) after a
   * change of privilege, satp or mstatus, and which TLB tables serve them.
   */
  private xlateChanged(): void {
    const mode = Number(this.satp >> 60n);
    const levels = mode === 8 ? 3 : mode === 9 ? 4 : 0;
    this.rootPpn = Number(this.satp & ((1n << 44n) - 1n));
    this.fetchLevels = this.priv === PRV_M ? 0 : levels;
    this.dataPriv =
      this.priv === PRV_M && (this.mstatus & MS_MPRV) !== 0 ? (this.mstatus & MS_MPP) >>> 11 : this.priv;
    this.dataLevels = this.dataPriv === PRV_M ? 0 : levels;
    this.fetchSet = this.priv === PRV_U ? 0 : 3 * TLB_N;
    this.dataSet = this.dataPriv === PRV_U ? 0 : 3 * TLB_N;
    this.fetchV = Number.NaN;
    this.rdV = Number.NaN;
    this.wrV = Number.NaN;
    this.updateIrq();
  }

  private flushTlb(): void {
    this.fetchV = Number.NaN;
    this.rdV = Number.NaN;
    this.wrV = Number.NaN;
    this.superLo = Number.POSITIVE_INFINITY;
    this.superHi = Number.NEGATIVE_INFINITY;
    this.tlbTag.fill(Number.NaN);
  }

  /** SFENCE.VMA with an address: drops that page from every table (all of them if a cached superpage may cover it). */
  private flushPage(va: number): void {
    if (va >= this.superLo && va < this.superHi) {
      this.flushTlb();
      return;
    }
    this.fetchV = Number.NaN;
    this.rdV = Number.NaN;
    this.wrV = Number.NaN;
    const vpn = Math.floor(va / 4096);
    const k = vpn & TLB_MASK;
    for (let t = 0; t < 6; t++)
      if (this.tlbTag[t * TLB_N + k] === vpn) this.tlbTag[t * TLB_N + k] = Number.NaN;
  }

  // ---------------------------------------------------------------------------------------------
  // F and D

  private fp(inst: number, rd: number, rs1: number, rs2: number, f3: number): void {
    this.fsOn();
    const op = inst & 0x7f;
    const fpu = this.fpu;
    if (op === 0x07) {
      const va = this.xnum(rs1) + (inst >> 20);
      if (f3 === 2) {
        fpu.setSingleBits(rd, this.load(va, 4) | 0);
      } else if (f3 === 3 && this.hasD) {
        this.load64(va);
        fpu.setRawHalves(rd, this.rl, this.rh);
      } else this.illegal();
      this.mstatus |= MS_FS;
      return;
    }
    if (op === 0x27) {
      const va = this.xnum(rs1) + (((inst >> 25) << 5) | ((inst >>> 7) & 31));
      if (f3 === 2) this.store(va, 4, fpu.lo(rs2));
      else if (f3 === 3 && this.hasD) this.store64(va, fpu.lo(rs2), fpu.hi(rs2));
      else this.illegal();
      return;
    }
    const fmt = (inst >>> 25) & 3;
    if (fmt > 1 || (fmt === 1 && !this.hasD)) this.illegal();
    let rm = f3;
    if (rm === 7) rm = fpu.fcsr >>> 5;
    const f7 = inst >>> 25;
    // Instructions that take rm must have a legal one; the rest put a function code in f3
    const usesRm = op !== 0x53 || f7 < 0x10 || (f7 >= 0x20 && f7 <= 0x2d) || (f7 >= 0x60 && f7 <= 0x6b);
    if (usesRm && rm > 4) this.illegal();
    const r = fpu.exec(inst, rm, this.xl, this.xh);
    if (r < 0) this.illegal();
    if (r === 1 && rd !== 0) {
      // an integer result
      this.xl[rd] = fpu.il;
      this.xh[rd] = fpu.ih;
    }
    if (r === 0) this.mstatus |= MS_FS;
    else if (fpu.flagsChanged) this.mstatus |= MS_FS;
  }
}
