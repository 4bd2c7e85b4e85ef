import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { SIZE_2_64 } from './address.js';
import { MemorySystem } from './system.js';

const names = (list: readonly { name: string | null }[]) => list.map((r) => r.name);

describe('MemoryRegion subregions', () => {
  it('orders subregions by priority, newest first among equals', () => {
    const ms = new MemorySystem();
    const c = ms.container('c', 0x1000);
    const a = ms.ram('a', 0x100);
    const b = ms.ram('b', 0x100);
    const d = ms.ram('d', 0x100);
    const e = ms.ram('e', 0x100);
    c.addSubregion(0, a);
    c.addSubregionOverlap(0, b, 1);
    c.addSubregion(0x100, d);
    c.addSubregionOverlap(0, e, -1);
    // b (prio 1) first; among the prio-0 ones d was added after a, so d comes first.
    assert.deepEqual(names(c.subregions), ['b', 'd', 'a', 'e']);
    assert.equal(b.priority, 1);
    assert.equal(e.priority, -1);
    assert.equal(a.container, c);
  });

  it('setAddress re-adds the region in front of its equal-priority siblings', () => {
    const ms = new MemorySystem();
    const c = ms.container('c', 0x1000);
    const a = ms.ram('a', 0x100);
    const b = ms.ram('b', 0x100);
    c.addSubregion(0, a);
    c.addSubregion(0x200, b);
    assert.deepEqual(names(c.subregions), ['b', 'a']);
    a.setAddress(0x400);
    assert.deepEqual(names(c.subregions), ['a', 'b']);
    assert.equal(a.addr, 0x400n);
  });

  it('stores a size of 2^64 - 1 as 2^64, as QEMU does for UINT64_MAX', () => {
    const ms = new MemorySystem();
    assert.equal(ms.container('system', 2n ** 64n - 1n).size, SIZE_2_64);
    assert.equal(ms.container('x', 2n ** 64n).size, SIZE_2_64);
    assert.equal(ms.container('y', 0x10).size, 0x10n);
  });

  it('counts aliases that map a region (mappedViaAlias)', () => {
    const ms = new MemorySystem();
    const sys = ms.container('sys', 0x10000);
    const ram = ms.ram('ram', 0x1000);
    const a1 = ms.alias('a1', ram, 0, 0x1000);
    const a2 = ms.alias('a2', a1, 0, 0x1000);
    sys.addSubregion(0, a2);
    assert.equal(a1.mappedViaAlias, 1);
    assert.equal(ram.mappedViaAlias, 1);
    assert.equal(ram.isMapped(), true);
    sys.delSubregion(a2);
    assert.equal(ram.mappedViaAlias, 0);
    assert.equal(ram.isMapped(), false);
  });
});

