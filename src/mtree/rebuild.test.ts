/**
 * @module mtree/rebuild.test
 * Rebuild rules that the fixtures do not isolate: typed errors for inconsistent dumps, hidden
 * disabled regions without -D, and the flat dump settling container vs terminating region.
 */

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseFlatText, parseMtreeText } from './parse.js';
import { formatFlat, formatMtree } from './print.js';
import { rebuild } from './rebuild.js';

test('an alias to a region that is nowhere in the dump is an error naming the line', () => {
  const d = parseMtreeText(
    'address-space: m\n  0000000000000000-00000000000000ff (prio 0, i/o): root\n    0000000000000000-000000000000000f (prio 0, ram): alias a @ghost 0000000000000000-000000000000000f\n\n',
    'd.txt',
  );
  assert.throws(
    () => rebuild(d),
    (e: Error & { code?: string }) => e.code === 'ERR_PARSE' && /d\.txt:3: .*ghost/.test(e.message),
  );
});

test('alias cycles are an error naming the line', () => {
  const w = '0000000000000000-00000000000000ff';
  const d = parseMtreeText(
    `address-space: x\n  ${w} (prio 0, i/o): alias a @b ${w}\n\nmemory-region: b\n  ${w} (prio 0, i/o): alias b @a ${w}\n\nmemory-region: a\n  ${w} (prio 0, i/o): alias a @b ${w}\n\n`,
    'c.txt',
  );
  assert.throws(() => rebuild(d), /c\.txt:\d+: alias "\w" leads back to itself/);
});

test('an i/o region with children terminates when the flat dump shows it in its gaps', () => {
  // QEMU's x86 port space: `io` is a terminating region whose gaps print as `io @offset`.
  const tree =
    'address-space: I/O\n  0000000000000000-000000000000ffff (prio 0, i/o): io\n    0000000000000020-0000000000000021 (prio 0, i/o): pic\n\n';
  const flat =
    'FlatView #0\n AS "I/O", root: io\n Root memory region: io\n  0000000000000000-000000000000001f (prio 0, i/o): io\n  0000000000000020-0000000000000021 (prio 0, i/o): pic\n  0000000000000022-000000000000ffff (prio 0, i/o): io @0000000000000022\n\n';
  const d = parseMtreeText(tree);
  assert.equal(formatFlat(rebuild(d, parseFlatText(flat)).system), flat);
  // `io` of 64 KiB is a region QEMU creates under that name (memory_map_init): known to terminate,
  // so the text alone gives the same flat view.
  assert.equal(formatFlat(rebuild(d).system), flat);
  // An i/o region with children under a name QEMU never creates is taken for a container from the
  // text alone: only `pic` renders.
  const other = parseMtreeText(
    tree.replaceAll('): io', '): no-such-qemu-bus').replace('address-space: I/O', 'address-space: P'),
  );
  assert.match(
    formatFlat(rebuild(other).system),
    /Root memory region: no-such-qemu-bus\n {2}0000000000000020-0000000000000021 \(prio 0, i\/o\): pic\n\n$/,
  );
  // `ports` is an I/O region in QEMU's source (memory_region_init_io): it terminates.
  const ports = parseMtreeText(
    tree.replaceAll('): io', '): ports').replace('address-space: I/O', 'address-space: P'),
  );
  assert.match(
    formatFlat(rebuild(ports).system),
    /0000000000000022-000000000000ffff \(prio 0, i\/o\): ports @/,
  );
});

test('without -D a depth jump is a hidden disabled region, and its children print at their depth', () => {
  const tree =
    'address-space: I/O\n  0000000000000000-000000000000ffff (prio 0, i/o): io\n      0000000000000000-0000000000000003 (prio 0, i/o): acpi-evt\n    0000000000000000-0000000000000007 (prio 0, i/o): dma-chan\n\n';
  const r = rebuild(parseMtreeText(tree));
  assert.equal(formatMtree(r.system), tree);
  // The hidden parent is disabled, so acpi-evt does not render.
  assert.doesNotMatch(formatFlat(r.system), /acpi-evt/);
});

