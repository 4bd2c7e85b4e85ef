/**
 * @module core/device-access.property.test
 * Typed register accesses to devices of every shape QEMU's `MemoryRegionOps` allows, through the
 * device-page caches and the dispatcher's plain path (issue #15), against a model written from
 * QEMU 7.2's rules in plain bigint arithmetic:
 *
 * - `memory_region_access_valid`: an access whose offset is not aligned for its size is refused
 *   unless `valid.unaligned`; with `valid.maxAccessSize` set, sizes outside
 *   `[valid.minAccessSize, valid.maxAccessSize]` are refused. A refused access gives 0 and
 *   MEMTX_DECODE_ERROR and never reaches the device.
 * - `access_with_adjusted_size`: the callback width is the access size clamped to
 *   `[impl.minAccessSize || 1, impl.maxAccessSize || 4]`; callbacks go at offsets `offset + i` for
 *   `i = 0, w, 2w, …` below the size; each piece is masked to `w` bytes and placed at bit `8 * i`
 *   (little-endian device) or `8 * (size - w - i)` (big-endian, a right shift when negative).
 *   Writes take the same bits out of the value.
 * - `adjust_endianness`: the value is byte-swapped when the device's byte order (`native` is the
 *   target's) differs from the access's.
 * - The re-entrancy guard of a device with an owner: an access the device makes to itself from
 *   inside its own callback is refused with MEMTX_ACCESS_ERROR; the outer access is unaffected.
 *
 * Every access is made twice in a row, so that the second one finds the page in the caches.
 */

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import type { AddressSpace } from './address-space.js';
import { MemorySystem } from './system.js';
import {
  type AccessConstraints,
  type DeviceEndianness,
  MEMTX_ACCESS_ERROR,
  MEMTX_DECODE_ERROR,
  MEMTX_OK,
  type ValidConstraints,
} from './types.js';

const PAGE = 4096;
const BASE = 0xfe000000;

interface DeviceSpec {
  endianness: DeviceEndianness;
  impl: AccessConstraints;
  valid: ValidConstraints;
  owned: boolean;
}

const widthArb = fc.constantFrom(0, 1, 2, 4, 8);
const specArb: fc.Arbitrary<DeviceSpec> = fc.record({
  endianness: fc.constantFrom<DeviceEndianness>('little', 'big', 'native'),
  impl: fc.record({ minAccessSize: widthArb, maxAccessSize: widthArb }),
  valid: fc.record({ minAccessSize: widthArb, maxAccessSize: widthArb, unaligned: fc.boolean() }),
  owned: fc.boolean(),
});

interface Access {
  dev: number;
  write: boolean;
  size: 1 | 2 | 4 | 8;
  be: boolean;
  off: number;
  value: bigint;
  /** The callback makes an access to its own device first (only meaningful for owned devices). */
  reenter: boolean;
}

const accessArb = (devices: number): fc.Arbitrary<Access> =>
  fc.record({
    dev: fc.integer({ min: 0, max: devices - 1 }),
    write: fc.boolean(),
    size: fc.constantFrom<1 | 2 | 4 | 8>(1, 2, 4, 8),
    be: fc.boolean(),
    // A few pages, mostly aligned offsets; some unaligned ones to meet the validity rules.
    off: fc.oneof(
      { weight: 5, arbitrary: fc.integer({ min: 0, max: 2 * (PAGE / 8) - 1 }).map((n) => n * 8) },
      { weight: 1, arbitrary: fc.integer({ min: 0, max: 2 * PAGE - 8 }) },
    ),
    value: fc.bigInt({ min: 0n, max: 2n ** 64n - 1n }),
    reenter: fc.boolean(),
  });

/** What a device returns for a read of `w` bytes at `offset` (w ≤ 4: a number, 8: a bigint). */
function devValue(dev: number, offset: number, w: number): bigint {
  const x = BigInt((Math.imul(offset + 1 + dev * 7919, 0x9e3779b1) ^ (w * 0x1010101)) >>> 0);
  const y = BigInt((Math.imul(offset + 3, 0x85ebca6b) ^ dev) >>> 0);
  return w === 8 ? (y << 32n) | x : x;
}

const mask = (size: number): bigint => (1n << BigInt(8 * size)) - 1n;

function bswap(v: bigint, size: number): bigint {
  let r = 0n;
  for (let i = 0; i < size; i++) r = (r << 8n) | ((v >> BigInt(8 * i)) & 0xffn);
  return r;
}

