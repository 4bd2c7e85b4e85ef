/**
 * @module migration/incoming
 * The destination of a live migration over any duplex byte stream: it reads QEMU's stream format
 * (see qemu-stream.ts), checks the source's RAM block list against its own before it takes any page,
 * loads pages, answers PINGs, and tells the source on the return path whether the load succeeded.
 * The guest is started (the `start` callback) only once memory is complete — or, in postcopy, when
 * the source says RUN, after which accesses to pages not received yet must go through
 * {@link PostcopyPages.ensure}, which requests them from the source.
 */

import type { MemorySystem } from '../core/system.js';
import { ByteReader, type ByteSink, ByteWriter } from './bytes.js';
import { MigrationError } from './errors.js';
import {
  decodeStream,
  MEMTREE_CAP_CONFIRM_SWITCHOVER,
  MEMTREE_SWITCHOVER_GO,
  MIG_CMD_MEMTREE_CAPS,
  MIG_CMD_OPEN_RETURN_PATH,
  MIG_CMD_PING,
  MIG_CMD_POSTCOPY_ADVISE,
  MIG_CMD_POSTCOPY_LISTEN,
  MIG_CMD_POSTCOPY_RAM_DISCARD,
  MIG_CMD_POSTCOPY_RUN,
  TARGET_PAGE_SIZE,
} from './qemu-stream.js';
import { RamLoader } from './ram-load.js';
import { ReturnPathWriter } from './return-path.js';

/** A duplex byte connection: chunks in, a sink out, and a way to close it. */
export interface Connection {
  readonly input: AsyncIterable<Uint8Array>;
  readonly output: ByteSink;
  /** Closes the connection (after the last output was written). */
  close(): void | Promise<void>;
  /**
   * Drops the connection at once, without flushing (a cancel or a timeout): pending reads end and
   * pending writes fail. Optional; without it a stalled peer can only be left by closing.
   */
  abort?(): void;
}

/** Options of {@link migrateIncoming}. */
export interface IncomingOptions {
  /**
   * Starts the guest; called once, only when memory is complete and (with a memtree source) the
   * source confirmed the switch-over, or at postcopy RUN.
   */
  start?: (pages: PostcopyPages | null) => void | Promise<void>;
  /** Longest wait for the source's go-ahead once everything is loaded, in ms (default 10000). */
  timeoutMs?: number;
  /** Cancels the incoming migration when aborted (before the guest started). */
  signal?: AbortSignal;
  /**
   * Loads the source machine's `memtree-machine` section (harts, devices); called before
   * `start`. A throw refuses the migration. Without it such a section fails the load.
   */
  machineState?: (versionId: number, payload: Uint8Array) => void | Promise<void>;
}

/** What the destination received. */
export interface IncomingStats {
  machine: string;
  pages: number;
  zeroPages: number;
  bytes: number;
  /** Whether the source switched to postcopy. */
  postcopy: boolean;
  /** Pages the destination asked for after it started (postcopy). */
  requestedPages: number;
}

/**
 * Access to guest pages on a destination that runs before all pages arrived (postcopy). JavaScript
 * accesses to guest memory are synchronous and cannot fault, so guest code on the destination awaits
 * {@link ensure} for a range before touching it; missing pages are requested from the source and
 * served ahead of its background stream.
 */
export class PostcopyPages {
  private readonly waiters = new Map<string, Array<() => void>>();
  /** Pages requested from the source so far. */
  requested = 0;

  /** @internal */
  constructor(
    private readonly loader: RamLoader,
    private readonly rp: ReturnPathWriter,
    private readonly flush: () => Promise<void>,
  ) {
    loader.onPage = (id, offset) => {
      const k = `${id}\0${offset}`;
      const w = this.waiters.get(k);
      if (w) {
        this.waiters.delete(k);
        for (const f of w) f();
      }
    };
  }

  /** Whether the page holding `offset` of block `id` has arrived. */
  has(id: string, offset: number): boolean {
    return this.loader.isReceived(id, offset);
  }

  /** Pages of block `id` that have not arrived, as page offsets (at most `limit`). */
  missing(id: string, limit = Number.POSITIVE_INFINITY): number[] {
    const bm = this.loader.received.get(id);
    const b = this.loader.ms.ramList.byId(id);
    if (!bm || !b) return [];
    const out: number[] = [];
    for (let p = 0; p * TARGET_PAGE_SIZE < b.usedLength && out.length < limit; p++) {
      if (!bm.get(p)) out.push(p * TARGET_PAGE_SIZE);
    }
    return out;
  }

