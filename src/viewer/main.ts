/// <reference lib="dom" />
/// <reference lib="dom.iterable" />
/**
 * @module viewer/main
 * The memtree web page: picks a machine (built-in examples, dumps served by `memtree serve`, a
 * running QEMU, or a dump pasted or dropped into the page), rebuilds it with the core library in the
 * browser, and wires the map, the region tree, the address box and the diff mode together. The page
 * state (machine, address space, address, diff) lives in the URL hash so a view can be shared.
 */

import { builtinEntries } from './builtins.js';
import { diffSpaces, type MapChange } from './changes.js';
import { explainName } from './glossary.js';
import { dirtyInSpace, type LiveInfo, liveInfoOf } from './live.js';
import { escapeHtml, MapView } from './mapview.js';
import {
  type AddressAnswer,
  answerAt,
  defaultSpace,
  type MachineModel,
  type MapPiece,
  pieceAt,
  type RegionNode,
  type SpaceModel,
} from './model.js';
import {
  formatHex,
  formatSize,
  kindStyle,
  LEGEND_KINDS,
  parseAddress,
  type ScaleMode,
  type Viewport,
} from './scale.js';
import { machineFromText, splitDumpText } from './sources.js';
import { TreeView } from './treeview.js';
import { VirtualList } from './vlist.js';

/** A machine the page can show. `load` is called once (again on refresh for a live QEMU). */
export interface Entry {
  readonly id: string;
  readonly label: string;
  readonly load: () => Promise<MachineModel>;
  readonly live?: boolean;
}

interface ServerList {
  readonly dumps: { id: string; label: string }[];
  readonly qmp: { label: string } | null;
  /** A machine running in the server's process (`memtree run --serve`). */
  readonly live?: { label: string } | null;
}

/** How often the page reads a running machine again when asked to. */
const AUTO_REFRESH_MS = 2000;

const $ = <T extends HTMLElement>(id: string): T => {
  const el = document.getElementById(id);
  if (!el) throw new Error(`page is missing #${id}`);
  return el as T;
};

function intro(space: SpaceModel): string {
  const n = space.names;
  if (space.ranges.length === 0) {
    return `<b>${escapeHtml(space.title)}</b> has no flat view: its root is disabled or empty (for a PCI device this means bus mastering is off), so no address answers. The tree still shows what would be mapped.`;
  }
  if (n.includes('memory') || n.some((x) => x.startsWith('cpu-memory'))) {
    return `<b>The guest-physical memory map</b> — what the CPU sees at each address. The bar is QEMU's <i>flat view</i>: for every address, the one region that answers (RAM green, ROM blue, device registers orange; hatched = a hole where nothing answers). Above it, the top-level regions of the tree: they overlap, and where they do the higher priority wins — that is how RAM and the PCI devices share the space. The tree below shows how the machine built the map: containers group regions, <span style="color:#6a4bb5">aliases</span> are windows onto other regions. Click anywhere on the bar, or type an address on the right.`;
  }
  if (n.includes('I/O')) {
    return '<b>The x86 I/O port space</b> (64 KiB), reached by the <code>in</code>/<code>out</code> instructions. Each coloured range is a device register block; <i>io @offset</i> pieces are the gaps of the <code>io</code> region itself, which answers where no device does.';
  }
  return `<b>${escapeHtml(space.title)}</b>: the address space a bus master or CPU mode sees, rooted at <code>${escapeHtml(space.root.name ?? '(null)')}</code>. The bar shows which region answers at each address; the tree shows how it was built.`;
}

/** A few addresses worth looking up in `space`: the biggest RAM, a device, the top of ROM, a hole. */
function suggestions(space: SpaceModel | null): { addr: bigint; why: string }[] {
  if (!space?.ranges.length) return [];
  const biggest = (kind: string): MapPiece | null => {
    let best: MapPiece | null = null;
    for (const p of space.pieces)
      if (p.kind === kind && (!best || p.end - p.start > best.end - best.start)) best = p;
    return best;
  };
  const out: { addr: bigint; why: string }[] = [];
  const ram = biggest('ram');
  if (ram) out.push({ addr: ram.start + (ram.end - ram.start) / 2n, why: `in ${ram.label}` });
  const io = biggest('i/o');
  if (io) out.push({ addr: io.start, why: io.label });
  const roms = space.pieces.filter((p) => p.kind === 'rom');
  const rom = roms[roms.length - 1];
  if (rom && rom.end - rom.start >= 16n)
    out.push({ addr: rom.end - 16n, why: `near the top of ${rom.label}` });
  const hole = biggest('hole');
  if (hole) out.push({ addr: hole.start, why: 'a hole' });
  return out;
}

