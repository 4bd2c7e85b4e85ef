// The riscv64 virt machine's guest bus: the same RV64GC hart code running the same OpenSBI boot,
// once with memtree's address space as its bus (the machine `memtree run riscv-virt` builds) and
// once over a hand-written bus: all RAM in one typed array, the devices in a list searched
// linearly and called directly (their access sizes as the guest makes them; no region tree,
// aliases, dirty tracking or access-size rules). The devices are the same model objects. Also
// reports guest instructions per second through memtree.

import { existsSync, readFileSync } from 'node:fs';
import { MEMTXATTRS_UNSPECIFIED } from '../dist/core/index.js';
import { bootRiscvVirt } from '../dist/machines/riscv/boot.js';
import { FlatBus } from '../dist/machines/riscv/cpu/flat-bus.js';
import { RiscvHart } from '../dist/machines/riscv/cpu/hart.js';
import { buildRiscvVirt, VIRT_MEMMAP } from '../dist/machines/riscv/virt.js';

const BIOS = '/usr/share/qemu/opensbi-riscv64-generic-fw_dynamic.bin';
const RAM = 128 * 1024 * 1024;
/** Instructions per measured run: OpenSBI from reset to the end of its banner (about 11.8 million). */
const INSNS = 12_000_000;
const SEED = new Uint8Array(32).fill(7);
/** UART bytes the last run printed (both runs must print the same banner). */
const out = { n: 0 };

/** The machine memtree builds, booted and run for `n` instructions. */
function memtreeRun(bios, n) {
  const m = buildRiscvVirt({
    ramSize: RAM,
    rtcEpochNs: 0n,
    uartSink: () => {
      out.n++;
    },
  });
  bootRiscvVirt(m, { bios, rngSeed: SEED });
  m.run(n);
  return m;
}

/**
 * The same boot on a flat bus: the machine is built only for its loaded memory image and device
 * objects; the hart runs over FlatBus, whose device windows call the devices' callbacks directly.
 */
function flatRun(bios, n) {
  const m = buildRiscvVirt({
    ramSize: RAM,
    rtcEpochNs: 0n,
    uartSink: () => {
      out.n++;
    },
  });
  bootRiscvVirt(m, { bios, rngSeed: SEED });
  const dev = (base, region, readonly = false) => {
    const ops = region.ops;
    return {
      base,
      size: Number(region.size),
      read: (o, s) => ops.read(o, s, MEMTXATTRS_UNSPECIFIED),
      write: (o, v, s) => ops.write?.(o, v, s, MEMTXATTRS_UNSPECIFIED),
      readonly,
    };
  };
  const MM = VIRT_MEMMAP;
  const mrom = new Uint8Array(MM.mrom.size);
  m.ms.readRam(m.mrom, 0, mrom);
  const devices = [
    dev(MM.uart0.base, m.uart.region),
    dev(MM.clint.base, m.swi.region),
    dev(MM.clint.base + 0x4000, m.mtimer.region),
    dev(MM.plic.base, m.plic.region),
    dev(MM.test.base, m.test.region),
    dev(MM.rtc.base, m.rtc.region),
    {
      base: MM.mrom.base,
      size: MM.mrom.size,
      read: (o, s) =>
        s === 8
          ? new DataView(mrom.buffer).getBigUint64(o, true)
          : new DataView(mrom.buffer).getUint32(o, true) & (s === 4 ? 0xffffffff : (1 << (s * 8)) - 1),
      write: () => {},
      readonly: true,
    },
  ];
  const bus = new FlatBus(MM.dram.base, RAM, devices);
  m.ms.readRam(m.ram, 0, bus.ram);
  // The machine's devices drive the machine's hart; give them this hart instead.
  const hart = new RiscvHart({ hartId: 0, bus, resetPc: MM.mrom.base, readTime: () => m.mtimer.mtime() });
  m.harts[0] = hart;
  let done = 0;
  while (done < n) {
    const k = hart.run(Math.min(2000, n - done));
    done += k;
    m.clock.advanceTo(m.clock.ns + Math.max(k, 1) * 10);
  }
  return hart;
}

export function run() {
  if (!existsSync(BIOS)) return [];
  const bios = new Uint8Array(readFileSync(BIOS));
  const time = (f) => {
    const t0 = process.hrtime.bigint();
    f();
    return Number(process.hrtime.bigint() - t0) / 1e6;
  };
  out.n = 0;
  memtreeRun(bios, INSNS);
  const printed = out.n;
  out.n = 0;
  flatRun(bios, INSNS);
  if (printed < 1000 || out.n !== printed) {
    throw new Error(`the two buses ran different guests: ${printed} and ${out.n} UART bytes`);
  }
  const a = [];
  const b = [];
  for (let i = 0; i < 3; i++) {
    globalThis.gc?.();
    if (i % 2) {
      a.push(time(() => memtreeRun(bios, INSNS)));
      b.push(time(() => flatRun(bios, INSNS)));
    } else {
      b.push(time(() => flatRun(bios, INSNS)));
      a.push(time(() => memtreeRun(bios, INSNS)));
    }
  }
  const med = (x) => x.sort((p, q) => p - q)[x.length >> 1];
  const ms = med(a);
  const flatMs = med(b);
  return [
    {
      name: 'guest-bus-memtree-vs-flat',
      ratio: flatMs / ms,
      target: 0.8,
      ms,
      baseline: `${flatMs.toFixed(0)} ms flat bus (OpenSBI boot, ${INSNS / 1e6}M instructions)`,
    },
    {
      name: 'guest-mips-through-memtree',
      ratio: INSNS / 1e3 / ms,
      ms,
      baseline: `${(INSNS / 1e3 / ms).toFixed(1)} million guest instructions per second`,
    },
  ];
}
