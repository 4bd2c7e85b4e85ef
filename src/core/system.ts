/**
 * @module core/system
 * `MemorySystem`: everything QEMU keeps in globals for one machine's memory — the transaction depth
 * and pending flags, the list of address spaces, the registered listeners, the current flat views,
 * the unassigned region, the RAM list and the dirty-logging state. Two systems in one process never
 * see each other, so two machines can run side by side (QEMU itself has only one).
 *
 * Regions are created through the factory methods here (QEMU's `memory_region_init_*`).
 */

import { checkSpan, printable, SIZE_2_64, toBool, toSize, type U64Input } from './address.js';
import { AddressSpace } from './address-space.js';
import { DIRTY_CLIENTS_ALL, DIRTY_MEMORY_NUM, type DirtyBitmapSnapshot, DirtyMemory } from './dirty.js';
import {
  ForeignRegionError,
  InvalidArgumentError,
  ListenerError,
  RamBlockError,
  RegionInUseError,
  TransactionError,
} from './errors.js';
import {
  FlatView,
  generateFlatView,
  rerenderRanges,
  resolveFlatViewRoot,
  sectionFromRange,
} from './flatview.js';
import { bswapBig, IoDispatcher } from './io-dispatch.js';
import type { IommuOps } from './iommu.js';
import type { MemoryListener } from './listener.js';
import {
  HOST_PAGE_SIZE,
  RAM_MIGRATABLE,
  RAM_PREALLOC,
  RAM_RESIZEABLE,
  RAMBlock,
  RAMList,
  type RamResizedCallback,
} from './ramblock.js';
import {
  type CoalescedRange,
  DIRTY_MEMORY_CODE,
  DIRTY_MEMORY_MIGRATION,
  MemoryRegion,
  type RegionOptions,
} from './region.js';
import type { MemoryRegionOps } from './types.js';

/** Options of a {@link MemorySystem}. */
export interface MemorySystemOptions {
  /** The emulated CPU is big-endian: `native` devices and ioeventfd data use big-endian order. */
  bigEndian?: boolean;
  /**
   * The emulator translates guest code (QEMU TCG): RAM-backed regions then carry the CODE dirty
   * client in their dirty mask, as in QEMU under TCG.
   */
  translatesCode?: boolean;
}

/** Options of the RAM factories. */
export interface RamOptions extends RegionOptions {
  /** Do not register the block for migration (QEMU `_nomigrate` variants). */
  nomigrate?: boolean;
  /** Make the block resizeable up to this many bytes (QEMU `memory_region_init_resizeable_ram`). */
  maxSize?: number;
  /** Called after a resize of a resizeable block. */
  resized?: RamResizedCallback;
}

/** QEMU `unassigned_mem_accepts`: nothing is ever accepted. */
const UNASSIGNED_OPS: MemoryRegionOps = Object.freeze({
  endianness: 'native',
  valid: Object.freeze({ accepts: () => false }),
}) as MemoryRegionOps;

/** A listener registration: the listener and the address space it watches. */
interface Registration {
  readonly listener: MemoryListener;
  readonly as: AddressSpace;
  readonly priority: number;
}

/** The memory of one machine. See the module comment. */
export class MemorySystem {
  /** Whether the target CPU is big-endian. */
  readonly bigEndian: boolean;
  /** Whether RAM carries the CODE dirty client (see {@link MemorySystemOptions.translatesCode}). */
  readonly translatesCode: boolean;
  /** The ops every region starts with (QEMU `unassigned_mem_ops`). */
  readonly unassignedOps: MemoryRegionOps = UNASSIGNED_OPS;
  /** QEMU `io_mem_unassigned`: serves every address no flat range covers. */
  readonly unassigned: MemoryRegion;
  /** The RAM blocks of this machine. */
  readonly ramList = new RAMList();
  /** Address spaces in creation order. */
  readonly addressSpaces: AddressSpace[] = [];
  /** Device access dispatcher (re-entrancy state, result slot). */
  readonly dispatcher: IoDispatcher;
  private readonly notifierIds = new WeakMap<object, number>();
  private nextNotifierId = 1;

  /**
   * @internal A stable number for an event notifier, standing in for the pointer QEMU compares
   * when it sorts ioeventfds. Kept per system, so machines never share state.
   */
  notifierId(n: object): number {
    let id = this.notifierIds.get(n);
    if (id === undefined) {
      id = this.nextNotifierId++;
      this.notifierIds.set(n, id);
    }
    return id;
  }

