import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { FlatView } from './flatview.js';
import { MemorySystem } from './system.js';

/** [start, end-inclusive, region name, offset in region] per range, as hex strings. */
function ranges(view: FlatView): string[] {
  return view.ranges.map(
    (r) =>
      `${r.start.toString(16)}-${(r.start + r.size - 1n).toString(16)} ${r.mr.name} @${r.offsetInRegion.toString(16)}${r.readonly ? ' ro' : ''}${r.nonvolatile ? ' nv' : ''}`,
  );
}

/** A synthetic tree: RAM, a device, and a window of higher priority over both. */
function spec63() {
  const ms = new MemorySystem();
  const sys = ms.container('sys', 0x10000);
  const ram0 = ms.ram('ram0', 0x8000);
  const bg = ms.io('bg', 0x10000, { read: () => 0 });
  const win = ms.container('win', 0x4000);
  const dev = ms.io('dev', 0x800, { read: () => 0 });
  const mirror = ms.alias('mirror', ram0, 0x6000, 0x2000);
  sys.addSubregion(0, ram0);
  sys.addSubregionOverlap(0, bg, -1);
  sys.addSubregionOverlap(0x4000, win, 1);
  win.addSubregion(0x1000, dev);
  sys.addSubregion(0xc000, mirror);
  const as = ms.addressSpace(sys, 'demo');
  return { ms, sys, ram0, bg, win, dev, mirror, as };
}

describe('FlatView rendering', () => {
  it('renders a window over RAM and a device, worked by hand', () => {
    const { as } = spec63();
    // By hand: win (prio 1) paints dev only and leaves holes through which ram0 shows;
    // mirror maps ram0 offset 0x6000 at 0xc000; bg (prio -1) fills what remains.
    assert.deepEqual(ranges(as.currentView), [
      '0-4fff ram0 @0',
      '5000-57ff dev @0',
      '5800-7fff ram0 @5800',
      '8000-bfff bg @8000',
      'c000-dfff ram0 @6000',
      'e000-ffff bg @e000',
    ]);
  });

  it('lets equal-priority siblings win newest first', () => {
    const ms = new MemorySystem();
    const io = ms.io('io', 0x1000, { read: () => 0xff });
    const first = ms.io('isa-debugcon', 1, { read: () => 1 });
    const second = ms.io('isa-debugcon', 1, { read: () => 2 });
    io.addSubregion(0x402, first);
    io.addSubregion(0x402, second);
    const as = ms.addressSpace(io, 'I/O');
    assert.equal(as.currentView.rangeAt(0x402n)?.mr, second);
    assert.equal(as.ldub(0x402), 2);
  });

  it("ignores the alias target's own address and composes alias chains", () => {
    const ms = new MemorySystem();
    const sys = ms.container('sys', 0x100000);
    const holder = ms.container('holder', 0x100000);
    const ram = ms.ram('ram', 0x10000);
    holder.addSubregion(0x8000, ram); // the target also lives elsewhere, at 0x8000
    const a1 = ms.alias('a1', ram, 0x1000, 0x4000);
    const a2 = ms.alias('a2', a1, 0x800, 0x1000);
    sys.addSubregion(0x20000, a2);
    const as = ms.addressSpace(sys);
    // a2 shows a1 from 0x800, which is ram from 0x1000 + 0x800.
    assert.deepEqual(ranges(as.currentView), ['20000-20fff ram @1800']);
  });

  it('inherits readonly and nonvolatile down the path but names the terminal region', () => {
    const ms = new MemorySystem();
    const sys = ms.container('sys', 0x10000);
    const ram = ms.ram('ram', 0x4000);
    const ro = ms.alias('pam-rom', ram, 0x1000, 0x1000);
    ro.setReadonly(true);
    const nvc = ms.container('nvc', 0x1000);
    nvc.setNonvolatile(true);
    nvc.addSubregion(0, ms.alias('nv-alias', ram, 0x3000, 0x1000));
    sys.addSubregion(0, ram);
    sys.addSubregionOverlap(0x1000, ro, 1);
    sys.addSubregionOverlap(0x8000, nvc, 0);
    const as = ms.addressSpace(sys);
    assert.deepEqual(ranges(as.currentView), [
      '0-fff ram @0',
      '1000-1fff ram @1000 ro',
      '2000-3fff ram @2000',
      '8000-8fff ram @3000 nv',
    ]);
  });

  it('shows lower-priority siblings through the holes of a container and of an alias to a disabled target', () => {
    const ms = new MemorySystem();
    const sys = ms.container('sys', 0x10000);
    const ram = ms.ram('ram', 0x10000);
    const smram = ms.container('smram', 0x2000);
    smram.addSubregion(0, ms.ram('smram-ram', 0x1000));
    smram.setEnabled(false);
    sys.addSubregion(0, ram);
    sys.addSubregionOverlap(0xa000, ms.alias('smram-alias', smram, 0, 0x2000), 1);
    const as = ms.addressSpace(sys);
    assert.deepEqual(ranges(as.currentView), ['0-ffff ram @0']);
    smram.setEnabled(true);
    assert.deepEqual(ranges(as.currentView), [
      '0-9fff ram @0',
      'a000-afff smram-ram @0',
      'b000-ffff ram @b000',
    ]);
  });

  it('renders nothing for zero-size and disabled regions, and clips children to their parent', () => {
    const ms = new MemorySystem();
    const sys = ms.container('sys', 0x1000);
    const small = ms.container('small', 0x100);
    small.addSubregion(0x80, ms.ram('wide', 0x1000)); // extends far past its container
    sys.addSubregion(0, small);
    sys.addSubregion(0x200, ms.alias('zero', ms.ram('backing', 0x100), 0, 0));
    const off = ms.ram('off', 0x10);
    off.setEnabled(false);
    sys.addSubregion(0x300, off);
    const as = ms.addressSpace(sys);
    assert.deepEqual(ranges(as.currentView), ['80-ff wide @0']);
  });

  it("adds the resolved root region's own address", () => {
    const ms = new MemorySystem();
    const outer = ms.container('outer', 0x10000);
    const inner = ms.ram('inner', 0x100);
    outer.addSubregion(0x500, inner);
    const as = ms.addressSpace(inner, 'shifted');
    assert.deepEqual(ranges(as.currentView), ['500-5ff inner @0']);
  });

  it('merges adjacent pieces of one region reached by different paths', () => {
    const ms = new MemorySystem();
    const sys = ms.container('sys', 0x10000);
    const ram = ms.ram('ram', 0x10000);
    sys.addSubregion(0, ms.alias('lo', ram, 0, 0x4000));
    sys.addSubregion(0x4000, ms.alias('hi', ram, 0x4000, 0x4000));
    sys.addSubregion(0x9000, ms.alias('gap', ram, 0x9800, 0x1000));
    const as = ms.addressSpace(sys);
    assert.deepEqual(ranges(as.currentView), ['0-7fff ram @0', '9000-9fff ram @9800']);
  });
});

