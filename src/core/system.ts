/**
 * @module core/system
 * `MemorySystem`: everything QEMU keeps in globals for one machine's memory — the transaction depth
 * and pending flags, the list of address spaces, the registered listeners, the current flat views,
 * the unassigned region, the RAM list and the dirty-logging state. Two systems in one process never
 * see each other, so two machines can run side by side (QEMU itself has only one).
 *
 * Regions are created through the factory methods here (QEMU's `memory_region_init_*`).
 *
 * The class holds the state and the public methods; the work is done, as QEMU divides it, in
 * core/factories (region construction), core/transactions (commits and what they re-render),
 * core/listener-registry (listener registration and system-wide listener calls),
 * core/dirty-log (global and per-region dirty logging) and core/ram (RAM blocks and the bounce
 * buffer). Their state lives in the @internal fields here, so that one system is one object.
 */

import { printable, SIZE_2_64, type U64Input } from './address.js';
import { AddressSpace } from './address-space.js';
import { type DirtyBitmapSnapshot, DirtyMemory } from './dirty.js';
import * as dirtyLog from './dirty-log.js';
import { ForeignRegionError, InvalidArgumentError } from './errors.js';
import * as factories from './factories.js';
import { FlatView } from './flatview.js';
import { bswapBig, IoDispatcher } from './io-dispatch.js';
import type { IommuOps } from './iommu.js';
import type { MemoryListener } from './listener.js';
import * as registry from './listener-registry.js';
import * as ramBlocks from './ram.js';
import { type RAMBlock, RAMList, type RamResizedCallback } from './ramblock.js';
import { type CoalescedRange, MemoryRegion, type RegionOptions } from './region.js';
import * as transactions from './transactions.js';
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
  /**
   * The target's page size in bits (QEMU `TARGET_PAGE_BITS`), 8 to 16, default 12 (4 KiB: x86,
   * RISC-V, Arm `virt`); most other Arm boards use 10, AVR 8. It sets where the dispatch sections
   * of a flat range split (`flatview_add_to_dispatch`).
   */
  targetPageBits?: number;
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

/** The memory of one machine. See the module comment. */
export class MemorySystem {
  /** Whether the target CPU is big-endian. */
  readonly bigEndian: boolean;
  /** Whether RAM carries the CODE dirty client (see {@link MemorySystemOptions.translatesCode}). */
  readonly translatesCode: boolean;
  /** The target page size in bytes (see {@link MemorySystemOptions.targetPageBits}). */
  readonly targetPageSize: number;
  /** The ops every region starts with (QEMU `unassigned_mem_ops`). */
  readonly unassignedOps: MemoryRegionOps = UNASSIGNED_OPS;
  /** QEMU `io_mem_unassigned`: serves every address no flat range covers. */
  readonly unassigned: MemoryRegion;
  /** The RAM blocks of this machine. */
  readonly ramList = new RAMList();
  /** Address spaces in creation order. */
  get addressSpaces(): readonly AddressSpace[] {
    return this.spaces;
  }
  private readonly spaces: AddressSpace[] = [];
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
  /**
   * Active global dirty tracking reasons (QEMU `global_dirty_tracking`); change them with
   * {@link globalDirtyLogStart} and {@link globalDirtyLogStop}.
   */
  get globalDirtyTracking(): number {
    return this.dirtyTracking;
  }
  /** @internal */
  set globalDirtyTracking(v: number) {
    this.dirtyTracking = v;
  }
  private dirtyTracking = 0;
  /** @internal Whether the guest runs (see {@link running}). */
  runState = true;
  /**
   * @internal Reasons of a global dirty-log stop requested while the guest was stopped (QEMU's
   * postponed_stop_flags; non-zero exactly while QEMU keeps its vmstate_change handler for it).
   */
  postponedStopFlags = 0;
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

  /** @internal The bounce buffer of `address_space_map` (core/ram). */
  bounceBuffer = new Uint8Array(4096);
  /** @internal */
  bounceInUse = false;
  /** @internal Callbacks waiting for the bounce buffer. */
  mapClients: Array<() => void> = [];
  /** @internal Depth of the open transactions (core/transactions). */
  depth = 0;
  /** @internal */
  topologyPending = false;
  /** @internal */
  ioeventfdPending = false;
  /**
   * @internal What changed since the last topology commit, as intervals in the coordinates of a region
   * (`node`): each commit re-renders only the addresses these map to in each view. null means
   * "anything may have changed" (every view is rendered from scratch).
   */
  changes: transactions.Change[] | null = [];
  /** @internal Regions whose own address or size changed: a view rooted at one of them moves as a whole. */
  readonly moved = new Set<MemoryRegion>();
  /** @internal Listener registrations in global order (core/listener-registry). */
  readonly registrations: registry.Registration[] = [];
  /** @internal The current view of each resolved root. */
  views = new Map<MemoryRegion | null, FlatView>();
  /** The permanent empty view shared by every address space whose root resolves to nothing. */
  readonly emptyView = new FlatView(null, []);

