import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { DIRTY_MEMORY_MIGRATION } from './dirty.js';
import { IOMMU_RO, IOMMU_RW } from './iommu.js';
import { MemorySystem } from './system.js';
import { MEMTX_ACCESS_ERROR, MEMTX_DECODE_ERROR, MEMTX_OK, type MemoryRegionOps } from './types.js';

const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');

/** An I/O device that records every callback as "r/w offset size [value]". */
function recorder(
  log: string[],
  ops: Partial<MemoryRegionOps> = {},
  value = (o: number, _s: number) => o + 1,
) {
  return {
    read: (o: number, s: number) => {
      log.push(`r ${o} ${s}`);
      return value(o, s);
    },
    write: (o: number, v: number | bigint, s: number) => {
      log.push(`w ${o} ${s} ${v.toString(16)}`);
    },
    ...ops,
  } satisfies MemoryRegionOps;
}

describe('MMIO dispatch', () => {
  it('gives a whole port access to the region at its first byte, split for the device', () => {
    const ms = new MemorySystem();
    const bgLog: string[] = [];
    const rtcLog: string[] = [];
    const io = ms.io(
      'io',
      0x10000,
      recorder(bgLog, {}, (_o, s) => 2 ** (8 * s) - 1),
    );
    io.addSubregion(0x70, ms.io('rtc-index', 1, recorder(rtcLog, { impl: { maxAccessSize: 1 } })));
    io.addSubregion(0x401, ms.io('dev401', 1, recorder([])));
    const as = ms.addressSpace(io, 'I/O');
    const buf = new Uint8Array(4);
    assert.equal(as.read(0x70, buf), MEMTX_OK);
    // rtc-index is one byte long, yet it receives all four bytes, one byte per callback.
    assert.deepEqual(rtcLog, ['r 0 1', 'r 1 1', 'r 2 1', 'r 3 1']);
    assert.equal(hex(buf), '01020304');
    // A 4-byte read at 0x400 goes to the background even though dev401 starts at 0x401.
    assert.equal(as.read(0x400, buf), MEMTX_OK);
    assert.deepEqual(bgLog, ['r 1024 4']);
    assert.equal(hex(buf), 'ffffffff');
  });

  it('clamps RAM chunks to their range, so a read spans ROM and RAM', () => {
    const ms = new MemorySystem();
    const sys = ms.container('sys', 0x10000);
    const rom = ms.rom('rom', 0x1000);
    const ram = ms.ram('ram', 0x1000);
    rom.ramBlock!.write(0xffe, Uint8Array.of(0xaa, 0xbb), 0, 2);
    ram.ramBlock!.write(0, Uint8Array.of(0xcc, 0xdd), 0, 2);
    sys.addSubregion(0x1000, rom);
    sys.addSubregion(0x2000, ram);
    const as = ms.addressSpace(sys);
    const buf = new Uint8Array(4);
    assert.equal(as.read(0x1ffe, buf), MEMTX_OK);
    assert.equal(hex(buf), 'aabbccdd');
  });

  it('never splits a typed load: one straddling the end of RAM fails whole', () => {
    const ms = new MemorySystem();
    const sys = ms.container('sys', 0x10000);
    sys.addSubregion(0x2000, ms.ram('ram', 0x1000));
    const as = ms.addressSpace(sys);
    as.stb(0x2ffe, 0x11);
    assert.equal(as.ldlLe(0x2ffe), 0);
    assert.equal(as.lastResult, MEMTX_DECODE_ERROR);
    // The buffer path splits instead: two RAM bytes, then unassigned bytes.
    const buf = new Uint8Array(4);
    assert.equal(as.read(0x2ffe, buf), MEMTX_DECODE_ERROR);
    assert.equal(hex(buf), '11000000');
  });

  it('reads unassigned memory as 0 with DECODE_ERROR and drops writes', () => {
    const ms = new MemorySystem();
    const as = ms.addressSpace(ms.container('empty', 0x10000));
    const buf = Uint8Array.of(1, 2, 3, 4, 5, 6, 7, 8);
    assert.equal(as.read(0x100, buf), MEMTX_DECODE_ERROR);
    assert.equal(hex(buf), '0000000000000000');
    assert.equal(as.write(0x100, buf), MEMTX_DECODE_ERROR);
    assert.equal(as.ldqLe(0x100), 0n);
    assert.equal(as.lastResult, MEMTX_DECODE_ERROR);
    assert.equal(as.read(0x100, new Uint8Array(0)), MEMTX_OK);
  });

  it('refuses attrs.memory accesses to non-RAM regions (ACCESS_ERROR)', () => {
    const ms = new MemorySystem();
    const sys = ms.container('sys', 0x10000);
    const log: string[] = [];
    sys.addSubregion(0, ms.io('dev', 0x100, recorder(log)));
    const as = ms.addressSpace(sys);
    assert.equal(as.read(0, new Uint8Array(4), { memory: true }), MEMTX_ACCESS_ERROR);
    assert.deepEqual(log, []);
  });

  it('drops bus writes to ROM but lets them through a read-only alias of RAM', () => {
    const ms = new MemorySystem();
    const sys = ms.container('sys', 0x10000);
    const rom = ms.rom('rom', 0x1000);
    const ram = ms.ram('ram', 0x1000);
    const pamRom = ms.alias('pam-rom', ram, 0, 0x1000);
    pamRom.setReadonly(true);
    sys.addSubregion(0, rom);
    sys.addSubregion(0x1000, pamRom);
    const as = ms.addressSpace(sys);
    as.stlLe(0x10, 0x12345678);
    assert.equal(as.lastResult, MEMTX_DECODE_ERROR);
    assert.equal(as.ldlLe(0x10), 0);
    assert.equal(as.write(0x1010, Uint8Array.of(9, 8)), MEMTX_OK);
    assert.equal(as.lduwLe(0x1010), 0x0809);
    assert.equal(as.currentView.rangeAt(0x1010n)?.readonly, true);
    // writeRom (firmware loading) ignores read-only.
    assert.equal(as.writeRom(0x10, Uint8Array.of(0xab)), MEMTX_OK);
    assert.equal(as.ldub(0x10), 0xab);
  });

  it('switches a ROM device between memory reads and callback reads', () => {
    const ms = new MemorySystem();
    const sys = ms.container('sys', 0x10000);
    const log: string[] = [];
    const flash = ms.romDevice(
      'flash',
      0x1000,
      recorder(log, { endianness: 'little' }, () => 0x89),
    );
    flash.ramBlock!.write(0, Uint8Array.of(0x55), 0, 1);
    sys.addSubregion(0, flash);
    const as = ms.addressSpace(sys);
    assert.equal(as.ldub(0), 0x55);
    as.stb(0, 0xff);
    assert.deepEqual(log, ['w 0 1 ff']);
    flash.setRomdMode(false);
    assert.equal(as.ldub(0), 0x89);
    assert.deepEqual(log, ['w 0 1 ff', 'r 0 1']);
    flash.setRomdMode(true);
    assert.equal(as.ldub(0), 0x55);
  });
});

