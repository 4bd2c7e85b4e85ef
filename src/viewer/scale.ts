/**
 * @module viewer/scale
 * Layout maths of the web viewer, free of the DOM so that it can be unit-tested: how guest addresses
 * map to pixels on the flat-map bar (a linear scale, or a piecewise scale where every range and hole
 * gets a width that grows with the logarithm of its size), zooming and panning that viewport, axis
 * ticks, the colour of each region type, and the readable hex / size / address text the page shows.
 *
 * Addresses are exact `bigint`s. A viewport is clipped to the ranges it shows before anything is
 * converted to floating point, so a view zoomed down to a handful of bytes near 2^64 is still exact.
 */

/** 2^64: the size of a whole 64-bit address space. */
export const SPACE_2_64 = 1n << 64n;

/**
 * What a piece of the map is, for colouring. The first five are the types `info mtree` prints for
 * flat ranges; the others are kinds of tree nodes, and `hole` is an address nothing answers.
 */
export type PaintKind = 'ram' | 'rom' | 'romd' | 'ramd' | 'i/o' | 'iommu' | 'container' | 'alias' | 'hole';

/** Colours of one kind: fill for the bar and badges, and a darker stroke / text colour. */
export interface KindStyle {
  readonly fill: string;
  readonly stroke: string;
  /** What a newcomer should read in the legend. */
  readonly label: string;
}

const STYLES: Record<PaintKind, KindStyle> = {
  ram: { fill: '#7ccf8a', stroke: '#2f7d3c', label: 'RAM (guest memory)' },
  rom: { fill: '#8fb4f0', stroke: '#2f5ea8', label: 'ROM (read-only memory)' },
  romd: { fill: '#7fd0d4', stroke: '#23787c', label: 'ROM device (flash)' },
  ramd: { fill: '#c9d97a', stroke: '#6b7a1f', label: 'RAM device (host BAR)' },
  'i/o': { fill: '#f5b86b', stroke: '#a8621b', label: 'I/O (device registers)' },
  iommu: { fill: '#e58fb5', stroke: '#a23b69', label: 'IOMMU (translated)' },
  container: { fill: '#d5d9e0', stroke: '#6b7280', label: 'container' },
  alias: { fill: '#c7b3f0', stroke: '#6a4bb5', label: 'alias (window onto another region)' },
  hole: { fill: '#f3f4f6', stroke: '#9ca3af', label: 'hole (unassigned)' },
};

/** The colours of `kind`. Unknown text (e.g. a future type) is drawn as I/O. */
export function kindStyle(kind: string): KindStyle {
  return STYLES[kind as PaintKind] ?? STYLES['i/o'];
}

/** The kinds the flat-map legend lists, in legend order. */
export const LEGEND_KINDS: readonly PaintKind[] = ['ram', 'rom', 'romd', 'ramd', 'i/o', 'iommu', 'hole'];

// -------------------------------------------------------------------------------------------------
// Text

/**
 * `0x`-prefixed lowercase hex (`0xfee00000`), without separators: the page's addresses are meant to
 * be copied into the address box, `memtree lookup` or QEMU's monitor, and QEMU reads no `_`. `pad`
 * zero-fills to that many digits.
 */
export function formatHex(v: bigint, pad = 0): string {
  return `0x${v.toString(16).padStart(pad, '0')}`;
}

const UNITS = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB', 'EiB'] as const;

/**
 * A size as people say it: `640 KiB`, `16 GiB`, `16 EiB` for 2^64; sizes that are not a whole number
 * of their unit get one decimal (`1.5 GiB`) or, below 1 KiB, the exact byte count.
 */
export function formatSize(bytes: bigint): string {
  if (bytes < 1024n) return `${bytes} B`;
  let unit = 0;
  let scaled = bytes;
  while (unit < UNITS.length - 1 && scaled >= 1024n) {
    scaled /= 1024n;
    unit++;
  }
  const div = 1024n ** BigInt(unit);
  if (bytes % div === 0n) return `${bytes / div} ${UNITS[unit]}`;
  const tenths = Number((bytes * 10n) / div) / 10;
  return `${tenths.toFixed(1)} ${UNITS[unit]}`;
}

// The address syntax is shared with the command line: one parser, in src/mtree.
export { AddressSyntaxError, parseAddress } from '../mtree/address-text.js';

// -------------------------------------------------------------------------------------------------
// Scales

/** How addresses spread over the bar. */
export type ScaleMode = 'linear' | 'piecewise';

/** One linear piece of a scale: addresses `[start, end)` drawn over pixels `[x0, x1)`. */
export interface ScaleSegment {
  readonly start: bigint;
  readonly end: bigint;
  readonly x0: number;
  readonly x1: number;
}

