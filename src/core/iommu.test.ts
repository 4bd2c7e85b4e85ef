import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  IOMMU_NONE,
  IOMMU_NOTIFIER_DEVIOTLB_UNMAP,
  IOMMU_NOTIFIER_MAP,
  IOMMU_NOTIFIER_UNMAP,
  IOMMU_RW,
  type IommuTlbEntry,
} from './iommu.js';
import { MemorySystem } from './system.js';

/** An IOMMU of 64 KiB whose page table is a Map from page to target page; 4 KiB pages. */
function iommu() {
  const ms = new MemorySystem();
  const mem = ms.container('system', 0x100000);
  mem.addSubregion(0, ms.ram('ram', 0x100000));
  const memory = ms.addressSpace(mem, 'memory');
  const table = new Map<bigint, bigint>([
    [0x1000n, 0x80000n],
    [0x3000n, 0x90000n],
  ]);
  const flagChanges: string[] = [];
  let refuse = false;
  const mr = ms.iommu('dmar', 0x10000, {
    translate: (addr) => {
      const page = addr & ~0xfffn;
      const t = table.get(page);
      return {
        targetAs: memory,
        iova: page,
        translatedAddr: t ?? 0n,
        addrMask: 0xfffn,
        perm: t === undefined ? IOMMU_NONE : IOMMU_RW,
      };
    },
    numIndexes: () => 2,
    notifyFlagChanged: (o, n) => {
      if (refuse) throw new Error('refused by the IOMMU');
      flagChanges.push(`${o}->${n}`);
    },
  });
  const alias = ms.alias('dmar-alias', mr, 0, 0x10000);
  return { ms, mr, alias, flagChanges, setRefuse: (v: boolean) => (refuse = v) };
}

const entry = (iova: bigint, mask: bigint, perm: number): IommuTlbEntry => ({
  targetAs: null,
  iova,
  translatedAddr: 0x80000n,
  addrMask: mask,
  perm,
});

describe('IOMMU notifiers', () => {
  it('registers through aliases, tells the IOMMU when the union of flags changes, and can be refused', () => {
    const { mr, alias, flagChanges, setRefuse } = iommu();
    const a = { flags: IOMMU_NOTIFIER_MAP, start: 0n, end: 0xffffn, notify: () => {} };
    const b = { flags: IOMMU_NOTIFIER_MAP | IOMMU_NOTIFIER_UNMAP, start: 0n, end: 0xffffn, notify: () => {} };
    alias.registerIommuNotifier(a);
    mr.registerIommuNotifier(b);
    mr.unregisterIommuNotifier(b);
    assert.deepEqual(flagChanges, ['0->2', '2->3', '3->2']);
    setRefuse(true);
    assert.throws(() => mr.registerIommuNotifier(b), /refused by the IOMMU/);
    setRefuse(false);
    mr.unregisterIommuNotifier(a);
    assert.deepEqual(flagChanges.slice(3), ['2->0']);
    assert.throws(() => mr.unregisterIommuNotifier(b), { code: 'ERR_INVALID_ARGUMENT' }); // was undone
  });

  it('checks flags, range and index, and refuses non-IOMMU regions', () => {
    const { ms, mr } = iommu();
    const n = (o: object) => ({ flags: IOMMU_NOTIFIER_MAP, start: 0n, end: 0xfffn, notify: () => {}, ...o });
    assert.throws(() => mr.registerIommuNotifier(n({ flags: 0 })), { code: 'ERR_INVALID_ARGUMENT' });
    assert.throws(() => mr.registerIommuNotifier(n({ start: 0x2000n, end: 0x1000n })), {
      code: 'ERR_INVALID_ARGUMENT',
    });
    assert.throws(() => mr.registerIommuNotifier(n({ iommuIndex: 2 })), { code: 'ERR_INVALID_ARGUMENT' });
    assert.throws(() => ms.ram('r', 0x1000).registerIommuNotifier(n({})), { code: 'ERR_WRONG_KIND' });
  });

  it('delivers events by index, range and flags, cropping for device-IOTLB notifiers', () => {
    const { mr } = iommu();
    const got: string[] = [];
    const rec = (tag: string) => (e: IommuTlbEntry) =>
      got.push(`${tag} ${e.iova.toString(16)}+${e.addrMask.toString(16)}`);
    mr.registerIommuNotifier({ flags: IOMMU_NOTIFIER_MAP, start: 0n, end: 0x7fffn, notify: rec('map') });
    mr.registerIommuNotifier({
      flags: IOMMU_NOTIFIER_UNMAP,
      start: 0x8000n,
      end: 0xffffn,
      notify: rec('unmap'),
    });
    mr.registerIommuNotifier({
      flags: IOMMU_NOTIFIER_MAP,
      start: 0n,
      end: 0xffffn,
      iommuIndex: 1,
      notify: rec('idx1'),
    });
    mr.registerIommuNotifier({
      flags: IOMMU_NOTIFIER_DEVIOTLB_UNMAP,
      start: 0x1800n,
      end: 0x27ffn,
      notify: rec('dev'),
    });
    mr.iommuNotify(0, { type: IOMMU_NOTIFIER_MAP, entry: entry(0x1000n, 0xfffn, IOMMU_RW) });
    // map: in range, MAP wanted. unmap: out of its range. idx1: other index. dev: overlaps but
    // wants only DEVIOTLB_UNMAP events.
    assert.deepEqual(got, ['map 1000+fff']);
    got.length = 0;
    mr.iommuNotify(0, { type: IOMMU_NOTIFIER_DEVIOTLB_UNMAP, entry: entry(0x1000n, 0x1fffn, IOMMU_NONE) });
    // 0x1000..0x2fff cropped to the device notifier's 0x1800..0x27ff.
    assert.deepEqual(got, ['dev 1800+fff']);
    assert.throws(
      () => mr.iommuNotify(0, { type: IOMMU_NOTIFIER_MAP, entry: entry(0x7000n, 0x1fffn, IOMMU_RW) }),
      /crosses the notifier range/,
    );
    assert.throws(
      () => mr.iommuNotify(0, { type: IOMMU_NOTIFIER_UNMAP, entry: entry(0x9000n, 0xfffn, IOMMU_RW) }),
      /NONE/,
    );
  });

  it('replays the mapped pages by translating every page of the region', () => {
    const { mr } = iommu();
    const got: string[] = [];
    mr.iommuReplay({
      flags: IOMMU_NOTIFIER_MAP,
      start: 0n,
      end: 0xffffn,
      notify: (e) => got.push(`${e.iova.toString(16)}->${e.translatedAddr.toString(16)}`),
    });
    assert.deepEqual(got, ['1000->80000', '3000->90000']);
  });
});