describe('access sizes and byte order', () => {
  function device(ops: MemoryRegionOps) {
    const ms = new MemorySystem();
    const sys = ms.container('sys', 0x10000);
    sys.addSubregion(0x1000, ms.io('dev', 0x100, ops));
    return ms.addressSpace(sys);
  }

  it('serialises a device value in the device byte order', () => {
    const be = device({ read: () => 0x11223344, endianness: 'big' });
    const le = device({ read: () => 0x11223344, endianness: 'little' });
    const buf = new Uint8Array(4);
    be.read(0x1000, buf);
    assert.equal(hex(buf), '11223344');
    le.read(0x1000, buf);
    assert.equal(hex(buf), '44332211');
    assert.equal(be.ldlBe(0x1000), 0x11223344);
    assert.equal(be.ldlLe(0x1000), 0x44332211);
    assert.equal(le.ldlLe(0x1000), 0x11223344);
  });

  it('splits wide accesses for narrow devices, low offsets least significant on LE, most on BE', () => {
    const logLe: string[] = [];
    const logBe: string[] = [];
    const byOffset = (o: number) => o + 1;
    const le = device(recorder(logLe, { impl: { maxAccessSize: 1 }, endianness: 'little' }, byOffset));
    const be = device(recorder(logBe, { impl: { maxAccessSize: 1 }, endianness: 'big' }, byOffset));
    // Each device register byte at offset o holds o + 1; a bus master sees bytes 01 02 03 04.
    assert.equal(le.ldlLe(0x1000), 0x04030201);
    assert.equal(be.ldlBe(0x1000), 0x01020304);
    assert.deepEqual(logLe, ['r 0 1', 'r 1 1', 'r 2 1', 'r 3 1']);
    le.stlLe(0x1000, 0xa1b2c3d4);
    be.stlBe(0x1000, 0xa1b2c3d4);
    assert.deepEqual(logLe.slice(4), ['w 0 1 d4', 'w 1 1 c3', 'w 2 1 b2', 'w 3 1 a1']);
    assert.deepEqual(logBe.slice(4), ['w 0 1 a1', 'w 1 1 b2', 'w 2 1 c3', 'w 3 1 d4']);
  });

  it('combines two 32-bit callbacks into one 64-bit value', () => {
    const log: string[] = [];
    const as = device(
      recorder(log, { endianness: 'little', valid: { maxAccessSize: 8 } }, (o) =>
        o === 0 ? 0x55667788 : 0x11223344,
      ),
    );
    assert.equal(as.ldqLe(0x1000), 0x1122334455667788n);
    assert.deepEqual(log, ['r 0 4', 'r 4 4']);
    as.stqLe(0x1000, 0x0102030405060708n);
    assert.deepEqual(log.slice(2), ['w 0 4 5060708', 'w 4 4 1020304']);
  });

  it('widens a narrow access for a device whose minimum is larger, without realigning', () => {
    const log: string[] = [];
    const as = device(recorder(log, { impl: { minAccessSize: 4 }, endianness: 'little' }, () => 0xaabbccdd));
    assert.equal(as.ldub(0x1002), 0xdd);
    assert.deepEqual(log, ['r 2 4']);
    as.stb(0x1002, 0x7f);
    assert.deepEqual(log.slice(1), ['w 2 4 7f']);
  });

  it('bounds buffer chunks by valid.maxAccessSize and the offset alignment (memory_access_size)', () => {
    const log: string[] = [];
    const as = device(recorder(log, { endianness: 'little' }));
    as.read(0x1002, new Uint8Array(8));
    // At offset 2 the alignment allows 2 bytes; then 4 at offset 4; then 2 at offset 8.
    assert.deepEqual(log, ['r 2 2', 'r 4 4', 'r 8 2']);
  });

  it('rejects invalid sizes and unaligned accesses before the device sees them', () => {
    const log: string[] = [];
    const as = device(recorder(log, { valid: { minAccessSize: 4, maxAccessSize: 4 } }));
    assert.equal(as.ldub(0x1000), 0);
    assert.equal(as.lastResult, MEMTX_DECODE_ERROR);
    assert.equal(as.ldlLe(0x1002), 0);
    assert.equal(as.lastResult, MEMTX_DECODE_ERROR);
    assert.deepEqual(log, []);
    assert.equal(as.accessValid(0x1000, 4, false), true);
    assert.equal(as.accessValid(0x1000, 1, false), false);
    const refusing = device(recorder(log, { valid: { accepts: (o) => o !== 8 } }));
    assert.equal(refusing.ldlLe(0x1008), 0);
    assert.equal(refusing.lastResult, MEMTX_DECODE_ERROR);
  });
});

