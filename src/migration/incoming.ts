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
  MEMTREE_RECOVER,
  MEMTREE_SWITCHOVER_GO,
  MIG_CMD_MEMTREE_CAPS,
  MIG_CMD_OPEN_RETURN_PATH,
  MIG_CMD_PING,
  MIG_CMD_POSTCOPY_ADVISE,
  MIG_CMD_POSTCOPY_LISTEN,
  MIG_CMD_POSTCOPY_RAM_DISCARD,
  MIG_CMD_POSTCOPY_RUN,
  newDecodeState,
  QEMU_VM_VMDESCRIPTION,
  type StreamSummary,
  TARGET_PAGE_SIZE,
} from './qemu-stream.js';
import { RamLoader } from './ram-load.js';
import { RECV_BITMAP_WORDS, ReturnPathWriter } from './return-path.js';

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
  /**
   * Postcopy recovery (QEMU `migrate-recover`): when the connection fails after LISTEN, the
   * destination pauses (its guest's accesses to missing pages wait) and takes the source's next
   * connection from this function, then goes on where the stream broke. Without it such a failure
   * ends the incoming migration.
   */
  recover?: () => Promise<Connection>;
  /** Called when a paused postcopy migration goes on over the connection `recover` gave. */
  recovered?: () => void;
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
  /** Postcopy recoveries (reconnections after the connection failed). */
  recoveries: number;
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
    private rp: ReturnPathWriter,
    private flush: () => Promise<void>,
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

  /** @internal postcopy recovery: requests go to the new connection. */
  rebind(rp: ReturnPathWriter, flush: () => Promise<void>): void {
    this.rp = rp;
    this.flush = flush;
  }

  /** @internal postcopy recovery: asks again for every page a guest access still waits for. */
  resendRequests(): void {
    for (const k of this.waiters.keys()) {
      const i = k.indexOf('\0');
      this.rp.requestPages(k.slice(0, i), Number(k.slice(i + 1)), TARGET_PAGE_SIZE);
    }
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
  let w = new ByteWriter(conn.output, 64 * 1024);
  let rp = new ReturnPathWriter(w);
  const loader = new RamLoader(ms);
  let postcopy: PostcopyPages | null = null;
  let started = false;
  let listening = false;
  let recoveries = 0;
  let guestRun: Promise<void> | null = null;
  let lastData = Date.now();
  // Bytes arriving are the source's progress (the postcopy watchdog below).
  const tracked = (input: AsyncIterable<Uint8Array>): AsyncIterable<Uint8Array> => ({
    async *[Symbol.asyncIterator]() {
      for await (const c of input) {
        lastData = Date.now();
        yield c;
      }
    },
  });
  let reader = new ByteReader(tracked(conn.input));
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
      } else if (cmd === MIG_CMD_POSTCOPY_LISTEN) {
        listening = true;
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
  const limit = options.timeoutMs ?? 10_000;
  // After LISTEN the guest may run and wait for pages: a source that sends nothing for `limit`
  // counts as a broken connection (and pauses, or fails without recovery).
  const watchdog = setInterval(
    () => {
      if (listening && Date.now() - lastData > limit) {
        lastData = Date.now();
        conn.abort?.();
      }
    },
    Math.max(10, Math.min(1000, limit / 4)),
  );
  (watchdog as { unref?: () => void }).unref?.();
  const st = newDecodeState();
  let nothingToRecover: MigrationError | null = null;
  try {
    if (await reader.ensure(4)) {
      const b = reader.peekBytes(4);
      if (((b[0]! << 24) | (b[1]! << 16) | (b[2]! << 8) | b[3]!) >>> 0 === MEMTREE_RECOVER) {
        // A source recovering a postcopy migration this destination never listened for: say so,
        // and the source knows no guest of this migration runs here.
        reader.u32();
        rp.resumeAck('none');
        await w.flush();
        nothingToRecover = new MigrationError(
          'state',
          'a postcopy recovery arrived, but no migration is paused here',
        );
        throw nothingToRecover;
      }
    }
    let summary: StreamSummary;
    for (;;) {
      try {
        summary = await decodeStream(reader, handler, {}, st);
        break;
      } catch (e) {
        const recoverable =
          e instanceof MigrationError && ['connection', 'truncated', 'timeout'].includes(e.failure);
        if (!listening || !options.recover || aborted || !recoverable) throw e;
        // Postcopy paused (QEMU postcopy_pause_incoming): wait for the source to come back.
        try {
          conn.abort?.();
        } catch {
          // already gone
        }
        conn = await options.recover();
        if (aborted) throw aborted;
        lastData = Date.now();
        w = new ByteWriter(conn.output, 64 * 1024);
        rp = new ReturnPathWriter(w);
        reader = new ByteReader(tracked(conn.input));
        (postcopy as PostcopyPages | null)?.rebind(rp, () => w.flush());
        await reader.need(4, 'the recovery header');
        const magic = reader.u32();
        if (magic !== MEMTREE_RECOVER) {
          throw new MigrationError(
            'corrupt',
            `0x${magic.toString(16)} instead of the postcopy recovery header`,
          );
        }
        // Tell the source what arrived (the rest is due again) and whether the guest runs here.
        for (const b of st.summary.blocks) {
          const bm = loader.received.get(b.id);
          if (!bm) continue;
          const words = Math.ceil(b.length / TARGET_PAGE_SIZE / 32);
          for (let k = 0; k < words; k += RECV_BITMAP_WORDS) {
            rp.recvBitmap(b.id, k, bm.words.subarray(k, Math.min(words, k + RECV_BITMAP_WORDS)));
          }
        }
        rp.resumeAck(started ? 'running' : 'listening');
        (postcopy as PostcopyPages | null)?.resendRequests();
        await w.flush();
        recoveries++;
        options.recovered?.();
      }
    }
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
    // QEMU's JSON description after EOF (precopy): read past it, as qemu_loadvm_state does. With
    // the hand-over more bytes surely follow; without it only what already arrived is looked at,
    // so a source that sends none (a machine with suppress-vmdesc) is not waited for.
    const confirm = !started && (summary.extensions & MEMTREE_CAP_CONFIRM_SWITCHOVER) !== 0;
    if (
      !started &&
      (confirm ? (await withTimeout(reader.ensure(1), limit)) === true : reader.available > 0)
    ) {
      if (reader.peekU8() === QEMU_VM_VMDESCRIPTION) {
        reader.u8();
        await reader.need(4, 'the device description');
        const n = reader.u32();
        if (n > 16 << 20) throw new MigrationError('corrupt', `device description of ${n} bytes`);
        await reader.need(n, 'the device description');
        reader.skip(n);
      }
    }
    if (confirm) {
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
      recoveries,
    };
  } catch (e) {
    const err =
      aborted ??
      (e instanceof MigrationError
        ? e
        : new MigrationError('connection', `incoming migration failed: ${(e as Error).message}`));
    try {
      // The answer to a recovery attempt was already given: no error to add.
      if (err === nothingToRecover) throw err;
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
    clearInterval(watchdog);
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