  /** Resolves once every page of `[offset, offset+length)` of block `id` is present. */
  async ensure(id: string, offset: number, length: number): Promise<void> {
    const first = Math.floor(offset / TARGET_PAGE_SIZE) * TARGET_PAGE_SIZE;
    const waits: Promise<void>[] = [];
    let runStart = -1;
    const sendRun = (end: number) => {
      if (runStart >= 0) {
        this.rp.requestPages(id, runStart, end - runStart);
        this.requested += (end - runStart) / TARGET_PAGE_SIZE;
        runStart = -1;
      }
    };
    let p = first;
    for (; p < offset + length; p += TARGET_PAGE_SIZE) {
      if (this.loader.isReceived(id, p)) {
        sendRun(p);
        continue;
      }
      if (runStart < 0) runStart = p;
      const k = `${id}\0${p}`;
      waits.push(
        new Promise((resolve) => {
          const list = this.waiters.get(k) ?? [];
          list.push(resolve);
          this.waiters.set(k, list);
        }),
      );
    }
    sendRun(p);
    if (waits.length === 0) return;
    await this.flush();
    await Promise.all(waits);
  }

  /** @internal the source discarded these pages: they will be sent again. */
  discard(id: string, start: number, length: number): void {
    const bm = this.loader.received.get(id);
    if (!bm) throw new MigrationError('unknown-block', `discard for unknown block ${id}`, { block: id });
    for (let p = start / TARGET_PAGE_SIZE; p < (start + length) / TARGET_PAGE_SIZE; p++) bm.clear(p);
  }
}

/**
 * Receives a migration on `conn` into `ms`. Resolves when the stream ended with EOF and memory is
 * complete (the guest was started); rejects with a {@link MigrationError} otherwise, after telling
 * the source why — and then the guest was not started (precopy).
 */
