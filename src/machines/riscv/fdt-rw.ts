/**
 * @module machines/riscv/fdt-rw
 * A device tree kept in one fixed-size buffer and changed in place the way libfdt's read-write
 * functions (fdt_rw.c: fdt_setprop, fdt_add_subnode, fdt_open_into, fdt_pack) change QEMU's
 * `machine->fdt`. Every insertion moves the bytes after it with a memmove and leaves what was
 * there before in the gaps libfdt does not clear (the padding after a property value, the bytes
 * past the end after the tree shrinks), so replaying QEMU's calls in QEMU's order gives the very
 * buffer QEMU copies into guest RAM, not just an equivalent tree.
 */

import { InvalidArgumentError, MemtreeError } from '../../core/errors.js';

/** The flattened device tree's magic, structure tokens and header size (the devicetree spec's). */
export const FDT_MAGIC = 0xd00dfeed;
export const FDT_BEGIN_NODE = 1;
export const FDT_END_NODE = 2;
export const FDT_PROP = 3;
export const FDT_NOP = 4;
export const FDT_END = 9;
export const HEADER_SIZE = 40;
const RSV_ENTRY = 16;

// Header field offsets.
const H_TOTALSIZE = 4;
const H_OFF_STRUCT = 8;
const H_OFF_STRINGS = 12;
const H_OFF_RSVMAP = 16;
const H_VERSION = 20;
const H_LAST_COMP = 24;
const H_BOOT_CPUID = 28;
const H_SIZE_STRINGS = 32;
const H_SIZE_STRUCT = 36;

const tagAlign = (n: number) => (n + 3) & ~3;

/** A libfdt read-write tree in its buffer (the whole buffer, as QEMU's `fdt_totalsize` before packing). */
export class FdtBuffer {
  private readonly dv: DataView;

  private constructor(readonly buf: Uint8Array) {
    this.dv = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  }

  /**
   * An empty tree in a zeroed buffer of `size` bytes, as create_device_tree leaves it
   * (fdt_create, fdt_finish_reservemap, the root node, fdt_finish, fdt_open_into). fdt_create
   * aligns the header to a reservation entry, so the map starts at 48, not 40: fdt_pack later moves
   * everything down by 8 and leaves the last 8 bytes of the old end behind in the buffer.
   */
  static create(size: number): FdtBuffer {
    const f = new FdtBuffer(new Uint8Array(size));
    const rsvOff = 48;
    const structOff = rsvOff + RSV_ENTRY;
    for (const [off, v] of [
      [0, FDT_MAGIC],
      [H_TOTALSIZE, size],
      [H_OFF_STRUCT, structOff],
      [H_OFF_STRINGS, structOff + 16],
      [H_OFF_RSVMAP, rsvOff],
      [H_VERSION, 17],
      [H_LAST_COMP, 16],
      [H_SIZE_STRUCT, 16],
      [structOff, FDT_BEGIN_NODE],
      [structOff + 8, FDT_END_NODE],
      [structOff + 12, FDT_END],
    ] as const) {
      f.u32(off, v);
    }
    return f;
  }