test('the flat dump decides which of two overlapping equal-priority siblings wins', () => {
  // As on Aspeed boards: a large "unimplemented device" at prio -1000 added after a smaller one it
  // covers. The tree prints both in address order; only the flat view shows that the big one,
  // newer in the list, hides the small one.
  const tree =
    'address-space: memory\n  0000000000000000-000000000000ffff (prio 0, i/o): system\n    0000000000001000-0000000000004fff (prio -1000, i/o): big\n    0000000000002000-0000000000002fff (prio -1000, i/o): small\n\n';
  const flat =
    'FlatView #0\n AS "memory", root: system\n Root memory region: system\n  0000000000001000-0000000000004fff (prio -1000, i/o): big\n\n';
  const d = parseMtreeText(tree);
  assert.equal(formatFlat(rebuild(d, parseFlatText(flat)).system), flat);
  // And when the small one wins, the big one shows around it.
  const flat2 =
    'FlatView #0\n AS "memory", root: system\n Root memory region: system\n  0000000000001000-0000000000001fff (prio -1000, i/o): big\n  0000000000002000-0000000000002fff (prio -1000, i/o): small\n  0000000000003000-0000000000004fff (prio -1000, i/o): big @0000000000002000\n\n';
  assert.equal(formatFlat(rebuild(d, parseFlatText(flat2)).system), flat2);
});

test('a read-only alias is found although QEMU merged its flat range with a neighbour', () => {
  // PAM after SeaBIOS ran: two adjacent read-only aliases of pc.ram print as one merged `rom`
  // range (flatview_simplify), which reaches past each alias.
  const tree =
    'address-space: memory\n  0000000000000000-000000000000ffff (prio 0, i/o): system\n    0000000000000000-000000000000ffff (prio 0, ram): alias ram-below @pc.ram 0000000000000000-000000000000ffff\n    000000000000c000-000000000000c3ff (prio 1, ram): alias pam-rom @pc.ram 000000000000c000-000000000000c3ff\n    000000000000c400-000000000000c7ff (prio 1, ram): alias pam-rom @pc.ram 000000000000c400-000000000000c7ff\n\nmemory-region: pc.ram\n  0000000000000000-000000000000ffff (prio 0, ram): pc.ram\n\n';
  const flat =
    'FlatView #0\n AS "memory", root: system\n Root memory region: system\n  0000000000000000-000000000000bfff (prio 0, ram): pc.ram\n  000000000000c000-000000000000c7ff (prio 0, rom): pc.ram @000000000000c000\n  000000000000c800-000000000000ffff (prio 0, ram): pc.ram @000000000000c800\n\n';
  assert.equal(formatFlat(rebuild(parseMtreeText(tree), parseFlatText(flat)).system), flat);
});

test('from the text alone, names QEMU creates as containers stay containers, even when empty', () => {
  // Machine `none`: `system` has no subregion, yet QEMU creates it with memory_region_init
  // (a container), so nothing renders.
  const tree = 'address-space: memory\n  0000000000000000-ffffffffffffffff (prio 0, i/o): system\n\n';
  assert.equal(
    formatFlat(rebuild(parseMtreeText(tree)).system),
    'FlatView #0\n AS "memory", root: system\n Root memory region: (none)\n  No rendered FlatView\n\n',
  );
});

test('from the text alone, the later-starting of two overlapping equal-priority siblings wins', () => {
  const tree =
    'address-space: memory\n  0000000000000000-000000000000ffff (prio 0, i/o): no-such-qemu-bus\n    0000000000001000-0000000000004fff (prio -1000, i/o): big-unimp\n    0000000000002000-0000000000002fff (prio -1000, i/o): small-unimp\n\n';
  assert.equal(
    formatFlat(rebuild(parseMtreeText(tree)).system),
    'FlatView #0\n AS "memory", root: no-such-qemu-bus\n Root memory region: no-such-qemu-bus\n  0000000000001000-0000000000001fff (prio -1000, i/o): big-unimp\n  0000000000002000-0000000000002fff (prio -1000, i/o): small-unimp\n  0000000000003000-0000000000004fff (prio -1000, i/o): big-unimp @0000000000002000\n\n',
  );
});