describe('ioeventfds', () => {
  it('signals the notifier instead of the device for a matching write, and tells listeners', () => {
    const ms = new MemorySystem();
    const sys = ms.container('sys', 0x100000);
    const log: string[] = [];
    const notify = ms.io('notify', 0x1000, recorder(log, { endianness: 'little' }));
    sys.addSubregion(0x8000, notify);
    const as = ms.addressSpace(sys);
    const heard: string[] = [];
    as.addListener({
      eventfdAdd: (s, m, d) =>
        heard.push(`add ${s.offsetWithinAddressSpace.toString(16)} ${s.size} ${m} ${d}`),
      eventfdDel: (s) => heard.push(`del ${s.offsetWithinAddressSpace.toString(16)}`),
    });
    let kicks = 0;
    const notifier = { notify: () => kicks++ };
    notify.addEventfd(0x10, 2, true, 5, notifier);
    assert.deepEqual(heard, ['add 8010 2 true 5']);
    as.stwLe(0x8010, 5);
    assert.equal(kicks, 1);
    assert.deepEqual(log, []);
    as.stwLe(0x8010, 6); // data does not match: the device gets it
    assert.deepEqual(log, ['w 16 2 6']);
    // Moving the region moves the ioeventfd: del at the old address, add at the new one.
    notify.setAddress(0x9000);
    assert.deepEqual(heard.slice(1), ['del 8010', 'add 9010 2 true 5']);
    notify.delEventfd(0x10, 2, true, 5, notifier);
    as.stwLe(0x9010, 5);
    assert.equal(kicks, 1);
  });
});

