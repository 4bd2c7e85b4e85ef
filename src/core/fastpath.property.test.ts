/**
 * @module core/fastpath.property.test
 * Property test of the typed-access fast paths: RAM windows, the TLB, the per-kind device pages,
 * the disabled windows after a failed access, and the dirty-run write window while migration
 * logging is on. One machine, random sequences of typed loads and stores of every size and byte
 * order (aligned or not, hitting two RAM ranges, a device, unassigned space), moves of one RAM
 * range, dirty-log start/stop and clears, each checked against a byte model written from the rules:
 *
 * - RAM: direct, in the access's byte order; a store marks its pages dirty for MIGRATION while
 *   global logging is on (and only then); clearing forgets them.
 * - Unassigned: loads give 0, stores are dropped, both with MEMTX_DECODE_ERROR.
 * - The devices (little-endian, implementation sizes 1..4, no `valid.unaligned`; one with an
 *   owner, whose calls take the re-entrancy guard): an unaligned
 *   access is refused with MEMTX_DECODE_ERROR before the device sees it (memory_region_access_valid);
 *   an aligned one of 1, 2 or 4 bytes is one callback, byte-swapped for a big-endian access
 *   (adjust_endianness); 8 bytes are two 4-byte callbacks, low offset first, combined
 *   little-endian (access_with_adjusted_size), the whole swapped for a big-endian access.
 * - A fraction as an address is refused with a typed error.
 */

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { DIRTY_MEMORY_MIGRATION } from './dirty.js';
import { InvalidArgumentError } from './errors.js';
import { MemorySystem } from './system.js';
import { MEMTX_DECODE_ERROR, MEMTX_OK } from './types.js';

const PAGE = 4096;
const A_BASE = 0x10000;
const A_SIZE = 0x20000;
const B_SIZE = 0x10000;
const B_BASES = [0x40000000, 0x80000000];
const DEV = 0xfe000000;
const ODEV = 0xfe001000; // the same device model with an owner: its calls take the re-entrancy guard
const NONE = 0x30000000;

type Target = 'a' | 'b' | 'dev' | 'odev' | 'none';
type Op =
  | { t: 'ld' | 'st'; size: 1 | 2 | 4 | 8; be: boolean; to: Target; off: number; value: number }
  | { t: 'move' }
  | { t: 'log'; on: boolean }
  | { t: 'clear' }
  | { t: 'fraction' };

const accessArb: fc.Arbitrary<Op> = fc
  .record({
    t: fc.constantFrom('ld' as const, 'st' as const),
    size: fc.constantFrom(1 as const, 2 as const, 4 as const, 8 as const),
    be: fc.boolean(),
    to: fc.constantFrom<Target>('a', 'a', 'a', 'b', 'b', 'dev', 'odev', 'none'),
    // Offsets cluster on a few pages, so pages are hit again and the caches fill.
    off: fc.oneof(
      {
        weight: 4,
        arbitrary: fc
          .tuple(fc.integer({ min: 0, max: 3 }), fc.integer({ min: 0, max: PAGE - 1 }))
          .map(([p, o]) => p * PAGE + o),
      },
      { weight: 1, arbitrary: fc.integer({ min: 0, max: B_SIZE }) },
    ),
    value: fc.integer({ min: 0, max: 0xffffffff }),
  })
  .map((o) => ({ ...o, off: Math.min(o.off, (o.to === 'dev' || o.to === 'odev' ? PAGE : B_SIZE) - o.size) }));

const opArb: fc.Arbitrary<Op> = fc.oneof(
  { weight: 30, arbitrary: accessArb },
  { weight: 1, arbitrary: fc.constant<Op>({ t: 'move' }) },
  { weight: 1, arbitrary: fc.boolean().map<Op>((on) => ({ t: 'log', on })) },
  { weight: 2, arbitrary: fc.constant<Op>({ t: 'clear' }) },
  { weight: 1, arbitrary: fc.constant<Op>({ t: 'fraction' }) },
);

