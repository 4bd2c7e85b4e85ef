/**
 * @module mtree/rebuild
 * Rebuilds a machine's region graph from an `info mtree [-D]` dump (optionally helped by an
 * `info mtree -f` dump of the same moment), as core {@link MemoryRegion}s in a new
 * {@link MemorySystem} with the dump's address spaces. Rendering the result with the core then
 * reproduces QEMU's `info mtree -f`, and printing it reproduces the tree text.
 *
 * The tree text does not say everything. These are the rules used to fill the gaps (the same
 * list, with reasons and examples, is in docs/mtree-rebuild.md):
 *
 * 1. Structure. A line's parent is the nearest preceding line one level up. Without `-D` a depth
 *    jump means hidden disabled regions in between: a disabled placeholder container is inserted,
 *    starting at its first child (so the children keep their printed position), and a section
 *    whose top line is hidden gets a placeholder top.
 * 2. Identity. Regions are printed several times (their root's group, every `memory-region:`
 *    section of an enclosing alias target). Two occurrences are the same region when one is the
 *    top of an address-space group or of a section and the other has the same name, own address,
 *    extent, priority, type, flags, alias window and the same whole subtree; the first such
 *    occurrence in the text is taken, each section top binds to a distinct region, and the
 *    children of unified occurrences are unified pairwise. Group roots are always distinct (QEMU
 *    groups address spaces by root identity).
 * 3. Alias targets. QEMU queues every alias target the first time an alias to it is printed, and
 *    prints one section per queued target in that order; the text order is the print order. So
 *    the dump is replayed: an alias line either names a target queued before it or the next
 *    unassigned section. When both are possible, the new section wins if the alias's printed
 *    type equals the section's type and its window fits in the section's region. Without `-D`,
 *    hidden aliases queue targets too, so sections may be skipped (they are bound to no visible
 *    line, but still rebuilt). An alias naming nothing in the dump, or alias cycles, are errors.
 * 4. Geometry. own address = start − parent start (mod 2^64); size = end − start + 1, with
 *    `0…0-f…f` meaning 2^64. `end == start` is size 0 for an alias (closed PCI bridge windows)
 *    and size 1 for anything else.
 * 5. Kinds. `ram`/`rom` → RAM/ROM, `romd` → ROM device, `ramd` → RAM device. An `i/o` region
 *    either terminates (MMIO, reservation, ROM device out of romd mode: built as a reservation) or
 *    is a container. Without a flat dump: a leaf terminates, a region with children is a
 *    container, except bus windows (below) and a few regions QEMU creates under fixed names
 *    (`io`, `rtc`, `vga.mmio` terminate; `platform bus` is an empty container; see WELL_KNOWN). With a flat dump: a region terminates iff a flat range of a view that contains it
 *    carries its name at an address consistent with its position (range start − range offset =
 *    region start); a region that is placed in some view but never shows is a container (or is
 *    fully shadowed, which renders the same); a region that is in no rendered view keeps the
 *    text rule.
 * 6. Read-only aliases. The `rom` of a flat range over a `ram` region is inherited from an alias
 *    on the path. With a flat dump, an enabled alias is made read-only when some flat range of its
 *    RAM shows `rom` through it and none shows `ram` through it. Without one, only PAM's `pam-rom`
 *    aliases are (QEMU creates them read-only).
 * 7. Sibling order. Children are re-added so that the list order is priority descending, then,
 *    among equal priorities, the printed order (which is the true list order among regions at the
 *    same address, newest first); for equal priorities at different addresses the text does not
 *    tell, and the printed (address) order is kept, so the lower address wins an overlap.
 * 8. Address spaces are created in the order of the flat dump's ` AS` lines when one is given,
 *    otherwise in the order of the tree dump's group headers.
 */

import { SIZE_2_64 } from '../core/address.js';
import type { AddressSpace } from '../core/address-space.js';
import type { MemoryRegion } from '../core/region.js';
import { MemorySystem } from '../core/system.js';
import type { MemoryRegionOps } from '../core/types.js';
import { formatDispatch } from './dispatch.js';
import { type NameKinds, nameKindsFor } from './names/index.js';
import {
  type FlatDump,
  type FlatRangeLine,
  type FlatViewBlock,
  type MtreeDump,
  type MtreeType,
  ParseError,
  type RegionLine,
  type TreeBlock,
  type TreeNode,
} from './parse.js';
import { type FlatSuffixes, flatRangeKey, formatFlatRange, printedName } from './print.js';

/** The result of {@link rebuild}. */
export interface Rebuilt {
  readonly system: MemorySystem;
  /** Address spaces in creation order. */
  readonly spaces: AddressSpace[];
  /** The region built for each printed region line. */
  readonly regionOfLine: Map<RegionLine, MemoryRegion>;
  /** Things the rebuild had to guess or could not make consistent. */
  readonly warnings: string[];
  /**
   * Set when a flat dump was given and the rebuilt regions do not render to it: the first flat
   * range that differs. QEMU's flat view is then the authority (see {@link flatRangeAt}).
   */
  readonly mismatch?: FlatMismatch;
  /** The flat dump the rebuild was given, if any. */
  readonly flat?: FlatDump;
  /** The QEMU version whose rules were used (the option, or what the dump looks like). */
  readonly qemu: string;
  /** What newer QEMU prints after lines, read from the dumps: `-o` owners, ` KVM` marks. */
  readonly suffixes: FlatSuffixes;
  /**
   * The target page size (in bits) that reproduces the Dispatch sections of the flat dump, when
   * it was an `info mtree -f -d` dump; undefined otherwise.
   */
  readonly pageBits?: number;
}

/** Where a rebuilt flat view first differs from QEMU's. */
export interface FlatMismatch {
  /** The address space whose view differs. */
  readonly space: string;
  /** QEMU's flat range line there (or its `Root memory region:` line), or null if QEMU has none. */
  readonly qemu: string | null;
  /** The rebuilt range line there, or null if the rebuild has none. */
  readonly ours: string | null;
}

