/**
 * @module core/factories
 * Region construction for a memory system: QEMU's `memory_region_init` family in
 * softmmu/memory.c (`_init`, `_init_io`, `_init_alias`, `_init_iommu`, `_init_ram`, `_init_rom`,
 * `_init_rom_device`, `_init_ram_device_ptr`), with their RAM blocks placed through core/ram.
 * The public entry points are the factory methods of `MemorySystem`.
 */

import { printable, toSize, type U64Input } from './address.js';
import { InvalidArgumentError } from './errors.js';
import type { IommuOps } from './iommu.js';
import { addBlock, ramSize } from './ram.js';
import { RAM_MIGRATABLE, RAM_PREALLOC, RAM_RESIZEABLE, RAMBlock } from './ramblock.js';
import { MemoryRegion, type RegionOptions } from './region.js';
import type { MemorySystem, RamOptions } from './system.js';
import type { MemoryRegionOps } from './types.js';

/** A pure container: it paints nothing itself, so holes show what lies below it. */
export function container(
  ms: MemorySystem,
  name: string | null,
  size: U64Input,
  options: RegionOptions = {},
): MemoryRegion {
  checkName(name, true);
  return new MemoryRegion(ms, 'container', name, size, { owner: options?.owner ?? null });
}

/**
 * An I/O region whose accesses go to `ops` (QEMU `memory_region_init_io`). With `ops` null it is a
 * reservation: it hides what lies below but rejects every access like unassigned memory.
 */
export function io(
  ms: MemorySystem,
  name: string | null,
  size: U64Input,
  ops: MemoryRegionOps | null,
  options: RegionOptions = {},
): MemoryRegion {
  checkName(name, true);
  const s = toSize(size, `size of region "${name}"`);
  if (ops && s > 2n ** 53n) {
    throw new InvalidArgumentError(
      `io region "${name}": callbacks take number offsets, so a region with ops is limited to 2^53 bytes`,
    );
  }
  return new MemoryRegion(ms, ops ? 'io' : 'reservation', name, s, {
    owner: options?.owner ?? null,
    ops: ops ?? undefined,
  });
}

/**
 * An alias: a window of `size` bytes onto `target`, starting `offset` bytes into it (QEMU
 * `memory_region_init_alias`). Subregions added to an alias are never rendered.
 */
export function alias(
  ms: MemorySystem,
  name: string | null,
  target: MemoryRegion,
  offset: U64Input,
  size: U64Input,
  options: RegionOptions = {},
): MemoryRegion {
  return new MemoryRegion(ms, 'alias', name, size, {
    owner: options?.owner ?? null,
    alias: target,
    aliasOffset: offset,
  });
}

/** An IOMMU region (QEMU `memory_region_init_iommu`): accesses are translated by `iommuOps`. */
export function iommu(
  ms: MemorySystem,
  name: string | null,
  size: U64Input,
  iommuOps: IommuOps,
  options: RegionOptions = {},
): MemoryRegion {
  return new MemoryRegion(ms, 'iommu', name, size, { owner: options?.owner ?? null, iommuOps });
}

/** QEMU `memory_region_init_ram` / `_rom` / `_rom_device`: a region over a new RAM block. */
export function ramLike(
  ms: MemorySystem,
  kind: 'ram' | 'rom' | 'rom-device',
  name: string,
  size: U64Input,
  options: RamOptions,
  ops: MemoryRegionOps | undefined,
): MemoryRegion {
  checkName(name, false);
  const s = ramSize('RAM', name, size);
  const n = Number(s);
  const block = new RAMBlock(n, options?.maxSize ?? n, options?.maxSize !== undefined ? RAM_RESIZEABLE : 0);
  if (options?.resized) block.resized = options?.resized;
  const mr = new MemoryRegion(ms, kind, name, s, { owner: options?.owner ?? null, ops, ramBlock: block });
  block.mr = mr;
  if (!options?.nomigrate) {
    ms.ramList.setIdstr(block, name, options?.owner?.devicePath);
    block.flags |= RAM_MIGRATABLE;
  }
  addBlock(ms, block);
  return mr;
}

/**
 * A RAM device (QEMU `memory_region_init_ram_device_ptr`): host memory reached through
 * byte-transparent callbacks (never directly), e.g. a BAR of an assigned host device.
 */
export function ramDevice(
  ms: MemorySystem,
  name: string,
  size: U64Input,
  options: RegionOptions = {},
): MemoryRegion {
  checkName(name, false);
  const s = Number(ramSize('RAM device', name, size));
  // qemu_ram_alloc_from_ptr: a preallocated block with no id, placed like any other.
  const block = new RAMBlock(s, s, RAM_PREALLOC);
  let mr: MemoryRegion | null = null;
  // QEMU's ram_device_mem_ops: byte-transparent over host memory, host (little-endian) order.
  const ops: MemoryRegionOps = {
    endianness: 'little',
    valid: { minAccessSize: 1, maxAccessSize: 8, unaligned: true },
    impl: { minAccessSize: 1, maxAccessSize: 8, unaligned: true },
    read: (off, sz) => readLe(block, off, sz),
    write: (off, v, sz) => writeLe(block, off, v, sz),
  };
  mr = new MemoryRegion(ms, 'ram-device', name, s, {
    owner: options?.owner ?? null,
    ops,
    ramBlock: block,
  });
  block.mr = mr;
  addBlock(ms, block);
  return mr;
}

/** Throws unless `name` is a string (or null, where a region may be anonymous). */
export function checkName(name: string | null, mayBeNull: boolean): void {
  if (typeof name === 'string' || (mayBeNull && name === null)) return;
  throw new InvalidArgumentError(
    `region name ${printable(name)} is not a string${mayBeNull ? ' or null' : ' (RAM needs a name)'}`,
  );
}

function readLe(block: RAMBlock, off: number, size: number): number | bigint {
  const tmp = new Uint8Array(8);
  block.read(off, tmp, 0, size);
  const v = new DataView(tmp.buffer).getBigUint64(0, true);
  return size === 8 ? v : Number(v);
}

function writeLe(block: RAMBlock, off: number, value: number | bigint, size: number): void {
  const tmp = new Uint8Array(8);
  new DataView(tmp.buffer).setBigUint64(0, BigInt.asUintN(64, BigInt(value)), true);
  block.write(off, tmp, 0, size);
}
