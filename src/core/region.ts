/**
 * @module core/region
 * `MemoryRegion`: one node of a machine's memory tree (QEMU `struct MemoryRegion`).
 *
 * A region is a pure container, RAM, ROM, a ROM device, an I/O region with callbacks, a reservation,
 * an alias (a window onto another region), an IOMMU, or a RAM device. Regions are created by the
 * factory methods of {@link MemorySystem} and placed with {@link MemoryRegion.addSubregion}. Every
 * change runs in a transaction of its system: flat views are rebuilt once, at the outermost commit.
 *
 * Sizes, addresses and offsets are exact `bigint`s (a region may span all 2^64 bytes). Methods accept
 * `number` too, when it is a safe integer.
 */

import { hex, printable, SIZE_2_64, toBool, toPriority, toSize, toU64, type U64Input } from './address.js';
import { InvalidArgumentError, NotSubregionError, RegionInUseError, WrongKindError } from './errors.js';
import { renderRanges } from './flatview.js';
import type { ReentrancyGuard } from './io-dispatch.js';
import {
  IOMMU_NONE,
  IOMMU_NOTIFIER_DEVIOTLB_UNMAP,
  IOMMU_NOTIFIER_UNMAP,
  type IommuEvent,
  type IommuNotifier,
  type IommuOps,
} from './iommu.js';
import type { RAMBlock } from './ramblock.js';
import type { MemorySystem } from './system.js';
import type { EventNotifier, MemoryOwner, MemoryRegionOps } from './types.js';

/** What a region is. The printed `info mtree` type is derived from the kind and the flags. */
export type RegionKind =
  | 'container'
  | 'io'
  | 'reservation'
  | 'ram'
  | 'rom'
  | 'rom-device'
  | 'ram-device'
  | 'alias'
  | 'iommu';

/** Dirty memory clients (QEMU `DIRTY_MEMORY_*`). */
export const DIRTY_MEMORY_VGA = 0;
export const DIRTY_MEMORY_CODE = 1;
export const DIRTY_MEMORY_MIGRATION = 2;

/** One ioeventfd of a region (QEMU `MemoryRegionIoeventfd`), with its range relative to the region. */
export interface RegionIoeventfd {
  readonly start: bigint;
  readonly size: bigint;
  readonly matchData: boolean;
  /** Data as the device sees it (already converted from target order to device order). */
  readonly data: bigint;
  readonly notifier: EventNotifier;
  /** Identity order of the notifier (QEMU compares the pointers). */
  readonly notifierId: number;
}

/** A coalesced-MMIO range of a region, relative to the region. */
export interface CoalescedRange {
  readonly start: bigint;
  readonly size: bigint;
}

/** Options common to all region factories. */
export interface RegionOptions {
  /** Lifetime owner (QOM owner): used for RAM ids and the re-entrancy guard. */
  owner?: MemoryOwner | null;
}

/** What a removed subregion leaves in its container's list until the holes are squeezed out. */
class SubregionHole {
  constructor(
    readonly priority: number,
    readonly seq: number,
  ) {}
}

/**
 * A node of the memory tree. See the module comment; create regions with the factories of
 * {@link MemorySystem} (`container`, `ram`, `rom`, `io`, `alias`, ...).
 */
export class MemoryRegion {
  // State behind the read-only getters below: it changes only through the setters, so that every
  // change runs in a transaction, tells the listeners and flushes the TLBs.
  private _size: bigint;
  private _addr: bigint = 0n;
  private _priority: number = 0;
  private _container: MemoryRegion | null = null;
  /** When the region was linked into its container (see {@link _subsReversed}). */
  private _linkSeq: number = 0;
  private _mappedViaAlias: number = 0;
  private _enabled: boolean = true;
  private _aliasOffset: bigint = 0n;
  private _readonly: boolean = false;
  private _nonvolatile: boolean = false;
  private _romdMode: boolean = true;
  private _dirtyLogMask: number = 0;
  private _vgaLoggingCount: number = 0;
  private _flushCoalescedMmio: boolean = false;

  /** The system (machine) this region belongs to. Regions of different systems never mix. */
  readonly system: MemorySystem;
  /** What this region is. */
  readonly kind: RegionKind;
  /** Label for printing and RAM ids; not unique. `null` prints as `(noname)` where QEMU does. */
  readonly name: string | null;
  /** Lifetime owner (QOM owner), or null. */
  readonly owner: MemoryOwner | null;