describe('FlatView sharing', () => {
  it('shares one view among address spaces whose roots resolve to the same region', () => {
    const ms = new MemorySystem();
    const system = ms.container('system', 2n ** 64n);
    system.addSubregion(0, ms.ram('ram', 0x1000));
    system.addSubregion(0x10000, ms.io('dev', 0x100, { read: () => 0 }));
    const memory = ms.addressSpace(system, 'memory');
    const cpu = ms.addressSpace(system, 'cpu-memory-0');
    // A PCI device's bus master container whose only child is an alias of all of system.
    const bmc = ms.container('bus master container', 2n ** 64n);
    const bm = ms.alias('bus master', system, 0, 2n ** 64n);
    bmc.addSubregion(0, bm);
    const dev = ms.addressSpace(bmc, 'e1000');
    assert.equal(memory.currentView, cpu.currentView);
    assert.equal(dev.currentView, memory.currentView);
    assert.equal(dev.currentView.root, system);
    // Bus mastering off: the only child is disabled, so the root resolves to nothing.
    bm.setEnabled(false);
    assert.equal(dev.currentView, ms.emptyView);
    assert.equal(dev.currentView.root, null);
    assert.notEqual(memory.currentView, ms.emptyView);
  });

  it('resolves a container through its only enabled child at offset 0', () => {
    const ms = new MemorySystem();
    const system = ms.container('system', 2n ** 64n);
    const ram = ms.ram('ram', 0x1000);
    system.addSubregion(0, ram);
    assert.equal(ms.addressSpace(system, 'memory').currentView.root, ram);
  });

  it('does not resolve through an alias with an offset or a container with two enabled children', () => {
    const ms = new MemorySystem();
    const system = ms.container('system', 0x10000);
    system.addSubregion(0, ms.ram('ram', 0x1000));
    const memory = ms.addressSpace(system, 'memory');
    const smmRoot = ms.container('memory', 0x10000);
    smmRoot.addSubregion(0, ms.alias('memory', system, 0, 0x10000));
    smmRoot.addSubregionOverlap(0, ms.alias('smram', ms.container('smram', 0x1000), 0, 0x1000), 1);
    const smm = ms.addressSpace(smmRoot, 'cpu-smm-0');
    // Two enabled children: a separate view with the same content.
    assert.notEqual(smm.currentView, memory.currentView);
    assert.equal(smm.currentView.root, smmRoot);
    assert.deepEqual(ranges(smm.currentView), ranges(memory.currentView));
    const shifted = ms.addressSpace(ms.alias('off', system, 0x10, 0x100), 'shifted');
    assert.equal(shifted.currentView.root?.name, 'off');
  });
});
