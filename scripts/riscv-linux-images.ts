/**
 * Fetches Debian 13's riscv64 Linux kernel (linux-image-riscv64) and busybox-static with the
 * private apt configuration the Linux test uses (nothing of the machine's apt setup changes), and
 * writes into OUTDIR:
 *   Image         the kernel, as Debian installs it in /boot (a raw RISC-V Image)
 *   initrd.cpio   an initramfs: busybox, and an /init that mounts /proc, prints /proc/iomem and
 *                 starts a shell on the console (`poweroff -f` leaves the machine)
 *
 * Usage: node --import tsx scripts/riscv-linux-images.ts OUTDIR   (needs apt-get and dpkg-deb)
 */

import { copyFileSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { newcArchive } from '../test/support/cpio.js';
import { debianDependency, debianPackage } from '../test/support/debian-riscv64.js';

const out = process.argv[2];
if (!out) {
  process.stderr.write('usage: node --import tsx scripts/riscv-linux-images.ts OUTDIR\n');
  process.exit(2);
}
const INIT = `#!/bin/busybox sh
/bin/busybox --install -s /bin
mount -t proc proc /proc
cat /proc/iomem
echo 'memtree: busybox shell; poweroff -f leaves'
exec setsid cttyhack sh
`;
const boot = join(debianPackage(debianDependency('linux-image-riscv64')), 'boot');
const image = readdirSync(boot).find((f) => /^vmlinu[xz]-/.test(f));
if (!image) throw new Error(`no kernel image in ${boot}`);
const busybox = join(debianPackage('busybox-static'), 'usr/bin/busybox');
mkdirSync(out, { recursive: true });
copyFileSync(join(boot, image), join(out, 'Image'));
writeFileSync(
  join(out, 'initrd.cpio'),
  newcArchive([
    { path: 'bin', dir: true },
    { path: 'proc', dir: true },
    { path: 'dev', dir: true },
    { path: 'sys', dir: true },
    { path: 'tmp', dir: true },
    { path: 'bin/busybox', mode: 0o755, data: new Uint8Array(readFileSync(busybox)) },
    { path: 'init', mode: 0o755, data: new TextEncoder().encode(INIT) },
  ]),
);
process.stdout.write(`${join(out, 'Image')}\n${join(out, 'initrd.cpio')}\n`);