/** One printed occurrence of a region (or a placeholder for a hidden one). */
interface Occ {
  readonly id: number;
  readonly line: RegionLine | null;
  /** Placeholder for a hidden disabled region. */
  readonly placeholder: boolean;
  readonly parent: Occ | null;
  readonly children: Occ[];
  readonly top: 'as' | 'mr' | null;
  readonly block: TreeBlock;
  /** Absolute printed start and inclusive end. */
  readonly start: bigint;
  readonly end: bigint;
  readonly priority: number;
  sig: number;
}

/** Per-region facts gathered from the occurrences. */
interface Cls {
  readonly rep: Occ;
  parent: Cls | null;
  children: Cls[];
  addr: bigint;
  size: bigint;
  target: Cls | null;
  terminates: boolean | null;
  readonly: boolean;
  roVotes: number;
  rwVotes: number;
  mr: MemoryRegion | null;
  aliasDepth: number;
  /** Equal-priority siblings this region must precede in its container's list (it wins over them). */
  beats?: Set<Cls>;
}

const MOD = SIZE_2_64;
const TRIVIAL_OPS: MemoryRegionOps = { endianness: 'little', read: () => 0, write: () => {} };

function lineName(o: Occ): string {
  return o.line ? o.line.name : '(hidden)';
}

function where(dump: MtreeDump, line: RegionLine): string {
  return `${dump.source}:${line.lineNo}`;
}

/** Options of {@link rebuild}. */
export interface RebuildOptions {
  /**
   * Use what QEMU's source says about a few regions it creates under fixed names (`io`, `rtc`,
   * `vga.mmio`, `platform bus`, `pam-rom`) where neither the tree nor a flat dump says it
   * (default true; false leaves only the structural rules).
   */
  wellKnown?: boolean;
  /**
   * QEMU version (`MAJOR.MINOR`) whose table of region names (generated from its source, see
   * src/mtree/names) settles container vs I/O region from the text alone. Default: what the dump
   * looks like ({@link dumpDialect}).
   */
  qemu?: string;
}

/**
 * Rebuilds the region graph of `dump` (see the module comment for the rules). `flat`, an
 * `info mtree -f` dump taken at the same moment, only settles per-region facts the tree does not
 * print (whether an `i/o` region terminates, whether an alias is read-only).
 */
