#!/usr/bin/env node
// Fetches Debian 13's riscv64 Linux kernel (linux-image-riscv64) and busybox-static with a private
// apt configuration (nothing of the machine's apt setup changes), and writes into OUTDIR:
//   Image         the kernel, as Debian installs it in /boot (a raw RISC-V Image)
//   initrd.cpio   an initramfs: busybox, and an /init that mounts /proc, prints /proc/iomem and
//                 starts a shell on the console (`poweroff -f` leaves the machine)
// Usage: node scripts/riscv-linux-images.mjs OUTDIR    (needs apt-get and dpkg-deb: Debian)

import { execFileSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const out = process.argv[2];
if (!out) {
  process.stderr.write('usage: node scripts/riscv-linux-images.mjs OUTDIR\n');
  process.exit(2);
}
const root = join(tmpdir(), 'memtree-debian13-riscv64');
const dirs = {
  'Dir::Etc': `${root}/etc`,
  'Dir::Etc::sourcelist': `${root}/etc/sources.list`,
  'Dir::Etc::sourceparts': '-',
  'Dir::State::Lists': `${root}/lists`,
  'Dir::State::status': `${root}/status`,
  'Dir::Cache': `${root}/cache`,
  'APT::Architecture': 'riscv64',
  'APT::Architectures': 'riscv64',
  'APT::Sandbox::User': 'root',
};
const opts = ['-q', ...Object.entries(dirs).flatMap(([k, v]) => ['-o', `${k}=${v}`])];
if (!existsSync(join(root, 'lists', 'ready'))) {
  for (const d of [
    'etc/apt.conf.d',
    'etc/preferences.d',
    'lists/partial',
    'cache/archives/partial',
    'debs',
  ]) {
    mkdirSync(join(root, d), { recursive: true });
  }
  writeFileSync(join(root, 'status'), '');
  writeFileSync(
    join(root, 'etc', 'sources.list'),
    'deb [arch=riscv64 signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian trixie main\n',
  );
  execFileSync('apt-get', [...opts, 'update'], { stdio: 'inherit' });
  writeFileSync(join(root, 'lists', 'ready'), '');
}
function unpack(pkg) {
  const debs = join(root, 'debs');
  mkdirSync(debs, { recursive: true });
  const find = () => readdirSync(debs).find((f) => f.startsWith(`${pkg}_`) && f.endsWith('.deb'));
  if (!find()) execFileSync('apt-get', [...opts, 'download', pkg], { cwd: debs, stdio: 'inherit' });
  const dest = join(root, 'unpacked', pkg);
  mkdirSync(dest, { recursive: true });
  execFileSync('dpkg-deb', ['-x', join(debs, find()), dest]);
  return dest;
}
const deps = execFileSync('apt-cache', [...opts, 'depends', 'linux-image-riscv64'], { encoding: 'utf8' });
const kpkg = /Depends: (\S+)/.exec(deps)?.[1];
if (!kpkg) throw new Error(`linux-image-riscv64 names no kernel package:\n${deps}`);
const kdir = join(unpack(kpkg), 'boot');
const bdir = unpack('busybox-static');
mkdirSync(out, { recursive: true });
copyFileSync(
  join(
    kdir,
    readdirSync(kdir).find((f) => /^vmlinu[xz]-/.test(f)),
  ),
  join(out, 'Image'),
);

// newc cpio: ASCII-hex headers, names and data padded to 4 bytes, TRAILER!!! at the end.
const init = `#!/bin/busybox sh
/bin/busybox --install -s /bin
mount -t proc proc /proc
cat /proc/iomem
echo 'memtree: busybox shell; poweroff -f leaves'
exec setsid cttyhack sh
`;
const parts = [];
let size = 0;
let ino = 1;
const push = (b) => {
  parts.push(b);
  size += b.length;
  const pad = (4 - (size % 4)) % 4;
  if (pad) {
    parts.push(Buffer.alloc(pad));
    size += pad;
  }
};
const member = (name, mode, data) => {
  const f = [ino++, mode, 0, 0, mode & 0o040000 ? 2 : 1, 0, data.length, 0, 0, 0, 0, name.length + 1, 0];
  push(Buffer.from(`070701${f.map((n) => n.toString(16).padStart(8, '0')).join('')}${name}\0`, 'latin1'));
  if (data.length) push(data);
};
for (const d of ['bin', 'proc', 'dev', 'sys', 'tmp']) member(d, 0o040755, Buffer.alloc(0));
member('bin/busybox', 0o100755, readFileSync(join(bdir, 'usr/bin/busybox')));
member('init', 0o100755, Buffer.from(init));
member('TRAILER!!!', 0, Buffer.alloc(0));
writeFileSync(join(out, 'initrd.cpio'), Buffer.concat(parts));
process.stdout.write(`${join(out, 'Image')}\n${join(out, 'initrd.cpio')}\n`);