describe('device register fast path', () => {
  // The typed helpers cache device pages after the first access; every case below repeats its
  // accesses so that the later ones are served from that cache, and checks they still do exactly
  // what QEMU's dispatch does.

  it('keeps offsets, masking and byte order on repeated register accesses', () => {
    const ms = new MemorySystem();
    const sys = ms.container('sys', 0x100000);
    const le: string[] = [];
    const be: string[] = [];
    sys.addSubregion(
      0x1000,
      ms.io(
        'le',
        0x1000,
        recorder(le, { endianness: 'little' }, () => 0x1_1223_3445),
      ),
    );
    sys.addSubregion(
      0x2000,
      ms.io(
        'be',
        0x1000,
        recorder(be, { endianness: 'big' }, () => 0x11223344),
      ),
    );
    const as = ms.addressSpace(sys);
    for (let n = 0; n < 3; n++) {
      // The callback's value is masked to the access size (its bit 32 is dropped).
      assert.equal(as.ldlLe(0x1008), 0x12233445);
      assert.equal(as.lduwLe(0x100a), 0x3445);
      assert.equal(as.ldub(0x100f), 0x45);
      // A big-endian device read by a little-endian load is byte-swapped, and vice versa.
      assert.equal(as.ldlBe(0x2004), 0x11223344);
      assert.equal(as.ldlLe(0x2004), 0x44332211);
      as.stlLe(0x1010, 0xdeadbeef + 2 ** 32);
      as.stwBe(0x2012, 0x1234);
      assert.equal(as.lastResult, MEMTX_OK);
    }
    assert.deepEqual(le.slice(0, 4), ['r 8 4', 'r 10 2', 'r 15 1', 'w 16 4 deadbeef']);
    assert.deepEqual(be.slice(0, 3), ['r 4 4', 'r 4 4', 'w 18 2 1234']);
    assert.equal(le.length, 12);
    assert.equal(be.length, 9);
  });

  it('gives an alias at an odd offset the offsets and validity QEMU computes', () => {
    const ms = new MemorySystem();
    const sys = ms.container('sys', 0x100000);
    const log: string[] = [];
    const strict: string[] = [];
    const dev = ms.io('dev', 0x4000, recorder(log, { endianness: 'little', valid: { unaligned: true } }));
    const dev2 = ms.io('dev2', 0x4000, recorder(strict, { endianness: 'little' }));
    // Guest pages 0x5000 and 0x6000 start at offset 0x1002 of a device: guest-aligned accesses are
    // device-unaligned there.
    sys.addSubregion(0x5000, ms.alias('win', dev, 0x1002, 0x1000));
    sys.addSubregion(0x6000, ms.alias('win2', dev2, 0x1002, 0x1000));
    const as = ms.addressSpace(sys);
    for (let n = 0; n < 2; n++) {
      // A typed load is never split (address_space_ldl_internal makes one dispatch): the device,
      // which accepts unaligned accesses, gets one 4-byte read at 0x1006.
      as.ldlLe(0x5004);
      assert.equal(as.lastResult, MEMTX_OK);
      // Without valid.unaligned, memory_region_access_valid refuses it before the device sees it.
      assert.equal(as.ldlLe(0x6004), 0);
      assert.equal(as.lastResult, MEMTX_DECODE_ERROR);
    }
    assert.deepEqual(log, ['r 4102 4', 'r 4102 4']);
    assert.deepEqual(strict, []);
  });

  it('sends a write to a new ioeventfd, not to the device it was cached for', () => {
    const ms = new MemorySystem();
    const sys = ms.container('sys', 0x100000);
    const log: string[] = [];
    const dev = ms.io('notify', 0x1000, recorder(log, { endianness: 'little' }));
    sys.addSubregion(0x8000, dev);
    const as = ms.addressSpace(sys);
    as.stwLe(0x8010, 5);
    as.stwLe(0x8010, 5);
    assert.equal(log.length, 2);
    let kicks = 0;
    dev.addEventfd(0x10, 2, true, 5, { notify: () => kicks++ });
    as.stwLe(0x8010, 5);
    assert.equal(kicks, 1);
    assert.equal(log.length, 2);
  });

  it('stops serving a device page once the device is unmapped', () => {
    const ms = new MemorySystem();
    const sys = ms.container('sys', 0x100000);
    const dev = ms.io('dev', 0x1000, { read: () => 7 });
    sys.addSubregion(0x3000, dev);
    const as = ms.addressSpace(sys);
    assert.equal(as.ldlLe(0x3000), 7);
    assert.equal(as.ldlLe(0x3000), 7);
    sys.delSubregion(dev);
    assert.equal(as.ldlLe(0x3000), 0);
    assert.equal(as.lastResult, MEMTX_DECODE_ERROR);
  });

  it('keeps each address space its own device pages (they start on tables shared by all)', () => {
    // Unused address spaces share one never-hit table until their first fill: a fill in one must
    // not show in another, in this machine or in another one. Values stay below 0x100, so a 1-byte
    // read (of the 4-byte callback's value, as QEMU masks it) sees all of them.
    const spaces = [1, 2, 3].map((v) => {
      const ms = new MemorySystem();
      const sys = ms.container('sys', 0x100000);
      sys.addSubregion(0x3000, ms.io(`dev${v}`, 0x1000, { read: (o) => v * 0x40 + o }));
      return { v, as: ms.addressSpace(sys), other: ms.addressSpace(sys, 'other') };
    });
    for (let round = 0; round < 3; round++) {
      for (const { v, as, other } of spaces) {
        for (const [size, read] of [
          [4, (a: number) => as.ldlLe(a)],
          [1, (a: number) => as.ldub(a)],
        ] as const) {
          assert.equal(read(0x3008), v * 0x40 + 8, `${size}-byte read of dev${v}, round ${round}`);
        }
        assert.equal(other.lduwLe(0x3010), v * 0x40 + 0x10);
      }
    }
  });

  it('blocks re-entry on every access of a device with an owner, and survives a throwing callback', () => {
    const ms = new MemorySystem();
    const sys = ms.container('sys', 0x10000);
    const owner = { name: 'dev' };
    const as = ms.addressSpace(sys);
    const inner: number[] = [];
    let fail = false;
    const ops = {
      read: () => {
        if (fail) throw new Error('device fault');
        inner.push(as.ldlLe(0x100), as.lastResult);
        return 1;
      },
    };
    sys.addSubregion(0, ms.io('a', 0x100, ops, { owner }));
    sys.addSubregion(0x100, ms.io('b', 0x100, { read: () => 0x42 }, { owner }));
    for (let n = 0; n < 3; n++) assert.equal(as.ldlLe(0), 1);
    // Each time the nested access to the same device was refused (value 0, ACCESS_ERROR).
    assert.deepEqual(inner, [0, MEMTX_ACCESS_ERROR, 0, MEMTX_ACCESS_ERROR, 0, MEMTX_ACCESS_ERROR]);
    fail = true;
    assert.throws(() => as.ldlLe(0), /device fault/);
    // The guard was released when the callback threw: the device is reachable again.
    assert.equal(as.ldlLe(0x100), 0x42);
    assert.equal(as.lastResult, MEMTX_OK);
  });
});

