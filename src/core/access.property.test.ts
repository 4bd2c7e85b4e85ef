/**
 * @module core/access.property.test
 * Property tests of guest accesses against a reference byte model: one byte array per
 * RAM/ROM region and the per-address mapping of the independent painter in `test-support/ref-model.ts`.
 *
 * Random RAM/ROM/container/alias trees (no I/O) are laid out in units of 512 bytes, so that whole
 * 4 KiB pages are often covered by one RAM range and the address space's software TLB gets filled;
 * topology changes between accesses then check that it never serves a stale mapping. Typed loads and
 * stores, buffer reads and writes across range boundaries, and map/unmap are compared with what the
 * reference derives from the rules:
 *
 * - unassigned reads give 0, writes are dropped, both with MEMTX_DECODE_ERROR (2); buffer
 *   chunks that start unassigned are sized by `accessSize` and are not clamped, so they may
 *   swallow the first bytes of RAM that follows.
 * - ROM reads are direct, bus writes to ROM are dropped with DECODE_ERROR; only the
 *   region's own readonly flag matters, not one inherited through an alias.
 * - a typed access that does not fit in the section it starts in makes one dispatch on that
 *   region, which for RAM means 0 / dropped with DECODE_ERROR.
 * - sections are the pieces of flat ranges split at page boundaries; the reference models this.
 */

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import type { AddressSpace } from './address-space.js';
import { MemorySystem } from './system.js';
import { type RefHit, RefWorld, refPaint, refResolveRoot } from './test-support/ref-model.js';
import {
  applyMutation,
  buildWorld,
  describeWorld,
  type MutationRecipe,
  mutationArb,
  type TreeGenOptions,
  worldArb,
} from './test-support/ref-trees.js';
import { MEMTX_DECODE_ERROR, MEMTX_OK } from './types.js';

const G = 512;
const PAGE = 4096;
const OPTS: TreeGenOptions = {
  kinds: ['container', 'ram', 'ram', 'rom', 'alias', 'alias'],
  space: 32,
  maxSize: 32,
  depth: 3,
};
/** Units the reference paints: a root sits below 40 units and spans at most 32. */
const LIMIT_U = 80;

type Op =
  | { t: 'ld' | 'st'; size: 1 | 2 | 4 | 8; be: boolean; addr: number; value: bigint }
  | { t: 'rd' | 'wr'; addr: number; len: number; seed: number }
  | { t: 'map'; write: boolean; addr: number; len: number; used: number; seed: number }
  | { t: 'topo'; m: MutationRecipe };

const addrArb = fc
  .tuple(fc.nat(OPTS.space + 3), fc.oneof(fc.nat(8), fc.integer({ min: G - 9, max: G - 1 }), fc.nat(G - 1)))
  .map(([u, b]) => u * G + b);

const opArb: fc.Arbitrary<Op> = fc.oneof(
  {
    arbitrary: fc.record({
      t: fc.constantFrom('ld' as const, 'st' as const),
      size: fc.constantFrom(1 as const, 2 as const, 4 as const, 8 as const),
      be: fc.boolean(),
      addr: addrArb,
      value: fc.bigInt({ min: 0n, max: 2n ** 64n - 1n }),
    }),
    weight: 8,
  },
  {
    arbitrary: fc.record({
      t: fc.constantFrom('rd' as const, 'wr' as const),
      addr: addrArb,
      len: fc.oneof(fc.integer({ min: 1, max: 16 }), fc.integer({ min: 1, max: 3 * G })),
      seed: fc.nat(),
    }),
    weight: 3,
  },
  {
    arbitrary: fc.record({
      t: fc.constant('map' as const),
      write: fc.boolean(),
      addr: addrArb,
      len: fc.integer({ min: 1, max: 6000 }),
      used: fc.nat(6000),
      seed: fc.nat(),
    }),
    weight: 2,
  },
  { arbitrary: mutationArb(OPTS).map((m) => ({ t: 'topo' as const, m })), weight: 2 },
);

function bytesFrom(seed: number, n: number): Uint8Array {
  const b = new Uint8Array(n);
  let x = seed | 1;
  for (let i = 0; i < n; i++) {
    x = (Math.imul(x, 1103515245) + 12345) | 0;
    b[i] = x >>> 24;
  }
  return b;
}

