// Core benchmarks (issue #2): guest RAM access through an AddressSpace against a raw typed array,
// I/O dispatch against a direct call, bulk copies against TypedArray.prototype.set, and the cost
// of a one-region commit in a 10,000-region tree.

import { MemorySystem } from '../dist/index.js';
import { compare, rng, timeMs } from './harness.mjs';

const GiB = 2 ** 30;
const N = 1 << 20; // addresses per pass, generated before timing
// Loops fold what they read into a local int32 (or bigint) and hand it to a shared sink once per
// round: adding each value to a captured variable would box it into a heap number on every
// iteration, an allocation that would dominate both sides of the comparison.

function addresses(span, align) {
  const next = rng(span ^ align);
  const a = new Float64Array(N);
  const slots = span / align;
  for (let i = 0; i < N; i++) a[i] = (next() % slots) * align;
  return a;
}

function ramMachine(size) {
  const ms = new MemorySystem();
  const system = ms.container('system', 2n ** 64n - 1n);
  const ram = ms.ram('ram', size);
  system.addSubregion(0, ram);
  system.addSubregion(0x100000000, ms.io('dev', 0x1000, { read: () => 0 })); // keep system a real container
  return { ms, as: ms.addressSpace(system, 'memory'), ram };
}

export function run() {
  const results = [];
  const big = ramMachine(GiB);
  const raw = new Uint8Array(GiB);
  const raw32 = new Uint32Array(raw.buffer);
  const raw64 = new BigUint64Array(raw.buffer);
  const as = big.as;

  for (const [setName, span] of [
    ['16KiB-hot-set', 16 * 1024],
    ['1GiB-random', GiB],
  ]) {
    const a1 = addresses(span, 1);
    const a4 = addresses(span, 4);
    const a8 = addresses(span, 8);
    let sink = 0;
    let bsink = 0n;
    const cases = [
      [
        'read-1',
        (n) => {
          let s = 0;
          for (let i = 0; i < n; i++) s = (s + as.ldub(a1[i & (N - 1)])) | 0;
          sink ^= s;
        },
        (n) => {
          let s = 0;
          for (let i = 0; i < n; i++) s = (s + raw[a1[i & (N - 1)]]) | 0;
          sink ^= s;
        },
      ],
      [
        'read-4',
        (n) => {
          let s = 0;
          for (let i = 0; i < n; i++) s = (s + as.ldlLe(a4[i & (N - 1)])) | 0;
          sink ^= s;
        },
        (n) => {
          let s = 0;
          for (let i = 0; i < n; i++) s = (s + raw32[a4[i & (N - 1)] / 4]) | 0;
          sink ^= s;
        },
      ],
      [
        'read-8',
        (n) => {
          let b = 0n;
          for (let i = 0; i < n; i++) b ^= as.ldqLe(a8[i & (N - 1)]);
          bsink ^= b;
        },
        (n) => {
          let b = 0n;
          for (let i = 0; i < n; i++) b ^= raw64[a8[i & (N - 1)] / 8];
          bsink ^= b;
        },
      ],
      [
        'write-1',
        (n) => {
          for (let i = 0; i < n; i++) as.stb(a1[i & (N - 1)], i);
        },
        (n) => {
          for (let i = 0; i < n; i++) raw[a1[i & (N - 1)]] = i;
        },
      ],
      [
        'write-4',
        (n) => {
          for (let i = 0; i < n; i++) as.stlLe(a4[i & (N - 1)], i);
        },
        (n) => {
          for (let i = 0; i < n; i++) raw32[a4[i & (N - 1)] / 4] = i;
        },
      ],
      [
        'write-8',
        (n) => {
          const v = 0x0102030405060708n;
          for (let i = 0; i < n; i++) as.stqLe(a8[i & (N - 1)], v);
        },
        (n) => {
          const v = 0x0102030405060708n;
          for (let i = 0; i < n; i++) raw64[a8[i & (N - 1)] / 8] = v;
        },
      ],
    ];
    for (const [name, subject, baseline] of cases) {
      const r = compare(subject, baseline, { iterations: N });
      results.push({
        name: `ram-${name}-${setName}`,
        ratio: r.ratio,
        ns: r.ns,
        baselineNs: r.baselineNs,
        target: 0.5,
      });
    }
    if (sink === 0.5 || bsink === -1n) console.error('unreachable');
  }

  // I/O dispatch to a trivial callback vs calling the callback directly.
  {
    const ms = new MemorySystem();
    const system = ms.container('system', 2n ** 64n - 1n);
    const ops = { read: (offset, _size) => offset, write: (_o, _v, _s) => {}, endianness: 'little' };
    system.addSubregion(0xfe000000, ms.io('dev', 0x1000, ops));
    system.addSubregion(0, ms.ram('ram', 0x1000));
    const io = ms.addressSpace(system, 'memory');
    let sink = 0;
    const r = compare(
      (n) => {
        let s = 0;
        for (let i = 0; i < n; i++) s = (s + io.ldlLe(0xfe000000 + ((i & 63) << 2))) | 0;
        sink ^= s;
      },
      (n) => {
        let s = 0;
        for (let i = 0; i < n; i++) s = (s + ops.read((i & 63) << 2, 4)) | 0;
        sink ^= s;
      },
      { iterations: 1 << 20 },
    );
    results.push({
      name: 'io-dispatch-read-4',
      ratio: r.ratio,
      ns: r.ns,
      baselineNs: r.baselineNs,
      target: 0.5,
    });
    if (sink === 0.5) console.error('unreachable');
  }

  // Bulk 64 KiB copies vs TypedArray.prototype.set.
  {
    const buf = new Uint8Array(64 * 1024);
    const slots = GiB / buf.length;
    const next = rng(7);
    const offs = Float64Array.from({ length: 4096 }, () => (next() % slots) * buf.length);
    const r1 = compare(
      (n) => {
        for (let i = 0; i < n; i++) as.read(offs[i & 4095], buf);
      },
      (n) => {
        for (let i = 0; i < n; i++) {
          const o = offs[i & 4095];
          buf.set(raw.subarray(o, o + buf.length));
        }
      },
      { iterations: 2000 },
    );
    results.push({
      name: 'bulk-read-64KiB',
      ratio: r1.ratio,
      ns: r1.ns,
      baselineNs: r1.baselineNs,
      target: 0.9,
    });
    const r2 = compare(
      (n) => {
        for (let i = 0; i < n; i++) as.write(offs[i & 4095], buf);
      },
      (n) => {
        for (let i = 0; i < n; i++) raw.set(buf, offs[i & 4095]);
      },
      { iterations: 2000 },
    );
    results.push({
      name: 'bulk-write-64KiB',
      ratio: r2.ratio,
      ns: r2.ns,
      baselineNs: r2.baselineNs,
      target: 0.9,
    });
  }

  // One-region commit in a tree of 10,000 regions: 100 containers of 100 I/O regions each.
  {
    const ms = new MemorySystem();
    const system = ms.container('system', 2n ** 64n - 1n);
    const ops = { read: () => 0 };
    ms.transaction(() => {
      for (let c = 0; c < 100; c++) {
        const box = ms.container(`box${c}`, 0x100000);
        for (let k = 0; k < 100; k++) box.addSubregion(k * 0x1000, ms.io(`r${c}.${k}`, 0x800, ops));
        system.addSubregion(c * 0x100000, box);
      }
    });
    ms.addressSpace(system, 'memory');
    const extra = ms.io('extra', 0x400, ops);
    const box = system.subregions.find((r) => r.name === 'box50');
    const ms1 =
      timeMs(() => {
        box.addSubregion(0x800, extra);
        box.delSubregion(extra);
      }) / 2;
    results.push({
      name: 'commit-one-region-10k-tree',
      ratio: 1 / ms1,
      ms: ms1,
      baseline: '1 ms budget',
      target: 1,
    });
  }
  return results;
}