/**
 * Width weight of a piece of `size` bytes on the piecewise scale. Logarithmic, so that a 1-byte I/O
 * port, a 4 KiB device and a 2^64 hole are all visible at once, while bigger still looks bigger
 * (a 4 GiB range is twice as wide as a 64 KiB one).
 */
export function pieceWeight(size: bigint): number {
  const bits = size <= 1n ? 0 : bitLength(size - 1n);
  return 4 + bits;
}

/** Number of bits needed to write `v` (0 for 0). */
export function bitLength(v: bigint): number {
  return v <= 0n ? 0 : v.toString(2).length;
}

/**
 * A map from the addresses `[start, end)` of a viewport to the pixels `[0, width)`. Built by
 * {@link buildScale}; immutable.
 */
export class AddressScale {
  constructor(
    /** First address shown. */
    readonly start: bigint,
    /** First address past the viewport (up to 2^64). */
    readonly end: bigint,
    /** Width of the bar in pixels. */
    readonly width: number,
    readonly mode: ScaleMode,
    /** Pieces covering the viewport, in address order, each linear. */
    readonly segments: readonly ScaleSegment[],
  ) {}

  /** Bytes in the viewport. */
  get span(): bigint {
    return this.end - this.start;
  }

  /** Index of the segment containing `addr` (clamped to the viewport). */
  private segmentIndex(addr: bigint): number {
    const segs = this.segments;
    let lo = 0;
    let hi = segs.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >>> 1;
      if (segs[mid]!.start <= addr) lo = mid;
      else hi = mid - 1;
    }
    return lo;
  }

  /** Pixel position of `addr`; addresses outside the viewport clamp to its edges. */
  x(addr: bigint): number {
    if (addr <= this.start) return 0;
    if (addr >= this.end) return this.width;
    const s = this.segments[this.segmentIndex(addr)]!;
    const frac = Number(addr - s.start) / Number(s.end - s.start);
    return s.x0 + (s.x1 - s.x0) * frac;
  }

  /** The address under pixel `x` (the first byte the pixel covers), clamped to the viewport. */
  addressAt(x: number): bigint {
    return this.locate(x, false);
  }

  /** The byte boundary nearest to pixel `x` (for viewport edges), in `[start, end]`. */
  boundaryAt(x: number): bigint {
    return this.locate(x, true);
  }

  private locate(x: number, boundary: boolean): bigint {
    const segs = this.segments;
    if (x <= 0) return this.start;
    if (x >= this.width) return boundary ? this.end : this.end - 1n;
    let lo = 0;
    let hi = segs.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >>> 1;
      if (segs[mid]!.x0 <= x) lo = mid;
      else hi = mid - 1;
    }
    const s = segs[lo]!;
    const size = s.end - s.start;
    const frac = s.x1 > s.x0 ? (x - s.x0) / (s.x1 - s.x0) : 0;
    let off = BigInt(boundary ? Math.round(frac * Number(size)) : Math.floor(frac * Number(size)));
    if (off >= size && !boundary) off = size - 1n;
    if (off < 0n) off = 0n;
    return s.start + off;
  }
}

/**
 * Builds the scale of the viewport `[start, end)` over `width` pixels. `breaks` are the addresses
 * where something begins or ends (flat-range boundaries); on the piecewise scale each piece between
 * two breaks gets a width from {@link pieceWeight}, on the linear scale they are ignored.
 */
export function buildScale(
  breaks: readonly bigint[],
  start: bigint,
  end: bigint,
  width: number,
  mode: ScaleMode,
): AddressScale {
  if (end <= start) throw new RangeError(`empty viewport [${formatHex(start)}, ${formatHex(end)})`);
  if (mode === 'linear') {
    return new AddressScale(start, end, width, mode, [{ start, end, x0: 0, x1: width }]);
  }
  const cuts = [start];
  for (const b of [...new Set(breaks)].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0))) {
    if (b > start && b < end) cuts.push(b);
  }
  cuts.push(end);
  const weights: number[] = [];
  let total = 0;
  for (let i = 0; i + 1 < cuts.length; i++) {
    const w = pieceWeight(cuts[i + 1]! - cuts[i]!);
    weights.push(w);
    total += w;
  }
  const segs: ScaleSegment[] = [];
  let x = 0;
  for (let i = 0; i < weights.length; i++) {
    const x1 = i === weights.length - 1 ? width : x + (width * weights[i]!) / total;
    segs.push({ start: cuts[i]!, end: cuts[i + 1]!, x0: x, x1 });
    x = x1;
  }
  return new AddressScale(start, end, width, mode, segs);
}

/** Smallest viewport, in bytes: a few bytes still leave room for one label per byte. */
export const MIN_SPAN = 8n;

