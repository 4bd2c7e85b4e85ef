/**
 * @module test/support/debian-riscv64
 * Fetches riscv64 packages of Debian 13 (trixie) with a private apt configuration (its own sources
 * list, package lists, cache and an empty dpkg status, all in one cache folder), so that nothing of
 * the machine's own apt setup changes; `apt-get download` then `dpkg-deb -x` give the files.
 */

import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** The cache folder (kept between runs, so each package is downloaded once). */
export const DEBIAN_RISCV64_CACHE = join(tmpdir(), 'memtree-debian13-riscv64');

function aptOptions(root: string): string[] {
  return [
    '-q',
    '-o',
    `Dir::Etc=${root}/etc`,
    '-o',
    `Dir::Etc::sourcelist=${root}/etc/sources.list`,
    '-o',
    'Dir::Etc::sourceparts=-',
    '-o',
    `Dir::State::Lists=${root}/lists`,
    '-o',
    `Dir::State::status=${root}/status`,
    '-o',
    `Dir::Cache=${root}/cache`,
    '-o',
    'APT::Architecture=riscv64',
    '-o',
    'APT::Architectures=riscv64',
    '-o',
    'APT::Sandbox::User=root',
  ];
}

/** Sets up the private apt tree and reads trixie's riscv64 package list (once per cache). */
function aptReady(root: string): string[] {
  const opts = aptOptions(root);
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
    execFileSync('apt-get', [...opts, 'update'], { stdio: 'pipe' });
    writeFileSync(join(root, 'lists', 'ready'), '');
  }
  return opts;
}

/** The name of the package `pkg` depends on first (e.g. the versioned image of linux-image-riscv64). */
export function debianDependency(pkg: string, root = DEBIAN_RISCV64_CACHE): string {
  const opts = aptReady(root);
  const out = execFileSync('apt-cache', [...opts, 'depends', pkg], { encoding: 'utf8' });
  const m = /Depends: (\S+)/.exec(out);
  if (!m) throw new Error(`apt-cache depends ${pkg} names no dependency:\n${out}`);
  return m[1]!;
}

/** Downloads `pkg` (once) and unpacks it; returns the folder holding its files. */
export function debianPackage(pkg: string, root = DEBIAN_RISCV64_CACHE): string {
  const opts = aptReady(root);
  const debs = join(root, 'debs');
  const dest = join(root, 'unpacked', pkg);
  if (existsSync(join(dest, '.done'))) return dest;
  const have = () => readdirSync(debs).find((f) => f.startsWith(`${pkg}_`) && f.endsWith('.deb'));
  if (!have()) execFileSync('apt-get', [...opts, 'download', pkg], { cwd: debs, stdio: 'pipe' });
  const deb = have();
  if (!deb) throw new Error(`apt-get download ${pkg} left no .deb in ${debs}`);
  mkdirSync(dest, { recursive: true });
  execFileSync('dpkg-deb', ['-x', join(debs, deb), dest]);
  writeFileSync(join(dest, '.done'), '');
  return dest;
}
