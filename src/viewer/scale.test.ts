/**
 * @module viewer/scale.test
 * The viewer's layout maths: address text, the linear and piecewise scales, zooming, panning,
 * ticks and the colour of each region type.
 */

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  AddressSyntaxError,
  buildScale,
  clampViewport,
  focusViewport,
  formatHex,
  formatSize,
  kindStyle,
  LEGEND_KINDS,
  MIN_SPAN,
  niceStep,
  panBy,
  parseAddress,
  pieceWeight,
  SPACE_2_64,
  ticks,
  zoomAt,
} from './scale.js';

const GiB = 1n << 30n;

describe('address text', () => {
  it('prints hex that can be copied anywhere: no digit separators', () => {
    assert.equal(formatHex(0n), '0x0');
    assert.equal(formatHex(0xfee00000n), '0xfee00000');
    assert.equal(formatHex(0x100000000n), '0x100000000');
    assert.equal(formatHex(SPACE_2_64 - 1n), '0xffffffffffffffff');
    assert.equal(formatHex(0xc0000n, 8), '0x000c0000');
  });

  it('says sizes in binary units', () => {
    assert.equal(formatSize(1n), '1 B');
    assert.equal(formatSize(1023n), '1023 B');
    assert.equal(formatSize(640n * 1024n), '640 KiB');
    assert.equal(formatSize(16n * GiB), '16 GiB');
    assert.equal(formatSize(SPACE_2_64), '16 EiB');
    // 3 GiB + 512 MiB is 3.5 GiB.
    assert.equal(formatSize(3n * GiB + 512n * (1n << 20n)), '3.5 GiB');
  });

  it('reads the address forms people type', () => {
    assert.equal(parseAddress('0xfee00000'), 0xfee00000n);
    assert.equal(parseAddress(' 0xFEE0_0000 '), 0xfee00000n);
    assert.equal(parseAddress('4G'), 4n * GiB);
    assert.equal(parseAddress('640K'), 640n * 1024n);
    assert.equal(parseAddress('1048576'), 1048576n);
    // Bare hex as copied from a dump (has a letter, so it cannot be decimal).
    assert.equal(parseAddress('00000000fee00000'), 0xfee00000n);
    assert.equal(parseAddress('fee00000'), 0xfee00000n);
    // QEMU's zero-padded 16 digits without a letter are hex too: 0x100000, not 100000 decimal.
    assert.equal(parseAddress('0000000000100000'), 0x100000n);
    assert.equal(parseAddress('0x1_0000_0000'), 1n << 32n);
    assert.equal(parseAddress('4GiB'), 4n * GiB);
    assert.equal(parseAddress('0'), 0n);
    assert.equal(parseAddress('0xffffffffffffffff'), SPACE_2_64 - 1n);
  });

  it('refuses what is not a 64-bit address', () => {
    assert.throws(() => parseAddress('hello'), AddressSyntaxError);
    assert.throws(() => parseAddress('-1'), AddressSyntaxError);
    assert.throws(() => parseAddress('0x10000000000000000'), /beyond the 64-bit/);
    assert.throws(() => parseAddress('16E'), /beyond the 64-bit/);
    assert.throws(() => parseAddress(''), AddressSyntaxError);
    assert.throws(() => parseAddress('0x'), AddressSyntaxError);
    assert.throws(() => parseAddress('1_'), AddressSyntaxError);
    // The error is memtree's typed one, so the CLI prints it as one line.
    assert.throws(() => parseAddress('zz'), { code: 'ERR_INVALID_ARGUMENT' });
  });
});

describe('scales', () => {
  it('linear: proportional, and inverse at pixel precision', () => {
    const s = buildScale([], 0n, 0x10000n, 1000, 'linear');
    assert.equal(s.x(0n), 0);
    assert.equal(s.x(0x8000n), 500);
    assert.equal(s.x(0x10000n), 1000);
    assert.equal(s.addressAt(500), 0x8000n);
    // Outside the viewport clamps to the edges.
    assert.equal(s.addressAt(-5), 0n);
    assert.equal(s.addressAt(5000), 0xffffn);
  });

  it('piecewise: every piece visible, bigger pieces wider, monotonic', () => {
    // A PC-like map over the whole 2^64 space: 640 KiB RAM, a 1-byte port, a 4 GiB hole, the rest.
    const breaks = [0xa0000n, 0xa0001n, 0x100000000n];
    const s = buildScale(breaks, 0n, SPACE_2_64, 1000, 'piecewise');
    assert.equal(s.segments.length, 4);
    const widths = s.segments.map((g) => g.x1 - g.x0);
    for (const w of widths) assert.ok(w > 10, `every piece gets room (${w}px)`);
    // 1 byte < 640 KiB < 4 GiB < 2^64 - 4 GiB.
    assert.ok(widths[1]! < widths[0]! && widths[0]! < widths[2]! && widths[2]! < widths[3]!);
    assert.equal(s.segments[3]!.x1, 1000);
    let last = -1;
    for (const a of [0n, 0x9ffffn, 0xa0000n, 0xa0001n, 0xffffffffn, 0x100000000n, SPACE_2_64 - 1n]) {
      const x = s.x(a);
      assert.ok(x > last || (a === 0n && x === 0), `x(${a}) = ${x} after ${last}`);
      last = x;
    }
    // The 1-byte piece maps back to itself from anywhere inside its pixels.
    const seg = s.segments[1]!;
    assert.equal(s.addressAt((seg.x0 + seg.x1) / 2), 0xa0000n);
  });

  it('a piece weight grows with log2 of its size', () => {
    assert.equal(pieceWeight(1n), 4);
    assert.equal(pieceWeight(0x10000n) - pieceWeight(0x100n), 8);
    assert.equal(pieceWeight(SPACE_2_64), 4 + 64);
  });

  it('stays exact near 2^64 when zoomed to a few bytes', () => {
    const top = SPACE_2_64 - 16n;
    const s = buildScale([SPACE_2_64 - 8n], top, SPACE_2_64, 800, 'piecewise');
    const seen = new Set<bigint>();
    for (let x = 0; x < 800; x += 7) seen.add(s.addressAt(x));
    assert.equal(seen.size, 16, 'every one of the 16 bytes is reachable');
    for (const a of seen) assert.ok(a >= top && a < SPACE_2_64);
  });

  it('refuses an empty viewport', () => {
    assert.throws(() => buildScale([], 5n, 5n, 100, 'linear'), RangeError);
  });
});

