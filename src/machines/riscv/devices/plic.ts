/**
 * @module machines/riscv/devices/plic
 * The SiFive PLIC as QEMU's virt board configures it (hw/intc/sifive_plic.c, virt_create_plic):
 * 96 sources, priorities 0..7, two contexts per hart (M then S, hart config "MS,MS,..."),
 * priority registers from 0x4, pending bits at 0x1000, enables at 0x2000 (0x80 per context),
 * threshold and claim/complete at 0x200000 (0x1000 per context). A source line sets its pending bit
 * when it is raised (QEMU's sifive_plic_irq_request ignores a lowered line); claim clears it.
 */

import type { MemoryRegion, MemorySystem } from '../../../core/index.js';
import type { IrqLine } from './irq.js';
import { StateReader } from './state.js';

/** Version of {@link SifivePlic.saveState}'s layout. */
export const PLIC_STATE_VERSION = 1;

/** The PLIC's migrated state (QEMU vmstate_sifive_plic: the same arrays). */
export interface PlicState {
  /** Priority of each source, index = source number (0 unused). */
  priority: number[];
  /** Pending bits, 32 sources a word. */
  pending: number[];
  /** Claimed (in service) bits, 32 sources a word. */
  claimed: number[];
  /** Enable bits, one row of words per context. */
  enable: number[];
  /** Priority threshold per context. */
  threshold: number[];
}

/** VIRT_IRQCHIP_NUM_SOURCES (= VIRTIO_NDEV). */
export const PLIC_NUM_SOURCES = 96;
/** (1 << VIRT_IRQCHIP_NUM_PRIO_BITS) - 1. */
export const PLIC_NUM_PRIORITIES = 7;
const PRIORITY_BASE = 0x4;
const PENDING_BASE = 0x1000;
const ENABLE_BASE = 0x2000;
const ENABLE_STRIDE = 0x80;
const CONTEXT_BASE = 0x200000;
const CONTEXT_STRIDE = 0x1000;
/** VIRT_PLIC_SIZE(VIRT_CPUS_MAX * 2): the aperture does not depend on the hart count. */
export const PLIC_SIZE = CONTEXT_BASE + 512 * 2 * CONTEXT_STRIDE;

/** Where a context's output goes: M (MEIP) or S (SEIP) external interrupt of one hart. */
export interface PlicContextTarget {
  hart: number;
  mode: 'M' | 'S';
}

const inRange = (a: number, base: number, n: number) => a >= base && a - base < n;

/** One PLIC. */
export class SifivePlic {
  readonly region: MemoryRegion;
  private readonly words = (PLIC_NUM_SOURCES + 31) >> 5;
  private readonly priority = new Uint32Array(PLIC_NUM_SOURCES);
  private readonly pending: Uint32Array;
  private readonly claimed: Uint32Array;
  private readonly enable: Uint32Array;
  private readonly threshold: Uint32Array;
  private readonly outputs: IrqLine[];

  /**
   * `contexts` lists each context's target in order (QEMU parse_hart_config); `outputs[i]` is the
   * line of context i.
   */
  constructor(
    ms: MemorySystem,
    readonly contexts: PlicContextTarget[],
    outputs: IrqLine[],
  ) {
    this.outputs = outputs;
    this.pending = new Uint32Array(this.words);
    this.claimed = new Uint32Array(this.words);
    this.enable = new Uint32Array(this.words * contexts.length);
    this.threshold = new Uint32Array(contexts.length);
    this.region = ms.io(
      'riscv.sifive.plic',
      PLIC_SIZE,
      {
        read: (off) => this.read(off),
        write: (off, v) => this.write(off, Number(v) >>> 0),
        endianness: 'little',
        valid: { minAccessSize: 4, maxAccessSize: 4 },
      },
      { owner: { name: 'riscv.sifive.plic' } },
    );
  }

  /** The input line of source `irq` (1..95). */
  line(irq: number): IrqLine {
    return (level) => {
      if (!level) return;
      this.pending[irq >> 5]! |= 1 << (irq & 31);
      this.update();
    };
  }

  /** The highest-priority pending, enabled, unclaimed source above the threshold (sifive_plic_claimed). */
  private best(ctx: number): number {
    let maxIrq = 0;
    let maxPrio = this.threshold[ctx]!;
    for (let i = 0; i < this.words; i++) {
      const cand = this.pending[i]! & ~this.claimed[i]! & this.enable[ctx * this.words + i]!;
      if (cand === 0) continue;
      for (let j = 0; j < 32; j++) {
        if ((cand & (1 << j)) === 0) continue;
        const irq = (i << 5) + j;
        const prio = this.priority[irq]!;
        if (prio > maxPrio) {
          maxIrq = irq;
          maxPrio = prio;
        }
      }
    }
    return maxIrq;
  }