  /** @internal ioeventfds registered on all regions of this system. */
  ioeventfdCount = 0;
  /** Active global dirty tracking reasons (QEMU `global_dirty_tracking`). */
  globalDirtyTracking = 0;
  private runState = true;
  // Reasons of a global dirty-log stop requested while the guest was stopped (QEMU's
  // postponed_stop_flags; non-zero exactly while QEMU keeps its vmstate_change handler for it).
  private postponedStopFlags = 0;
  /** Dirty bitmaps of this machine's ram_addr space. */
  readonly dirty = new DirtyMemory();
  /**
   * Called when a write hits RAM whose CODE client is clean, i.e. a page the emulator translated
   * code from (QEMU `tb_invalidate_phys_range`); arguments are the ram_addr range.
   */
  onCodeWrite: ((ramAddr: number, length: number) => void) | null = null;

  /** @internal 8-byte scratch buffer for slow-path typed accesses. */
  readonly scratch = new Uint8Array(8);
  /** @internal */
  readonly scratchView = new DataView(this.scratch.buffer);
  /**
   * Called after every write that reached RAM directly (QEMU `invalidate_and_set_dirty`), with the
   * region, the offset in it and the length; dirty tracking hooks in here.
   */
  onRamWrite: ((mr: MemoryRegion, offset: number, length: number) => void) | null = null;

  private bounceBuffer = new Uint8Array(4096);
  private bounceInUse = false;
  private mapClients: Array<() => void> = [];
  private depth = 0;
  private topologyPending = false;
  private ioeventfdPending = false;
  /**
   * What changed since the last topology commit, as intervals in the coordinates of a region
   * (`node`): each commit re-renders only the addresses these map to in each view. null means
   * "anything may have changed" (every view is rendered from scratch).
   */
  private changes: Change[] | null = [];
  /** Regions whose own address or size changed: a view rooted at one of them moves as a whole. */
  private readonly moved = new Set<MemoryRegion>();
  private readonly registrations: Registration[] = [];
  private views = new Map<MemoryRegion | null, FlatView>();
  /** The permanent empty view shared by every address space whose root resolves to nothing. */
  readonly emptyView = new FlatView(null, []);

  constructor(options: MemorySystemOptions = {}) {
    this.bigEndian = options?.bigEndian ?? false;
    this.translatesCode = options?.translatesCode ?? false;
    this.dispatcher = new IoDispatcher(this.bigEndian);
    this.unassigned = new MemoryRegion(this, 'io', null, SIZE_2_64, {});
    this.views.set(null, this.emptyView);
    // Clearing dirty bits must drop cached write translations, or writes would skip marking.
    this.dirty.onClear = () => {
      for (const as of this.addressSpaces) as.flushWriteTlb();
    };
  }

  // ---------------------------------------------------------------------------------------------
  // Region factories (QEMU memory_region_init_*)

  /** A pure container: it paints nothing itself, so holes show what lies below it. */
  container(name: string | null, size: U64Input, options: RegionOptions = {}): MemoryRegion {
    checkName(name, true);
    return new MemoryRegion(this, 'container', name, size, { owner: options?.owner ?? null });
  }

  /** RAM backed by a new RAM block (QEMU `memory_region_init_ram`). */
  ram(name: string, size: U64Input, options: RamOptions = {}): MemoryRegion {
    return this.ramLike('ram', name, size, options, undefined);
  }

  /** Read-only RAM (QEMU `memory_region_init_rom`): reads direct, bus writes dropped. */
  rom(name: string, size: U64Input, options: RamOptions = {}): MemoryRegion {
    return this.ramLike('rom', name, size, options, undefined);
  }

  /**
   * A ROM device (QEMU `memory_region_init_rom_device`): in romd mode reads come from its memory and
   * writes go to `ops`; out of romd mode both go to `ops`.
   */
  romDevice(name: string, size: U64Input, ops: MemoryRegionOps, options: RamOptions = {}): MemoryRegion {
    checkName(name, false);
    if (!ops) throw new InvalidArgumentError(`romDevice "${name}": ops are required`);
    return this.ramLike('rom-device', name, size, options, ops);
  }

  /**
   * An I/O region whose accesses go to `ops` (QEMU `memory_region_init_io`). With `ops` null it is a
   * reservation: it hides what lies below but rejects every access like unassigned memory.
   */
  io(
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
    return new MemoryRegion(this, ops ? 'io' : 'reservation', name, s, {
      owner: options?.owner ?? null,
      ops: ops ?? undefined,
    });
  }

  /** A reservation: terminates (hides lower regions) but every access fails like unassigned memory. */
  reservation(name: string | null, size: U64Input, options: RegionOptions = {}): MemoryRegion {
    return this.io(name, size, null, options);
  }