  /**
   * A blob loaded as load_device_tree does: the file's bytes at the start of a zeroed buffer of
   * `size` bytes, then fdt_open_into in place (blocks in order: only the header changes; out of
   * order: the blocks are packed after the old tree and moved to the front).
   */
  static open(file: Uint8Array, size: number): FdtBuffer {
    if (file.length > size) throw new InvalidArgumentError('device tree larger than its buffer');
    const f = new FdtBuffer(new Uint8Array(size));
    f.buf.set(file);
    const bad = (why: string): never => {
      throw new MemtreeError('ERR_PARSE', `not a valid device tree blob: ${why}`);
    };
    if (file.length < HEADER_SIZE || f.u32(0) !== FDT_MAGIC) bad('wrong magic');
    const version = f.u32(H_VERSION);
    if (version < 16) bad(`version ${version} is too old`);
    const total = f.u32(H_TOTALSIZE);
    if (total > file.length) bad(`header says ${total} bytes, the file has ${file.length}`);
    const rsvSize = (f.numMemRsv() + 1) * RSV_ENTRY;
    let structSize = f.u32(H_SIZE_STRUCT);
    if (version === 16) {
      // fdt_open_into: version 16 headers have no struct size; walk the tags to FDT_END.
      let o = 0;
      for (;;) {
        const [tag, next] = f.nextTag(f.u32(H_OFF_STRUCT) + o);
        o = next - f.u32(H_OFF_STRUCT);
        if (tag === FDT_END) break;
      }
      structSize = o;
    }
    if (!f.misordered(rsvSize, structSize)) {
      f.u32(H_VERSION, 17);
      f.u32(H_SIZE_STRUCT, structSize);
      f.u32(H_TOTALSIZE, size);
      return f;
    }
    const newSize = HEADER_SIZE + rsvSize + structSize + f.u32(H_SIZE_STRINGS);
    // The packed copy cannot start at the buffer's start (it would overlap the old tree); libfdt
    // builds it right after the old tree and moves it down.
    const tmp = total;
    if (tmp + newSize > size) throw new InvalidArgumentError('device tree: no room to reorder its blocks');
    const cpuid = f.u32(H_BOOT_CPUID);
    f.packBlocks(tmp, rsvSize, structSize);
    f.buf.copyWithin(0, tmp, tmp + newSize);
    f.u32(0, FDT_MAGIC);
    f.u32(H_TOTALSIZE, size);
    f.u32(H_VERSION, 17);
    f.u32(H_LAST_COMP, 16);
    f.u32(H_BOOT_CPUID, cpuid);
    return f;
  }

  private u32(off: number): number;
  private u32(off: number, v: number): void;
  private u32(off: number, v?: number): number | undefined {
    if (v === undefined) return this.dv.getUint32(off, false);
    this.dv.setUint32(off, v >>> 0, false);
    return undefined;
  }

  private numMemRsv(): number {
    let n = 0;
    for (let o = this.u32(H_OFF_RSVMAP); o + RSV_ENTRY <= this.buf.length; o += RSV_ENTRY, n++) {
      if (this.dv.getBigUint64(o, false) === 0n && this.dv.getBigUint64(o + 8, false) === 0n) break;
    }
    return n;
  }

  /** fdt_blocks_misordered_. */
  private misordered(rsvSize: number, structSize: number): boolean {
    return (
      this.u32(H_OFF_RSVMAP) < HEADER_SIZE ||
      this.u32(H_OFF_STRUCT) < this.u32(H_OFF_RSVMAP) + rsvSize ||
      this.u32(H_OFF_STRINGS) < this.u32(H_OFF_STRUCT) + structSize ||
      this.u32(H_TOTALSIZE) < this.u32(H_OFF_STRINGS) + this.u32(H_SIZE_STRINGS)
    );
  }

  /** fdt_packblocks_: the three blocks one after another from `at` + 40, header fields there. */
  private packBlocks(at: number, rsvSize: number, structSize: number): void {
    const stringsSize = this.u32(H_SIZE_STRINGS);
    const rsvOff = HEADER_SIZE;
    const structOff = rsvOff + rsvSize;
    const stringsOff = structOff + structSize;
    const oldRsv = this.u32(H_OFF_RSVMAP);
    const oldStruct = this.u32(H_OFF_STRUCT);
    const oldStrings = this.u32(H_OFF_STRINGS);
    this.buf.copyWithin(at + rsvOff, oldRsv, oldRsv + rsvSize);
    this.u32(at + H_OFF_RSVMAP, rsvOff);
    this.buf.copyWithin(at + structOff, oldStruct, oldStruct + structSize);
    this.u32(at + H_OFF_STRUCT, structOff);
    this.u32(at + H_SIZE_STRUCT, structSize);
    this.buf.copyWithin(at + stringsOff, oldStrings, oldStrings + stringsSize);
    this.u32(at + H_OFF_STRINGS, stringsOff);
    this.u32(at + H_SIZE_STRINGS, stringsSize);
  }