  constructor(options: MemorySystemOptions = {}) {
    this.bigEndian = options?.bigEndian ?? false;
    this.translatesCode = options?.translatesCode ?? false;
    const bits = options?.targetPageBits ?? 12;
    if (!Number.isInteger(bits) || bits < 8 || bits > 16) {
      throw new InvalidArgumentError(`targetPageBits ${printable(bits)}: expected an integer from 8 to 16`);
    }
    this.targetPageSize = 2 ** bits;
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
    return factories.container(this, name, size, options);
  }

  /** RAM backed by a new RAM block (QEMU `memory_region_init_ram`). */
  ram(name: string, size: U64Input, options: RamOptions = {}): MemoryRegion {
    return factories.ramLike(this, 'ram', name, size, options, undefined);
  }

  /** Read-only RAM (QEMU `memory_region_init_rom`): reads direct, bus writes dropped. */
  rom(name: string, size: U64Input, options: RamOptions = {}): MemoryRegion {
    return factories.ramLike(this, 'rom', name, size, options, undefined);
  }

  /**
   * A ROM device (QEMU `memory_region_init_rom_device`): in romd mode reads come from its memory and
   * writes go to `ops`; out of romd mode both go to `ops`.
   */
  romDevice(name: string, size: U64Input, ops: MemoryRegionOps, options: RamOptions = {}): MemoryRegion {
    factories.checkName(name, false);
    if (!ops) throw new InvalidArgumentError(`romDevice "${name}": ops are required`);
    return factories.ramLike(this, 'rom-device', name, size, options, ops);
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
    return factories.io(this, name, size, ops, options);
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
    return factories.alias(this, name, target, offset, size, options);
  }

  /** An IOMMU region (QEMU `memory_region_init_iommu`): accesses are translated by `iommuOps`. */
  iommu(name: string | null, size: U64Input, iommuOps: IommuOps, options: RegionOptions = {}): MemoryRegion {
    return factories.iommu(this, name, size, iommuOps, options);
  }

  /**
   * A RAM device (QEMU `memory_region_init_ram_device_ptr`): host memory reached through
   * byte-transparent callbacks (never directly), e.g. a BAR of an assigned host device.
   */
  ramDevice(name: string, size: U64Input, options: RegionOptions = {}): MemoryRegion {
    return factories.ramDevice(this, name, size, options);
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
    transactions.commit(this);
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
    transactions.topologyChanged(this, parent, region);
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
    return transactions.viewFor(this, root);
  }

  // ---------------------------------------------------------------------------------------------
  // Listeners

  /** @internal QEMU `memory_listener_register`. */
  registerListener(listener: MemoryListener, as: AddressSpace): void {
    registry.registerListener(this, listener, as);
  }

  /** @internal QEMU `memory_listener_unregister`. */
  unregisterListener(listener: MemoryListener): void {
    registry.unregisterListener(this, listener);
  }

  /** Registered listeners in global (ascending priority) order. */
  get listeners(): readonly MemoryListener[] {
    return this.registrations.map((r) => r.listener);
  }

  /** @internal QEMU `memory_region_update_coalesced_range`. */
  coalescedChanged(mr: MemoryRegion, cr: CoalescedRange, add: boolean): void {
    registry.coalescedChanged(this, mr, cr, add);
  }

  /** @internal */
  rememberAddressSpace(as: AddressSpace): void {
    this.spaces.push(as);
  }

  /** @internal */
  forgetAddressSpace(as: AddressSpace): void {
    const i = this.spaces.indexOf(as);
    if (i >= 0) this.spaces.splice(i, 1);
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
    dirtyLog.invalidateAndSetDirty(this, mr, offset, length);
  }

  // ---------------------------------------------------------------------------------------------
  // Dirty logging

  /**
   * Whether the guest is running (QEMU `runstate_is_running()`); true until {@link setRunning}
   * says otherwise. The memory core uses it only to postpone a global dirty-log stop while the
   * guest is stopped.
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
    dirtyLog.setRunning(this, running);
  }

  /**
   * QEMU `memory_global_dirty_log_start`: adds tracking reasons (`GLOBAL_DIRTY_MIGRATION` = 1,
   * `DIRTY_RATE` = 2, `LIMIT` = 4). A stop postponed while the guest was stopped is settled first,
   * minus the reasons being started. The first reason tells listeners (`logGlobalStart`) and then
   * re-renders, which adds the MIGRATION client to RAM ranges (listeners hear `logStart`).
   */
  globalDirtyLogStart(flags = 1): void {
    dirtyLog.globalDirtyLogStart(this, flags);
  }

