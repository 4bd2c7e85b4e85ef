/**
 * @module mtree/dispatch
 * The `Dispatch` part of `info mtree -f -d`: QEMU's physical sections and page map of a flat view
 * (softmmu/physmem.c `flatview_add_to_dispatch`, `register_subpage`, `register_multipage`,
 * `phys_page_set`, `phys_page_compact`, `mtree_print_dispatch`).
 *
 * The page map is a radix tree of 512-entry nodes over 4 KiB pages, built exactly as QEMU builds
 * it so that node numbers and entries print the same. memtree's own accesses do not use it (the
 * address space has its TLB and the view a sorted range list); it exists to be printed. The `[MRU]`
 * marker is left out: QEMU sets it on the last section a guest access looked up, which is runtime
 * state of QEMU and not part of the memory map.
 */

import { hex16 } from '../core/address.js';
import type { FlatView } from '../core/flatview.js';
import type { MemoryRegion } from '../core/region.js';

const L2_BITS = 9;
const L2_SIZE = 512;
/** `PHYS_MAP_NODE_NIL` (a 26-bit field of all ones). */
const NIL = 2 ** 26 - 1;

/** A physical section (QEMU `MemoryRegionSection` in the dispatch map). */
interface Section {
  /** The region, or null for the unassigned region and for sub-page containers. */
  readonly mr: MemoryRegion | null;
  readonly subpage: boolean;
  readonly start: bigint;
  readonly size: bigint;
}

interface Entry {
  skip: number;
  ptr: number;
}

/** QEMU's `PhysPageMap` plus the root entry of an `AddressSpaceDispatch`. */
class PhysMap {
  /** `P_L2_LEVELS` for 64-bit physical addresses. */
  readonly levels: number;
  readonly page: number;
  readonly sections: Section[] = [];
  readonly nodes: Entry[][] = [];
  readonly root: Entry = { skip: 1, ptr: NIL };
  /** Page index → section number of the sub-page container that owns the page. */
  readonly subpages = new Map<number, number>();

  constructor(readonly pageBits: number) {
    this.levels = Math.floor((64 - pageBits - 1) / L2_BITS) + 1;
    this.page = 2 ** pageBits;
  }

  addSection(s: Section): number {
    this.sections.push(s);
    return this.sections.length - 1;
  }

  private alloc(leaf: boolean): number {
    const node: Entry[] = [];
    for (let i = 0; i < L2_SIZE; i++) node.push(leaf ? { skip: 0, ptr: 0 } : { skip: 1, ptr: NIL });
    this.nodes.push(node);
    return this.nodes.length - 1;
  }

  /** QEMU `phys_page_set`: maps `count` pages from page `index` to section `leaf`. */
  setPages(index: number, count: number, leaf: number): void {
    const st = { index, count };
    this.setLevel(this.root, st, leaf, this.levels - 1);
  }

  private setLevel(lp: Entry, st: { index: number; count: number }, leaf: number, level: number): void {
    const step = 2 ** (level * L2_BITS);
    if (lp.skip !== 0 && lp.ptr === NIL) lp.ptr = this.alloc(level === 0);
    const node = this.nodes[lp.ptr]!;
    let k = Math.floor(st.index / step) % L2_SIZE;
    while (st.count > 0 && k < L2_SIZE) {
      const e = node[k]!;
      if (st.index % step === 0 && st.count >= step) {
        e.skip = 0;
        e.ptr = leaf;
        st.index += step;
        st.count -= step;
      } else {
        this.setLevel(e, st, leaf, level - 1);
      }
      k++;
    }
  }

  /** QEMU `phys_page_compact`, from the root. */
  compact(): void {
    if (this.root.skip !== 0) this.compactEntry(this.root);
  }

  private compactEntry(lp: Entry): void {
    if (lp.ptr === NIL) return;
    const node = this.nodes[lp.ptr]!;
    let valid = 0;
    let last = L2_SIZE;
    for (let i = 0; i < L2_SIZE; i++) {
      const e = node[i]!;
      if (e.ptr === NIL) continue;
      last = i;
      valid++;
      if (e.skip !== 0) this.compactEntry(e);
    }
    if (valid !== 1) return;
    const child = node[last]!;
    lp.ptr = child.ptr;
    lp.skip = child.skip === 0 ? 0 : lp.skip + child.skip;
  }
}

