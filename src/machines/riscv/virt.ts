/**
 * @module machines/riscv/virt
 * QEMU 7.2's riscv64 `virt` machine built on memtree, region for region as hw/riscv/virt.c
 * (virt_machine_init, virt_machine_done) and the device models it instantiates create them: the
 * same names, sizes, addresses, kinds, aliases and RAM blocks, in QEMU's order, for any RAM size
 * and hart count (one socket, no AIA, no ACLINT SSWI: QEMU's defaults). Its `info mtree` and
 * `info mtree -f` therefore equal QEMU's for `-M virt -m SIZE -smp N -nodefaults`.
 *
 * The harts are memtree's RV64GC interpreter, one `cpu-memory-N` address space each (stores
 * through {@link CpuAccess}, as TCG's); they run in turn on one thread. Time is virtual (see
 * {@link VirtualClock}): each executed instruction advances it by {@link RiscvVirtOptions.nsPerInstruction},
 * and when every hart waits in WFI it jumps to the next timer deadline.
 */

import { InvalidArgumentError } from '../../core/errors.js';
import {
  type AddressSpace,
  CpuAccess,
  type MemoryRegion,
  type MemoryRegionOps,
  MemorySystem,
} from '../../core/index.js';
import { BUS_PAGE_MISSING, type Bus } from './cpu/bus.js';
import { RiscvHart } from './cpu/hart.js';
import { ACLINT_SWI_SIZE, AclintHartTimer, AclintMtimer, AclintSwi } from './devices/aclint.js';
import { VirtualClock } from './devices/clock.js';
import { FwCfg } from './devices/fw-cfg.js';
import { GoldfishRtc } from './devices/goldfish-rtc.js';
import { GpexHost } from './devices/gpex.js';
import type { IrqLine } from './devices/irq.js';
import { PflashCfi01 } from './devices/pflash-cfi01.js';
import { type PlicContextTarget, SifivePlic } from './devices/plic.js';
import { Serial16550 } from './devices/serial.js';
import { type FinisherEvent, SifiveTest } from './devices/sifive-test.js';
import { virtioMmioRegion } from './devices/virtio-mmio.js';

const MiB = 1024 * 1024;
const GiB = 1024 * MiB;

/** hw/riscv/virt.c virt_memmap: base and size of each device window. */
export const VIRT_MEMMAP = {
  mrom: { base: 0x1000, size: 0xf000 },
  test: { base: 0x100000, size: 0x1000 },
  rtc: { base: 0x101000, size: 0x1000 },
  clint: { base: 0x2000000, size: 0x10000 },
  pciePio: { base: 0x3000000, size: 0x10000 },
  platformBus: { base: 0x4000000, size: 0x2000000 },
  plic: { base: 0xc000000, size: 0x600000 },
  uart0: { base: 0x10000000, size: 0x100 },
  virtio: { base: 0x10001000, size: 0x1000 },
  fwCfg: { base: 0x10100000, size: 0x18 },
  flash: { base: 0x20000000, size: 0x4000000 },
  pcieEcam: { base: 0x30000000, size: 0x10000000 },
  pcieMmio: { base: 0x40000000, size: 0x40000000 },
  dram: { base: 0x80000000, size: 0 },
} as const;

/** include/hw/riscv/virt.h: PLIC source numbers of the board's devices. */
export const VIRT_IRQ = { uart0: 10, rtc: 11, virtio: 1, pcie: 0x20, platformBus: 64 } as const;
/** VIRTIO_COUNT. */
export const VIRTIO_COUNT = 8;
/** VIRT64_HIGH_PCIE_MMIO_SIZE. */
export const HIGH_PCIE_MMIO_SIZE = 16 * GiB;
/** VIRT_FLASH_SECTOR_SIZE. */
const FLASH_SECTOR = 256 * 1024;

/** How to build the machine (QEMU's `-m`, `-smp` and the host side of the devices). */
export interface RiscvVirtOptions {
  /** RAM size in bytes (`-m`); QEMU's default is 128 MiB. */
  ramSize?: number;
  /** Number of harts (`-smp`), 1..512 (VIRT_CPUS_MAX); default 1. */
  smp?: number;
  /** Receives every byte the guest transmits on the UART. Default: discarded. */
  uartSink?: (byte: number) => void;
  /** Wall-clock time of virtual time 0 for the RTC, in ns since the epoch. Default: now. */
  rtcEpochNs?: bigint;
  /** Virtual nanoseconds one instruction takes; default 10 (a 100 MHz hart). */
  nsPerInstruction?: number;
  /** Floating-point extensions of the harts (both on by default, as QEMU's rv64 CPU). */
  isa?: { f: boolean; d: boolean };
}