describe('MemoryRegion bad input', () => {
  it('refuses a region that already has a container, leaving the tree unchanged', () => {
    const ms = new MemorySystem();
    const c1 = ms.container('c1', 0x1000);
    const c2 = ms.container('c2', 0x1000);
    const r = ms.ram('r', 0x100);
    c1.addSubregion(0x10, r);
    assert.throws(
      () => c2.addSubregion(0, r),
      (e: Error & { code?: string }) => e.code === 'ERR_REGION_IN_USE' && /"r".*"c1"/.test(e.message),
    );
    assert.equal(r.container, c1);
    assert.equal(r.addr, 0x10n);
    assert.deepEqual(names(c2.subregions), []);
  });

  it('refuses to remove a region that is not a child', () => {
    const ms = new MemorySystem();
    const c = ms.container('c', 0x1000);
    const r = ms.ram('r', 0x100);
    assert.throws(() => c.delSubregion(r), { code: 'ERR_NOT_SUBREGION' });
  });

  it('refuses a region inside itself', () => {
    const ms = new MemorySystem();
    const outer = ms.container('outer', 0x1000);
    const inner = ms.container('inner', 0x100);
    outer.addSubregion(0, inner);
    assert.throws(() => inner.addSubregion(0, outer), { code: 'ERR_INVALID_ARGUMENT' });
    const lone = ms.container('lone', 0x100);
    assert.throws(() => lone.addSubregion(0, lone), { code: 'ERR_INVALID_ARGUMENT' });
    assert.equal(outer.container, null);
  });

  it('refuses negative, fractional and too large sizes and offsets, naming the region and value', () => {
    const ms = new MemorySystem();
    assert.throws(() => ms.container('neg', -1), /size of region "neg": -1 is negative/);
    assert.throws(() => ms.container('frac', 1.5), /"frac".*not an integer/);
    assert.throws(() => ms.container('big', 2n ** 64n + 1n), /"big".*beyond 2\^64/);
    const c = ms.container('c', 0x1000);
    const r = ms.ram('r', 0x100);
    assert.throws(() => c.addSubregion(-5, r), { code: 'ERR_INVALID_ARGUMENT' });
    assert.throws(() => c.addSubregion(2n ** 64n, r), /beyond 2\^64 - 1/);
    assert.throws(() => c.addSubregionOverlap(0, r, 2 ** 31), /priority.*signed 32-bit/);
    assert.equal(r.container, null);
    const a = ms.alias('a', r, 0, 0x10);
    assert.throws(() => a.setAliasOffset(-1), { code: 'ERR_INVALID_ARGUMENT' });
    assert.throws(() => r.setAliasOffset(1), { code: 'ERR_WRONG_KIND' });
    assert.throws(() => r.setRomdMode(false), { code: 'ERR_WRONG_KIND' });
  });

  it('refuses an alias that maps a container into itself without end (AliasCycleError)', () => {
    const ms = new MemorySystem();
    const outer = ms.container('outer', 0x1000);
    const inner = ms.container('inner', 0x1000);
    outer.addSubregion(0, inner);
    const as = ms.addressSpace(outer);
    // The whole of outer, at offset 0, inside outer: every round renders the same window again.
    const loop = ms.alias('loop', outer, 0, 0x1000);
    assert.throws(() => inner.addSubregionOverlap(0, loop, 3), { code: 'ERR_ALIAS_CYCLE' });
    assert.equal(loop.container, null);
    assert.equal(loop.priority, 0);
    assert.deepEqual(inner.subregions, []);
    assert.deepEqual(as.currentView.ranges, []);
  });

  it('accepts an alias that maps a window of its own container, as Arm SSE machines do', () => {
    const ms = new MemorySystem();
    const outer = ms.container('outer', 0x1000);
    const r = ms.ram('r', 0x400);
    outer.addSubregion(0, r);
    // outer[0, 0x400) shown again at 0x800. Inside that round the alias sits at 0x1000, outside
    // the clip [0x800, 0xc00), so rendering stops there: r appears twice.
    outer.addSubregion(0x800, ms.alias('mirror', outer, 0, 0x400));
    const as = ms.addressSpace(outer);
    assert.deepEqual(
      as.currentView.ranges.map((x) => [x.mr.name, x.start, x.size, x.offsetInRegion]),
      [
        ['r', 0n, 0x400n, 0n],
        ['r', 0x800n, 0x400n, 0n],
      ],
    );
  });

  it('keeps two systems apart', () => {
    const m1 = new MemorySystem();
    const m2 = new MemorySystem();
    const c = m1.container('c', 0x1000);
    const r = m2.ram('r', 0x100);
    assert.throws(() => c.addSubregion(0, r), { code: 'ERR_FOREIGN_REGION' });
    assert.throws(() => m1.alias('a', r, 0, 0x10), { code: 'ERR_FOREIGN_REGION' });
    assert.throws(() => m1.addressSpace(r), { code: 'ERR_FOREIGN_REGION' });
  });

  it('refuses an unbalanced commit', () => {
    const ms = new MemorySystem();
    assert.throws(() => ms.commit(), { code: 'ERR_TRANSACTION' });
  });
});
