/**
 * @module migration/test-support/machine
 * A small machine for migration tests and the child processes they spawn: a few RAM blocks with
 * known contents, an address space, a guest workload that keeps writing pages, and block hashes.
 */

import { createHash } from 'node:crypto';
import type { AddressSpace } from '../../core/address-space.js';
import type { MemoryRegion } from '../../core/region.js';
import { MemorySystem } from '../../core/system.js';
import type { GuestControl } from '../precopy.js';

const MiB = 1024 * 1024;

/** How to build the machine; both ends of a migration build it from the same spec. */
export interface MachineSpec {
  /** Guest RAM size in MiB (default 16). */
  ramMiB?: number;
  /** Leave out the vram block (a destination that does not match). */
  noVram?: boolean;
  /** Give the bios block this many KiB instead of 256 (a length mismatch). */
  biosKiB?: number;
}

export interface TestMachine {
  ms: MemorySystem;
  as: AddressSpace;
  ram: MemoryRegion;
  vram: MemoryRegion | null;
  bios: MemoryRegion;
}

/** Builds the machine; with `fill`, writes recognisable non-zero data into part of RAM and the BIOS. */
export function buildMachine(spec: MachineSpec = {}, fill = false): TestMachine {
  const ms = new MemorySystem();
  const root = ms.container('system', 2n ** 32n);
  const ramSize = (spec.ramMiB ?? 16) * MiB;
  const ram = ms.ram('pc.ram', ramSize);
  const bios = ms.rom('pc.bios', (spec.biosKiB ?? 256) * 1024);
  const vram = spec.noVram ? null : ms.ram('vga.vram', 4 * MiB, { owner: { devicePath: '0000:00:02.0' } });
  root.addSubregion(0, ram);
  root.addSubregion(0xfffc0000, bios);
  if (vram) root.addSubregion(0xe0000000, vram);
  const as = ms.addressSpace(root, 'memory');
  if (fill) {
    // The first quarter of RAM holds data, the rest stays zero (sent as ZERO records).
    const page = new Uint8Array(4096);
    for (let off = 0; off < ramSize / 4; off += 4096) {
      for (let i = 0; i < 4096; i += 4) new DataView(page.buffer).setUint32(i, (off + i) * 2654435761);
      ms.writeRam(ram, off, page);
    }
    const b = new Uint8Array(bios.ramBlock!.usedLength);
    for (let i = 0; i < b.length; i++) b[i] = (i * 7 + 3) & 0xff;
    ms.writeRam(bios, 0, b);
  }
  return { ms, as, ram, vram, bios };
}

/** SHA-256 of every RAM block's used bytes, by id. */
export function blockHashes(ms: MemorySystem): Record<string, string> {
  const out: Record<string, string> = {};
  const buf = new Uint8Array(1 << 20);
  for (const b of ms.ramList.blocks) {
    const h = createHash('sha256');
    for (let off = 0; off < b.usedLength; off += buf.length) {
      const n = Math.min(buf.length, b.usedLength - off);
      b.read(off, buf, 0, n);
      h.update(buf.subarray(0, n));
    }
    out[b.idstr] = h.digest('hex');
  }
  return out;
}

/**
 * A guest that writes `pagesPerTick` pseudo-random pages of the first `span` bytes of RAM through
 * the address space on every event-loop turn, until stopped.
 */
export class Workload implements GuestControl {
  running = false;
  writes = 0;
  private seed = 12345;
  private timer: ReturnType<typeof setImmediate> | null = null;

  constructor(
    private readonly m: TestMachine,
    private readonly span = 2 * MiB,
    private readonly pagesPerTick = 4,
  ) {}

  private tick = () => {
    if (!this.running) return;
    for (let i = 0; i < this.pagesPerTick; i++) {
      // Exact 32-bit arithmetic: as a double the product loses its low bits and the sequence cycles.
      this.seed = (Math.imul(this.seed, 1103515245) + 12345) >>> 0;
      const page = (this.seed >>> 8) % (this.span / 4096);
      this.m.as.stlLe(page * 4096 + ((this.seed & 0x3ff) << 2), this.seed | 1);
      this.writes++;
    }
    this.timer = setImmediate(this.tick);
  };

  start(): void {
    if (this.running) return;
    this.running = true;
    this.timer = setImmediate(this.tick);
  }

  stop(): void {
    this.running = false;
    if (this.timer) clearImmediate(this.timer);
    this.timer = null;
  }

  resume(): void {
    this.start();
  }
}