  /** Size in bytes, 0 .. 2^64. */
  get size(): bigint {
    return this._size;
  }
  /** Offset in the container (set when added). */
  get addr(): bigint {
    return this._addr;
  }
  /** Priority among siblings (set when added). */
  get priority(): number {
    return this._priority;
  }
  /** The container this region is a subregion of, or null. */
  get container(): MemoryRegion | null {
    return this._container;
  }
  /** Number of mapped aliases whose alias chain passes through this region. */
  get mappedViaAlias(): number {
    return this._mappedViaAlias;
  }
  /**
   * Subregions in QEMU list order: priority descending, and among equal priorities the most
   * recently added first. Change it with add/delSubregion.
   */
  get subregions(): readonly MemoryRegion[] {
    // Materialized once per change of the list, so a render or walk after a batch of adds costs
    // one copy, not one per add.
    if (this._subregionsView === null) {
      const rev = this._subsReversed;
      const live = this._subsHoles === 0 ? rev.slice() : rev.filter((r) => r instanceof MemoryRegion);
      this._subregionsView = (live as MemoryRegion[]).reverse();
    }
    return this._subregionsView;
  }
  /**
   * The subregion list in reverse (priority ascending, oldest first among equals). QEMU inserts a
   * new subregion before the first sibling of lower or equal priority, so a run of equal-priority
   * adds (how every board and the dump reader build) always lands at the front of QEMU's list: at
   * the end of this array, where inserting is a push instead of moving every sibling.
   *
   * So the array is sorted by (priority, link sequence number): a subregion is found by binary
   * search. A removed one leaves a {@link SubregionHole} with its key, so removing never moves the
   * others; holes are squeezed out once they are more than the subregions.
   */
  private _subsReversed: Array<MemoryRegion | SubregionHole> = [];
  private _subsHoles = 0;
  private _nextLinkSeq = 0;
  private _subregionsView: MemoryRegion[] | null = null;
  /** Disabled regions and their subtrees are invisible to the flat view. */
  get enabled(): boolean {
    return this._enabled;
  }
  /** True for every kind that is not a container or an alias: the region paints the gaps it covers. */
  readonly terminates: boolean;
  /** Alias target, for aliases. */
  readonly alias: MemoryRegion | null;
  /** Offset into the alias target. */
  get aliasOffset(): bigint {
    return this._aliasOffset;
  }
  /** Directly accessible host memory (RAM, ROM, RAM device). */
  readonly ram: boolean;
  /** Writes refused (ROM); on aliases and containers the flag is inherited by the flat view only. */
  get readonly(): boolean {
    return this._readonly;
  }
  /** Non-volatile memory (prints `nv-`). */
  get nonvolatile(): boolean {
    return this._nonvolatile;
  }
  /** ROM device. */
  readonly romDevice: boolean;
  /** ROM devices: reads go to memory (true) or to the callbacks (false). */
  get romdMode(): boolean {
    return this._romdMode;
  }
  /** RAM device: host memory accessed through byte-transparent callbacks. */
  readonly ramDevice: boolean;
  /** IOMMU region. */
  readonly isIommu: boolean;
  /** Callbacks (the unassigned ops unless the kind has its own). */
  readonly ops: MemoryRegionOps;
  /** IOMMU translation callbacks, for IOMMU regions. */
  readonly iommuOps: IommuOps | null;
  /** Backing memory of RAM, ROM, ROM device and RAM device regions. */
  readonly ramBlock: RAMBlock | null;
  /** Dirty logging clients enabled on this region itself (only VGA is stored here). */
  get dirtyLogMask(): number {
    return this._dirtyLogMask;
  }
  /** Counter behind the VGA bit of {@link dirtyLogMask}. */
  get vgaLoggingCount(): number {
    return this._vgaLoggingCount;
  }
  /** Coalesced-MMIO ranges. */
  get coalesced(): readonly CoalescedRange[] {
    return this._coalesced;
  }
  private readonly _coalesced: CoalescedRange[] = [];
  /** Accelerator hint set by coalescing. */
  get flushCoalescedMmio(): boolean {
    return this._flushCoalescedMmio;
  }
  /** ioeventfds, kept sorted as QEMU does. */
  get ioeventfds(): readonly RegionIoeventfd[] {
    return this._ioeventfds;
  }
  private readonly _ioeventfds: RegionIoeventfd[] = [];
  /** IOMMU notifiers, newest first (QEMU inserts at the head). */
  private readonly iommuNotifiers: IommuNotifier[] = [];
  private iommuNotifyFlags = 0;
  /** Aliases whose target is this region (the reverse of {@link alias}). */
  get aliasedBy(): readonly MemoryRegion[] {
    return this._aliasedBy;
  }
  private readonly _aliasedBy: MemoryRegion[] = [];
  /** Opt out of the device re-entrancy guard (QEMU `disable_reentrancy_guard`). */
  disableReentrancyGuard = false;
  /** @internal The owner's re-entrancy state in this system; null without an owner. */
  readonly guard: ReentrancyGuard | null;