/** QEMU `register_subpage`: a piece of a page, behind the page's sub-page container. */
function registerSubpage(map: PhysMap, s: Section): void {
  const page = Number(s.start >> BigInt(map.pageBits));
  if (!map.subpages.has(page)) {
    const size = BigInt(map.page);
    const n = map.addSection({ mr: null, subpage: true, start: BigInt(page) * size, size });
    map.subpages.set(page, n);
    map.setPages(page, 1, n);
  }
  map.addSection(s);
}

/** QEMU `register_multipage`. */
function registerMultipage(map: PhysMap, s: Section): void {
  const n = map.addSection(s);
  const bits = BigInt(map.pageBits);
  map.setPages(Number(s.start >> bits), Number(s.size >> bits), n);
}

/** Builds the dispatch map of a view: section #0 is unassigned, then each range's pieces. */
function buildDispatch(view: FlatView, pageBits: number): PhysMap {
  const map = new PhysMap(pageBits);
  map.addSection({ mr: null, subpage: false, start: 0n, size: 1n << 64n });
  const P = BigInt(map.page);
  for (const fr of view.ranges) {
    let start = fr.start;
    let size = fr.size;
    if (start % P !== 0n) {
      const left = P - (start % P);
      const now = left < size ? left : size;
      registerSubpage(map, { mr: fr.mr, subpage: false, start, size: now });
      if (now === size) continue;
      start += now;
      size -= now;
    }
    if (size >= P) {
      const whole = size - (size % P);
      registerMultipage(map, { mr: fr.mr, subpage: false, start, size: whole });
      if (whole === size) continue;
      start += whole;
      size -= whole;
    }
    registerSubpage(map, { mr: fr.mr, subpage: false, start, size });
  }
  map.compact();
  return map;
}

const LABELS = [' [unassigned]', ' [not dirty]', ' [ROM]', ' [watch]'];

function entries(start: number, end: number, e: Entry): string {
  const idx =
    start === end - 1
      ? `${String(start).padStart(3)}      `
      : `${String(start).padStart(3)}..${String(end - 1).padEnd(3)} `;
  const ptr = e.ptr === NIL ? ' ptr=NIL' : e.skip === 0 ? ` ptr=#${e.ptr}` : ` ptr=[${e.ptr}]`;
  return `\t${idx} skip=${e.skip} ${ptr}`;
}

/**
 * The `  Dispatch` lines QEMU prints after the ranges of a rendered view (without `[MRU]`).
 * `pageBits` is the target's page size as QEMU finalises it: 12 on x86 and RISC-V; on Arm 12 only
 * for boards that promise it (`virt`, `sbsa-ref`), else 10 (`TARGET_PAGE_BITS_MIN`); 8 on AVR
 * (target/avr/cpu-param.h).
 */
export function formatDispatch(view: FlatView, pageBits = 12): string[] {
  if (!Number.isInteger(pageBits) || pageBits < 8 || pageBits > 16) {
    throw new RangeError(`page bits ${pageBits}: expected an integer from 8 to 16`);
  }
  const map = buildDispatch(view, pageBits);
  const out = ['  Dispatch', '    Physical sections'];
  map.sections.forEach((s, i) => {
    const end = s.start + (s.size === 0n ? 0n : s.size - 1n);
    const name = s.mr?.name ?? '(noname)';
    const root = s.mr !== null && s.mr === view.root ? ' [ROOT]' : '';
    const iommu = s.mr?.isIommu ? ' [iommu]' : '';
    out.push(`      #${i} @${hex16(s.start)}..${hex16(end)} ${name}${LABELS[i] ?? ''}${root}${iommu}`);
  });
  out.push(
    `    Nodes (${L2_BITS} bits per level, ${map.levels} levels) ptr=[${map.root.ptr}] skip=${map.root.skip}`,
  );
  map.nodes.forEach((node, i) => {
    out.push(`      [${i}]`);
    let jprev = 0;
    let prev = node[0]!;
    for (let j = 0; j < L2_SIZE; j++) {
      const e = node[j]!;
      if (e.ptr === prev.ptr && e.skip === prev.skip) continue;
      out.push(entries(jprev, j, prev));
      jprev = j;
      prev = e;
    }
    if (jprev !== L2_SIZE) out.push(entries(jprev, L2_SIZE, prev));
  });
  return out;
}

/** Removes QEMU's runtime ` [MRU]` markers from `info mtree -f -d` text, for comparison. */
export function stripMru(text: string): string {
  return text.replace(/ \[MRU\]/g, '');
}