  /**
   * An alias: a window of `size` bytes onto `target`, starting `offset` bytes into it (QEMU
   * `memory_region_init_alias`). Subregions added to an alias are never rendered.
   */
  alias(
    name: string | null,
    target: MemoryRegion,
    offset: U64Input,
    size: U64Input,
    options: RegionOptions = {},
  ): MemoryRegion {
    return new MemoryRegion(this, 'alias', name, size, {
      owner: options?.owner ?? null,
      alias: target,
      aliasOffset: offset,
    });
  }

  /** An IOMMU region (QEMU `memory_region_init_iommu`): accesses are translated by `iommuOps`. */
  iommu(name: string | null, size: U64Input, iommuOps: IommuOps, options: RegionOptions = {}): MemoryRegion {
    return new MemoryRegion(this, 'iommu', name, size, { owner: options?.owner ?? null, iommuOps });
  }

  /**
   * A RAM device (QEMU `memory_region_init_ram_device_ptr`): host memory reached through
   * byte-transparent callbacks (never directly), e.g. a BAR of an assigned host device.
   */
  ramDevice(name: string, size: U64Input, options: RegionOptions = {}): MemoryRegion {
    checkName(name, false);
    const s = Number(this.ramSize('RAM device', name, size));
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
    mr = new MemoryRegion(this, 'ram-device', name, s, {
      owner: options?.owner ?? null,
      ops,
      ramBlock: block,
    });
    block.mr = mr;
    this.addBlock(block);
    return mr;
  }

  /** Checks the size of a RAM-backed region. */
  private ramSize(what: string, name: string, size: U64Input): bigint {
    const s = toSize(size, `size of region "${name}"`);
    if (s > 2n ** 52n) throw new InvalidArgumentError(`${what} region "${name}": ${s} bytes is too large`);
    // QEMU asserts this in find_ram_offset: an empty block would share its offset with the next.
    if (s === 0n) throw new InvalidArgumentError(`${what} region "${name}": size must not be 0`);
    return s;
  }

  /** QEMU `ram_block_add`: places the block in ram_addr space; its pages start dirty for every client. */
  private addBlock(block: RAMBlock): void {
    this.ramList.add(block);
    this.dirty.setRange(block.offset, block.usedLength, DIRTY_CLIENTS_ALL);
  }

  private ramLike(
    kind: 'ram' | 'rom' | 'rom-device',
    name: string,
    size: U64Input,
    options: RamOptions,
    ops: MemoryRegionOps | undefined,
  ): MemoryRegion {
    checkName(name, false);
    const s = this.ramSize('RAM', name, size);
    const n = Number(s);
    const block = new RAMBlock(n, options?.maxSize ?? n, options?.maxSize !== undefined ? RAM_RESIZEABLE : 0);
    if (options?.resized) block.resized = options?.resized;
    const mr = new MemoryRegion(this, kind, name, s, { owner: options?.owner ?? null, ops, ramBlock: block });
    block.mr = mr;
    if (!options?.nomigrate) {
      this.ramList.setIdstr(block, name, options?.owner?.devicePath);
      block.flags |= RAM_MIGRATABLE;
    }
    this.addBlock(block);
    return mr;
  }

  /** A new address space named `name` rooted at `root` (QEMU `address_space_init`). */
  addressSpace(root: MemoryRegion, name = 'anonymous'): AddressSpace {
    return new AddressSpace(this, root, name);
  }

  // ---------------------------------------------------------------------------------------------
  // Transactions

  /** Opens a transaction (QEMU `memory_region_transaction_begin`). Transactions nest. */
  begin(): void {
    this.depth++;
  }

  /**
   * Closes a transaction (QEMU `memory_region_transaction_commit`). At the outermost commit, if the
   * topology changed, flat views are rebuilt and listeners told; otherwise only ioeventfds are.
   */
  commit(): void {
    if (this.depth === 0) throw new TransactionError('commit() without a matching begin()');
    if (--this.depth > 0) return;
    if (this.topologyPending) {
      this.topologyPending = false;
      this.ioeventfdPending = false;
      this.rebuildViews();
      const regs = this.registrations;
      for (const r of regs) r.listener.begin?.();
      for (const as of this.addressSpaces) {
        as.setFlatView(this.viewFor(as.root));
        as.updateIoeventfds();
      }
      for (const r of regs) r.listener.commit?.();
    } else if (this.ioeventfdPending) {
      this.ioeventfdPending = false;
      for (const as of this.addressSpaces) as.updateIoeventfds();
    }
  }

  /** Runs `fn` inside one transaction and returns its result. */
  transaction<T>(fn: () => T): T {
    if (typeof fn !== 'function')
      throw new InvalidArgumentError(`transaction: ${printable(fn)} is not a function`);
    this.begin();
    try {
      return fn();
    } finally {
      this.commit();
    }
  }