/**
 * Why {@link RiscvVirtMachine.run} returned; 'page': a hart stopped at a RAM page that has not
 * arrived (postcopy), see {@link RiscvVirtMachine.waitingPage}.
 */
export type RunStop = 'exit' | 'until' | 'limit' | 'idle' | 'page';

/** A RAM page a hart waits for: its RAM block and the page's offset in it. */
export interface MissingPage {
  readonly block: string;
  readonly offset: number;
}

/** Where a RAM block appears in the harts' physical address space. */
interface RamArea {
  readonly base: number;
  readonly end: number;
  readonly block: string;
}

/**
 * The harts' memory on a postcopy destination: accesses to RAM pages that have not arrived do not
 * happen; they report {@link BUS_PAGE_MISSING}, so the hart stops before the instruction, and
 * record the page for the run loop to fetch (QEMU's destination takes a userfault there and asks
 * the source for the page). Everything else goes to the hart's own bus.
 */
class PostcopyBus implements Bus {
  private result = 0;

  constructor(
    private readonly inner: CpuAccess,
    private readonly areas: readonly RamArea[],
    private readonly has: (block: string, offset: number) => boolean,
    private readonly onMissing: (page: MissingPage) => void,
  ) {}

  get lastResult(): number {
    return this.result === 0 ? this.inner.lastResult : this.result;
  }

  /** Whether `[a, a+size)` touches a page not yet here (and then records it). */
  private absent(a: number, size: number): boolean {
    for (const r of this.areas) {
      if (a + size <= r.base || a >= r.end) continue;
      // an access spans at most two pages: its first and its last byte's
      const first = Math.max(a, r.base) - r.base;
      const last = Math.min(a + size, r.end) - 1 - r.base;
      if (this.missing(r.block, first) || this.missing(r.block, last)) return true;
    }
    this.result = 0;
    return false;
  }

  private missing(block: string, off: number): boolean {
    if (this.has(block, off)) return false;
    this.result = BUS_PAGE_MISSING;
    this.onMissing({ block, offset: off - (off % 4096) });
    return true;
  }

  ldub(a: number): number {
    return this.absent(a, 1) ? 0 : this.inner.ldub(a);
  }
  lduwLe(a: number): number {
    return this.absent(a, 2) ? 0 : this.inner.lduwLe(a);
  }
  ldlLe(a: number): number {
    return this.absent(a, 4) ? 0 : this.inner.ldlLe(a);
  }
  ldqLe(a: number): bigint {
    return this.absent(a, 8) ? 0n : this.inner.ldqLe(a);
  }
  stb(a: number, v: number): void {
    if (!this.absent(a, 1)) this.inner.stb(a, v);
  }
  stwLe(a: number, v: number): void {
    if (!this.absent(a, 2)) this.inner.stwLe(a, v);
  }
  stlLe(a: number, v: number): void {
    if (!this.absent(a, 4)) this.inner.stlLe(a, v);
  }
  stqLe(a: number, v: bigint): void {
    if (!this.absent(a, 8)) this.inner.stqLe(a, v);
  }
}

/** QEMU's `unassigned_io_ops`: reads all ones, writes ignored (the gpex windows' background). */
function unassignedIoOps(): MemoryRegionOps {
  return {
    read: (_off, size) =>
      size === 8 ? 0xffffffffffffffffn : size === 4 ? 0xffffffff : (1 << (size * 8)) - 1,
    write: () => {},
    endianness: 'native',
  };
}

/** A built riscv64 virt machine: memory map, devices and harts. */
export class RiscvVirtMachine {
  readonly ms: MemorySystem;
  /** QEMU's `system` region (get_system_memory). */
  readonly system: MemoryRegion;
  /** `address_space_memory`. */
  readonly memory: AddressSpace;
  /** `address_space_io` (the 64 KiB `io` region no device of this board uses). */
  readonly ioSpace: AddressSpace;
  /** `cpu-memory-N`, one per hart. */
  readonly cpuSpaces: AddressSpace[];
  readonly harts: RiscvHart[];
  readonly clock = new VirtualClock();
  readonly ramSize: number;
  readonly smp: number;
  readonly ram: MemoryRegion;
  readonly mrom: MemoryRegion;
  readonly uart: Serial16550;
  readonly swi: AclintSwi;
  readonly mtimer: AclintMtimer;
  readonly plic: SifivePlic;
  readonly test: SifiveTest;
  readonly rtc: GoldfishRtc;
  readonly flash: [PflashCfi01, PflashCfi01];
  readonly fwCfg: FwCfg;
  readonly gpex: GpexHost;
  /** Base of the high PCIe MMIO window: the end of RAM rounded up to 16 GiB (virt_machine_init). */
  readonly highPcieBase: number;
  /** The power-off status the guest wrote to sifive_test, or null while it runs. */
  exitCode: number | null = null;
  /** Bytes waiting to enter the UART (the host's side of the serial line). */
  readonly input: number[] = [];
  /** The page a hart stopped at (postcopy), until the run loop fetched it and cleared this. */
  waitingPage: MissingPage | null = null;
  private readonly cpuBuses: CpuAccess[] = [];
  private readonly nsPerInstruction: number;
  private resetRequested = false;
  /** What the loader put in memory, written again at each machine reset (QEMU's ROM blobs). */
  private readonly blobs: Array<{ addr: number; data: Uint8Array }> = [];