  /**
   * QEMU `memory_global_dirty_log_stop`: removes tracking reasons; when none is left, re-renders
   * (listeners hear `logStop`) and then calls `logGlobalStop` in reverse order. While the guest is
   * stopped ({@link running} false) the stop is postponed, and batched with later ones, until it
   * runs again or logging is started again.
   */
  globalDirtyLogStop(flags = 1): void {
    dirtyLog.globalDirtyLogStop(this, flags);
  }

  /**
   * QEMU `memory_region_sync_dirty_bitmap`: asks listeners to push their dirty state into the
   * bitmaps, for the ranges of `mr` (or of every logged region when null).
   */
  logSync(mr: MemoryRegion | null = null): void {
    registry.logSync(this, mr);
  }

  /** QEMU `memory_global_after_dirty_log_sync`. */
  logGlobalAfterSync(): void {
    registry.logGlobalAfterSync(this);
  }

  /**
   * QEMU `memory_region_snapshot_and_clear_dirty`: syncs `mr`, then takes and clears `client`'s
   * dirty bits for `[offset, offset+size)` of the region (widened to 64 pages).
   * @param offset byte offset in the region (not a ram_addr).
   * @param size bytes; the range must lie inside the region's RAM.
   * @param client `DIRTY_MEMORY_VGA`, `DIRTY_MEMORY_CODE` or `DIRTY_MEMORY_MIGRATION`.
   */
  snapshotAndClearDirty(mr: MemoryRegion, offset: number, size: number, client: number): DirtyBitmapSnapshot {
    return dirtyLog.snapshotAndClearDirty(this, mr, offset, size, client);
  }

  /** QEMU `memory_region_snapshot_get_dirty`: region offsets into a snapshot. */
  snapshotGetDirty(mr: MemoryRegion, snap: DirtyBitmapSnapshot, offset: number, size: number): boolean {
    return dirtyLog.snapshotGetDirty(this, mr, snap, offset, size);
  }

  /**
   * QEMU `memory_region_set_dirty`: marks `[offset, offset+size)` of `mr` dirty for its clients.
   * @param offset byte offset in the region (not a ram_addr).
   * @param size bytes; the range must lie inside the region's RAM.
   */
  setDirty(mr: MemoryRegion, offset: number, size: number): void {
    dirtyLog.setDirty(this, mr, offset, size);
  }

  /** QEMU `memory_region_reset_dirty`: clears `client`'s bits for the range of `mr`. */
  resetDirty(mr: MemoryRegion, offset: number, size: number, client: number): boolean {
    return dirtyLog.resetDirty(this, mr, offset, size, client);
  }

  /** @internal Takes the single bounce buffer (QEMU 7.2 has one per process), or null if in use. */
  acquireBounce(): Uint8Array | null {
    return ramBlocks.acquireBounce(this);
  }

  /** @internal Frees the bounce buffer and notifies the waiting map clients once. */
  releaseBounce(): void {
    ramBlocks.releaseBounce(this);
  }

  /**
   * QEMU `cpu_register_map_client`: `callback` runs once when the bounce buffer becomes free (at
   * once if it is free now). Use it to retry a {@link AddressSpace.map} that returned null.
   */
  registerMapClient(callback: () => void): void {
    ramBlocks.registerMapClient(this, callback);
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
    ramBlocks.ramResize(this, mr, newSize);
  }

  /**
   * Destroys region `mr` (QEMU `object_unparent` of a region, `qemu_ram_free` for its block): the
   * region must not be in a container; its RAM block leaves the RAM list, its id is unregistered and
   * its ram_addr range becomes free for later blocks.
   */
  freeRegion(mr: MemoryRegion): void {
    ramBlocks.freeRegion(this, mr);
  }

  /**
   * A device's direct write into its own RAM (QEMU: a write through `memory_region_get_ram_ptr`
   * followed by `memory_region_set_dirty`): copies `data` to `offset` in `mr` and marks the pages
   * dirty for the clients that log the region.
   */
  writeRam(mr: MemoryRegion, offset: number, data: Uint8Array): void {
    ramBlocks.writeRam(this, mr, offset, data);
  }

  /** Reads `dst.length` bytes of `mr`'s RAM at `offset`, as a device with a host pointer would. */
  readRam(mr: MemoryRegion, offset: number, dst: Uint8Array): void {
    ramBlocks.readRam(this, mr, offset, dst);
  }

  /** QEMU `memory_region_get_dirty_log_mask`. */
  regionDirtyMask(mr: MemoryRegion): number {
    return dirtyLog.regionDirtyMask(this, mr);
  }

  /** @internal Converts a value stored by the target CPU into the device value of `mr`. */
  targetToDevice(mr: MemoryRegion, data: bigint, size: number): bigint {
    const v = BigInt.asUintN(size * 8, data);
    return this.dispatcher.isBigEndian(mr) === this.bigEndian ? v : bswapBig(v, size);
  }
}
