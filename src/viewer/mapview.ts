/// <reference lib="dom" />
/**
 * @module viewer/mapview
 * The flat map: a horizontal address bar on a canvas. Above it, lanes show the top-level regions of
 * the tree (so the windows of aliases and the overlaps of containers are visible); the bar itself
 * shows which region answers at each address, holes hatched; below it, an axis in readable hex.
 * In diff mode it draws one bar per dump on the same scale. Wheel zooms around the pointer, dragging
 * pans, double-click zooms onto a range, click looks the address up.
 */

import type { MapChange } from './changes.js';
import { explainName } from './glossary.js';
import { type MapPiece, pieceAt, type RegionNode, type SpaceModel } from './model.js';
import {
  type AddressScale,
  buildScale,
  clampViewport,
  focusViewport,
  formatHex,
  formatSize,
  kindStyle,
  panBy,
  type ScaleMode,
  ticks,
  type Viewport,
  zoomAt,
} from './scale.js';

/** One bar: a space model and its caption. */
export interface MapLayer {
  readonly caption: string;
  readonly space: SpaceModel;
}

/** What the map tells the page. */
export interface MapEvents {
  /** The user clicked at `addr`. */
  pick(addr: bigint): void;
  /** The viewport or scale changed (for the caption). */
  viewChanged(view: Viewport, mode: ScaleMode): void;
}

const LANE_H = 16;
const MAX_LANES = 4;
const BAR_H = 46;
const CAPTION_H = 14;
const AXIS_H = 34;
const PAD_X = 8;

interface Lane {
  readonly node: RegionNode;
  readonly lane: number;
}

/** The canvas map. */
export class MapView {
  private layers: MapLayer[] = [];
  private changes: readonly MapChange[] = [];
  private view: Viewport = { start: 0n, end: 1n };
  private mode: ScaleMode = 'piecewise';
  private scale: AddressScale | null = null;
  private breaks: bigint[] = [];
  private lanes: Lane[] = [];
  private laneCount = 0;
  private highlight: { start: bigint; end: bigint } | null = null;
  private marker: bigint | null = null;
  private dirty: ReadonlyArray<{ start: bigint; end: bigint }> = [];
  private hoverX = -1;
  private drag: { x: number; moved: boolean; scale: AddressScale } | null = null;
  private readonly ctx: CanvasRenderingContext2D;
  private hatch: CanvasPattern | null = null;

  constructor(
    private readonly canvas: HTMLCanvasElement,
    private readonly tooltip: HTMLElement,
    private readonly events: MapEvents,
  ) {
    this.ctx = canvas.getContext('2d')!;
    new ResizeObserver(() => this.draw()).observe(canvas);
    canvas.addEventListener('wheel', (e) => this.onWheel(e), { passive: false });
    canvas.addEventListener('mousedown', (e) => {
      if (this.scale) this.drag = { x: e.offsetX, moved: false, scale: this.scale };
    });
    window.addEventListener('mouseup', (e) => this.onMouseUp(e));
    canvas.addEventListener('mousemove', (e) => this.onMove(e));
    canvas.addEventListener('mouseleave', () => {
      this.hoverX = -1;
      this.tooltip.hidden = true;
      this.draw();
    });
    canvas.addEventListener('dblclick', (e) => this.onDoubleClick(e));
  }

  /** The viewport. */
  get viewport(): Viewport {
    return this.view;
  }

  /** The end of the address space shown (the largest root size of the layers). */
  get limit(): bigint {
    let l = 1n;
    for (const layer of this.layers) if (layer.space.limit > l) l = layer.space.limit;
    return l;
  }