/** The page. */
/** Where a change of the diff list is, as its row prints it. */
function changeWhere(c: MapChange): string {
  const f = (c.after ?? c.before)!;
  return c.kind === 'moved'
    ? `${formatHex(c.before!.start)} → ${formatHex(c.after!.start)}`
    : `${formatHex(f.start)}–${formatHex(f.start + f.size - 1n)}`;
}

class App {
  private entries: Entry[] = [];
  private readonly cache = new Map<string, MachineModel>();
  private machine: MachineModel | null = null;
  private entry: Entry | null = null;
  private compare: MachineModel | null = null;
  private spaceIndex = 0;
  private space: SpaceModel | null = null;
  private compareSpace: SpaceModel | null = null;
  private changes: MapChange[] = [];
  private answer: AddressAnswer | null = null;
  private pasted = 0;
  /** The live fields of the last reading of each running machine, and of the one before it. */
  private readonly liveInfo = new Map<string, { now: LiveInfo; before: LiveInfo | null }>();
  private autoTimer: ReturnType<typeof setInterval> | null = null;
  private refreshing = false;

  private readonly map: MapView;
  private readonly tree: TreeView;
  private readonly rangeList: VirtualList;
  private readonly machineSel = $<HTMLSelectElement>('machine');
  private readonly diffSel = $<HTMLSelectElement>('diff');
  private readonly status = $('status');

  constructor() {
    this.map = new MapView($<HTMLCanvasElement>('map'), $('tooltip'), {
      pick: (addr) => this.lookup(addr, true),
      viewChanged: (v, mode) => this.showViewport(v, mode),
    });
    this.tree = new TreeView($('tree'), $('tree-status'), { select: (n) => this.selectNode(n) });
    this.rangeList = new VirtualList($('ranges'), 20, (el, i) => this.renderRangeRow(el, i));
    $('ranges').addEventListener('click', (e) => this.onRangeClick(e));
    this.wire();
  }

  async start(): Promise<void> {
    this.entries = [...builtinEntries()];
    let first = this.entries[0]!.id;
    try {
      const res = await fetch('./api/dumps');
      if (res.ok) {
        const list = (await res.json()) as ServerList;
        const served: Entry[] = list.dumps.map((d) => ({
          // The server names dumps readably (#m=pc-512m); a built-in example of the same name
          // yields it (below), since the dumps given to `memtree serve` are what the user asked for.
          id: d.id === 'qmp' ? `dump:${d.id}` : d.id,
          label: d.label,
          load: () => this.fetchDump(`./api/dumps/${encodeURIComponent(d.id)}`),
        }));
        if (list.live) {
          served.unshift({
            id: 'live',
            label: list.live.label,
            live: true,
            load: () => this.fetchDump('./api/live', 'live'),
          });
        }
        if (list.qmp) {
          served.unshift({
            id: 'qmp',
            label: list.qmp.label,
            live: true,
            load: () => this.fetchDump('./api/qmp'),
          });
        }
        if (served.length) first = served[0]!.id;
        const taken = new Set(served.map((e) => e.id));
        const builtins = this.entries.map((e) => (taken.has(e.id) ? { ...e, id: `example:${e.id}` } : e));
        this.entries = [...served, ...builtins];
      }
    } catch {
      // Opened without `memtree serve` (e.g. from a static host): the built-in examples remain.
    }
    this.fillSelects();
    const hash = new URLSearchParams(location.hash.slice(1));
    const want = hash.get('m');
    await this.showMachine(want && this.entries.some((e) => e.id === want) ? want : first, hash.get('as'));
    const diff = hash.get('diff');
    if (diff && this.entries.some((e) => e.id === diff)) await this.setDiff(diff);
    const addr = hash.get('addr');
    if (addr) {
      $<HTMLInputElement>('address').value = addr;
      this.lookupText(addr);
    }
    document.body.dataset.ready = 'true';
  }

  /** Fetches a dump; `liveId`: the entry of a running machine, whose dirty pages are kept too. */
  private async fetchDump(url: string, liveId?: string): Promise<MachineModel> {
    // The server serves a live reading (which clears the dirty pages it reports) only to a request
    // carrying this header: see LIVE_HEADER in src/cli/commands/serve.ts.
    const res = await fetch(url, liveId ? { headers: { 'x-memtree-live': '1' } } : undefined);
    const body = (await res.json()) as {
      label?: string;
      mtree?: string;
      flat?: string | null;
      error?: string;
    };
    if (!res.ok || body.error || !body.mtree) throw new Error(body.error ?? `${url}: HTTP ${res.status}`);
    const model = machineFromText({ label: body.label ?? url, mtree: body.mtree, flat: body.flat ?? null });
    const info = liveId ? liveInfoOf(body as Record<string, unknown>) : null;
    if (liveId && info) {
      this.liveInfo.set(liveId, { now: info, before: this.liveInfo.get(liveId)?.now ?? null });
    }
    return model;
  }

