/**
 * @module test/conformance
 * QEMU's own dumps are the oracle. For every captured machine (the fixtures, and the corpus of
 * every machine type of QEMU 7.2, 10.0 and 11.1 in fixtures/corpus), rebuilding `info mtree -D` with the
 * flat dump at hand and printing it with memtree must give back, canonically, exactly what QEMU
 * printed: `info mtree -f`, `info mtree -D`, `info mtree` (rebuilt from `mtree.txt`) and
 * `info mtree -f -d` (page size read from the dump): 100% per QEMU version, but for the misses
 * listed with their reason. From the tree text alone (no flat dump), a share of each version's
 * machines (99%, see TEXT_ONLY_MIN) must reproduce `info mtree -f`; the figures are printed.
 */

import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { compareMtreeText } from '../src/mtree/compare.js';
import { checkMode, MODES } from './support/conformance.js';
import { corpusArchives, loadCorpus } from './support/corpus.js';
import { runCli } from './support/run-cli.js';

const ROOTS = ['../shared/fixtures/qemu-7.2', 'fixtures/qemu-7.2'];

function fixtureDirs(): string[] {
  const out: string[] = [];
  for (const root of ROOTS) {
    if (!existsSync(root)) continue;
    for (const d of readdirSync(root, { withFileTypes: true })) {
      const dir = join(root, d.name);
      if (d.isDirectory() && existsSync(join(dir, 'mtree-D.txt')) && existsSync(join(dir, 'flat.txt'))) {
        out.push(dir);
      }
    }
  }
  return out.sort();
}

/** Runs `memtree ARGS` with files read from disk. */
const run = (args: string[]) => runCli(args);

function expectSame(actual: string, expected: string, what: string): void {
  const r = compareMtreeText(actual, expected);
  assert.ok(r.equal, `${what}: ${r.firstDifference}`);
}

const dirs = fixtureDirs();

test('there are fixtures to check', () => {
  assert.ok(dirs.length >= 11, `found only ${dirs.length} fixture directories`);
});

for (const dir of dirs) {
  const file = (f: string) => join(dir, f);
  const text = (f: string) => readFileSync(file(f), 'utf8');

  test(`${dir}: flat mtree-D.txt --flat flat.txt reproduces info mtree -f`, async () => {
    const r = await run(['flat', file('mtree-D.txt'), '--flat', file('flat.txt')]);
    assert.equal(r.code, 0, r.err);
    expectSame(r.out, text('flat.txt'), 'flat');
  });

  test(`${dir}: mtree mtree-D.txt -D reproduces info mtree -D`, async () => {
    const r = await run(['mtree', file('mtree-D.txt'), '-D']);
    assert.equal(r.code, 0, r.err);
    expectSame(r.out, text('mtree-D.txt'), 'mtree -D');
  });

  test(`${dir}: mtree mtree.txt reproduces info mtree`, {
    skip: !existsSync(file('mtree.txt')),
  }, async () => {
    const r = await run(['mtree', file('mtree.txt')]);
    assert.equal(r.code, 0, r.err);
    expectSame(r.out, text('mtree.txt'), 'mtree');
  });

  test(`${dir}: flat-d.txt is flat.txt plus Dispatch sections (the flat reader takes both)`, {
    skip: !existsSync(file('flat-d.txt')),
  }, async () => {
    const r = await run(['flat', file('mtree-D.txt'), '--flat', file('flat-d.txt')]);
    assert.equal(r.code, 0, r.err);
    expectSame(r.out, text('flat.txt'), 'flat (learned from flat-d.txt)');
  });

  test(`${dir}: flat -d --flat flat-d.txt reproduces info mtree -f -d, page size read from the dump`, {
    skip: !existsSync(file('flat-d.txt')),
  }, async () => {
    const r = await run(['flat', file('mtree-D.txt'), '--flat', file('flat-d.txt'), '-d']);
    assert.equal(r.code, 0, r.err);
    let qemu = text('flat-d.txt').replace(/ \[MRU\]/g, '');
    let ours = r.out;
    // Whether an i/o region is an IOMMU is not in the dumps: compare the rest.
    qemu = qemu.replace(/ \[iommu\]/g, '');
    ours = ours.replace(/ \[iommu\]/g, '');
    expectSame(ours, qemu, 'flat -d');
  });
}

const archives = corpusArchives();

test('the corpus of QEMU 7.2, 10.0 and 11.1 machines is there', () => {
  assert.deepEqual([...archives.keys()].sort(), ['10.0', '11.1', '7.2']);
});

/**
 * Text-only conformance must reach this share of each version's machines: measured 499/502 (7.2),
 * 543/543 (10.0) and 463/463 (11.1, whose name table comes from the 11.1 development tree, see
 * scripts/gen-mtree-names.mjs).
 */
const TEXT_ONLY_MIN: Record<string, number> = { '7.2': 0.99, '10.0': 0.99, '11.1': 0.99 };

/**
 * Machines whose rebuilt flat views are known to differ even with the flat dump at hand, and why. The test
 * fails when one of them starts to pass, so that the list stays true.
 */
const KNOWN_FLAT_MISSES: Record<string, Record<string, string>> = {};