  /** Shows `layers` (one normally, two in diff mode) over the whole address space. */
  setLayers(layers: MapLayer[], changes: readonly MapChange[] = []): void {
    const keepView = this.layers.length > 0 && this.layers[0]!.space.limit === layers[0]?.space.limit;
    this.layers = layers;
    this.changes = changes;
    const set = new Set<bigint>();
    for (const l of layers) for (const b of l.space.breaks) set.add(b);
    this.breaks = [...set].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
    this.computeLanes();
    if (!keepView) this.view = { start: 0n, end: this.limit };
    this.view = clampViewport(this.view, this.limit);
    this.draw();
    this.events.viewChanged(this.view, this.mode);
  }

  /** Switches between the piecewise (log-width) and the linear scale. */
  setMode(mode: ScaleMode): void {
    this.mode = mode;
    this.draw();
    this.events.viewChanged(this.view, this.mode);
  }

  /** Shows `[start, end)`. */
  setView(view: Viewport): void {
    this.view = clampViewport(view, this.limit);
    this.draw();
    this.events.viewChanged(this.view, this.mode);
  }

  /** Shows the whole address space. */
  resetView(): void {
    this.setView({ start: 0n, end: this.limit });
  }

  /** Zooms in (factor < 1) or out around the centre. */
  zoom(factor: number): void {
    if (!this.scale) return;
    this.setView(zoomAt(this.scale, this.scale.width / 2, factor, this.limit));
  }

  /** Zooms so that `[start, end)` fills most of the bar. */
  focus(start: bigint, end: bigint): void {
    this.setView(focusViewport(start, end, this.limit));
  }

  /** Outlines `[start, end)` (the selected region), or nothing. */
  setHighlight(range: { start: bigint; end: bigint } | null): void {
    this.highlight = range;
    this.draw();
  }

  /** Marks `ranges` (pages a running guest wrote) along the bottom edge of the first bar. */
  setDirty(ranges: ReadonlyArray<{ start: bigint; end: bigint }>): void {
    this.dirty = ranges;
    this.draw();
  }

  /** Draws a marker at `addr` (the looked-up address), or none. */
  setMarker(addr: bigint | null): void {
    this.marker = addr;
    this.draw();
  }

  /** Top-level regions of the first layer's tree, packed into non-overlapping lanes. */
  private computeLanes(): void {
    this.lanes = [];
    this.laneCount = 0;
    const space = this.layers[0]?.space;
    if (!space) return;
    const root = space.nodes[0]!;
    const kids = root.children
      .map((id) => space.nodes[id]!)
      .filter((n) => n.region.enabled && n.size > 0n)
      .sort((a, b) => b.region.priority - a.region.priority || (a.start < b.start ? -1 : 1));
    const laneEnds: bigint[] = [];
    for (const n of kids) {
      let lane = laneEnds.findIndex((end) => end <= n.start);
      if (lane < 0) {
        if (laneEnds.length >= MAX_LANES) lane = MAX_LANES - 1;
        else {
          lane = laneEnds.length;
          laneEnds.push(0n);
        }
      }
      laneEnds[lane] = n.start + n.size;
      this.lanes.push({ node: n, lane });
    }
    this.laneCount = laneEnds.length;
  }

  private get lanesHeight(): number {
    return this.laneCount ? this.laneCount * LANE_H + 16 : 0;
  }

  private barTop(i: number): number {
    return this.lanesHeight + i * (BAR_H + CAPTION_H) + CAPTION_H;
  }

  /** Height the canvas needs in CSS pixels. */
  get neededHeight(): number {
    return this.lanesHeight + Math.max(1, this.layers.length) * (BAR_H + CAPTION_H) + AXIS_H;
  }