  constructor(o: RiscvVirtOptions = {}) {
    const ramSize = o.ramSize ?? 128 * MiB;
    const smp = o.smp ?? 1;
    if (!Number.isSafeInteger(ramSize) || ramSize <= 0 || ramSize % 4096 !== 0) {
      throw new InvalidArgumentError(`riscv virt: RAM size ${ramSize} must be a positive multiple of 4 KiB`);
    }
    if (!Number.isInteger(smp) || smp < 1 || smp > 512) {
      throw new InvalidArgumentError(`riscv virt: ${smp} harts: the machine takes 1 to 512`);
    }
    this.ramSize = ramSize;
    this.smp = smp;
    this.nsPerInstruction = o.nsPerInstruction ?? 10;
    const sink = o.uartSink ?? (() => {});
    const ms = new MemorySystem();
    this.ms = ms;
    const MM = VIRT_MEMMAP;

    // memory_map_init: the system container and the I/O space exist before any machine code runs.
    const system = ms.container('system', 2n ** 64n - 1n);
    this.system = system;
    const io = ms.io('io', 0x10000, unassignedIoOps());
    this.memory = ms.addressSpace(system, 'memory');
    this.ioSpace = ms.addressSpace(io, 'I/O');

    // create_default_memdev: the RAM block comes before any device's.
    this.ram = ms.ram('riscv_virt_board.ram', ramSize);

    // The hart array: one CPU address space per hart, created at CPU realize.
    this.cpuSpaces = [];
    this.harts = [];
    const readTime = () => this.mtimer.mtime();
    for (let i = 0; i < smp; i++) {
      const as = ms.addressSpace(system, `cpu-memory-${i}`);
      this.cpuSpaces.push(as);
      const bus = new CpuAccess(as);
      this.cpuBuses.push(bus);
      const stimer = new AclintHartTimer(this.clock, readTime);
      this.harts.push(new RiscvHart({ hartId: i, bus, resetPc: MM.mrom.base, readTime, isa: o.isa, stimer }));
    }
    const hartLine =
      (h: number, bit: number): IrqLine =>
      (level) =>
        this.harts[h]!.setIrq(bit, level);

    // Per-socket SiFive CLINT (ACLINT MSWI + MTIMER) and PLIC.
    this.swi = new AclintSwi(
      ms,
      this.harts.map((_, h) => hartLine(h, 3)),
    );
    this.mtimer = new AclintMtimer(
      ms,
      this.clock,
      this.harts.map((_, h) => hartLine(h, 7)),
    );
    const contexts: PlicContextTarget[] = [];
    const outputs: IrqLine[] = [];
    for (let h = 0; h < smp; h++) {
      contexts.push({ hart: h, mode: 'M' }, { hart: h, mode: 'S' });
      outputs.push(hartLine(h, 11), hartLine(h, 9));
    }
    this.plic = new SifivePlic(ms, contexts, outputs);

    // virt_high_pcie_memmap for RV64: above RAM, aligned to its own size.
    const ramEnd = MM.dram.base + ramSize;
    this.highPcieBase = Math.ceil(ramEnd / HIGH_PCIE_MMIO_SIZE) * HIGH_PCIE_MMIO_SIZE;

    this.mrom = ms.rom('riscv_virt_board.mrom', MM.mrom.size);
    this.test = new SifiveTest(ms, (e) => this.onFinisher(e));
    const virtio = Array.from({ length: VIRTIO_COUNT }, (_, i) => virtioMmioRegion(ms, i));

    // gpex_host_realize: the ECAM window, the PCI memory and I/O spaces, and the "_window"
    // regions whose background reads all ones. The MMIO window spans 2^64 bytes; memtree's
    // callback regions stop at 2^53, so it is a reservation (same map, same `info mtree`;
    // accesses where no BAR is mapped fail instead of reading ones).
    const gpexMmio = ms.container('gpex_mmio', 2n ** 64n - 1n);
    const gpexIoport = ms.container('gpex_ioport', 0x10000);
    const mmioWindow = ms.reservation('gpex_mmio_window', 2n ** 64n - 1n);
    const ioportWindow = ms.io('gpex_ioport_window', 0x10000, unassignedIoOps());
    mmioWindow.addSubregion(0, gpexMmio);
    ioportWindow.addSubregion(0, gpexIoport);
    // The host bridge's own PCI function: its bus-master address space, mastering off.
    const busMaster = ms.container('bus master container', 2n ** 64n - 1n);
    const busMasterAlias = ms.alias('bus master', system, 0, 2n ** 64n);
    this.gpex = new GpexHost(ms, busMasterAlias);
    ms.addressSpace(busMaster, 'gpex-root');

    const platformBus = ms.container('platform bus', MM.platformBus.size);
    this.uart = new Serial16550(ms, this.clock, this.plic.line(VIRT_IRQ.uart0), sink);
    this.rtc = new GoldfishRtc(
      ms,
      this.clock,
      this.plic.line(VIRT_IRQ.rtc),
      o.rtcEpochNs ?? BigInt(Date.now()) * 1_000_000n,
    );
    const flashOpts = (name: string) => ({
      name,
      sectorLength: FLASH_SECTOR,
      blocks: MM.flash.size / 2 / FLASH_SECTOR,
      bankWidth: 4,
      deviceWidth: 2,
      ident0: 0x89,
      ident1: 0x18,
    });
    this.flash = [
      new PflashCfi01(ms, flashOpts('virt.flash0')),
      new PflashCfi01(ms, flashOpts('virt.flash1')),
    ];
    this.fwCfg = new FwCfg(ms, this.memory, smp);

    ms.transaction(() => {
      system.addSubregion(MM.clint.base, this.swi.region);
      system.addSubregion(MM.clint.base + ACLINT_SWI_SIZE, this.mtimer.region);
      system.addSubregion(MM.plic.base, this.plic.region);
      system.addSubregion(MM.dram.base, this.ram);
      system.addSubregion(MM.mrom.base, this.mrom);
      system.addSubregion(MM.test.base, this.test.region);
      for (const [i, r] of virtio.entries()) system.addSubregion(MM.virtio.base + i * MM.virtio.size, r);
      system.addSubregion(MM.pcieEcam.base, ms.alias('pcie-ecam', this.gpex.ecam, 0, MM.pcieEcam.size));
      system.addSubregion(
        MM.pcieMmio.base,
        ms.alias('pcie-mmio', mmioWindow, MM.pcieMmio.base, MM.pcieMmio.size),
      );
      system.addSubregion(
        this.highPcieBase,
        ms.alias('pcie-mmio-high', mmioWindow, this.highPcieBase, HIGH_PCIE_MMIO_SIZE),
      );
      system.addSubregion(MM.pciePio.base, ioportWindow);
      system.addSubregion(MM.platformBus.base, platformBus);
      system.addSubregion(MM.uart0.base, this.uart.region);
      system.addSubregion(MM.rtc.base, this.rtc.region);
      system.addSubregion(MM.flash.base, this.flash[0].region);
      system.addSubregion(MM.flash.base + MM.flash.size / 2, this.flash[1].region);
      // fw_cfg_init_mem_wide(base + 8, base, 8, base + 16): ctl, data, dma.
      system.addSubregion(MM.fwCfg.base + 8, this.fwCfg.ctl);
      system.addSubregion(MM.fwCfg.base, this.fwCfg.data);
      system.addSubregion(MM.fwCfg.base + 16, this.fwCfg.dma);
      // pci_init_bus_master: the alias onto system memory, disabled until the guest sets
      // Bus Master Enable in the function's command register.
      busMasterAlias.setEnabled(false);
      busMaster.addSubregion(0, busMasterAlias);
    });
    this.resetDevices();
  }