  private fillSelects(): void {
    const cur = this.machineSel.value;
    const curDiff = this.diffSel.value;
    this.machineSel.replaceChildren(...this.entries.map((e) => new Option(e.label, e.id)));
    this.diffSel.replaceChildren(
      new Option('— no diff —', ''),
      ...this.entries.map((e) => new Option(e.label, e.id)),
    );
    if (cur) this.machineSel.value = cur;
    this.diffSel.value = curDiff;
  }

  private async model(id: string, fresh = false): Promise<MachineModel> {
    const cached = this.cache.get(id);
    if (cached && !fresh) return cached;
    const e = this.entries.find((x) => x.id === id);
    if (!e) throw new Error(`unknown machine ${id}`);
    this.setStatus(`Loading ${e.label}…`);
    const m = await e.load();
    this.cache.set(id, m);
    this.setStatus('');
    return m;
  }

  private setStatus(text: string, error = false): void {
    this.status.textContent = text;
    this.status.classList.toggle('error', error);
  }

  private async showMachine(id: string, spaceTitle?: string | null, fresh = false): Promise<void> {
    try {
      const m = await this.model(id, fresh);
      this.machine = m;
      this.entry = this.entries.find((e) => e.id === id) ?? null;
      this.machineSel.value = id;
      const liveHere = this.entry?.id === 'live';
      $('refresh').hidden = !this.entry?.live;
      $('refresh').textContent = liveHere ? '↻ Refresh' : '↻ Refresh from QEMU';
      $('refresh').title = liveHere
        ? 'Read the running machine again: its map, and the pages written since the last reading'
        : 'Read the memory map of the running QEMU again';
      $('auto-refresh-wrap').hidden = !this.entry?.live;
      if (!this.entry?.live) this.setAutoRefresh(false);
      let idx = spaceTitle
        ? m.spaces.findIndex((s) => s.title === spaceTitle || s.names.includes(spaceTitle))
        : -1;
      if (idx < 0 && this.space) idx = m.spaces.findIndex((s) => s.title === this.space!.title);
      const notice = $('notice');
      notice.textContent = m.mismatch ?? '';
      notice.hidden = !m.mismatch;
      this.renderTabs();
      this.showSpace(idx >= 0 ? idx : defaultSpace(m));
    } catch (e) {
      this.setStatus(`Could not load: ${(e as Error).message}`, true);
    }
  }

  private renderTabs(): void {
    const m = this.machine!;
    const order = m.spaces
      .map((s, i) => ({ s, i }))
      .sort((a, b) => {
        const ea = a.s.ranges.length === 0 ? 1 : 0;
        const eb = b.s.ranges.length === 0 ? 1 : 0;
        return ea - eb || (a.i === defaultSpace(m) ? -1 : b.i === defaultSpace(m) ? 1 : a.i - b.i);
      });
    $('tabs').replaceChildren(
      ...order.map(({ s, i }) => {
        const b = document.createElement('button');
        b.type = 'button';
        b.className = `tab${i === this.spaceIndex ? ' active' : ''}${s.ranges.length ? '' : ' empty'}`;
        b.dataset.space = String(i);
        b.textContent = s.title;
        const c = document.createElement('span');
        c.className = 'count';
        c.textContent = s.ranges.length ? `${s.ranges.length} ranges` : 'no flat view';
        b.append(c);
        b.title = `address space${s.names.length > 1 ? 's' : ''} ${s.title}, root region ${s.root.name}`;
        return b;
      }),
    );
  }

  private showSpace(index: number): void {
    const m = this.machine!;
    this.spaceIndex = index;
    const space = m.spaces[index]!;
    this.space = space;
    for (const b of document.querySelectorAll<HTMLElement>('.tab')) {
      b.classList.toggle('active', b.dataset.space === String(index));
    }
    $('intro').innerHTML = intro(space);
    $('details').replaceChildren();
    this.tree.setSpace(space);
    const q = $<HTMLInputElement>('search').value;
    if (q) this.tree.setQuery(q);
    this.updateCompare();
    this.renderLegend();
    if (this.answer) this.lookup(this.answer.addr, false);
    else this.renderAnswer();
    this.renderLive();
    this.saveHash();
  }