describe('zoom and pan', () => {
  const limit = SPACE_2_64;

  it('zooming in keeps the address under the pointer', () => {
    const s = buildScale([], 0n, 0x10000n, 1000, 'linear');
    const v = zoomAt(s, 250, 0.5, 0x10000n);
    // Half the span, with 0x4000 (under pixel 250) still a quarter of the way in.
    assert.equal(v.end - v.start, 0x8000n);
    assert.equal(v.start, 0x2000n);
  });

  it('zooms from the whole 64-bit space down to single bytes and back out', () => {
    let s = buildScale([0x1000n], 0n, limit, 1000, 'piecewise');
    for (let i = 0; i < 200; i++) {
      const v = zoomAt(s, 300, 0.5, limit);
      s = buildScale([0x1000n], v.start, v.end, 1000, 'piecewise');
    }
    assert.equal(s.span, MIN_SPAN, 'stops at the minimum span');
    for (let i = 0; i < 200; i++) {
      const v = zoomAt(s, 300, 2, limit);
      s = buildScale([0x1000n], v.start, v.end, 1000, 'piecewise');
    }
    assert.deepEqual([s.start, s.end], [0n, limit]);
  });

  it('clamps a viewport into the address space', () => {
    assert.deepEqual(clampViewport({ start: -10n, end: 90n }, 1000n), { start: 0n, end: 100n });
    assert.deepEqual(clampViewport({ start: 950n, end: 1050n }, 1000n), { start: 900n, end: 1000n });
    assert.deepEqual(clampViewport({ start: 0n, end: 5000n }, 1000n), { start: 0n, end: 1000n });
  });

  it('dragging right shows lower addresses', () => {
    const s = buildScale([], 0x1000n, 0x2000n, 1000, 'linear');
    const v = panBy(s, 100, 0x10000n);
    assert.ok(v.start < 0x1000n);
    assert.equal(v.end - v.start, 0x1000n);
  });

  it('focus puts a margin around a range', () => {
    const v = focusViewport(0x1000n, 0x2000n, 0x10000n, 0.25);
    assert.deepEqual(v, { start: 0xc00n, end: 0x2400n });
  });
});

describe('ticks', () => {
  it('linear ticks are multiples of a power of two and do not crowd', () => {
    const s = buildScale([], 0n, 0x10000n, 1000, 'linear');
    const t = ticks(s, [], 100);
    assert.ok(t.length >= 5 && t.length <= 10);
    const step = t[1]!.addr - t[0]!.addr;
    assert.equal(step & (step - 1n), 0n);
    for (let i = 1; i < t.length; i++) assert.ok(t[i]!.x - t[i - 1]!.x >= 100);
  });

  it('piecewise ticks sit on breaks', () => {
    const breaks = [0x1000n, 0x2000n, 0x100000000n];
    const s = buildScale(breaks, 0n, SPACE_2_64, 1000, 'piecewise');
    const t = ticks(s, breaks, 50);
    assert.deepEqual(
      t.map((x) => x.addr),
      [0n, 0x1000n, 0x2000n, 0x100000000n],
    );
  });

  it('niceStep is the smallest power of two that keeps under the tick budget', () => {
    assert.equal(niceStep(0x10000n, 16), 0x1000n);
    assert.equal(niceStep(0x10001n, 16), 0x1000n);
    assert.equal(niceStep(10n, 100), 1n);
  });
});

describe('colours', () => {
  it('each printed type has its own colour, holes are pale, unknown text is drawn as I/O', () => {
    const fills = new Set(LEGEND_KINDS.map((k) => kindStyle(k).fill));
    assert.equal(fills.size, LEGEND_KINDS.length);
    assert.equal(kindStyle('ram').fill, '#7ccf8a');
    assert.equal(kindStyle('hole').fill, '#f3f4f6');
    assert.deepEqual(kindStyle('something-new'), kindStyle('i/o'));
    for (const k of LEGEND_KINDS) assert.match(kindStyle(k).label, /\w/);
  });
});
