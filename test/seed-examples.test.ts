// The three scenarios every user of a PC memory map meets first, checked through the public API,
// and the runnable examples in examples/ (run against the build, as a user would).
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { describe, it } from 'node:test';
import { MemorySystem } from '../src/index.js';

const GiB = 2 ** 30;

describe('16 GiB of RAM split around the PCI hole', () => {
  it('maps [0, 2G) and [4G, 18G) onto the one RAM region with the right offsets', () => {
    const ms = new MemorySystem();
    const system = ms.container('system', 2n ** 64n - 1n);
    const ram = ms.ram('ram', 16 * GiB);
    system.addSubregion(0, ms.alias('ram-below-4g', ram, 0, 2 * GiB));
    system.addSubregion(4 * GiB, ms.alias('ram-above-4g', ram, 2 * GiB, 14 * GiB));
    const as = ms.addressSpace(system, 'memory');
    const r = as.currentView.ranges;
    assert.equal(r.length, 2);
    assert.deepEqual(
      r.map((x) => [x.mr, x.start, x.size, x.offsetInRegion]),
      [
        [ram, 0n, 2n << 30n, 0n],
        [ram, 4n << 30n, 14n << 30n, 2n << 30n],
      ],
    );
    // Written through one address, read back through the backing region: guest 4G + x is
    // ram offset 2G + x; and the last byte of the stick is guest 18G - 1.
    as.stlLe(4 * GiB + 0x1234, 0xfeedface);
    const got = new Uint8Array(4);
    ram.ramBlock!.read(2 * GiB + 0x1234, got, 0, 4);
    assert.deepEqual([...got], [0xce, 0xfa, 0xed, 0xfe]);
    as.stb(18 * GiB - 1, 0x77);
    ram.ramBlock!.read(16 * GiB - 1, got, 0, 1);
    assert.equal(got[0], 0x77);
    assert.equal(as.lookup(3 * GiB), null);
    // Bytes at 2G-1 (below) and 4G (above) are neighbours in the stick: ram 2G-1 and ram 2G.
    as.write(2 * GiB - 1, Uint8Array.of(0xaa));
    const two = new Uint8Array(2);
    as.stb(4 * GiB, 0xbb);
    ram.ramBlock!.read(2 * GiB - 1, two, 0, 2);
    assert.deepEqual([...two], [0xaa, 0xbb]);
  });
});

describe('a virtio-pci BAR', () => {
  it('delivers offsets relative to each register block of the container', () => {
    const ms = new MemorySystem();
    const system = ms.container('system', 2n ** 64n - 1n);
    const bar = ms.container('virtio-pci', 0x4000);
    const seen: string[] = [];
    ['common', 'isr', 'device', 'notify'].forEach((part, i) => {
      bar.addSubregion(
        i * 0x1000,
        ms.io(`virtio-pci-${part}`, 0x1000, {
          endianness: 'little',
          read: (o, s) => {
            seen.push(`${part} r ${o.toString(16)} ${s}`);
            return 0;
          },
          write: (o, v, s) => seen.push(`${part} w ${o.toString(16)} ${s} ${v}`),
        }),
      );
    });
    system.addSubregionOverlap(0xfebf8000, bar, 1);
    const as = ms.addressSpace(system);
    as.stlLe(0xfebf8014, 7);
    as.ldub(0xfebf9000);
    as.lduwLe(0xfebfa002);
    as.stwLe(0xfebfb000, 3);
    assert.deepEqual(seen, ['common w 14 4 7', 'isr r 0 1', 'device r 2 2', 'notify w 0 2 3']);
    // The container itself serves nothing: its flat view is just the four blocks.
    assert.deepEqual(
      as.currentView.ranges.map((r) => r.mr.name),
      ['virtio-pci-common', 'virtio-pci-isr', 'virtio-pci-device', 'virtio-pci-notify'],
    );
  });
});

describe('a PCI hole', () => {
  it('shows BARs of a lower-priority pci container only where RAM does not cover them', () => {
    const ms = new MemorySystem();
    const system = ms.container('system', 2n ** 64n - 1n);
    const ram = ms.ram('pc.ram', 3 * GiB);
    const pci = ms.container('pci', 2n ** 64n - 1n);
    system.addSubregion(0, ms.alias('ram-below-4g', ram, 0, 3 * GiB));
    system.addSubregionOverlap(0, pci, -1);
    const straddling = ms.io('straddling-bar', 0x2000, { read: () => 0x11 });
    pci.addSubregion(3 * GiB - 0x1000, straddling); // half under RAM, half in the hole
    pci.addSubregion(0x1000, ms.io('buried-bar', 0x1000, { read: () => 0x22 }));
    const as = ms.addressSpace(system);
    assert.equal(as.lookup(0x1000)?.region, ram);
    assert.equal(as.lookup(3 * GiB - 0x1000)?.region, ram);
    const hit = as.lookup(3 * GiB);
    assert.equal(hit?.region, straddling);
    assert.equal(hit?.offset, 0x1000n); // the visible half starts 0x1000 into the BAR
    assert.equal(as.ldub(3 * GiB), 0x11);
  });
});

describe('runnable examples', () => {
  for (const [file, expect] of [
    ['pc-machine.mjs', /stqLe 0x100000000 -> pc\.ram\[2 GiB\.\.\] = 8877665544332211/],
    ['ram-split.mjs', /guest 0x100000010 -> ram offset 0x80000010: efcdab8967452301/],
    ['virtio-pci-bar.mjs', /isr read {2}offset 0x0 size 1/],
    ['pci-hole.mjs', /0xf0000000 -> unassigned/],
  ] as const) {
    it(`${file} runs and shows what it is about`, () => {
      const r = spawnSync(process.execPath, [`examples/${file}`], { encoding: 'utf8' });
      assert.equal(r.status, 0, r.stderr);
      assert.match(r.stdout, expect);
    });
  }
});
