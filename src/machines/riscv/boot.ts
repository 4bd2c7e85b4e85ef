/**
 * @module machines/riscv/boot
 * Loading a riscv64 virt machine as QEMU 7.2 does before its harts start (hw/riscv/boot.c and
 * virt_machine_done): the firmware at the start of RAM (an ELF's segments at their physical
 * addresses, or a raw image), the kernel after it at the next 2 MiB boundary (or where its ELF
 * says), the initrd at kernel + min(RAM / 2, 128 MiB), the device tree at the last 2 MiB boundary
 * that leaves room for it below min(end of RAM, 3 GiB), and the reset vector with OpenSBI's
 * fw_dynamic_info in the mask ROM. Takes file contents, not paths, so it runs anywhere.
 */

import { InvalidArgumentError } from '../../core/errors.js';
import { createVirtFdt, type Fdt, fdtBuffer, readFdt, setBootargsAndSeed } from './fdt.js';
import { type RiscvVirtMachine, VIRT_MEMMAP } from './virt.js';

const MiB = 1024 * 1024;
const EM_RISCV = 243;

/** What to boot (QEMU's -bios, -kernel, -initrd, -append, -dtb), as file contents. */
export interface VirtBootOptions {
  /** Firmware image (ELF or raw), or null for `-bios none`. */
  bios: Uint8Array | null;
  /** Kernel image (ELF or raw). */
  kernel?: Uint8Array;
  /** Initial RAM disk (raw). */
  initrd?: Uint8Array;
  /** Kernel command line (/chosen/bootargs). */
  append?: string;
  /** A device tree blob to use instead of the generated one. */
  dtb?: Uint8Array;
  /** /chosen/rng-seed bytes (32); default: random, as QEMU. */
  rngSeed?: Uint8Array;
}

/** Where things went. */
export interface VirtBootInfo {
  firmwareEnd: number;
  kernelEntry: number;
  initrd: { start: number; end: number } | null;
  fdtAddr: number;
  fdt: Fdt;
  /** The bytes loaded at `fdtAddr`: QEMU's whole device-tree buffer after fdt_pack. */
  fdtImage: Uint8Array;
}

interface ElfImage {
  segments: Array<{ paddr: number; data: Uint8Array; memsz: number }>;
  low: number;
  high: number;
}

/** The PT_LOAD segments of a 64-bit little-endian RISC-V ELF, or null if `b` is not one. */
export function parseElf(b: Uint8Array): ElfImage | null {
  if (b.length < 64 || b[0] !== 0x7f || b[1] !== 0x45 || b[2] !== 0x4c || b[3] !== 0x46) return null;
  if (b[4] !== 2 || b[5] !== 1) return null; // ELFCLASS64, little-endian
  const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
  if (dv.getUint16(18, true) !== EM_RISCV) return null;
  const phoff = Number(dv.getBigUint64(32, true));
  const phentsize = dv.getUint16(54, true);
  const phnum = dv.getUint16(56, true);
  const segments: ElfImage['segments'] = [];
  let low = Number.POSITIVE_INFINITY;
  let high = 0;
  for (let i = 0; i < phnum; i++) {
    const o = phoff + i * phentsize;
    if (o + 56 > b.length) throw new InvalidArgumentError('ELF program header past the end of the file');
    if (dv.getUint32(o, true) !== 1) continue; // PT_LOAD
    const offset = Number(dv.getBigUint64(o + 8, true));
    const paddr = Number(dv.getBigUint64(o + 24, true));
    const filesz = Number(dv.getBigUint64(o + 32, true));
    const memsz = Number(dv.getBigUint64(o + 40, true));
    if (memsz === 0) continue;
    if (offset + filesz > b.length) throw new InvalidArgumentError('ELF segment past the end of the file');
    segments.push({ paddr, data: b.subarray(offset, offset + filesz), memsz });
    low = Math.min(low, paddr);
    high = Math.max(high, paddr + memsz);
  }
  if (!segments.length) return null;
  return { segments, low, high };
}

/** Loads an ELF's segments (bss zeroed) as QEMU's rom_add_elf_program does. */
function loadElf(m: RiscvVirtMachine, elf: ElfImage): void {
  for (const s of elf.segments) {
    const data = new Uint8Array(s.memsz);
    data.set(s.data);
    m.loadBlob(s.paddr, data);
  }
}

/** QEMU_ALIGN_UP / QEMU_ALIGN_DOWN for power-of-two alignments on safe integers. */
const alignUp = (v: number, a: number) => Math.ceil(v / a) * a;
const alignDown = (v: number, a: number) => Math.floor(v / a) * a;