  /** Depth of the open transactions (0 when none is open). */
  get transactionDepth(): number {
    return this.depth;
  }

  /**
   * @internal `region` (a subregion of `parent`, or a region in no container) is about to change or
   * has just changed in a way that may alter flat views. Called before and after a change of
   * extent, so that both the old and the new place are re-rendered.
   */
  topologyChanged(parent: MemoryRegion | null, region: MemoryRegion): void {
    this.topologyPending = true;
    this.moved.add(region);
    const c = this.changes;
    if (c === null) return;
    // Where the region shows through its container, and where it shows through aliases that
    // target it directly (the walk from `region` also covers the container path it has now).
    if (parent) c.push({ node: parent, start: region.addr, end: region.addr + region.size });
    c.push({ node: region, start: 0n, end: region.size });
    if (c.length > MAX_CHANGES) this.changes = null;
  }

  /** @internal `region` changed in a way that shows at the next topology commit, without causing one. */
  noteChanged(region: MemoryRegion): void {
    this.moved.add(region);
  }

  /** @internal Every view must be rebuilt (global state such as dirty tracking changed). */
  everythingChanged(): void {
    this.topologyPending = true;
    this.changes = null;
  }

  /** @internal */
  ioeventfdChanged(): void {
    this.ioeventfdPending = true;
  }

  /** @internal The current view of a root region (rendering it now if nobody has it yet). */
  viewFor(root: MemoryRegion): FlatView {
    const physmr = resolveFlatViewRoot(root);
    let v = this.views.get(physmr);
    if (!v) {
      v = generateFlatView(physmr);
      this.views.set(physmr, v);
    }
    return v;
  }

  /**
   * QEMU `flatviews_reset`: one view per distinct resolved root. QEMU renders every view from
   * scratch on every topology commit; here a view is re-rendered only where the recorded changes can
   * show in it, which yields the same ranges (see {@link rerenderRanges}) and therefore the same
   * listener calls: a view nothing could touch is kept as it is and its listeners hear `regionNop`s.
   */
  private rebuildViews(): void {
    const changes = this.changes;
    this.changes = [];
    const old = this.views;
    const fresh = new Map<MemoryRegion | null, FlatView>();
    fresh.set(null, this.emptyView);
    for (const as of this.addressSpaces) {
      const physmr = resolveFlatViewRoot(as.root);
      if (fresh.has(physmr)) continue;
      fresh.set(physmr, this.updatedView(physmr!, old.get(physmr), changes));
    }
    this.moved.clear();
    this.views = fresh;
  }

  private updatedView(root: MemoryRegion, prev: FlatView | undefined, changes: Change[] | null): FlatView {
    if (!prev || changes === null || this.moved.has(root)) return generateFlatView(root);
    const intervals = affectedIntervals(root, changes);
    if (intervals === null) return generateFlatView(root);
    if (intervals.length === 0) return prev;
    return new FlatView(root, rerenderRanges(root, prev.ranges, intervals));
  }

  // ---------------------------------------------------------------------------------------------
  // Listeners

  /** @internal QEMU `memory_listener_register`. */
  registerListener(listener: MemoryListener, as: AddressSpace): void {
    if (this.registrations.some((r) => r.listener === listener)) {
      throw new ListenerError(`listener ${listener.name ?? '(unnamed)'} is already registered`);
    }
    if (listener.logSync && listener.logSyncGlobal) {
      throw new ListenerError(
        `listener ${listener.name ?? '(unnamed)'} defines both logSync and logSyncGlobal`,
      );
    }
    const priority = listener.priority ?? 0;
    const reg: Registration = { listener, as, priority };
    insertByPriority(this.registrations, reg);
    as.insertListener(reg.listener, priority);
    // listener_add_address_space
    listener.begin?.();
    if (this.globalDirtyTracking) listener.logGlobalStart?.();
    const view = as.currentView;
    for (const fr of view.ranges) {
      const sec = sectionFromRange(fr, view);
      listener.regionAdd?.(sec);
      if (fr.dirtyLogMask) listener.logStart?.(sec, 0, fr.dirtyLogMask);
    }
    listener.commit?.();
  }

  /** @internal QEMU `memory_listener_unregister`. */
  unregisterListener(listener: MemoryListener): void {
    const i = this.registrations.findIndex((r) => r.listener === listener);
    if (i < 0) throw new ListenerError(`listener ${listener.name ?? '(unnamed)'} is not registered`);
    const reg = this.registrations[i]!;
    const view = reg.as.currentView;
    listener.begin?.();
    for (const fr of view.ranges) {
      const sec = sectionFromRange(fr, view);
      if (fr.dirtyLogMask) listener.logStop?.(sec, fr.dirtyLogMask, 0);
      listener.regionDel?.(sec);
    }
    listener.commit?.();
    this.registrations.splice(i, 1);
    reg.as.removeListenerEntry(listener);
  }