  /** The pages a running machine wrote since the previous reading, listed and marked on the map. */
  private renderLive(): void {
    const el = $('live');
    const info = this.entry ? this.liveInfo.get(this.entry.id) : undefined;
    if (!info || !this.space) {
      el.hidden = true;
      el.replaceChildren();
      this.map.setDirty([]);
      return;
    }
    const { now, before } = info;
    const regions = dirtyInSpace(this.space, now);
    this.map.setDirty(regions.flatMap((r) => r.ranges));
    const ran = before
      ? `The guest ran ${(now.instructions - before.instructions).toLocaleString('en')} instructions since the previous reading (${now.instructions.toLocaleString('en')} in all).`
      : `The guest has run ${now.instructions.toLocaleString('en')} instructions. A first reading lists every page: RAM starts out dirty, as in QEMU.`;
    const rows = regions.map((r) => {
      const shown = r.ranges.slice(0, 8);
      const items = shown
        .map(
          (g) =>
            `<li><a href="#" class="mono" data-addr="${g.start}">${formatHex(g.start)}–${formatHex(g.end - 1n)}</a> <span class="hint">${formatSize(g.end - g.start)}</span></li>`,
        )
        .join('');
      const more =
        r.ranges.length > shown.length || r.truncated
          ? `<li class="hint">… and more (${r.ranges.length - shown.length}${r.truncated ? '+' : ''} ranges)</li>`
          : '';
      const where = r.mapped ? '' : ' <span class="hint">(not mapped in this address space)</span>';
      return `<div class="live-region"><b>${escapeHtml(r.region)}</b>: ${r.pages.toLocaleString('en')} of ${r.totalPages.toLocaleString('en')} pages${where}${items || more ? `<ul>${items}${more}</ul>` : ''}</div>`;
    });
    el.innerHTML = `<h2>Written since the last refresh</h2><p class="hint">${ran} Pages of ${formatSize(BigInt(now.pageSize))}; red on the map.</p>${rows.join('')}`;
    el.hidden = false;
  }

  private refreshLive(): void {
    if (!this.entry?.live || this.refreshing) return;
    this.refreshing = true;
    void this.showMachine(this.entry.id, this.space?.title, true).finally(() => {
      this.refreshing = false;
    });
  }

  private setAutoRefresh(on: boolean): void {
    $<HTMLInputElement>('auto-refresh').checked = on;
    if (this.autoTimer) clearInterval(this.autoTimer);
    this.autoTimer = on ? setInterval(() => this.refreshLive(), AUTO_REFRESH_MS) : null;
  }

  private updateCompare(): void {
    const space = this.space!;
    this.compareSpace = null;
    this.changes = [];
    if (this.compare) {
      const cs =
        this.compare.spaces.find((s) => s.title === space.title) ??
        this.compare.spaces.find((s) => s.names.some((n) => space.names.includes(n))) ??
        null;
      this.compareSpace = cs;
      if (cs) this.changes = diffSpaces(space, cs);
    }
    if (this.compareSpace) {
      this.map.setLayers(
        [
          { caption: `A: ${this.machine!.label} — ${space.title}`, space },
          { caption: `B: ${this.compare!.label} — ${this.compareSpace.title}`, space: this.compareSpace },
        ],
        this.changes,
      );
      $('ranges-title').textContent = `Changes from A to B (${this.changes.length})`;
      this.setAddressWidth(this.changes.map(changeWhere));
      this.rangeList.setCount(Math.max(1, this.changes.length));
    } else {
      this.map.setLayers([{ caption: `Flat view of ${space.title} — ${this.machine!.label}`, space }]);
      $('ranges-title').textContent = this.compare
        ? `Flat view (${this.compare.label} has no address space ${space.title} to compare)`
        : `Flat view: ${space.ranges.length} ranges, ${space.pieces.length - space.ranges.length} holes`;
      this.setAddressWidth(space.pieces.map((p) => `${formatHex(p.start)}–${formatHex(p.end - 1n)}`));
      this.rangeList.setCount(space.pieces.length);
    }
    this.renderSpaceDiff();
  }

  /** Sizes the address column of the range list to its longest text (12 px monospace digits). */
  private setAddressWidth(texts: readonly string[]): void {
    const longest = texts.reduce((n, t) => Math.max(n, t.length), 10);
    $('ranges').style.setProperty('--addr-w', `${Math.ceil(longest * 7.3) + 8}px`);
  }

  /** In diff mode: the address spaces that only one of the two machines has. */
  private renderSpaceDiff(): void {
    const el = $('diff-spaces');
    const a = this.machine;
    const b = this.compare;
    if (!a || !b) {
      el.hidden = true;
      return;
    }
    const titles = (m: MachineModel) => new Set(m.spaces.flatMap((s) => s.names));
    const ta = titles(a);
    const tb = titles(b);
    const onlyA = [...ta].filter((t) => !tb.has(t));
    const onlyB = [...tb].filter((t) => !ta.has(t));
    const list = (xs: string[]) => (xs.length ? xs.map(escapeHtml).join(', ') : 'none');
    el.innerHTML =
      `Address spaces only in A (${escapeHtml(a.label)}): <b class="only-a">${list(onlyA)}</b> · ` +
      `only in B (${escapeHtml(b.label)}): <b class="only-b">${list(onlyB)}</b>`;
    el.hidden = false;
  }