  private draw(): void {
    const canvas = this.canvas;
    const dpr = window.devicePixelRatio || 1;
    const cssW = canvas.clientWidth || 800;
    const cssH = this.neededHeight;
    if (canvas.style.height !== `${cssH}px`) canvas.style.height = `${cssH}px`;
    if (canvas.width !== Math.round(cssW * dpr) || canvas.height !== Math.round(cssH * dpr)) {
      canvas.width = Math.round(cssW * dpr);
      canvas.height = Math.round(cssH * dpr);
      this.hatch = null;
    }
    const ctx = this.ctx;
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    ctx.clearRect(0, 0, cssW, cssH);
    if (!this.layers.length) return;
    const width = cssW - 2 * PAD_X;
    const scale = buildScale(this.breaks, this.view.start, this.view.end, width, this.mode);
    this.scale = scale;
    ctx.save();
    ctx.translate(PAD_X, 0);
    ctx.font = '11px system-ui, sans-serif';
    ctx.textBaseline = 'middle';
    this.drawLanes(scale);
    this.layers.forEach((layer, i) => {
      this.drawBar(scale, layer, i);
    });
    this.drawAxis(scale);
    this.drawOverlays(scale);
    ctx.restore();
  }

  private hatchPattern(): CanvasPattern | string {
    if (this.hatch) return this.hatch;
    const c = document.createElement('canvas');
    c.width = 8;
    c.height = 8;
    const g = c.getContext('2d')!;
    g.fillStyle = '#f4f5f7';
    g.fillRect(0, 0, 8, 8);
    g.strokeStyle = '#d4d7dd';
    g.lineWidth = 1.5;
    g.beginPath();
    g.moveTo(0, 8);
    g.lineTo(8, 0);
    g.stroke();
    this.hatch = this.ctx.createPattern(c, 'repeat');
    return this.hatch ?? '#f4f5f7';
  }

  private drawLanes(scale: AddressScale): void {
    if (!this.laneCount) return;
    const ctx = this.ctx;
    ctx.fillStyle = '#4b5563';
    ctx.textAlign = 'left';
    ctx.fillText(
      `The tree's top-level regions in ${this.layers[0]!.space.root.name ?? '(null)'} — where they overlap, the higher priority wins:`,
      0,
      7,
    );
    // Where the next box of each lane begins, so that a label too long for its box can be written
    // whole in the free lane space to the right of it instead of being cut.
    const visible = this.lanes.filter(
      ({ node }) => node.start + node.size > scale.start && node.start < scale.end,
    );
    const nextX = new Map<(typeof visible)[number], number>();
    const byLane = new Map<number, (typeof visible)[number][]>();
    for (const e of visible) byLane.set(e.lane, [...(byLane.get(e.lane) ?? []), e]);
    const barRight = this.canvas.clientWidth - 2 * PAD_X;
    for (const list of byLane.values()) {
      list.sort((a, b) => (a.node.start < b.node.start ? -1 : 1));
      list.forEach((e, i) => {
        nextX.set(e, i + 1 < list.length ? scale.x(list[i + 1]!.node.start) : barRight);
      });
    }
    const drawn: string[] = [];
    for (const entry of visible) {
      const { node, lane } = entry;
      const x0 = scale.x(node.start);
      const x1 = Math.max(x0 + 1, scale.x(node.start + node.size));
      const y = 14 + lane * LANE_H;
      const st = kindStyle(node.kind);
      ctx.fillStyle = st.fill;
      ctx.globalAlpha = 0.55;
      ctx.fillRect(x0, y, x1 - x0, LANE_H - 3);
      ctx.globalAlpha = 1;
      ctx.strokeStyle = st.stroke;
      ctx.lineWidth = 1;
      ctx.strokeRect(x0 + 0.5, y + 0.5, x1 - x0 - 1, LANE_H - 4);
      const label = `${node.region.name ?? '(null)'}${node.region.alias ? ` → ${node.region.alias.name}` : ''}${node.region.priority ? ` (prio ${node.region.priority})` : ''}`;
      ctx.font = '11px system-ui, sans-serif';
      const width = ctx.measureText(label).width;
      if (width <= x1 - x0 - 6) {
        this.fitText(label, x0, x1, y + (LANE_H - 3) / 2, '#1f2937');
      } else if (x1 + 4 + width <= nextX.get(entry)! - 2) {
        ctx.fillStyle = '#1f2937';
        ctx.textAlign = 'left';
        ctx.fillText(label, x1 + 4, y + (LANE_H - 3) / 2);
      } else {
        // No room anywhere: a cut label ("pa…") says nothing; the tooltip and the tree name it.
        continue;
      }
      drawn.push(label);
    }
    // The labels written on the lanes, for tests and for tools reading the page.
    this.canvas.dataset.laneLabels = drawn.join('\n');
  }

