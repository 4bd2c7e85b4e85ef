/**
 * @module mtree/print
 * QEMU 7.2's `info mtree` text, produced from the core model (QEMU `mtree_info_as`,
 * `mtree_print_mr`, `mtree_info_flatview`). The output is byte-for-byte QEMU's for the same model,
 * except for what QEMU leaves to hash-table order (the order of address-space groups, of
 * `memory-region:` sections and of FlatViews): here groups and views come in the creation order of
 * their first address space, which makes the text deterministic.
 */

import { hex16 } from '../core/address.js';
import type { AddressSpace } from '../core/address-space.js';
import type { FlatView } from '../core/flatview.js';
import type { MemoryRegion } from '../core/region.js';
import type { MemorySystem } from '../core/system.js';
import { formatDispatch } from './dispatch.js';
import type { FlatDump } from './parse.js';

/** Options of {@link formatMtree}. */
export interface MtreeOptions {
  /** `-D`: also print disabled regions, marked ` [disabled]`. */
  disabled?: boolean;
  /**
   * The QEMU version whose text to print (`MAJOR.MINOR`, default 7.2): from 11.0 on, a region in
   * no container prints as `container` instead of `i/o` (see {@link regionTypeName}).
   */
  qemu?: string;
  /** `-o`: the owner suffix of each region (without the leading space), when known. */
  owners?: ReadonlyMap<MemoryRegion, string>;
}

/**
 * Whether QEMU `version` prints the `container` type. QEMU 11 added it to `memory_region_type`
 * (patch "system/memory: Have memory_region_type() correctly describe containers", March 2026,
 * after 10.2 was released); QEMU 10.0 does not print it and 11.1 does (both in the corpus).
 */
export function printsContainerType(version: string | undefined): boolean {
  if (version === undefined) return false;
  const [a] = version.split('.').map(Number);
  return (a ?? 0) >= 11;
}

/**
 * QEMU `memory_region_type`: an alias has the type of the region it finally points to; then RAM
 * device, ROM device in romd mode, ROM, RAM. With `containers` (QEMU 11), what is left prints
 * `container` when the region is in no container (`!mr->container`: the root of an address
 * space, or a region never mapped, whatever it does with accesses), and `i/o` otherwise, pure
 * containers included.
 */
export function regionTypeName(mr: MemoryRegion, containers = false): string {
  let r = mr;
  while (r.alias) r = r.alias;
  if (r.ramDevice) return 'ramd';
  if (r.romDevice && r.romdMode) return 'romd';
  if (r.ram && r.readonly) return 'rom';
  if (r.ram) return 'ram';
  if (containers && !r.container) return 'container';
  return 'i/o';
}

/** QEMU `memory_region_name` as printed with `%s`: an unnamed region prints glibc's `(null)`. */
export function printedName(mr: MemoryRegion | null): string {
  return mr?.name ?? '(null)';
}

/** Address spaces grouped by root region identity, groups in creation order of their first member. */
export function addressSpaceGroups(system: MemorySystem): AddressSpace[][] {
  const groups = new Map<MemoryRegion, AddressSpace[]>();
  for (const as of system.addressSpaces) {
    const g = groups.get(as.root);
    if (g) g.push(as);
    else groups.set(as.root, [as]);
  }
  // QEMU builds each group with g_slist_insert_sorted and strcmp: a new name goes before the
  // first member whose name is >= it, so equal names end up newest first. The same order as one
  // sort (O(n log n) where the insertions are O(n^2)).
  return [...groups.values()].map((g) => {
    const index = new Map(g.map((as, i) => [as, i]));
    return g.sort((a, b) => compareNames(a.name, b.name) || index.get(b)! - index.get(a)!);
  });
}

/**
 * strcmp on the UTF-8 bytes of two names. UTF-8 byte order is code point order, so the names are
 * compared code point by code point, without encoding them.
 */
export function compareNames(a: string, b: string): number {
  let i = 0;
  let j = 0;
  while (i < a.length && j < b.length) {
    const ca = a.codePointAt(i)!;
    const cb = b.codePointAt(j)!;
    if (ca !== cb) return ca - cb;
    i += ca > 0xffff ? 2 : 1;
    j += cb > 0xffff ? 2 : 1;
  }
  return a.length - i - (b.length - j) === 0 ? 0 : i < a.length ? 1 : -1;
}