  private async setDiff(id: string): Promise<void> {
    this.diffSel.value = id;
    if (!id) {
      this.compare = null;
    } else {
      try {
        this.compare = await this.model(id);
      } catch (e) {
        this.setStatus(`Could not load: ${(e as Error).message}`, true);
        this.compare = null;
        this.diffSel.value = '';
      }
    }
    document.body.dataset.diff = this.compare ? 'on' : 'off';
    this.updateCompare();
    if (this.answer) this.renderAnswer();
    this.saveHash();
  }

  private renderLegend(): void {
    const kinds = new Set(this.space!.pieces.map((p) => p.kind));
    if (this.compareSpace) for (const p of this.compareSpace.pieces) kinds.add(p.kind);
    const items = LEGEND_KINDS.filter((k) => kinds.has(k) || k === 'hole').map((k) => {
      const st = kindStyle(k);
      return `<span><i class="${k === 'hole' ? 'hole' : ''}" style="${k === 'hole' ? '' : `background:${st.fill};`}border-color:${st.stroke}"></i>${escapeHtml(st.label)}</span>`;
    });
    if (this.space!.pieces.some((p) => p.background)) {
      const st = kindStyle('i/o');
      items.push(
        `<span><i style="background:${st.fill};opacity:.4;border-color:${st.stroke}"></i>gap answered by the parent region</span>`,
      );
    }
    items.push(
      '<span><i style="background:#c7b3f0;border-color:#6a4bb5"></i>alias (in the tree lanes)</span>',
      '<span><i style="border:2px solid #dc2626;width:3px"></i>looked-up address</span>',
    );
    if (this.compareSpace) {
      items.push(
        '<span><i style="border:2px solid #059669"></i>appeared</span>',
        '<span><i style="border:2px solid #dc2626"></i>vanished</span>',
        '<span><i style="border:2px solid #d97706"></i>moved / resized</span>',
      );
    }
    $('legend').innerHTML = items.join('');
  }

  private showViewport(v: Viewport, _mode: ScaleMode): void {
    $('viewport').textContent =
      `${formatHex(v.start)} – ${formatHex(v.end - 1n)} (${formatSize(v.end - v.start)})`;
  }

  // ---------------------------------------------------------------------------------------------
  // Address lookup

  private lookupText(text: string): void {
    try {
      this.lookup(parseAddress(text), true);
    } catch (e) {
      $('answer').innerHTML = `<div class="error">${escapeHtml((e as Error).message)}</div>`;
    }
  }

  private lookup(addr: bigint, reveal: boolean): void {
    const space = this.space;
    if (!space) return;
    $<HTMLInputElement>('address').value = formatHex(addr);
    this.answer = answerAt(space, addr);
    this.map.setMarker(addr);
    if (reveal) {
      const v = this.map.viewport;
      if (addr < v.start || addr >= v.end) this.map.resetView();
      const ids = this.answer.chain.map((s) => s.node).filter((n) => n >= 0);
      this.tree.showPath(ids);
    }
    this.renderAnswer();
    this.saveHash();
  }