/** QEMU `memory_access_size` for regions with the unassigned ops (max 4, bounded by alignment). */
function accessSize(offset: number, l: number): number {
  let max = 4;
  if (offset !== 0) max = Math.min(max, offset & -offset);
  l = Math.min(l, max);
  return 2 ** Math.floor(Math.log2(l));
}

/** The reference machine: painted map (in units) and byte arrays. */
class Ref {
  map: Array<RefHit | null> = [];
  constructor(
    readonly w: RefWorld,
    readonly root: ReturnType<RefWorld['create']>,
  ) {
    this.repaint();
  }

  repaint(): void {
    this.map = refPaint(refResolveRoot(this.root), LIMIT_U);
  }

  /** What serves byte `a`: region and byte offset, or null. */
  at(a: number): { hit: RefHit; off: number } | null {
    const h = this.map[Math.floor(a / G)] ?? null;
    return h ? { hit: h, off: h.offset * G + (a % G) } : null;
  }

  private joins(p: RefHit | null, q: RefHit | null): boolean {
    return (
      p !== null &&
      q !== null &&
      p.node === q.node &&
      p.offset + 1 === q.offset &&
      p.readonly === q.readonly &&
      p.nonvolatile === q.nonvolatile
    );
  }

  /** The flat range containing byte `a` (maximal run of mergeable pieces), in bytes. */
  flatRange(a: number): [number, number] {
    const u = Math.floor(a / G);
    let s = u;
    while (s > 0 && this.joins(this.map[s - 1] ?? null, this.map[s] ?? null)) s--;
    let e = u + 1;
    while (e < LIMIT_U && this.joins(this.map[e - 1] ?? null, this.map[e] ?? null)) e++;
    return [s * G, e * G];
  }

  /** End of the section containing byte `a`: the flat range piece split at pages. */
  sectionEnd(a: number): number {
    const [s, e] = this.flatRange(a);
    const up = Math.ceil(s / PAGE) * PAGE;
    const down = Math.floor(e / PAGE) * PAGE;
    if (s % PAGE !== 0 && a < up) return Math.min(e, up);
    if (a < down) return down;
    return e;
  }

  /** End of the run of bytes from `a` that continue the same region contiguously. */
  contiguousEnd(a: number): number {
    const u = Math.floor(a / G);
    let e = u + 1;
    while (e < LIMIT_U) {
      const p = this.map[e - 1] ?? null;
      const q = this.map[e] ?? null;
      if (!(p && q && p.node === q.node && p.offset + 1 === q.offset)) break;
      e++;
    }
    return e * G;
  }

  static directWrite(h: RefHit): boolean {
    // RAM and ROM are both `ram`; the region's own readonly flag decides.
    return (h.node.kind === 'ram' || h.node.kind === 'rom') && !h.node.readonly;
  }

  /** A buffer access (address_space_rw); returns the result, fills `buf` on reads. */
  rw(addr: number, buf: Uint8Array, write: boolean): number {
    let pos = 0;
    let res = MEMTX_OK;
    while (pos < buf.length) {
      const a = addr + pos;
      const rem = buf.length - pos;
      const x = this.at(a);
      let l: number;
      if (!x) {
        l = accessSize(a, rem);
        res |= MEMTX_DECODE_ERROR;
        if (!write) buf.fill(0, pos, pos + l);
      } else {
        l = Math.min(rem, this.sectionEnd(a) - a);
        const bytes = x.hit.node.bytes!;
        if (write ? Ref.directWrite(x.hit) : true) {
          if (write) bytes.set(buf.subarray(pos, pos + l), x.off);
          else buf.set(bytes.subarray(x.off, x.off + l), pos);
        } else {
          l = accessSize(x.off, l);
          res |= MEMTX_DECODE_ERROR;
        }
      }
      pos += l;
    }
    return res;
  }

  /** How the typed access of `size` bytes at `a` goes: direct (region bytes) or failed. */
  typed(a: number, size: number, write: boolean): { bytes: Uint8Array; off: number } | null {
    const x = this.at(a);
    if (!x) return null;
    if (this.sectionEnd(a) - a < size) return null;
    if (write && !Ref.directWrite(x.hit)) return null;
    return { bytes: x.hit.node.bytes!, off: x.off };
  }
}