test('from QEMU 11 text alone, an Elroy PCI host (`elroyN`, named by its qdev id) terminates under its registers', () => {
  // hw/pci-host/astro.c: elroy_pcihost_realize makes the Elroy's own region with
  // memory_region_init_io under the name dev->id, which elroy_init sets to "elroy%d", and puts the
  // two config registers over it at 0x40 and 0x48. So the Elroy terminates: its gaps are its own.
  const tree = [
    'address-space: memory',
    '  0000000000000000-ffffffffffffffff (prio 0, container): system',
    '    00000000fed00000-00000000fed3ffff (prio 0, i/o): astro',
    '      00000000fed30000-00000000fed31fff (prio 0, i/o): elroy0',
    '        00000000fed30040-00000000fed30047 (prio 0, i/o): pci-conf-idx',
    '        00000000fed30048-00000000fed3004f (prio 0, i/o): pci-conf-data',
    '',
    '',
  ].join('\n');
  // Without --qemu, a dump that prints `container` is from QEMU 11.0 or later: the newest table.
  const r = rebuild(parseMtreeText(tree));
  assert.equal(r.qemu, '11.0');
  assert.equal(
    formatFlat(r.system, { qemu: r.qemu }),
    [
      'FlatView #0',
      ' AS "memory", root: system',
      ' Root memory region: system',
      '  00000000fed00000-00000000fed2ffff (prio 0, i/o): astro',
      '  00000000fed30000-00000000fed3003f (prio 0, i/o): elroy0',
      '  00000000fed30040-00000000fed30047 (prio 0, i/o): pci-conf-idx',
      '  00000000fed30048-00000000fed3004f (prio 0, i/o): pci-conf-data',
      '  00000000fed30050-00000000fed31fff (prio 0, i/o): elroy0 @0000000000000050',
      '  00000000fed32000-00000000fed3ffff (prio 0, i/o): astro @0000000000032000',
      '',
      '',
    ].join('\n'),
  );
});

test('from the text alone, an i/o leaf filling a container the source names is no bus window', () => {
  // hw/dma/xlnx-zynq-devcfg.c xlnx_zynq_devcfg_init: `devcfg` is a container (memory_region_init)
  // holding the register block, an I/O region of its whole extent (register_init_block32). So the
  // block shows in the flat view; the bus-window guess (parent terminates, child is an empty bus)
  // is for parents whose kind the source does not give.
  const tree = [
    'address-space: memory',
    '  0000000000000000-ffffffffffffffff (prio 0, container): system',
    '    00000000f8007000-00000000f80070ff (prio 0, i/o): devcfg',
    '      00000000f8007000-00000000f80070ff (prio 0, i/o): xlnx.ps7-dev-cfg',
    '',
    '',
  ].join('\n');
  const r = rebuild(parseMtreeText(tree), undefined, { qemu: '11.1' });
  assert.equal(
    formatFlat(r.system, { qemu: r.qemu }),
    'FlatView #0\n AS "memory", root: system\n Root memory region: system\n  00000000f8007000-00000000f80070ff (prio 0, i/o): xlnx.ps7-dev-cfg\n\n',
  );
});