/** The model's answer: the value and result of the access, and the callbacks it makes. */
function model(
  spec: DeviceSpec,
  dev: number,
  targetBe: boolean,
  a: Access,
): { value: bigint; result: number; calls: string[] } {
  const { size, off } = a;
  const v = spec.valid;
  const validOk =
    (v.unaligned || off % size === 0) &&
    (!v.maxAccessSize || (size <= v.maxAccessSize && size >= (v.minAccessSize ?? 0)));
  if (!validOk) return { value: 0n, result: MEMTX_DECODE_ERROR, calls: [] };
  const implMin = spec.impl.minAccessSize || 1;
  const implMax = spec.impl.maxAccessSize || 4;
  const w = Math.max(Math.min(size, implMax), implMin);
  const devBe = spec.endianness === 'big' || (spec.endianness === 'native' && targetBe);
  const calls: string[] = [];
  if (a.write) {
    let dv = a.value & mask(size);
    if (size > 1 && devBe !== a.be) dv = bswap(dv, size);
    for (let i = 0; i < size; i += w) {
      const shift = devBe ? (size - w - i) * 8 : i * 8;
      const piece = (shift >= 0 ? dv >> BigInt(shift) : dv << BigInt(-shift)) & mask(w);
      calls.push(`w ${off + i} ${w} ${piece}`);
    }
    return { value: 0n, result: MEMTX_OK, calls };
  }
  let dv = 0n;
  for (let i = 0; i < size; i += w) {
    calls.push(`r ${off + i} ${w}`);
    const piece = devValue(dev, off + i, w) & mask(w);
    const shift = devBe ? (size - w - i) * 8 : i * 8;
    dv |= shift >= 0 ? piece << BigInt(shift) : piece >> BigInt(-shift);
  }
  dv &= mask(size);
  if (size > 1 && devBe !== a.be) dv = bswap(dv, size);
  return { value: dv, result: MEMTX_OK, calls };
}

/** The typed helper for an access. */
function access(as: AddressSpace, addr: number, a: Access): bigint {
  const n = Number(a.value & mask(Math.min(a.size, 4)));
  if (a.write) {
    if (a.size === 1) as.stb(addr, n);
    else if (a.size === 2) (a.be ? as.stwBe : as.stwLe).call(as, addr, n);
    else if (a.size === 4) (a.be ? as.stlBe : as.stlLe).call(as, addr, n);
    else (a.be ? as.stqBe : as.stqLe).call(as, addr, a.value);
    return 0n;
  }
  if (a.size === 1) return BigInt(as.ldub(addr));
  if (a.size === 2) return BigInt(a.be ? as.lduwBe(addr) : as.lduwLe(addr));
  if (a.size === 4) return BigInt(a.be ? as.ldlBe(addr) : as.ldlLe(addr));
  return a.be ? as.ldqBe(addr) : as.ldqLe(addr);
}

describe('typed register accesses vs QEMU’s dispatch rules', () => {
  it('give the model’s values, results and callbacks for every device shape, cached or not', () => {
    fc.assert(
      fc.property(
        fc.boolean(),
        fc.array(specArb, { minLength: 1, maxLength: 4, size: 'max' }),
        fc.array(accessArb(4), { minLength: 1, maxLength: 80, size: 'max' }),
        (targetBe, specs, accesses) => {
          const ms = new MemorySystem({ bigEndian: targetBe });
          const sys = ms.container('sys', 2n ** 64n - 1n);
          sys.addSubregion(0, ms.ram('ram', 0x10000));
          const as = ms.addressSpace(sys, 'memory');
          let calls: string[] = [];
          let current: Access | null = null;
          let nested: number[] = [];
          specs.forEach((spec, d) => {
            const addr = BASE + d * 2 * PAGE;
            // The first callback of an access that asks for it makes a load from its own device.
            const reenter = (): void => {
              if (current?.reenter && spec.owned) {
                const a = current;
                current = null;
                as.ldub(addr + (a.off & ~7));
                nested.push(as.lastResult);
              }
            };
            const mr = ms.io(
              `dev${d}`,
              2 * PAGE,
              {
                read: (o, w) => {
                  reenter();
                  calls.push(`r ${o} ${w}`);
                  const v = devValue(d, o, w);
                  return w === 8 ? v : Number(v);
                },
                write: (o, v, w) => {
                  reenter();
                  calls.push(`w ${o} ${w} ${BigInt(v)}`);
                },
                endianness: spec.endianness,
                impl: spec.impl,
                valid: spec.valid,
              },
              spec.owned ? { owner: { name: `owner${d}` } } : {},
            );
            sys.addSubregion(addr, mr);
          });
          for (const a0 of accesses) {
            const a = { ...a0, dev: a0.dev % specs.length };
            const spec = specs[a.dev]!;
            const addr = BASE + a.dev * 2 * PAGE + a.off;
            const want = model(spec, a.dev, targetBe, a);
            for (let round = 0; round < 2; round++) {
              calls = [];
              nested = [];
              current = a;
              const got = access(as, addr, a);
              current = null;
              const what = `${a.write ? 'store' : 'load'} of ${a.size} (${a.be ? 'BE' : 'LE'}) at ${a.off} of ${JSON.stringify(spec)}, round ${round}`;
              assert.equal(got, want.value, what);
              assert.equal(as.lastResult, want.result, what);
              assert.deepEqual(calls, want.calls, what);
              // A device that loads a byte from itself inside its own callback is refused by the
              // guard (after the validity check, which comes first); its own access completes.
              if (a.reenter && spec.owned && want.calls.length > 0) {
                const byte = model(spec, a.dev, targetBe, { ...a, write: false, size: 1, off: a.off & ~7 });
                const refused = byte.result === MEMTX_OK ? MEMTX_ACCESS_ERROR : byte.result;
                assert.deepEqual(nested, [refused], what);
              }
            }
          }
        },
      ),
      { seed: 15, numRuns: 400 },
    );
  });
});

