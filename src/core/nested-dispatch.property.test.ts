/**
 * @module core/nested-dispatch.property.test
 * Devices that do DMA from their own callbacks (issue #10): into RAM, into nothing, into devices
 * that fail, into devices of the same owner (the re-entrancy guard) and into themselves. Every
 * access, nested or not, must report its own value and result. The expected log comes from a small
 * model of QEMU's rules written here: a device answers its value and result; an access to a device
 * whose owner is already inside an access is refused with MEMTX_ACCESS_ERROR and reads 0 (QEMU
 * 7.2.x re-entrancy guard); unassigned memory reads 0 with MEMTX_DECODE_ERROR.
 */

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import type { AddressSpace } from './address-space.js';
import { MemorySystem } from './system.js';
import {
  MEMTX_ACCESS_ERROR,
  MEMTX_DECODE_ERROR,
  MEMTX_ERROR,
  MEMTX_OK,
  type MemoryRegionOps,
  type MemTxResult,
} from './types.js';

const RAM = 0;
const DEV_BASE = 0x10000;
const UNASSIGNED = 0x80000;

/** One access: where (`-1` RAM, `-2` unassigned, else a device index), size, read or write. */
interface Op {
  target: number;
  size: 1 | 2 | 4;
  write: boolean;
  value: number;
}

interface DeviceSpec {
  owner: number;
  value: number;
  fails: boolean;
  /** Plain read/write callbacks (the direct-call fast path) or the *WithAttrs ones. */
  plain: boolean;
  nested: Op[];
}

const opArb = (devices: number): fc.Arbitrary<Op> =>
  fc.record({
    target: fc.integer({ min: -2, max: devices - 1 }),
    size: fc.constantFrom(1 as const, 2 as const, 4 as const),
    write: fc.boolean(),
    value: fc.nat(0xffffffff),
  });

const worldArb = fc.integer({ min: 1, max: 4 }).chain((n) =>
  fc.record({
    devices: fc.array(
      fc.record({
        owner: fc.nat(n - 1),
        value: fc.nat(0xffffffff),
        fails: fc.boolean(),
        plain: fc.boolean(),
        nested: fc.array(opArb(n), { maxLength: 3 }),
      }),
      { minLength: n, maxLength: n },
    ),
    ops: fc.array(opArb(n), { minLength: 1, maxLength: 8 }),
  }),
);

const mask = (v: number, size: number) => (size === 4 ? v >>> 0 : v & ((1 << (size * 8)) - 1));
const addrOf = (op: Op, i: number) =>
  op.target === -1 ? RAM + ((i * 4) & 0xff) : op.target === -2 ? UNASSIGNED : DEV_BASE + op.target * 0x1000;

/** What the machine must log: `[depth, value, result]` per access, in order, and RAM at the end. */
function model(devs: DeviceSpec[], ops: Op[]): { log: Array<[number, number, number]>; ram: Uint8Array } {
  const ram = new Uint8Array(0x1000);
  const log: Array<[number, number, number]> = [];
  const engaged = new Set<number>();
  let counter = 0;
  const access = (op: Op, depth: number): [number, MemTxResult] => {
    const i = counter++;
    const a = addrOf(op, i);
    if (op.target === -1) {
      if (op.write) {
        for (let k = 0; k < op.size; k++) ram[a + k] = (op.value >>> (8 * k)) & 0xff;
        return [0, MEMTX_OK];
      }
      let v = 0;
      for (let k = op.size - 1; k >= 0; k--) v = v * 256 + ram[a + k]!;
      return [v, MEMTX_OK];
    }
    if (op.target === -2) return [0, MEMTX_DECODE_ERROR];
    const d = devs[op.target]!;
    if (engaged.has(d.owner)) return [0, MEMTX_ACCESS_ERROR];
    engaged.add(d.owner);
    for (const n of d.nested) {
      const [v, r] = access(n, depth + 1);
      log.push([depth + 1, n.write ? 0 : v, r]);
    }
    engaged.delete(d.owner);
    return [op.write ? 0 : mask(d.value, op.size), d.fails ? MEMTX_ERROR : MEMTX_OK];
  };
  for (const op of ops) {
    const [v, r] = access(op, 0);
    log.push([0, op.write ? 0 : v, r]);
  }
  return { log, ram };
}

/** The same accesses on a real machine, logging what each one saw. */
function run(devs: DeviceSpec[], ops: Op[]): { log: Array<[number, number, number]>; ram: Uint8Array } {
  const ms = new MemorySystem();
  const system = ms.container('system', 0x100000);
  const ram = ms.ram('ram', 0x1000);
  system.addSubregion(RAM, ram);
  const owners = Array.from({ length: devs.length }, (_, k) => ({ name: `owner${k}` }));
  const log: Array<[number, number, number]> = [];
  let as!: AddressSpace;
  let counter = 0;
  const access = (op: Op, depth: number): void => {
    const a = addrOf(op, counter++);
    let v = 0;
    if (op.write) {
      if (op.size === 1) as.stb(a, op.value & 0xff);
      else if (op.size === 2) as.stwLe(a, op.value & 0xffff);
      else as.stlLe(a, op.value);
    } else {
      v = op.size === 1 ? as.ldub(a) : op.size === 2 ? as.lduwLe(a) : as.ldlLe(a);
    }
    log.push([depth, v, as.lastResult]);
  };
  let depth = 0;
  devs.forEach((d, k) => {
    const nested = () => {
      depth++;
      for (const n of d.nested) access(n, depth);
      depth--;
    };
    const ops: MemoryRegionOps =
      d.plain && !d.fails
        ? {
            endianness: 'little',
            read: () => {
              nested();
              return d.value;
            },
            write: () => nested(),
          }
        : {
            endianness: 'little',
            readWithAttrs: (_o, _s, _a, data) => {
              data.value = d.value; // answered first, then the DMA: the answer must survive it
              nested();
              return d.fails ? MEMTX_ERROR : MEMTX_OK;
            },
            writeWithAttrs: () => {
              nested();
              return d.fails ? MEMTX_ERROR : MEMTX_OK;
            },
          };
    system.addSubregion(DEV_BASE + k * 0x1000, ms.io(`dev${k}`, 0x100, ops, { owner: owners[d.owner]! }));
  });
  as = ms.addressSpace(system, 'memory');
  for (const op of ops) access(op, 0);
  const bytes = new Uint8Array(0x1000);
  ms.readRam(ram, 0, bytes);
  // Both logs record an access when it completes: nested ones before the access they are in.
  return { log, ram: bytes };
}

describe('devices doing DMA from their callbacks (issue #10)', () => {
  it('every access reports its own value and result, and RAM ends as the model says', () => {
    fc.assert(
      fc.property(worldArb, ({ devices, ops }) => {
        const want = model(devices, ops);
        const got = run(devices, ops);
        assert.deepEqual(got.log, want.log);
        assert.deepEqual(got.ram, want.ram);
      }),
      { numRuns: 400, seed: 1203 },
    );
  });
});