describe('lastResult through the fast paths', () => {
  it('reports each access its own result when RAM, device and failed accesses interleave', () => {
    const ms = new MemorySystem();
    const sys = ms.container('sys', 0x100000);
    const ram = ms.ram('ram', 0x10000);
    sys.addSubregion(0, ram);
    sys.addSubregion(0x20000, ms.io('dev', 0x1000, { read: () => 5, write: () => {}, endianness: 'little' }));
    const as = ms.addressSpace(sys);
    const bad = 0x30000; // nothing mapped: QEMU reads 0 with MEMTX_DECODE_ERROR
    const loads = [
      (a: number) => as.ldub(a),
      (a: number) => as.lduwLe(a),
      (a: number) => as.lduwBe(a),
      (a: number) => as.ldlLe(a),
      (a: number) => as.ldlBe(a),
      (a: number) => Number(as.ldqLe(a)),
      (a: number) => Number(as.ldqBe(a)),
    ];
    const stores = [
      (a: number) => as.stb(a, 1),
      (a: number) => as.stwLe(a, 1),
      (a: number) => as.stwBe(a, 1),
      (a: number) => as.stlLe(a, 1),
      (a: number) => as.stlBe(a, 1),
      (a: number) => as.stqLe(a, 1n),
      (a: number) => as.stqBe(a, 1n),
    ];
    ram.ramBlock!.write(0x2000, Uint8Array.of(9, 0, 0, 0, 0, 0, 0, 0), 0, 8);
    for (let round = 0; round < 3; round++) {
      for (const [k, ld] of loads.entries()) {
        assert.equal(ld(0x2000) === 0, false, `RAM load ${k}`);
        assert.equal(as.lastResult, MEMTX_OK);
        assert.equal(ld(bad), 0);
        assert.equal(as.lastResult, MEMTX_DECODE_ERROR, `failed load ${k}`);
        ld(0x2000);
        assert.equal(as.lastResult, MEMTX_OK, `RAM load ${k} after a failure`);
        if (k < 5) {
          ld(0x20000);
          assert.equal(as.lastResult, MEMTX_OK, `device load ${k}`);
          ld(bad);
          ld(0x20000);
          assert.equal(as.lastResult, MEMTX_OK, `device load ${k} after a failure`);
        }
      }
      for (const [k, st] of stores.entries()) {
        st(0x3000);
        assert.equal(as.lastResult, MEMTX_OK, `RAM store ${k}`);
        st(bad);
        assert.equal(as.lastResult, MEMTX_DECODE_ERROR, `failed store ${k}`);
        st(0x3000);
        assert.equal(as.lastResult, MEMTX_OK, `RAM store ${k} after a failure`);
      }
    }
    // The bytes the stores left are the last store's (stqBe of 1 at 0x3000).
    assert.equal(as.ldqBe(0x3000), 1n);
  });

  it('gives an access that succeeded OK even when a nested access in its callback failed', () => {
    const ms = new MemorySystem();
    const sys = ms.container('sys', 0x100000);
    sys.addSubregion(0, ms.ram('ram', 0x10000));
    const as = ms.addressSpace(sys);
    const nested: number[] = [];
    sys.addSubregion(
      0x20000,
      ms.io('dev', 0x1000, {
        read: () => {
          as.ldlLe(0x30000); // unassigned
          nested.push(as.lastResult);
          return 7;
        },
      }),
    );
    for (let n = 0; n < 3; n++) {
      assert.equal(as.ldlLe(0x20000), 7);
      assert.equal(as.lastResult, MEMTX_OK);
      as.ldlLe(0x100);
      assert.equal(as.lastResult, MEMTX_OK);
    }
    assert.deepEqual(nested, [MEMTX_DECODE_ERROR, MEMTX_DECODE_ERROR, MEMTX_DECODE_ERROR]);
  });
});

