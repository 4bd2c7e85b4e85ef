/// <reference lib="dom" />
/**
 * @module viewer/treeview
 * The region tree of one address-space group: collapsible, searchable by name, drawn lazily with a
 * {@link VirtualList}. Each row shows what `info mtree` shows (range, priority, type, alias target
 * and offset) plus what the flat view made of the region: disabled regions are greyed, regions that
 * nothing reaches because others cover them are marked hidden.
 */

import { explainName } from './glossary.js';
import type { RegionNode, SpaceModel } from './model.js';
import { formatHex, formatSize, kindStyle } from './scale.js';
import { VirtualList } from './vlist.js';

/** Row index value of the header that starts the alias-target sections. */
const SECTION_HEADER = -1;

/** What the tree tells the page. */
export interface TreeEvents {
  /** A row was clicked. */
  select(node: RegionNode): void;
}

/** The tree panel. */
export class TreeView {
  private space: SpaceModel | null = null;
  private readonly expanded = new Set<number>();
  private rows: number[] = [];
  private query = '';
  private matches = 0;
  private selected = -1;
  /** Nodes on the path of the last lookup, drawn in bold. */
  private path = new Set<number>();
  private digits = 16;
  private readonly list: VirtualList;

  constructor(
    host: HTMLElement,
    private readonly status: HTMLElement,
    private readonly events: TreeEvents,
  ) {
    this.list = new VirtualList(host, 22, (el, i) => this.renderRow(el, i));
    host.addEventListener('click', (e) => this.onClick(e));
  }

  /** Shows the tree of `space`, with only its root expanded. */
  setSpace(space: SpaceModel): void {
    this.space = space;
    this.expanded.clear();
    this.expanded.add(0);
    this.selected = -1;
    this.path.clear();
    // 32-bit addresses padded to 8 digits read well; wider ones simply grow.
    this.digits = space.limit > 1n << 16n ? 8 : 4;
    this.rebuild();
  }

  /** Filters the tree to regions whose name contains `query` (case-insensitive), with their ancestors. */
  setQuery(query: string): void {
    this.query = query.trim().toLowerCase();
    this.rebuild();
  }

  /** First node matching the search, or null. */
  firstMatch(): RegionNode | null {
    if (!this.space || !this.query) return null;
    return this.space.nodes.find((n) => n.key.includes(this.query)) ?? null;
  }

  /** Expands every node (or collapses all but the root). */
  expandAll(open: boolean): void {
    if (!this.space) return;
    this.expanded.clear();
    this.expanded.add(0);
    if (open) for (const n of this.space.nodes) if (n.children.length) this.expanded.add(n.id);
    this.rebuild();
  }

  /** Selects `id`, expanding its ancestors and scrolling to it. */
  select(id: number): void {
    const space = this.space;
    if (!space) return;
    this.selected = id;
    for (let p = space.nodes[id]?.parent ?? -1; p >= 0; p = space.nodes[p]!.parent) this.expanded.add(p);
    this.rebuild();
    const row = this.rows.indexOf(id);
    if (row >= 0) this.list.reveal(row);
  }

  /** Marks the nodes of a lookup chain and reveals the last one. */
  showPath(ids: readonly number[]): void {
    this.path = new Set(ids);
    const last = ids[ids.length - 1];
    if (last !== undefined) this.select(last);
    else this.list.refresh();
  }

  private rebuild(): void {
    const space = this.space;
    this.rows = [];
    this.matches = 0;
    if (!space) {
      this.list.setCount(0);
      return;
    }
    const q = this.query;
    let keep: Set<number> | null = null;
    if (q) {
      keep = new Set();
      for (const n of space.nodes) {
        if (!n.key.includes(q)) continue;
        this.matches++;
        for (let id = n.id; id >= 0 && !keep.has(id); id = space.nodes[id]!.parent) keep.add(id);
      }
    }
    // An explicit stack: a dump may nest regions thousands deep.
    const visit = (top: number): void => {
      const stack = [top];
      for (let id = stack.pop(); id !== undefined; id = stack.pop()) {
        if (keep && !keep.has(id)) continue;
        this.rows.push(id);
        const n = space.nodes[id]!;
        if (keep || this.expanded.has(id)) {
          for (let i = n.children.length - 1; i >= 0; i--) stack.push(n.children[i]!);
        }
      }
    };
    visit(0);
    if (space.sectionRoots.length && (!keep || space.sectionRoots.some((r) => keep.has(r)))) {
      this.rows.push(SECTION_HEADER);
      for (const r of space.sectionRoots) visit(r);
    }
    this.status.textContent = q
      ? `${this.matches} match${this.matches === 1 ? '' : 'es'} for "${q}"`
      : `${space.nodes.length} regions`;
    this.list.setCount(this.rows.length);
  }