export function rebuild(dump: MtreeDump, flat?: FlatDump, options: RebuildOptions = {}): Rebuilt {
  const wellKnown = options.wellKnown ?? true;
  const qemu = options.qemu ?? dumpDialect(dump);
  const names = wellKnown ? nameKindsFor(qemu) : null;
  const warnings: string[] = [];
  const occs: Occ[] = [];

  // ---- 1. occurrences, with placeholders for hidden disabled regions
  const mk = (
    line: RegionLine | null,
    parent: Occ | null,
    top: Occ['top'],
    block: TreeBlock,
    start: bigint,
    end: bigint,
    priority: number,
  ): Occ => {
    const o: Occ = {
      id: occs.length,
      line,
      placeholder: line === null,
      parent,
      children: [],
      top,
      block,
      start,
      end,
      priority,
      sig: -1,
    };
    occs.push(o);
    parent?.children.push(o);
    return o;
  };
  // Depth-first, in text order (occurrence ids are pre-order), with an explicit stack: the nesting
  // depth comes from the input.
  const addChildren = (top: Occ, topLevel: number, topNodes: TreeNode[], block: TreeBlock): void => {
    const frames: Array<{ parent: Occ; level: number; nodes: TreeNode[]; i: number }> = [
      { parent: top, level: topLevel, nodes: topNodes, i: 0 },
    ];
    while (frames.length) {
      const f = frames[frames.length - 1]!;
      if (f.i >= f.nodes.length) {
        frames.pop();
        continue;
      }
      const n = f.nodes[f.i]!;
      if (n.line.level === f.level + 1) {
        const o = mk(n.line, f.parent, null, block, n.line.start, n.line.end, n.line.priority);
        f.i++;
        frames.push({ parent: o, level: n.line.level, nodes: n.children, i: 0 });
        continue;
      }
      // A run of deeper lines: children of a hidden region at `level + 1`.
      let j = f.i;
      while (j < f.nodes.length && f.nodes[j]!.line.level > f.level + 1) j++;
      const run = f.nodes.slice(f.i, j);
      const start = run[0]!.line.start;
      let end = start;
      for (const r of run) if (r.line.end > end) end = r.line.end;
      const prev = f.parent.children[f.parent.children.length - 1];
      const prio = prev && prev.start === start ? prev.priority : run[0]!.line.priority;
      const ph = mk(null, f.parent, null, block, start, end, prio);
      f.i = j;
      frames.push({ parent: ph, level: f.level + 1, nodes: run, i: 0 });
    }
  };
  const tops: Occ[] = [];
  for (const b of dump.blocks) {
    const kind = b.kind === 'address-space' ? 'as' : 'mr';
    let top: Occ;
    if (b.root) {
      top = mk(b.root.line, null, kind, b, b.root.line.start, b.root.line.end, b.root.line.priority);
      addChildren(top, 1, b.root.children, b);
    } else {
      const first = b.hiddenTop[0];
      const start = first ? first.line.start : 0n;
      let end = start;
      for (const r of b.hiddenTop) if (r.line.end > end) end = r.line.end;
      top = mk(null, null, kind, b, 0n, end, first?.line.priority ?? 0);
      addChildren(top, 1, b.hiddenTop, b);
      if (b.kind === 'memory-region') {
        warnings.push(
          `section "${b.names[0]}" (line ${b.lineNo}): top region hidden; rebuilt as a disabled container`,
        );
      }
    }
    tops.push(top);
  }

  // ---- 2. signatures (hash-consed)
  const sigIds = new Map<string, number>();
  const ownAddr = (o: Occ): bigint => (o.parent ? (((o.start - o.parent.start) % MOD) + MOD) % MOD : o.start);
  const computeSig = (o: Occ): void => {
    const l = o.line;
    const key = JSON.stringify([
      l ? [l.name, l.type, l.nonvolatile, l.disabled, l.alias?.target, String(l.alias?.offset ?? '')] : 'ph',
      String(ownAddr(o)),
      String((((o.end - o.start) % MOD) + MOD) % MOD),
      o.priority,
      o.children.map((c) => c.sig),
    ]);
    let id = sigIds.get(key);
    if (id === undefined) {
      id = sigIds.size;
      sigIds.set(key, id);
    }
    o.sig = id;
  };
  // Ids are pre-order, so going backwards meets every child before its parent (no recursion).
  for (let i = occs.length - 1; i >= 0; i--) computeSig(occs[i]!);

  // ---- 3. unify occurrences (union-find)
  const uf = occs.map((o) => o.id);
  const find = (i: number): number => {
    while (uf[i] !== i) {
      uf[i] = uf[uf[i]!]!;
      i = uf[i]!;
    }
    return i;
  };
  const hasTop = new Map<number, Set<'as' | 'mr'>>();
  const union = (a: Occ, b: Occ): void => {
    const ra = find(a.id);
    const rb = find(b.id);
    if (ra !== rb) {
      // Keep the earlier occurrence as the representative.
      const [lo, hi] = ra < rb ? [ra, rb] : [rb, ra];
      uf[hi] = lo;
      const s = new Set([...(hasTop.get(lo) ?? []), ...(hasTop.get(hi) ?? [])]);
      hasTop.set(lo, s);
    }
  };
  /** Unifies two occurrences with equal signatures and, pairwise, their whole subtrees. */
  const unionTree = (a0: Occ, b0: Occ): void => {
    const pairs: Array<[Occ, Occ]> = [[a0, b0]];
    for (let p = pairs.pop(); p; p = pairs.pop()) {
      const [a, b] = p;
      union(a, b);
      for (let k = 0; k < a.children.length; k++) pairs.push([a.children[k]!, b.children[k]!]);
    }
  };
  for (const t of tops) hasTop.set(t.id, new Set([t.top!]));
  const bySig = new Map<number, Occ[]>();
  for (const o of occs) {
    let l = bySig.get(o.sig);
    if (!l) {
      l = [];
      bySig.set(o.sig, l);
    }
    l.push(o);
  }
  for (const kind of ['as', 'mr'] as const) {
    for (const t of tops) {
      if (t.top !== kind || t.placeholder) continue;
      const cands = bySig.get(t.sig) ?? [];
      for (const c of cands) {
        if (c === t || c.block === t.block) continue;
        if (c.top === kind) continue;
        if (kind === 'as' && c.top !== null) continue;
        const tags = hasTop.get(find(c.id));
        if (tags?.has(kind)) continue;
        if (find(c.id) === find(t.id)) break;
        unionTree(t, c);
        break;
      }
    }
  }

  // ---- 4. classes
  const clsOf = new Map<number, Cls>();
  const cls = (o: Occ): Cls => {
    const r = find(o.id);
    let c = clsOf.get(r);
    if (!c) {
      const rep = occs[r]!;
      let size = (((rep.end - rep.start) % MOD) + MOD) % MOD;
      size += 1n;
      if (rep.line?.alias && rep.line.end === rep.line.start) size = 0n;
      c = {
        rep,
        parent: null,
        children: [],
        addr: ownAddr(rep),
        size,
        target: null,
        terminates: null,
        readonly: false,
        roVotes: 0,
        rwVotes: 0,
        mr: null,
        aliasDepth: -1,
      };
      clsOf.set(r, c);
      if (rep.placeholder) c.size = rep.end - rep.start + 1n;
    }
    return c;
  };
  for (const o of occs) {
    const c = cls(o);
    if (o.parent) {
      const p = cls(o.parent);
      if (!c.parent) c.parent = p;
      else if (c.parent !== p) {
        warnings.push(
          `line ${o.line?.lineNo}: region "${lineName(o)}" printed under two different containers`,
        );
      }
    }
  }
  for (const c of clsOf.values()) {
    const seen = new Set<Cls>();
    for (const ch of c.rep.children) {
      const cc = cls(ch);
      if (!seen.has(cc)) c.children.push(cc);
      seen.add(cc);
    }
  }

  // ---- 5. alias binding by replaying the print order
  const sections = tops.filter((t) => t.top === 'mr');
  const sectionUsed = sections.map(() => false);
  const queued: Cls[] = [];
  let next = 0;
  const exact = dump.hasDisabled;
  const fits = (line: RegionLine, t: Cls): boolean => {
    const tl = t.rep.line;
    if (!tl) return true;
    if (tl.type !== line.type) return false;
    const a = line.alias!;
    return t.size === 0n || a.offsetEnd < t.size || (line.start === line.end && a.offset <= t.size);
  };
  // Without -D, targets queued by hidden aliases: rebuilt with a hidden alias of their own.
  const hidden: Array<{ target: Cls; before: Occ | null }> = [];
  const takeSection = (k: number, by: Occ): Cls => {
    for (let s = next; s < k; s++) {
      if (!sectionUsed[s]) {
        sectionUsed[s] = true;
        queued.push(cls(sections[s]!));
        hidden.push({ target: cls(sections[s]!), before: by });
      }
    }
    sectionUsed[k] = true;
    const c = cls(sections[k]!);
    queued.push(c);
    next = k + 1;
    while (next < sections.length && sectionUsed[next]) next++;
    return c;
  };
  for (const o of occs) {
    const line = o.line;
    if (!line?.alias) continue;
    const c = cls(o);
    if (c.target) continue;
    const name = line.alias.target;
    const existing = queued.filter(
      (q) => q.rep.line?.name === name || (!q.rep.line && q.rep.block.names[0] === name),
    );
    const secName = (k: number) => sections[k]!.block.names[0];
    let chosen: Cls | null = null;
    const nextFits =
      next < sections.length &&
      secName(next) === name &&
      (existing.length === 0 || fits(line, cls(sections[next]!)));
    // Several same-named targets fit (one `pci_bridge_pci` per PCI bridge): the one with
    // something inside the alias window, if only one has.
    const fitting = existing.filter((e) => fits(line, e));
    const candidates = nextFits ? [...fitting, cls(sections[next]!)] : fitting;
    const filled =
      candidates.length > 1 ? candidates.filter((t) => hasChildIn(t, line.alias) && !isAncestor(t, c)) : [];
    if (filled.length === 1 && filled[0] !== (nextFits ? cls(sections[next]!) : null)) {
      chosen = filled[0]!;
    } else if (nextFits) {
      chosen = takeSection(next, o);
    } else if (existing.length) {
      chosen = fitting[0] ?? existing[0]!;
    } else if (!exact) {
      for (let k = next; k < sections.length; k++) {
        if (!sectionUsed[k] && secName(k) === name) {
          chosen = takeSection(k, o);
          break;
        }
      }
    }
    if (!chosen) {
      // Not in the queue order: accept any printed region of that name, else give up.
      const any = [...clsOf.values()].filter(
        (k) => k.rep.line && !k.rep.line.alias && k.rep.line.name === name,
      );
      if (any.length >= 1) {
        chosen = any[0]!;
        warnings.push(
          `${where(dump, line)}: alias "${line.name}" bound to "${name}" outside the section order`,
        );
      } else {
        throw new ParseError(
          dump.source,
          line.lineNo,
          line.text,
          `alias target "${name}" is nowhere in the dump`,
        );
      }
    }
    c.target = chosen;
  }
  sections.forEach((s, k) => {
    if (sectionUsed[k]) return;
    if (exact)
      warnings.push(`section "${s.block.names[0]}" (line ${s.block.lineNo}) is the target of no alias line`);
    else hidden.push({ target: cls(s), before: null });
  });
  const groupTops = tops.filter((t) => t.top === 'as').map((t) => cls(t));
  const extra: Cls[] = [];
  for (const h of hidden) {
    const b = h.before ? cls(h.before) : null;
    const parent = b?.parent ?? groupTops[groupTops.length - 1];
    if (!parent) continue;
    const rep: Occ = {
      id: occs.length + extra.length,
      line: null,
      placeholder: true,
      parent: null,
      children: [],
      top: null,
      block: parent.rep.block,
      start: 0n,
      end: 0n,
      priority: b?.parent ? b.rep.priority : 0,
      sig: -1,
    };
    const c: Cls = {
      rep,
      parent,
      children: [],
      addr: b?.parent ? b.addr : 0n,
      size: 0n,
      target: h.target,
      terminates: false,
      readonly: false,
      roVotes: 0,
      rwVotes: 0,
      mr: null,
      aliasDepth: -1,
    };
    extra.push(c);
    const at = b?.parent ? parent.children.indexOf(b) : -1;
    if (at >= 0) parent.children.splice(at, 0, c);
    else parent.children.push(c);
  }
  const allCls = [...clsOf.values(), ...extra];

  // Alias cycles, and each alias's depth (aliases are built after their targets). Chains are
  // followed without recursion: their length comes from the input.
  for (const c0 of allCls) {
    const chain: Cls[] = [];
    const onChain = new Set<Cls>();
    let c: Cls | null = c0;
    while (c && c.aliasDepth < 0 && c.target) {
      if (onChain.has(c)) {
        const l = c.rep.line!;
        throw new ParseError(dump.source, l.lineNo, l.text, `alias "${l.name}" leads back to itself`);
      }
      onChain.add(c);
      chain.push(c);
      c = c.target;
    }
    let d = c ? (c.aliasDepth >= 0 ? c.aliasDepth : 0) : 0;
    if (c && c.aliasDepth < 0) c.aliasDepth = 0;
    for (let k = chain.length - 1; k >= 0; k--) chain[k]!.aliasDepth = ++d;
  }

  // ---- 6. facts from the flat dump
  const groups = dump.blocks
    .map((b, i) => ({ block: b, top: cls(tops[i]!) }))
    .filter((g) => g.block.kind === 'address-space');
  if (flat) learnFromFlat(groups, flat);
  for (const c of clsOf.values()) {
    // Newer QEMU prints pure containers as `container`: the text alone is decisive then.
    if (c.rep.line?.container && !c.target) c.terminates = false;
    if (c.terminates === null) c.terminates = textTerminates(c, wellKnown ? names : null);
    if (c.roVotes > 0 && c.rwVotes === 0 && c.target) c.readonly = true;
    // Without a flat dump to say so, QEMU's PAM `pam-rom` windows are known to be read-only
    // aliases of RAM (hw/pci-host/pam.c sets them read-only when it creates them).
    if (names && !flat && c.target && c.rep.line && names.readonlyAlias(c.rep.line.name)) c.readonly = true;
  }
  if (flat) learnSiblingOrder(groups, flat, warnings);
  else guessSiblingOrder(allCls);

  // ---- 7. build the core regions
  const system = new MemorySystem();
  const all = [...allCls].sort((a, b) => a.aliasDepth - b.aliasDepth || a.rep.id - b.rep.id);
  const regionOfLine = new Map<RegionLine, MemoryRegion>();
  system.begin();
  try {
    for (const c of all) c.mr = makeRegion(system, c, dump);
    for (const c of all) {
      const mr = c.mr!;
      // Desired list order: priority descending, printed order on ties (unless the flat dump
      // showed which of two overlapping siblings wins); add in reverse.
      const order = siblingOrder(c.children);
      for (let k = order.length - 1; k >= 0; k--) {
        const ch = order[k]!;
        if (ch.mr!.container) continue;
        mr.addSubregionOverlap(ch.addr, ch.mr!, ch.rep.priority);
      }
    }
    for (const c of all) {
      const mr = c.mr!;
      if (!mr.container) {
        mr.addr = c.addr;
        mr.priority = c.rep.priority;
      }
      const l = c.rep.line;
      if (l?.nonvolatile) mr.setNonvolatile(true);
      if (c.readonly) mr.setReadonly(true);
      if (!l || l.disabled) mr.setEnabled(false);
    }
  } finally {
    system.commit();
  }
  for (const o of occs) if (o.line) regionOfLine.set(o.line, cls(o).mr!);

  // ---- 8. address spaces
  const spaces: AddressSpace[] = [];
  const pending = groups.flatMap((g) => g.block.names.map((name) => ({ name, g })));
  if (flat) {
    for (const v of flat.views) {
      for (const a of v.spaces) {
        const k = pending.findIndex((p) => p.name === a.name && printed(p.g.top) === a.root);
        const k2 = k >= 0 ? k : pending.findIndex((p) => p.name === a.name);
        if (k2 < 0) continue;
        const p = pending.splice(k2, 1)[0]!;
        spaces.push(system.addressSpace(p.g.top.mr!, p.name));
      }
    }
  }
  for (const p of pending) spaces.push(system.addressSpace(p.g.top.mr!, p.name));
  const pageBits = flat ? pageBitsOfDispatch(spaces, flat) : undefined;
  const mismatch = flat ? firstMismatch(spaces, flat) : undefined;
  const owners = new Map<MemoryRegion, string>();
  for (const [line, mr] of regionOfLine)
    if (line.owner !== undefined && !owners.has(mr)) owners.set(mr, line.owner);
  const accel = new Map<string, string>();
  for (const v of flat?.views ?? []) {
    for (const r of v.ranges) if (r.accel) accel.set(flatRangeKey(r.start, r.end, r.name), r.accel);
  }
  return {
    system,
    spaces,
    regionOfLine,
    warnings,
    qemu,
    suffixes: { ...(owners.size ? { owners } : {}), ...(accel.size ? { accel } : {}) },
    ...(flat ? { flat } : {}),
    ...(mismatch ? { mismatch } : {}),
    ...(pageBits === undefined ? {} : { pageBits }),
  };
}