  /** Registered listeners in global (ascending priority) order. */
  get listeners(): readonly MemoryListener[] {
    return this.registrations.map((r) => r.listener);
  }

  /** @internal QEMU `memory_region_update_coalesced_range`. */
  coalescedChanged(mr: MemoryRegion, cr: CoalescedRange, add: boolean): void {
    for (const as of this.addressSpaces) {
      const view = as.currentView;
      for (const fr of view.ranges) {
        if (fr.mr === mr) as.coalescedNotify(fr, cr, add, view);
      }
    }
  }

  /** @internal */
  forgetAddressSpace(as: AddressSpace): void {
    const i = this.addressSpaces.indexOf(as);
    if (i >= 0) this.addressSpaces.splice(i, 1);
  }

  // ---------------------------------------------------------------------------------------------
  // Helpers used by regions

  /** @internal Throws unless `mr` is a region of this system. */
  checkOwn(mr: MemoryRegion, what: string): void {
    if (!(mr instanceof MemoryRegion)) throw new InvalidArgumentError(`${what}: not a MemoryRegion`);
    if (mr.system !== this) {
      throw new ForeignRegionError(`${what}: region ${mr.label} belongs to another MemorySystem`);
    }
  }

  /** @internal QEMU `invalidate_and_set_dirty`: after a direct write of RAM. */
  invalidateAndSetDirty(mr: MemoryRegion, offset: number, length: number): void {
    let mask = this.regionDirtyMask(mr);
    if (mask !== 0) {
      const start = mr.ramBlock!.offset + offset;
      mask = this.dirty.rangeIncludesClean(start, length, mask);
      if (mask & (1 << DIRTY_MEMORY_CODE)) {
        this.onCodeWrite?.(start, length);
        mask &= ~(1 << DIRTY_MEMORY_CODE);
      }
      this.dirty.setRange(start, length, mask);
    }
    const hook = this.onRamWrite;
    if (hook !== null) hook(mr, offset, length);
  }

  // ---------------------------------------------------------------------------------------------
  // Dirty logging

  /**
   * Whether the guest is running (QEMU `runstate_is_running()`); true until {@link setRunning}
   * says otherwise. The memory core uses it only to postpone a global dirty-log stop while the
   * guest is stopped (R11.9).
   */
  get running(): boolean {
    return this.runState;
  }

  /**
   * Tells the memory system that the guest stopped or started running (what QEMU's run-state
   * change handlers hear from `vm_stop` / `vm_start`). A dirty-log stop requested while the guest
   * was stopped takes effect when it runs again.
   */
  setRunning(running: boolean): void {
    toBool(running, 'setRunning');
    this.runState = running;
    if (running && this.postponedStopFlags) this.runPostponedStop();
  }

  /**
   * QEMU `memory_global_dirty_log_start`: adds tracking reasons (`GLOBAL_DIRTY_MIGRATION` = 1,
   * `DIRTY_RATE` = 2, `LIMIT` = 4). A stop postponed while the guest was stopped is settled first,
   * minus the reasons being started. The first reason tells listeners (`logGlobalStart`) and then
   * re-renders, which adds the MIGRATION client to RAM ranges (listeners hear `logStart`).
   */
  globalDirtyLogStart(flags = 1): void {
    checkGlobalDirtyFlags(flags, 'globalDirtyLogStart');
    if (this.postponedStopFlags) {
      this.postponedStopFlags &= ~flags;
      this.runPostponedStop();
    }
    const add = flags & ~this.globalDirtyTracking;
    if (!add) return;
    const old = this.globalDirtyTracking;
    this.globalDirtyTracking |= add;
    if (!old) {
      for (const r of this.registrations) r.listener.logGlobalStart?.();
      this.begin();
      this.everythingChanged();
      this.commit();
    }
  }

  /**
   * QEMU `memory_global_dirty_log_stop`: removes tracking reasons; when none is left, re-renders
   * (listeners hear `logStop`) and then calls `logGlobalStop` in reverse order. While the guest is
   * stopped ({@link running} false) the stop is postponed, and batched with later ones, until it
   * runs again or logging is started again.
   */
  globalDirtyLogStop(flags = 1): void {
    checkGlobalDirtyFlags(flags, 'globalDirtyLogStop');
    // QEMU asserts this in memory_global_dirty_log_do_stop (for a postponed stop, only later).
    if ((this.globalDirtyTracking & flags) !== flags) {
      throw new InvalidArgumentError(
        `globalDirtyLogStop(${flags}): reasons ${flags & ~this.globalDirtyTracking} were never started`,
      );
    }
    if (!this.runState) {
      this.postponedStopFlags |= flags;
      return;
    }
    this.doGlobalDirtyLogStop(flags);
  }

