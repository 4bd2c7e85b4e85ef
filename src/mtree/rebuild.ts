/**
 * @module mtree/rebuild
 * Rebuilds a machine's region graph from an `info mtree [-D]` dump (optionally helped by an
 * `info mtree -f` dump of the same moment), as core {@link MemoryRegion}s in a new
 * {@link MemorySystem} with the dump's address spaces. Rendering the result with the core then
 * reproduces QEMU's `info mtree -f`, and printing it reproduces the tree text.
 *
 * The rebuild is a pipeline of named steps (`rebuild` calls them in order):
 *
 * 1. `readOccurrences`: every printed line becomes an occurrence; without `-D` a depth jump means
 *    hidden disabled regions, rebuilt as disabled placeholder containers.
 * 2. `signSubtrees` and `unifyReprintedRegions`: a region printed again (an address-space group or
 *    a section top, and its copy inside another tree) is one region: same name, own address,
 *    extent, priority, type, flags, alias window and whole subtree.
 * 3. `formRegions`: one region per set of unified occurrences, with container and children.
 * 4. `bindAliasTargets`: aliases bound to targets by replaying QEMU's print order (targets are
 *    queued when first met and printed as `memory-region:` sections in that order); among
 *    same-named targets, the one with something in the alias window.
 * 5. `orderAliasesByDepth`: alias cycles are errors; targets are built before their aliases.
 * 6. `decideKindsAndOrder`: which `i/o` regions terminate, which aliases are read-only and which
 *    of two overlapping equal-priority siblings wins: from the flat dump when given (it decides),
 *    else from the name table generated from QEMU's source and the structural rules.
 * 7. `buildCoreRegions` and `createAddressSpaces`: the core regions, linked in the decided list
 *    order, and the address spaces in the flat dump's ` AS` order.
 *
 * Every rule, with what it is based on, is in docs/mtree-rebuild.md. No step recurses on the
 * input's nesting depth.
 */

import { SIZE_2_64 } from '../core/address.js';
import type { AddressSpace } from '../core/address-space.js';
import { IntMinHeap } from '../core/int-heap.js';
import type { MemoryRegion } from '../core/region.js';
import { MemorySystem } from '../core/system.js';
import type { MemoryRegionOps } from '../core/types.js';
import { formatDispatch } from './dispatch.js';
import { type NameKinds, nameKindsFor, newestTableVersion } from './names/index.js';
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
import {
  type FlatSuffixes,
  flatRangeKey,
  formatFlatRange,
  printedName,
  printsContainerType,
} from './print.js';

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
interface Occurrence {
  readonly id: number;
  readonly line: RegionLine | null;
  /** Placeholder for a hidden disabled region. */
  readonly placeholder: boolean;
  readonly parent: Occurrence | null;
  readonly children: Occurrence[];
  readonly top: 'as' | 'mr' | null;
  readonly block: TreeBlock;
  /** Absolute printed start and inclusive end. */
  readonly start: bigint;
  readonly end: bigint;
  readonly priority: number;
  signature: number;
}

/** Per-region facts gathered from the occurrences. */
interface RebuiltRegion {
  readonly rep: Occurrence;
  parent: RebuiltRegion | null;
  children: RebuiltRegion[];
  addr: bigint;
  size: bigint;
  target: RebuiltRegion | null;
  terminates: boolean | null;
  readonly: boolean;
  roVotes: number;
  rwVotes: number;
  mr: MemoryRegion | null;
  aliasDepth: number;
  /** Equal-priority siblings this region must precede in its container's list (it wins over them). */
  beats?: Set<RebuiltRegion>;
}

const MOD = SIZE_2_64;
const TRIVIAL_OPS: MemoryRegionOps = { endianness: 'little', read: () => 0, write: () => {} };

function lineName(o: Occurrence): string {
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
   * looks like ({@link dumpDialect}); a dump that prints the `container` type is read with the
   * newest table, as it only says the QEMU is 11.0 or later.
   */
  qemu?: string;
}

/**
 * Rebuilds the region graph of `dump` (see the module comment for the rules). `flat`, an
 * `info mtree -f` dump taken at the same moment, only settles per-region facts the tree does not
 * print (whether an `i/o` region terminates, whether an alias is read-only).
 */