/** What the device returns for a read of `size` bytes at `offset` (device order, full 32 bits). */
function devValue(offset: number, size: number): number {
  return (Math.imul(offset + 1, 0x9e3779b1) ^ size) >>> 0;
}

function bswap(v: bigint, size: number): bigint {
  let r = 0n;
  for (let i = 0; i < size; i++) r = (r << 8n) | ((v >> BigInt(8 * i)) & 0xffn);
  return r;
}

function load(bytes: Uint8Array, off: number, size: number, be: boolean): bigint {
  let v = 0n;
  for (let i = 0; i < size; i++) v |= BigInt(bytes[off + i]!) << BigInt(8 * (be ? size - 1 - i : i));
  return v;
}

function store(bytes: Uint8Array, off: number, size: number, be: boolean, v: bigint): void {
  for (let i = 0; i < size; i++) bytes[off + i] = Number((v >> BigInt(8 * (be ? size - 1 - i : i))) & 0xffn);
}

describe('typed accesses through the fast paths vs a byte model', () => {
  it('give the model values, results, device calls and dirty pages, whatever the cache state', () => {
    fc.assert(
      fc.property(fc.boolean(), fc.array(opArb, { minLength: 1, maxLength: 120 }), (logFirst, ops) => {
        const ms = new MemorySystem();
        const sys = ms.container('sys', 2n ** 64n - 1n);
        const a = ms.ram('a', A_SIZE);
        const b = ms.ram('b', B_SIZE);
        const calls: string[] = [];
        const dev = ms.io('dev', PAGE, {
          read: (o, s) => {
            calls.push(`r ${o} ${s}`);
            return devValue(o, s);
          },
          write: (o, v, s) => calls.push(`w ${o} ${s} ${v}`),
          endianness: 'little',
        });
        sys.addSubregion(A_BASE, a);
        sys.addSubregion(B_BASES[0]!, b);
        sys.addSubregion(DEV, dev);
        const odev = ms.io(
          'odev',
          PAGE,
          {
            read: (o, s) => {
              calls.push(`r ${o} ${s}`);
              return devValue(o, s);
            },
            write: (o, v, s) => calls.push(`w ${o} ${s} ${v}`),
            endianness: 'little',
          },
          { owner: { name: 'owned-device' } },
        );
        sys.addSubregion(ODEV, odev);
        const as = ms.addressSpace(sys, 'memory');
        const mem = { a: new Uint8Array(A_SIZE), b: new Uint8Array(B_SIZE) };
        const blocks = { a: a.ramBlock!, b: b.ramBlock! };
        // New RAM blocks start dirty for every client, as QEMU's; start from a clean bitmap.
        for (const k of ['a', 'b'] as const) {
          ms.dirty.snapshotAndClear(blocks[k].offset, blocks[k].usedLength, DIRTY_MEMORY_MIGRATION);
        }
        const dirty = { a: new Set<number>(), b: new Set<number>() };
        let bBase = 0;
        let logging = logFirst;
        if (logging) ms.globalDirtyLogStart(1);
        let expectCalls: string[] = [];

        for (const [n, op] of ops.entries()) {
          const at = () => `op ${n}: ${JSON.stringify(op)}`;
          if (op.t === 'move') {
            bBase ^= 1;
            b.setAddress(B_BASES[bBase]!);
            continue;
          }
          if (op.t === 'log') {
            if (op.on && !logging) ms.globalDirtyLogStart(1);
            if (!op.on && logging) ms.globalDirtyLogStop(1);
            logging = op.on;
            continue;
          }
          if (op.t === 'clear') {
            for (const k of ['a', 'b'] as const) {
              ms.dirty.snapshotAndClear(blocks[k].offset, blocks[k].usedLength, DIRTY_MEMORY_MIGRATION);
              dirty[k].clear();
            }
            continue;
          }
          if (op.t === 'fraction') {
            assert.throws(() => as.ldlLe(A_BASE + 0.5), InvalidArgumentError, at());
            assert.throws(() => as.stwLe(A_BASE + 2.25, 1), InvalidArgumentError, at());
            continue;
          }
          const { size, be, to, off } = op;
          const base =
            to === 'a'
              ? A_BASE
              : to === 'b'
                ? B_BASES[bBase]!
                : to === 'dev'
                  ? DEV
                  : to === 'odev'
                    ? ODEV
                    : NONE;
          const addr = base + off;
          const v64 = (BigInt(op.value) << 32n) | BigInt((op.value ^ 0x5a5a5a5a) >>> 0);
          const value = size === 8 ? v64 : BigInt.asUintN(size * 8, BigInt(op.value));
          let got: bigint | undefined;
          if (op.t === 'ld') {
            got = BigInt(
              size === 1
                ? as.ldub(addr)
                : size === 2
                  ? be
                    ? as.lduwBe(addr)
                    : as.lduwLe(addr)
                  : size === 4
                    ? be
                      ? as.ldlBe(addr)
                      : as.ldlLe(addr)
                    : be
                      ? as.ldqBe(addr)
                      : as.ldqLe(addr),
            );
          } else if (size === 1) as.stb(addr, op.value);
          else if (size === 2) (be ? as.stwBe : as.stwLe).call(as, addr, op.value);
          else if (size === 4) (be ? as.stlBe : as.stlLe).call(as, addr, op.value);
          else (be ? as.stqBe : as.stqLe).call(as, addr, v64);

          let want = 0n;
          let result = MEMTX_OK;
          if (to === 'a' || to === 'b') {
            if (op.t === 'ld') want = load(mem[to], off, size, be);
            else {
              store(mem[to], off, size, be, value);
              if (logging) {
                dirty[to].add(Math.floor(off / PAGE));
                dirty[to].add(Math.floor((off + size - 1) / PAGE));
              }
            }
          } else if (to === 'none') {
            result = MEMTX_DECODE_ERROR;
          } else if (off % size !== 0) {
            result = MEMTX_DECODE_ERROR; // refused before the device is called
          } else if (op.t === 'ld') {
            let v: bigint;
            if (size === 8) {
              expectCalls.push(`r ${off} 4`, `r ${off + 4} 4`);
              v = BigInt(devValue(off, 4)) | (BigInt(devValue(off + 4, 4)) << 32n);
            } else {
              expectCalls.push(`r ${off} ${size}`);
              v = BigInt.asUintN(size * 8, BigInt(devValue(off, size)));
            }
            want = be ? bswap(v, size) : v;
          } else {
            const dv = be ? bswap(value, size) : value;
            if (size === 8) {
              expectCalls.push(`w ${off} 4 ${dv & 0xffffffffn}`, `w ${off + 4} 4 ${dv >> 32n}`);
            } else {
              expectCalls.push(`w ${off} ${size} ${dv}`);
            }
          }
          if (op.t === 'ld') assert.equal(got, want, `loaded value, ${at()}`);
          assert.equal(as.lastResult, result, `lastResult, ${at()}`);
          assert.deepEqual(calls, expectCalls, `device calls, ${at()}`);
        }
        // Guest memory and the dirty pages agree with the model at the end.
        for (const k of ['a', 'b'] as const) {
          const bytes = new Uint8Array(mem[k].length);
          blocks[k].read(0, bytes, 0, bytes.length);
          assert.ok(Buffer.from(bytes).equals(Buffer.from(mem[k])), `RAM ${k} contents`);
          for (let p = 0; p < mem[k].length / PAGE; p++) {
            const d = ms.dirty.getDirty(blocks[k].offset + p * PAGE, 1, DIRTY_MEMORY_MIGRATION);
            assert.equal(d, dirty[k].has(p), `RAM ${k} page ${p} dirty`);
          }
        }
        expectCalls = [];
      }),
      { numRuns: 3000 },
    );
  });
});