export async function migrateIncoming(
  ms: MemorySystem,
  conn: Connection,
  options: IncomingOptions = {},
): Promise<IncomingStats> {
  const w = new ByteWriter(conn.output, 64 * 1024);
  const rp = new ReturnPathWriter(w);
  const loader = new RamLoader(ms);
  let postcopy: PostcopyPages | null = null;
  let started = false;
  let guestRun: Promise<void> | null = null;
  const reader = new ByteReader(conn.input);
  const handler = {
    blockList: (list: Parameters<RamLoader['blockList']>[0]) => loader.blockList(list),
    page: (id: string, off: number, data: Uint8Array) => loader.page(id, off, data),
    zero: (id: string, off: number, fill: number) => loader.zero(id, off, fill),
    xbzrle: (id: string, off: number, enc: Uint8Array) => loader.xbzrle(id, off, enc),
    machineState: options.machineState,
    command: async (cmd: number, data: Uint8Array) => {
      if (cmd === MIG_CMD_PING) {
        rp.pong(data.length >= 4 ? new DataView(data.buffer, data.byteOffset).getUint32(0) : 0);
        await w.flush();
      } else if (cmd === MIG_CMD_POSTCOPY_RAM_DISCARD) {
        postcopy ??= new PostcopyPages(loader, rp, () => w.flush());
        applyDiscard(postcopy, data);
      } else if (cmd === MIG_CMD_POSTCOPY_RUN) {
        if (started) throw new MigrationError('corrupt', 'a second POSTCOPY_RUN');
        postcopy ??= new PostcopyPages(loader, rp, () => w.flush());
        // From now on pages may already be here (requested ones): keep the first copy.
        loader.skipReceived = true;
        started = true;
        // The guest runs while the stream goes on: its accesses wait for pages this loop loads.
        const r = options.start?.(postcopy);
        if (r) guestRun = Promise.resolve(r);
      } else if (
        cmd !== MIG_CMD_OPEN_RETURN_PATH &&
        cmd !== MIG_CMD_POSTCOPY_ADVISE &&
        cmd !== MIG_CMD_POSTCOPY_LISTEN &&
        cmd !== MIG_CMD_MEMTREE_CAPS
      ) {
        throw new MigrationError('corrupt', `migration command ${cmd} is not supported by memtree`);
      }
    },
  };
  const signal = options.signal;
  let aborted: MigrationError | null = null;
  const onAbort = () => {
    aborted = new MigrationError('cancelled', 'the incoming migration was cancelled');
    conn.abort?.();
  };
  if (signal?.aborted)
    throw new MigrationError('cancelled', 'the incoming migration was cancelled before it started');
  signal?.addEventListener('abort', onAbort, { once: true });
  try {
    const summary = await decodeStream(reader, handler);
    if (!summary.reachedEof || !summary.ramComplete) {
      throw new MigrationError('truncated', 'the stream ended before the RAM section was complete');
    }
    for (const b of summary.blocks) {
      const bm = loader.received.get(b.id)!;
      if (bm.count() < b.length / TARGET_PAGE_SIZE) {
        throw new MigrationError(
          'truncated',
          `block ${b.id}: only ${bm.count()} of ${b.length / TARGET_PAGE_SIZE} pages arrived`,
          {
            block: b.id,
          },
        );
      }
    }
    if (!started && summary.extensions & MEMTREE_CAP_CONFIRM_SWITCHOVER) {
      // The hand-over: say everything is here, then start only on the source's go-ahead. Without
      // it (the connection dropped, the source stalled or gave up) the guest never starts here,
      // and the source, which had not confirmed, runs on.
      rp.ready();
      await w.flush();
      const limit = options.timeoutMs ?? 10_000;
      const got = await withTimeout(reader.ensure(4), limit);
      if (got === 'timeout') {
        conn.abort?.();
        throw new MigrationError('timeout', `the source did not confirm the switch-over within ${limit} ms`);
      }
      if (!got)
        throw new MigrationError(
          'connection',
          'the connection ended before the source confirmed the switch-over',
        );
      const go = reader.u32();
      if (go !== MEMTREE_SWITCHOVER_GO) {
        throw new MigrationError(
          'corrupt',
          `0x${go.toString(16)} instead of the source's switch-over confirmation`,
        );
      }
    }
    if (!started) {
      started = true;
      await options.start?.(null);
    }
    rp.shut(0);
    await w.flush();
    await conn.close();
    if (guestRun) await guestRun;
    return {
      machine: summary.machine,
      pages: loader.pages,
      zeroPages: loader.zeroPages,
      bytes: summary.bytes,
      postcopy: (postcopy as PostcopyPages | null) !== null,
      requestedPages: (postcopy as PostcopyPages | null)?.requested ?? 0,
    };
  } catch (e) {
    const err =
      aborted ??
      (e instanceof MigrationError
        ? e
        : new MigrationError('connection', `incoming migration failed: ${(e as Error).message}`));
    try {
      rp.error(err);
      rp.shut(1);
      await w.flush();
      // Keep reading until the source, having read the reason, closes: closing first would make
      // its next write fail with a broken pipe that can destroy the reason before it is read.
      await reader.discardUntilEnd(3000);
    } catch {
      // The connection is gone; the source sees that by itself.
    }
    await conn.close();
    throw err;
  } finally {
    signal?.removeEventListener('abort', onAbort);
  }
}

/** `p`, or 'timeout' when it has not settled after `ms`. */
async function withTimeout<T>(p: Promise<T>, ms: number): Promise<T | 'timeout'> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    return await Promise.race([
      p,
      new Promise<'timeout'>((r) => {
        timer = setTimeout(() => r('timeout'), ms);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

/** QEMU `loadvm_postcopy_ram_handle_discard`: version 0, counted name, NUL, (start, length) pairs. */
function applyDiscard(pages: PostcopyPages, data: Uint8Array): void {
  const dv = new DataView(data.buffer, data.byteOffset, data.byteLength);
  if (data.length < 3 || data[0] !== 0) throw new MigrationError('corrupt', 'bad postcopy discard command');
  const n = data[1]!;
  const id = new TextDecoder().decode(data.subarray(2, 2 + n));
  let i = 3 + n;
  while (i + 16 <= data.length) {
    const start = dv.getUint32(i) * 2 ** 32 + dv.getUint32(i + 4);
    const length = dv.getUint32(i + 8) * 2 ** 32 + dv.getUint32(i + 12);
    pages.discard(id, start, length);
    i += 16;
  }
}
