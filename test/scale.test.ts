/**
 * @module test/scale
 * Large dumps (issue #11: every CLI command on a dump of N lines is O(N log N)), checked without
 * timing anything:
 *
 * - Work counted, not time: while a command's library steps run, every array operation whose cost
 *   grows with the array (scans such as indexOf/find/some, copies such as slice/map, iteration,
 *   and the elements a splice moves) adds its length to a counter. Quadrupling N must multiply that
 *   work by about 4 (N log N: about 4.6), never by 16 (the quadratic sibling insert and RAM
 *   placement this replaced did that). Deterministic: the count depends only on the code path.
 * - What QEMU prints for such a dump, derived by hand from QEMU's rules: `info mtree` lists
 *   subregions by address (`mtree_print_mr` sorts them so), so a dump of siblings at increasing
 *   addresses prints back unchanged; `info mtree -f` shows one range per sibling.
 */

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { hex16, siblingsDump, spacesDump } from '../bench/dumps.mjs';
import type { MemoryRegion } from '../src/core/region.js';
import { MemorySystem } from '../src/core/system.js';
import { diffFlatDumps } from '../src/mtree/diff.js';
import { explainAddress } from '../src/mtree/lookup.js';
import { parseFlatText, parseMtreeText } from '../src/mtree/parse.js';
import { formatFlat, formatMtree } from '../src/mtree/print.js';
import { rebuild } from '../src/mtree/rebuild.js';
import { buildMachine, type RegionNode } from '../src/viewer/model.js';
import { arrayWork } from './support/array-work.js';

/** `n` aliases, side by side, each showing its own page of one RAM region. */
function aliasesDump(n: number): string {
  const lines = ['address-space: memory', '  0000000000000000-ffffffffffffffff (prio 0, i/o): system'];
  for (let i = 0; i < n; i++) {
    const s = hex16(i * 0x1000);
    const e = hex16(i * 0x1000 + 0xfff);
    lines.push(`    ${s}-${e} (prio 0, ram): alias a${i} @big ${s}-${e}`);
  }
  lines.push('', 'memory-region: big', `  0000000000000000-${hex16(n * 0x1000 - 1)} (prio 0, ram): big`);
  return `${lines.join('\n')}\n\n`;
}

/**
 * A catch-all window and `n` devices inside it at the same priority, as boards map them (Aspeed's
 * `aspeed.io`): without a flat dump the rebuild must decide, for each device, that it wins over the
 * window (docs/mtree-rebuild.md), which orders the whole sibling list.
 */
function windowDump(n: number): string {
  const lines = [
    'address-space: memory',
    '  0000000000000000-ffffffffffffffff (prio 0, i/o): system',
    `    0000000000000000-${hex16(n * 0x1000 + 0xfff)} (prio 0, i/o): window`,
  ];
  for (let i = 1; i <= n; i++) {
    lines.push(`    ${hex16(i * 0x1000)}-${hex16(i * 0x1000 + 0xfff)} (prio 0, i/o): d${i}`);
  }
  return `${lines.join('\n')}\n\n`;
}

/** What the CLI's flat, mtree, lookup and diff commands do with one tree dump, in library calls. */
function everyCommand(text: string): void {
  const dump = parseMtreeText(text);
  const r = rebuild(dump);
  const flat = formatFlat(r.system);
  formatMtree(r.system, { disabled: true });
  for (const as of r.spaces.slice(0, 3)) explainAddress(as, 0x10n);
  const f = parseFlatText(flat);
  diffFlatDumps(f, f);
}