describe('map and unmap', () => {
  it('gives RAM as a zero-copy view and I/O through the single bounce buffer', () => {
    const ms = new MemorySystem();
    const sys = ms.container('sys', 0x100000);
    sys.addSubregion(0, ms.ram('ram', 0x4000));
    const log: string[] = [];
    sys.addSubregion(0x10000, ms.io('dev', 0x1000, recorder(log, { endianness: 'little' })));
    const as = ms.addressSpace(sys);
    const m = as.map(0x1000, 0x2000, true)!;
    assert.equal(m.bounce, false);
    assert.equal(m.data.length, 0x2000);
    m.data[5] = 0x77;
    assert.equal(as.ldub(0x1005), 0x77);
    as.unmap(m, 6);

    const b = as.map(0x10000, 8, false)!;
    assert.equal(b.bounce, true);
    assert.deepEqual(log, ['r 0 4', 'r 4 4']);
    assert.equal(as.map(0x10000, 4, true), null); // only one bounce buffer
    let freed = false;
    ms.registerMapClient(() => {
      freed = true;
    });
    assert.equal(freed, false);
    as.unmap(b);
    assert.equal(freed, true);
    const w = as.map(0x10000, 4, true)!;
    w.data.set([1, 2, 3, 4]);
    as.unmap(w, 4);
    assert.deepEqual(log.slice(2), ['w 0 4 4030201']);
  });
});

describe('IOMMU', () => {
  it('translates device accesses into the target address space and enforces permissions', () => {
    const ms = new MemorySystem();
    const system = ms.container('system', 2n ** 64n);
    const ram = ms.ram('ram', 0x10000);
    system.addSubregion(0x100000, ram);
    system.addSubregion(0x200000, ms.ram('other', 0x1000));
    const memory = ms.addressSpace(system, 'memory');
    let perm = IOMMU_RW;
    const iommu = ms.iommu('dmar', 2n ** 64n, {
      translate: (addr) => ({
        targetAs: memory,
        iova: addr & ~0xfffn,
        translatedAddr: 0x100000n + (addr & ~0xfffn), // identity plus 1 MiB
        addrMask: 0xfffn,
        perm,
      }),
    });
    const dev = ms.addressSpace(iommu, 'dev');
    memory.stlLe(0x100010, 0xcafef00d);
    assert.equal(dev.ldlLe(0x10), 0xcafef00d);
    dev.stlLe(0x20, 0x1234);
    assert.equal(memory.ldlLe(0x100020), 0x1234);
    perm = IOMMU_RO;
    dev.stlLe(0x20, 0x9999);
    assert.equal(dev.lastResult, MEMTX_DECODE_ERROR);
    assert.equal(memory.ldlLe(0x100020), 0x1234);
    // A buffer access is cut at the IOMMU page boundary and translated page by page.
    perm = IOMMU_RW;
    const buf = new Uint8Array(8);
    memory.write(0x100ffc, Uint8Array.of(1, 2, 3, 4, 5, 6, 7, 8));
    assert.equal(dev.read(0xffc, buf), MEMTX_OK);
    assert.equal(hex(buf), '0102030405060708');
  });
});

