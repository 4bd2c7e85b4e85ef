// The riscv64 virt machine's guest bus: the same RV64GC hart code running the same OpenSBI boot,
// once with memtree's address space as its bus (the machine `memtree run riscv-virt` builds) and
// once over a hand-written bus: all RAM in one typed array, the devices in a list searched
// linearly and called directly (their access sizes as the guest makes them; no region tree,
// aliases, dirty tracking or access-size rules). The devices are the same model objects. Also
// reports guest instructions per second through memtree, and what one UART register read costs
// the guest on memtree next to QEMU 7.2's TCG (uartRows, below).

import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MEMTXATTRS_UNSPECIFIED } from '../dist/core/index.js';
import { bootRiscvVirt } from '../dist/machines/riscv/boot.js';
import { FlatBus } from '../dist/machines/riscv/cpu/flat-bus.js';
import { RiscvHart } from '../dist/machines/riscv/cpu/hart.js';
import { AclintHartTimer } from '../dist/machines/riscv/devices/aclint.js';
import { buildRiscvVirt, VIRT_MEMMAP } from '../dist/machines/riscv/virt.js';
import { loopImage } from './guest-loop.mjs';

const BIOS = '/usr/share/qemu/opensbi-riscv64-generic-fw_dynamic.bin';
const RAM = 128 * 1024 * 1024;
/** Instructions per measured run: OpenSBI from reset to the end of its banner (about 11.8 million). */
const INSNS = 12_000_000;
const SEED = new Uint8Array(32).fill(7);
/** UART bytes the last run printed (both runs must print the same banner). */
const out = { n: 0 };

/** The virt machine memtree builds, with `bios` loaded and the UART counting into `out`. */
function bootedVirt(bios) {
  const m = buildRiscvVirt({
    ramSize: RAM,
    rtcEpochNs: 0n,
    uartSink: () => {
      out.n++;
    },
  });
  bootRiscvVirt(m, { bios, rngSeed: SEED });
  return m;
}

/** The machine memtree builds, booted and run for `n` instructions. */
function memtreeRun(bios, n) {
  const m = bootedVirt(bios);
  m.run(n);
  return m;
}

/**
 * The same boot on a flat bus: the machine is built only for its loaded memory image and device
 * objects; the hart runs over FlatBus, whose device windows call the devices' callbacks directly.
 */
function flatRun(bios, n) {
  const m = bootedVirt(bios);
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
  // (with its Sstc timer, as the machine's harts have: OpenSBI then runs the same code on both)
  const readTime = () => m.mtimer.mtime();
  const stimer = new AclintHartTimer(m.clock, readTime);
  const hart = new RiscvHart({ hartId: 0, bus, resetPc: MM.mrom.base, readTime, stimer });
  m.harts[0] = hart;
  let done = 0;
  while (done < n) {
    const k = hart.run(Math.min(2000, n - done));
    done += k;
    m.clock.advanceTo(m.clock.ns + Math.max(k, 1) * 10);
  }
  return hart;
}

const QEMU = 'qemu-system-riscv64';
const CLI = new URL('../dist/cli/bin.js', import.meta.url).pathname;

/**
 * The same bare-metal loop (bench/guest-loop.mjs) run by `memtree run riscv-virt --bios none
 * --kernel F` and by `qemu-system-riscv64 -M virt -bios none -kernel F -nographic` (TCG), each as
 * a whole process, for two loop counts: the difference of the times over the difference of the
 * counts is the cost of one iteration (lbu, addi, bne), with start-up, boot and exit cancelled out.
 * Done for the UART's LSR and for a RAM byte; the register's own cost is the difference of the two.
 * The counts are per side and kind so that the longer run takes about a second on each.
 */
function uartRows() {
  if (spawnSync(QEMU, ['--version']).status !== 0) {
    process.stderr.write(`machines bench: ${QEMU} is not installed; the UART rows are skipped\n`);
    return [];
  }
  const dir = mkdtempSync(join(tmpdir(), 'memtree-uart-bench-'));
  try {
    const cmd = {
      memtree: (f) => [
        process.execPath,
        [CLI, 'run', 'riscv-virt', '-m', '128M', '--bios', 'none', '--kernel', f],
      ],
      qemu: (f) => [QEMU, ['-M', 'virt', '-m', '128M', '-bios', 'none', '-kernel', f, '-nographic']],
    };
    const counts = {
      memtree: { uart: [10_000, 1_010_000], ram: [10_000, 2_010_000] },
      qemu: { uart: [10_000, 4_010_000], ram: [10_000, 100_010_000] },
    };
    const once = (side, kind, n) => {
      const f = join(dir, `${kind}-${n}.bin`);
      if (!existsSync(f)) writeFileSync(f, loopImage(kind, n));
      const [exe, args] = cmd[side](f);
      const t0 = process.hrtime.bigint();
      const r = spawnSync(exe, args, { stdio: ['ignore', 'ignore', 'pipe'], timeout: 120_000 });
      const ms = Number(process.hrtime.bigint() - t0) / 1e6;
      if (r.status !== 0) throw new Error(`${side} ${kind} loop: exit ${r.status}: ${r.stderr}`);
      return ms;
    };
    const med = (x) => [...x].sort((p, q) => p - q)[x.length >> 1];
    const perIter = {};
    for (const side of ['memtree', 'qemu']) {
      perIter[side] = {};
      for (const kind of ['uart', 'ram']) {
        const [n1, n2] = counts[side][kind];
        const t1 = [];
        const t2 = [];
        for (let k = 0; k < 3; k++) {
          t1.push(once(side, kind, n1));
          t2.push(once(side, kind, n2));
        }
        perIter[side][kind] = ((med(t2) - med(t1)) * 1e6) / (n2 - n1);
      }
    }
    const m = perIter.memtree;
    const q = perIter.qemu;
    return [
      {
        name: 'guest-uart-read-loop-vs-qemu-tcg',
        ratio: q.uart / m.uart,
        ns: m.uart,
        baselineNs: q.uart,
      },
      {
        name: 'guest-ram-load-loop-vs-qemu-tcg',
        ratio: q.ram / m.ram,
        ns: m.ram,
        baselineNs: q.ram,
      },
      {
        name: 'guest-uart-register-cost-vs-qemu-tcg',
        ratio: (q.uart - q.ram) / (m.uart - m.ram),
        ns: m.uart - m.ram,
        baselineNs: q.uart - q.ram,
      },
    ];
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

export function run() {
  const uart = uartRows();
  if (!existsSync(BIOS)) return uart;
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
    ...uart,
  ];
}
