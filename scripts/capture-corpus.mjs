#!/usr/bin/env node
/**
 * Captures the conformance corpus: every machine type that the installed QEMU binaries start with
 * `-nodefaults`, plus device-rich variants (PCI bridges, IOMMUs, BARs programmed by the firmware),
 * each with `memtree capture` (the library's `capture()`), and packs the dumps into
 * `fixtures/corpus/qemu-VERSION.tar.br` (a tar file compressed with brotli, which Node reads
 * without extra tools).
 *
 *   npm run build
 *   node scripts/capture-corpus.mjs --version 7.2 [--jobs 3] [--only REGEX]
 *   node scripts/capture-corpus.mjs --version 10.0 --chroot /var/tmp/memtree-trixie
 *
 * --only REGEX recaptures the machines whose directory matches into the existing stage and packs
 * the whole stage again.
 *
 * With --chroot, every `qemu-system-*` runs inside that Debian chroot (made by
 * scripts/make-debian-chroot.sh) through small wrapper scripts; the host's /tmp is bind-mounted
 * into it so that the private QMP socket is reachable from both sides.
 *
 * Machines that do not start (missing firmware or kernel, a board that needs an option) are
 * recorded with QEMU's own reason in `skipped.tsv` inside the archive.
 */

import { execFileSync, spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { brotliCompressSync, constants } from 'node:zlib';

const repo = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const { capture, startQemu, CAPTURE_DUMPS, shellQuote } = await import(join(repo, 'dist/qmp/capture.js'));

const { values } = parseArgs({
  options: {
    version: { type: 'string' },
    chroot: { type: 'string' },
    jobs: { type: 'string', default: '3' },
    only: { type: 'string' },
    stage: { type: 'string' },
    out: { type: 'string' },
  },
});
if (!values.version) {
  console.error('usage: capture-corpus.mjs --version 7.2|10.0 [--chroot DIR] [--jobs N] [--only REGEX]');
  process.exit(2);
}
const version = values.version;
const stage = resolve(values.stage ?? `/var/tmp/memtree-corpus/qemu-${version}`);
const outFile = resolve(values.out ?? join(repo, `fixtures/corpus/qemu-${version}.tar.br`));
const only = values.only ? new RegExp(values.only) : null;
const newQemu = Number.parseFloat(version) >= 9;

const BINARIES = [
  'x86_64',
  'i386',
  'aarch64',
  'arm',
  'riscv64',
  'riscv32',
  'ppc',
  'ppc64',
  'mips',
  'mipsel',
  'mips64',
  'mips64el',
  's390x',
  'sparc',
  'sparc64',
  'alpha',
  'avr',
  'cris',
  'hppa',
  'loongarch64',
  'm68k',
  'microblaze',
  'microblazeel',
  'nios2',
  'or1k',
  'rx',
  'sh4',
  'sh4eb',
  'tricore',
  'xtensa',
  'xtensaeb',
];

/** Device-rich variants: [case name, binary, args, milliseconds the guest firmware runs first]. */
const VARIANTS = [
  [
    'pc-pci-bridge',
    'x86_64',
    '-M pc -m 1G -device pci-bridge,id=b1,chassis_nr=1 -device e1000,bus=b1 -device virtio-net-pci -device VGA',
    0,
  ],
  [
    'pc-pci-bridge-programmed',
    'x86_64',
    '-M pc -m 1G -device pci-bridge,id=b1,chassis_nr=1 -device e1000,bus=b1,romfile= -device virtio-net-pci,romfile= -device VGA',
    3000,
  ],
  [
    'pc-devices-programmed',
    'x86_64',
    '-M pc -m 512M -device VGA -device e1000,romfile= -device ich9-ahci -device virtio-rng-pci',
    3000,
  ],
  [
    'q35-bridges',
    'x86_64',
    '-M q35 -m 1G -device pcie-root-port,id=rp1,chassis=1,slot=1 -device pcie-pci-bridge,id=pb1,bus=rp1 -device e1000,bus=pb1 -device pcie-root-port,id=rp2,chassis=2,slot=2 -device virtio-net-pci,bus=rp2 -device VGA',
    0,
  ],
  [
    'q35-bridges-programmed',
    'x86_64',
    '-M q35 -m 1G -device pcie-root-port,id=rp1,chassis=1,slot=1 -device pcie-pci-bridge,id=pb1,bus=rp1 -device e1000,bus=pb1,romfile= -device pcie-root-port,id=rp2,chassis=2,slot=2 -device virtio-net-pci,bus=rp2,romfile= -device VGA',
    3000,
  ],
  [
    'q35-intel-iommu-devices',
    'x86_64',
    '-M q35 -m 1G -device intel-iommu -device pcie-root-port,id=rp1,chassis=1,slot=1 -device virtio-net-pci,bus=rp1 -device nvme,serial=m1',
    0,
  ],
  ['q35-amd-iommu', 'x86_64', '-M q35 -m 1G -device amd-iommu -device virtio-net-pci', 0],
  [
    'pc-isa-devices',
    'x86_64',
    '-M pc -m 256M -device isa-debugcon,iobase=0x402 -device isa-serial -device isa-parallel -device sb16 -device adlib',
    0,
  ],
  [
    'i386-pc-devices',
    'i386',
    '-M pc -m 256M -device VGA -device e1000 -device pci-bridge,id=b1,chassis_nr=1 -device virtio-blk-pci,bus=b1,drive=d0 -blockdev driver=null-co,node-name=d0',
    0,
  ],
  [
    'virt-smmuv3',
    'aarch64',
    '-M virt,iommu=smmuv3 -cpu cortex-a57 -m 512M -device pcie-root-port,id=rp1,chassis=1 -device virtio-net-pci,bus=rp1 -device pci-bridge,id=b1,chassis_nr=2 -device e1000,bus=b1',
    0,
  ],
  [
    'virt-gicv3-el3-el2',
    'aarch64',
    '-M virt,secure=on,virtualization=on,gic-version=3 -cpu max -m 512M -device virtio-gpu-pci',
    0,
  ],
  [
    'virt-highmem-devices',
    'aarch64',
    '-M virt -cpu max -m 4G -device ivshmem-plain,memdev=s0 -object memory-backend-ram,id=s0,size=4M,share=on -device nvme,serial=m2',
    0,
  ],
  [
    'arm-virt-devices',
    'arm',
    '-M virt -m 512M -device virtio-net-pci -device pci-bridge,id=b1,chassis_nr=1 -device e1000,bus=b1',
    0,
  ],
  [
    'riscv64-virt-aia',
    'riscv64',
    '-M virt,aia=aplic-imsic,aclint=on -m 512M -device virtio-net-pci -device pci-bridge,id=b1,chassis_nr=1 -device e1000,bus=b1',
    0,
  ],
  [
    'ppc64-pseries-devices',
    'ppc64',
    '-M pseries -m 1G -device virtio-net-pci -device spapr-pci-host-bridge,index=1 -device e1000',
    0,
  ],
  ['ppc-mac99-devices', 'ppc', '-M mac99 -device VGA -device e1000', 0],
];

function machinesOf(bin) {
  const r = spawnSync(bin, ['-M', 'help'], { encoding: 'utf8' });
  if (r.status !== 0) return [];
  const out = [];
  for (const line of r.stdout.split('\n').slice(1)) {
    const m = /^(\S+)\s+(.*)$/.exec(line);
    if (!m) continue;
    if (/\(alias of /.test(m[2])) continue;
    out.push(m[1]);
  }
  return out;
}

// Wrappers that run a binary inside the chroot, so that `capture` can spawn it by name. A binary
// the chroot lacks is left out: by name it would be the host's QEMU, another version.
let env = process.env;
let binaries = BINARIES;
if (values.chroot) {
  const root = resolve(values.chroot);
  const wrap = join(stage, '..', `bin-${version}`);
  mkdirSync(wrap, { recursive: true });
  execFileSync('sh', ['-c', `mountpoint -q "${root}/tmp" || mount --bind /tmp "${root}/tmp"`]);
  binaries = BINARIES.filter((b) => existsSync(join(root, 'usr/bin', `qemu-system-${b}`)));
  const absent = BINARIES.filter((b) => !binaries.includes(b));
  if (absent.length) console.error(`not in ${root}, not captured: ${absent.join(' ')}`);
  for (const b of binaries) {
    const p = join(wrap, `qemu-system-${b}`);
    writeFileSync(p, `#!/bin/sh\nexec chroot "${root}" /usr/bin/qemu-system-${b} "$@"\n`);
    chmodSync(p, 0o755);
  }
  env = { ...process.env, PATH: `${wrap}:${process.env.PATH}` };
  process.env.PATH = env.PATH;
}

const jobs = [];
for (const b of binaries) {
  const bin = `qemu-system-${b}`;
  for (const m of machinesOf(bin)) {
    jobs.push({ dir: join(b, m), argv: [bin, '-nodefaults', '-M', m], runMs: 0 });
  }
}
for (const [name, b, args, runMs] of VARIANTS) {
  if (!binaries.includes(b)) continue;
  const bin = `qemu-system-${b}`;
  if (spawnSync(bin, ['--version']).status !== 0) continue;
  jobs.push({ dir: join('variants', name), argv: [bin, '-nodefaults', ...args.split(' ')], runMs });
}
const todo = only ? jobs.filter((j) => only.test(j.dir)) : jobs;
if (!only) rmSync(stage, { recursive: true, force: true });
mkdirSync(stage, { recursive: true });

const opts = { timeoutMs: 20_000, startTimeoutMs: 20_000, quitTimeoutMs: 5_000, env };
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Lets the firmware run for `runMs` (it programs the PCI BARs), stops the CPU and dumps. */
async function captureAfterRun(outDir, argv, runMs) {
  const qemu = await startQemu(argv, opts);
  try {
    await qemu.client.execute('cont');
    await sleep(runMs);
    await qemu.client.execute('stop');
    mkdirSync(outDir, { recursive: true });
    for (const d of CAPTURE_DUMPS) writeFileSync(join(outDir, d.file), await qemu.client.hmp(d.command));
    writeFileSync(join(outDir, 'cmdline.txt'), `${shellQuote(qemu.machineArgv)}\n`);
    writeFileSync(join(outDir, 'setup.txt'), `cont, then stop after ${runMs} ms of guest firmware\n`);
    await qemu.quit();
  } finally {
    await qemu.dispose();
  }
}

async function one(job) {
  const outDir = join(stage, job.dir);
  rmSync(outDir, { recursive: true, force: true });
  let argv = job.argv;
  for (let attempt = 0; ; attempt++) {
    try {
      if (job.runMs) await captureAfterRun(outDir, argv, job.runMs);
      else await capture(outDir, argv, opts);
      return null;
    } catch (e) {
      const msg = String(e?.message ?? e)
        .replace(/\s+/g, ' ')
        .trim();
      // QEMU 10 boards with built-in audio refuse to start without an audio backend.
      if (attempt === 0 && newQemu && /audio/i.test(msg)) {
        argv = [...argv, '-audio', 'none'];
        continue;
      }
      rmSync(outDir, { recursive: true, force: true });
      return msg.slice(0, 400);
    }
  }
}

const skipped = [];
let done = 0;
const width = Number(values.jobs);
const queue = [...todo];
await Promise.all(
  Array.from({ length: width }, async () => {
    for (let job = queue.shift(); job; job = queue.shift()) {
      const why = await one(job);
      done++;
      if (why) skipped.push([job.dir, why]);
      process.stderr.write(
        `[${done}/${todo.length}] ${job.dir}${why ? ` SKIPPED: ${why.slice(0, 120)}` : ''}\n`,
      );
    }
  }),
);

// With --only the stage keeps the other machines: keep their skipped lines too, and pack it all.
if (only && existsSync(join(stage, 'skipped.tsv'))) {
  const redone = new Set(todo.map((j) => j.dir));
  for (const line of readFileSync(join(stage, 'skipped.tsv'), 'utf8').split('\n')) {
    const [dir, why] = line.split('\t');
    if (dir && why !== undefined && !redone.has(dir)) skipped.push([dir, why]);
  }
}
skipped.sort((a, b) => (a[0] < b[0] ? -1 : 1));
writeFileSync(join(stage, 'skipped.tsv'), skipped.map((s) => `${s[0]}\t${s[1]}\n`).join(''));
const qemuVersion = spawnSync('qemu-system-x86_64', ['--version'], { encoding: 'utf8', env }).stdout.split(
  '\n',
)[0];
writeFileSync(join(stage, 'VERSION'), `${qemuVersion}\n`);
const tar = execFileSync(
  'tar',
  [
    '-c',
    '--sort=name',
    '--mtime=@0',
    '--owner=0',
    '--group=0',
    '--numeric-owner',
    '--format=ustar',
    '-C',
    stage,
    '.',
  ],
  { maxBuffer: 2 ** 31 },
);
mkdirSync(dirname(outFile), { recursive: true });
writeFileSync(
  outFile,
  brotliCompressSync(tar, {
    params: {
      [constants.BROTLI_PARAM_QUALITY]: 11,
      [constants.BROTLI_PARAM_LGWIN]: 24,
      [constants.BROTLI_PARAM_SIZE_HINT]: tar.length,
    },
  }),
);
const cases = readdirSync(stage, { recursive: true }).filter((p) => String(p).endsWith('mtree-D.txt')).length;
console.log(
  `${outFile}: ${cases} machines captured, ${skipped.length} skipped (${(tar.length / 1e6).toFixed(1)} MB of text)`,
);