function doTyped(as: AddressSpace, op: Extract<Op, { t: 'ld' | 'st' }>): bigint | null {
  const { addr, size, be, value } = op;
  const v = BigInt.asUintN(size * 8, value);
  if (op.t === 'st') {
    const n = Number(v);
    switch (size) {
      case 1:
        as.stb(addr, n);
        break;
      case 2:
        be ? as.stwBe(addr, n) : as.stwLe(addr, n);
        break;
      case 4:
        be ? as.stlBe(addr, n) : as.stlLe(addr, n);
        break;
      case 8:
        be ? as.stqBe(addr, v) : as.stqLe(addr, v);
        break;
    }
    return null;
  }
  switch (size) {
    case 1:
      return BigInt(as.ldub(addr));
    case 2:
      return BigInt(be ? as.lduwBe(addr) : as.lduwLe(addr));
    case 4:
      return BigInt(be ? as.ldlBe(addr) : as.ldlLe(addr));
    case 8:
      return be ? as.ldqBe(addr) : as.ldqLe(addr);
  }
}

function toBytes(v: bigint, size: number, be: boolean): Uint8Array {
  const b = new Uint8Array(size);
  for (let i = 0; i < size; i++) b[be ? size - 1 - i : i] = Number((v >> BigInt(8 * i)) & 0xffn);
  return b;
}

function fromBytes(b: Uint8Array, be: boolean): bigint {
  let v = 0n;
  for (let i = 0; i < b.length; i++) v = (v << 8n) | BigInt(b[be ? i : b.length - 1 - i]!);
  return v;
}