  /** Writes bytes into guest memory as QEMU's ROM loader does (ROM included), kept for every reset. */
  loadBlob(addr: number, data: Uint8Array): void {
    const r = this.memory.writeRom(addr, data);
    if (r !== 0) {
      throw new InvalidArgumentError(
        `riscv virt: ${data.length} bytes at 0x${addr.toString(16)} do not fit in RAM or ROM`,
      );
    }
    this.blobs.push({ addr, data });
  }

  /**
   * Postcopy on this machine as the destination: from now on a hart access to a page of RAM, the
   * MROM or a flash for which `has(block, offset)` is false stops the hart before the instruction
   * and {@link run} returns 'page' with {@link waitingPage} set; fetch the page, clear
   * `waitingPage` and run again. (Device DMA and flash commands are not held back: no device of
   * this board reads guest RAM by itself except fw_cfg's DMA, which firmware uses before Linux.)
   */
  startPostcopy(has: (block: string, offset: number) => boolean): void {
    const areas: RamArea[] = [];
    const add = (mr: MemoryRegion, base: number) => {
      const b = this.ms.ramList.byRegion(mr);
      if (b) areas.push({ base, end: base + Number(mr.size), block: b.idstr });
    };
    add(this.ram, VIRT_MEMMAP.dram.base);
    add(this.mrom, VIRT_MEMMAP.mrom.base);
    add(this.flash[0].region, VIRT_MEMMAP.flash.base);
    add(this.flash[1].region, VIRT_MEMMAP.flash.base + VIRT_MEMMAP.flash.size / 2);
    this.harts.forEach((h, i) => {
      h.setBus(
        new PostcopyBus(this.cpuBuses[i]!, areas, has, (p) => {
          this.waitingPage = p;
        }),
      );
    });
  }

