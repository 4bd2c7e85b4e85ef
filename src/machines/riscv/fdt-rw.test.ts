/**
 * @module machines/riscv/fdt-rw.test
 * The libfdt buffer emulation on small cases reasoned out by hand from fdt_sw.c and fdt_rw.c (the
 * whole trees are compared with QEMU's in test/riscv-virt-fdt.test.ts).
 */

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { FdtBuffer } from './fdt-rw.js';

const be32 = (b: Uint8Array, off: number) => new DataView(b.buffer, b.byteOffset).getUint32(off, false);
const ascii = (s: string) => new TextEncoder().encode(s);

test('create_device_tree then fdt_pack: the tree moves down 8 bytes and its last 8 stay behind', () => {
  const f = FdtBuffer.create(4096);
  // fdt_create puts the reservation map at align(40, 16) = 48; the empty tree's data ends at
  // 48 + 16 (map terminator) + 16 (BEGIN_NODE "", END_NODE, END) = 80.
  assert.deepEqual([be32(f.buf, 16), be32(f.buf, 8), be32(f.buf, 12)], [48, 64, 80]);
  f.pack();
  assert.equal(f.totalSize, 72);
  assert.deepEqual([be32(f.buf, 16), be32(f.buf, 8), be32(f.buf, 12)], [40, 56, 72]);
  // Bytes 72..80 still hold the old END_NODE and END tokens.
  assert.deepEqual([be32(f.buf, 72), be32(f.buf, 76)], [2, 9]);
});

test('a property added before another keeps the older bytes in its padding (fdt_add_property_)', () => {
  const f = FdtBuffer.create(4096);
  f.setprop('/', 'model', ascii('riscv-virtio,qemu\0'));
  f.setprop('/', 'compatible', ascii('riscv-virtio\0'));
  f.pack();
  // The root's first property starts after BEGIN_NODE and its empty name: 56 + 8 = 64. Its
  // 13-byte value is padded to 16 with what was there before the insertion: bytes 13..15 of
  // "riscv-virtio,qemu".
  const data = 64 + 12;
  assert.deepEqual([...f.buf.subarray(data, data + 16)], [...ascii('riscv-virtio\0qem')]);
  // Names are stored once, in first-use order.
  const strings = be32(f.buf, 12);
  assert.deepEqual([...f.buf.subarray(strings, strings + 17)], [...ascii('model\0compatible\0')]);
});

test('setting a property shorter leaves the old tail past the end of the data (fdt_resize_property_)', () => {
  const f = FdtBuffer.create(4096);
  f.addSubnode('/', 'chosen');
  f.setprop('/chosen', 'bootargs', ascii('0123456789abcdef\0'));
  const before = be32(f.buf, 12) + be32(f.buf, 32);
  f.setprop('/chosen', 'bootargs', ascii('x\0'));
  const end = be32(f.buf, 12) + be32(f.buf, 32);
  // 17 bytes padded to 20 became 2 padded to 4: everything after moved down 16 bytes, and the
  // old last 16 bytes of the data are still there after the new end.
  assert.equal(before - end, 16);
  assert.deepEqual([...f.buf.subarray(end, before)], [...f.buf.subarray(end - 16, end)]);
});

test('a node that is not there is an error, as findnode_nofail stops QEMU', () => {
  const f = FdtBuffer.create(4096);
  assert.throws(() => f.setprop('/chosen', 'bootargs', ascii('x\0')), { code: 'ERR_INVALID_ARGUMENT' });
  assert.throws(() => FdtBuffer.create(100).setprop('/', 'big', new Uint8Array(100)), {
    code: 'ERR_INVALID_ARGUMENT',
  });
});
