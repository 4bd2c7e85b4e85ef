/**
 * @module core/page-size.test
 * The target page size is a MemorySystem option (QEMU `TARGET_PAGE_BITS`: 12 on x86, RISC-V and
 * Arm `virt`, 10 on most other Arm boards, 8 on AVR): dispatch sections split at its boundaries.
 */

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { sectionEnd, sectionEndBig } from './flatview.js';
import { MemorySystem } from './system.js';

test('MemorySystem takes the target page size in bits, 8 to 16, default 4 KiB', () => {
  assert.equal(new MemorySystem().targetPageSize, 4096);
  assert.equal(new MemorySystem({ targetPageBits: 10 }).targetPageSize, 1024);
  for (const bad of [7, 17, 10.5, Number.NaN]) {
    assert.throws(
      () => new MemorySystem({ targetPageBits: bad }),
      (e: Error & { code?: string }) => e.code === 'ERR_INVALID_ARGUMENT',
    );
  }
});

test('dispatch sections split at the target page boundaries (flatview_add_to_dispatch)', () => {
  // A range [0x100, 0x1900): head up to the first page boundary, whole pages, then the tail.
  assert.equal(sectionEnd(0x100, 0x1900, 0x100), 0x1000);
  assert.equal(sectionEnd(0x100, 0x1900, 0x100, 1024), 0x400);
  assert.equal(sectionEnd(0x100, 0x1900, 0x500, 1024), 0x1800);
  assert.equal(sectionEnd(0x100, 0x1900, 0x1850, 1024), 0x1900);
  assert.equal(sectionEndBig(0x100n, 0x1900n, 0x500n, 1024), 0x1800n);
});

test('a typed store across a section boundary of an unaligned RAM range depends on the page size', () => {
  // RAM at 0x100: its head section ends at the first page boundary. QEMU's address_space_stl
  // clamps the access to the section; a clamped access goes to the RAM region's ops, which are
  // unassigned_mem_ops, so it fails with MEMTX_DECODE_ERROR. With 4 KiB pages 0x3fe..0x401 lies in
  // the head [0x100, 0x1000); with 1 KiB pages it crosses the head's end at 0x400.
  for (const [bits, result] of [
    [12, 0],
    [10, 2],
  ] as const) {
    const ms = new MemorySystem({ targetPageBits: bits });
    const system = ms.container('system', 0x10000);
    system.addSubregion(0x100, ms.ram('ram', 0x2000));
    const as = ms.addressSpace(system, 'memory');
    as.stlLe(0x3fe, 0x11223344);
    assert.equal(as.lastResult, result, `${bits}-bit pages`);
  }
});