test('from the text alone, a device container holds its same-named register block, which terminates', () => {
  // hw/intc/xlnx-zynqmp-ipi.c xlnx_zynqmp_ipi_init: a container named after the device's type
  // (memory_region_init) holds the register block that hw/core/register.c register_init_block
  // makes, an I/O region named after the owner's type too, of the same extent. The block is what
  // renders; in QEMU 11's dialect it prints `i/o` (it is in a container) where the outer region,
  // the root of `ipi`, would print `container`. `usb_dwc3` (hw/usb/hcd-dwc3.c) holds its block
  // beside other registers.
  const tree = [
    'address-space: memory',
    '  0000000000000000-ffffffffffffffff (prio 0, container): system',
    '    00000000fe200000-00000000fe20ffff (prio 0, i/o): usb_dwc3',
    '      00000000fe20c100-00000000fe20c6ff (prio 0, i/o): usb_dwc3',
    '',
    'address-space: ipi',
    '  0000000000000000-000000000000001f (prio 0, container): xlnx.zynqmp_ipi',
    '    0000000000000000-000000000000001f (prio 0, i/o): xlnx.zynqmp_ipi',
    '',
    '',
  ].join('\n');
  const r = rebuild(parseMtreeText(tree), undefined, { qemu: '11.1' });
  assert.equal(
    formatFlat(r.system, { qemu: r.qemu }),
    [
      'FlatView #0',
      ' AS "memory", root: system',
      ' Root memory region: system',
      '  00000000fe20c100-00000000fe20c6ff (prio 0, i/o): usb_dwc3',
      '',
      'FlatView #1',
      ' AS "ipi", root: xlnx.zynqmp_ipi',
      ' Root memory region: xlnx.zynqmp_ipi',
      '  0000000000000000-000000000000001f (prio 0, i/o): xlnx.zynqmp_ipi',
      '',
      '',
    ].join('\n'),
  );
});

test('from QEMU 10.0 text alone, the CAN FD controller holds its own register block, named after its type', () => {
  // QEMU 10.0 hw/net/can/xlnx-versal-canfd.c: canfd_create_regarray makes the register block
  // itself, an I/O region named object_get_typename() of the device (`xlnx.versal-canfd`), and
  // canfd_init a container of that same name, which holds the block. The block renders.
  const tree = [
    'address-space: memory',
    '  0000000000000000-ffffffffffffffff (prio 0, i/o): system',
    '    00000000ff060000-00000000ff0652ff (prio 0, i/o): xlnx.versal-canfd',
    '      00000000ff060000-00000000ff0652ff (prio 0, i/o): xlnx.versal-canfd',
    '',
    '',
  ].join('\n');
  const r = rebuild(parseMtreeText(tree), undefined, { qemu: '10.0' });
  assert.equal(
    formatFlat(r.system, { qemu: r.qemu }),
    'FlatView #0\n AS "memory", root: system\n Root memory region: system\n  00000000ff060000-00000000ff0652ff (prio 0, i/o): xlnx.versal-canfd\n\n',
  );
});

test('from the text alone, a name QEMU gives both kinds is settled by its size where the sizes differ', () => {
  // `isa-io` is an I/O region of 0x800 bytes in hw/hppa/machine.c hppa_isa_bus (memory_region_init_io
  // with ops that ignore accesses) and a 64 KiB container in hw/mips/jazz.c and hw/ppc/pnv_lpc.c.
  // The HP PA-RISC one terminates around the ISA devices mapped into it.
  const tree = [
    'address-space: memory',
    '  0000000000000000-ffffffffffffffff (prio 0, container): system',
    '    00000000f9000000-00000000f90007ff (prio 0, i/o): isa-io',
    '      00000000f9000020-00000000f9000021 (prio 0, i/o): pic',
    '',
    '',
  ].join('\n');
  const r = rebuild(parseMtreeText(tree), undefined, { qemu: '11.1' });
  assert.equal(
    formatFlat(r.system, { qemu: r.qemu }),
    [
      'FlatView #0',
      ' AS "memory", root: system',
      ' Root memory region: system',
      '  00000000f9000000-00000000f900001f (prio 0, i/o): isa-io',
      '  00000000f9000020-00000000f9000021 (prio 0, i/o): pic',
      '  00000000f9000022-00000000f90007ff (prio 0, i/o): isa-io @0000000000000022',
      '',
      '',
    ].join('\n'),
  );
});