  /** Every page arrived: the harts use their own buses again. */
  endPostcopy(): void {
    for (const [i, h] of this.harts.entries()) h.setBus(this.cpuBuses[i]!);
    this.waitingPage = null;
  }

  private onFinisher(e: FinisherEvent): void {
    if (e.kind === 'exit') this.exitCode = e.code;
    else this.resetRequested = true;
  }

  private resetDevices(): void {
    this.swi.reset();
    this.mtimer.reset();
    this.plic.reset();
    this.uart.reset();
    this.rtc.reset();
  }

  /** A system reset (qemu_system_reset): devices, harts, and the loader's blobs written again. */
  reset(): void {
    this.resetRequested = false;
    for (const h of this.harts) h.reset();
    this.resetDevices();
    for (const b of this.blobs) this.memory.writeRom(b.addr, b.data);
  }

  /**
   * Runs the harts in turn, `quantum` instructions each, until the guest powers off, `until()`
   * holds (checked between quanta), `limit` {@link steps} were taken, or every hart waits with no timer
   * armed and no input pending ('idle': feed {@link input} and call again).
   */
  run(limit = Number.POSITIVE_INFINITY, until?: () => boolean, quantum = 2000): RunStop {
    let done = 0;
    const harts = this.harts;
    try {
      while (this.exitCode === null) {
        if (until?.()) return 'until';
        if (done >= limit) return 'limit';
        this.feedUart();
        const q = Math.min(quantum, limit - done);
        let most = 0;
        for (let i = 0; i < harts.length; i++) {
          const k = harts[i]!.run(q);
          if (k > most) most = k;
          done += k;
          if (this.exitCode !== null) break;
        }
        if (this.resetRequested) this.reset();
        if (most > 0) {
          this.clock.advanceTo(this.clock.ns + most * this.nsPerInstruction);
          if (this.waitingPage) return 'page';
        } else if (this.waitingPage) {
          return 'page';
        } else {
          // Every hart waits for an interrupt: skip to the next timer, as an idle QEMU sleeps.
          const next = this.clock.nextDeadline();
          if (next === Number.POSITIVE_INFINITY) {
            if (this.input.length && this.uart.canReceive() > 0) continue;
            return 'idle';
          }
          this.clock.advanceTo(next);
        }
      }
      return 'exit';
    } finally {
      this.stepsTaken += done;
    }
  }

  private feedUart(): void {
    if (this.input.length === 0) return;
    const n = Math.min(this.uart.canReceive(), this.input.length);
    if (n > 0) this.uart.receive(this.input.splice(0, n));
  }

  /**
   * Steps all harts took in {@link run}: instructions retired plus traps taken (a trapping
   * instruction retires nothing). What `limit` counts, so that a hart caught in a loop of traps,
   * which retires nothing, still reaches it.
   */
  get steps(): number {
    return this.stepsTaken;
  }
  private stepsTaken = 0;

  /** Instructions retired by all harts since they were built. */
  get instructionCount(): number {
    let n = 0;
    for (const h of this.harts) n += h.instructionCount;
    return n;
  }
}

/** Builds QEMU 7.2's riscv64 `virt` machine (see {@link RiscvVirtMachine}). */
export function buildRiscvVirt(o: RiscvVirtOptions = {}): RiscvVirtMachine {
  return new RiscvVirtMachine(o);
}