  private renderAnswer(): void {
    const a = this.answer;
    const el = $('answer');
    el.dataset.addr = a ? formatHex(a.addr) : '';
    el.dataset.region = a?.region?.name ?? '';
    el.dataset.offset = a ? formatHex(a.offset) : '';
    if (!a || !this.space) {
      const tries = suggestions(this.space)
        .map(
          (t) =>
            `<a href="#" class="try mono" data-addr="${t.addr}">${formatHex(t.addr)}</a> <span class="hint">(${escapeHtml(t.why)})</span>`,
        )
        .join(' · ');
      el.innerHTML = `<span class="hint">Type an address, or click on the map.</span>${tries ? `<div class="tries">Try: ${tries}</div>` : ''}`;
      return;
    }
    if (a.addr >= this.space.limit) {
      el.innerHTML = `<div class="big hole">${formatHex(a.addr)} is beyond the end of ${escapeHtml(this.space.title)} (${formatSize(this.space.limit)}).</div>`;
      this.renderCompareAnswer(el, a.addr);
      return;
    }
    if (!a.region || !a.range) {
      const p = pieceAt(this.space, a.addr);
      el.innerHTML = `<div class="big hole"><b>${formatHex(a.addr)}</b>: nothing answers here.</div>
        <div>It lies in a hole${p ? ` (${formatHex(p.start)}–${formatHex(p.end - 1n)}, ${formatSize(p.end - p.start)})` : ''}: no region covers it, so a guest access goes to QEMU's unassigned-memory handler.</div>`;
      this.renderCompareAnswer(el, a.addr);
      return;
    }
    const r = a.range;
    const type = r.readonly ? 'rom' : a.chain[a.chain.length - 1] ? this.typeOf(a) : '';
    const steps = a.chain.map((s, i) => {
      const mr = s.region;
      const last = i === a.chain.length - 1;
      const parts: string[] = [];
      if (mr.alias) parts.push('alias');
      else if (!mr.terminates)
        parts.push(s.via === 'root' ? 'container, root of the address space' : 'container');
      else parts.push(escapeHtml(type));
      if (s.via === 'subregion')
        parts.push(`at ${formatHex(s.base)}${mr.priority ? `, priority ${mr.priority}` : ''}`);
      if (mr.alias)
        parts.push(`→ ${escapeHtml(mr.alias.name ?? '(null)')} from its offset ${formatHex(mr.aliasOffset)}`);
      if (last) parts.push(`the address is its byte ${formatHex(s.offset)}`);
      return `<li class="${last ? 'terminal' : ''}" data-node="${s.node}">${escapeHtml(mr.name ?? '(null)')} <span class="via">— ${parts.join(', ')}</span></li>`;
    });
    const head = this.compare
      ? `<div class="answer-a-head">A: ${escapeHtml(this.machine?.label ?? '')}</div>`
      : '';
    el.innerHTML = `${head}<div class="big"><b>${formatHex(a.addr)}</b> → <b class="answer-region">${escapeHtml(a.region.name ?? '(null)')}</b> <span class="badge" style="background:${kindStyle(type).fill};border-color:${kindStyle(type).stroke}">${escapeHtml(type)}</span></div>
      ${explainName(a.region.name) ? `<div class="explain">${escapeHtml(explainName(a.region.name)!)}</div>` : ''}
      <div>offset <b class="answer-offset mono">${formatHex(a.offset)}</b> in the region · flat range ${formatHex(r.start)}–${formatHex(r.start + r.size - 1n)} (${formatSize(r.size)})${r.readonly ? ' · read-only' : ''}</div>
      <div class="hint" style="margin-top:4px">How the address gets there, from the root of the address space:</div>
      <ol class="chain">${steps.join('')}</ol>`;
    this.renderCompareAnswer(el, a.addr);
  }

  /** In diff mode, what machine B has at the same address, under A's answer. */
  private renderCompareAnswer(el: HTMLElement, addr: bigint): void {
    if (!this.compare) return;
    const box = document.createElement('div');
    box.id = 'answer-b';
    box.className = 'answer-b';
    const h = document.createElement('h3');
    h.textContent = `B: ${this.compare.label}`;
    box.append(h);
    const cs = this.compareSpace;
    const line = document.createElement('div');
    if (!cs) {
      line.textContent = `${this.compare.label} has no address space ${this.space?.title ?? ''}.`;
    } else {
      const b = answerAt(cs, addr);
      box.dataset.region = b.region?.name ?? '';
      box.dataset.offset = b.region ? formatHex(b.offset) : '';
      if (addr >= cs.limit) line.textContent = `${formatHex(addr)} is beyond the end of ${cs.title}.`;
      else if (!b.region || !b.range) line.textContent = `${formatHex(addr)}: nothing answers here (a hole).`;
      else {
        const r = b.range;
        line.innerHTML = `<b class="answer-region">${escapeHtml(b.region.name ?? '(null)')}</b>, offset <b class="mono">${formatHex(b.offset)}</b> · flat range ${formatHex(r.start)}–${formatHex(r.start + r.size - 1n)} (${formatSize(r.size)})${r.readonly ? ' · read-only' : ''}`;
      }
    }
    box.append(line);
    el.append(box);
  }

  private typeOf(a: AddressAnswer): string {
    const p = this.space ? pieceAt(this.space, a.addr) : null;
    return p?.kind ?? 'i/o';
  }

  // ---------------------------------------------------------------------------------------------
  // Selection and details