test('from the text alone, a literal name that a format of the other kind also prints is settled by its size', () => {
  // `pci0-io` is a 32 MiB I/O region in hw/alpha/typhoon.c and, printed from "pci%d-io", a 64 KiB
  // container in hw/pci-host/mv64361.c mv64361_pcihost_realize (Pegasos II). The empty container
  // seen through the window alias renders nothing.
  const tree = [
    'address-space: memory',
    '  0000000000000000-ffffffffffffffff (prio 0, i/o): system',
    '    0000000000000000-0000000000000fff (prio 0, ram): ram',
    '    00000000f8000000-00000000f8ffffff (prio 0, i/o): alias pci0-io-win @pci0-io 0000000000000000-0000000000ffffff',
    '',
    'memory-region: pci0-io',
    '  0000000000000000-000000000000ffff (prio 0, i/o): pci0-io',
    '',
    '',
  ].join('\n');
  const r = rebuild(parseMtreeText(tree), undefined, { qemu: '10.0' });
  assert.equal(
    formatFlat(r.system, { qemu: r.qemu }),
    'FlatView #0\n AS "memory", root: system\n Root memory region: system\n  0000000000000000-0000000000000fff (prio 0, ram): ram\n\n',
  );
});

test('from the text alone, a bridge window alias goes to a same-named bus container without such a window yet', () => {
  // hw/pci/pci_bridge.c pci_bridge_region_init: each bridge maps one `pci_bridge_mem` and one
  // `pci_bridge_pref_mem` alias of its own bus container `pci_bridge_pci` into its parent bus.
  // Bridge C sits behind bridge P: P's container holds C's memory window. In `system`, P's pref
  // window queues P's container (only it has something there); P's memory window then fits both
  // queued containers, but C's already has its `pci_bridge_mem`, so it is P's.
  const tree = [
    'address-space: a',
    '  0000000000000000-ffffffffffffffff (prio 0, i/o): pci_bridge_pci',
    '    0000000000400000-000000000041ffff (prio 1, i/o): dev-c',
    '',
    'address-space: b',
    '  0000000000000000-ffffffffffffffff (prio 0, i/o): pci_bridge_pci',
    '    0000000000200000-00000000002000ff (prio 1, i/o): dev-pref',
    '    0000000000400000-00000000005fffff (prio 1, i/o): alias pci_bridge_mem @pci_bridge_pci 0000000000400000-00000000005fffff',
    '    0000000000600000-00000000006000ff (prio 1, i/o): dev-p',
    '',
    'address-space: memory',
    '  0000000000000000-ffffffffffffffff (prio 0, i/o): system',
    '    0000000000200000-00000000003fffff (prio 1, i/o): alias pci_bridge_pref_mem @pci_bridge_pci 0000000000200000-00000000003fffff',
    '    0000000000400000-00000000007fffff (prio 1, i/o): alias pci_bridge_mem @pci_bridge_pci 0000000000400000-00000000007fffff',
    '',
    'memory-region: pci_bridge_pci',
    '  0000000000000000-ffffffffffffffff (prio 0, i/o): pci_bridge_pci',
    '    0000000000400000-000000000041ffff (prio 1, i/o): dev-c',
    '',
    'memory-region: pci_bridge_pci',
    '  0000000000000000-ffffffffffffffff (prio 0, i/o): pci_bridge_pci',
    '    0000000000200000-00000000002000ff (prio 1, i/o): dev-pref',
    '    0000000000400000-00000000005fffff (prio 1, i/o): alias pci_bridge_mem @pci_bridge_pci 0000000000400000-00000000005fffff',
    '    0000000000600000-00000000006000ff (prio 1, i/o): dev-p',
    '',
    '',
  ].join('\n');
  const flat = formatFlat(rebuild(parseMtreeText(tree)).system);
  const view = flat.split('\n\n').find((v) => v.includes('AS "memory"'));
  assert.equal(
    view,
    [
      'FlatView #2',
      ' AS "memory", root: system',
      ' Root memory region: system',
      '  0000000000200000-00000000002000ff (prio 1, i/o): dev-pref',
      '  0000000000400000-000000000041ffff (prio 1, i/o): dev-c',
      '  0000000000600000-00000000006000ff (prio 1, i/o): dev-p',
    ].join('\n'),
  );
});

