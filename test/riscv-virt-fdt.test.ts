/**
 * @module test/riscv-virt-fdt
 * The device tree memtree gives its riscv64 `virt` guest against QEMU 7.2's own, for a population
 * of -m / -smp / -bios / -kernel / -initrd / -append combinations. QEMU's tree comes from
 * `-M virt,dumpdtb=FILE`, which riscv_load_fdt writes after create_fdt, the initrd properties of
 * virt_machine_done and fdt_pack: the whole buffer (1 MiB for a generated tree) that QEMU then
 * copies to guest RAM, /chosen complete. Where it goes comes from `info roms` of the same QEMU
 * command line, and from hand reasoning on riscv_load_fdt's rule.
 *
 * Two comparisons per configuration:
 * - the library (bootRiscvVirt) with QEMU's `riscv,isa` string given to memtree's harts and QEMU's
 *   rng-seed: the loaded image equals QEMU's dump byte for byte, header, reservation map, node
 *   order, phandles, strings table, padding and the stale bytes libfdt leaves past the packed end;
 * - the CLI (`memtree run riscv-virt ... --dumpdtb`), with QEMU's options spelled the same and
 *   QEMU's seed by --rng-seed: the decoded tree equals QEMU's node for node and property for
 *   property, except `riscv,isa` (below), and the file has QEMU's length. This one also covers
 *   -m parsing and its rounding to 8 KiB.
 *
 * Allowed differences: `riscv,isa` lists QEMU's default rv64 extensions, and memtree's hart lacks
 * those in MISSING_EXTENSIONS (docs/riscv-hart.md); the strings are compared with those removed.
 * `/chosen/rng-seed` is random in QEMU: memtree is handed QEMU's bytes, so it is compared too.
 *
 * Needs qemu-system-riscv64 and, for the --dtb tests, dtc (Debian: device-tree-compiler); skipped
 * without them, failed under CI.
 */

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, type TestContext, test } from 'node:test';
import { DEFAULT_BIOS } from '../src/cli/commands/run.js';
import { bootRiscvVirt } from '../src/machines/riscv/boot.js';
import { type Fdt, type FdtNode, readFdt } from '../src/machines/riscv/fdt.js';
import { buildRiscvVirt } from '../src/machines/riscv/virt.js';
import { startQemu } from '../src/qmp/capture.js';
import { mulberry32 } from './support/mulberry32.js';
import { runCli } from './support/run-cli.js';

const QEMU = 'qemu-system-riscv64';
const MiB = 2 ** 20;

/**
 * Extensions of QEMU 7.2's default rv64 hart that memtree's hart does not implement
 * (docs/riscv-hart.md, "Not implemented"); removed from both `riscv,isa` strings before comparing.
 */
const MISSING_EXTENSIONS = new Set(['h', 'zba', 'zbb', 'zbc', 'zbs', 'sstc']);

/** An ISA string (rv64 + single letters + _multi-letter names) without MISSING_EXTENSIONS. */
function withoutMissing(isa: string): string {
  const [base = '', ...multi] = isa.split('_');
  const letters = [...base.slice(4)].filter((l) => !MISSING_EXTENSIONS.has(l)).join('');
  return [`${base.slice(0, 4)}${letters}`, ...multi.filter((x) => !MISSING_EXTENSIONS.has(x))].join('_');
}

function haveTool(t: TestContext, cmd: string, pkg: string): boolean {
  if (spawnSync(cmd, ['--version'], { stdio: 'ignore' }).status === 0) return true;
  const why = `${cmd} is not on PATH (Debian package ${pkg})`;
  if (process.env.CI) assert.fail(`${why}; CI must run the live QEMU tests`);
  t.skip(why);
  return false;
}

const dir = mkdtempSync(join(tmpdir(), 'memtree-fdt-'));
after(() => rmSync(dir, { recursive: true, force: true }));

/** Bytes from a fixed seed; the first is 0 so that no loader takes them for an ELF or a uImage. */
function pseudoRandomFile(name: string, size: number, seed: number): string {
  const r = mulberry32(seed);
  const b = Buffer.alloc(size);
  for (let i = 1; i < size; i++) b[i] = Math.floor(r() * 256);
  const path = join(dir, name);
  writeFileSync(path, b);
  return path;
}
const KERNEL = pseudoRandomFile('kernel.bin', 8001, 1);

