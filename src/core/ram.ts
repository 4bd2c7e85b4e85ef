/**
 * @module core/ram
 * The RAM of a memory system beyond one block: placing blocks in ram_addr space
 * (softmmu/physmem.c `ram_block_add`), resizing and freeing them (`qemu_ram_resize`,
 * `qemu_ram_free`), a device's direct reads and writes of its own RAM, and the single bounce
 * buffer of `address_space_map` with its map clients (`cpu_register_map_client`). Blocks and the
 * RAM list are core/ramblock's.
 */

import { checkSpan, printable, toSize, type U64Input } from './address.js';
import { DIRTY_CLIENTS_ALL } from './dirty.js';
import { InvalidArgumentError, RamBlockError, RegionInUseError } from './errors.js';
import { HOST_PAGE_SIZE, RAM_RESIZEABLE, type RAMBlock } from './ramblock.js';
import type { MemoryRegion } from './region.js';
import type { MemorySystem } from './system.js';

/** Checks the size of a RAM-backed region. */
export function ramSize(what: string, name: string, size: U64Input): bigint {
  const s = toSize(size, `size of region "${name}"`);
  if (s > 2n ** 52n) throw new InvalidArgumentError(`${what} region "${name}": ${s} bytes is too large`);
  // QEMU asserts this in find_ram_offset: an empty block would share its offset with the next.
  if (s === 0n) throw new InvalidArgumentError(`${what} region "${name}": size must not be 0`);
  return s;
}

/** QEMU `ram_block_add`: places the block in ram_addr space; its pages start dirty for every client. */
export function addBlock(ms: MemorySystem, block: RAMBlock): void {
  ms.ramList.add(block);
  ms.dirty.setRange(block.offset, block.usedLength, DIRTY_CLIENTS_ALL);
}

/**
 * QEMU `qemu_ram_resize`: gives the block behind RAM region `mr` a new used length of `newSize`
 * bytes (rounded up to the host page). Only blocks created with `maxSize` can change length; the
 * new range starts dirty for every client, the region takes the unrounded size (a topology change)
 * and the block's `resized` callback runs.
 */
export function ramResize(ms: MemorySystem, mr: MemoryRegion, newSize: number): void {
  ms.checkOwn(mr, 'ramResize');
  const block = mr.ramBlock;
  if (!block) throw new InvalidArgumentError(`ramResize: region ${mr.label} has no RAM block`);
  if (!Number.isSafeInteger(newSize) || newSize < 0) {
    throw new InvalidArgumentError(
      `ramResize of ${mr.label}: size ${printable(newSize)} is not a non-negative integer`,
    );
  }
  const rounded = Math.ceil(newSize / HOST_PAGE_SIZE) * HOST_PAGE_SIZE;
  const h = (v: number) => v.toString(16);
  if (rounded === block.usedLength) {
    if (BigInt(newSize) !== mr.size) {
      mr.setSize(newSize);
      block.resized?.(block.idstr, newSize, block);
    }
    return;
  }
  if (!(block.flags & RAM_RESIZEABLE)) {
    throw new RamBlockError(`Size mismatch: ${block.idstr}: 0x${h(rounded)} != 0x${h(block.usedLength)}`);
  }
  if (rounded > block.maxLength) {
    throw new RamBlockError(`Size too large: ${block.idstr}: 0x${h(rounded)} > 0x${h(block.maxLength)}`);
  }
  for (const o of ms.ramResizeObservers) o(block, block.usedLength, rounded);
  for (let c = 0; c < 3; c++) ms.dirty.testAndClear(block.offset, block.usedLength, c);
  block.usedLength = rounded;
  ms.dirty.setRange(block.offset, block.usedLength, DIRTY_CLIENTS_ALL);
  mr.setSize(newSize);
  block.resized?.(block.idstr, newSize, block);
}

/**
 * Destroys region `mr` (QEMU `object_unparent` of a region, `qemu_ram_free` for its block): the
 * region must not be in a container; its RAM block leaves the RAM list, its id is unregistered and
 * its ram_addr range becomes free for later blocks.
 */
export function freeRegion(ms: MemorySystem, mr: MemoryRegion): void {
  ms.checkOwn(mr, 'freeRegion');
  if (mr.container || mr.mappedViaAlias > 0) {
    throw new RegionInUseError(`freeRegion: region ${mr.label} is still mapped; remove it first`);
  }
  const block = mr.ramBlock;
  if (block && ms.ramList.blocks.includes(block)) {
    ms.ramList.remove(block);
    block.idstr = '';
  }
}

/**
 * A device's direct write into its own RAM (QEMU: a write through `memory_region_get_ram_ptr`
 * followed by `memory_region_set_dirty`): copies `data` to `offset` in `mr` and marks the pages
 * dirty for the clients that log the region.
 */
export function writeRam(ms: MemorySystem, mr: MemoryRegion, offset: number, data: Uint8Array): void {
  const block = ramRange(ms, mr, offset, data, 'writeRam');
  block.write(offset, data, 0, data.length);
  ms.invalidateAndSetDirty(mr, offset, data.length);
}

/** Reads `dst.length` bytes of `mr`'s RAM at `offset`, as a device with a host pointer would. */
export function readRam(ms: MemorySystem, mr: MemoryRegion, offset: number, dst: Uint8Array): void {
  ramRange(ms, mr, offset, dst, 'readRam').read(offset, dst, 0, dst.length);
}

function ramRange(
  ms: MemorySystem,
  mr: MemoryRegion,
  offset: number,
  data: Uint8Array,
  what: string,
): RAMBlock {
  ms.checkOwn(mr, what);
  const block = mr.ramBlock;
  if (!block) throw new InvalidArgumentError(`${what}: region ${mr.label} has no RAM block`);
  if (!(data instanceof Uint8Array))
    throw new InvalidArgumentError(`${what}: the buffer must be a Uint8Array`);
  checkSpan(offset, data.length, block.usedLength, `${what} of ${mr.label}`);
  return block;
}

/** Takes the single bounce buffer (QEMU 7.2 has one per process), or null if in use. */
export function acquireBounce(ms: MemorySystem): Uint8Array | null {
  if (ms.bounceInUse) return null;
  ms.bounceInUse = true;
  return ms.bounceBuffer;
}

/** Frees the bounce buffer and notifies the waiting map clients once. */
export function releaseBounce(ms: MemorySystem): void {
  ms.bounceInUse = false;
  ms.bounceBuffer = new Uint8Array(4096);
  const clients = ms.mapClients;
  ms.mapClients = [];
  for (const c of clients) c();
}

/**
 * QEMU `cpu_register_map_client`: `callback` runs once when the bounce buffer becomes free (at
 * once if it is free now). Use it to retry a {@link AddressSpace.map} that returned null.
 */
export function registerMapClient(ms: MemorySystem, callback: () => void): void {
  if (!ms.bounceInUse) callback();
  else ms.mapClients.push(callback);
}
