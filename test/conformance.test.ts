/**
 * @module test/conformance
 * The QEMU 7.2 fixtures are the oracle: for every captured machine, rebuilding `info mtree -D`
 * (helped by `info mtree -f`) and printing it with memtree must give back, canonically, exactly
 * what QEMU printed: the flat views, the tree with `-D`, and the tree without `-D` (rebuilt from
 * `mtree.txt` alone). How many machines the tree text alone (no flat dump) already reproduces is
 * measured and reported, not asserted: the text does not say which `i/o` regions terminate.
 */

import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { compareMtreeText } from '../src/mtree/compare.js';
import { parseMtreeText } from '../src/mtree/parse.js';
import { formatFlat } from '../src/mtree/print.js';
import { rebuild } from '../src/mtree/rebuild.js';
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
}

/**
 * The target page size QEMU finalises for a machine, which shapes the dispatch map: 12 bits on x86
 * and RISC-V; on Arm only boards that set `minimum_page_bits = 12` (hw/arm/virt.c, sbsa-ref.c) get
 * 4 KiB pages, the rest keep `TARGET_PAGE_BITS_MIN` = 10 (target/arm/cpu-param.h).
 */
function pageBits(cmdline: string): number {
  if (!/qemu-system-(arm|aarch64)/.test(cmdline)) return 12;
  return /-M (virt|sbsa-ref)\b/.test(cmdline) ? 12 : 10;
}

for (const dir of dirs) {
  const file = (f: string) => join(dir, f);
  test(`${dir}: flat -d reproduces info mtree -f -d (without the run-time [MRU] marker)`, {
    skip: !existsSync(file('flat-d.txt')) || !existsSync(file('cmdline.txt')),
  }, async (t) => {
    const bits = pageBits(readFileSync(file('cmdline.txt'), 'utf8'));
    const r = await run([
      'flat',
      file('mtree-D.txt'),
      '--flat',
      file('flat.txt'),
      '-d',
      '--page-bits',
      String(bits),
    ]);
    assert.equal(r.code, 0, r.err);
    let qemu = readFileSync(file('flat-d.txt'), 'utf8').replace(/ \[MRU\]/g, '');
    let ours = r.out;
    if (qemu.includes(' [iommu]')) {
      // Whether an i/o region is an IOMMU is not in the dumps (spec R14.9): compare the rest.
      t.diagnostic('QEMU marks IOMMU sections, which a rebuilt dump cannot know; compared without [iommu]');
      qemu = qemu.replace(/ \[iommu\]/g, '');
      ours = ours.replace(/ \[iommu\]/g, '');
    }
    expectSame(ours, qemu, 'flat -d');
  });
}

test('measured: fixtures whose flat views the tree text alone reproduces', async (t) => {
  for (const wellKnown of [false, true]) {
    const matched: string[] = [];
    const missed: string[] = [];
    for (const dir of dirs) {
      const dump = parseMtreeText(readFileSync(join(dir, 'mtree-D.txt'), 'utf8'));
      const out = formatFlat(rebuild(dump, undefined, { wellKnown }).system);
      const same = compareMtreeText(out, readFileSync(join(dir, 'flat.txt'), 'utf8')).equal;
      (same ? matched : missed).push(dir.split('/').pop()!);
    }
    const how = wellKnown ? 'with the well-known QEMU regions' : 'structural rules only';
    const msg = `text-only flat conformance (${how}): ${matched.length}/${dirs.length} (missed: ${missed.join(', ') || 'none'})`;
    t.diagnostic(msg);
    console.log(msg);
  }
});