  private selectNode(n: RegionNode): void {
    const space = this.space!;
    const inTree = (() => {
      let r = n;
      while (r.parent >= 0) r = space.nodes[r.parent]!;
      return r.id === 0;
    })();
    this.map.setHighlight(inTree && n.size > 0n ? { start: n.start, end: n.start + n.size } : null);
    const mr = n.region;
    const parents: string[] = [];
    for (let p = n.parent; p >= 0; p = space.nodes[p]!.parent)
      parents.unshift(space.nodes[p]!.region.name ?? '(null)');
    const what: Record<string, string> = {
      container: 'container: groups its subregions; answers nothing itself',
      alias: 'alias: a window onto part of another region',
      ram: 'RAM',
      rom: 'ROM',
      romd: 'ROM device (reads from memory, writes to the device)',
      ramd: 'RAM device',
      'i/o': 'I/O: device registers (or a reservation)',
      iommu: 'IOMMU: addresses are translated',
    };
    const rows: [string, string][] = [
      ['kind', what[n.kind] ?? n.kind],
      [
        'range',
        `${formatHex(n.start)}–${formatHex(n.size ? n.start + n.size - 1n : n.start)}${inTree ? '' : ' (offsets in the region)'}`,
      ],
      ['size', `${formatSize(n.size)} (${formatHex(n.size)} bytes)`],
      ['priority', String(mr.priority)],
      ['inside', parents.length ? parents.map(escapeHtml).join(' › ') : '(top)'],
    ];
    if (mr.alias) {
      rows.push([
        'alias of',
        `${escapeHtml(mr.alias.name ?? '(null)')} bytes ${formatHex(mr.aliasOffset)}–${formatHex(mr.aliasOffset + (mr.size ? mr.size - 1n : 0n))}`,
      ]);
    }
    if (!n.live)
      rows.push(['state', mr.enabled ? 'inside a disabled region: not mapped' : 'disabled: not mapped']);
    else if (inTree && n.kind !== 'container') {
      rows.push([
        'visible',
        n.visibleBytes === 0n
          ? 'nowhere: regions of higher priority cover all of it'
          : `${formatSize(n.visibleBytes)} of ${formatSize(n.size)} reach the flat view`,
      ]);
    }
    const d = $('details');
    const explain = explainName(mr.name);
    d.innerHTML = `<h2>${escapeHtml(mr.name ?? '(null)')}</h2>${explain ? `<div class="explain">${escapeHtml(explain)}</div>` : ''}<dl>${rows.map(([k, v]) => `<dt>${k}</dt><dd>${v}</dd>`).join('')}</dl>`;
    if (inTree && n.size > 0n) {
      const b = document.createElement('button');
      b.type = 'button';
      b.textContent = 'Zoom the map to it';
      b.addEventListener('click', () => this.map.focus(n.start, n.start + n.size));
      d.append(b);
    }
  }

  // ---------------------------------------------------------------------------------------------
  // Flat range / change list

  private renderRangeRow(el: HTMLDivElement, i: number): void {
    if (this.compareSpace) {
      const c = this.changes[i];
      if (!c) {
        el.textContent = 'No differences in this address space.';
        el.className = 'vlist-row hint';
        return;
      }
      el.classList.add('range-row', `ch-${c.kind}`);
      const f = (c.after ?? c.before)!;
      el.dataset.start = String(f.start);
      el.dataset.end = String(f.start + f.size);
      const sign = { appeared: '+', vanished: '−', moved: '↔', resized: '⇔', changed: '≠' }[c.kind];
      const where = changeWhere(c);
      el.title = `${c.kind}: ${c.before ? `A: ${c.before.text}` : ''}${c.before && c.after ? '\n' : ''}${c.after ? `B: ${c.after.text}` : ''}`;
      el.innerHTML = `<span class="mono">${where}</span><span class="what">${sign} ${c.kind}</span><span>${escapeHtml(c.name)} (${formatSize(f.size)}${c.kind === 'resized' ? ` was ${formatSize(c.before!.size)}` : ''}${c.kind === 'changed' ? `, was ${escapeHtml(c.before!.text)}` : ''})</span>`;
      return;
    }
    const p: MapPiece | undefined = this.space?.pieces[i];
    if (!p) return;
    el.classList.add('range-row');
    if (!p.range) el.classList.add('hole');
    el.dataset.start = String(p.start);
    el.dataset.end = String(p.end);
    const st = kindStyle(p.kind);
    const off = p.range?.offsetInRegion ? ` @${formatHex(p.range.offsetInRegion)}` : '';
    el.innerHTML = `<span class="mono">${formatHex(p.start)}–${formatHex(p.end - 1n)}</span><span>${formatSize(p.end - p.start)}</span><span><i class="sw" style="background:${p.kind === 'hole' ? '#f4f5f7' : st.fill};border-color:${st.stroke}"></i>${escapeHtml(p.range ? p.label : 'hole — unassigned')}${off}</span>`;
  }

  private onRangeClick(e: MouseEvent): void {
    const row = (e.target as HTMLElement).closest<HTMLElement>('.range-row');
    if (!row?.dataset.start) return;
    const start = BigInt(row.dataset.start);
    const end = BigInt(row.dataset.end!);
    this.map.focus(start, end);
    this.lookup(start, false);
  }

  // ---------------------------------------------------------------------------------------------
  // Wiring

  private saveHash(): void {
    const p = new URLSearchParams();
    if (this.machineSel.value) p.set('m', this.machineSel.value);
    if (this.space) p.set('as', this.space.title);
    if (this.answer) p.set('addr', formatHex(this.answer.addr));
    if (this.diffSel.value) p.set('diff', this.diffSel.value);
    history.replaceState(null, '', `#${p.toString()}`);
  }