describe('guest accesses vs a reference byte model', () => {
  it('typed accesses, buffers and map/unmap agree with the reference through topology changes', () => {
    fc.assert(
      fc.property(worldArb(OPTS), fc.array(opArb, { minLength: 1, maxLength: 40 }), (recipe, ops) => {
        const ms = new MemorySystem();
        const w = new RefWorld(ms, G);
        const { main } = buildWorld(w, recipe, OPTS);
        const as = ms.addressSpace(main.mr, 'memory');
        const ref = new Ref(w, main);
        // A topology commit that touches nothing visible, so views reflect every stored change.
        const scratch = ms.container('scratch', 16);
        const dummy = ms.container('dummy', 16);
        let i = -1;
        const ctx = () =>
          `op ${i}: ${JSON.stringify(ops[i], (_, v) => (typeof v === 'bigint' ? `${v}n` : v))}\n${describeWorld(w)}`;
        for (i = 0; i < ops.length; i++) {
          const op = ops[i]!;
          switch (op.t) {
            case 'topo':
              if (!applyMutation(w, op.m, OPTS, false)) break;
              ms.transaction(() => {
                scratch.addSubregion(0, dummy);
                scratch.delSubregion(dummy);
              });
              ref.repaint();
              break;
            case 'ld':
            case 'st': {
              const got = doTyped(as, op);
              const d = ref.typed(op.addr, op.size, op.t === 'st');
              assert.equal(as.lastResult, d ? MEMTX_OK : MEMTX_DECODE_ERROR, `lastResult: ${ctx()}`);
              if (op.t === 'ld') {
                const want = d ? fromBytes(d.bytes.subarray(d.off, d.off + op.size), op.be) : 0n;
                assert.equal(got, want, `loaded value: ${ctx()}`);
              } else if (d) {
                d.bytes.set(toBytes(BigInt.asUintN(op.size * 8, op.value), op.size, op.be), d.off);
              }
              break;
            }
            case 'rd':
            case 'wr': {
              const data = bytesFrom(op.seed, op.len);
              const mine = data.slice();
              const r = op.t === 'wr' ? as.write(op.addr, data) : as.read(op.addr, data);
              const rr = ref.rw(op.addr, mine, op.t === 'wr');
              assert.equal(r, rr, `buffer ${op.t} result: ${ctx()}`);
              if (op.t === 'rd') assert.deepEqual(data, mine, `buffer read bytes: ${ctx()}`);
              break;
            }
            case 'map': {
              const m = as.map(op.addr, op.len, op.write);
              assert.ok(m, `map returned null with the bounce buffer free: ${ctx()}`);
              const x = ref.at(op.addr);
              const direct = x !== null && (op.write ? Ref.directWrite(x.hit) : true);
              assert.equal(m.bounce, !direct, `bounce or direct: ${ctx()}`);
              let len: number;
              if (direct) {
                len = Math.min(
                  op.len,
                  ref.contiguousEnd(op.addr) - op.addr,
                  x.hit.node.bytes!.length - x.off,
                );
              } else {
                len = Math.min(x ? Math.min(op.len, ref.sectionEnd(op.addr) - op.addr) : op.len, PAGE);
              }
              assert.equal(m.data.length, len, `mapped length: ${ctx()}`);
              if (!op.write) {
                const want = new Uint8Array(len);
                if (direct) want.set(x.hit.node.bytes!.subarray(x.off, x.off + len));
                else ref.rw(op.addr, want, false);
                assert.deepEqual(m.data, want, `mapped bytes: ${ctx()}`);
                as.unmap(m, 0);
              } else {
                const used = op.used % (len + 1);
                const data = bytesFrom(op.seed, used);
                m.data.set(data);
                as.unmap(m, used);
                if (direct) x.hit.node.bytes!.set(data, x.off);
                else ref.rw(op.addr, data, true);
              }
              break;
            }
          }
        }
        // Every RAM/ROM block holds exactly the reference bytes: writes landed where they should.
        for (const n of w.nodes) {
          if (!n.bytes) continue;
          const got = new Uint8Array(n.bytes.length);
          n.mr.ramBlock!.read(0, got, 0, got.length);
          assert.deepEqual(got, n.bytes, `contents of ${n.mr.name} at the end: ${ctx()}`);
        }
      }),
      { numRuns: 1500 },
    );
  });

  it('the software TLB never serves a translation the topology has changed (worked example)', () => {
    // "a" covers pages 0 and 1; an alias "x" of "b" with priority 1 later hides page 1 of "a".
    const ms = new MemorySystem();
    const sys = ms.container('sys', 0x4000);
    const a = ms.ram('a', 0x2000);
    const b = ms.ram('b', 0x1000);
    const x = ms.alias('x', b, 0, 0x1000);
    sys.addSubregion(0, a);
    const as = ms.addressSpace(sys, 'memory');
    as.stlLe(0x1004, 0x11111111);
    assert.equal(as.ldlLe(0x1004), 0x11111111); // page 1 now cached for reads and writes
    sys.addSubregionOverlap(0x1000, x, 1);
    assert.equal(as.ldlLe(0x1004), 0, 'reads b, not the cached page of a');
    as.stlLe(0x1004, 0x22222222);
    x.setEnabled(false);
    assert.equal(as.ldlLe(0x1004), 0x11111111, 'a again once x is hidden');
    x.setEnabled(true);
    assert.equal(as.ldlLe(0x1004), 0x22222222, 'the store went to b');
    // With offset 0x800, b's byte t sits at 0x1000 - 0x800 + t, clipped to x's window [0x1000, 0x2000)
    // and to b's extent [0x800, 0x1800): 0x1004 shows b+0x804 and [0x1800, 0x2000) shows a again.
    x.setAliasOffset(0x800);
    assert.equal(as.ldlLe(0x1004), 0, 'b+0x804');
    as.stlLe(0x1004, 0x33333333);
    assert.equal(as.ldlLe(0x1804), 0, 'a+0x1804');
    x.setAliasOffset(0);
    assert.equal(as.ldlLe(0x1804), 0x33333333, 'b+0x804 seen through offset 0');
    assert.equal(as.ldlLe(0x1004), 0x22222222, 'b+4');
    assert.equal(as.lastResult, MEMTX_OK);
  });

  it('a typed load crossing a page boundary inside one RAM flat range whose end is not page aligned', () => {
    // ram "r" (0x1800 bytes) at 0 renders one flat range [0, 0x1800). QEMU registers it as a
    // whole-page section [0, 0x1000) and a sub-page section [0x1000, 0x1800)
    // (flatview_add_to_dispatch), and address_space_translate_internal clamps a RAM length to the
    // end of the *section*. A 4-byte load at 0xffe therefore gets 2 bytes < 4 and goes to one
    // dispatch on "r", whose unassigned ops refuse it: value 0, MEMTX_DECODE_ERROR.
    const ms = new MemorySystem();
    const sys = ms.container('sys', 0x4000);
    const r = ms.ram('r', 0x1800);
    sys.addSubregion(0, r);
    const as = ms.addressSpace(sys, 'memory');
    as.write(0xffe, new Uint8Array([1, 2, 3, 4]));
    assert.equal(as.ldlLe(0xffe), 0);
    assert.equal(as.lastResult, MEMTX_DECODE_ERROR);
    as.stlLe(0xffe, 0xaabbccdd);
    assert.equal(as.lastResult, MEMTX_DECODE_ERROR);
    const back = new Uint8Array(4);
    as.read(0xffe, back);
    assert.deepEqual([...back], [1, 2, 3, 4], 'the straddling store was dropped');
  });
});