  private drawBar(scale: AddressScale, layer: MapLayer, index: number): void {
    const ctx = this.ctx;
    const top = this.barTop(index);
    ctx.fillStyle = '#374151';
    ctx.textAlign = 'left';
    ctx.font = '600 11px system-ui, sans-serif';
    ctx.fillText(layer.caption, 0, top - CAPTION_H / 2);
    ctx.font = '11px system-ui, sans-serif';
    const pieces = layer.space.pieces;
    let i = firstPiece(pieces, scale.start);
    let lastX = -1;
    for (; i < pieces.length; i++) {
      const p = pieces[i]!;
      if (p.start >= scale.end) break;
      const x0 = scale.x(p.start);
      let x1 = scale.x(p.end);
      // Sub-pixel ranges still get one pixel, so nothing mapped is ever invisible.
      if (x1 - x0 < 1) {
        if (Math.floor(x0) === lastX) continue;
        x1 = x0 + 1;
      }
      lastX = Math.floor(x0);
      const st = kindStyle(p.kind);
      ctx.fillStyle = p.kind === 'hole' ? this.hatchPattern() : st.fill;
      if (p.background) ctx.globalAlpha = 0.35;
      ctx.fillRect(x0, top, x1 - x0, BAR_H);
      ctx.globalAlpha = 1;
      if (x1 - x0 > 3) {
        ctx.strokeStyle = p.kind === 'hole' ? '#c4c8cf' : st.stroke;
        ctx.lineWidth = 1;
        ctx.strokeRect(x0 + 0.5, top + 0.5, x1 - x0 - 1, BAR_H - 1);
      }
      const color = p.kind === 'hole' || p.background ? '#6b7280' : '#111827';
      const bold = p.kind !== 'hole' && !p.background;
      if (this.fitText(p.kind === 'hole' ? 'hole' : p.label, x0, x1, top + 15, color, bold)) {
        this.fitText(formatSize(p.end - p.start), x0, x1, top + 31, '#374151');
      }
    }
    ctx.strokeStyle = '#6b7280';
    ctx.lineWidth = 1;
    ctx.strokeRect(0.5, top + 0.5, scale.width - 1, BAR_H - 1);
  }

  private drawAxis(scale: AddressScale): void {
    const ctx = this.ctx;
    const top = this.barTop(this.layers.length) - CAPTION_H + 2;
    const ts = ticks(scale, this.breaks, 96);
    ctx.strokeStyle = '#9ca3af';
    ctx.fillStyle = '#374151';
    ctx.font = '11px ui-monospace, SFMono-Regular, Menlo, monospace';
    for (const t of ts) {
      ctx.beginPath();
      ctx.moveTo(t.x + 0.5, top - 2);
      ctx.lineTo(t.x + 0.5, top + 5);
      ctx.stroke();
      const text = formatHex(t.addr);
      const w = ctx.measureText(text).width;
      ctx.textAlign = 'left';
      const x = Math.min(Math.max(0, t.x - w / 2), scale.width - w);
      ctx.fillText(text, x, top + 13);
    }
    const endText = `${formatHex(scale.end - 1n)}`;
    ctx.textAlign = 'right';
    ctx.fillStyle = '#6b7280';
    ctx.fillText(`… ${endText}`, scale.width, top + 27);
    ctx.textAlign = 'left';
    ctx.fillText(
      this.mode === 'piecewise' ? 'piecewise scale: widths grow with log(size)' : 'linear scale',
      0,
      top + 27,
    );
    ctx.font = '11px system-ui, sans-serif';
  }