  /** fdt_next_tag on a struct-block offset: the tag and the offset of the next one. */
  private nextTag(off: number): [number, number] {
    const broken = (): never => {
      throw new MemtreeError('ERR_PARSE', 'not a valid device tree blob: truncated structure block');
    };
    if (off + 4 > this.buf.length) broken();
    const tag = this.u32(off);
    let p = off + 4;
    if (tag === FDT_BEGIN_NODE) {
      while (p < this.buf.length && this.buf[p] !== 0) p++;
      if (p >= this.buf.length) broken();
      p++;
    } else if (tag === FDT_PROP) {
      p += 8 + this.u32(p);
    } else if (tag !== FDT_END && tag !== FDT_END_NODE && tag !== FDT_NOP) {
      throw new MemtreeError('ERR_PARSE', `not a valid device tree blob: unknown token ${tag}`);
    }
    if (p > this.buf.length) broken();
    // FDT_TAGALIGN works on offsets from the start of the structure block, which a file may put
    // at an address that is not a multiple of 4.
    const base = this.u32(H_OFF_STRUCT);
    return [tag, base + tagAlign(p - base)];
  }

  private nodeName(off: number): string {
    let e = off + 4;
    while (this.buf[e] !== 0) e++;
    return new TextDecoder().decode(this.buf.subarray(off + 4, e));
  }

  /** fdt_subnode_offset (full names: `name@unit` must be given whole if the node has a unit). */
  private subnode(parent: number, name: string): number {
    let [, o] = this.nextTag(parent);
    let depth = 1;
    for (;;) {
      const [tag, next] = this.nextTag(o);
      if (tag === FDT_BEGIN_NODE) {
        if (depth === 1 && this.nodeName(o) === name) return o;
        depth++;
      } else if (tag === FDT_END_NODE) {
        if (--depth === 0) return -1;
      } else if (tag === FDT_END) {
        return -1;
      }
      o = next;
    }
  }

  /** fdt_path_offset; -1 if there is no such node. */
  pathOffset(path: string): number {
    let o = this.u32(H_OFF_STRUCT);
    for (const part of path.split('/').filter(Boolean)) {
      o = this.subnode(o, part);
      if (o < 0) return -1;
    }
    return o;
  }

  private node(path: string): number {
    const o = this.pathOffset(path);
    // findnode_nofail: QEMU stops with "Couldn't find node".
    if (o < 0) throw new InvalidArgumentError(`device tree: no node ${path}`);
    return o;
  }

  /** fdt_splice_struct_: replaces `oldLen` bytes at `p` by `newLen` (contents left as they fall). */
  private spliceStruct(p: number, oldLen: number, newLen: number): void {
    this.splice(p, oldLen, newLen);
    const delta = newLen - oldLen;
    this.u32(H_SIZE_STRUCT, this.u32(H_SIZE_STRUCT) + delta);
    this.u32(H_OFF_STRINGS, this.u32(H_OFF_STRINGS) + delta);
  }

  /** fdt_splice_: a memmove of everything from `p` + `oldLen` to the end of the data. */
  private splice(p: number, oldLen: number, newLen: number): void {
    const dsize = this.u32(H_OFF_STRINGS) + this.u32(H_SIZE_STRINGS);
    if (dsize - oldLen + newLen > this.u32(H_TOTALSIZE)) {
      throw new InvalidArgumentError(`device tree: no room left in its ${this.u32(H_TOTALSIZE)}-byte buffer`);
    }
    this.buf.copyWithin(p + newLen, p + oldLen, dsize);
  }