describe('large dumps: work grows as N log N (counted, not timed)', () => {
  const cases: Array<[string, (n: number) => string]> = [
    ['i/o siblings', (n) => siblingsDump(n, 'i/o')],
    ['RAM siblings (each a RAM block placed in ram_addr space)', (n) => siblingsDump(n, 'ram')],
    ['alias siblings of one RAM region', aliasesDump],
    ['address spaces', (n) => spacesDump(n / 4)],
    ['devices inside a catch-all window of the same priority', windowDump],
  ];
  for (const [what, make] of cases) {
    it(`${what}: 4x the lines costs about 4x the array work`, () => {
      const small = make(2_000);
      const large = make(8_000);
      everyCommand(small); // the first run loads the name tables; count steady-state work only
      const w1 = arrayWork(() => everyCommand(small));
      const w4 = arrayWork(() => everyCommand(large));
      const growth = w4 / w1;
      // 4 for linear work, 4 * log(8000)/log(2000) = 4.7 for N log N; quadratic work gives 16.
      assert.ok(growth < 6, `array work grew ${growth.toFixed(2)}x for 4x the lines (${w1} -> ${w4})`);
    });
  }
});

describe('viewer model of large dumps: work grows as N log N (counted, not timed)', () => {
  // buildMachine attributes every region's visible bytes; it did so with one lookup walk per probe,
  // each trying the container's siblings in turn, which grew 16x for 4x the siblings.
  const page = 0x1000n;
  // Bytes of the flat view each region serves, counted by hand (undefined: a container, not counted).
  // Siblings: one page each. Aliases: one page each, and through them every page of `big` (QEMU
  // merges the contiguous pieces of `big` into one flat range). Window: the devices win over it
  // (docs/mtree-rebuild.md), so it serves only its first page, below the first device.
  const cases: Array<[string, (n: number) => string, (name: string, n: number) => bigint | undefined]> = [
    ['i/o siblings', (n) => siblingsDump(n, 'i/o'), (name) => (name === 'system' ? undefined : page)],
    ['RAM siblings', (n) => siblingsDump(n, 'ram'), (name) => (name === 'system' ? undefined : page)],
    [
      'alias siblings of one RAM region',
      aliasesDump,
      (name, n) => (name === 'system' ? undefined : name === 'big' ? BigInt(n) * page : page),
    ],
    [
      'devices inside a catch-all window of the same priority',
      windowDump,
      (name) => (name === 'system' ? undefined : page),
    ],
  ];
  for (const [what, make, want] of cases) {
    it(`${what}: 4x the lines costs about 4x the array work`, () => {
      const small = rebuild(parseMtreeText(make(2_000))).system;
      const large = rebuild(parseMtreeText(make(8_000))).system;
      buildMachine(small, 'warm-up');
      const w1 = arrayWork(() => buildMachine(small, 'small'));
      let nodes: readonly RegionNode[] = [];
      const w4 = arrayWork(() => {
        nodes = buildMachine(large, 'large').spaces[0]!.nodes;
      });
      for (const n of nodes) {
        const bytes = want(n.region.name!, 8_000);
        if (bytes !== undefined && n.visibleBytes !== bytes)
          assert.fail(`${n.region.name} serves ${n.visibleBytes} bytes, want ${bytes}`);
      }
      const growth = w4 / w1;
      assert.ok(growth < 6, `array work grew ${growth.toFixed(2)}x for 4x the lines (${w1} -> ${w4})`);
    });
  }
});

