/**
 * @module core/iommu
 * IOMMU regions (QEMU `IOMMUMemoryRegion`): a region whose accesses are translated, page by page, into
 * another address space. The device model supplies {@link IommuOps.translate}; the core follows the
 * translation on every access (`flatview_do_translate`) and delivers map/unmap events to notifiers.
 */

import type { AddressSpace } from './address-space.js';
import type { MemTxAttrs } from './types.js';

/** Access permission bits of an IOMMU mapping (QEMU `IOMMUAccessFlags`). */
export const IOMMU_NONE = 0;
export const IOMMU_RO = 1;
export const IOMMU_WO = 2;
export const IOMMU_RW = 3;

/** One translation (QEMU `IOMMUTLBEntry`). Addresses are exact bigints. */
export interface IommuTlbEntry {
  /** Address space the translated address belongs to; null means "no mapping". */
  targetAs: AddressSpace | null;
  /** Input address, aligned to the mapping (`iova & ~addrMask`). */
  iova: bigint;
  /** Output address in `targetAs`, aligned likewise. */
  translatedAddr: bigint;
  /** Size of the mapping minus one (a power of two minus one: 0xfff for 4 KiB). */
  addrMask: bigint;
  /** Permission bits. */
  perm: number;
}

/** Notifier flags (QEMU `IOMMUNotifierFlag`). */
export const IOMMU_NOTIFIER_UNMAP = 1;
export const IOMMU_NOTIFIER_MAP = 2;
export const IOMMU_NOTIFIER_DEVIOTLB_UNMAP = 4;

/** The callbacks of an IOMMU region (QEMU `IOMMUMemoryRegionClass`). */
export interface IommuOps {
  /**
   * Translates `addr` (an offset in the IOMMU region) for an access needing `perm`
   * ({@link IOMMU_RO} / {@link IOMMU_WO}, or {@link IOMMU_NONE} for replay).
   */
  translate(addr: bigint, perm: number, iommuIndex: number): IommuTlbEntry;
  /** Which IOMMU index serves accesses with these attributes (default 0). */
  attrsToIndex?(attrs: MemTxAttrs): number;
  /** Number of IOMMU indexes (default 1). */
  numIndexes?(): number;
  /** Smallest page the IOMMU maps (default the target page size). */
  minPageSize?(): bigint;
  /**
   * The union of the registered notifiers' flags changed (QEMU `notify_flag_changed`). Throw to
   * refuse: the registration that caused it is undone.
   */
  notifyFlagChanged?(oldFlags: number, newFlags: number): void;
  /** Replays the current mappings to `notifier` (QEMU `replay`); by default each page is translated. */
  replay?(notifier: IommuNotifier): void;
}

/** A change of mapping delivered to notifiers (QEMU `IOMMUTLBEvent`). */
export interface IommuEvent {
  /** {@link IOMMU_NOTIFIER_MAP}, {@link IOMMU_NOTIFIER_UNMAP} or {@link IOMMU_NOTIFIER_DEVIOTLB_UNMAP}. */
  type: number;
  entry: IommuTlbEntry;
}

/**
 * Something that mirrors an IOMMU's mappings, e.g. a VFIO container or vhost (QEMU
 * `IOMMUNotifier`): it hears the events of `flags` for IOVAs in `[start, end]` of one IOMMU index.
 */
export interface IommuNotifier {
  notify(entry: IommuTlbEntry): void;
  /** Which events: a non-empty mask of IOMMU_NOTIFIER_*. */
  readonly flags: number;
  /** First IOVA of interest. */
  readonly start: bigint;
  /** Last IOVA of interest (inclusive). */
  readonly end: bigint;
  /** IOMMU index (default 0). */
  readonly iommuIndex?: number;
}
