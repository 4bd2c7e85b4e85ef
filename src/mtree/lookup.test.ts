/**
 * @module mtree/lookup.test
 * The path to an address, on the synthetic tree of spec 6.3 (whose flat view the spec works out).
 */

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { MemorySystem } from '../core/system.js';
import { explainAddress } from './lookup.js';

function spec63() {
  const ms = new MemorySystem();
  const sys = ms.container('sys', 0x10000);
  const ram0 = ms.ram('ram0', 0x8000);
  const bg = ms.io('bg', 0x10000, null);
  const win = ms.container('win', 0x4000);
  const dev = ms.io('dev', 0x800, null);
  const mirror = ms.alias('mirror', ram0, 0x6000, 0x2000);
  sys.addSubregion(0, ram0);
  sys.addSubregionOverlap(0, bg, -1);
  win.addSubregion(0x1000, dev);
  sys.addSubregionOverlap(0x4000, win, 1);
  sys.addSubregion(0xc000, mirror);
  return { as: ms.addressSpace(sys, 'demo') };
}

const names = (e: ReturnType<typeof explainAddress>) => e.path.map((s) => s.region.name);

test('an alias leads to its target, at the target offset the spec computes', () => {
  const { as } = spec63();
  const e = explainAddress(as, 0xc010n);
  assert.equal(e.region?.name, 'ram0');
  assert.equal(e.offset, 0x6010n);
  assert.deepEqual(names(e), ['sys', 'mirror', 'ram0']);
  // ram0's offset 0 lies at 0xc000 - 0x6000 through the alias (its own address cancels out).
  assert.equal(e.path[2]!.origin, 0x6000n);
  assert.equal(e.path[2]!.via, 'alias');
});

test('a hole of a higher-priority container falls through to the region below', () => {
  const { as } = spec63();
  const hole = explainAddress(as, 0x4800n);
  assert.deepEqual(names(hole), ['sys', 'ram0']);
  assert.equal(hole.offset, 0x4800n);
  const dev = explainAddress(as, 0x5000n);
  assert.deepEqual(names(dev), ['sys', 'win', 'dev']);
  assert.equal(dev.offset, 0n);
  const bg = explainAddress(as, 0x9000n);
  assert.deepEqual(names(bg), ['sys', 'bg']);
  assert.equal(bg.offset, 0x9000n);
});

test('an unmapped address has no range and no path', () => {
  const { as } = spec63();
  const e = explainAddress(as, 0x20000n);
  assert.equal(e.range, null);
  assert.deepEqual(e.path, []);
});
