/**
 * @module machines/riscv/fdt
 * Flattened device trees (the devicetree specification's DTB format, version 17): an in-memory
 * tree of nodes and properties, a reader, and a writer that replays the changes made to a tree
 * through an emulation of libfdt's read-write functions (./fdt-rw.ts), so that a tree built with
 * QEMU's calls in QEMU's order gives the bytes of QEMU's buffer, stale padding included.
 */

import { InvalidArgumentError, MemtreeError } from '../../core/errors.js';
import {
  FDT_BEGIN_NODE,
  FDT_END,
  FDT_END_NODE,
  FDT_MAGIC,
  FDT_NOP,
  FDT_PROP,
  FdtBuffer,
  HEADER_SIZE,
} from './fdt-rw.js';

/** One libfdt call made on a tree after it was created or read, replayed by {@link fdtBuffer}. */
export type FdtOp =
  | { kind: 'node'; parent: string; name: string }
  | { kind: 'prop'; path: string; name: string; value: Uint8Array };

/**
 * A device-tree node. New properties and children go first, before the existing ones, as libfdt's
 * fdt_setprop and fdt_add_subnode insert them; setting an existing property keeps its place. Each
 * change is also logged (qemu_fdt_add_subnode, qemu_fdt_setprop) so that the tree's bytes can be
 * rebuilt exactly as libfdt lays them out in QEMU's buffer.
 */
export class FdtNode {
  /** Properties in blob order. */
  props = new Map<string, Uint8Array>();
  /** Children in blob order. */
  readonly children: FdtNode[] = [];

  /** `log` is the tree's list of changes; children share their parent's. */
  constructor(
    readonly name: string,
    readonly parent: FdtNode | null = null,
    readonly log: FdtOp[] = [],
  ) {}

  /** The node's path, `/` for the root. */
  get path(): string {
    if (!this.parent) return '/';
    const p = this.parent.path;
    return p === '/' ? `/${this.name}` : `${p}/${this.name}`;
  }

  /** The child called `name`, or undefined. */
  child(name: string): FdtNode | undefined {
    return this.children.find((c) => c.name === name);
  }

  /** Adds a child (qemu_fdt_add_subnode); an existing one is returned as is. */
  addChild(name: string): FdtNode {
    let c = this.child(name);
    if (!c) {
      c = new FdtNode(name, this, this.log);
      this.children.unshift(c);
      this.log.push({ kind: 'node', parent: this.path, name });
    }
    return c;
  }

  /** Sets a property to raw bytes (an empty array for a boolean property). */
  set(name: string, value: Uint8Array): this {
    if (this.props.has(name)) this.props.set(name, value);
    else this.props = new Map([[name, value], ...this.props]);
    this.log.push({ kind: 'prop', path: this.path, name, value });
    return this;
  }

  /** Sets a NUL-terminated string property. */
  setString(name: string, s: string): this {
    return this.set(name, stringBytes([s]));
  }

  /** Sets a string-list property (strings one after another, each NUL-terminated). */
  setStrings(name: string, list: string[]): this {
    return this.set(name, stringBytes(list));
  }

  /** Sets a property of big-endian 32-bit cells. */
  setCells(name: string, cells: readonly number[]): this {
    const b = new Uint8Array(cells.length * 4);
    const dv = new DataView(b.buffer);
    for (const [i, c] of cells.entries()) dv.setUint32(i * 4, c >>> 0, false);
    return this.set(name, b);
  }

  /**
   * Sets a property of (cells, value) pairs, as qemu_fdt_setprop_sized_cells: each value is written
   * as 1 or 2 big-endian cells.
   */
  setSizedCells(name: string, ...pairs: Array<[1 | 2, number | bigint]>): this {
    const cells: number[] = [];
    for (const [n, v] of pairs) {
      const x = BigInt(v);
      if (n === 2) cells.push(Number(x >> 32n), Number(x & 0xffffffffn));
      else cells.push(Number(x & 0xffffffffn));
    }
    return this.setCells(name, cells);
  }

  /** A property's bytes, or undefined. */
  get(name: string): Uint8Array | undefined {
    return this.props.get(name);
  }

  /** The node at a path such as `/soc/serial@10000000`, or undefined. */
  find(path: string): FdtNode | undefined {
    let n: FdtNode | undefined = this;
    for (const part of path.split('/').filter(Boolean)) {
      n = n.child(part);
      if (!n) return undefined;
    }
    return n;
  }

  /** The node at `path`, created with its missing ancestors. */
  ensure(path: string): FdtNode {
    let n: FdtNode = this;
    for (const part of path.split('/').filter(Boolean)) n = n.addChild(part);
    return n;
  }
}