  /** QEMU `memory_global_dirty_log_stop_postponed_run`. */
  private runPostponedStop(): void {
    const flags = this.postponedStopFlags;
    this.postponedStopFlags = 0;
    if (flags) this.doGlobalDirtyLogStop(flags);
  }

  /** QEMU `memory_global_dirty_log_do_stop`. */
  private doGlobalDirtyLogStop(flags: number): void {
    const del = flags & this.globalDirtyTracking;
    if (!del) return;
    this.globalDirtyTracking &= ~del;
    if (!this.globalDirtyTracking) {
      this.begin();
      this.everythingChanged();
      this.commit();
      const regs = this.registrations;
      for (let i = regs.length - 1; i >= 0; i--) regs[i]!.listener.logGlobalStop?.();
    }
  }

  /**
   * QEMU `memory_region_sync_dirty_bitmap`: asks listeners to push their dirty state into the
   * bitmaps, for the ranges of `mr` (or of every logged region when null).
   */
  logSync(mr: MemoryRegion | null = null): void {
    for (const r of this.registrations) {
      const l = r.listener;
      if (l.logSync) {
        const view = r.as.currentView;
        for (const fr of view.ranges) {
          if (fr.dirtyLogMask && (!mr || fr.mr === mr)) l.logSync(sectionFromRange(fr, view));
        }
      } else if (l.logSyncGlobal) {
        l.logSyncGlobal();
      }
    }
  }

  /** QEMU `memory_global_after_dirty_log_sync`. */
  logGlobalAfterSync(): void {
    for (const r of this.registrations) r.listener.logGlobalAfterSync?.();
  }

  /**
   * QEMU `memory_region_snapshot_and_clear_dirty`: syncs `mr`, then takes and clears `client`'s
   * dirty bits for `[offset, offset+size)` of the region (widened to 64 pages).
   */
  snapshotAndClearDirty(mr: MemoryRegion, offset: number, size: number, client: number): DirtyBitmapSnapshot {
    const rb = this.dirtyRange(mr, offset, size, 'snapshotAndClearDirty');
    checkClient(client, 'snapshotAndClearDirty');
    this.logSync(mr);
    const snap = this.dirty.snapshotAndClear(rb.offset + offset, size, client);
    this.logGlobalAfterSync();
    return snap;
  }

  /** QEMU `memory_region_snapshot_get_dirty`: region offsets into a snapshot. */
  snapshotGetDirty(mr: MemoryRegion, snap: DirtyBitmapSnapshot, offset: number, size: number): boolean {
    const rb = this.dirtyRange(mr, offset, size, 'snapshotGetDirty');
    return this.dirty.snapshotGetDirty(snap, rb.offset + offset, size);
  }

  /** QEMU `memory_region_set_dirty`: marks `[offset, offset+size)` of `mr` dirty for its clients. */
  setDirty(mr: MemoryRegion, offset: number, size: number): void {
    const rb = this.dirtyRange(mr, offset, size, 'setDirty');
    this.dirty.setRange(rb.offset + offset, size, this.regionDirtyMask(mr));
  }

  /** QEMU `memory_region_reset_dirty`: clears `client`'s bits for the range of `mr`. */
  resetDirty(mr: MemoryRegion, offset: number, size: number, client: number): boolean {
    const rb = this.dirtyRange(mr, offset, size, 'resetDirty');
    checkClient(client, 'resetDirty');
    return this.dirty.testAndClear(rb.offset + offset, size, client);
  }

  /**
   * The RAM block of `mr` after checking that `mr` is a RAM-backed region of this system and that
   * `[offset, offset + size)` (region offsets, in bytes) lies inside its used length: a range that
   * ran on would touch the bits of whatever block follows in ram_addr space.
   */
  private dirtyRange(mr: MemoryRegion, offset: number, size: number, what: string): RAMBlock {
    this.checkOwn(mr, what);
    const rb = mr.ramBlock;
    if (!rb) throw new InvalidArgumentError(`${what}: region ${mr.label} has no RAM`);
    checkSpan(offset, size, rb.usedLength, `${what} of ${mr.label}`);
    return rb;
  }

  /** @internal Takes the single bounce buffer (QEMU 7.2 has one per process), or null if in use. */
  acquireBounce(): Uint8Array | null {
    if (this.bounceInUse) return null;
    this.bounceInUse = true;
    return this.bounceBuffer;
  }