/** The reset vector and fw_dynamic_info (riscv_setup_rom_reset_vec, riscv_rom_copy_firmware_info). */
export function resetVector(startAddr: number, fdtAddr: number, kernelEntry: number): Uint8Array {
  const words = [
    0x00000297, // auipc t0, %pcrel_hi(fw_dyn)
    0x02828613, // addi a2, t0, %pcrel_lo(1b)
    0xf1402573, // csrr a0, mhartid
    0x0202b583, // ld a1, 32(t0)
    0x0182b283, // ld t0, 24(t0)
    0x00028067, // jr t0
    startAddr >>> 0,
    Math.floor(startAddr / 2 ** 32),
    fdtAddr >>> 0,
    Math.floor(fdtAddr / 2 ** 32),
  ];
  const out = new Uint8Array(words.length * 4 + 6 * 8);
  const dv = new DataView(out.buffer);
  for (const [i, w] of words.entries()) dv.setUint32(i * 4, w >>> 0, true);
  const info = words.length * 4;
  dv.setBigUint64(info, 0x4942534fn, true); // FW_DYNAMIC_INFO_MAGIC_VALUE
  dv.setBigUint64(info + 8, 2n, true); // FW_DYNAMIC_INFO_VERSION
  dv.setBigUint64(info + 16, BigInt(kernelEntry), true); // next_addr
  dv.setBigUint64(info + 24, 1n, true); // next_mode: S
  dv.setBigUint64(info + 32, 0n, true); // options
  dv.setBigUint64(info + 40, 0n, true); // boot_hart
  return out;
}

/**
 * Loads firmware, kernel, initrd, device tree and reset vector into a freshly built machine, as
 * virt_machine_done does (without pflash drives: the harts start at the mask ROM).
 */
export function bootRiscvVirt(m: RiscvVirtMachine, o: VirtBootOptions): VirtBootInfo {
  const dramBase: number = VIRT_MEMMAP.dram.base;
  const ramEnd = dramBase + m.ramSize;
  const place = (what: string, addr: number, len: number) => {
    if (addr < dramBase || addr + len > ramEnd) {
      throw new InvalidArgumentError(
        `${what} (${len} bytes at 0x${addr.toString(16)}) does not fit in ${m.ramSize / MiB} MiB of RAM`,
      );
    }
  };
  // An ELF image goes where its segments say, anything else whole at `at` (as load_elf_ram_sym,
  // then load_image_targphys_as); returns the lowest address and the end of what was loaded.
  const loadImage = (what: string, image: Uint8Array, at: number): { low: number; high: number } => {
    const elf = parseElf(image);
    if (elf) {
      loadElf(m, elf);
      return elf;
    }
    place(what, at, image.length);
    m.loadBlob(at, image);
    return { low: at, high: at + image.length };
  };
  // riscv_find_and_load_firmware
  const firmwareEnd = o.bios ? loadImage('the firmware', o.bios, dramBase).high : dramBase;
  const seed = o.rngSeed ?? globalThis.crypto.getRandomValues(new Uint8Array(32));
  let fdt: Fdt;
  if (o.dtb) {
    fdt = readFdt(o.dtb);
    setBootargsAndSeed(fdt, o.append, seed);
  } else {
    fdt = createVirtFdt({
      ramSize: m.ramSize,
      smp: m.smp,
      isa: m.harts[0]!.isaString,
      highPcieBase: m.highPcieBase,
      cmdline: o.append,
      rngSeed: seed,
    });
  }
  let kernelEntry = 0;
  let initrd: VirtBootInfo['initrd'] = null;
  if (o.kernel) {
    // riscv_calc_kernel_start_addr, riscv_load_kernel
    kernelEntry = loadImage('the kernel', o.kernel, alignUp(firmwareEnd, 2 * MiB)).low;
    if (o.initrd) {
      // riscv_load_initrd
      const s = kernelEntry + Math.min(m.ramSize / 2, 128 * MiB);
      place('the initrd', s, o.initrd.length);
      m.loadBlob(s, o.initrd);
      initrd = { start: s, end: s + o.initrd.length };
      const chosen = fdt.root.find('/chosen')!; // setBootargsAndSeed made sure it is there
      chosen.setCells('linux,initrd-start', [s >>> 0]);
      chosen.setCells('linux,initrd-end', [initrd.end >>> 0]);
    }
  }
  // riscv_load_fdt: placed by the size of the tree's buffer before packing, and the whole buffer
  // (the packed tree and what libfdt left after it) copied to RAM.
  const top = dramBase < 3072 * MiB ? Math.min(ramEnd, 3072 * MiB) : ramEnd;
  const fdtAddr = alignDown(top - fdt.bufSize, 2 * MiB);
  const image = fdtBuffer(fdt).buf;
  place('the device tree', fdtAddr, image.length);
  m.loadBlob(fdtAddr, image);
  m.loadBlob(VIRT_MEMMAP.mrom.base, resetVector(dramBase, fdtAddr, kernelEntry));
  return { firmwareEnd, kernelEntry, initrd, fdtAddr, fdt, fdtImage: image };
}