/**
 * Regions QEMU 7.2 creates under fixed names whose kind the tree text hides, keyed by name and size
 * (hex), from QEMU's source: `io` (softmmu/physmem.c `memory_map_init`: the x86 port space, an I/O
 * region with unassigned-I/O ops that reads all ones in its gaps), `rtc` (hw/rtc/mc146818rtc.c:
 * an I/O region with its `rtc-index` port as a subregion), `vga.mmio` (hw/display/vga-pci.c: an
 * I/O region with the VGA register windows inside) terminate although they have children;
 * `platform bus` (hw/core/platform-bus.c) is a container although it is empty.
 */
const WELL_KNOWN = new Map<string, boolean>([
  ['io/10000', true],
  ['rtc/2', true],
  ['vga.mmio/1000', true],
]);
const WELL_KNOWN_CONTAINERS = new Set(['platform bus']);

/**
 * Text-only guess of whether an `i/o` region terminates: leaves do, regions with children do not,
 * except a bus window: a region whose only child is an `i/o` leaf of exactly its extent (PCI host
 * windows: the window is a terminating background, the bus inside is an empty container).
 */
function textTerminates(c: Cls, names: NameKinds | null): boolean {
  const known = names && c.rep.line ? WELL_KNOWN.get(`${c.rep.line.name}/${c.size.toString(16)}`) : undefined;
  if (known !== undefined) return known;
  // What QEMU's source creates under this name, where the structure alone would guess wrong: an
  // empty container (machine `none`'s `system`), or an I/O region with subregions.
  const fromSource = names && c.rep.line ? names.terminates(c.rep.line.name) : undefined;
  if (fromSource !== undefined) return fromSource;
  const only = c.children.length === 1 ? c.children[0]! : null;
  const isWindowChild = (x: Cls, p: Cls) =>
    p.children.length === 1 &&
    x.children.length === 0 &&
    !x.target &&
    x.addr === 0n &&
    x.size === p.size &&
    x.rep.line?.type === 'i/o';
  if (only && isWindowChild(only, c)) return true;
  if (c.parent && isWindowChild(c, c.parent)) return false;
  if (names && c.rep.line && WELL_KNOWN_CONTAINERS.has(c.rep.line.name)) return false;
  return c.children.length === 0;
}