  private drawOverlays(scale: AddressScale): void {
    const ctx = this.ctx;
    const top = this.lanesHeight;
    const bottom = this.barTop(this.layers.length - 1) + BAR_H;
    for (const c of this.changes) {
      const f = c.after ?? c.before!;
      const layer = c.after ? this.layers.length - 1 : 0;
      if (f.start + f.size <= scale.start || f.start >= scale.end) continue;
      const x0 = scale.x(f.start);
      const x1 = Math.max(x0 + 2, scale.x(f.start + f.size));
      const y = this.barTop(layer);
      ctx.strokeStyle = c.kind === 'appeared' ? '#059669' : c.kind === 'vanished' ? '#dc2626' : '#d97706';
      ctx.lineWidth = 3;
      ctx.strokeRect(x0 + 1.5, y + 1.5, x1 - x0 - 3, BAR_H - 3);
    }
    if (this.dirty.length && this.layers.length) {
      // A strip under the first bar; at least 2 px wide so that one 4 KiB page in GiBs shows.
      const y = this.barTop(0) + BAR_H - 6;
      ctx.fillStyle = '#dc2626';
      for (const d of this.dirty) {
        if (d.end <= scale.start || d.start >= scale.end) continue;
        const x0 = scale.x(d.start > scale.start ? d.start : scale.start);
        const x1 = scale.x(d.end < scale.end ? d.end : scale.end);
        ctx.fillRect(x0, y, Math.max(2, x1 - x0), 5);
      }
    }
    const h = this.highlight;
    if (h && h.end > scale.start && h.start < scale.end) {
      const x0 = scale.x(h.start);
      const x1 = Math.max(x0 + 2, scale.x(h.end));
      ctx.strokeStyle = '#111827';
      ctx.lineWidth = 2;
      ctx.setLineDash([5, 3]);
      ctx.strokeRect(x0 + 1, top + 1, x1 - x0 - 2, bottom - top - 2);
      ctx.setLineDash([]);
    }
    if (this.marker !== null && this.marker >= scale.start && this.marker < scale.end) {
      const x = Math.round(scale.x(this.marker)) + 0.5;
      ctx.strokeStyle = '#dc2626';
      ctx.lineWidth = 2;
      ctx.beginPath();
      ctx.moveTo(x, top);
      ctx.lineTo(x, bottom + 4);
      ctx.stroke();
      ctx.fillStyle = '#dc2626';
      ctx.beginPath();
      ctx.moveTo(x - 5, bottom + 9);
      ctx.lineTo(x + 5, bottom + 9);
      ctx.lineTo(x, bottom + 3);
      ctx.fill();
    }
    if (this.hoverX >= 0) {
      ctx.strokeStyle = 'rgba(17,24,39,0.5)';
      ctx.lineWidth = 1;
      ctx.beginPath();
      ctx.moveTo(this.hoverX + 0.5, top);
      ctx.lineTo(this.hoverX + 0.5, bottom);
      ctx.stroke();
    }
  }

  /** Draws `text` centred in `[x0, x1)` if it fits (shortened with … if that helps); true if drawn. */
  private fitText(text: string, x0: number, x1: number, y: number, color: string, bold = false): boolean {
    const ctx = this.ctx;
    const room = x1 - x0 - 6;
    if (room < 14) return false;
    ctx.font = bold ? '600 11px system-ui, sans-serif' : '11px system-ui, sans-serif';
    let t = text;
    if (ctx.measureText(t).width > room) {
      while (t.length > 2 && ctx.measureText(`${t}…`).width > room) t = t.slice(0, -1);
      if (t.length <= 2) return false;
      t = `${t}…`;
    }
    ctx.fillStyle = color;
    ctx.textAlign = 'center';
    ctx.fillText(t, (x0 + x1) / 2, y);
    ctx.textAlign = 'left';
    ctx.font = '11px system-ui, sans-serif';
    return true;
  }