/** A viewport `[start, end)`. */
export interface Viewport {
  readonly start: bigint;
  readonly end: bigint;
}

/** Clamps a viewport into `[0, limit)` without changing its span (unless the span exceeds it). */
export function clampViewport(v: Viewport, limit: bigint): Viewport {
  let span = v.end - v.start;
  if (span < MIN_SPAN) span = MIN_SPAN;
  if (span >= limit) return { start: 0n, end: limit };
  let start = v.start < 0n ? 0n : v.start;
  if (start + span > limit) start = limit - span;
  return { start, end: start + span };
}

/**
 * Zooms around pixel `x`: the address under `x` stays under `x`. `factor` < 1 zooms in (0.5 shows
 * half as many pixels' worth of the map), > 1 zooms out. Works in pixel space, so on the piecewise
 * scale zooming in on a tiny device spends the pixels of the neighbouring holes on it.
 */
export function zoomAt(scale: AddressScale, x: number, factor: number, limit: bigint): Viewport {
  if (factor >= 1) {
    // Zooming out may need addresses outside the current viewport: scale the span linearly.
    const anchor = scale.addressAt(x);
    const span = scale.span;
    const newSpan = bigMulFloat(span, factor);
    const leftFrac = scale.width > 0 ? x / scale.width : 0.5;
    const start = anchor - bigMulFloat(newSpan, leftFrac);
    return clampViewport({ start, end: start + (newSpan > span ? newSpan : span + 1n) }, limit);
  }
  const left = x - x * factor;
  const right = x + (scale.width - x) * factor;
  let start = scale.boundaryAt(left);
  let end = scale.boundaryAt(right);
  if (end - start < MIN_SPAN) {
    const mid = scale.addressAt(x);
    start = mid - MIN_SPAN / 2n;
    end = start + MIN_SPAN;
  }
  return clampViewport({ start, end }, limit);
}

/** Moves the viewport by `dx` pixels (positive: towards lower addresses, as when dragging right). */
export function panBy(scale: AddressScale, dx: number, limit: bigint): Viewport {
  if (dx === 0) return { start: scale.start, end: scale.end };
  const span = scale.span;
  // Measure the shift where the drag starts, so each piece moves at its own pixel density.
  const from = scale.addressAt(scale.width / 2);
  const to = scale.addressAt(scale.width / 2 - dx);
  let delta = to - from;
  if (delta === 0n) delta = dx > 0 ? -1n : 1n;
  return clampViewport({ start: scale.start + delta, end: scale.start + delta + span }, limit);
}

/** The viewport that shows `[start, end)` with a margin of `margin` (a fraction of the span) each side. */
export function focusViewport(start: bigint, end: bigint, limit: bigint, margin = 0.25): Viewport {
  const span = end > start ? end - start : 1n;
  const pad = bigMulFloat(span, margin);
  return clampViewport({ start: start - pad, end: end + pad }, limit);
}

/** `v * f` for a non-negative float `f`, exact enough for viewport arithmetic. */
export function bigMulFloat(v: bigint, f: number): bigint {
  if (f === 0 || v === 0n) return 0n;
  const SCALE = 1n << 32n;
  return (v * BigInt(Math.round(f * 2 ** 32))) / SCALE;
}

/** An axis tick: a pixel position and the address it labels. */
export interface Tick {
  readonly x: number;
  readonly addr: bigint;
}

/**
 * Axis ticks that do not collide: on the linear scale, round addresses (multiples of a power of 16,
 * or of 2 once that gets too coarse); on the piecewise scale, the breaks, keeping each one only if it
 * is at least `minGap` pixels from the last kept tick.
 */
export function ticks(scale: AddressScale, breaks: readonly bigint[], minGap: number): Tick[] {
  const out: Tick[] = [];
  const push = (addr: bigint): void => {
    const x = scale.x(addr);
    const last = out[out.length - 1];
    if (last && x - last.x < minGap) return;
    if (scale.width - x < minGap / 2 && addr !== scale.end) return;
    out.push({ x, addr });
  };
  if (scale.mode === 'piecewise') {
    push(scale.start);
    const sorted = [...breaks].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
    for (const b of sorted) if (b > scale.start && b < scale.end) push(b);
    return out;
  }
  const maxTicks = Math.max(1, Math.floor(scale.width / minGap));
  const step = niceStep(scale.span, maxTicks);
  let a = ((scale.start + step - 1n) / step) * step;
  for (; a < scale.end; a += step) push(a);
  return out;
}

/** The smallest power of two >= span / maxTicks (at least 1). */
export function niceStep(span: bigint, maxTicks: number): bigint {
  const want = span / BigInt(Math.max(1, maxTicks));
  let step = 1n;
  while (step < want) step <<= 1n;
  return step;
}