  private update(): void {
    for (let c = 0; c < this.contexts.length; c++) this.outputs[c]!(this.best(c) !== 0);
  }

  private read(off: number): number {
    const n = this.contexts.length;
    if (inRange(off, PRIORITY_BASE, PLIC_NUM_SOURCES << 2))
      return this.priority[((off - PRIORITY_BASE) >> 2) + 1] ?? 0;
    if (inRange(off, PENDING_BASE, PLIC_NUM_SOURCES >> 3)) return this.pending[(off - PENDING_BASE) >> 2]!;
    if (inRange(off, ENABLE_BASE, n * ENABLE_STRIDE)) {
      const ctx = Math.floor((off - ENABLE_BASE) / ENABLE_STRIDE);
      const w = (off & (ENABLE_STRIDE - 1)) >> 2;
      return w < this.words ? this.enable[ctx * this.words + w]! : 0;
    }
    if (inRange(off, CONTEXT_BASE, n * CONTEXT_STRIDE)) {
      const ctx = Math.floor((off - CONTEXT_BASE) / CONTEXT_STRIDE);
      const reg = off & (CONTEXT_STRIDE - 1);
      if (reg === 0) return this.threshold[ctx]!;
      if (reg === 4) {
        const irq = this.best(ctx);
        if (irq) {
          this.pending[irq >> 5]! &= ~(1 << (irq & 31));
          this.claimed[irq >> 5]! |= 1 << (irq & 31);
        }
        this.update();
        return irq;
      }
    }
    return 0;
  }

  private write(off: number, v: number): void {
    const n = this.contexts.length;
    if (inRange(off, PRIORITY_BASE, PLIC_NUM_SOURCES << 2)) {
      const irq = ((off - PRIORITY_BASE) >> 2) + 1;
      // 7 + 1 is a power of two, so the priority bits are WARL: keep the implemented ones.
      if (irq < PLIC_NUM_SOURCES) this.priority[irq] = v % (PLIC_NUM_PRIORITIES + 1);
      this.update();
    } else if (inRange(off, ENABLE_BASE, n * ENABLE_STRIDE)) {
      const ctx = Math.floor((off - ENABLE_BASE) / ENABLE_STRIDE);
      const w = (off & (ENABLE_STRIDE - 1)) >> 2;
      if (w < this.words) this.enable[ctx * this.words + w] = v;
    } else if (inRange(off, CONTEXT_BASE, n * CONTEXT_STRIDE)) {
      const ctx = Math.floor((off - CONTEXT_BASE) / CONTEXT_STRIDE);
      const reg = off & (CONTEXT_STRIDE - 1);
      if (reg === 0) {
        this.threshold[ctx] = v % (PLIC_NUM_PRIORITIES + 1);
        this.update();
      } else if (reg === 4 && v < PLIC_NUM_SOURCES) {
        this.claimed[v >> 5]! &= ~(1 << (v & 31));
        this.update();
      }
    }
  }

  /** The migrated state. */
  saveState(): PlicState {
    return {
      priority: [...this.priority],
      pending: [...this.pending],
      claimed: [...this.claimed],
      enable: [...this.enable],
      threshold: [...this.threshold],
    };
  }

  /** Checks a migrated state against this PLIC's source and context counts. */
  checkState(s: unknown, device = 'plic'): PlicState {
    const r = new StateReader(device, s);
    return {
      priority: r.uints('priority', PLIC_NUM_SOURCES, PLIC_NUM_PRIORITIES),
      pending: r.uints('pending', this.words, 0xffffffff),
      claimed: r.uints('claimed', this.words, 0xffffffff),
      enable: r.uints('enable', this.enable.length, 0xffffffff),
      threshold: r.uints('threshold', this.contexts.length, PLIC_NUM_PRIORITIES),
    };
  }

  /**
   * Loads a checked state. The outputs are not driven: the levels they had travel in the harts'
   * mip (MEIP, SEIP), as QEMU's PLIC has no post_load either.
   */
  loadState(s: PlicState): void {
    this.priority.set(s.priority);
    this.pending.set(s.pending);
    this.claimed.set(s.claimed);
    this.enable.set(s.enable);
    this.threshold.set(s.threshold);
  }

  /** Device reset (sifive_plic_reset): everything zero, every output low. */
  reset(): void {
    this.priority.fill(0);
    this.threshold.fill(0);
    this.pending.fill(0);
    this.claimed.fill(0);
    this.enable.fill(0);
    for (const o of this.outputs) o(false);
  }
}
