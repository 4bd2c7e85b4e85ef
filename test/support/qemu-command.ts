/**
 * @module test/support/qemu-command
 * The command line that runs one QEMU version's `qemu-system-BIN`: QEMU 7.2 from this machine's
 * Debian 12 packages, QEMU 10.0 from the Debian 13 chroot made by scripts/make-debian-chroot.sh
 * (default /var/tmp/memtree-trixie, or $MEMTREE_TRIXIE_CHROOT). A test without the QEMU it needs
 * skips with the reason; under CI it fails.
 */

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { TestContext } from 'node:test';

/** The Debian 13 chroot holding QEMU 10.0. */
export const TRIXIE_CHROOT = process.env.MEMTREE_TRIXIE_CHROOT ?? '/var/tmp/memtree-trixie';

/** The QEMU versions the live tests run against. */
export type QemuVersion = '7.2' | '10.0';

/**
 * The argv prefix that runs `qemu-system-BIN` of `version`, or null after skipping `t` (failing
 * under CI). With `chroot` as the program, pass `-S` and `-display none` yourself: the capture code
 * cannot recognise QEMU to add them.
 */
export function qemuCommand(t: TestContext, version: QemuVersion, bin: string): string[] | null {
  const program = `qemu-system-${bin}`;
  let argv: string[] | null = null;
  let why = '';
  if (version === '7.2') {
    if (spawnSync(program, ['--version'], { stdio: 'ignore' }).status === 0) argv = [program];
    else why = `${program} is not on PATH (Debian 12 qemu-system-* packages)`;
  } else if (!existsSync(join(TRIXIE_CHROOT, 'usr/bin', program))) {
    why = `no QEMU 10.0 chroot at ${TRIXIE_CHROOT} (scripts/make-debian-chroot.sh)`;
  } else if (!existsSync(join(TRIXIE_CHROOT, 'tmp/.memtree-host-tmp'))) {
    // The private QMP socket lives in the host's /tmp, which the chroot must see.
    why = `${TRIXIE_CHROOT}/tmp is not the host's /tmp (scripts/make-debian-chroot.sh bind-mounts it)`;
  } else {
    argv = ['chroot', TRIXIE_CHROOT, `/usr/bin/${program}`];
  }
  if (argv) return argv;
  if (process.env.CI) assert.fail(`${why}; CI must run the live QEMU ${version} tests`);
  t.skip(why);
  return null;
}
