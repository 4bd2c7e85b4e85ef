/**
 * @module cli/commands/run-serve
 * `memtree run ... --serve [HOST:]PORT`: the viewer of `memtree serve`, showing the machine that
 * runs in this process. Each request of `/api/live` prints the machine's `info mtree -D` and
 * `info mtree -f` as they are now, and lists, per RAM block, the pages written since the previous
 * request.
 *
 * The dirty pages come from the VGA dirty client, which this machine has no other use for: every
 * RAM block's region gets `setLog(true, DIRTY_MEMORY_VGA)` and each request takes
 * `snapshotAndClearDirty` of it, as QEMU's display devices do (`memory_region_snapshot_and_clear_dirty`
 * in hw/display/*). Live migration uses the MIGRATION client, whose bitmap this never touches, so
 * a migration and the viewer can run together.
 */

import { DIRTY_MEMORY_VGA, type MemoryRegion, type MemorySystem } from '../../core/index.js';
import type { RiscvVirtMachine } from '../../machines/riscv/virt.js';
import { formatFlat, formatMtree } from '../../mtree/print.js';
import { UsageError } from '../command.js';
import { type LiveReading, startViewerServer, type ViewerServer } from './serve.js';

/** Target page size of the riscv64 machine (QEMU TARGET_PAGE_BITS 12): the dirty granularity. */
export const LIVE_PAGE_SIZE = 4096;
/** At most this many runs are listed per region; the page count is always exact. */
export const MAX_RUNS = 4096;

/** The dirty pages of one RAM block's region since the previous reading. */
export interface DirtyRegionReading {
  /** The region's name, as `info mtree` prints it. */
  readonly region: string;
  /** Region size in bytes, as a hex string (`0x4000000`). */
  readonly size: string;
  /** Number of dirty pages. */
  readonly pages: number;
  /** Dirty stretches as `[first, end)` byte offsets in the region, hex strings, in order. */
  readonly runs: ReadonlyArray<readonly [string, string]>;
  /** More runs than {@link MAX_RUNS} were dirty; the list stops there. */
  readonly truncated: boolean;
}

/** What `GET /api/live` returns for a running riscv machine. */
export interface RunLiveReading extends LiveReading {
  readonly pageSize: number;
  /** Instructions retired by all harts since the machine was built. */
  readonly instructions: number;
  /** Virtual time of the machine in ns. */
  readonly clockNs: number;
  readonly dirty: readonly DirtyRegionReading[];
}

const hex = (n: number) => `0x${n.toString(16)}`;

/**
 * Takes and clears the VGA dirty bits of all of `mr` (whose logging must be on) and returns them as
 * runs of region offsets.
 */
export function takeDirtyRuns(ms: MemorySystem, mr: MemoryRegion): DirtyRegionReading {
  const size = Number(mr.size);
  const block = mr.ramBlock!;
  // The snapshot is widened to 64 pages, but QEMU's find_ram_offset starts every block on a
  // 64-page boundary of ram_addr space, so the widening never clears another block's bits.
  const snap = ms.snapshotAndClearDirty(mr, 0, size, DIRTY_MEMORY_VGA);
  const bits = snap.bits;
  const pages = Math.ceil(size / LIVE_PAGE_SIZE);
  // Bit of the region's first page in the snapshot (blocks start on page boundaries).
  const first = (block.offset - snap.start) / LIVE_PAGE_SIZE;
  const runs: Array<readonly [string, string]> = [];
  let count = 0;
  let runStart = -1;
  let truncated = false;
  const close = (end: number) => {
    if (runStart < 0) return;
    if (runs.length < MAX_RUNS) runs.push([hex(runStart * LIVE_PAGE_SIZE), hex(end * LIVE_PAGE_SIZE)]);
    else truncated = true;
    runStart = -1;
  };
  for (let p = 0; p < pages; p++) {
    const b = first + p;
    const word = bits[Math.floor(b / 32)]!;
    // A clean word: skip its pages at once (the usual case for a big, idle RAM).
    if (word === 0 && b % 32 === 0 && p + 32 <= pages) {
      close(p);
      p += 31;
      continue;
    }
    if ((word >>> (b % 32)) & 1) {
      count++;
      if (runStart < 0) runStart = p;
    } else close(p);
  }
  close(pages);
  return { region: mr.name ?? '', size: hex(size), pages: count, runs, truncated };
}

/** Parses `--serve`'s `[HOST:]PORT` (`8080`, `127.0.0.1:0`, `[::1]:8080`); HOST defaults to loopback. */
export function parseServeSpec(spec: string): { host: string; port: number } {
  const m = /^(?:(\[[^\]]*\]|[^:[\]]*):)?(\d{1,5})$/.exec(spec);
  const port = m ? Number(m[2]) : Number.NaN;
  if (!m || port > 65535) {
    throw new UsageError(`--serve wants [HOST:]PORT (e.g. 8080, 127.0.0.1:0), not '${spec}'`);
  }
  const host = (m[1] ?? '').replace(/^\[|\]$/g, '');
  return { host: host || '127.0.0.1', port };
}

/** A viewer attached to a running machine. */
export interface AttachedViewer {
  readonly url: string;
  /** Stops the server and turns the machine's VGA logging back off. */
  close(): Promise<void>;
}

/**
 * Starts the viewer for `m` on `spec` (see {@link parseServeSpec}). Logging is switched on only once
 * the server listens, so a failure leaves the machine as it was.
 */
export async function attachViewer(
  m: RiscvVirtMachine,
  spec: string,
  options: { root?: string } = {},
): Promise<AttachedViewer> {
  const { host, port } = parseServeSpec(spec);
  const ms = m.ms;
  const logged: MemoryRegion[] = [];
  const label = `riscv-virt, ${m.ramSize / 2 ** 20} MiB, ${m.smp} hart${m.smp === 1 ? '' : 's'} (memtree run, live)`;
  const server: ViewerServer = await startViewerServer({
    dumps: [],
    port,
    host,
    root: options.root,
    live: {
      label,
      read: (): RunLiveReading => ({
        label,
        mtree: formatMtree(ms, { disabled: true }),
        flat: formatFlat(ms),
        pageSize: LIVE_PAGE_SIZE,
        instructions: m.instructionCount,
        clockNs: m.clock.ns,
        dirty: logged.map((mr) => takeDirtyRuns(ms, mr)),
      }),
    },
  });
  for (const b of ms.ramList.blocks) {
    const mr = b.mr as MemoryRegion | null;
    if (!mr) continue;
    mr.setLog(true, DIRTY_MEMORY_VGA);
    logged.push(mr);
  }
  return {
    url: server.url,
    close: async () => {
      await server.close();
      for (const mr of logged.splice(0)) mr.setLog(false, DIRTY_MEMORY_VGA);
    },
  };
}