  /** @internal Whether an access to this region engages its owner's re-entrancy guard (QEMU 7.2.x). */
  get guarded(): boolean {
    return (
      this.guard !== null &&
      !this.disableReentrancyGuard &&
      !this.ramDevice &&
      !this.ram &&
      !this.romDevice &&
      !this.readonly
    );
  }
  /** Whether the callbacks are big-endian (device byte order resolved against the target's). */
  readonly bigEndianOps: boolean;
  /**
   * @internal Access sizes (bit mask of 1, 2, 4, 8) for which an aligned typed access with
   * unspecified attributes is exactly one plain callback of that size: what QEMU's dispatch does
   * when the access is valid and the device implements that width (the fast path still honours
   * the re-entrancy guard and, for writes, ioeventfds). The address-space fast path relies on it.
   */
  fastReadSizes = 0;
  /** @internal Like {@link fastReadSizes}, for writes (0 while the region has ioeventfds). */
  fastWriteSizes = 0;
  private fastWriteBase = 0;
  /**
   * @internal Access sizes (bit mask) for which an aligned typed access with unspecified attributes
   * is valid and served by the plain `read` callback, possibly split, widened or byte-swapped
   * (`IoDispatcher.readPlain`); a superset of {@link fastReadSizes}.
   */
  plainReadSizes = 0;
  /** @internal Like {@link plainReadSizes}, for writes (0 while the region has ioeventfds). */
  plainWriteSizes = 0;
  private plainWriteBase = 0;
  /** @internal The smallest and largest width the callbacks implement (QEMU's `impl`, defaulted). */
  readonly implMin: number;
  /** @internal See {@link implMin}. */
  readonly implMax: number;

  /** @internal Use the factories of {@link MemorySystem}. */
  constructor(
    system: MemorySystem,
    kind: RegionKind,
    name: string | null,
    size: U64Input,
    init: {
      owner?: MemoryOwner | null;
      ops?: MemoryRegionOps;
      alias?: MemoryRegion;
      aliasOffset?: U64Input;
      ramBlock?: RAMBlock | null;
      iommuOps?: IommuOps | null;
    },
  ) {
    if (name !== null && typeof name !== 'string') {
      throw new InvalidArgumentError(`a region name must be a string or null, not ${printable(name)}`);
    }
    if (init.ops !== undefined && (typeof init.ops !== 'object' || init.ops === null)) {
      throw new InvalidArgumentError(`region "${name}": ops must be an object, not ${printable(init.ops)}`);
    }
    this.system = system;
    this.kind = kind;
    this.name = name;
    this.owner = init.owner ?? null;
    this._size = toSize(size, `size of region "${name}"`);
    this.terminates = kind !== 'container' && kind !== 'alias';
    this.ram = kind === 'ram' || kind === 'rom' || kind === 'ram-device';
    this._readonly = kind === 'rom';
    this.romDevice = kind === 'rom-device';
    this.ramDevice = kind === 'ram-device';
    this.isIommu = kind === 'iommu';
    this.ops = init.ops ?? system.unassignedOps;
    this.iommuOps = init.iommuOps ?? null;
    this.ramBlock = init.ramBlock ?? null;
    const e = this.ops.endianness ?? 'native';
    this.bigEndianOps = e === 'big' || (e === 'native' && system.bigEndian);
    this.guard = this.owner === null ? null : system.dispatcher.guardOf(this.owner);
    this.implMin = this.ops.impl?.minAccessSize || 1;
    this.implMax = this.ops.impl?.maxAccessSize || 4;
    if (kind === 'io') {
      this.fastReadSizes = this.ops.read ? accessSizes(this.ops, true) : 0;
      this.fastWriteBase = this.ops.write ? accessSizes(this.ops, true) : 0;
      this.fastWriteSizes = this.fastWriteBase;
      this.plainReadSizes = this.ops.read ? accessSizes(this.ops, false) : 0;
      this.plainWriteBase = this.ops.write ? accessSizes(this.ops, false) : 0;
      this.plainWriteSizes = this.plainWriteBase;
    }
    if (kind === 'alias') {
      const target = init.alias;
      if (!target) throw new InvalidArgumentError(`alias "${name}" needs a target region`);
      system.checkOwn(target, `target of alias "${name}"`);
      this._aliasOffset = toU64(init.aliasOffset ?? 0, `alias offset of "${name}"`);
      this.alias = target;
      target._aliasedBy.push(this);
    } else {
      this.alias = null;
    }
  }

  /** A printable name for messages. */
  get label(): string {
    return this.name === null ? '(noname)' : `"${this.name}"`;
  }

  // ---------------------------------------------------------------------------------------------
  // Subregions

  /**
   * Maps `subregion` at `offset` inside this region, with priority 0 (QEMU
   * `memory_region_add_subregion`). The subregion must not already be in a container.
   */
  addSubregion(offset: U64Input, subregion: MemoryRegion): void {
    this.addSubregionCommon(offset, subregion, 0, 'addSubregion');
  }