/**
 * A minimal RISC-V ELF64 executable with one PT_LOAD segment at physical 0x80400000 (16 bytes in
 * the file, 32 in memory): riscv_load_kernel takes its lowest address as the kernel's entry, and
 * the initrd goes 128 MiB (or half the RAM) above that.
 */
function elfKernel(): string {
  const b = Buffer.alloc(64 + 56 + 16);
  b.set([0x7f, 0x45, 0x4c, 0x46, 2, 1, 1], 0); // ELFCLASS64, little-endian, version 1
  b.writeUInt16LE(2, 16); // ET_EXEC
  b.writeUInt16LE(243, 18); // EM_RISCV
  b.writeUInt32LE(1, 20);
  b.writeBigUInt64LE(0x80400000n, 24); // e_entry
  b.writeBigUInt64LE(64n, 32); // e_phoff
  b.writeUInt16LE(64, 52); // e_ehsize
  b.writeUInt16LE(56, 54); // e_phentsize
  b.writeUInt16LE(1, 56); // e_phnum
  b.writeUInt32LE(1, 64); // PT_LOAD
  b.writeUInt32LE(5, 68); // R+X
  b.writeBigUInt64LE(120n, 72); // p_offset
  b.writeBigUInt64LE(0x80400000n, 80); // p_vaddr
  b.writeBigUInt64LE(0x80400000n, 88); // p_paddr
  b.writeBigUInt64LE(16n, 96); // p_filesz
  b.writeBigUInt64LE(32n, 104); // p_memsz
  b.writeBigUInt64LE(4n, 112); // p_align
  b.fill(0x13, 120); // nops
  const path = join(dir, 'kernel.elf');
  writeFileSync(path, b);
  return path;
}
const ELF_KERNEL = elfKernel();
const INITRD = pseudoRandomFile('initrd.bin', 5003, 2);

/** QEMU's `-M virt,dumpdtb=FILE` for these options: the dumped buffer. */
function qemuDump(args: string[], name: string): Buffer {
  const file = join(dir, name);
  const r = spawnSync(QEMU, ['-M', `virt,dumpdtb=${file}`, '-nodefaults', '-display', 'none', ...args], {
    encoding: 'utf8',
  });
  assert.equal(r.status, 0, `QEMU ${args.join(' ')}: ${r.stderr}`);
  return readFileSync(file);
}

/** QEMU's `info roms` line for the device tree under these options: where riscv_load_fdt put it. */
async function qemuFdtRom(args: string[]): Promise<{ addr: number; size: number }> {
  const q = await startQemu([QEMU, '-M', 'virt', '-nodefaults', ...args]);
  try {
    const roms = await q.client.hmp('info roms');
    const m = /addr=([0-9a-f]+) size=0x([0-9a-f]+) mem=ram name="fdt"/.exec(roms);
    assert.ok(m, `no fdt in info roms:\n${roms}`);
    return { addr: Number.parseInt(m[1]!, 16), size: Number.parseInt(m[2]!, 16) };
  } finally {
    await q.quit();
  }
}

/** The tree as lines, in blob order: each node's path, then each property with its bytes in hex. */
function lines(fdt: Fdt, isaAs: (isa: string) => string = (s) => s): string[] {
  const out = [`boot-cpuid ${fdt.bootCpuid}`, ...fdt.reserved.map(([a, s]) => `memreserve ${a} ${s}`)];
  const walk = (n: FdtNode, path: string) => {
    out.push(`node ${path}`);
    for (const [k, v] of n.props) {
      const value =
        k === 'riscv,isa'
          ? `"${isaAs(new TextDecoder().decode(v.subarray(0, -1)))}"`
          : Buffer.from(v).toString('hex');
      out.push(`  ${k} = ${value}`);
    }
    for (const c of n.children) walk(c, path === '/' ? `/${c.name}` : `${path}/${c.name}`);
  };
  walk(fdt.root, '/');
  return out;
}