/** A flat range line as QEMU prints it without `-o` and accelerator suffixes. */
function withoutSuffixes(r: FlatRangeLine): string {
  let t = r.text.trim();
  if (r.accel) t = t.slice(0, -r.accel.length);
  if (r.owner !== undefined) t = t.slice(0, -(r.owner.length + 1));
  return t;
}

/** The first flat range where the rebuilt views differ from QEMU's (compared per address space). */
function firstMismatch(spaces: readonly AddressSpace[], flat: FlatDump): FlatMismatch | undefined {
  const byName = new Map<string, AddressSpace>();
  for (const a of spaces) if (!byName.has(a.name)) byName.set(a.name, a);
  const done = new Set<unknown>();
  for (const v of flat.views) {
    for (const sp of v.spaces) {
      const as = byName.get(sp.name);
      if (!as) return { space: sp.name, qemu: v.ranges[0]?.text.trim() ?? null, ours: null };
      if (done.has(as.currentView)) continue;
      done.add(as.currentView);
      const root = as.currentView.root ? printedName(as.currentView.root) : null;
      if (root !== v.root) {
        const line = (r: string | null) => `Root memory region: ${r ?? '(none)'}`;
        return { space: sp.name, qemu: line(v.root), ours: line(root) };
      }
      const ours = as.currentView.ranges;
      const n = Math.max(ours.length, v.ranges.length);
      for (let i = 0; i < n; i++) {
        const q = v.ranges[i] ? withoutSuffixes(v.ranges[i]!) : null;
        const o = ours[i] ? formatFlatRange(ours[i]!) : null;
        if (q !== o) return { space: sp.name, qemu: q, ours: o };
      }
    }
  }
  return undefined;
}