describe('adjusted register accesses, worked by hand from access_with_adjusted_size', () => {
  /** A one-page device whose every read callback returns `value`, logging its calls. */
  function machine(ops: { endianness: DeviceEndianness; impl?: AccessConstraints }, value: number) {
    const ms = new MemorySystem();
    const sys = ms.container('sys', 2n ** 64n - 1n);
    const calls: string[] = [];
    sys.addSubregion(
      BASE,
      ms.io('dev', PAGE, {
        ...ops,
        read: (o, w) => {
          calls.push(`r ${o} ${w}`);
          return value;
        },
        write: (o, v, w) => {
          calls.push(`w ${o} ${w} 0x${v.toString(16)}`);
        },
      }),
    );
    return { as: ms.addressSpace(sys, 'memory'), calls };
  }

  it('widen a byte load to a 4-byte register: the low byte, or the high one on a big-endian device', () => {
    // Read 0x11223344 at offset 1 with width 4; LE: shift 0 keeps 0x44. BE: shift (1 - 4 - 0) * 8
    // = -24 moves 0x11 down.
    for (const [endianness, want] of [
      ['little', 0x44],
      ['big', 0x11],
    ] as const) {
      const { as, calls } = machine({ endianness, impl: { minAccessSize: 4, maxAccessSize: 4 } }, 0x11223344);
      for (let round = 0; round < 2; round++) assert.equal(as.ldub(BASE + 1), want);
      assert.deepEqual(calls, ['r 1 4', 'r 1 4']);
    }
  });

  it('widen a little-endian 16-bit load from a big-endian 4-byte register, then swap it', () => {
    // Width 4 at offset 2: 0x11223344 >> 16 = 0x1122 in the device's order; an LE access of a BE
    // device swaps it to 0x2211.
    const { as, calls } = machine(
      { endianness: 'big', impl: { minAccessSize: 4, maxAccessSize: 4 } },
      0x11223344,
    );
    for (let round = 0; round < 2; round++) assert.equal(as.lduwLe(BASE + 2), 0x2211);
    assert.deepEqual(calls, ['r 2 4', 'r 2 4']);
  });

  it('split an 8-byte load into 4-byte callbacks, low offset in the low half', () => {
    const { as, calls } = machine({ endianness: 'little' }, 0x89abcdef);
    for (let round = 0; round < 2; round++) assert.equal(as.ldqLe(BASE + 8), 0x89abcdef89abcdefn);
    assert.deepEqual(calls, ['r 8 4', 'r 12 4', 'r 8 4', 'r 12 4']);
  });

  it('split a big-endian 8-byte store into 2-byte callbacks of a big-endian device, high bytes first', () => {
    // No swap (same byte order); piece i has shift (8 - 2 - i) * 8: 0x0102 at 0, 0x0304 at 2, …
    const { as, calls } = machine({ endianness: 'big', impl: { minAccessSize: 2, maxAccessSize: 2 } }, 0);
    as.stqBe(BASE, 0x0102030405060708n);
    assert.deepEqual(calls, ['w 0 2 0x102', 'w 2 2 0x304', 'w 4 2 0x506', 'w 6 2 0x708']);
  });

  it('widen a byte store: the value at the low end of the register, or the high end when big-endian', () => {
    for (const [endianness, want] of [
      ['little', 'w 1 4 0xab'],
      ['big', 'w 1 4 0xab000000'],
    ] as const) {
      const { as, calls } = machine({ endianness, impl: { minAccessSize: 4, maxAccessSize: 4 } }, 0);
      for (let round = 0; round < 2; round++) as.stb(BASE + 1, 0xab);
      assert.deepEqual(calls, [want, want]);
    }
  });
});