  /** @internal Frees the bounce buffer and notifies the waiting map clients once. */
  releaseBounce(): void {
    this.bounceInUse = false;
    this.bounceBuffer = new Uint8Array(4096);
    const clients = this.mapClients;
    this.mapClients = [];
    for (const c of clients) c();
  }

  /**
   * QEMU `cpu_register_map_client`: `callback` runs once when the bounce buffer becomes free (at
   * once if it is free now). Use it to retry a {@link AddressSpace.map} that returned null.
   */
  registerMapClient(callback: () => void): void {
    if (!this.bounceInUse) callback();
    else this.mapClients.push(callback);
  }

  // ---------------------------------------------------------------------------------------------
  // RAM blocks: resize, free, device writes

  /**
   * Observers told before a RAM block changes its used length (QEMU `ram_block_notify_resize`),
   * with the old and new (page-rounded) lengths. An outgoing migration registers one to cancel
   * itself: the destination could no longer match the block.
   */
  readonly ramResizeObservers = new Set<(block: RAMBlock, oldSize: number, newSize: number) => void>();

  /**
   * QEMU `qemu_ram_resize`: gives the block behind RAM region `mr` a new used length of `newSize`
   * bytes (rounded up to the host page). Only blocks created with `maxSize` can change length; the
   * new range starts dirty for every client, the region takes the unrounded size (a topology change)
   * and the block's `resized` callback runs.
   */
  ramResize(mr: MemoryRegion, newSize: number): void {
    this.checkOwn(mr, 'ramResize');
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
    for (const o of this.ramResizeObservers) o(block, block.usedLength, rounded);
    for (let c = 0; c < 3; c++) this.dirty.testAndClear(block.offset, block.usedLength, c);
    block.usedLength = rounded;
    this.dirty.setRange(block.offset, block.usedLength, DIRTY_CLIENTS_ALL);
    mr.setSize(newSize);
    block.resized?.(block.idstr, newSize, block);
  }

  /**
   * Destroys region `mr` (QEMU `object_unparent` of a region, `qemu_ram_free` for its block): the
   * region must not be in a container; its RAM block leaves the RAM list, its id is unregistered and
   * its ram_addr range becomes free for later blocks.
   */
  freeRegion(mr: MemoryRegion): void {
    this.checkOwn(mr, 'freeRegion');
    if (mr.container || mr.mappedViaAlias > 0) {
      throw new RegionInUseError(`freeRegion: region ${mr.label} is still mapped; remove it first`);
    }
    const block = mr.ramBlock;
    if (block && this.ramList.blocks.includes(block)) {
      this.ramList.remove(block);
      block.idstr = '';
    }
  }

  /**
   * A device's direct write into its own RAM (QEMU: a write through `memory_region_get_ram_ptr`
   * followed by `memory_region_set_dirty`): copies `data` to `offset` in `mr` and marks the pages
   * dirty for the clients that log the region.
   */
  writeRam(mr: MemoryRegion, offset: number, data: Uint8Array): void {
    const block = this.ramRange(mr, offset, data, 'writeRam');
    block.write(offset, data, 0, data.length);
    this.invalidateAndSetDirty(mr, offset, data.length);
  }

  /** Reads `dst.length` bytes of `mr`'s RAM at `offset`, as a device with a host pointer would. */
  readRam(mr: MemoryRegion, offset: number, dst: Uint8Array): void {
    this.ramRange(mr, offset, dst, 'readRam').read(offset, dst, 0, dst.length);
  }

  private ramRange(mr: MemoryRegion, offset: number, data: Uint8Array, what: string): RAMBlock {
    this.checkOwn(mr, what);
    const block = mr.ramBlock;
    if (!block) throw new InvalidArgumentError(`${what}: region ${mr.label} has no RAM block`);
    if (!(data instanceof Uint8Array))
      throw new InvalidArgumentError(`${what}: the buffer must be a Uint8Array`);
    checkSpan(offset, data.length, block.usedLength, `${what} of ${mr.label}`);
    return block;
  }

  /** QEMU `memory_region_get_dirty_log_mask`. */
  regionDirtyMask(mr: MemoryRegion): number {
    let mask = mr.dirtyLogMask;
    const rb = mr.ramBlock;
    if (this.globalDirtyTracking && ((rb && rb.flags & RAM_MIGRATABLE) || mr.isIommu)) {
      mask |= 1 << DIRTY_MEMORY_MIGRATION;
    }
    if (this.translatesCode && rb) mask |= 1 << DIRTY_MEMORY_CODE;
    return mask;
  }