describe('removing siblings one by one: work grows linearly (counted, not timed)', () => {
  /**
   * `n` siblings of mixed priorities in one container, then, in one transaction, two in three of
   * them removed in the order they were added (the order that makes a search from the newest end
   * longest), one of them added back, and one survivor moved.
   */
  function run(n: number): { work: number; got: readonly MemoryRegion[]; want: MemoryRegion[] } {
    const ms = new MemorySystem();
    const c = ms.container('c', 2n ** 64n - 1n);
    const added: Array<{ mr: MemoryRegion; prio: number; k: number }> = [];
    ms.transaction(() => {
      for (let k = 0; k < n; k++) {
        const prio = ((k * 7919) % 5) - 2;
        const mr = ms.io(`d${k}`, 0x1000, null);
        c.addSubregionOverlap(k * 0x1000, mr, prio);
        added.push({ mr, prio, k });
      }
    });
    ms.addressSpace(c, 'as');
    const gone = added.filter((a) => a.k % 3 !== 0);
    const back = gone[gone.length >> 1]!;
    const moved = added[3]!;
    const work = arrayWork(() =>
      ms.transaction(() => {
        for (const a of gone) c.delSubregion(a.mr);
        c.addSubregionOverlap(back.k * 0x1000, back.mr, back.prio);
        moved.mr.setAddress((n + 1) * 0x1000);
      }),
    );
    // memory_region_del_subregion unlinks without reordering the others; an add (and a move,
    // which QEMU does as a delete and an add) goes before the first sibling of lower or equal
    // priority: priority descending, the latest add first among equals.
    back.k = n;
    moved.k = n + 1;
    const left = added.filter((a) => a.k % 3 === 0 || a === back);
    const want = left.sort((a, b) => b.prio - a.prio || b.k - a.k).map((a) => a.mr);
    return { work, got: c.subregions, want };
  }

  it('2,000 and 8,000 siblings: 4x the siblings costs about 4x the array work, in QEMU order', () => {
    run(2_000);
    const small = run(2_000);
    const large = run(8_000);
    for (const { got, want } of [small, large]) {
      assert.equal(got.length, want.length);
      for (let i = 0; i < want.length; i++)
        if (got[i] !== want[i]) assert.fail(`list position ${i}: ${got[i]!.name}, want ${want[i]!.name}`);
    }
    const growth = large.work / small.work;
    assert.ok(
      growth < 6,
      `array work grew ${growth.toFixed(2)}x for 4x the siblings (${small.work} -> ${large.work})`,
    );
  });
});

describe('100,000 sibling regions', () => {
  const n = 100_000;
  const text = siblingsDump(n, 'i/o');
  const r = rebuild(parseMtreeText(text));

  it('print back unchanged as info mtree -D (QEMU prints subregions by address)', () => {
    assert.ok(formatMtree(r.system, { disabled: true }) === text, 'the printed tree differs from the dump');
  });

  it('render to one flat range per sibling, in address order', () => {
    const lines = ['FlatView #0', ' AS "memory", root: system', ' Root memory region: system'];
    for (let i = 0; i < n; i++) {
      lines.push(`  ${hex16(i * 0x1000)}-${hex16(i * 0x1000 + 0xfff)} (prio 0, i/o): dev${i}`);
    }
    const want = `${lines.join('\n')}\n\n`;
    assert.ok(formatFlat(r.system) === want, 'the flat view differs from the hand-built one');
  });

  it('keep QEMU list order while added one by one with mixed priorities', () => {
    // memory_region_update_container_subregions: a new region goes before the first sibling of
    // lower or equal priority, so the list is priority descending, newest first among equals.
    const ms = new MemorySystem();
    const c = ms.container('c', 2n ** 64n - 1n);
    const added: Array<{ mr: MemoryRegion; prio: number; k: number }> = [];
    ms.transaction(() => {
      for (let k = 0; k < n; k++) {
        const prio = ((k * 7919) % 5) - 2; // -2..2, interleaved
        const mr = ms.io(`d${k}`, 0x1000, null);
        c.addSubregionOverlap(k * 0x1000, mr, prio);
        added.push({ mr, prio, k });
      }
      // Re-adding moves a region in front of its equal-priority siblings.
      c.delSubregion(added[10]!.mr);
      c.addSubregionOverlap(10 * 0x1000, added[10]!.mr, added[10]!.prio);
      added[10]!.k = n;
    });
    const want = [...added].sort((a, b) => b.prio - a.prio || b.k - a.k).map((a) => a.mr);
    const got = c.subregions;
    assert.equal(got.length, n);
    for (let i = 0; i < n; i++)
      if (got[i] !== want[i]) assert.fail(`list position ${i}: ${got[i]!.name}, want ${want[i]!.name}`);
  });
});
