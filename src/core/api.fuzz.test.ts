/**
 * A fixed-seed fuzz of the library API (issue #11): random calls with random, often bad, arguments
 * against one machine. Every call either succeeds or throws a memtree error with a `code`; a call
 * that throws leaves the views, the tree, RAM and the dirty bitmaps exactly as they were.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { MemtreeError } from './errors.js';
import type { MemoryRegion } from './region.js';
import { MemorySystem } from './system.js';
import { fingerprintText } from './test-support/state.js';

/** xorshift32: the same sequence on every run. */
function rng(seed: number): (n: number) => number {
  let x = seed >>> 0 || 1;
  return (n) => {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    return x % n;
  };
}

const SEEDS = [1, 0xc0ffee, 20261203];
const CALLS_PER_SEED = 1500;

describe('library API fuzz (issue #11)', () => {
  for (const seed of SEEDS) {
    it(`seed ${seed}: every failure is typed and changes nothing`, () => {
      const r = rng(seed);
      const pick = <T>(xs: readonly T[]): T => xs[r(xs.length)]!;
      const ms = new MemorySystem({ translatesCode: seed % 2 === 0 });
      const system = ms.container('system', 2n ** 64n - 1n);
      const ram = ms.ram('ram', 0x4000);
      const rom = ms.rom('rom', 0x2000);
      const dev = ms.io(
        'dev',
        0x100,
        { read: (o) => o, write: () => {}, endianness: 'little' },
        { owner: {} },
      );
      const romd = ms.romDevice('romd', 0x1000, { read: () => 1, write: () => {} });
      const win = ms.alias('win', ram, 0x1000, 0x2000);
      system.addSubregion(0, ram);
      system.addSubregion(0x10000, rom);
      system.addSubregion(0x20000, dev);
      system.addSubregion(0x30000, romd);
      system.addSubregion(0x40000, win);
      const as = ms.addressSpace(system, 'memory');
      const other = new MemorySystem();
      const foreign = other.ram('foreign', 0x1000);
      const regions: MemoryRegion[] = [system, ram, rom, dev, romd, win];
      const sizes = [
        0,
        1,
        0x1000,
        0x4000,
        -1,
        0.5,
        Number.NaN,
        2 ** 53,
        2n ** 64n,
        2n ** 64n - 1n,
        2n ** 70n,
        '0x10',
        null,
      ];
      const addrs = [
        0,
        4,
        0xfff,
        0x1000,
        0x20000,
        0x20004,
        0x40000,
        0x50000,
        -1,
        -1n,
        2 ** 53,
        2n ** 64n - 1n,
        2n ** 64n,
        0.5,
        'x',
        undefined,
      ];
      const values = [0, 1, 0xff, 0xffffffff, -1, 1n, 2n ** 64n - 1n, 'v', null, Number.NaN];
      const bools = [true, false, 'yes', 0, 1, null, undefined];
      const ints = [0, 1, 2, 3, 7, 8, -1, 9, 0.5, Number.NaN, 'x'];
      const names = ['n', 'ram', null, Symbol('s'), 5, ''];
      const region = (): unknown => (r(12) === 0 ? pick([foreign, null, {}, 7]) : pick(regions));
      // The receiver of a method is always a region (of this system, or now and then of another).
      const self = (): MemoryRegion => (r(12) === 0 ? foreign : pick(regions));
      const made = (mr: unknown) => {
        if (regions.length < 40) regions.push(mr as MemoryRegion);
      };
      const bad = <T>(v: unknown) => v as T;
      const calls: Array<[string, () => unknown]> = [
        ['ram', () => made(ms.ram(bad(pick(names)), bad(pick(sizes))))],
        ['container', () => made(ms.container(bad(pick(names)), bad(pick(sizes))))],
        ['alias', () => made(ms.alias(bad(pick(names)), bad(region()), bad(pick(sizes)), bad(pick(sizes))))],
        [
          'io',
          () => made(ms.io(bad(pick(names)), bad(pick(sizes)), bad(pick([null, {}, 5, { read: () => 0 }])))),
        ],
        ['addSubregion', () => self().addSubregion(bad(pick(addrs)), bad(region()))],
        [
          'addSubregionOverlap',
          () => self().addSubregionOverlap(bad(pick(addrs)), bad(region()), bad(pick(ints))),
        ],
        ['delSubregion', () => self().delSubregion(bad(region()))],
        ['setEnabled', () => self().setEnabled(bad(pick(bools)))],
        ['setAddress', () => self().setAddress(bad(pick(addrs)))],
        ['setSize', () => self().setSize(bad(pick(sizes)))],
        ['setAliasOffset', () => self().setAliasOffset(bad(pick(sizes)))],
        ['setReadonly', () => self().setReadonly(bad(pick(bools)))],
        ['setNonvolatile', () => self().setNonvolatile(bad(pick(bools)))],
        ['setRomdMode', () => self().setRomdMode(bad(pick(bools)))],
        ['setLog', () => self().setLog(bad(pick(bools)), bad(pick(ints)))],
        [
          'snapshotAndClearDirty',
          () => ms.snapshotAndClearDirty(bad(region()), bad(pick(sizes)), bad(pick(sizes)), bad(pick(ints))),
        ],
        ['setDirty', () => ms.setDirty(bad(region()), bad(pick(sizes)), bad(pick(sizes)))],
        [
          'resetDirty',
          () => ms.resetDirty(bad(region()), bad(pick(sizes)), bad(pick(sizes)), bad(pick(ints))),
        ],
        [
          'writeRam',
          () => ms.writeRam(bad(region()), bad(pick(sizes)), bad(pick([new Uint8Array(3), null, 'x']))),
        ],
        ['readRam', () => ms.readRam(bad(region()), bad(pick(sizes)), bad(pick([new Uint8Array(3), null])))],
        ['ramResize', () => ms.ramResize(bad(region()), bad(pick(sizes)))],
        ['globalDirtyLogStart', () => ms.globalDirtyLogStart(bad(pick(ints)))],
        ['globalDirtyLogStop', () => ms.globalDirtyLogStop(bad(pick(ints)))],
        ['setRunning', () => ms.setRunning(bad(pick(bools)))],
        ['ldub', () => as.ldub(bad(pick(addrs)))],
        ['lduwBe', () => as.lduwBe(bad(pick(addrs)))],
        ['ldlLe', () => as.ldlLe(bad(pick(addrs)))],
        ['ldqBe', () => as.ldqBe(bad(pick(addrs)))],
        ['stb', () => as.stb(bad(pick(addrs)), bad(pick(values)))],
        ['stwLe', () => as.stwLe(bad(pick(addrs)), bad(pick(values)))],
        ['stlBe', () => as.stlBe(bad(pick(addrs)), bad(pick(values)))],
        ['stqLe', () => as.stqLe(bad(pick(addrs)), bad(pick(values)))],
        ['load', () => as.load(bad(pick(addrs)), bad(pick(ints)))],
        ['store', () => as.store(bad(pick(addrs)), bad(pick(ints)), bad(pick(values)))],
        ['read', () => as.read(bad(pick(addrs)), bad(pick([new Uint8Array(8), null, 'x'])))],
        ['write', () => as.write(bad(pick(addrs)), bad(pick([new Uint8Array(8), null])))],
        ['writeRom', () => as.writeRom(bad(pick(addrs)), bad(pick([new Uint8Array(8), null])))],
        ['lookup', () => as.lookup(bad(pick(addrs)))],
        ['accessValid', () => as.accessValid(bad(pick(addrs)), bad(pick(ints)), bad(pick(bools)))],
        ['addressSpace', () => ms.addressSpace(bad(region()), 'x').destroy()],
        ['transaction', () => ms.transaction(bad(pick([5, null, () => 1])))],
        ['commit', () => ms.commit()],
      ];
      for (let i = 0; i < CALLS_PER_SEED; i++) {
        const [name, call] = pick(calls);
        const before = fingerprintText(ms, regions);
        try {
          call();
        } catch (e) {
          if (!(e instanceof MemtreeError)) {
            assert.fail(`call ${i} (${name}) threw an untyped ${String(e)}\n${(e as Error).stack}`);
          }
          assert.ok(e.code.startsWith('ERR_'), `call ${i} (${name}): code ${e.code}`);
          const after = fingerprintText(ms, regions);
          if (after !== before)
            assert.fail(`call ${i} (${name}) failed with ${e.code} but changed the state: ${e.message}`);
        }
      }
      assert.equal(ms.transactionDepth, 0);
    });
  }
});
