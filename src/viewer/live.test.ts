/**
 * @module viewer/live.test
 * Dirty runs of `memtree run --serve`, given as offsets in a RAM region, placed at guest addresses
 * of an address space through the aliases that map the region (expected addresses by hand).
 */

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { MemorySystem } from '../core/system.js';
import { dirtyInSpace, liveInfoOf } from './live.js';
import { buildMachine } from './model.js';

function machine() {
  const ms = new MemorySystem();
  const system = ms.container('system', 2n ** 64n - 1n);
  const ram = ms.ram('ram', 0x10000);
  ms.ram('spare', 0x2000);
  ms.transaction(() => {
    // The lower half of `ram` at 0x10000, the upper half at 0x40000.
    system.addSubregion(0x10000, ms.alias('lo', ram, 0, 0x8000));
    system.addSubregion(0x40000, ms.alias('hi', ram, 0x8000, 0x8000));
  });
  ms.addressSpace(system, 'memory');
  const m = buildMachine(ms, 'test');
  return m.spaces.find((s) => s.names.includes('memory'))!;
}

describe('viewer live dirty pages', () => {
  it('places region offsets at the guest addresses of every alias that shows them', () => {
    const info = liveInfoOf({
      label: 'x',
      pageSize: 4096,
      instructions: 5,
      clockNs: 50,
      dirty: [
        {
          region: 'ram',
          size: '0x10000',
          pages: 4,
          runs: [
            ['0x0', '0x1000'],
            ['0x7000', '0x9000'],
            ['0xf000', '0x10000'],
          ],
          truncated: false,
        },
        { region: 'spare', size: '0x2000', pages: 2, runs: [['0x0', '0x2000']], truncated: false },
      ],
    });
    assert.ok(info);
    const [ram, spare] = dirtyInSpace(machine(), info);
    // 0x7000..0x7fff is the last page of `lo` (0x17000), 0x8000..0x8fff the first of `hi` (0x40000).
    assert.deepEqual(ram!.ranges, [
      { start: 0x10000n, end: 0x11000n },
      { start: 0x17000n, end: 0x18000n },
      { start: 0x40000n, end: 0x41000n },
      { start: 0x47000n, end: 0x48000n },
    ]);
    assert.equal(ram!.totalPages, 16);
    assert.equal(ram!.mapped, true);
    assert.deepEqual(spare, {
      region: 'spare',
      pages: 2,
      totalPages: 2,
      ranges: [],
      mapped: false,
      truncated: false,
    });
  });

  it('ignores an answer without the live fields (a dump or a QEMU)', () => {
    assert.equal(liveInfoOf({ label: 'pc', mtree: '', flat: '' }), null);
  });
});