function header(b: Uint8Array): number[] {
  const dv = new DataView(b.buffer, b.byteOffset, 40);
  return Array.from({ length: 10 }, (_, i) => dv.getUint32(i * 4, false));
}

function firstDifference(a: Uint8Array, b: Uint8Array): string {
  for (let i = 0; i < Math.max(a.length, b.length); i++) {
    if (a[i] !== b[i]) return `first difference at byte 0x${i.toString(16)} (memtree ${a[i]}, QEMU ${b[i]})`;
  }
  return 'equal';
}

interface Config {
  m: string;
  ramBytes: number;
  smp: number;
  bios: 'none' | 'default';
  kernel?: boolean | 'elf';
  initrd?: boolean;
  append?: string;
  /** riscv_load_fdt by hand: align_down(min(0x80000000 + RAM, 3 GiB) - 1 MiB, 2 MiB). */
  fdtAddr: number;
}

const CONFIGS: Config[] = [
  { m: '128M', ramBytes: 128 * MiB, smp: 1, bios: 'none', fdtAddr: 0x87e00000 },
  { m: '100M', ramBytes: 100 * MiB, smp: 2, bios: 'none', fdtAddr: 0x86200000 },
  // 1000001 KiB is not a multiple of 8 KiB: machine_set_mem rounds it up to 125001 * 8 KiB.
  { m: '1000001K', ramBytes: 125001 * 8192, smp: 3, bios: 'none', fdtAddr: 0xbce00000 },
  { m: '3G', ramBytes: 3072 * MiB, smp: 4, bios: 'default', fdtAddr: 0xbfe00000 },
  { m: '4097M', ramBytes: 4097 * MiB, smp: 5, bios: 'none', fdtAddr: 0xbfe00000 },
  {
    m: '16G',
    ramBytes: 16384 * MiB,
    smp: 8,
    bios: 'default',
    kernel: true,
    initrd: true,
    append: 'console=ttyS0 root=/dev/vda rw',
    fdtAddr: 0xbfe00000,
  },
  {
    m: '768M',
    ramBytes: 768 * MiB,
    smp: 6,
    bios: 'default',
    kernel: true,
    append: 'earlycon=sbi',
    fdtAddr: 0xafe00000,
  },
  { m: '64M', ramBytes: 64 * MiB, smp: 7, bios: 'none', kernel: true, initrd: true, fdtAddr: 0x83e00000 },
  {
    m: '200M',
    ramBytes: 200 * MiB,
    smp: 1,
    bios: 'default',
    kernel: true,
    initrd: true,
    append: 'x',
    fdtAddr: 0x8c600000,
  },
  {
    m: '512M',
    ramBytes: 512 * MiB,
    smp: 2,
    bios: 'default',
    kernel: 'elf',
    initrd: true,
    append: 'an ELF kernel',
    fdtAddr: 0x9fe00000,
  },
];

function qemuArgs(c: Config): string[] {
  return [
    '-m',
    c.m,
    '-smp',
    String(c.smp),
    ...(c.bios === 'none' ? ['-bios', 'none'] : []),
    ...(c.kernel ? ['-kernel', c.kernel === 'elf' ? ELF_KERNEL : KERNEL] : []),
    ...(c.initrd ? ['-initrd', INITRD] : []),
    ...(c.append !== undefined ? ['-append', c.append] : []),
  ];
}

