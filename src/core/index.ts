/**
 * @module core
 * The memory model core: regions, flat views, address spaces, dispatch and listeners. It imports
 * nothing from Node, so it runs unchanged in a browser.
 */

export * from './address.js';
export {
  type AddressLookup,
  AddressSpace,
  type AddressSpaceIoeventfd,
  type Mapping,
} from './address-space.js';
export { CpuAccess } from './cpu-access.js';
export * from './dirty.js';
export * from './errors.js';
export {
  FlatRange,
  FlatView,
  generateFlatView,
  type MemoryRegionSection,
  renderRanges,
  resolveFlatViewRoot,
  sectionFromRange,
  simplifyRanges,
} from './flatview.js';
export { bswapBig, bswapNum, IoDispatcher } from './io-dispatch.js';
export * from './iommu.js';
export type { MemoryListener } from './listener.js';
export * from './ramblock.js';
export {
  type CoalescedRange,
  DIRTY_MEMORY_CODE,
  DIRTY_MEMORY_MIGRATION,
  DIRTY_MEMORY_VGA,
  MemoryRegion,
  type RegionIoeventfd,
  type RegionKind,
  type RegionOptions,
} from './region.js';
export { MemorySystem, type MemorySystemOptions, type RamOptions } from './system.js';
export * from './types.js';