test('from the text alone, of two overlapping unimplemented devices the one its board creates later wins', () => {
  // hw/arm/fsl-imx8mp.c fsl_imx8mp_realize creates its unimplemented devices in a loop over
  // fsl_imx8mp_memmap, in the order of its index enum (include/hw/arm/fsl-imx8mp.h), where
  // FSL_IMX8MP_VPU_VC8000E_ENCODER comes after FSL_IMX8MP_VPU_BLK_CTRL: the encoder is newer, so it
  // is listed first and covers the control block where they overlap, though it starts lower.
  const tree = [
    'address-space: memory',
    '  0000000000000000-ffffffffffffffff (prio 0, container): system',
    '    0000000038320000-000000003851ffff (prio -1000, i/o): vpu_vc8000e_encoder',
    '    0000000038330000-000000003852ffff (prio -1000, i/o): vpu_blk_ctrl',
    '',
    '',
  ].join('\n');
  const r = rebuild(parseMtreeText(tree), undefined, { qemu: '11.1' });
  assert.equal(
    formatFlat(r.system, { qemu: r.qemu }),
    [
      'FlatView #0',
      ' AS "memory", root: system',
      ' Root memory region: system',
      '  0000000038320000-000000003851ffff (prio -1000, i/o): vpu_vc8000e_encoder',
      '  0000000038520000-000000003852ffff (prio -1000, i/o): vpu_blk_ctrl @00000000001f0000',
      '',
      '',
    ].join('\n'),
  );
});

test('QEMU 11 text: `container` means "in no container", and a top-level `i/o` keeps a hidden parent', () => {
  // Hand-made in QEMU 11's dialect (memory_region_type: `container` when mr->container is NULL):
  // the root `sys` and the I/O root `io` (an I/O region: it terminates, its gaps show in the flat
  // view) print `container`; `win`, a pure container mapped in `sys`, prints `i/o`; `dev`, the
  // target of an alias, is mapped in some container no section shows, so it prints `i/o`.
  const tree = [
    'address-space: memory',
    '  0000000000000000-000000000000ffff (prio 0, container): sys',
    '    0000000000001000-0000000000001fff (prio 0, i/o): win',
    '      0000000000001000-00000000000010ff (prio 0, i/o): alias dev-window @dev 0000000000000000-00000000000000ff',
    '',
    'address-space: I/O',
    '  0000000000000000-00000000000000ff (prio 0, container): io',
    '    0000000000000010-000000000000001f (prio 0, i/o): port',
    '',
    'memory-region: dev',
    '  0000000000000000-00000000000000ff (prio 0, i/o): dev',
    '',
    '',
  ].join('\n');
  const flat = [
    'FlatView #0',
    ' AS "memory", root: sys',
    ' Root memory region: sys',
    '  0000000000001000-00000000000010ff (prio 0, i/o): dev',
    '',
    'FlatView #1',
    ' AS "I/O", root: io',
    ' Root memory region: io',
    '  0000000000000000-000000000000000f (prio 0, container): io',
    '  0000000000000010-000000000000001f (prio 0, i/o): port',
    '  0000000000000020-00000000000000ff (prio 0, container): io @0000000000000020',
    '',
    '',
  ].join('\n');
  const r = rebuild(parseMtreeText(tree), parseFlatText(flat));
  assert.equal(r.qemu, '11.0');
  assert.equal(r.mismatch, undefined);
  assert.equal(formatFlat(r.system, { qemu: r.qemu }), flat);
  assert.equal(formatMtree(r.system, { qemu: r.qemu }), tree);
  // The same regions in 10.0's dialect: every non-RAM type is `i/o`.
  assert.equal(formatMtree(r.system, { qemu: '10.0' }), tree.replace(/container\)/g, 'i/o)'));
});