export function rebuild(dump: MtreeDump, flat?: FlatDump, options: RebuildOptions = {}): Rebuilt {
  const qemu = options.qemu ?? dumpDialect(dump);
  const tableVersion = options.qemu ?? (dump.hasContainerType ? newestTableVersion() : qemu);
  const names = (options.wellKnown ?? true) ? nameKindsFor(tableVersion) : null;
  const warnings: string[] = [];
  const { occs, tops } = readOccurrences(dump, warnings);
  signSubtrees(occs);
  const find = unifyReprintedRegions(occs, tops);
  const { cls, clsOf } = formRegions(occs, find, warnings);
  const allCls = bindAliasTargets(dump, occs, tops, cls, clsOf, warnings);
  orderAliasesByDepth(dump, allCls);
  const groups = dump.blocks
    .map((b, i) => ({ block: b, top: cls(tops[i]!) }))
    .filter((g) => g.block.kind === 'address-space');
  decideKindsAndOrder(clsOf, allCls, groups, flat, names, warnings);
  const { system, regionOfLine } = buildCoreRegions(dump, occs, allCls, cls);
  const spaces = createAddressSpaces(system, groups, flat);
  const pageBits = flat ? pageBitsOfDispatch(spaces, flat) : undefined;
  const mismatch = flat ? firstMismatch(spaces, flat, printsContainerType(qemu)) : undefined;
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

/** Every printed line of the dump as an occurrence, with placeholders for hidden disabled regions. */
function readOccurrences(dump: MtreeDump, warnings: string[]): { occs: Occurrence[]; tops: Occurrence[] } {
  const occs: Occurrence[] = [];
  const mk = (
    line: RegionLine | null,
    parent: Occurrence | null,
    top: Occurrence['top'],
    block: TreeBlock,
    start: bigint,
    end: bigint,
    priority: number,
  ): Occurrence => {
    const o: Occurrence = {
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
      signature: -1,
    };
    occs.push(o);
    parent?.children.push(o);
    return o;
  };
  // Depth-first, in text order (occurrence ids are pre-order), with an explicit stack: the nesting
  // depth comes from the input.
  const addChildren = (top: Occurrence, topLevel: number, topNodes: TreeNode[], block: TreeBlock): void => {
    const frames: Array<{ parent: Occurrence; level: number; nodes: TreeNode[]; i: number }> = [
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
  const tops: Occurrence[] = [];
  for (const b of dump.blocks) {
    const kind = b.kind === 'address-space' ? 'as' : 'mr';
    let top: Occurrence;
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

  return { occs, tops };
}

/** Hash-conses every occurrence's subtree into a signature (equal signature = printed the same). */
function signSubtrees(occs: Occurrence[]): void {
  const signatureIds = new Map<string, number>();
  const computeSignature = (o: Occurrence): void => {
    const l = o.line;
    // Names and alias targets are JSON-quoted, every other field is a number or a fixed word, so
    // the key is unambiguous; a template string costs a fraction of JSON.stringify of an array.
    const own = l
      ? `${JSON.stringify(l.name)}|${l.type}|${l.nonvolatile ? 1 : 0}|${l.disabled ? 1 : 0}|${l.alias ? `${JSON.stringify(l.alias.target)}|${l.alias.offset}` : '-'}`
      : 'ph';
    const key = `${own}|${ownAddr(o)}|${mod64(o.end - o.start)}|${o.priority}|${o.children.map((c) => c.signature).join(',')}`;
    let id = signatureIds.get(key);
    if (id === undefined) {
      id = signatureIds.size;
      signatureIds.set(key, id);
    }
    o.signature = id;
  };
  // Ids are pre-order, so going backwards meets every child before its parent (no recursion).
  for (let i = occs.length - 1; i >= 0; i--) computeSignature(occs[i]!);
}

/**
 * Finds the occurrences that are the same region printed again (an address-space group or a
 * section top and the copy of it inside another tree) and unifies them with their subtrees.
 * Returns the union-find lookup from an occurrence id to its representative's id.
 */
function unifyReprintedRegions(occs: Occurrence[], tops: Occurrence[]): (id: number) => number {
  const unionParent = occs.map((o) => o.id);
  const find = (i: number): number => {
    while (unionParent[i] !== i) {
      unionParent[i] = unionParent[unionParent[i]!]!;
      i = unionParent[i]!;
    }
    return i;
  };
  const hasTop = new Map<number, Set<'as' | 'mr'>>();
  const union = (a: Occurrence, b: Occurrence): void => {
    const ra = find(a.id);
    const rb = find(b.id);
    if (ra !== rb) {
      // Keep the earlier occurrence as the representative.
      const [lo, hi] = ra < rb ? [ra, rb] : [rb, ra];
      unionParent[hi] = lo;
      const s = new Set([...(hasTop.get(lo) ?? []), ...(hasTop.get(hi) ?? [])]);
      hasTop.set(lo, s);
    }
  };
  /** Unifies two occurrences with equal signatures and, pairwise, their whole subtrees. */
  const unionTree = (a0: Occurrence, b0: Occurrence): void => {
    const pairs: Array<[Occurrence, Occurrence]> = [[a0, b0]];
    for (let p = pairs.pop(); p; p = pairs.pop()) {
      const [a, b] = p;
      union(a, b);
      for (let k = 0; k < a.children.length; k++) pairs.push([a.children[k]!, b.children[k]!]);
    }
  };
  for (const t of tops) hasTop.set(t.id, new Set([t.top!]));
  const bySignature = new Map<number, Occurrence[]>();
  for (const o of occs) {
    let l = bySignature.get(o.signature);
    if (!l) {
      l = [];
      bySignature.set(o.signature, l);
    }
    l.push(o);
  }
  for (const kind of ['as', 'mr'] as const) {
    for (const t of tops) {
      if (t.top !== kind || t.placeholder) continue;
      const cands = bySignature.get(t.signature) ?? [];
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

  return find;
}

/** One region per set of unified occurrences, with its container and children. */
function formRegions(
  occs: Occurrence[],
  find: (id: number) => number,
  warnings: string[],
): { cls: (o: Occurrence) => RebuiltRegion; clsOf: Map<number, RebuiltRegion> } {
  const clsOf = new Map<number, RebuiltRegion>();
  const cls = (o: Occurrence): RebuiltRegion => {
    const r = find(o.id);
    let c = clsOf.get(r);
    if (!c) {
      const rep = occs[r]!;
      let size = mod64(rep.end - rep.start) + 1n;
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
    const seen = new Set<RebuiltRegion>();
    for (const ch of c.rep.children) {
      const cc = cls(ch);
      if (!seen.has(cc)) c.children.push(cc);
      seen.add(cc);
    }
  }

  return { cls, clsOf };
}

/**
 * Binds every alias to its target region by replaying QEMU's print order (targets are queued when
 * first met and printed as sections in that order). Returns every region, with the hidden aliases
 * added for sections that only hidden (disabled, not printed) aliases queued.
 */
function bindAliasTargets(
  dump: MtreeDump,
  occs: Occurrence[],
  tops: Occurrence[],
  cls: (o: Occurrence) => RebuiltRegion,
  clsOf: Map<number, RebuiltRegion>,
  warnings: string[],
): RebuiltRegion[] {
  const sections = tops.filter((t) => t.top === 'mr');
  const sectionUsed = sections.map(() => false);
  const queued: RebuiltRegion[] = [];
  const aliasNamesOf = new Map<RebuiltRegion, Set<string>>();
  let next = 0;
  const exact = dump.hasDisabled;
  const fits = (line: RegionLine, t: RebuiltRegion): boolean => {
    const tl = t.rep.line;
    if (!tl) return true;
    if (tl.type !== line.type) return false;
    const a = line.alias!;
    return t.size === 0n || a.offsetEnd < t.size || (line.start === line.end && a.offset <= t.size);
  };
  // Without -D, targets queued by hidden aliases: rebuilt with a hidden alias of their own.
  const hidden: Array<{ target: RebuiltRegion; before: Occurrence | null }> = [];
  const takeSection = (k: number, by: Occurrence): RebuiltRegion => {
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
    let chosen: RebuiltRegion | null = null;
    const nextFits =
      next < sections.length &&
      secName(next) === name &&
      (existing.length === 0 || fits(line, cls(sections[next]!)));
    // Several same-named targets fit (one `pci_bridge_pci` per PCI bridge): the one with
    // something inside the alias window, if only one has. A bridge makes one window alias of each
    // name into its own bus container (hw/pci/pci_bridge.c pci_bridge_region_init: `pci_bridge_mem`,
    // `pci_bridge_pref_mem`, ...), so a container that already has an alias of this name bound is
    // another bridge's when others are left.
    const fitting = existing.filter((e) => fits(line, e));
    const candidates = nextFits ? [...fitting, cls(sections[next]!)] : fitting;
    let filled =
      candidates.length > 1 ? candidates.filter((t) => hasChildIn(t, line.alias) && !isAncestor(t, c)) : [];
    const fresh = filled.filter((t) => !aliasNamesOf.get(t)?.has(line.name));
    if (filled.length > 1 && fresh.length > 0) filled = fresh;
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
    const bound = aliasNamesOf.get(chosen);
    if (bound) bound.add(line.name);
    else aliasNamesOf.set(chosen, new Set([line.name]));
  }
  sections.forEach((s, k) => {
    if (sectionUsed[k]) return;
    if (exact)
      warnings.push(`section "${s.block.names[0]}" (line ${s.block.lineNo}) is the target of no alias line`);
    else hidden.push({ target: cls(s), before: null });
  });
  const groupTops = tops.filter((t) => t.top === 'as').map((t) => cls(t));
  const extra: RebuiltRegion[] = [];
  for (const h of hidden) {
    const b = h.before ? cls(h.before) : null;
    const parent = b?.parent ?? groupTops[groupTops.length - 1];
    if (!parent) continue;
    const rep: Occurrence = {
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
      signature: -1,
    };
    const c: RebuiltRegion = {
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

  return allCls;
}

/** Rejects alias cycles and gives each alias its depth (targets are built before their aliases). */
function orderAliasesByDepth(dump: MtreeDump, allCls: RebuiltRegion[]): void {
  // Alias cycles, and each alias's depth (aliases are built after their targets). Chains are
  // followed without recursion: their length comes from the input.
  for (const c0 of allCls) {
    const chain: RebuiltRegion[] = [];
    const onChain = new Set<RebuiltRegion>();
    let c: RebuiltRegion | null = c0;
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
}

/**
 * Decides what the text does not say: which `i/o` regions terminate, which aliases are read-only,
 * and which of overlapping equal-priority siblings wins, from the flat dump when there is one,
 * else from the rules (name table, structure).
 */
function decideKindsAndOrder(
  clsOf: Map<number, RebuiltRegion>,
  allCls: RebuiltRegion[],
  groups: Array<{ block: TreeBlock; top: RebuiltRegion }>,
  flat: FlatDump | undefined,
  names: NameKinds | null,
  warnings: string[],
): void {
  if (flat) learnFromFlat(groups, flat);
  for (const c of clsOf.values()) {
    if (c.terminates === null) c.terminates = textTerminates(c, names);
    if (c.roVotes > 0 && c.rwVotes === 0 && c.target) c.readonly = true;
    // Without a flat dump to say so, QEMU's PAM `pam-rom` windows are known to be read-only
    // aliases of RAM (hw/pci-host/pam.c sets them read-only when it creates them).
    if (names && !flat && c.target && c.rep.line && names.readonlyAlias(c.rep.line.name)) c.readonly = true;
  }
  if (flat) learnSiblingOrder(groups, flat, warnings);
  else guessSiblingOrder(allCls, names);
}

/** Creates the core regions (targets before aliases) and links them in the decided list order. */
function buildCoreRegions(
  dump: MtreeDump,
  occs: Occurrence[],
  allCls: RebuiltRegion[],
  cls: (o: Occurrence) => RebuiltRegion,
): { system: MemorySystem; regionOfLine: Map<RegionLine, MemoryRegion> } {
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
      const l = c.rep.line;
      // QEMU 11 prints a region in no container as `container` (memory_region_type): one printed
      // `i/o` at the top of a section is in a container no section shows. Keep it in a scratch
      // container, so that it prints back as `i/o`.
      const hiddenParent =
        dump.hasContainerType && !mr.container && !c.target && l?.type === 'i/o' && !l.container;
      if (hiddenParent) {
        system.container(null, 2n ** 64n - 1n).addSubregionOverlap(c.addr, mr, c.rep.priority);
      } else if (!mr.container && (mr.addr !== c.addr || mr.priority !== c.rep.priority)) {
        // A region in no container keeps the address and priority of its last mapping, as in
        // QEMU: map it once in a scratch container and take it out again.
        const holder = system.container(null, 2n ** 64n - 1n);
        holder.addSubregionOverlap(c.addr, mr, c.rep.priority);
        holder.delSubregion(mr);
      }
      if (l?.nonvolatile) mr.setNonvolatile(true);
      if (c.readonly) mr.setReadonly(true);
      if (!l || l.disabled) mr.setEnabled(false);
    }
  } finally {
    system.commit();
  }
  for (const o of occs) if (o.line) regionOfLine.set(o.line, cls(o).mr!);
  return { system, regionOfLine };
}

/** Creates the address spaces, in the order of the flat dump's ` AS` lines when there is one. */
function createAddressSpaces(
  system: MemorySystem,
  groups: Array<{ block: TreeBlock; top: RebuiltRegion }>,
  flat: FlatDump | undefined,
): AddressSpace[] {
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
  return spaces;
}

/** An occurrence's own address: its start relative to its container's (mod 2^64). */
function ownAddr(o: Occurrence): bigint {
  return o.parent ? mod64(o.start - o.parent.start) : o.start;
}

/** `d` modulo 2^64, for a difference of two printed addresses (both in [0, 2^64)). */
function mod64(d: bigint): bigint {
  return d < 0n ? d + MOD : d;
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
 * Whether QEMU's source says `c` terminates: a well-known region, else the name table (an empty
 * container like machine `none`'s `system`, or an I/O region with subregions); undefined when
 * neither knows the name.
 */
function sourceTerminates(c: RebuiltRegion, names: NameKinds | null): boolean | undefined {
  if (!names || !c.rep.line) return undefined;
  const name = c.rep.line.name;
  // A device container and its register block share the type's name: the block is inside.
  if (names.holdsOwnRegisterBlock(name)) {
    if (c.parent?.rep.line?.name === name) return true;
    if (c.children.some((x) => x.rep.line?.name === name)) return false;
  }
  return WELL_KNOWN.get(`${name}/${c.size.toString(16)}`) ?? names.terminates(name, c.size);
}

/**
 * Text-only guess of whether an `i/o` region terminates: what QEMU's source says of its name, else
 * leaves do, regions with children do not, except a bus window: a region whose only child is an
 * `i/o` leaf of exactly its extent (PCI host windows: the window is a terminating background, the
 * bus inside is an empty container). When the source makes the parent a container, its child is
 * not such a bus and terminates like any leaf (xlnx-zynq-devcfg.c xlnx_zynq_devcfg_init: the
 * `devcfg` container holds the register block, an I/O region of its whole extent).
 */
function textTerminates(c: RebuiltRegion, names: NameKinds | null): boolean {
  const fromSource = sourceTerminates(c, names);
  if (fromSource !== undefined) return fromSource;
  const only = c.children.length === 1 ? c.children[0]! : null;
  const isWindowChild = (x: RebuiltRegion, p: RebuiltRegion) =>
    p.children.length === 1 &&
    x.children.length === 0 &&
    !x.target &&
    x.addr === 0n &&
    x.size === p.size &&
    x.rep.line?.type === 'i/o';
  if (only && isWindowChild(only, c)) return true;
  if (c.parent && isWindowChild(c, c.parent) && sourceTerminates(c.parent, names) !== false) return false;
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

/**
 * The first flat range where the rebuilt views differ from QEMU's. Each of QEMU's views is paired
 * with a rebuilt address space of the same name and root; names repeat (three Aspeed SMC
 * controllers each have an "aspeed.smc.dma-flash"), so an identical one is preferred.
 */
function firstMismatch(
  spaces: readonly AddressSpace[],
  flat: FlatDump,
  containers: boolean,
): FlatMismatch | undefined {
  const used = new Set<AddressSpace>();
  const rendered = new Map<AddressSpace, string[]>();
  const lines = (as: AddressSpace): string[] => {
    let l = rendered.get(as);
    if (!l) {
      const root = as.currentView.root ? printedName(as.currentView.root) : null;
      l = [
        `Root memory region: ${root ?? '(none)'}`,
        ...as.currentView.ranges.map((r) => formatFlatRange(r, containers)),
      ];
      rendered.set(as, l);
    }
    return l;
  };
  const byName = new Map<string, AddressSpace[]>();
  for (const a of spaces) {
    const l = byName.get(a.name);
    if (l) l.push(a);
    else byName.set(a.name, [a]);
  }
  let first: FlatMismatch | undefined;
  for (const v of flat.views) {
    const want = [`Root memory region: ${v.root ?? '(none)'}`, ...v.ranges.map(withoutSuffixes)];
    for (const sp of v.spaces) {
      const named = (byName.get(sp.name) ?? []).filter((a) => !used.has(a));
      const cands = named.filter((a) => printedName(a.root) === sp.root);
      const any = cands.length ? cands : named;
      if (any.length === 0) {
        first ??= { space: sp.name, qemu: want[1] ?? want[0]!, ours: null };
        continue;
      }
      const same = any.find((a) => {
        const l = lines(a);
        return l.length === want.length && l.every((x, k) => x === want[k]);
      });
      const as = same ?? any[0]!;
      used.add(as);
      if (same || first) continue;
      const ours = lines(as);
      for (let k = 0; k < Math.max(ours.length, want.length); k++) {
        if (ours[k] !== want[k]) {
          first = { space: sp.name, qemu: want[k] ?? null, ours: ours[k] ?? null };
          break;
        }
      }
    }
  }
  return first;
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
 * The QEMU version a dump's text looks like: `11.0` when it prints the `container` type (see
 * printsContainerType in print.ts), else `7.2`.
 */
export function dumpDialect(dump: MtreeDump): string {
  return dump.hasContainerType ? CONTAINER_TYPE_SINCE : '7.2';
}

/** The first QEMU version that prints the `container` type (10.0 does not, 11.1 does). */
export const CONTAINER_TYPE_SINCE = '11.0';

/** Whether `a` contains `c` (an alias into its own container would be a loop). */
function isAncestor(a: RebuiltRegion, c: RebuiltRegion): boolean {
  for (let p = c.parent, n = 0; p && n < 100_000; p = p.parent, n++) if (p === a) return true;
  return false;
}

/** Whether an enabled child of `t` intersects the alias window `w` (offsets inside `t`). */
function hasChildIn(t: RebuiltRegion, w: RegionLine['alias']): boolean {
  if (!w) return false;
  return t.children.some(
    (ch) => !ch.rep.line?.disabled && ch.size > 0n && ch.addr <= w.offsetEnd && ch.addr + ch.size > w.offset,
  );
}

function printed(c: RebuiltRegion): string {
  return c.rep.line ? c.rep.line.name : '(hidden)';
}

function makeRegion(ms: MemorySystem, c: RebuiltRegion, dump: MtreeDump): MemoryRegion {
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
  readonly alias: RebuiltRegion;
  readonly up: AliasChain | null;
  readonly n: number;
}

/** Deeper alias chains are endless loops (the core refuses them when it renders). */
const MAX_ALIAS_NESTING = 1024;

/** Placement walk: where each region lands in which flat views, and through which aliases. */
function learnFromFlat(groups: Array<{ block: TreeBlock; top: RebuiltRegion }>, flat: FlatDump): void {
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
  const termYes = new Set<RebuiltRegion>();
  const placed = new Set<RebuiltRegion>();
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
    type Frame = { c: RebuiltRegion; base: bigint; lo: bigint; hi: bigint; aliases: AliasChain | null };
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
 * ({@link RebuiltRegion.beats}): a stable topological sort (QEMU `render_memory_region` lets the first
 * sibling in the list win, and `memory_region_add_subregion_common` puts the newest of equal
 * priority first).
 */
function siblingOrder(children: readonly RebuiltRegion[]): RebuiltRegion[] {
  const sorted = [...children].sort((a, b) => b.rep.priority - a.rep.priority);
  if (!sorted.some((c) => c.beats?.size)) return sorted;
  const index = new Map(sorted.map((c, i) => [c, i]));
  const indegree = new Int32Array(sorted.length);
  for (const c of sorted) {
    for (const d of c.beats ?? []) {
      const j = index.get(d);
      if (j !== undefined) indegree[j]!++;
    }
  }
  // Siblings nothing pending must precede, by printed position: the first of them is picked next.
  const ready = new IntMinHeap(sorted.length); // each position enters once
  for (let i = 0; i < sorted.length; i++) if (indegree[i] === 0) ready.push(i);
  const done = new Uint8Array(sorted.length);
  const out: RebuiltRegion[] = [];
  let rest = 0; // first position not yet placed, for the fallback below
  while (out.length < sorted.length) {
    let i = -1;
    if (ready.size > 0) {
      i = ready.top();
      ready.pop();
    }
    if (i < 0) {
      // A cycle (contradictory evidence): fall back to the printed order for what is left.
      while (done[rest]) rest++;
      i = rest;
    }
    if (done[i]) continue;
    done[i] = 1;
    const pick = sorted[i]!;
    out.push(pick);
    for (const d of pick.beats ?? []) {
      const j = index.get(d);
      if (j !== undefined && --indegree[j]! === 0 && !done[j]) ready.push(j);
    }
  }
  return out;
}

/**
 * Without a flat dump: of two overlapping equal-priority siblings at different addresses, the one
 * QEMU's source creates later wins where the name table knows (the i.MX 8M boards create their
 * unimplemented devices in their memory map's index order); else the one that starts higher is
 * taken as newer, so it wins (QEMU lists the newest first). Boards map a catch-all region first
 * and the devices inside it afterwards (Aspeed's `aspeed.io`, NPCM's and MPS2's
 * unimplemented-device windows); measured on the corpus (docs/mtree-rebuild.md), this beats "the
 * lower address wins" and "the inner one wins".
 */
function guessSiblingOrder(all: readonly RebuiltRegion[], names: NameKinds | null): void {
  for (const c of all) {
    overlappingPairs(shownChildren(c), (x, y) => {
      const [win, lose] = names?.createdLater(x.rep.line!.name, y.rep.line!.name) === true ? [x, y] : [y, x];
      win.beats ??= new Set();
      win.beats.add(lose);
    });
  }
}

/** The children of `c` a dump shows: printed, enabled and not empty. */
function shownChildren(c: RebuiltRegion): RebuiltRegion[] {
  return c.children.filter((k) => k.rep.line && !k.rep.line.disabled && k.size > 0n);
}

/**
 * Calls `fn(x, y)` for every two of `kids` of equal priority where `y` starts above `x` and
 * inside it: a sweep in address order, so its cost is a sort plus the pairs. Siblings at the same
 * address are no such pair: there the printed order already is the list order (mtree_print_mr).
 */
function overlappingPairs(
  kids: readonly RebuiltRegion[],
  fn: (x: RebuiltRegion, y: RebuiltRegion) => void,
): void {
  if (kids.length < 2) return;
  const byStart = [...kids].sort((x, y) => (x.addr < y.addr ? -1 : x.addr > y.addr ? 1 : 0));
  for (let i = 0; i < byStart.length; i++) {
    const x = byStart[i]!;
    for (let j = i + 1; j < byStart.length && byStart[j]!.addr < x.addr + x.size; j++) {
      const y = byStart[j]!;
      if (x.rep.priority === y.rep.priority && x.addr !== y.addr) fn(x, y);
    }
  }
}

/** Whether region `c` shows something (is not a gap) at `offset` inside it. */
function solidAt(c: RebuiltRegion, offset: bigint, depth = 0): boolean {
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
  readonly cls: RebuiltRegion;
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
  groups: Array<{ block: TreeBlock; top: RebuiltRegion }>,
  flat: FlatDump,
  warnings: string[],
): void {
  for (const g of groups) {
    const views = flat.views.filter((v) =>
      v.spaces.some((a) => g.block.names.includes(a.name) && a.root === printed(g.top)),
    );
    if (views.length === 0) continue;
    const visits = new Map<string, Visit[]>();
    const overlaps: Array<{ visit: Visit; a: RebuiltRegion; b: RebuiltRegion; lo: bigint; hi: bigint }> = [];
    let budget = 2_000_000;
    // Iterative walk (input-controlled depth must not recurse).
    const stack: Array<{
      c: RebuiltRegion;
      base: bigint;
      lo: bigint;
      hi: bigint;
      up: Visit | null;
      nAlias: number;
    }> = [{ c: g.top, base: 0n, lo: 0n, hi: SIZE_2_64, up: null, nAlias: 0 }];
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
      const kids = shownChildren(c);
      for (const k of kids) stack.push({ c: k, base: start, lo: a, hi: b, up: visit, nAlias });
      overlappingPairs(kids, (x, y) => {
        const olo = start + y.addr > a ? start + y.addr : a;
        const xe = x.addr + x.size < y.addr + y.size ? x.addr + x.size : y.addr + y.size;
        const ohi = start + xe < b ? start + xe : b;
        if (olo < ohi) overlaps.push({ visit, a: x, b: y, lo: olo, hi: ohi });
      });
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
function childVisitOf(visits: Visit[] | undefined, container: Visit): RebuiltRegion | null {
  for (const v of visits ?? []) {
    for (let x: Visit | null = v; x; x = x.up) {
      if (x.up === container) return x.cls;
    }
  }
  return null;
}
