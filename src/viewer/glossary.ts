/**
 * @module viewer/glossary
 * One-line explanations of the region names a newcomer meets in a PC memory map (and a few common
 * device ones), shown beside lookups, selections and the map's tooltip, so that the page explains
 * itself without the QEMU source at hand.
 */

const EXACT: Record<string, string> = {
  system: 'the root of the CPU-visible physical address space: every memory and MMIO region hangs below it',
  'pc.ram': "the guest's RAM",
  'ram-below-4g': 'window onto pc.ram: the RAM below the 32-bit PCI hole',
  'ram-above-4g': 'window onto the rest of pc.ram, mapped from 4 GiB because the PCI hole sits below 4 GiB',
  ram: "the guest's RAM",
  'pc.bios': 'the firmware (SeaBIOS) ROM, just below 4 GiB: the CPU starts executing at 0xfffffff0',
  'isa-bios': 'the last 128 KiB of the BIOS mirrored below 1 MiB, where legacy software expects it',
  'pc.rom': 'option-ROM area 0xc0000-0xdffff (e.g. the VGA BIOS)',
  pci: 'the PCI memory space: device BARs. Priority -1, so RAM wins wherever both exist',
  'pci-hole': 'the 32-bit PCI hole',
  'smram-region':
    'the legacy VGA window 0xa0000-0xbffff, sent to PCI; the chipset disables it when SMRAM is opened',
  smram: 'System Management RAM, visible only to the CPU in system management mode',
  'smram-low': 'SMRAM at 0xa0000 (system management mode only)',
  'pam-ram': 'PAM (chipset) setting: this segment of 0xc0000-0xfffff reads and writes RAM',
  'pam-rom': 'PAM (chipset) setting: this segment reads RAM and drops writes (firmware shadowed in RAM)',
  'pam-pci':
    'PAM (chipset) setting: onto pci, this segment shows the ROMs (the reset state); onto RAM, the write-only setting',
  ioapic: 'I/O APIC: routes device interrupts to CPUs',
  hpet: 'High Precision Event Timer',
  'apic-msi': 'where PCI devices write to raise MSI interrupts (the local APIC range)',
  kvmvapic: 'virtual APIC helper ports',
  'vga-lowmem': 'legacy VGA frame buffer window at 0xa0000',
  'vga.vram': 'VGA video memory (a PCI BAR)',
  'vga.mmio': 'VGA registers (a PCI BAR)',
  io: 'the x86 I/O port space; it answers itself in the gaps between devices',
  'dma-chan': 'ISA DMA controller channels',
  'dma-cont': 'ISA DMA controller',
  'dma-page': 'ISA DMA page registers',
  pic: '8259 interrupt controller',
  pit: '8254 programmable interval timer',
  'i8042-data': 'PS/2 keyboard controller (data port 0x60)',
  'i8042-cmd': 'PS/2 keyboard controller (command port 0x64)',
  rtc: 'MC146818 real-time clock / CMOS',
  'rtc-index': 'real-time clock / CMOS index port',
  pcspk: 'PC speaker',
  ioport80: 'port 0x80: POST code / I/O delay port',
  port92: 'port 0x92: fast A20 gate and reset',
  fwcfg: "QEMU's firmware configuration interface",
  'fwcfg.dma': "QEMU's firmware configuration DMA interface",
  'pci-conf-idx': 'PCI configuration address port (0xcf8)',
  'pci-conf-data': 'PCI configuration data port (0xcfc)',
  'piix3-reset-control': 'reset control register (0xcf9)',
  elcr: 'edge/level control of the 8259 interrupt controllers',
  'apm-io': 'Advanced Power Management control ports',
  ide: 'IDE disk controller',
  fdc: 'floppy disk controller',
  serial: '16550 UART (COM port)',
  'msix-table': 'MSI-X vector table of a PCI device',
  'msix-pba': 'MSI-X pending-bit array of a PCI device',
  'bus master container': "a PCI device's view of memory for DMA",
  'bus master': 'alias that enables DMA by a PCI device (disabled until the driver turns bus mastering on)',
  'device-memory': 'hotplug area for memory devices (DIMMs, NVDIMMs)',
};

const PATTERNS: [RegExp, string][] = [
  [/\.rom$/, 'option ROM of a PCI device (a ROM BAR)'],
  [/^virtio-pci/, 'virtio device registers (a PCI BAR)'],
  [/-mmio$/, 'device registers (memory-mapped I/O)'],
  [/^acpi/, 'ACPI power-management registers'],
  [/^vtd-/, 'Intel IOMMU (VT-d) region'],
];

/** A short explanation of a region called `name`, or null when there is none. */
export function explainName(name: string | null): string | null {
  if (name === null) return null;
  const hit = EXACT[name];
  if (hit) return hit;
  for (const [re, text] of PATTERNS) if (re.test(name)) return text;
  return null;
}