  /**
   * Maps `subregion` at `offset` with `priority` (QEMU `memory_region_add_subregion_overlap`). Where
   * siblings overlap, the higher priority wins; among equal priorities the most recently added wins.
   */
  addSubregionOverlap(offset: U64Input, subregion: MemoryRegion, priority: number): void {
    this.addSubregionCommon(offset, subregion, priority, 'addSubregionOverlap');
  }

  private addSubregionCommon(offset: U64Input, sub: MemoryRegion, priority: number, op: string): void {
    const off = toU64(offset, `${op}: offset of ${sub?.label} in ${this.label}`);
    const prio = toPriority(priority, `${op}: priority of ${sub?.label}`);
    this.system.checkOwn(sub, `${op}: subregion of ${this.label}`);
    if (sub.container) {
      throw new RegionInUseError(
        `${op}: region ${sub.label} is already a subregion of ${sub.container.label}; remove it first`,
      );
    }
    for (let c: MemoryRegion | null = this; c; c = c.container) {
      if (c === sub) {
        throw new InvalidArgumentError(
          `${op}: region ${sub.label} cannot contain itself (via ${this.label})`,
        );
      }
    }
    const loop = closesLoop(this, sub);
    const oldPriority = sub.priority;
    const oldAddr = sub.addr;
    sub._priority = prio;
    this.system.begin();
    try {
      this.link(off, sub);
      if (loop) {
        // Render the whole tree once now: if the loop never ends, undo before anything is committed.
        let top: MemoryRegion = this;
        while (top.container) top = top.container;
        try {
          renderRanges(top);
        } catch (e) {
          this.unlink(sub);
          sub._priority = oldPriority;
          sub._addr = oldAddr;
          throw e;
        }
      }
    } finally {
      this.system.commit();
    }
  }

  /** @internal add without checks, inside a transaction (QEMU `memory_region_add_subregion_common`). */
  link(offset: bigint, sub: MemoryRegion, oldSeq?: number): void {
    const seq = oldSeq ?? this._nextLinkSeq++;
    sub._container = this;
    for (let a = sub.alias; a; a = a.alias) a._mappedViaAlias++;
    sub._addr = offset;
    sub._linkSeq = seq;
    // QEMU `memory_region_update_container_subregions`: before the first sibling whose priority
    // is lower or equal. In the reversed array that is after the last sibling of lower or equal
    // priority (a new sequence number is above every other), found by binary search unless it is
    // the end (a run of equal-priority adds).
    const rev = this._subsReversed;
    const n = rev.length;
    const at =
      oldSeq === undefined && (n === 0 || rev[n - 1]!.priority <= sub.priority)
        ? n
        : this.slotAfter(sub.priority, seq);
    if (at === n) rev.push(sub);
    else rev.splice(at, 0, sub);
    this._subregionsView = null;
    if (this.enabled && sub.enabled) this.system.topologyChanged(this, sub);
    else this.system.noteChanged(sub); // sub.addr changed: shows if sub is (or resolves to) a view root
  }

  /** Removes `subregion` from this container (QEMU `memory_region_del_subregion`). */
  delSubregion(subregion: MemoryRegion): void {
    this.system.checkOwn(subregion, `delSubregion: subregion of ${this.label}`);
    if (subregion.container !== this) {
      throw new NotSubregionError(
        `delSubregion: region ${subregion.label} is not a subregion of ${this.label}` +
          (subregion.container ? ` (it is in ${subregion.container.label})` : ' (it is in no container)'),
      );
    }
    this.system.begin();
    try {
      this.unlink(subregion);
    } finally {
      this.system.commit();
    }
  }

  /** @internal */
  unlink(sub: MemoryRegion): void {
    if (this.enabled && sub.enabled) this.system.topologyChanged(this, sub);
    sub._container = null;
    for (let a = sub.alias; a; a = a.alias) a._mappedViaAlias--;
    // The slot of `sub` is the last one whose key is at most its own.
    this._subsReversed[this.slotAfter(sub.priority, sub._linkSeq) - 1] = new SubregionHole(
      sub.priority,
      sub._linkSeq,
    );
    this._subregionsView = null;
    if (++this._subsHoles * 2 > this._subsReversed.length) this.squeezeHoles();
  }

