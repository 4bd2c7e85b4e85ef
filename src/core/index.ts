/**
 * @module core
 * The memory model core: regions, flat views, address spaces, dispatch and listeners. It imports
 * nothing from Node, so it runs unchanged in a browser. This entry point exports what a user of
 * the model needs; the helpers the rest of this package shares live in the modules themselves.
 */

export { SIZE_2_64, U64_MAX, type U64Input } from './address.js';
export {
  type AddressLookup,
  AddressSpace,
  type AddressSpaceIoeventfd,
  type Mapping,
} from './address-space.js';
export { CpuAccess } from './cpu-access.js';
export {
  DIRTY_CLIENTS_ALL,
  DIRTY_MEMORY_CODE,
  DIRTY_MEMORY_MIGRATION,
  DIRTY_MEMORY_NUM,
  DIRTY_MEMORY_VGA,
  type DirtyBitmapSnapshot,
  type DirtyMemory,
} from './dirty.js';
export * from './errors.js';
export type { FlatRange, FlatView, MemoryRegionSection } from './flatview.js';
export * from './iommu.js';
export type { MemoryListener } from './listener.js';
export type { RAMBlock, RamResizedCallback } from './ramblock.js';
export {
  type CoalescedRange,
  MemoryRegion,
  type RegionIoeventfd,
  type RegionKind,
  type RegionOptions,
} from './region.js';
export { MemorySystem, type MemorySystemOptions, type RamOptions } from './system.js';
export * from './types.js';
