/**
 * @module test/support/linux-images
 * Debian 13's riscv64 kernel and an initramfs around its busybox-static with a given /init, for the
 * tests that boot Linux on the virt machine. Both come from the Debian archive through the private
 * apt setup of debian-riscv64.ts; without apt-get or the archive the test is skipped, and fails
 * under CI=true.
 */

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import { newcArchive } from './cpio.js';
import { debianDependency, debianPackage } from './debian-riscv64.js';

/**
 * An /init that keeps its memory busy and checks it: it appends its counter to a file in its RAM
 * file system, compares the file's MD5 with that of the numbers 1..count generated afresh, and
 * prints `count N MD5` (or `BAD ...` and powers off when they differ), forever. The migration
 * tests and scripts/migrate-vs-qemu.ts run it.
 */
export const COUNTING_INIT = `#!/bin/busybox sh
/bin/busybox --install -s /bin
mkdir -p /tmp
: > /tmp/log
i=0
while :; do
  i=$((i+1))
  echo $i >> /tmp/log
  a=$(md5sum < /tmp/log)
  b=$(seq 1 $i | md5sum)
  if [ "$a" != "$b" ]; then echo "BAD $i $a $b"; poweroff -f; fi
  echo "count $i \${a%% *}"
done
`;

/** A kernel, an initramfs and the temporary folder holding the latter (remove it when done). */
export interface LinuxImages {
  kernel: string;
  initrd: string;
  dir: string;
}

/** Fetches the kernel and busybox (once) and writes an initramfs with `init`; throws on failure. */
export function linuxImages(init: string): LinuxImages {
  const kdir = debianPackage(debianDependency('linux-image-riscv64'));
  const bdir = debianPackage('busybox-static');
  const boot = join(kdir, 'boot');
  const image = readdirSync(boot).find((f) => /^vmlinu[xz]-/.test(f));
  if (!image) throw new Error(`no kernel image in ${boot}`);
  const dir = mkdtempSync(join(tmpdir(), 'memtree-linux-'));
  const initrd = join(dir, 'initrd.cpio');
  writeFileSync(
    initrd,
    newcArchive([
      { path: 'bin', dir: true },
      { path: 'proc', dir: true },
      { path: 'dev', dir: true },
      { path: 'bin/busybox', mode: 0o755, data: new Uint8Array(readFileSync(join(bdir, 'usr/bin/busybox'))) },
      { path: 'init', mode: 0o755, data: new TextEncoder().encode(init) },
    ]),
  );
  return { kernel: join(boot, image), initrd, dir };
}

/** The kernel and an initramfs whose /init is `init` (a busybox sh script), or null when skipped. */
export function riscvLinuxImages(t: TestContext, init: string): LinuxImages | null {
  if (spawnSync('apt-get', ['--version'], { stdio: 'ignore' }).status !== 0) {
    if (process.env.CI) assert.fail('apt-get is needed to fetch Debian 13 riscv64 packages');
    t.skip('no apt-get');
    return null;
  }
  try {
    return linuxImages(init);
  } catch (e) {
    if (process.env.CI) throw e;
    t.skip(`cannot fetch Debian 13 riscv64 packages: ${(e as Error).message.split('\n')[0]}`);
    return null;
  }
}