/**
 * Children in print order (QEMU `mtree_print_mr`): by address ascending, then priority descending,
 * list order on ties. A stable sort gives the order QEMU's insertion into its print queue gives.
 */
export function printOrder(mr: MemoryRegion): MemoryRegion[] {
  return [...mr.subregions].sort((c, o) =>
    c.addr < o.addr ? -1 : c.addr > o.addr ? 1 : o.priority - c.priority,
  );
}

class TreePrinter {
  readonly lines: string[] = [];
  readonly queue: MemoryRegion[] = [];
  private readonly queued = new Set<MemoryRegion>();
  private pending = '';

  constructor(
    private readonly showDisabled: boolean,
    private readonly containers = false,
    private readonly owners?: ReadonlyMap<MemoryRegion, string>,
  ) {}

  private emit(line: string): void {
    this.lines.push(this.pending + line);
    this.pending = '';
  }

  header(text: string): void {
    this.emit(text);
  }

  blank(): void {
    this.emit('');
  }

  /** Prints `mr` and everything below it, depth first without recursion (depth comes from input). */
  region(top: MemoryRegion, topLevel: number, topBase: bigint): void {
    const MOD = 1n << 64n;
    const stack: Array<{ mr: MemoryRegion; level: number; base: bigint }> = [
      { mr: top, level: topLevel, base: topBase },
    ];
    for (let f = stack.pop(); f; f = stack.pop()) {
      const { mr, level, base } = f;
      const start = (base + mr.addr) % MOD;
      const end = (start + (mr.size === 0n ? 0n : mr.size - 1n)) % MOD;
      if (start < base || end < start) this.pending += '[DETECTED OVERFLOW!] ';
      const visible = mr.enabled || this.showDisabled;
      const head = `${'  '.repeat(level)}${hex16(start)}-${hex16(end)} (prio ${mr.priority}, ${mr.nonvolatile ? 'nv-' : ''}${regionTypeName(mr, this.containers)}): `;
      const owner = this.owners?.get(mr);
      const tail = (mr.enabled ? '' : ' [disabled]') + (owner === undefined ? '' : ` ${owner}`);
      if (mr.alias) {
        if (!this.queued.has(mr.alias)) {
          this.queued.add(mr.alias);
          this.queue.push(mr.alias);
        }
        if (visible) {
          const aend = mr.aliasOffset + (mr.size === 0n ? 0n : mr.size - 1n);
          this.emit(
            `${head}alias ${printedName(mr)} @${printedName(mr.alias)} ${hex16(mr.aliasOffset)}-${hex16(aend)}${tail}`,
          );
        }
      } else if (visible) {
        this.emit(`${head}${printedName(mr)}${tail}`);
      }
      const kids = printOrder(mr);
      for (let k = kids.length - 1; k >= 0; k--) stack.push({ mr: kids[k]!, level: level + 1, base: start });
    }
  }

  finish(): string {
    if (this.pending) this.lines.push(this.pending);
    return this.lines.length ? `${this.lines.join('\n')}\n` : '';
  }
}

/**
 * `info mtree [-D]`: every address-space group with its region tree, then one `memory-region:`
 * section per alias target met while printing.
 */
export function formatMtree(system: MemorySystem, options: MtreeOptions = {}): string {
  const p = new TreePrinter(options.disabled ?? false, printsContainerType(options.qemu), options.owners);
  for (const group of addressSpaceGroups(system)) {
    for (const as of group) p.header(`address-space: ${as.name}`);
    p.region(group[0]!.root, 1, 0n);
    p.blank();
  }
  for (let i = 0; i < p.queue.length; i++) {
    const t = p.queue[i]!;
    p.header(`memory-region: ${printedName(t)}`);
    p.region(t, 1, 0n);
    p.blank();
  }
  return p.finish();
}

/** Distinct current views with the address spaces using each, in creation order of the first. */
export function flatViewGroups(system: MemorySystem): Array<{ view: FlatView; spaces: AddressSpace[] }> {
  const map = new Map<FlatView, AddressSpace[]>();
  for (const as of system.addressSpaces) {
    const v = as.currentView;
    let g = map.get(v);
    if (!g) {
      g = [];
      map.set(v, g);
    }
    g.push(as);
  }
  return [...map.entries()].map(([view, spaces]) => ({ view, spaces }));
}