  private xOf(e: MouseEvent): number {
    return e.offsetX - PAD_X;
  }

  private onWheel(e: WheelEvent): void {
    if (!this.scale) return;
    e.preventDefault();
    const factor = e.deltaY < 0 ? 0.6 : 1 / 0.6;
    this.setView(zoomAt(this.scale, this.xOf(e), factor, this.limit));
  }

  private onMouseUp(e: MouseEvent): void {
    const d = this.drag;
    this.drag = null;
    if (!d || d.moved || e.target !== this.canvas || !this.scale) return;
    this.events.pick(this.scale.addressAt(this.xOf(e)));
  }

  private onDoubleClick(e: MouseEvent): void {
    if (!this.scale) return;
    const p = this.pieceUnder(this.xOf(e), e.offsetY);
    if (p) this.focus(p.start, p.end);
  }

  private pieceUnder(x: number, y: number): MapPiece | null {
    if (!this.scale) return null;
    const addr = this.scale.addressAt(x);
    const index = Math.max(
      0,
      Math.min(this.layers.length - 1, Math.floor((y - this.lanesHeight) / (BAR_H + CAPTION_H))),
    );
    const layer = this.layers[index];
    return layer ? pieceAt(layer.space, addr) : null;
  }

  private onMove(e: MouseEvent): void {
    const d = this.drag;
    if (d && e.buttons & 1) {
      const dx = e.offsetX - d.x;
      if (Math.abs(dx) > 3 || d.moved) {
        d.moved = true;
        this.setView(panBy(d.scale, dx, this.limit));
        return;
      }
    }
    const x = this.xOf(e);
    this.hoverX = x;
    this.draw();
    const scale = this.scale;
    if (!scale || x < 0 || x > scale.width) {
      this.tooltip.hidden = true;
      return;
    }
    const addr = scale.addressAt(x);
    const p = this.pieceUnder(x, e.offsetY);
    const lines: string[] = [`<b>${formatHex(addr)}</b>`];
    if (p) {
      if (p.range) {
        const off = p.range.offsetInRegion + (addr - p.range.start);
        lines.push(
          `${escapeHtml(p.label)} <span class="tt-kind">${p.kind}</span>${p.background ? ' (gap between its subregions)' : ''}`,
          `${formatHex(p.start)}–${formatHex(p.end - 1n)} (${formatSize(p.end - p.start)})`,
          `offset in region: ${formatHex(off)}`,
        );
        const explain = explainName(p.label);
        if (explain) lines.push(`<i>${escapeHtml(explain)}</i>`);
      } else {
        lines.push(
          'hole: nothing answers here',
          `${formatHex(p.start)}–${formatHex(p.end - 1n)} (${formatSize(p.end - p.start)})`,
        );
      }
    }
    lines.push(
      '<span class="tt-hint">click: look up · wheel: zoom · drag: pan · double-click: zoom to range</span>',
    );
    this.tooltip.innerHTML = lines.join('<br>');
    this.tooltip.hidden = false;
    const box = this.canvas.getBoundingClientRect();
    const tw = this.tooltip.offsetWidth;
    const left = Math.min(e.clientX + 14, box.right - tw - 4);
    this.tooltip.style.left = `${left + window.scrollX}px`;
    this.tooltip.style.top = `${e.clientY + 16 + window.scrollY}px`;
  }
}

/** Index of the first piece that ends after `addr`. */
function firstPiece(pieces: readonly MapPiece[], addr: bigint): number {
  let lo = 0;
  let hi = pieces.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (pieces[mid]!.end <= addr) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** Escapes text for innerHTML. */
export function escapeHtml(s: string): string {
  return s.replace(/[&<>"]/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' })[c]!);
}
