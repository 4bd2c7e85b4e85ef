/**
 * @module core/test-support/state
 * What a failed call must leave alone — flat views, the tree, RAM bytes, dirty bits — captured as
 * plain data, and an assertion that a call throws a typed error and changes none of it.
 * Test-only; excluded from the build.
 */
import type { AddressSpace } from '../address-space.js';
import { MemtreeError } from '../errors.js';
import type { MemoryRegion } from '../region.js';
import type { MemorySystem } from '../system.js';

/** Everything a failed call must leave alone, as plain data. */
export function fingerprint(ms: MemorySystem, regions: readonly MemoryRegion[]): unknown {
  const views = ms.addressSpaces.map((as: AddressSpace) =>
    as.currentView.ranges.map(
      (r) => `${r.start}+${r.size} ${r.mr.name} @${r.offsetInRegion} ${r.readonly} ${r.dirtyLogMask}`,
    ),
  );
  const tree = regions.map((r) => ({
    name: r.name,
    addr: r.addr,
    size: r.size,
    enabled: r.enabled,
    priority: r.priority,
    aliasOffset: r.aliasOffset,
    readonly: r.readonly,
    container: r.container?.name ?? null,
    subregions: r.subregions.map((s) => s.name),
  }));
  const blocks = ms.ramList.blocks.map((b) => {
    const bytes = new Uint8Array(Math.min(b.usedLength, 0x4000));
    b.read(0, bytes, 0, bytes.length);
    const dirty: number[] = [];
    for (let p = 0; p < bytes.length / 4096; p++) {
      for (let c = 0; c < 3; c++) if (ms.dirty.getDirty(b.offset + p * 4096, 4096, c)) dirty.push(p * 4 + c);
    }
    return {
      id: b.idstr,
      offset: b.offset,
      used: b.usedLength,
      bytes: Array.from(bytes, (x) => x.toString(16).padStart(2, '0')).join(''),
      dirty,
    };
  });
  return { views, tree, blocks, tracking: ms.globalDirtyTracking, depth: ms.transactionDepth };
}

/** `fingerprint` as a string (bigints written out), for comparing two of them. */
export function fingerprintText(ms: MemorySystem, regions: readonly MemoryRegion[]): string {
  return JSON.stringify(fingerprint(ms, regions), (_k, v) => (typeof v === 'bigint' ? `${v}n` : v));
}

/**
 * Asserts that `f` throws a memtree error with `code` (any code when null) and changes nothing
 * in {@link fingerprint}. Returns the error.
 */
export function assertRefused(
  ms: MemorySystem,
  regions: readonly MemoryRegion[],
  code: string | null,
  f: () => unknown,
): MemtreeError {
  const before = fingerprintText(ms, regions);
  let error: unknown = null;
  try {
    f();
  } catch (e) {
    error = e;
  }
  if (error === null) throw new Error('the call was expected to fail but returned');
  if (!(error instanceof MemtreeError)) throw new Error(`not a MemtreeError: ${String(error)}`);
  if (code !== null && error.code !== code)
    throw new Error(`code ${error.code}, expected ${code}: ${error.message}`);
  const after = fingerprintText(ms, regions);
  if (after !== before)
    throw new Error(`state changed by a failed call (${error.message}):\n${before}\n${after}`);
  return error;
}
