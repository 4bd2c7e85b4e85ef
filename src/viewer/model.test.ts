/**
 * @module viewer/model.test
 * The page's model of a machine: address-space groups, the flat map with its holes, the answer to
 * "what is at this address" with its tree path, which regions are hidden, and the diff list. Checked
 * on a real QEMU dump (expectations read off its `info mtree` text) and on the 16 GiB example
 * (expectations from how it is built).
 */

import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { sharedFixture } from '../../test/support/shared-fixtures.js';
import { MemorySystem } from '../core/system.js';
import { diffSpaces } from './changes.js';
import { build16GiBSplit, build16GiBSplitReprogrammed } from './examples.js';
import { answerAt, buildMachine, defaultSpace, type SpaceModel } from './model.js';
import { machineFromText, splitDumpText } from './sources.js';

const GiB = 1n << 30n;

function pc512(): ReturnType<typeof machineFromText> {
  const FIX = sharedFixture('pc-512m');
  return machineFromText({
    label: 'pc-512m',
    mtree: readFileSync(`${FIX}/mtree-D.txt`, 'utf8'),
    flat: readFileSync(`${FIX}/flat.txt`, 'utf8'),
  });
}

function nodeNamed(space: SpaceModel, name: string, start?: bigint) {
  const n = space.nodes.find((x) => x.region.name === name && (start === undefined || x.start === start));
  assert.ok(n, `node ${name}`);
  return n;
}

describe('model of the pc-512m dump', () => {
  const m = pc512();
  const mem = m.spaces[defaultSpace(m)]!;

  it('groups address spaces by root as info mtree does', () => {
    // The dump prints "address-space: cpu-memory-0" and "address-space: memory" over one tree.
    assert.deepEqual(mem.names, ['cpu-memory-0', 'memory']);
    assert.equal(mem.root.name, 'system');
    const io = m.spaces.find((s) => s.names.includes('I/O'))!;
    assert.equal(io.limit, 0x10000n);
  });

  it('the flat map covers the whole space, with the holes between the printed ranges', () => {
    const ps = mem.pieces;
    assert.equal(ps[0]!.start, 0n);
    assert.equal(ps[ps.length - 1]!.end, 1n << 64n);
    for (let i = 1; i < ps.length; i++) assert.equal(ps[i]!.start, ps[i - 1]!.end);
    // flat.txt: pc.ram ends at 0x1fffffff and ioapic starts at 0xfec00000; hpet ends at 0xfed003ff,
    // apic-msi starts at 0xfee00000; pc.bios ends at 0xffffffff and nothing follows.
    const holes = ps.filter((p) => p.kind === 'hole').map((p) => [p.start, p.end]);
    assert.deepEqual(holes, [
      [0x20000000n, 0xfec00000n],
      [0xfec01000n, 0xfed00000n],
      [0xfed00400n, 0xfee00000n],
      [0xfef00000n, 0xfffc0000n],
      [0x100000000n, 1n << 64n],
    ]);
    assert.equal(ps.filter((p) => p.kind !== 'hole').length, 8);
  });

  it('answers an address with the flat range, the offset and the path through the tree', () => {
    // flat.txt: "00000000000e0000-00000000000fffff (prio 0, rom): pc.bios @0000000000020000", reached
    // through the enabled pam-pci alias onto pci, where isa-bios aliases pc.bios from 0x20000.
    const a = answerAt(mem, 0xe1234n);
    assert.equal(a.region?.name, 'pc.bios');
    assert.equal(a.offset, 0x21234n);
    assert.deepEqual(
      a.chain.map((s) => s.region.name),
      ['system', 'pam-pci', 'pci', 'isa-bios', 'pc.bios'],
    );
    for (const s of a.chain) {
      assert.ok(s.node >= 0, `${s.region.name} has a tree node`);
      assert.equal(mem.nodes[s.node]!.region, s.region);
    }
    const hole = answerAt(mem, 0x30000000n);
    assert.equal(hole.region, null);
    assert.deepEqual(hole.chain, []);
  });

  it('marks regions that nothing reaches', () => {
    // smram-region is an alias onto pci at 0xa0000, where pci has nothing: flat.txt shows pc.ram there.
    assert.equal(nodeNamed(mem, 'smram-region').visibleBytes, 0n);
    // The enabled pam-pci alias at 0xc4000 serves 16 KiB of the merged pc.rom range.
    const pam = mem.nodes.find((n) => n.region.name === 'pam-pci' && n.start === 0xc4000n && n.live);
    assert.equal(pam?.visibleBytes, 0x4000n);
    // Disabled PAM aliases are not live.
    const off = mem.nodes.filter((n) => n.region.name === 'pam-ram');
    assert.ok(off.length > 0 && off.every((n) => !n.live));
  });
});