  private onClick(e: MouseEvent): void {
    const target = e.target as HTMLElement;
    const rowEl = target.closest<HTMLElement>('.vlist-row');
    if (!rowEl || !this.space) return;
    const id = this.rows[Number(rowEl.dataset.index)];
    if (id === undefined || id === SECTION_HEADER) return;
    const jump = target.closest<HTMLElement>('[data-jump]');
    if (jump) {
      const to = Number(jump.dataset.jump);
      const node = this.space.nodes[to];
      if (node) {
        this.select(to);
        this.events.select(node);
      }
      return;
    }
    if (target.closest('.twisty')) {
      if (this.expanded.has(id)) this.expanded.delete(id);
      else this.expanded.add(id);
      this.rebuild();
      return;
    }
    this.selected = id;
    this.list.refresh();
    this.events.select(this.space.nodes[id]!);
  }

  private renderRow(el: HTMLDivElement, index: number): void {
    const space = this.space!;
    const id = this.rows[index]!;
    if (id === SECTION_HEADER) {
      el.classList.add('tree-section');
      el.textContent = 'Alias targets — regions that appear only through aliases';
      return;
    }
    const n = space.nodes[id]!;
    const mr = n.region;
    el.classList.add('tree-row');
    el.dataset.node = String(id);
    if (id === this.selected) el.classList.add('selected');
    if (this.path.has(id)) el.classList.add('on-path');
    if (!n.live) el.classList.add('disabled');
    const hidden = n.live && n.visibleBytes === 0n && n.size > 0n && n.kind !== 'container' && n.parent >= 0;
    if (hidden && n.depth > 0 && !isSection(space, n)) el.classList.add('hidden');

    const name = document.createElement('span');
    name.className = 'tree-name';
    name.style.paddingLeft = `${n.depth * 14 + 2}px`;
    const tw = document.createElement('span');
    tw.className = 'twisty';
    tw.textContent = n.children.length ? (this.expanded.has(id) || this.query ? '▾' : '▸') : '';
    const badge = document.createElement('span');
    badge.className = 'badge';
    const st = kindStyle(n.kind);
    badge.style.background = st.fill;
    badge.style.borderColor = st.stroke;
    badge.textContent = n.kind === 'container' ? 'cont' : n.kind;
    const label = document.createElement('span');
    label.className = 'label';
    label.textContent = mr.name ?? '(null)';
    name.append(tw, badge, label);
    if (mr.alias) {
      const a = document.createElement('span');
      a.className = 'alias-target';
      a.textContent = `→ ${mr.alias.name ?? '(null)'} +${formatHex(mr.aliasOffset)}`;
      a.title = `alias: a window onto ${mr.alias.name ?? '(null)'} starting ${formatHex(mr.aliasOffset)} bytes into it`;
      if (n.aliasNode >= 0) a.dataset.jump = String(n.aliasNode);
      name.append(a);
    }
    if (!mr.enabled) name.append(tag('disabled', 'disabled: the flat view ignores this region'));
    else if (hidden && !isSection(space, n)) {
      name.append(tag('hidden', 'covered by higher-priority regions: no address reaches it'));
    }
    const range = document.createElement('span');
    range.className = 'tree-range mono';
    const last = n.size === 0n ? n.start : (n.start + n.size - 1n) % (1n << 64n);
    range.textContent = `${formatHex(n.start, this.digits)}–${formatHex(last, this.digits)}`;
    const size = document.createElement('span');
    size.className = 'tree-size';
    size.textContent = formatSize(n.size);
    const prio = document.createElement('span');
    prio.className = 'tree-prio';
    prio.textContent = n.parent >= 0 || mr.priority ? `prio ${mr.priority}` : '';
    el.append(name, range, size, prio);
    const explain = explainName(mr.name);
    el.title = `${mr.name ?? '(null)'}: ${n.kind}${mr.alias ? ` of ${mr.alias.name}` : ''}, ${formatSize(n.size)}${explain ? `\n${explain}` : ''}`;
  }
}

function isSection(space: SpaceModel, n: RegionNode): boolean {
  let r = n;
  while (r.parent >= 0) r = space.nodes[r.parent]!;
  return r.id !== 0;
}

function tag(text: string, title: string): HTMLSpanElement {
  const t = document.createElement('span');
  t.className = `tag tag-${text}`;
  t.textContent = text;
  t.title = title;
  return t;
}