  private addPasted(text: string, label: string): void {
    const id = `pasted:${++this.pasted}`;
    const name = label || `pasted dump ${this.pasted}`;
    // Rebuild now, so that a bad dump is reported in the dialog instead of being added.
    // Several dropped files (mtree-D.txt and flat.txt) arrive joined; the splitter sorts them out.
    const { mtree, flat } = splitDumpText(text);
    const model = machineFromText({ label: name, mtree, flat });
    this.entries.unshift({ id, label: name, load: async () => model });
    this.cache.set(id, model);
    this.fillSelects();
    void this.showMachine(id);
  }

  private wire(): void {
    this.machineSel.addEventListener('change', () => void this.showMachine(this.machineSel.value));
    this.diffSel.addEventListener('change', () => void this.setDiff(this.diffSel.value));
    $('tabs').addEventListener('click', (e) => {
      const b = (e.target as HTMLElement).closest<HTMLElement>('.tab');
      if (b?.dataset.space) this.showSpace(Number(b.dataset.space));
    });
    $('lookup-form').addEventListener('submit', (e) => {
      e.preventDefault();
      this.lookupText($<HTMLInputElement>('address').value);
    });
    $('answer').addEventListener('click', (e) => {
      const t = (e.target as HTMLElement).closest<HTMLElement>('a.try');
      if (t?.dataset.addr) {
        e.preventDefault();
        this.lookup(BigInt(t.dataset.addr), true);
        return;
      }
      const li = (e.target as HTMLElement).closest<HTMLElement>('li[data-node]');
      const id = Number(li?.dataset.node ?? -1);
      const n = id >= 0 ? this.space?.nodes[id] : undefined;
      if (n) {
        this.tree.select(id);
        this.selectNode(n);
      }
    });
    const search = $<HTMLInputElement>('search');
    search.addEventListener('input', () => this.tree.setQuery(search.value));
    search.addEventListener('keydown', (e) => {
      if (e.key !== 'Enter') return;
      const n = this.tree.firstMatch();
      if (n) {
        this.tree.select(n.id);
        this.selectNode(n);
      }
    });
    $('expand').addEventListener('click', () => this.tree.expandAll(true));
    $('collapse').addEventListener('click', () => this.tree.expandAll(false));
    $('zoom-in').addEventListener('click', () => this.map.zoom(0.5));
    $('zoom-out').addEventListener('click', () => this.map.zoom(2));
    $('zoom-all').addEventListener('click', () => this.map.resetView());
    const mode = $<HTMLSelectElement>('scale-mode');
    mode.addEventListener('change', () => this.map.setMode(mode.value as ScaleMode));
    $('refresh').addEventListener('click', () => this.refreshLive());
    $<HTMLInputElement>('auto-refresh').addEventListener('change', (e) =>
      this.setAutoRefresh((e.target as HTMLInputElement).checked),
    );
    $('live').addEventListener('click', (e) => {
      const a = (e.target as HTMLElement).closest<HTMLElement>('a[data-addr]');
      if (!a) return;
      e.preventDefault();
      this.lookup(BigInt(a.dataset.addr!), true);
    });

    const dialog = $<HTMLDialogElement>('load-dialog');
    const text = $<HTMLTextAreaElement>('load-text');
    const err = $('load-error');
    $('open').addEventListener('click', () => {
      err.textContent = '';
      dialog.showModal();
    });
    $<HTMLInputElement>('load-file').addEventListener('change', async (e) => {
      const f = (e.target as HTMLInputElement).files?.[0];
      if (f) {
        text.value = await f.text();
        const label = $<HTMLInputElement>('load-label');
        if (!label.value) label.value = f.name;
      }
    });
    $('load-ok').addEventListener('click', () => {
      try {
        this.addPasted(text.value, $<HTMLInputElement>('load-label').value.trim());
        dialog.close();
      } catch (e) {
        err.textContent = (e as Error).message;
      }
    });
    document.addEventListener('dragover', (e) => {
      e.preventDefault();
      document.body.classList.add('dragging');
    });
    document.addEventListener('dragleave', (e) => {
      if (!e.relatedTarget) document.body.classList.remove('dragging');
    });
    document.addEventListener('drop', async (e) => {
      e.preventDefault();
      document.body.classList.remove('dragging');
      const files = [...(e.dataTransfer?.files ?? [])];
      const texts = await Promise.all(files.map((f) => f.text()));
      const plain = e.dataTransfer?.getData('text/plain');
      const all = texts.length ? texts.join('\n') : (plain ?? '');
      if (!all) return;
      try {
        this.addPasted(all, files.map((f) => f.name).join(' + '));
      } catch (x) {
        this.setStatus(`Could not read the dropped dump: ${(x as Error).message}`, true);
      }
    });
  }
}

new App().start().catch((e: unknown) => {
  const s = document.getElementById('status');
  if (s) {
    s.textContent = `The viewer failed to start: ${(e as Error).message}`;
    s.classList.add('error');
  }
});