describe('64-bit addresses', () => {
  it('reaches the top of the 64-bit space exactly and refuses accesses that wrap', () => {
    const ms = new MemorySystem();
    const system = ms.container('system', 2n ** 64n - 1n);
    const top = ms.ram('top', 0x1000);
    system.addSubregion(2n ** 64n - 0x1000n, top);
    const as = ms.addressSpace(system);
    assert.equal(as.write(2n ** 64n - 8n, Uint8Array.of(1, 2, 3, 4, 5, 6, 7, 8)), MEMTX_OK);
    const buf = new Uint8Array(8);
    assert.equal(as.read(2n ** 64n - 8n, buf), MEMTX_OK);
    assert.equal(hex(buf), '0102030405060708');
    assert.equal(as.load(2n ** 64n - 8n, 8), 0x0807060504030201n);
    assert.equal(as.lookup(2n ** 64n - 1n)?.offset, 0xfffn);
    assert.throws(() => as.read(2n ** 64n - 4n, buf), { code: 'ERR_ADDRESS_OVERFLOW' });
    assert.throws(() => as.load(2n ** 64n - 4n, 8), { code: 'ERR_ADDRESS_OVERFLOW' });
    assert.throws(() => as.read(-1, buf), { code: 'ERR_INVALID_ARGUMENT' });
    assert.throws(() => as.ldub(1.5), { code: 'ERR_INVALID_ARGUMENT' });
    assert.throws(() => as.ldub(-4096), { code: 'ERR_INVALID_ARGUMENT' });
  });

  it('splits a buffer access above 2^53 at every range, as below it (flatview_read/write_continue)', () => {
    // Two RAM regions side by side, then a little-endian device whose write callback records what
    // it gets: each range is one chunk of the loop, and the device's 4 bytes are one callback of 4.
    const ms = new MemorySystem();
    const system = ms.container('system', 2n ** 64n - 1n);
    const H = 2n ** 60n;
    const writes: string[] = [];
    system.addSubregion(H, ms.ram('a', 0x1000));
    system.addSubregion(H + 0x1000n, ms.ram('b', 0x1000));
    const ops: MemoryRegionOps = {
      read: (o) => 0xc0 + Number(o),
      write: (o, v, size) => {
        writes.push(`${o}:${v.toString(16)}/${size}`);
      },
      endianness: 'little',
    };
    system.addSubregion(H + 0x2000n, ms.io('dev', 0x1000, ops));
    const as = ms.addressSpace(system);
    const bytes = Uint8Array.from({ length: 16 }, (_, i) => i + 1);
    assert.equal(as.write(H + 0xff8n, bytes), MEMTX_OK);
    assert.equal(as.load(H + 0xff8n, 8), 0x0807060504030201n, 'the first 8 bytes land at the end of a');
    assert.equal(as.load(H + 0x1000n, 8), 0x100f0e0d0c0b0a09n, 'the next 8 at the start of b');
    assert.equal(as.write(H + 0x1ffcn, Uint8Array.of(1, 2, 3, 4, 5, 6, 7, 8)), MEMTX_OK);
    assert.deepEqual(writes, ['0:8070605/4']);
    const buf = new Uint8Array(8);
    assert.equal(as.read(H + 0x1ffcn, buf), MEMTX_OK);
    // The device reads 0xc0 + offset for its whole 4-byte callback: bytes c0 00 00 00.
    assert.deepEqual([...buf], [1, 2, 3, 4, 0xc0, 0, 0, 0]);
  });
});

describe('re-entrancy and topology changes during an access', () => {
  it('blocks a device re-entering its own I/O regions', () => {
    const ms = new MemorySystem();
    const sys = ms.container('sys', 0x10000);
    const owner = { name: 'dev' };
    let inner = -1;
    const as = ms.addressSpace(sys);
    sys.addSubregion(
      0,
      ms.io(
        'a',
        0x100,
        {
          read: () => {
            inner = as.ldub(0x100);
            return as.lastResult;
          },
        },
        { owner },
      ),
    );
    sys.addSubregion(0x100, ms.io('b', 0x100, { read: () => 0x42 }, { owner }));
    const warnings: string[] = [];
    ms.dispatcher.warn = (m) => warnings.push(m);
    assert.equal(as.ldub(0), MEMTX_ACCESS_ERROR);
    assert.equal(inner, 0);
    assert.equal(warnings.length, 1);
    assert.equal(as.ldub(0x100), 0x42); // outside a callback it works
  });

  it('finishes an access on the view it started with (RCU), later accesses see the change', () => {
    const ms = new MemorySystem();
    const sys = ms.container('sys', 0x10000);
    const ram = ms.ram('ram', 0x1000);
    sys.addSubregion(0x1000, ram);
    sys.addSubregion(0xffc, ms.io('killer', 4, { write: () => ram.setEnabled(false), endianness: 'little' }));
    const as = ms.addressSpace(sys);
    assert.equal(as.write(0xffc, Uint8Array.of(0, 0, 0, 0, 0xaa, 0xbb)), MEMTX_OK);
    const tmp = new Uint8Array(2);
    ram.ramBlock!.read(0, tmp, 0, 2);
    assert.equal(hex(tmp), 'aabb');
    assert.equal(as.ldub(0x1000), 0);
    assert.equal(as.lastResult, MEMTX_DECODE_ERROR);
  });

  it('never serves a stale cached translation after the map changes', () => {
    const ms = new MemorySystem();
    const sys = ms.container('sys', 0x100000);
    const a = ms.ram('a', 0x1000);
    const b = ms.ram('b', 0x1000);
    sys.addSubregion(0x1000, a);
    const as = ms.addressSpace(sys);
    as.stb(0x1000, 0xa);
    b.ramBlock!.write(0, Uint8Array.of(0xb), 0, 1);
    assert.equal(as.ldub(0x1000), 0xa);
    sys.addSubregionOverlap(0x1000, b, 1);
    assert.equal(as.ldub(0x1000), 0xb);
    as.stb(0x1000, 0xc);
    assert.equal(a.ramBlock!.chunk(0)[0], 0xa);
    a.setAddress(0x5000);
    sys.delSubregion(b);
    assert.equal(as.ldub(0x1000), 0);
    assert.equal(as.ldub(0x5000), 0xa);
  });
});