/**
 * The flat range of QEMU's own flat dump that holds `addr` in address space `space`, for answers
 * that must not depend on a rebuild that failed to reproduce it ({@link Rebuilt.mismatch}).
 */
export function flatRangeAt(flat: FlatDump, space: string, addr: bigint): FlatRangeLine | null {
  for (const v of flat.views) {
    if (!v.spaces.some((a) => a.name === space)) continue;
    let lo = 0;
    let hi = v.ranges.length;
    while (lo < hi) {
      const m = (lo + hi) >> 1;
      if (v.ranges[m]!.end < addr) lo = m + 1;
      else hi = m;
    }
    const r = v.ranges[lo];
    return r && r.start <= addr && addr <= r.end ? r : null;
  }
  return null;
}

/**
 * The target page size QEMU used, read from the Dispatch section of an `info mtree -f -d` dump:
 * the page map's leaves count pages (QEMU `phys_page_set`), so only the true page size gives back
 * the printed nodes. Tried on the smallest view that has one; 12 bits first (x86, RISC-V, Arm
 * `virt`), then 10 (other Arm boards: `TARGET_PAGE_BITS_MIN`), 8 (AVR), then the rest.
 */
function pageBitsOfDispatch(spaces: readonly AddressSpace[], flat: FlatDump): number | undefined {
  const strip = (l: string) => l.replace(/ \[(MRU|iommu)\]/g, '');
  const views = flat.views
    .filter((v) => v.dispatch.length > 0 && v.root !== null)
    .sort((a, b) => a.ranges.length - b.ranges.length);
  for (const v of views.slice(0, 3)) {
    const as = spaces.find((a) => v.spaces.some((s) => s.name === a.name));
    if (!as) continue;
    const want = v.dispatch.map(strip).join('\n');
    for (const bits of [12, 10, 8, 11, 13, 14, 15, 16]) {
      if (formatDispatch(as.currentView, bits).map(strip).join('\n') === want) return bits;
    }
  }
  return undefined;
}

/**
 * The QEMU version a dump's text looks like: `10.1` when it prints the `container` type (QEMU
 * 10.0's `memory_region_type` does not), else `7.2`.
 */
export function dumpDialect(dump: MtreeDump): string {
  return dump.hasContainerType ? CONTAINER_TYPE_SINCE : '7.2';
}

/** The first QEMU version assumed to print pure containers as `container` (10.0 does not). */
export const CONTAINER_TYPE_SINCE = '10.1';

/** Whether `a` contains `c` (an alias into its own container would be a loop). */
function isAncestor(a: Cls, c: Cls): boolean {
  for (let p = c.parent, n = 0; p && n < 100_000; p = p.parent, n++) if (p === a) return true;
  return false;
}

/** Whether an enabled child of `t` intersects the alias window `w` (offsets inside `t`). */
function hasChildIn(t: Cls, w: RegionLine['alias']): boolean {
  if (!w) return false;
  return t.children.some(
    (ch) => !ch.rep.line?.disabled && ch.size > 0n && ch.addr <= w.offsetEnd && ch.addr + ch.size > w.offset,
  );
}

function printed(c: Cls): string {
  return c.rep.line ? c.rep.line.name : '(hidden)';
}

function makeRegion(ms: MemorySystem, c: Cls, dump: MtreeDump): MemoryRegion {
  const l = c.rep.line;
  if (!l) {
    if (c.target) return ms.alias(null, c.target.mr!, 0n, 0n);
    // A hidden section top is named by its section header.
    const top = c.rep.top === 'mr' && c.rep.block.names[0] !== undefined ? c.rep.block.names[0] : null;
    return ms.container(top, c.size);
  }
  const name = l.name === '(null)' ? null : l.name;
  const str = l.name;
  if (c.target) return ms.alias(name, c.target.mr!, l.alias!.offset, c.size);
  const type: MtreeType = l.type;
  try {
    switch (type) {
      case 'ram':
        return ms.ram(str, c.size, { nomigrate: true });
      case 'rom':
        return ms.rom(str, c.size, { nomigrate: true });
      case 'romd':
        return ms.romDevice(str, c.size, TRIVIAL_OPS, { nomigrate: true });
      case 'ramd':
        return ms.ramDevice(str, c.size);
      default:
        return c.terminates ? ms.io(name, c.size, null) : ms.container(name, c.size);
    }
  } catch (e) {
    throw new ParseError(
      dump.source,
      l.lineNo,
      l.text,
      `cannot rebuild this region: ${(e as Error).message}`,
    );
  }
}

/** The aliases crossed on the way to a region, innermost first. */
interface AliasChain {
  readonly alias: Cls;
  readonly up: AliasChain | null;
  readonly n: number;
}

/** Deeper alias chains are endless loops (the core refuses them when it renders). */
const MAX_ALIAS_NESTING = 1024;