  /** The first slot whose (priority, link sequence) key is above the given one. */
  private slotAfter(priority: number, seq: number): number {
    const rev = this._subsReversed;
    let lo = 0;
    let hi = rev.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      const e = rev[mid]!;
      const p = e.priority;
      if (p < priority || (p === priority && (e instanceof MemoryRegion ? e._linkSeq : e.seq) <= seq))
        lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  /** Drops the holes removals left, keeping the order. */
  private squeezeHoles(): void {
    this._subsReversed = this._subsReversed.filter((r) => r instanceof MemoryRegion);
    this._subsHoles = 0;
  }

  /** Whether the region is mapped: in a container, or reached through a mapped alias. */
  isMapped(): boolean {
    return this.container !== null || this.mappedViaAlias > 0;
  }

  // ---------------------------------------------------------------------------------------------
  // Attribute setters (each one a transaction; setting the current value is a no-op)

  /** Shows or hides the region and its subtree (QEMU `memory_region_set_enabled`). */
  setEnabled(enabled: boolean): void {
    if (toBool(enabled, `setEnabled of ${this.label}`) === this.enabled) return;
    this.loopChecked(
      () => {
        this._enabled = enabled;
        this.system.topologyChanged(this.container, this);
      },
      () => {
        this._enabled = !enabled;
      },
    );
  }

  /**
   * Runs `apply` in a transaction. If the region then lies on a loop (its subregions or alias
   * targets lead back to itself or to one of its containers), the tree is rendered at once, as
   * {@link addSubregion} does: should that recurse without end, `undo` restores the region before
   * the commit and the error propagates, so a failed call changes nothing.
   */
  private loopChecked(apply: () => void, undo: () => void): void {
    this.system.begin();
    try {
      apply();
      if (closesLoop(this.container ?? this, this)) {
        let top: MemoryRegion = this;
        while (top.container) top = top.container;
        try {
          renderRanges(top);
        } catch (e) {
          undo();
          throw e;
        }
      }
    } finally {
      this.system.commit();
    }
  }

  /**
   * Changes the size (QEMU `memory_region_set_size`); `2^64 - 1` means the whole space. This does
   * not resize the RAM block behind a RAM region.
   */
  setSize(size: U64Input): void {
    const s = toSize(size, `setSize of ${this.label}`);
    const old = this.size;
    if (s === old) return;
    this.loopChecked(
      () => {
        this.system.topologyChanged(this.container, this);
        this._size = s;
        this.system.topologyChanged(this.container, this);
      },
      () => {
        this._size = old;
      },
    );
  }

  /**
   * Moves the region inside its container (QEMU `memory_region_set_address`). Moving re-adds it, so
   * it then comes first among its equal-priority siblings.
   */
  setAddress(addr: U64Input): void {
    const a = toU64(addr, `setAddress of ${this.label}`);
    if (a === this.addr) return;
    const c = this.container;
    if (!c) {
      // QEMU stores the address without a topology update; it shows at the next commit.
      this._addr = a;
      this.system.noteChanged(this);
      return;
    }
    const old = this.addr;
    const seq = this._linkSeq;
    this.loopChecked(
      () => {
        c.unlink(this);
        c.link(a, this);
      },
      () => {
        // Back to the old address and the old place among its siblings.
        c.unlink(this);
        c.link(old, this, seq);
      },
    );
  }

  /** Changes the offset of an alias into its target (QEMU `memory_region_set_alias_offset`). */
  setAliasOffset(offset: U64Input): void {
    if (!this.alias) throw new WrongKindError(`setAliasOffset: region ${this.label} is not an alias`);
    const o = toU64(offset, `setAliasOffset of ${this.label}`);
    const old = this.aliasOffset;
    if (o === old) return;
    this.loopChecked(
      () => {
        if (this.enabled) this.system.topologyChanged(this.container, this);
        this._aliasOffset = o;
        if (this.enabled) this.system.topologyChanged(this.container, this);
      },
      () => {
        this._aliasOffset = old;
      },
    );
  }

  /**
   * Runs `apply` in a transaction as a change of how this region renders: views re-render where
   * the region shows, if it is enabled (the pending condition QEMU's setters use).
   */
  private changeRendering(apply: () => void): void {
    this.system.begin();
    try {
      apply();
      if (this.enabled) this.system.topologyChanged(this.container, this);
    } finally {
      this.system.commit();
    }
  }

  /** Makes the region read-only or writable (QEMU `memory_region_set_readonly`). */
  setReadonly(readonly: boolean): void {
    if (toBool(readonly, `setReadonly of ${this.label}`) === this.readonly) return;
    this.changeRendering(() => {
      this._readonly = readonly;
    });
  }

  /** Marks the region non-volatile (QEMU `memory_region_set_nonvolatile`). */
  setNonvolatile(nonvolatile: boolean): void {
    if (toBool(nonvolatile, `setNonvolatile of ${this.label}`) === this.nonvolatile) return;
    this.changeRendering(() => {
      this._nonvolatile = nonvolatile;
    });
  }

  /**
   * Switches a ROM device between romd mode (reads from memory) and I/O mode (reads through the
   * callbacks) (QEMU `memory_region_rom_device_set_romd`).
   */
  setRomdMode(romdMode: boolean): void {
    if (!this.romDevice) throw new WrongKindError(`setRomdMode: region ${this.label} is not a ROM device`);
    if (toBool(romdMode, `setRomdMode of ${this.label}`) === this.romdMode) return;
    this.changeRendering(() => {
      this._romdMode = romdMode;
    });
  }

  /**
   * Turns dirty logging for `client` on or off (QEMU `memory_region_set_log`). Only the VGA client
   * can be toggled per region; the others follow global state.
   */
  setLog(log: boolean, client: number): void {
    toBool(log, `setLog of ${this.label}`);
    if (client !== DIRTY_MEMORY_VGA) {
      throw new InvalidArgumentError(`setLog on ${this.label}: only DIRTY_MEMORY_VGA can be set per region`);
    }
    const old = this.vgaLoggingCount;
    this._vgaLoggingCount += log ? 1 : -1;
    if (this.vgaLoggingCount < 0) {
      this._vgaLoggingCount = 0;
      throw new InvalidArgumentError(`setLog on ${this.label}: logging was not enabled`);
    }
    if ((old === 0) === (this.vgaLoggingCount === 0)) return;
    this.changeRendering(() => {
      this._dirtyLogMask = (this.dirtyLogMask & ~(1 << client)) | ((log ? 1 : 0) << client);
    });
  }

  // ---------------------------------------------------------------------------------------------
  // ioeventfds and coalesced MMIO

  /**
   * Registers an ioeventfd (QEMU `memory_region_add_eventfd`): a guest write of `size` bytes at
   * `addr` in this region (and, if `matchData`, of the value `data`, given as a CPU of the target
   * would store it) signals `notifier` instead of calling the write callback. `size` 0 matches any.
   */
  addEventfd(
    addr: U64Input,
    size: number,
    matchData: boolean,
    data: U64Input,
    notifier: EventNotifier,
  ): void {
    if (![0, 1, 2, 4, 8].includes(size)) {
      throw new InvalidArgumentError(`addEventfd on ${this.label}: size ${size} is not 0, 1, 2, 4 or 8`);
    }
    const fd = this.eventfdEntry('addEventfd', addr, size, matchData, data, notifier);
    this.system.begin();
    let i = 0;
    while (i < this.ioeventfds.length && ioeventfdBefore(this.ioeventfds[i]!, fd)) i++;
    this._ioeventfds.splice(i, 0, fd);
    this.ioeventfdsChanged(1);
    this.system.commit();
  }

  /** An ioeventfd entry as QEMU stores it: data converted from target order to device order. */
  private eventfdEntry(
    op: string,
    addr: U64Input,
    size: number,
    matchData: boolean,
    data: U64Input,
    notifier: EventNotifier,
  ): RegionIoeventfd {
    const start = toU64(addr, `${op} on ${this.label}: address`);
    let d = toU64(data, `${op} on ${this.label}: data`);
    if (size) d = this.system.targetToDevice(this, d, size);
    return {
      start,
      size: BigInt(size),
      matchData,
      data: d,
      notifier,
      notifierId: this.system.notifierId(notifier),
    };
  }

  /**
   * Removes an ioeventfd (QEMU `memory_region_del_eventfd`): the first one equal to the arguments
   * as QEMU compares them (size 0 on either side matches any entry at that address).
   */
  delEventfd(
    addr: U64Input,
    size: number,
    matchData: boolean,
    data: U64Input,
    notifier: EventNotifier,
  ): void {
    const probe = this.eventfdEntry('delEventfd', addr, size, matchData, data, notifier);
    const i = this.ioeventfds.findIndex((e) => ioeventfdEqual(probe, e));
    if (i < 0) {
      throw new InvalidArgumentError(`delEventfd on ${this.label}: no such ioeventfd at ${hex(probe.start)}`);
    }
    this.system.begin();
    this._ioeventfds.splice(i, 1);
    this.ioeventfdsChanged(-1);
    this.system.commit();
  }

  /** After an ioeventfd was added (+1) or removed (-1), inside the caller's transaction. */
  private ioeventfdsChanged(delta: 1 | -1): void {
    this.system.ioeventfdCount += delta;
    // While the region has ioeventfds, writes must be matched against them: no direct callback,
    // and none cached by an address space, may skip them.
    this.fastWriteSizes = this.ioeventfds.length === 0 ? this.fastWriteBase : 0;
    this.plainWriteSizes = this.ioeventfds.length === 0 ? this.plainWriteBase : 0;
    for (const as of this.system.addressSpaces) as.flushDeviceWrites();
    if (this.enabled) this.system.ioeventfdChanged();
  }

  /** Marks the whole region as coalesced MMIO (QEMU `memory_region_set_coalescing`). */
  setCoalescing(): void {
    this.clearCoalescing();
    this.addCoalescing(0n, this.size);
  }

  /** Adds a coalesced-MMIO range (QEMU `memory_region_add_coalescing`); listeners hear it at once. */
  addCoalescing(offset: U64Input, size: U64Input): void {
    const r: CoalescedRange = {
      start: toU64(offset, `addCoalescing on ${this.label}`),
      size: toSize(size, `addCoalescing on ${this.label}`),
    };
    this._coalesced.push(r);
    this.system.coalescedChanged(this, r, true);
    this._flushCoalescedMmio = true;
  }

  /** Removes all coalesced-MMIO ranges (QEMU `memory_region_clear_coalescing`). */
  clearCoalescing(): void {
    if (this.coalesced.length === 0) return;
    this._flushCoalescedMmio = false;
    while (this.coalesced.length) {
      const r = this._coalesced.shift()!;
      this.system.coalescedChanged(this, r, false);
    }
  }

  // ---------------------------------------------------------------------------------------------
  // IOMMU notifiers (QEMU memory_region_register_iommu_notifier & co.)

  private iommuRegion(op: string): MemoryRegion {
    let r: MemoryRegion = this;
    while (r.alias) r = r.alias;
    if (!r.isIommu || !r.iommuOps)
      throw new WrongKindError(`${op}: region ${this.label} is not an IOMMU region`);
    return r;
  }

  /**
   * Registers `notifier` on this IOMMU region (or the IOMMU an alias leads to): it then hears map
   * and unmap events in its range. The IOMMU is told when the union of notifier flags changes and
   * may refuse, in which case nothing is registered.
   */
  registerIommuNotifier(notifier: IommuNotifier): void {
    const r = this.iommuRegion('registerIommuNotifier');
    const idx = notifier.iommuIndex ?? 0;
    const indexes = r.iommuOps!.numIndexes?.() ?? 1;
    if (!notifier.flags)
      throw new InvalidArgumentError(`registerIommuNotifier on ${r.label}: no event flags`);
    if (notifier.start > notifier.end) {
      throw new InvalidArgumentError(
        `registerIommuNotifier on ${r.label}: start ${hex(notifier.start)} > end ${hex(notifier.end)}`,
      );
    }
    if (!Number.isInteger(idx) || idx < 0 || idx >= indexes) {
      throw new InvalidArgumentError(
        `registerIommuNotifier on ${r.label}: IOMMU index ${idx} is not in 0..${indexes - 1}`,
      );
    }
    r.iommuNotifiers.unshift(notifier);
    try {
      r.updateIommuFlags();
    } catch (e) {
      r.iommuNotifiers.shift();
      throw e;
    }
  }

  /** Unregisters a notifier (QEMU `memory_region_unregister_iommu_notifier`). */
  unregisterIommuNotifier(notifier: IommuNotifier): void {
    const r = this.iommuRegion('unregisterIommuNotifier');
    const i = r.iommuNotifiers.indexOf(notifier);
    if (i < 0)
      throw new InvalidArgumentError(`unregisterIommuNotifier on ${r.label}: notifier not registered`);
    r.iommuNotifiers.splice(i, 1);
    r.updateIommuFlags();
  }

  private updateIommuFlags(): void {
    let flags = 0;
    for (const n of this.iommuNotifiers) flags |= n.flags;
    if (flags !== this.iommuNotifyFlags) {
      this.iommuOps!.notifyFlagChanged?.(this.iommuNotifyFlags, flags);
      this.iommuNotifyFlags = flags;
    }
  }

  /**
   * Delivers a mapping change of IOMMU index `iommuIndex` to the notifiers that asked for it
   * (QEMU `memory_region_notify_iommu`): those whose range the entry touches; device-IOTLB
   * notifiers get the entry cropped to their range, the others must contain it whole.
   */
  iommuNotify(iommuIndex: number, event: IommuEvent): void {
    const r = this.iommuRegion('iommuNotify');
    const e = event.entry;
    if (event.type === IOMMU_NOTIFIER_UNMAP && e.perm !== IOMMU_NONE) {
      throw new InvalidArgumentError(`iommuNotify on ${r.label}: an UNMAP event must carry permission NONE`);
    }
    const entryEnd = e.iova + e.addrMask;
    for (const n of [...r.iommuNotifiers]) {
      if ((n.iommuIndex ?? 0) !== iommuIndex) continue;
      if (n.start > entryEnd || n.end < e.iova) continue;
      let entry = e;
      if (n.flags & IOMMU_NOTIFIER_DEVIOTLB_UNMAP) {
        const iova = e.iova > n.start ? e.iova : n.start;
        entry = { ...e, iova, addrMask: (entryEnd < n.end ? entryEnd : n.end) - iova };
      } else if (e.iova < n.start || entryEnd > n.end) {
        throw new InvalidArgumentError(
          `iommuNotify on ${r.label}: entry ${hex(e.iova)}..${hex(entryEnd)} crosses the notifier range ${hex(n.start)}..${hex(n.end)}`,
        );
      }
      if (event.type & n.flags) n.notify(entry);
    }
  }

  /**
   * Replays the current mappings to `notifier` (QEMU `memory_region_iommu_replay`): the IOMMU's own
   * replay if it has one, else every minimum-size page is translated and each mapped one notified
   * (as in QEMU, that walk covers the whole region: give large IOMMUs their own `replay`).
   */
  iommuReplay(notifier: IommuNotifier): void {
    const r = this.iommuRegion('iommuReplay');
    const ops = r.iommuOps!;
    if (ops.replay) {
      ops.replay(notifier);
      return;
    }
    const granule = ops.minPageSize?.() ?? 4096n;
    const idx = notifier.iommuIndex ?? 0;
    for (let addr = 0n; addr < r.size; addr += granule) {
      const entry = ops.translate(addr, IOMMU_NONE, idx);
      if (entry.perm !== IOMMU_NONE) notifier.notify(entry);
      if (addr + granule >= SIZE_2_64) break; // would wrap
    }
  }

  // ---------------------------------------------------------------------------------------------
  // Queries

  /** The region at the end of the alias chain (the region itself if it is no alias). */
  resolveAlias(): MemoryRegion {
    let r: MemoryRegion = this;
    while (r.alias) r = r.alias;
    return r;
  }

  /** QEMU `memory_region_get_dirty_log_mask`: logging clients active for this region. */
  dirtyMask(): number {
    return this.system.regionDirtyMask(this);
  }

  /** End of the region in its container's coordinates (exclusive), as an exact bigint. */
  get end(): bigint {
    return this.addr + this.size;
  }

  /** Whether the region spans the whole 64-bit space. */
  get isWholeSpace(): boolean {
    return this.size === SIZE_2_64;
  }

  toString(): string {
    return `MemoryRegion(${this.kind} ${this.label}, ${hex(this.size)} bytes)`;
  }
}

/**
 * Sizes (bit mask of 1, 2, 4, 8) of aligned accesses that QEMU's `memory_region_access_valid`
 * accepts without asking the device (no `accepts` hook) and that `access_with_adjusted_size`
 * serves with callbacks of a power-of-two width: with `exact`, only those served by exactly one
 * callback of the access's own size. A width of 8 bytes for a smaller access (the callback then
 * takes bigint values) is left to the general path.
 */
function accessSizes(ops: MemoryRegionOps, exact: boolean): number {
  const v = ops.valid;
  if (v?.accepts) return 0;
  const implMin = ops.impl?.minAccessSize || 1;
  const implMax = ops.impl?.maxAccessSize || 4;
  let mask = 0;
  for (const size of [1, 2, 4, 8]) {
    const validSize = !v?.maxAccessSize || (size <= v.maxAccessSize && size >= (v.minAccessSize ?? 0));
    const width = Math.max(Math.min(size, implMax), implMin);
    const plain = (width === 1 || width === 2 || width === 4 || width === 8) && (width !== 8 || size === 8);
    if (validSize && (exact ? width === size : plain)) mask |= size;
  }
  return mask;
}

/** QEMU `memory_region_ioeventfd_equal`. */
export function ioeventfdEqual(a: RegionIoeventfd, b: RegionIoeventfd): boolean {
  if (a.start !== b.start) return false;
  if (a.size === 0n || b.size === 0n) return true;
  return (
    a.size === b.size &&
    a.matchData === b.matchData &&
    (!a.matchData || a.data === b.data) &&
    a.notifier === b.notifier
  );
}

/** QEMU `memory_region_ioeventfd_before`: the sort order of ioeventfd lists. */
export function ioeventfdBefore(a: RegionIoeventfd, b: RegionIoeventfd): boolean {
  if (a.start !== b.start) return a.start < b.start;
  if (a.size !== b.size) return a.size < b.size;
  if (a.matchData !== b.matchData) return !a.matchData;
  if (a.matchData && a.data !== b.data) return a.data < b.data;
  return a.notifierId < b.notifierId;
}

/**
 * Whether `sub`, through its subregions and alias targets, reaches `container` or one of its
 * ancestors: then mapping it makes rendering come back to where it started. That can be legitimate
 * (an alias window of a container mapped into the container itself shrinks on every round, and
 * QEMU's Arm SSE does exactly this), so such an add is checked by rendering, not refused outright.
 */
function closesLoop(container: MemoryRegion, sub: MemoryRegion): boolean {
  const ancestors = new Set<MemoryRegion>();
  for (let c: MemoryRegion | null = container; c; c = c.container) ancestors.add(c);
  const seen = new Set<MemoryRegion>();
  const stack: MemoryRegion[] = [sub];
  while (stack.length) {
    const r = stack.pop()!;
    if (seen.has(r)) continue;
    seen.add(r);
    if (ancestors.has(r)) return true;
    if (r.alias) stack.push(r.alias);
    for (const c of r.subregions) stack.push(c);
  }
  return false;
}