  /** @internal Converts a value stored by the target CPU into the device value of `mr`. */
  targetToDevice(mr: MemoryRegion, data: bigint, size: number): bigint {
    const v = BigInt.asUintN(size * 8, data);
    return this.dispatcher.isBigEndian(mr) === this.bigEndian ? v : bswapBig(v, size);
  }
}

/** Throws unless `name` is a string (or null, where a region may be anonymous). */
function checkName(name: string | null, mayBeNull: boolean): void {
  if (typeof name === 'string' || (mayBeNull && name === null)) return;
  throw new InvalidArgumentError(
    `region name ${printable(name)} is not a string${mayBeNull ? ' or null' : ' (RAM needs a name)'}`,
  );
}

/** Throws unless `client` is a dirty memory client (`DIRTY_MEMORY_VGA`, `_CODE` or `_MIGRATION`). */
function checkClient(client: number, what: string): void {
  if (!Number.isInteger(client) || client < 0 || client >= DIRTY_MEMORY_NUM) {
    throw new InvalidArgumentError(`${what}: ${printable(client)} is not a dirty memory client (0, 1 or 2)`);
  }
}

/** QEMU's assertion on global dirty-log reasons: a non-empty subset of `GLOBAL_DIRTY_MASK` (7). */
function checkGlobalDirtyFlags(flags: number, what: string): void {
  if (!Number.isInteger(flags) || flags < 1 || flags > 7) {
    throw new InvalidArgumentError(
      `${what}: ${printable(flags)} is not a set of dirty-log reasons (1 migration, 2 dirty rate, 4 limit)`,
    );
  }
}

/** A changed interval `[start, end)` in the coordinates of region `node`. */
interface Change {
  readonly node: MemoryRegion;
  readonly start: bigint;
  readonly end: bigint;
}

/** Past this many changes in one commit, or origins of one region, render views from scratch. */
const MAX_CHANGES = 256;
const MAX_ORIGINS = 64;

/**
 * The guest-address intervals of the view of `root` where `changes` may show: every place each
 * changed node is rendered, found by walking up from the node through containers and through the
 * aliases that target it, the root included (an alias of the root, or of one of its ancestors,
 * shows the root's own contents again). Sorted, merged and clipped to [0, 2^64). null when the
 * walk meets a loop (a region shown inside itself: QEMU's render clips such a loop, and only a
 * full render clips it the same way) or when there are too many places: render from scratch then.
 */
function affectedIntervals(root: MemoryRegion, changes: Change[]): Array<[bigint, bigint]> | null {
  const memo = new Map<MemoryRegion, bigint[]>();
  const walking = new Set<MemoryRegion>();
  let budget = 4096;
  // Absolute guest addresses of offset 0 of `n` in this view (one per path from the root).
  const origins = (n: MemoryRegion): bigint[] | null => {
    const known = memo.get(n);
    if (known) return known;
    if (walking.has(n) || --budget < 0) return null;
    walking.add(n);
    const out: bigint[] = [];
    // render_memory_region starts the root at base 0 plus its own address.
    if (n === root) out.push(root.addr);
    if (n.container) {
      const up = origins(n.container);
      if (up === null) return null;
      for (const o of up) out.push(o + n.addr);
    }
    for (const a of n.aliasedBy) {
      const up = origins(a);
      if (up === null) return null;
      for (const o of up) out.push(o - a.aliasOffset);
    }
    walking.delete(n);
    if (out.length > MAX_ORIGINS) return null;
    memo.set(n, out);
    return out;
  };
  const iv: Array<[bigint, bigint]> = [];
  for (const c of changes) {
    if (c.end <= c.start) continue;
    const os = origins(c.node);
    if (os === null) return null;
    for (const o of os) {
      const s = o + c.start < 0n ? 0n : o + c.start;
      const e = o + c.end > SIZE_2_64 ? SIZE_2_64 : o + c.end;
      if (s < e) iv.push([s, e]);
    }
  }
  if (iv.length > MAX_CHANGES) return null;
  iv.sort((x, y) => (x[0] < y[0] ? -1 : x[0] > y[0] ? 1 : 0));
  const merged: Array<[bigint, bigint]> = [];
  for (const [s, e] of iv) {
    const last = merged[merged.length - 1];
    if (last && s <= last[1]) {
      if (e > last[1]) last[1] = e;
    } else merged.push([s, e]);
  }
  return merged;
}

/** Inserts after every entry with priority <= the new one (QEMU's listener order). */
function insertByPriority<T extends { priority: number }>(list: T[], item: T): void {
  let i = list.length;
  while (i > 0 && list[i - 1]!.priority > item.priority) i--;
  list.splice(i, 0, item);
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