/** Placement walk: where each region lands in which flat views, and through which aliases. */
function learnFromFlat(groups: Array<{ block: TreeBlock; top: Cls }>, flat: FlatDump): void {
  // Flat ranges by the address their region's offset 0 would have, and name.
  const byOrigin = new Map<string, Array<{ view: FlatViewBlock; r: FlatViewBlock['ranges'][number] }>>();
  for (const v of flat.views) {
    for (const r of v.ranges) {
      const key = `${r.start - r.offset}:${r.name}`;
      const l = byOrigin.get(key);
      if (l) l.push({ view: v, r });
      else byOrigin.set(key, [{ view: v, r }]);
    }
  }
  const termYes = new Set<Cls>();
  const placed = new Set<Cls>();
  let budget = 2_000_000;
  for (const g of groups) {
    const views = new Set(
      flat.views.filter((v) =>
        v.spaces.some((a) => g.block.names.includes(a.name) && a.root === printed(g.top)),
      ),
    );
    if (views.size === 0) continue;
    // Depth-first with an explicit stack (nesting depth comes from the input); the aliases crossed
    // are a linked chain. An alias chain deeper than the core accepts is an endless loop.
    type Frame = { c: Cls; base: bigint; lo: bigint; hi: bigint; aliases: AliasChain | null };
    const stack: Frame[] = [{ c: g.top, base: 0n, lo: 0n, hi: SIZE_2_64, aliases: null }];
    for (let f = stack.pop(); f; f = stack.pop()) {
      if (--budget < 0) break;
      const { c, base, lo, hi, aliases } = f;
      const l = c.rep.line;
      if (!l || l.disabled) continue;
      const start = base + c.addr;
      const a = start > lo ? start : lo;
      const b = start + c.size < hi ? start + c.size : hi;
      if (a >= b) continue;
      if (c.target) {
        if ((aliases?.n ?? 0) >= MAX_ALIAS_NESTING) continue;
        const chain = { alias: c, up: aliases, n: (aliases?.n ?? 0) + 1 };
        stack.push({
          c: c.target,
          base: start - c.target.addr - l.alias!.offset,
          lo: a,
          hi: b,
          aliases: chain,
        });
        continue;
      }
      for (const ch of c.children) stack.push({ c: ch, base: start, lo: a, hi: b, aliases });
      placed.add(c);
      // Flat ranges of this region at a position consistent with this placement. QEMU merges
      // neighbouring ranges of one region (flatview_simplify), so a range may reach past it.
      // A child of the same name at offset 0 (i.MX `imx8mp.analog`) prints the same ranges: those
      // inside it are the child's.
      let twinEnd = start;
      for (const ch of c.children) {
        if (ch.addr === 0n && ch.rep.line?.name === l.name && start + ch.size > twinEnd)
          twinEnd = start + ch.size;
      }
      const hits = (byOrigin.get(`${start}:${l.name}`) ?? []).filter(
        ({ view, r }) => views.has(view) && r.start < b && r.end >= a && r.end >= twinEnd,
      );
      if (l.type === 'i/o' && hits.length) termYes.add(c);
      if (l.type === 'ram') {
        for (const { r } of hits) {
          for (let al = aliases; al; al = al.up) {
            if (r.type === 'rom') al.alias.roVotes++;
            // A writable range that reaches past this placement may come through a neighbour.
            else if (r.start >= a && r.end < b) al.alias.rwVotes++;
          }
        }
      }
    }
  }
  for (const c of placed) {
    if (c.rep.line?.type === 'i/o' && !c.target) {
      c.terminates = termYes.has(c);
    }
  }
}

/**
 * The list order of a container's children: priority descending; among equal priorities the
 * printed order, except where the flat dump showed that a sibling wins over another
 * ({@link Cls.beats}): a stable topological sort (QEMU `render_memory_region` lets the first
 * sibling in the list win, and `memory_region_add_subregion_common` puts the newest of equal
 * priority first).
 */
function siblingOrder(children: readonly Cls[]): Cls[] {
  const sorted = [...children].sort((a, b) => b.rep.priority - a.rep.priority);
  if (!sorted.some((c) => c.beats?.size)) return sorted;
  const index = new Map(sorted.map((c, i) => [c, i]));
  const indegree = new Map<Cls, number>(sorted.map((c) => [c, 0]));
  for (const c of sorted) {
    for (const d of c.beats ?? []) if (index.has(d)) indegree.set(d, indegree.get(d)! + 1);
  }
  const out: Cls[] = [];
  const done = new Set<Cls>();
  while (out.length < sorted.length) {
    // The first (in printed order) sibling that nothing still pending must precede.
    let pick = sorted.find((c) => !done.has(c) && indegree.get(c) === 0);
    // A cycle (contradictory evidence): fall back to the printed order for what is left.
    pick ??= sorted.find((c) => !done.has(c))!;
    done.add(pick);
    out.push(pick);
    for (const d of pick.beats ?? []) if (index.has(d)) indegree.set(d, indegree.get(d)! - 1);
  }
  return out;
}

/**
 * Without a flat dump: of two overlapping equal-priority siblings at different addresses, the one
 * that starts higher is taken as newer, so it wins (QEMU lists the newest first). Boards map a
 * catch-all region first and the devices inside it afterwards (Aspeed's `aspeed.io`, NPCM's and
 * MPS2's unimplemented-device windows); measured on the corpus (docs/mtree-rebuild.md), this beats
 * "the lower address wins" and "the inner one wins".
 */
function guessSiblingOrder(all: readonly Cls[]): void {
  for (const c of all) {
    const kids = c.children.filter((k) => k.rep.line && !k.rep.line.disabled && k.size > 0n);
    if (kids.length < 2) continue;
    const byStart = [...kids].sort((x, y) => (x.addr < y.addr ? -1 : x.addr > y.addr ? 1 : 0));
    for (let i = 0; i < byStart.length; i++) {
      const x = byStart[i]!;
      for (let j = i + 1; j < byStart.length && byStart[j]!.addr < x.addr + x.size; j++) {
        const y = byStart[j]!;
        if (x.rep.priority !== y.rep.priority || x.addr === y.addr) continue;
        y.beats ??= new Set();
        y.beats.add(x);
      }
    }
  }
}