/**
 * The line of one flat range as `info mtree -f` prints it (without the leading two spaces);
 * `containers`: QEMU 11's `container` type (see {@link regionTypeName}).
 */
export function formatFlatRange(fr: FlatView['ranges'][number], containers = false): string {
  const end = fr.start + fr.size - 1n;
  const type = fr.readonly ? 'rom' : regionTypeName(fr.mr, containers);
  const off = fr.offsetInRegion !== 0n ? ` @${hex16(fr.offsetInRegion)}` : '';
  return `${hex16(fr.start)}-${hex16(end)} (prio ${fr.mr.priority}, ${fr.nonvolatile ? 'nv-' : ''}${type}): ${printedName(fr.mr)}${off}`;
}

/**
 * Suffixes newer QEMU prints after a flat range: the `-o` owner of its region, and the
 * accelerator marks (` KVM`), which depend on the accelerator's memory slots; memtree carries them
 * over from the flat dump it read (keyed by {@link flatRangeKey}).
 */
export interface FlatSuffixes {
  readonly owners?: ReadonlyMap<MemoryRegion, string>;
  readonly accel?: ReadonlyMap<string, string>;
}

/** The key of a flat range for {@link FlatSuffixes.accel}: its start, end and region name. */
export function flatRangeKey(start: bigint, end: bigint, name: string): string {
  return `${start.toString(16)}-${end.toString(16)} ${name}`;
}

/** Options of {@link formatFlat}. */
export interface FlatOptions extends FlatSuffixes {
  /** `-d`: add each rendered view's dispatch sections and page-map nodes (without `[MRU]`). */
  dispatch?: boolean;
  /** Target page bits for the dispatch dump (default 12; see {@link formatDispatch}). */
  pageBits?: number;
  /** The QEMU version whose text to print (`MAJOR.MINOR`, default 7.2), as {@link MtreeOptions.qemu}. */
  qemu?: string;
}

/** `info mtree -f [-d]`: every distinct FlatView with the address spaces that share it. */
export function formatFlat(system: MemorySystem, options: FlatOptions = {}): string {
  const out: string[] = [];
  const containers = printsContainerType(options.qemu);
  let n = 0;
  for (const { view, spaces } of flatViewGroups(system)) {
    out.push(`FlatView #${n++}`);
    for (const as of spaces) {
      const alias = as.root.alias ? `, alias ${printedName(as.root.alias)}` : '';
      out.push(` AS "${as.name}", root: ${printedName(as.root)}${alias}`);
    }
    out.push(` Root memory region: ${view.root ? printedName(view.root) : '(none)'}`);
    if (view.ranges.length === 0) {
      out.push('  No rendered FlatView');
      out.push('');
      continue;
    }
    for (const fr of view.ranges) {
      const owner = options.owners?.get(fr.mr);
      const accel = options.accel?.get(flatRangeKey(fr.start, fr.start + fr.size - 1n, printedName(fr.mr)));
      out.push(`  ${formatFlatRange(fr, containers)}${owner === undefined ? '' : ` ${owner}`}${accel ?? ''}`);
    }
    if (options.dispatch && view.root) out.push(...formatDispatch(view, options.pageBits));
    out.push('');
  }
  return out.length ? `${out.join('\n')}\n` : '';
}

/**
 * A parsed `info mtree -f [-d]` dump printed back as QEMU printed it (the Dispatch sections only
 * with `dispatch`): what memtree prints when its rebuild cannot reproduce the dump it was given.
 */
export function formatFlatDump(flat: FlatDump, options: { dispatch?: boolean } = {}): string {
  const out: string[] = [];
  for (const v of flat.views) {
    out.push(`FlatView #${v.number}`);
    for (const a of v.spaces) {
      out.push(
        ` AS "${a.name}", root: ${a.root}${a.rootAlias === undefined ? '' : `, alias ${a.rootAlias}`}`,
      );
    }
    out.push(` Root memory region: ${v.root ?? '(none)'}`);
    if (v.ranges.length === 0) out.push('  No rendered FlatView');
    for (const r of v.ranges) out.push(r.text);
    if (options.dispatch) out.push(...v.dispatch);
    out.push('');
  }
  return out.length ? `${out.join('\n')}\n` : '';
}