describe('dirty tracking through the access paths', () => {
  it('marks pages for MIGRATION only while global logging is on, also after a clear', () => {
    const ms = new MemorySystem();
    const sys = ms.container('sys', 0x100000);
    const ram = ms.ram('ram', 0x10000);
    sys.addSubregion(0, ram);
    const as = ms.addressSpace(sys);
    const base = ram.ramBlock!.offset;
    ms.dirty.testAndClear(base, 0x10000, DIRTY_MEMORY_MIGRATION);
    as.stlLe(0x2000, 1);
    assert.equal(ms.dirty.getDirty(base + 0x2000, 1, DIRTY_MEMORY_MIGRATION), false);
    const heard: string[] = [];
    as.addListener({ logStart: (s, o, n) => heard.push(`start ${s.mr?.name} ${o}->${n}`) });
    ms.globalDirtyLogStart();
    assert.deepEqual(heard, [`start ram 0->${1 << DIRTY_MEMORY_MIGRATION}`]);
    as.stlLe(0x3000, 1);
    as.stlLe(0x3004, 2); // second write: the page is now cached as dirty
    assert.equal(ms.dirty.getDirty(base + 0x3000, 1, DIRTY_MEMORY_MIGRATION), true);
    const snap = ms.snapshotAndClearDirty(ram, 0, 0x10000, DIRTY_MEMORY_MIGRATION);
    assert.equal(ms.snapshotGetDirty(ram, snap, 0x3000, 0x1000), true);
    assert.equal(ms.snapshotGetDirty(ram, snap, 0x4000, 0x1000), false);
    assert.equal(ms.dirty.getDirty(base + 0x3000, 1, DIRTY_MEMORY_MIGRATION), false);
    as.stlLe(0x3008, 3); // after the clear the write must be seen again
    assert.equal(ms.dirty.getDirty(base + 0x3000, 1, DIRTY_MEMORY_MIGRATION), true);
    const m = as.map(0x6000, 0x10, true)!;
    as.unmap(m, 0x10);
    assert.equal(ms.dirty.getDirty(base + 0x6000, 1, DIRTY_MEMORY_MIGRATION), true);
    ms.globalDirtyLogStop();
    ms.dirty.testAndClear(base, 0x10000, DIRTY_MEMORY_MIGRATION);
    as.stlLe(0x7000, 1);
    assert.equal(ms.dirty.getDirty(base + 0x7000, 1, DIRTY_MEMORY_MIGRATION), false);
  });

  it('marks every page a sequential writer touches, round after round, with pages dirty in between', () => {
    // A writer sweeping the RAM twice per round, as a guest memset would, with the dirty bitmap
    // cleared between rounds as migration does. Pages already dirty may be written without marking
    // (QEMU's TLB_NOTDIRTY), but every page written after a clear must be dirty again, and no page
    // that was not written may be.
    const ms = new MemorySystem();
    const sys = ms.container('sys', 0x1000000);
    const ram = ms.ram('ram', 0x40000); // 64 pages
    sys.addSubregion(0x100000, ram);
    const as = ms.addressSpace(sys);
    const base = ram.ramBlock!.offset;
    const dirtyPages = () => {
      const pages: number[] = [];
      for (let p = 0; p < 64; p++)
        if (ms.dirty.getDirty(base + p * 0x1000, 1, DIRTY_MEMORY_MIGRATION)) pages.push(p);
      return pages;
    };
    ms.globalDirtyLogStart();
    for (const [from, to] of [
      [0, 64],
      [10, 20],
      [30, 64],
      [0, 5],
    ] as const) {
      ms.dirty.snapshotAndClear(base, 0x40000, DIRTY_MEMORY_MIGRATION);
      assert.deepEqual(dirtyPages(), []);
      for (let pass = 0; pass < 2; pass++) {
        for (let p = from; p < to; p++) {
          as.stlLe(0x100000 + p * 0x1000 + 4 * pass, pass + 1);
          as.stb(0x100000 + p * 0x1000 + 100, p);
          as.stqLe(0x100000 + p * 0x1000 + 200, BigInt(p));
        }
      }
      const want = Array.from({ length: to - from }, (_, i) => from + i);
      assert.deepEqual(dirtyPages(), want, `pages ${from}..${to}`);
      // A page next to the swept run, written now, is marked too.
      if (to < 64) {
        as.stwLe(0x100000 + to * 0x1000, 7);
        assert.equal(ms.dirty.getDirty(base + to * 0x1000, 1, DIRTY_MEMORY_MIGRATION), true);
      }
    }
    ms.globalDirtyLogStop();
    // What was written landed in RAM.
    assert.equal(as.ldub(0x100000 + 3 * 0x1000 + 100), 3);
    assert.equal(as.ldqLe(0x100000 + 63 * 0x1000 + 200), 63n);
  });
});