/** Whether region `c` shows something (is not a gap) at `offset` inside it. */
function solidAt(c: Cls, offset: bigint, depth = 0): boolean {
  const l = c.rep.line;
  if (!l || l.disabled || offset < 0n || offset >= c.size || depth > 64) return false;
  if (c.target) return solidAt(c.target, offset + l.alias!.offset, depth + 1);
  if (l.type !== 'i/o' || c.terminates) return true;
  for (const ch of c.children) {
    if (solidAt(ch, (((offset - ch.addr) % MOD) + MOD) % MOD, depth + 1)) return true;
  }
  return false;
}

/** One visit of a region by the placement walk, linked to the visit of its container. */
interface Visit {
  readonly cls: Cls;
  readonly start: bigint;
  readonly up: Visit | null;
}

/**
 * Which of two overlapping equal-priority siblings wins. The tree text prints siblings in address
 * order (QEMU `mtree_print_mr`), which hides their list order when they start at different
 * addresses. The flat dump shows the winner: where both show something, the flat range there
 * belongs to one of them (its name at a consistent position, range start − offset = region start).
 */
function learnSiblingOrder(
  groups: Array<{ block: TreeBlock; top: Cls }>,
  flat: FlatDump,
  warnings: string[],
): void {
  for (const g of groups) {
    const views = flat.views.filter((v) =>
      v.spaces.some((a) => g.block.names.includes(a.name) && a.root === printed(g.top)),
    );
    if (views.length === 0) continue;
    const visits = new Map<string, Visit[]>();
    const overlaps: Array<{ visit: Visit; a: Cls; b: Cls; lo: bigint; hi: bigint }> = [];
    let budget = 2_000_000;
    // Iterative walk (input-controlled depth must not recurse).
    const stack: Array<{ c: Cls; base: bigint; lo: bigint; hi: bigint; up: Visit | null; nAlias: number }> = [
      { c: g.top, base: 0n, lo: 0n, hi: SIZE_2_64, up: null, nAlias: 0 },
    ];
    while (stack.length && --budget > 0) {
      const { c, base, lo, hi, up, nAlias } = stack.pop()!;
      const l = c.rep.line;
      if (!l || l.disabled) continue;
      const start = base + c.addr;
      const a = start > lo ? start : lo;
      const b = start + c.size < hi ? start + c.size : hi;
      if (a >= b) continue;
      const visit: Visit = { cls: c, start, up };
      const key = `${start}:${l.name}`;
      const vl = visits.get(key);
      if (vl) vl.push(visit);
      else visits.set(key, [visit]);
      if (c.target) {
        if (nAlias >= MAX_ALIAS_NESTING) continue;
        const base2 = start - c.target.addr - l.alias!.offset;
        stack.push({ c: c.target, base: base2, lo: a, hi: b, up: visit, nAlias: nAlias + 1 });
        continue;
      }
      const kids = c.children.filter((k) => k.rep.line && !k.rep.line.disabled && k.size > 0n);
      for (const k of kids) stack.push({ c: k, base: start, lo: a, hi: b, up: visit, nAlias });
      if (kids.length < 2) continue;
      // Overlapping equal-priority siblings: sweep in address order.
      const byStart = [...kids].sort((x, y) => (x.addr < y.addr ? -1 : x.addr > y.addr ? 1 : 0));
      for (let i = 0; i < byStart.length; i++) {
        const x = byStart[i]!;
        for (let j = i + 1; j < byStart.length && byStart[j]!.addr < x.addr + x.size; j++) {
          const y = byStart[j]!;
          // At one address the printed order already is the list order (mtree_print_mr).
          if (x.rep.priority !== y.rep.priority || x.addr === y.addr) continue;
          const olo = start + y.addr > a ? start + y.addr : a;
          const xe = x.addr + x.size < y.addr + y.size ? x.addr + x.size : y.addr + y.size;
          const ohi = start + xe < b ? start + xe : b;
          if (olo < ohi) overlaps.push({ visit, a: x, b: y, lo: olo, hi: ohi });
        }
      }
    }
    for (const o of overlaps) {
      let aWins = false;
      let bWins = false;
      for (const v of views) {
        for (const r of rangesIn(v.ranges, o.lo, o.hi)) {
          const child = childVisitOf(visits.get(`${r.start - r.offset}:${r.name}`), o.visit);
          if (!child) continue;
          const x = r.start > o.lo ? r.start : o.lo;
          const base = o.visit.start;
          if (child === o.a && solidAt(o.b, x - base - o.b.addr)) aWins = true;
          if (child === o.b && solidAt(o.a, x - base - o.a.addr)) bWins = true;
        }
      }
      if (aWins && bWins) {
        warnings.push(
          `regions "${printed(o.a)}" and "${printed(o.b)}" each win part of their overlap in the flat dump`,
        );
        continue;
      }
      const [w, los] = aWins ? [o.a, o.b] : bWins ? [o.b, o.a] : [null, null];
      if (!w || !los) continue;
      w.beats ??= new Set();
      w.beats.add(los);
      los.beats?.delete(w);
    }
  }
}

/** Flat ranges of a view (sorted by start) that intersect [lo, hi). */
function rangesIn(ranges: readonly FlatRangeLine[], lo: bigint, hi: bigint): FlatRangeLine[] {
  let l = 0;
  let h = ranges.length;
  while (l < h) {
    const m = (l + h) >> 1;
    if (ranges[m]!.end < lo) l = m + 1;
    else h = m;
  }
  const out: FlatRangeLine[] = [];
  for (let i = l; i < ranges.length && ranges[i]!.start < hi; i++) out.push(ranges[i]!);
  return out;
}

/** The child (of the container visited by `container`) through which one of `visits` was reached. */
function childVisitOf(visits: Visit[] | undefined, container: Visit): Cls | null {
  for (const v of visits ?? []) {
    for (let x: Visit | null = v; x; x = x.up) {
      if (x.up === container) return x.cls;
    }
  }
  return null;
}