for (const [version, path] of archives) {
  const { cases } = loadCorpus(version, path);

  test(`QEMU ${version} corpus: a few hundred machines`, () => {
    assert.ok(cases.length >= 400, `only ${cases.length} machines in ${path}`);
  });

  // Before 11, QEMU prints no type of its own that would tell its dumps from 7.2's.
  if (Number.parseFloat(version) >= 11)
    test(`QEMU ${version} corpus: every dump is printed by QEMU 11`, () => {
      // QEMU 11's memory_region_type names a region with no container `container`. The root of
      // the `I/O` address space is `io` (memory_map_init), which boards map ports into but never
      // put into a container: a dump where it reads otherwise was printed by another QEMU (a
      // binary the capture chroot lacks, run from the host instead).
      const io = /^address-space: I\/O\n {2}0{16}-0{12}ffff \(prio 0, container\): io$/m;
      const others = cases.filter((c) => !io.test(c.files.get('mtree-D.txt')!)).map((c) => c.name);
      assert.deepEqual(others, []);
    });

  for (const mode of MODES) {
    if (mode === 'text-only') continue;
    test(`QEMU ${version} corpus: ${mode} reproduced for every machine (flat dump at hand)`, () => {
      // The tree prints back whatever alias binds where: only the flat views can miss.
      const known = mode === 'flat' || mode === 'flat-d' ? (KNOWN_FLAT_MISSES[version] ?? {}) : {};
      const failed: string[] = [];
      const knownPassing: string[] = [];
      for (const c of cases) {
        const why = checkMode(c.files, mode);
        if (why && !(c.name in known)) failed.push(`${c.name}: ${why}`);
        if (!why && c.name in known) knownPassing.push(c.name);
      }
      assert.deepEqual(failed, [], `${failed.length}/${cases.length} differ`);
      assert.deepEqual(knownPassing, [], 'known misses that now pass: take them off KNOWN_FLAT_MISSES');
    });
  }

  const textOnlyMin = TEXT_ONLY_MIN[version] ?? 0.95;
  test(`QEMU ${version} corpus: info mtree -f from the tree text alone, at least ${textOnlyMin * 100}%`, (t) => {
    const missed: string[] = [];
    for (const c of cases) if (checkMode(c.files, 'text-only', version)) missed.push(c.name);
    const ok = cases.length - missed.length;
    const msg = `QEMU ${version}: text-only flat conformance ${ok}/${cases.length} (${((100 * ok) / cases.length).toFixed(1)}%); missed: ${missed.join(', ') || 'none'}`;
    t.diagnostic(msg);
    console.log(msg);
    assert.ok(ok >= textOnlyMin * cases.length, msg);
  });
}

test('the fixtures reproduce info mtree -f from the tree text alone', () => {
  const missed = dirs.filter((dir) => {
    const files = new Map([
      ['mtree-D.txt', readFileSync(join(dir, 'mtree-D.txt'), 'utf8')],
      ['flat.txt', readFileSync(join(dir, 'flat.txt'), 'utf8')],
    ]);
    return checkMode(files, 'text-only') !== null;
  });
  assert.deepEqual(missed, []);
});

test('QEMU -o owners and the KVM suffix (QEMU 7.2 under KVM) are read and printed back', async () => {
  const dir = 'fixtures/newer-text/pc-kvm-owners';
  const text = (f: string) => readFileSync(join(dir, f), 'utf8');
  const tree = await run(['mtree', join(dir, 'mtree-D-o.txt'), '-D']);
  assert.equal(tree.code, 0, tree.err);
  expectSame(tree.out, text('mtree-D-o.txt'), 'mtree -D -o');
  const flatO = await run(['flat', join(dir, 'mtree-D-o.txt'), '--flat', join(dir, 'flat-o.txt')]);
  assert.equal(flatO.code, 0, flatO.err);
  assert.equal(flatO.err, '');
  expectSame(flatO.out, text('flat-o.txt'), 'flat -o');
  const flat = await run(['flat', join(dir, 'mtree-D.txt'), '--flat', join(dir, 'flat.txt')]);
  assert.equal(flat.code, 0, flat.err);
  assert.equal(flat.err, '');
  expectSame(flat.out, text('flat.txt'), 'flat with KVM marks');
});

test('the QEMU 11 `container` type: printed with --qemu 11.1 for regions in no container, and read back', async () => {
  // QEMU 11's memory_region_type prints `container` for a region whose `container` pointer is
  // NULL (after the RAM kinds), whatever it does with accesses: the roots of address spaces,
  // `io` included (an I/O region: unassigned_io_ops), and aliases of such a root. A pure
  // container that is mapped somewhere (`pci` under `system`) stays `i/o`.
  for (const dir of dirs) {
    const t = await run([
      'mtree',
      join(dir, 'mtree-D.txt'),
      '-D',
      '--flat',
      join(dir, 'flat.txt'),
      '--qemu',
      '11.1',
    ]);
    assert.equal(t.code, 0, t.err);
    const root = /^ {2}\S+ \(prio 0, ([a-z/]+)\): system$/m.exec(t.out);
    if (root) assert.equal(root[1], 'container', `${dir}: system`);
    assert.match(t.out, /\(prio -?\d+, container\): /);
    if (/\): io$/m.test(t.out)) assert.match(t.out, /^ {2}0{16}-0{12}ffff \(prio 0, container\): io$/m);
    if (/^ {4}\S+ \(prio -?\d+, [a-z/]+\): pci$/m.test(t.out)) {
      assert.match(t.out, /^ {4}\S+ \(prio -?\d+, i\/o\): pci$/m);
    }
    const back = await runCli(['flat', 'newer.txt', '--qemu', '7.2'], { 'newer.txt': t.out });
    assert.equal(back.code, 0, back.err);
    // The KVM marks come from the accelerator, not from the tree: not expected from the text alone.
    const qemu = readFileSync(join(dir, 'flat.txt'), 'utf8').replace(/( KVM)+$/gm, '');
    expectSame(back.out, qemu, `${dir}: flat from the newer text`);
  }
});