  /** fdt_find_add_string_: the name's offset in the strings block, appended if not there. */
  private findAddString(name: string): number {
    const want = new TextEncoder().encode(`${name}\0`);
    const tab = this.u32(H_OFF_STRINGS);
    const size = this.u32(H_SIZE_STRINGS);
    // fdt_find_string_: any place, the tail of a longer name included.
    for (let i = 0; i + want.length <= size; i++) {
      let j = 0;
      while (j < want.length && this.buf[tab + i + j] === want[j]) j++;
      if (j === want.length) return i;
    }
    this.splice(tab + size, 0, want.length);
    this.u32(H_SIZE_STRINGS, size + want.length);
    this.buf.set(want, tab + size);
    return size;
  }

  private stringAt(nameoff: number): string {
    const s = this.u32(H_OFF_STRINGS) + nameoff;
    let e = s;
    while (this.buf[e] !== 0) e++;
    return new TextDecoder().decode(this.buf.subarray(s, e));
  }

  /** The offset of the FDT_PROP tag of `name` in the node at `node`, or -1 (fdt_get_property_w). */
  private findProp(node: number, name: string): number {
    let [, o] = this.nextTag(node);
    for (;;) {
      const [tag, next] = this.nextTag(o);
      if (tag === FDT_PROP) {
        if (this.stringAt(this.u32(o + 8)) === name) return o;
      } else if (tag !== FDT_NOP) {
        return -1;
      }
      o = next;
    }
  }

  /** fdt_setprop (through qemu_fdt_setprop's path lookup). */
  setprop(path: string, name: string, value: Uint8Array): void {
    const node = this.node(path);
    const existing = this.findProp(node, name);
    let data: number;
    if (existing >= 0) {
      // fdt_resize_property_
      data = existing + 12;
      this.spliceStruct(data, tagAlign(this.u32(existing + 4)), tagAlign(value.length));
      this.u32(existing + 4, value.length);
    } else {
      // fdt_add_property_: the string first, then the new property before the node's others.
      const [, at] = this.nextTag(node);
      const nameoff = this.findAddString(name);
      this.spliceStruct(at, 0, 12 + tagAlign(value.length));
      this.u32(at, FDT_PROP);
      this.u32(at + 4, value.length);
      this.u32(at + 8, nameoff);
      data = at + 12;
    }
    this.buf.set(value, data);
  }

  /** fdt_add_subnode (qemu_fdt_add_subnode): the new node before the parent's other children. */
  addSubnode(parentPath: string, name: string): void {
    const parent = this.node(parentPath);
    if (this.subnode(parent, name) >= 0) throw new InvalidArgumentError(`device tree: ${name} exists`);
    let [, o] = this.nextTag(parent);
    for (;;) {
      const [tag, next] = this.nextTag(o);
      if (tag !== FDT_PROP && tag !== FDT_NOP) break;
      o = next;
    }
    const enc = new TextEncoder().encode(name);
    const nameLen = tagAlign(enc.length + 1);
    this.spliceStruct(o, 0, 8 + nameLen);
    this.u32(o, FDT_BEGIN_NODE);
    this.buf.fill(0, o + 4, o + 4 + nameLen);
    this.buf.set(enc, o + 4);
    this.u32(o + 4 + nameLen, FDT_END_NODE);
  }

  /** fdt_pack: the blocks moved together; the header's total size becomes the data's. */
  pack(): void {
    const rsvSize = (this.numMemRsv() + 1) * RSV_ENTRY;
    this.packBlocks(0, rsvSize, this.u32(H_SIZE_STRUCT));
    this.u32(H_TOTALSIZE, this.u32(H_OFF_STRINGS) + this.u32(H_SIZE_STRINGS));
  }

  /** The header's total size (the packed size after {@link pack}). */
  get totalSize(): number {
    return this.u32(H_TOTALSIZE);
  }
}