describe('model of the 16 GiB split', () => {
  const m = buildMachine(build16GiBSplit(), '16g');
  const mem = m.spaces[defaultSpace(m)]!;

  it('maps RAM below 2 GiB and from 4 GiB, leaving the PCI hole to the devices', () => {
    const above = answerAt(mem, 4n * GiB);
    assert.equal(above.region?.name, 'ram');
    // ram-above-4g starts 2 GiB into ram.
    assert.equal(above.offset, 2n * GiB);
    assert.deepEqual(
      above.chain.map((s) => s.region.name),
      ['system', 'ram-above-4g', 'ram'],
    );
    // The 16 GiB ram region is in no tree: it is an alias-target section.
    assert.equal(mem.nodes[mem.sectionRoots[0]!]!.region.name, 'ram');
    assert.equal(answerAt(mem, 0xe0000010n).region?.name, 'vga.vram');
  });

  it('pc.rom under RAM is hidden: priority 0 beats the pci container at -1', () => {
    assert.equal(answerAt(mem, 0xc0000n).region?.name, 'ram');
    assert.equal(nodeNamed(mem, 'pc.rom').visibleBytes, 0n);
    assert.equal(nodeNamed(mem, 'vga.vram').visibleBytes, 16n << 20n);
  });

  it('the diff with the reprogrammed machine lists a move, an addition and a removal', () => {
    const b = buildMachine(build16GiBSplitReprogrammed(), '16g-moved');
    const changes = diffSpaces(mem, b.spaces[defaultSpace(b)]!);
    const summary = changes.map((c) => [c.kind, c.name, (c.after ?? c.before)!.start]);
    assert.deepEqual(summary, [
      ['moved', 'vga.vram', 0xc0000000n],
      ['appeared', 'e1000.rom', 0xfeb40000n],
      ['vanished', 'virtio-pci-common', 0xfebd1000n],
    ]);
    const moved = changes[0]!;
    assert.equal(moved.before?.start, 0xe0000000n);
  });
});

describe('dump text', () => {
  it('splits a tree dump followed by a flat dump', () => {
    const text = 'address-space: memory\n  x\n\nFlatView #0\n AS "memory", root: system\n';
    const { mtree, flat } = splitDumpText(text);
    assert.match(mtree, /^address-space: memory/);
    assert.match(flat!, /^FlatView #0/);
    assert.equal(splitDumpText('address-space: a\n').flat, null);
  });

  it('refuses text without an address-space line', () => {
    assert.throws(() => machineFromText({ label: 'paste', mtree: 'hello\n' }), /info mtree -D/);
  });
});

describe('deep trees', () => {
  // The core renders at most 1024 levels (deeper means an alias loop), so that is the deepest a
  // machine gets; the page walks it with explicit stacks all the same.
  it('numbers a region nested 1000 containers deep in print order, each the child of the one before', () => {
    const ms = new MemorySystem();
    const sys = ms.container('system', 1n << 64n);
    const DEPTH = 1000;
    ms.transaction(() => {
      let parent = sys;
      for (let i = 0; i < DEPTH; i++) {
        const c = ms.container(`c${i}`, 0x10000);
        parent.addSubregion(i === 0 ? 0x100000 : 0, c);
        parent = c;
      }
      parent.addSubregion(0x10, ms.ram('leaf', 0x1000));
    });
    ms.addressSpace(sys, 'memory');
    const space = buildMachine(ms, 'deep').spaces[0]!;
    // system, c0 ... c999, leaf: one node each, numbered in print order, each the child of the one before.
    assert.equal(space.nodes.length, DEPTH + 2);
    const leaf = space.nodes[DEPTH + 1]!;
    assert.equal(leaf.region.name, 'leaf');
    assert.equal(leaf.depth, DEPTH + 1);
    assert.equal(leaf.parent, DEPTH);
    assert.equal(leaf.start, 0x100010n);
    assert.equal(answerAt(space, 0x100014n).region?.name, 'leaf');
  });
});