function stringBytes(list: string[]): Uint8Array {
  const enc = new TextEncoder();
  const parts = list.map((s) => enc.encode(s));
  const out = new Uint8Array(parts.reduce((a, p) => a + p.length + 1, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length + 1;
  }
  return out;
}

/** FDT_MAX_SIZE: the buffer create_device_tree gives a tree QEMU builds itself. */
export const FDT_MAX_SIZE = 0x100000;

/** A device tree: the root node and the header's boot CPU id and memory reservations. */
export interface Fdt {
  root: FdtNode;
  bootCpuid: number;
  /** Memory reservation entries (address, size). */
  reserved: Array<[bigint, bigint]>;
  /** The blob the tree was read from, or null for one created empty (create_device_tree). */
  source: Uint8Array | null;
  /**
   * The size of QEMU's buffer for the tree before it is packed: FDT_MAX_SIZE for a created tree,
   * twice the file size plus 20000 for one loaded by load_device_tree. riscv_load_fdt places the
   * tree by this size and copies this many bytes to the guest.
   */
  bufSize: number;
}

/** A new empty tree (create_device_tree). */
export function newFdt(): Fdt {
  return { root: new FdtNode(''), bootCpuid: 0, reserved: [], source: null, bufSize: FDT_MAX_SIZE };
}

/**
 * The tree in QEMU's buffer after riscv_load_fdt's fdt_pack: the source blob opened as
 * load_device_tree does (or an empty tree from create_device_tree), every logged change replayed
 * through libfdt's read-write functions, then packed. Its `buf` ({@link Fdt.bufSize} bytes) is what
 * QEMU copies into guest RAM and what `-M virt,dumpdtb=FILE` writes.
 */
export function fdtBuffer(fdt: Fdt): FdtBuffer {
  const b = fdt.source ? FdtBuffer.open(fdt.source, fdt.bufSize) : FdtBuffer.create(fdt.bufSize);
  for (const op of fdt.root.log) {
    if (op.kind === 'node') b.addSubnode(op.parent, op.name);
    else b.setprop(op.path, op.name, op.value);
  }
  b.pack();
  return b;
}

/** The packed DTB: the first `totalsize` bytes of {@link fdtBuffer}. */
export function writeFdt(fdt: Fdt): Uint8Array {
  const b = fdtBuffer(fdt);
  return b.buf.slice(0, b.totalSize);
}

/** Reads a DTB (versions 16 and 17). Throws ERR_FDT on a malformed blob. */
export function readFdt(blob: Uint8Array): Fdt {
  const bad = (why: string): never => {
    throw new MemtreeError('ERR_PARSE', `not a valid device tree blob: ${why}`);
  };
  if (blob.length < HEADER_SIZE) bad('shorter than its header');
  const dv = new DataView(blob.buffer, blob.byteOffset, blob.byteLength);
  if (dv.getUint32(0, false) !== FDT_MAGIC) bad('wrong magic');
  const total = dv.getUint32(4, false);
  const structOff = dv.getUint32(8, false);
  const stringsOff = dv.getUint32(12, false);
  const rsvOff = dv.getUint32(16, false);
  const version = dv.getUint32(20, false);
  if (version < 16) bad(`version ${version} is too old`);
  if (total > blob.length) bad(`header says ${total} bytes, the file has ${blob.length}`);
  const stringsSize = dv.getUint32(32, false);
  const structSize = dv.getUint32(36, false);
  if (structOff + structSize > total || stringsOff + stringsSize > total) bad('blocks past the end');
  // Version 16 headers have no structure size: the block runs to FDT_END, within the blob.
  const structEnd = version >= 17 ? structOff + structSize : total;
  const dec = new TextDecoder();
  const cstr = (at: number, end: number): [string, number] => {
    let e = at;
    while (e < end && blob[e] !== 0) e++;
    if (e >= end) bad('unterminated string');
    return [dec.decode(blob.subarray(at, e)), e + 1];
  };
  const reserved: Array<[bigint, bigint]> = [];
  for (let o = rsvOff; o + 16 <= total; o += 16) {
    const a = dv.getBigUint64(o, false);
    const s = dv.getBigUint64(o + 8, false);
    if (a === 0n && s === 0n) break;
    reserved.push([a, s]);
  }
  let p = structOff;
  const end = structEnd;
  // Token alignment counts from the start of the structure block (libfdt's FDT_TAGALIGN on
  // block offsets), which need not be a multiple of 4 in the file.
  const align = () => {
    p = structOff + ((p - structOff + 3) & ~3);
  };
  const stack: FdtNode[] = [];
  let root: FdtNode | null = null;
  const log: FdtOp[] = [];
  for (;;) {
    if (p + 4 > end) bad('structure block ends without FDT_END');
    const tok = dv.getUint32(p, false);
    p += 4;
    if (tok === FDT_BEGIN_NODE) {
      const [name, next] = cstr(p, end);
      p = next;
      align();
      const parent = stack[stack.length - 1] ?? null;
      const n = new FdtNode(name, parent, log);
      if (parent) parent.children.push(n);
      else if (root) bad('two root nodes');
      else root = n;
      stack.push(n);
    } else if (tok === FDT_PROP) {
      const len = dv.getUint32(p, false);
      const nameoff = dv.getUint32(p + 4, false);
      p += 8;
      if (p + len > end || !stack.length) bad('property outside a node or past the end');
      const [name] = cstr(stringsOff + nameoff, stringsOff + stringsSize);
      stack[stack.length - 1]!.props.set(name, blob.slice(p, p + len));
      p += len;
      align();
    } else if (tok === FDT_END_NODE) {
      if (!stack.pop()) bad('unbalanced end of node');
    } else if (tok === FDT_NOP) {
      // skipped
    } else if (tok === FDT_END) {
      break;
    } else {
      bad(`unknown token ${tok}`);
    }
  }
  if (!root || stack.length) bad('unbalanced nodes');
  return {
    root: root as FdtNode,
    bootCpuid: dv.getUint32(28, false),
    reserved,
    source: blob,
    // load_device_tree: room to grow, twice the file's size plus 10000 bytes.
    bufSize: (blob.length + 10000) * 2,
  };
}

/** The tree as dtc-like text (for tests and debugging): one line per node and property. */
export function fdtToText(fdt: Fdt): string {
  const lines: string[] = [];
  const show = (v: Uint8Array): string => {
    if (v.length === 0) return '';
    const printable =
      v[v.length - 1] === 0 && v.subarray(0, -1).every((b) => b === 0 || (b >= 0x20 && b < 0x7f));
    if (printable && v[0] !== 0) {
      return ` = ${new TextDecoder()
        .decode(v.subarray(0, -1))
        .split('\0')
        .map((s) => JSON.stringify(s))
        .join(', ')}`;
    }
    if (v.length % 4 === 0) {
      const dv = new DataView(v.buffer, v.byteOffset, v.byteLength);
      const cells: string[] = [];
      for (let i = 0; i < v.length; i += 4) cells.push(`0x${dv.getUint32(i, false).toString(16)}`);
      return ` = <${cells.join(' ')}>`;
    }
    return ` = [${Array.from(v, (b) => b.toString(16).padStart(2, '0')).join(' ')}]`;
  };
  const walk = (n: FdtNode, depth: number) => {
    const ind = '  '.repeat(depth);
    lines.push(`${ind}${n.name || '/'} {`);
    for (const [k, v] of n.props) lines.push(`${ind}  ${k}${show(v)};`);
    for (const c of n.children) walk(c, depth + 1);
    lines.push(`${ind}};`);
  };
  walk(fdt.root, 0);
  return `${lines.join('\n')}\n`;
}

/** Checks a cell value fits 32 bits (phandles, interrupt numbers). */
export function cell(v: number, what: string): number {
  if (!Number.isInteger(v) || v < 0 || v > 0xffffffff)
    throw new InvalidArgumentError(`${what}: ${v} is not a cell`);
  return v;
}

/** What {@link createVirtFdt} needs to know about the machine. */
export interface VirtFdtInput {
  ramSize: number;
  smp: number;
  /** `riscv,isa` of each hart (the hart's own string; QEMU prints its CPU's extensions). */
  isa: string;
  /** Base of the high PCIe MMIO window. */
  highPcieBase: number;
  /** `-append`: becomes /chosen/bootargs when not empty. */
  cmdline?: string;
  /** The 32 bytes of /chosen/rng-seed (QEMU: fresh random bytes on every boot). */
  rngSeed: Uint8Array;
}

/**
 * The device tree of QEMU 7.2's riscv64 virt machine (hw/riscv/virt.c create_fdt and the
 * create_fdt_* helpers it calls, for one socket, no AIA, the SiFive CLINT, under TCG), built with
 * the same calls in the same order, so nodes, properties, phandles and the strings table come out
 * as in QEMU's blob.
 */
export function createVirtFdt(m: VirtFdtInput): Fdt {
  const fdt = newFdt();
  const root = fdt.root;
  const at = (path: string) => root.ensure(path);
  const hex = (n: number) => n.toString(16);
  let phandle = 1;
  root.setString('model', 'riscv-virtio,qemu');
  root.setString('compatible', 'riscv-virtio');
  root.setCells('#size-cells', [2]);
  root.setCells('#address-cells', [2]);
  const soc = at('/soc');
  soc.set('ranges', new Uint8Array(0));
  soc.setString('compatible', 'simple-bus');
  soc.setCells('#size-cells', [2]);
  soc.setCells('#address-cells', [2]);

  // create_fdt_sockets
  const cpus = at('/cpus');
  cpus.setCells('timebase-frequency', [10_000_000]);
  cpus.setCells('#size-cells', [0]);
  cpus.setCells('#address-cells', [1]);
  at('/cpus/cpu-map');
  const intc: number[] = new Array(m.smp).fill(0);
  const cluster = '/cpus/cpu-map/cluster0';
  at(cluster);
  for (let cpu = m.smp - 1; cpu >= 0; cpu--) {
    const cpuPhandle = phandle++;
    const node = at(`/cpus/cpu@${cpu}`);
    node.setString('mmu-type', 'riscv,sv48');
    node.setString('riscv,isa', m.isa);
    node.setString('compatible', 'riscv');
    node.setString('status', 'okay');
    node.setCells('reg', [cpu]);
    node.setString('device_type', 'cpu');
    node.setCells('phandle', [cpuPhandle]);
    intc[cpu] = phandle++;
    const ic = at(`/cpus/cpu@${cpu}/interrupt-controller`);
    ic.setCells('phandle', [intc[cpu]!]);
    ic.setString('compatible', 'riscv,cpu-intc');
    ic.set('interrupt-controller', new Uint8Array(0));
    ic.setCells('#interrupt-cells', [1]);
    at(`${cluster}/core${cpu}`).setCells('cpu', [cpuPhandle]);
  }
  const dram = 0x80000000;
  const mem = at(`/memory@${hex(dram)}`);
  mem.setSizedCells('reg', [2, dram], [2, m.ramSize]);
  mem.setString('device_type', 'memory');
  const clint = at('/soc/clint@2000000');
  clint.setStrings('compatible', ['sifive,clint0', 'riscv,clint0']);
  clint.setCells('reg', [0, 0x2000000, 0, 0x10000]);
  clint.setCells(
    'interrupts-extended',
    intc.flatMap((p) => [p, 3, p, 7]),
  );
  const plicPhandle = phandle++;
  const plic = at('/soc/plic@c000000');
  plic.setCells('#interrupt-cells', [1]);
  plic.setCells('#address-cells', [0]);
  plic.setStrings('compatible', ['sifive,plic-1.0.0', 'riscv,plic0']);
  plic.set('interrupt-controller', new Uint8Array(0));
  plic.setCells(
    'interrupts-extended',
    intc.flatMap((p) => [p, 11, p, 9]),
  );
  plic.setCells('reg', [0, 0xc000000, 0, 0x600000]);
  plic.setCells('riscv,ndev', [96]);
  plic.setCells('phandle', [plicPhandle]);
  // platform_bus_add_all_fdt_nodes (hw/core/sysbus-fdt.c): an empty bus, no dynamic devices.
  const pbus = at('/platform-bus@4000000');
  pbus.setStrings('compatible', ['qemu,platform', 'simple-bus']);
  pbus.setCells('#size-cells', [1]);
  pbus.setCells('#address-cells', [1]);
  pbus.setCells('ranges', [0, 0, 0x4000000, 0x2000000]);
  pbus.setCells('interrupt-parent', [plicPhandle]);

  // create_fdt_virtio
  for (let i = 0; i < 8; i++) {
    const base = 0x10001000 + i * 0x1000;
    const v = at(`/soc/virtio_mmio@${hex(base)}`);
    v.setString('compatible', 'virtio,mmio');
    v.setCells('reg', [0, base, 0, 0x1000]);
    v.setCells('interrupt-parent', [plicPhandle]);
    v.setCells('interrupts', [1 + i]);
  }

  // create_fdt_pcie
  const pci = at('/soc/pci@30000000');
  pci.setCells('#address-cells', [3]);
  pci.setCells('#interrupt-cells', [1]);
  pci.setCells('#size-cells', [2]);
  pci.setString('compatible', 'pci-host-ecam-generic');
  pci.setString('device_type', 'pci');
  pci.setCells('linux,pci-domain', [0]);
  pci.setCells('bus-range', [0, 0x10000000 / 0x100000 - 1]);
  pci.set('dma-coherent', new Uint8Array(0));
  pci.setCells('reg', [0, 0x30000000, 0, 0x10000000]);
  pci.setSizedCells(
    'ranges',
    [1, 0x01000000],
    [2, 0],
    [2, 0x3000000],
    [2, 0x10000],
    [1, 0x02000000],
    [2, 0x40000000],
    [2, 0x40000000],
    [2, 0x40000000],
    [1, 0x03000000],
    [2, m.highPcieBase],
    [2, m.highPcieBase],
    [2, 16 * 2 ** 30],
  );
  // create_pcie_irq_map: the standard swizzle, one entry per (slot, pin) of the first 4 slots.
  const map: number[] = [];
  for (let dev = 0; dev < 4; dev++) {
    for (let pin = 0; pin < 4; pin++) {
      map.push((dev * 8) << 8, 0, 0, pin + 1, plicPhandle, 0x20 + ((pin + dev) % 4));
    }
  }
  pci.setCells('interrupt-map', map);
  pci.setCells('interrupt-map-mask', [0x1800, 0, 0, 7]);

  // create_fdt_reset
  const testPhandle = phandle++;
  const test = at('/soc/test@100000');
  test.setStrings('compatible', ['sifive,test1', 'sifive,test0', 'syscon']);
  test.setCells('reg', [0, 0x100000, 0, 0x1000]);
  test.setCells('phandle', [testPhandle]);
  for (const [name, compat, value] of [
    ['/reboot', 'syscon-reboot', 0x7777],
    ['/poweroff', 'syscon-poweroff', 0x5555],
  ] as const) {
    const n = at(name);
    n.setString('compatible', compat);
    n.setCells('regmap', [testPhandle]);
    n.setCells('offset', [0]);
    n.setCells('value', [value]);
  }

  // create_fdt_uart
  const uartName = '/soc/serial@10000000';
  const uart = at(uartName);
  uart.setString('compatible', 'ns16550a');
  uart.setCells('reg', [0, 0x10000000, 0, 0x100]);
  uart.setCells('clock-frequency', [3686400]);
  uart.setCells('interrupt-parent', [plicPhandle]);
  uart.setCells('interrupts', [10]);
  at('/chosen').setString('stdout-path', uartName);

  // create_fdt_rtc
  const rtc = at('/soc/rtc@101000');
  rtc.setString('compatible', 'google,goldfish-rtc');
  rtc.setCells('reg', [0, 0x101000, 0, 0x1000]);
  rtc.setCells('interrupt-parent', [plicPhandle]);
  rtc.setCells('interrupts', [11]);

  // create_fdt_flash, create_fdt_fw_cfg
  const flash = at('/flash@20000000');
  flash.setString('compatible', 'cfi-flash');
  flash.setSizedCells('reg', [2, 0x20000000], [2, 0x2000000], [2, 0x22000000], [2, 0x2000000]);
  flash.setCells('bank-width', [4]);
  const fw = at('/fw-cfg@10100000');
  fw.setString('compatible', 'qemu,fw-cfg-mmio');
  fw.setSizedCells('reg', [2, 0x10100000], [2, 0x18]);
  fw.set('dma-coherent', new Uint8Array(0));

  // create_fdt_pmu with riscv_pmu_generate_fdt_node for QEMU's 16 programmable counters.
  const pmu = at('/pmu');
  pmu.setString('compatible', 'riscv,pmu');
  const cmask = 0x7fff8; // MAKE_32BIT_MASK(3, 16)
  pmu.setCells('riscv,event-to-mhpmcounters', [
    1,
    1,
    cmask | 1,
    2,
    2,
    cmask | 4,
    0x10019,
    0x10019,
    cmask,
    0x1001b,
    0x1001b,
    cmask,
    0x10021,
    0x10021,
    cmask,
    0,
    0,
    0,
    0,
    0,
  ]);
  setBootargsAndSeed(fdt, m.cmdline, m.rngSeed);
  return fdt;
}

/**
 * The end of create_fdt, also run on a `--dtb` tree: bootargs (if any), then a fresh rng-seed.
 * As qemu_fdt_setprop's findnode_nofail, a tree without `/chosen` is an error, not extended.
 */
export function setBootargsAndSeed(fdt: Fdt, cmdline: string | undefined, rngSeed: Uint8Array): void {
  const chosen = fdt.root.find('/chosen');
  if (!chosen) throw new InvalidArgumentError('the device tree has no /chosen node (QEMU needs one)');
  if (cmdline) chosen.setString('bootargs', cmdline);
  chosen.set('rng-seed', rngSeed);
}