for (const [i, c] of CONFIGS.entries()) {
  const args = qemuArgs(c);
  test(`QEMU 7.2 -M virt ${args.join(' ').replaceAll(dir, '.')}: memtree's device tree is QEMU's`, {
    timeout: 120_000,
  }, async (t) => {
    if (!haveTool(t, QEMU, 'qemu-system-misc')) return;
    if (c.bios === 'default' && !existsSync(DEFAULT_BIOS)) {
      if (process.env.CI) assert.fail(`${DEFAULT_BIOS} is missing (Debian package opensbi)`);
      t.skip(`${DEFAULT_BIOS} is missing (Debian package opensbi)`);
      return;
    }
    const q = qemuDump(args, `qemu-${i}.dtb`);
    const qFdt = readFdt(q);
    const seed = qFdt.root.find('/chosen')!.get('rng-seed')!;
    const qIsa = new TextDecoder().decode(qFdt.root.find('/cpus/cpu@0')!.get('riscv,isa')!.subarray(0, -1));

    // What QEMU fixes in the header (hand reasoning: create_device_tree, fdt_pack).
    const [magic, total, offStruct, offStrings, offRsv, version, lastComp, cpuid, sizeStrings, sizeStruct] =
      header(q);
    assert.deepEqual([magic, offRsv, offStruct, version, lastComp, cpuid], [0xd00dfeed, 40, 56, 17, 16, 0]);
    assert.equal(offStrings, offStruct! + sizeStruct!);
    assert.equal(total, offStrings! + sizeStrings!);
    assert.equal(q.length, 0x100000, 'QEMU dumps its whole FDT_MAX_SIZE buffer');

    // Where the tree goes and how much QEMU copies (info roms), against the hand-reasoned address.
    const rom = await qemuFdtRom(args);
    assert.deepEqual(rom, { addr: c.fdtAddr, size: 0x100000 });

    // The library, with QEMU's ISA string (the allowed difference substituted at its source).
    const m = buildRiscvVirt({ ramSize: c.ramBytes, smp: c.smp });
    for (const h of m.harts) Object.defineProperty(h, 'isaString', { value: qIsa });
    const info = bootRiscvVirt(m, {
      bios: c.bios === 'none' ? null : new Uint8Array(readFileSync(DEFAULT_BIOS)),
      kernel: c.kernel ? new Uint8Array(readFileSync(c.kernel === 'elf' ? ELF_KERNEL : KERNEL)) : undefined,
      initrd: c.initrd ? new Uint8Array(readFileSync(INITRD)) : undefined,
      append: c.append,
      rngSeed: seed,
    });
    assert.equal(info.fdtAddr, c.fdtAddr);
    if (c.initrd) {
      // riscv_load_initrd by hand: kernel entry + min(RAM / 2, 128 MiB).
      const entry = c.kernel === 'elf' ? 0x80400000 : c.bios === 'none' ? 0x80000000 : 0x80200000;
      assert.equal(info.initrd?.start, entry + Math.min(c.ramBytes / 2, 128 * MiB));
    }
    assert.deepEqual(lines(info.fdt), lines(qFdt), 'the tree, node for node');
    assert.ok(
      Buffer.from(info.fdtImage).equals(q),
      `the image at the FDT address: ${firstDifference(info.fdtImage, q)}`,
    );
    const inRam = new Uint8Array(info.fdtImage.length);
    m.memory.read(c.fdtAddr, inRam);
    assert.ok(Buffer.from(inRam).equals(q), "guest RAM at the FDT address holds QEMU's image");

    // The CLI with the same options and memtree's own harts.
    const out = join(dir, `memtree-${i}.dtb`);
    const r = await runCli([
      'run',
      'riscv-virt',
      ...args,
      '--rng-seed',
      Buffer.from(seed).toString('hex'),
      '--dumpdtb',
      out,
    ]);
    assert.equal(r.code, 0, r.err);
    const mine = readFileSync(out);
    assert.equal(mine.length, q.length);
    assert.deepEqual(lines(readFdt(mine), withoutMissing), lines(qFdt, withoutMissing));
  });
}

test('withoutMissing drops the single letters and the multi-letter names memtree lacks', () => {
  assert.equal(
    withoutMissing('rv64imafdch_zicsr_zifencei_zihintpause_zba_zbb_zbc_zbs_sstc'),
    'rv64imafdc_zicsr_zifencei_zihintpause',
  );
  assert.equal(withoutMissing('rv64imafdc'), 'rv64imafdc');
});

// --- --dtb: a user's blob, loaded and changed as load_device_tree and create_fdt do

const USER_DTS = `/dts-v1/;
/memreserve/ 0x80000000 0x10000;
/ {
  #address-cells = <2>;
  #size-cells = <2>;
  compatible = "riscv-virtio";
  model = "a user's tree";
  chosen {
    bootargs = "a long command line that a shorter -append replaces, so the tree shrinks";
    stdout-path = "/soc/serial@10000000";
  };
  memory@80000000 {
    device_type = "memory";
    reg = <0x0 0x80000000 0x0 0x10000000>;
  };
};
`;

function dtc(t: TestContext, name: string, extra: string[], dts = USER_DTS): string | null {
  if (!haveTool(t, 'dtc', 'device-tree-compiler')) return null;
  const src = join(dir, `${name}.dts`);
  const out = join(dir, `${name}.dtb`);
  writeFileSync(src, dts);
  const r = spawnSync('dtc', ['-I', 'dts', '-O', 'dtb', ...extra, '-o', out, src], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  return out;
}

/**
 * The blob with its strings block moved before the structure block (header, reservations,
 * strings, structure, the latter now at an offset that is not a multiple of 4): legal, but
 * fdt_open_into must reorder it before libfdt can edit it.
 */
function misorder(file: string): string {
  const b = readFileSync(file);
  const h = (i: number) => b.readUInt32BE(i * 4);
  const [offStruct, offStrings, offRsv, sizeStrings, sizeStruct] = [h(2), h(3), h(4), h(8), h(9)];
  const rsv = b.subarray(offRsv, offStruct);
  const out = Buffer.concat([
    b.subarray(0, 40),
    rsv,
    b.subarray(offStrings, offStrings + sizeStrings),
    b.subarray(offStruct, offStruct + sizeStruct),
  ]);
  out.writeUInt32BE(out.length, 4);
  out.writeUInt32BE(40 + rsv.length, 12); // strings first
  out.writeUInt32BE(40 + rsv.length + sizeStrings, 8);
  const path = file.replace(/\.dtb$/, '-misordered.dtb');
  writeFileSync(path, out);
  return path;
}

for (const [name, extra, reorder] of [
  ['v17-bootcpu1', ['-b', '1'], false],
  ['v16-padded', ['-V', '16', '-p', '64'], false],
  ['v17-strings-first', [], true],
] as const) {
  test(`--dtb (${name}): loaded, changed and placed as QEMU 7.2 does (load_device_tree, riscv_load_fdt)`, {
    timeout: 60_000,
  }, async (t) => {
    if (!haveTool(t, QEMU, 'qemu-system-misc')) return;
    const compiled = dtc(t, name, [...extra]);
    if (!compiled) return;
    const file = reorder ? misorder(compiled) : compiled;
    const args = [
      '-m',
      '256M',
      '-bios',
      'none',
      '-kernel',
      KERNEL,
      '-initrd',
      INITRD,
      '-append',
      'short',
      '-dtb',
      file,
    ];
    const q = qemuDump(args, `qemu-${name}.dtb`);
    const fileSize = readFileSync(file).length;
    // load_device_tree's buffer: twice the file plus 20000 bytes; placed 2 MiB-aligned below the
    // end of the 256 MiB of RAM, which for a small file is 0x8fe00000.
    assert.equal(q.length, (fileSize + 10000) * 2);
    assert.deepEqual(await qemuFdtRom(args), { addr: 0x8fe00000, size: (fileSize + 10000) * 2 });
    const seed = readFdt(q).root.find('/chosen')!.get('rng-seed')!;
    const m = buildRiscvVirt({ ramSize: 256 * MiB });
    const info = bootRiscvVirt(m, {
      bios: null,
      kernel: new Uint8Array(readFileSync(KERNEL)),
      initrd: new Uint8Array(readFileSync(INITRD)),
      append: 'short',
      dtb: new Uint8Array(readFileSync(file)),
      rngSeed: seed,
    });
    assert.equal(info.fdtAddr, 0x8fe00000);
    assert.ok(Buffer.from(info.fdtImage).equals(q), firstDifference(info.fdtImage, q));
  });
}

test('--dtb without /chosen: QEMU 7.2 stops (findnode_nofail), memtree too, with one line and status 1', async (t) => {
  if (!haveTool(t, QEMU, 'qemu-system-misc')) return;
  const file = dtc(t, 'nochosen', [], '/dts-v1/;\n/ { #address-cells = <2>; #size-cells = <2>; };\n');
  if (!file) return;
  const qr = spawnSync(
    QEMU,
    ['-M', 'virt', '-nodefaults', '-display', 'none', '-bios', 'none', '-dtb', file],
    {
      encoding: 'utf8',
      timeout: 30_000,
    },
  );
  assert.equal(qr.status, 1);
  assert.match(qr.stderr, /Couldn't find node \/chosen/);
  const r = await runCli(['run', 'riscv-virt', '-bios', 'none', '-dtb', file]);
  assert.equal(r.code, 1);
  assert.equal(r.out, '');
  assert.equal(r.err, 'memtree run: the device tree has no /chosen node (QEMU needs one)\n');
});

test('--dtb with a file that is not a device tree, or no file: one typed line, status 1', async () => {
  const junk = join(dir, 'junk.dtb');
  writeFileSync(junk, 'this is not a device tree blob at all, just text\n');
  const r = await runCli(['run', 'riscv-virt', '--bios', 'none', '--dtb', junk]);
  assert.equal(r.code, 1);
  assert.equal(r.out, '');
  assert.equal(r.err, `memtree run: --dtb ${junk}: not a valid device tree blob: wrong magic\n`);
  const short = join(dir, 'short.dtb');
  writeFileSync(short, Buffer.from([0xd0, 0x0d, 0xfe, 0xed, 0, 0, 0x10, 0]));
  const r2 = await runCli(['run', 'riscv-virt', '--bios', 'none', '--dtb', short]);
  assert.equal(r2.code, 1);
  assert.equal(
    r2.err,
    `memtree run: --dtb ${short}: not a valid device tree blob: shorter than its header\n`,
  );
  const missing = join(dir, 'missing.dtb');
  const r3 = await runCli(['run', 'riscv-virt', '--bios', 'none', '--dtb', missing]);
  assert.equal(r3.code, 1);
  assert.match(r3.err, /^memtree run: cannot read the device tree .*missing\.dtb: .*\n$/);
});

test('-m as QEMU reads it: MiB by default, B/K/M/G/T units, fractions, rounded up to 8 KiB, 0 the default', async () => {
  const { parseRamSize } = await import('../src/cli/commands/run.js');
  assert.equal(parseRamSize('100'), 100 * MiB);
  assert.equal(parseRamSize('1001K'), 1008 * 1024);
  assert.equal(parseRamSize('1.5G'), 1536 * MiB);
  assert.equal(parseRamSize('12345B'), 16384);
  assert.equal(parseRamSize('16g'), 16384 * MiB);
  // QEMU 7.2 -M virt -m 0 maps 128 MiB of RAM (info mtree -f): vl.c's parse_memory_options drops
  // a zero size, and the machine's default applies
  assert.equal(parseRamSize('0'), 128 * MiB);
  assert.equal(parseRamSize('0G'), 128 * MiB);
  for (const bad of ['100.5', '1.5B', '512MB', '-1M'])
    assert.throws(() => parseRamSize(bad), { code: 'ERR_USAGE' });
});

test('--dtb with no room for -append in its buffer: QEMU 7.2 stops (FDT_ERR_NOSPACE), memtree too, with one line', async (t) => {
  if (!haveTool(t, QEMU, 'qemu-system-misc')) return;
  const file = dtc(
    t,
    'small',
    [],
    '/dts-v1/;\n/ { #address-cells = <2>; #size-cells = <2>; chosen { }; };\n',
  );
  if (!file) return;
  // load_device_tree leaves (size + 10000) * 2 bytes: 25000 more do not fit.
  const append = 'x'.repeat(25000);
  const args = ['-bios', 'none', '-kernel', KERNEL, '-append', append, '-dtb', file];
  const qr = spawnSync(QEMU, ['-M', 'virt', '-nodefaults', '-display', 'none', ...args], {
    encoding: 'utf8',
    timeout: 30_000,
  });
  assert.equal(qr.status, 1);
  assert.match(qr.stderr, /FDT_ERR_NOSPACE/);
  const r = await runCli(['run', 'riscv-virt', ...args]);
  assert.equal(r.code, 1);
  const size = (readFileSync(file).length + 10000) * 2;
  assert.equal(r.err, `memtree run: device tree: no room left in its ${size}-byte buffer\n`);
});
