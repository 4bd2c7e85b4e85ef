/**
 * @module migration/precopy
 * The source of a live migration (QEMU migration/ram.c, precopy and the source half of postcopy)
 * over any duplex byte stream. The guest keeps running and writing memory while pages are sent: the
 * MIGRATION dirty client is switched on, each pass sends the pages dirtied since the previous bitmap
 * sync, bandwidth is measured, and when the pages still dirty fit the downtime budget the guest is
 * stopped for a last pass. In postcopy mode the guest is stopped after the first complete pass and
 * the destination starts at once; pages it faults on are requested on the return path and sent ahead
 * of the background stream.
 *
 * A failure (the connection drops, the destination refuses) leaves the source running with its
 * memory untouched, dirty logging back as it was and the migrated blocks marked dirty for the
 * MIGRATION client, so that another attempt can start over.
 */

import type { RAMBlock } from '../core/ramblock.js';
import { DIRTY_MEMORY_MIGRATION } from '../core/region.js';
import type { MemorySystem } from '../core/system.js';
import { ByteReader, ByteWriter } from './bytes.js';
import { MigrationError } from './errors.js';
import type { Connection } from './incoming.js';
import {
  MACHINE_STATE_IDSTR,
  MEMTREE_CAP_CONFIRM_SWITCHOVER,
  MEMTREE_CAP_INTEGRITY,
  MEMTREE_RECOVER,
  MEMTREE_SWITCHOVER_GO,
  MIG_CMD_OPEN_RETURN_PATH,
  MIG_CMD_PING,
  MIG_CMD_POSTCOPY_ADVISE,
  MIG_CMD_POSTCOPY_LISTEN,
  MIG_CMD_POSTCOPY_RAM_DISCARD,
  MIG_CMD_POSTCOPY_RUN,
  QEMU_VM_SECTION_END,
  QEMU_VM_SECTION_FULL,
  QEMU_VM_SECTION_PART,
  QEMU_VM_SECTION_START,
  QemuStreamWriter,
  RAM_SECTION_VERSION,
  RamPageEncoder,
  TARGET_PAGE_SIZE,
} from './qemu-stream.js';
import { migratableBlocks, PageBitmap } from './ram-load.js';
import { type ReturnMessage, readReturnMessage } from './return-path.js';

/** Stops and resumes the guest's CPUs (the workload that writes guest memory). */
export interface GuestControl {
  stop(): void | Promise<void>;
  resume(): void | Promise<void>;
}

/** Options of {@link migrateOutgoing}. */
export interface OutgoingOptions {
  /** Machine type sent in the configuration record (default `memtree`). */
  machine?: string;
  /** The guest to stop for the final pass. */
  guest?: GuestControl;
  /** Longest acceptable pause of the guest, in ms (QEMU `downtime-limit`, default 300). */
  downtimeLimitMs?: number;
  /** Passes after which the guest is stopped even if the dirty set does not fit (default 30). */
  maxIterations?: number;
  /** Longest time of one pass before the dirty bitmap is synced again, in ms (default 50, as QEMU). */
  iterationMs?: number;
  /** Switch to postcopy after the first complete pass. */
  postcopy?: boolean;
  /** Bytes per second of the background stream in postcopy (requested pages are not limited). */
  postcopyBandwidth?: number;
  /**
   * Precopy hand-over (memtree extension, default true): the destination starts the guest only
   * after this source confirmed the switch-over, so no failure leaves both sides running. False
   * sends a plain QEMU stream, whose destination starts as soon as it has loaded it.
   */
  confirmSwitchover?: boolean;
  /**
   * Integrity check (memtree extension, default false): every batch of the stream carries a CRC-32
   * the destination verifies, so bytes garbled in transit fail the migration instead of landing in
   * guest memory unnoticed. Off, the stream stays readable by QEMU.
   */
  integrity?: boolean;
  /**
   * Longest time without progress from the destination (bytes accepted by the connection, messages
   * on the return path), in ms, before the migration fails with `timeout` (default 10000).
   */
  timeoutMs?: number;
  /** Cancels the migration when aborted (QEMU `migrate_cancel`); the source then runs on. */
  signal?: AbortSignal;
  /**
   * Postcopy recovery: a new connection to the destination (connect again), asked for when the
   * connection fails after LISTEN. Without it such a failure leaves the migration paused.
   */
  reconnect?: () => Promise<Connection>;
  /** Reconnections to try in one postcopy migration (default 3). */
  maxRecoveries?: number;
  /**
   * Called when a postcopy migration resumed on a new connection: the destination answered the
   * recovery handshake (QEMU's `postcopy-recover` → `postcopy-active`).
   */
  resumed?: () => void;
  /**
   * Postcopy on request (QEMU capability `postcopy-ram` plus `migrate-start-postcopy`): the stream
   * advises postcopy, and the switch happens after the first complete pass once this returns true;
   * while it returns false the migration goes on as precopy and may complete as one.
   */
  postcopyRequested?: () => boolean;
  /**
   * Whether the destination talks back (default true). Without a return path (QEMU's `exec:`
   * migration) the source completes once the stream is written, with no switch-over
   * confirmation, and postcopy is impossible.
   */
  returnPath?: boolean;
  /**
   * The machine's non-RAM state, taken while the guest is stopped and sent as the
   * `memtree-machine` section (before EOF in precopy, before RUN in postcopy).
   */
  machineState?: () => { version: number; payload: Uint8Array };
  /** Updated in place while the migration runs (for QEMU's `query-migrate`). */
  progress?: MigrationProgress;
}

/** The live figures of a running migration (see {@link OutgoingOptions.progress}). */
export interface MigrationProgress {
  /** Bytes written so far. */
  bytesSent: number;
  /** Dirty bytes not sent yet, as of the last bitmap sync or pass. */
  remaining: number;
  /** Bitmap syncs so far. */
  dirtySyncCount: number;
  /** Pages sent with data so far. */
  pagesSent: number;
  /** Pages sent as ZERO records so far. */
  zeroPages: number;
  /** Pages sent because the destination asked for them. */
  postcopyRequests: number;
  /** Bytes written after the guest stopped (QEMU `downtime-bytes`, precopy). */
  downtimeBytes: number;
  /**
   * Bytes written from the switch to postcopy on (QEMU `postcopy-bytes`: its ram_transferred_add
   * counts every byte after the switch as postcopy, none as downtime). Optional for callers that
   * made their progress object before it existed.
   */
  postcopyBytes?: number;
  /** 'precopy' until the switch, then 'postcopy'. */
  phase: 'precopy' | 'postcopy';
}

/** What a migration did (QEMU `query-migrate` in spirit). */
export interface MigrationStats {
  /** Passes over dirty pages before the guest was stopped (including the first, full one). */
  iterations: number;
  /** Bitmap syncs. */
  dirtySyncCount: number;
  /** Pages sent with data. */
  pagesSent: number;
  /** Pages sent as ZERO records (their bytes were not sent). */
  zeroPages: number;
  /** Bytes written to the connection. */
  bytesSent: number;
  /** Mean throughput of the whole migration, bytes per second. */
  bandwidth: number;
  /** Megabits per second (QEMU `mbps`). */
  mbps: number;
  /** Milliseconds from start to completion. */
  totalTimeMs: number;
  /** Milliseconds the guest was stopped before the destination confirmed it runs. */
  downtimeMs: number;
  /** Dirty bytes when the guest was stopped. */
  remainingAtStop: number;
  /** Whether the dirty set fitted the downtime budget (false: stopped by maxIterations). */
  converged: boolean;
  /** Whether the migration switched to postcopy. */
  postcopy: boolean;
  /** Pages sent because the destination asked for them (postcopy). */
  postcopyRequests: number;
  /** Postcopy recoveries: reconnections after the connection failed. */
  recoveries: number;
}

const RAM_SECTION_ID = 2;
const MACHINE_SECTION_ID = 3;
/** Bytes of one integrity batch at most (a pass is cut after this many). */
const INTEGRITY_BATCH = 4 << 20;
const now = () => performance.now();
const yieldToGuest = (): Promise<void> =>
  new Promise((r) => (typeof setImmediate === 'function' ? setImmediate(r) : setTimeout(r, 0)));

interface BlockState {
  block: RAMBlock;
  bmap: PageBitmap;
}

/**
 * Migrates the RAM of `ms` to the destination at the other end of `conn` while its guest keeps
 * running. Resolves with statistics once the destination confirmed it has all memory and runs.
 */
export async function migrateOutgoing(
  ms: MemorySystem,
  conn: Connection,
  options: OutgoingOptions = {},
): Promise<MigrationStats> {
  if (ms.globalDirtyTracking & 1) {
    throw new MigrationError(
      'state',
      ms.running
        ? 'another migration or a snapshot tracker of this machine is active (dirty logging for migration is on)'
        : 'the machine is stopped with dirty logging for migration still on (after a completed migration, or a snapshot tracker is active): run it again (setRunning(true)) or stop the tracker first',
    );
  }
  if (options.returnPath === false && (options.postcopy || options.postcopyRequested)) {
    throw new MigrationError('state', 'postcopy needs a return path, and this migration has none');
  }
  const m = new Outgoing(ms, conn, options);
  return m.run();
}

class Outgoing {
  private w: ByteWriter;
  private s: QemuStreamWriter;
  private enc: RamPageEncoder;
  /** Which connection is current: messages read from an older one are ignored. */
  private gen = 0;
  /** LISTEN was sent (postcopy): from here on a failure pauses instead of resuming the source. */
  private listenSent = false;
  private readonly blocks: BlockState[];
  private failure: MigrationError | null = null;
  private shutStatus: number | null = null;
  private readonly waiters: Array<() => void> = [];
  private readonly requests: Array<{ block: string; start: number; length: number }> = [];
  /** Block of the last page request that named one (QEMU `last_req_rb`). */
  private lastReqBlock: string | null = null;
  private guestStopped = false;
  /** The destination reported it loaded everything and waits for the switch-over. */
  private ready = false;
  /** Reading the return path of the current connection. */
  private listening: Promise<void> = Promise.resolve();
  /** Bytes written to earlier connections (postcopy recovery). */
  private bytesBefore = 0;
  /** After a reconnection: whether the destination's guest runs (null until it said so). */
  private resumeAck: 'listening' | 'running' | 'none' | null = null;
  /** The switch-over was confirmed: from here on the destination may run. */
  private committed = false;
  /** When the destination last made progress (performance.now()). */
  private lastProgress = now();
  private cursor = { block: 0, page: 0 };
  private stats: MigrationStats = {
    iterations: 0,
    dirtySyncCount: 0,
    pagesSent: 0,
    zeroPages: 0,
    bytesSent: 0,
    bandwidth: 0,
    mbps: 0,
    totalTimeMs: 0,
    downtimeMs: 0,
    remainingAtStop: 0,
    converged: false,
    postcopy: false,
    postcopyRequests: 0,
    recoveries: 0,
  };
  private pongs = 0;

  constructor(
    private readonly ms: MemorySystem,
    private conn: Connection,
    private readonly opt: OutgoingOptions,
  ) {
    this.returnPath = opt.returnPath !== false;
    this.w = this.writerFor(conn);
    this.s = new QemuStreamWriter(this.w);
    this.enc = new RamPageEncoder(this.w);
    this.blocks = migratableBlocks(ms).map((block) => ({
      block,
      bmap: new PageBitmap(Math.ceil(block.maxLength / TARGET_PAGE_SIZE)),
    }));
  }

  private fail(e: MigrationError): void {
    // The destination's own explanation beats the broken pipe it caused by closing.
    if (!this.failure || (this.failure.failure === 'connection' && e.failure === 'remote')) this.failure = e;
    this.wake();
  }

  private writerFor(conn: Connection): ByteWriter {
    const out = conn.output;
    // Every chunk the connection accepts is progress; a sink that blocks is not.
    return new ByteWriter((chunk, release) => {
      this.lastProgress = now();
      const r = out(chunk, release);
      if (!r) return;
      return r.then(() => {
        this.lastProgress = now();
      });
    }, 1 << 20);
  }

  /** Fails the migration and drops the connection, so that no pending read or write keeps it waiting. */
  private abort(e: MigrationError): void {
    this.fail(e);
    try {
      this.conn.abort?.();
    } catch {
      // already gone
    }
  }

  private wake(): void {
    for (const f of this.waiters.splice(0)) f();
  }

  private check(): void {
    if (this.failure) throw this.failure;
  }

  /** Reads the return path until it ends. */
  private async listen(): Promise<void> {
    const gen = this.gen;
    const r = new ByteReader(this.conn.input);
    try {
      for (;;) {
        const msg: ReturnMessage | null = await readReturnMessage(r);
        if (gen !== this.gen) return;
        this.lastProgress = now();
        if (!msg) {
          if (this.shutStatus === null)
            this.fail(new MigrationError('connection', 'the destination closed the connection'));
          return;
        }
        if (msg.type === 'error') {
          this.fail(new MigrationError('remote', `the destination refused the migration: ${msg.message}`));
        } else if (msg.type === 'shut') {
          this.shutStatus = msg.status;
          if (msg.status !== 0)
            this.fail(new MigrationError('remote', `the destination failed (status ${msg.status})`));
          this.wake();
        } else if (msg.type === 'recv-bitmap') {
          this.recvBitmap(msg.block, msg.firstWord, msg.words);
        } else if (msg.type === 'resume-ack') {
          this.resumeAck = msg.state;
          this.wake();
        } else if (msg.type === 'ready') {
          this.ready = true;
          this.wake();
        } else if (msg.type === 'pong') {
          this.pongs++;
          this.wake();
        } else if (msg.type === 'req-pages') {
          // QEMU ram_save_queue_pages: no name means the block of the previous named request
          // (last_req_rb), whether or not that request is still queued.
          const block = msg.block ?? this.lastReqBlock;
          if (block === null) {
            this.fail(
              new MigrationError('corrupt', 'page request without a block name before any named one'),
            );
            continue;
          }
          if (msg.block !== null) this.lastReqBlock = msg.block;
          const st = this.blocks.find((b) => b.block.idstr === block);
          if (!st || msg.start + msg.length > st.block.usedLength) {
            this.fail(
              new MigrationError(
                'bad-offset',
                `page request outside block ${block}: 0x${msg.start.toString(16)}+0x${msg.length.toString(16)}`,
                { block, offset: msg.start },
              ),
            );
          } else {
            this.requests.push({ block, start: msg.start, length: msg.length });
            this.wake();
          }
        }
      }
    } catch (e) {
      if (gen !== this.gen) return;
      this.fail(e instanceof MigrationError ? e : new MigrationError('connection', (e as Error).message));
    }
  }

  /**
   * Postcopy recovery: the destination's received pages. Every page it lacks is due again, whether
   * it was never sent or was lost with the old connection.
   */
  private recvBitmap(id: string, firstWord: number, words: Uint32Array): void {
    const st = this.blocks.find((b) => b.block.idstr === id);
    if (!st || firstWord + words.length > st.bmap.words.length) {
      this.fail(new MigrationError('corrupt', `received bitmap for unknown block ${id}`, { block: id }));
      return;
    }
    const pages = st.block.usedLength / TARGET_PAGE_SIZE;
    for (let i = 0; i < words.length; i++) {
      const k = firstWord + i;
      let due = ~words[i]! >>> 0;
      const rem = pages - k * 32;
      if (rem <= 0) due = 0;
      else if (rem < 32) due &= (1 << rem) - 1;
      st.bmap.words[k] = due;
    }
  }

  private waitFor(cond: () => boolean): Promise<void> {
    return new Promise((resolve, reject) => {
      const tick = () => {
        if (this.failure) reject(this.failure);
        else if (cond()) resolve();
        else this.waiters.push(tick);
      };
      tick();
    });
  }

  /** QEMU `migration_bitmap_sync`: folds the MIGRATION client's bits into the per-block bitmaps. */
  private sync(): number {
    this.ms.logSync();
    let fresh = 0;
    for (const { block, bmap } of this.blocks) {
      const snap = this.ms.dirty.snapshotAndClear(block.offset, block.usedLength, DIRTY_MEMORY_MIGRATION);
      // Blocks start on 64-page boundaries, so snapshot words line up with bitmap words.
      const k0 = (block.offset - snap.start) / TARGET_PAGE_SIZE / 32;
      const words = Math.ceil(block.usedLength / TARGET_PAGE_SIZE / 32);
      for (let k = 0; k < words; k++) {
        let v = snap.bits[k0 + k] ?? 0;
        if (k === words - 1) {
          const rem = (block.usedLength / TARGET_PAGE_SIZE) % 32;
          if (rem) v &= (1 << rem) - 1;
        }
        const old = bmap.words[k]!;
        const add = v & ~old;
        if (add) {
          fresh += popcount(add);
          bmap.words[k] = old | v;
        }
      }
    }
    this.ms.logGlobalAfterSync();
    this.stats.dirtySyncCount++;
    return fresh;
  }

  private report(): void {
    const p = this.opt.progress;
    if (!p) return;
    const written = this.bytesBefore + this.w.written;
    p.bytesSent = written;
    p.remaining = this.dirtyPages() * TARGET_PAGE_SIZE;
    p.dirtySyncCount = this.stats.dirtySyncCount;
    p.pagesSent = this.stats.pagesSent;
    p.zeroPages = this.stats.zeroPages;
    p.postcopyRequests = this.stats.postcopyRequests;
    p.phase = this.stats.postcopy ? 'postcopy' : 'precopy';
    if (this.guestStopped && !this.stats.postcopy) p.downtimeBytes = written - this.stopBytes;
    if (this.stats.postcopy) p.postcopyBytes = written - this.stopBytes;
  }

  private stopBytes = 0;
  private readonly returnPath: boolean;

  /** Writes the machine-state section, if the machine has one. */
  private machineSection(): void {
    const st = this.opt.machineState?.();
    if (!st) return;
    this.s.sectionStart(QEMU_VM_SECTION_FULL, MACHINE_SECTION_ID, MACHINE_STATE_IDSTR, 0, st.version);
    this.w.u32(st.payload.length);
    this.w.bytes(st.payload);
    this.s.footer(MACHINE_SECTION_ID);
  }

  private dirtyPages(): number {
    let n = 0;
    for (const b of this.blocks) n += b.bmap.count();
    return n;
  }

  private sendPage(st: BlockState, page: number): void {
    st.bmap.clear(page);
    if (this.enc.page(st.block, page * TARGET_PAGE_SIZE)) this.stats.zeroPages++;
    else this.stats.pagesSent++;
  }

  /** Serves queued page requests (postcopy); returns how many pages were sent. */
  private serveRequests(): number {
    let n = 0;
    while (this.requests.length) {
      const q = this.requests.shift()!;
      const st = this.blocks.find((b) => b.block.idstr === q.block)!;
      for (let p = q.start / TARGET_PAGE_SIZE; p < (q.start + q.length) / TARGET_PAGE_SIZE; p++) {
        if (st.bmap.get(p)) {
          this.sendPage(st, p);
          this.stats.postcopyRequests++;
          n++;
        }
      }
    }
    return n;
  }

  /**
   * One pass (QEMU `ram_save_iterate`): sends dirty pages from the cursor on, until `deadline` (ms,
   * checked every 64 pages) or until the bitmap is empty. Returns true when a full round found
   * nothing left.
   */
  private async pass(deadline: number, bytesPerSec = 0): Promise<boolean> {
    this.s.sectionPart(QEMU_VM_SECTION_PART, RAM_SECTION_ID);
    let count = 0;
    const t0 = now();
    const b0 = this.w.written;
    let emptyRound = false;
    let scanned = 0;
    for (;;) {
      if (this.requests.length) this.serveRequests();
      const st = this.blocks[this.cursor.block]!;
      const p = st.bmap.next(this.cursor.page);
      if (p < 0 || p * TARGET_PAGE_SIZE >= st.block.usedLength) {
        this.cursor = { block: (this.cursor.block + 1) % this.blocks.length, page: 0 };
        if (++scanned > this.blocks.length) {
          emptyRound = true;
          break;
        }
        continue;
      }
      scanned = 0;
      this.sendPage(st, p);
      this.cursor.page = p + 1;
      if ((++count & 63) === 0) {
        if (this.w.pendingBytes >= 1 << 20) {
          await this.w.flushFull();
          this.check();
        }
        if ((count & 255) === 0) {
          await yieldToGuest();
          this.check();
        }
        if (now() >= deadline) break;
        // With the integrity check, a long pass is cut into batches so corruption shows early.
        if (this.w.digesting && this.w.written - b0 >= INTEGRITY_BATCH) break;
        if (bytesPerSec > 0) {
          const ahead = (this.w.written - b0) / bytesPerSec - (now() - t0) / 1000;
          if (ahead > 0) {
            await this.w.flush();
            await this.sleepOrRequest(ahead * 1000);
          }
        }
      }
    }
    this.enc.eos();
    this.s.footer(RAM_SECTION_ID);
    this.s.checksum();
    await this.w.flush();
    this.check();
    this.report();
    return emptyRound;
  }

  private sleepOrRequest(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const t = setTimeout(done, ms);
      const self = this;
      function done() {
        clearTimeout(t);
        const i = self.waiters.indexOf(done);
        if (i >= 0) self.waiters.splice(i, 1);
        resolve();
      }
      this.waiters.push(done);
    });
  }

  private async stopGuest(): Promise<void> {
    if (!this.guestStopped) {
      this.guestStopped = true;
      const guest = this.opt.guest;
      if (guest) {
        await guest.stop();
        // As QEMU's vm_stop: the memory core now postpones the dirty-log stop (R11.9), so a source
        // that stays stopped after the migration keeps logging until it runs again.
        this.ms.setRunning(false);
      }
    }
  }

  /**
   * The END section, EOF and the hand-over: with `confirm`, the destination waits for the go-ahead
   * once it has loaded everything. Until it is sent any failure resumes the source, which is then
   * the only side running; once it is sent the source never resumes on its own.
   */
  private async complete(confirm: boolean): Promise<void> {
    this.s.sectionPart(QEMU_VM_SECTION_END, RAM_SECTION_ID);
    for (let i = 0; i < this.blocks.length; i++) {
      const st = this.blocks[i]!;
      for (
        let p = st.bmap.next(0);
        p >= 0 && p * TARGET_PAGE_SIZE < st.block.usedLength;
        p = st.bmap.next(p + 1)
      ) {
        this.sendPage(st, p);
        if (this.w.pendingBytes >= 4 << 20) await this.w.flushFull();
      }
    }
    this.enc.eos();
    this.s.footer(RAM_SECTION_ID);
    if (!this.stats.postcopy) this.machineSection();
    this.s.checksum();
    this.s.eof();
    // memtree sends no device state, so the description lists none.
    if (!this.opt.postcopy) this.s.vmdesc(`{"page_size":${TARGET_PAGE_SIZE},"devices":[]}`);
    await this.w.flush();
    this.check();
    if (confirm) {
      await this.waitFor(() => this.ready);
      this.committed = true;
      this.w.u32(MEMTREE_SWITCHOVER_GO);
      await this.w.flush();
    }
    if (this.returnPath) await this.waitFor(() => this.shutStatus === 0);
  }

  /**
   * Postcopy from the stopped guest on: discards, LISTEN, RUN (the destination starts), then the
   * background stream with requested pages first. Once LISTEN is out, a failed connection is not
   * the end: with `reconnect`, the source connects again and resumes (QEMU's postcopy recovery,
   * `migrate -r` after `migrate-recover`): the destination reports the pages it has and whether
   * its guest already runs, the source sends RUN again if it never arrived and then every page the
   * destination lacks.
   */
  private async postcopy(stopAt: number): Promise<void> {
    let needRun = true;
    let pingSeq = 0;
    let recoveries = 0;
    for (;;) {
      try {
        if (recoveries === 0) {
          this.sendDiscards();
          this.listenSent = true;
          this.s.command(MIG_CMD_POSTCOPY_LISTEN);
          // QEMU sends the device state in the postcopy package, before RUN: the destination
          // needs it to start.
          this.machineSection();
        } else {
          needRun = !(await this.resumeOn(await this.opt.reconnect!()));
          this.opt.resumed?.();
          // A destination that never ran may have lost the device state with the connection (it
          // travels in the same package as LISTEN): it goes again, whole, before RUN.
          if (needRun) this.machineSection();
        }
        if (needRun) {
          this.s.command(MIG_CMD_POSTCOPY_RUN);
          const seq = ++pingSeq;
          this.s.command(MIG_CMD_PING, u32(seq));
          this.s.checksum();
          await this.w.flush();
          await this.waitFor(() => this.pongs >= 1);
          needRun = false;
          if (!this.stats.downtimeMs) this.stats.downtimeMs = now() - stopAt;
        }
        // Background stream; requested pages go first.
        while (!(await this.pass(Number.POSITIVE_INFINITY, this.opt.postcopyBandwidth ?? 0))) {
          /* until a full round finds nothing */
        }
        await this.complete(false);
        return;
      } catch (e) {
        const f = this.failure ?? (e instanceof MigrationError ? e : null);
        const recoverable = f !== null && ['connection', 'timeout', 'truncated'].includes(f.failure);
        if (
          !this.listenSent ||
          !recoverable ||
          !this.opt.reconnect ||
          recoveries >= (this.opt.maxRecoveries ?? 3) ||
          this.opt.signal?.aborted
        )
          throw e;
        recoveries++;
        this.stats.recoveries++;
      }
    }
  }

  /**
   * Switches to a new connection after a failure in postcopy and asks the destination where it
   * stands. Resolves with whether the destination's guest runs.
   */
  private async resumeOn(conn: Connection): Promise<boolean> {
    try {
      this.conn.abort?.();
    } catch {
      // already gone
    }
    this.bytesBefore += this.w.written;
    this.gen++;
    this.conn = conn;
    this.failure = null;
    this.shutStatus = null;
    this.resumeAck = null;
    this.pongs = 0;
    this.requests.length = 0;
    this.lastProgress = now();
    this.w = this.writerFor(conn);
    this.s = new QemuStreamWriter(this.w);
    this.enc = new RamPageEncoder(this.w);
    this.listening = this.listen();
    this.w.u32(MEMTREE_RECOVER);
    if (this.opt.integrity) this.w.startDigest();
    await this.w.flush();
    // The destination sends its received bitmaps, then the acknowledgement.
    await this.waitFor(() => this.resumeAck !== null);
    if (this.resumeAck === 'none') {
      // The destination never listened, so its guest cannot run: the source may run on.
      this.listenSent = false;
      throw new MigrationError('connection', 'the connection failed before the destination entered postcopy');
    }
    return this.resumeAck === 'running';
  }

  /** Closes the connection; one that does not close within a second (a stalled peer) is dropped. */
  private async closeConnection(): Promise<void> {
    let timer: ReturnType<typeof setTimeout> | undefined;
    try {
      await Promise.race([
        Promise.resolve(this.conn.close()),
        new Promise<void>((r) => {
          timer = setTimeout(r, 1000);
        }),
      ]);
    } catch {
      // already gone
    } finally {
      clearTimeout(timer);
    }
    try {
      this.conn.abort?.();
    } catch {
      // already gone
    }
  }

  /** Fails the migration when the destination made no progress for `timeoutMs`. */
  private startWatchdog(): () => void {
    const limit = this.opt.timeoutMs ?? 10_000;
    const timer = setInterval(
      () => {
        const idle = now() - this.lastProgress;
        if (idle > limit) {
          this.abort(
            new MigrationError(
              'timeout',
              `the destination made no progress for ${Math.round(idle)} ms (limit ${limit} ms)${this.guestStopped ? ' while the guest was stopped' : ''}`,
            ),
          );
        }
      },
      Math.max(10, Math.min(1000, limit / 4)),
    );
    (timer as { unref?: () => void }).unref?.();
    return () => clearInterval(timer);
  }

  async run(): Promise<MigrationStats> {
    const ms = this.ms;
    const start = now();
    const cancel = (block: RAMBlock) => {
      if (this.blocks.some((b) => b.block === block)) {
        this.fail(
          new MigrationError('cancelled', `RAM block ${block.idstr} was resized during migration`, {
            block: block.idstr,
          }),
        );
      }
    };
    const signal = this.opt.signal;
    const onAbort = () => this.abort(new MigrationError('cancelled', 'the migration was cancelled'));
    if (signal?.aborted)
      throw new MigrationError('cancelled', 'the migration was cancelled before it started');
    signal?.addEventListener('abort', onAbort, { once: true });
    ms.ramResizeObservers.add(cancel);
    const stopWatchdog = this.startWatchdog();
    this.listening = this.returnPath ? this.listen() : Promise.resolve();
    const confirm =
      (this.opt.confirmSwitchover ?? true) &&
      !this.opt.postcopy &&
      !this.opt.postcopyRequested &&
      this.returnPath;
    const caps =
      (confirm ? MEMTREE_CAP_CONFIRM_SWITCHOVER : 0) | (this.opt.integrity ? MEMTREE_CAP_INTEGRITY : 0);
    let stopAt = 0;
    try {
      // Setup (R12.5): every page of every block is dirty, logging starts, one sync.
      for (const b of this.blocks) {
        b.bmap.words.fill(0);
        for (let p = 0; p < b.block.usedLength / TARGET_PAGE_SIZE; p++) b.bmap.set(p);
      }
      ms.globalDirtyLogStart(1);
      this.sync();
      this.s.header(this.opt.machine ?? 'memtree');
      if (caps) this.s.capabilities(caps);
      if (this.returnPath) this.s.command(MIG_CMD_OPEN_RETURN_PATH);
      if (this.opt.postcopy || this.opt.postcopyRequested) this.s.command(MIG_CMD_POSTCOPY_ADVISE);
      this.s.sectionStart(QEMU_VM_SECTION_START, RAM_SECTION_ID, 'ram', 0, RAM_SECTION_VERSION);
      this.enc.setup(this.blocks.map((b) => ({ id: b.block.idstr, length: b.block.usedLength })));
      this.s.footer(RAM_SECTION_ID);
      this.s.checksum();
      await this.w.flush();
      this.check();

      const limit = this.opt.downtimeLimitMs ?? 300;
      const maxIter = this.opt.maxIterations ?? 30;
      const iterMs = this.opt.iterationMs ?? 50;
      let firstRoundDone = false;
      for (;;) {
        const t0 = now();
        const b0 = this.w.written;
        const empty = await this.pass(t0 + iterMs);
        if (empty || this.dirtyPages() === 0) {
          if (!firstRoundDone) this.stats.iterations++;
          firstRoundDone = true;
        }
        const dt = Math.max(now() - t0, 0.001);
        const bw = (this.w.written - b0) / dt; // bytes per ms
        if (!firstRoundDone) continue;
        if (this.opt.postcopy || this.opt.postcopyRequested?.()) {
          this.stats.postcopy = true;
          break;
        }
        this.sync();
        this.stats.iterations++;
        const pending = this.dirtyPages() * TARGET_PAGE_SIZE;
        const threshold = Math.max(bw, this.stats.bytesSent / Math.max(now() - start, 1)) * limit;
        if (pending <= threshold) {
          this.stats.converged = true;
          break;
        }
        if (this.stats.iterations >= maxIter) break;
        await yieldToGuest();
        this.check();
      }

      // Stop and copy.
      await this.stopGuest();
      this.lastProgress = now();
      stopAt = now();
      this.stopBytes = this.bytesBefore + this.w.written;
      this.sync();
      this.stats.remainingAtStop = this.dirtyPages() * TARGET_PAGE_SIZE;
      this.report();
      if (this.stats.postcopy) {
        await this.postcopy(stopAt);
      } else {
        await this.complete(confirm);
      }
      if (this.returnPath) await this.waitFor(() => this.shutStatus === 0);
      stopWatchdog();
      this.report();
      if (!this.stats.postcopy) this.stats.downtimeMs = now() - stopAt;
      this.stats.bytesSent = this.bytesBefore + this.w.written;
      this.stats.totalTimeMs = now() - start;
      this.stats.bandwidth = (this.stats.bytesSent / this.stats.totalTimeMs) * 1000;
      this.stats.mbps = (this.stats.bandwidth * 8) / 1e6;
      ms.globalDirtyLogStop(1);
      await this.closeConnection();
      await Promise.race([this.listening, new Promise((r) => setTimeout(r, 1000))]);
      return this.stats;
    } catch (e) {
      stopWatchdog();
      if (!this.failure || this.failure.failure === 'connection') {
        // A write failed: let the return path deliver the destination's reason, if it sent one.
        await Promise.race([this.listening, new Promise((r) => setTimeout(r, 1000))]);
      }
      let err =
        this.failure ??
        (e instanceof MigrationError ? e : new MigrationError('connection', (e as Error).message));
      // Leave the source as it was: logging off, the migrated blocks dirty for MIGRATION, and
      // running again unless the destination may be running.
      for (const { block } of this.blocks)
        ms.dirty.setRange(block.offset, block.usedLength, 1 << DIRTY_MEMORY_MIGRATION);
      // After the go-ahead only the destination's own word that it failed makes resuming safe.
      const destinationMayRun = (this.committed || this.listenSent) && err.failure !== 'remote';
      if (destinationMayRun) {
        err = this.listenSent
          ? new MigrationError(
              'paused',
              `postcopy paused: ${err.message}; the destination may already run on memory only this source has, so the source stays stopped: recover with the reconnect option (QEMU migrate-recover), and resume the source only if the destination does not run`,
            )
          : new MigrationError(
              'unconfirmed',
              `the switch-over was confirmed but the destination did not report that it runs (${err.message}); the source stays stopped: resume it only if the destination does not run`,
            );
        // The source stays stopped, where a dirty-log stop would wait for it to run: end logging
        // now, so that a later migration or snapshot of this machine may start (vm_start settles
        // a postponed stop the same way).
        stopLoggingNow(ms);
      } else {
        // Logging may be off already, if the failure came after the normal stop.
        if (ms.globalDirtyTracking & 1) ms.globalDirtyLogStop(1);
        if (this.guestStopped) {
          this.guestStopped = false;
          const guest = this.opt.guest;
          if (guest) {
            ms.setRunning(true); // runs the postponed dirty-log stop, as vm_start does
            await guest.resume();
          }
        }
      }
      await this.closeConnection();
      throw err;
    } finally {
      ms.ramResizeObservers.delete(cancel);
      signal?.removeEventListener('abort', onAbort);
    }
  }

  /** Postcopy: tells the destination which pages were dirtied after it received them. */
  private sendDiscards(): void {
    for (const { block, bmap } of this.blocks) {
      let ranges: number[] = [];
      const flush = () => {
        if (!ranges.length) return;
        const name = new TextEncoder().encode(block.idstr);
        const data = new Uint8Array(3 + name.length + ranges.length * 8);
        const dv = new DataView(data.buffer);
        data[0] = 0;
        data[1] = name.length;
        data.set(name, 2);
        let i = 3 + name.length;
        for (const v of ranges) {
          dv.setUint32(i, Math.floor(v / 2 ** 32));
          dv.setUint32(i + 4, v >>> 0);
          i += 8;
        }
        this.s.command(MIG_CMD_POSTCOPY_RAM_DISCARD, data);
        ranges = [];
      };
      const pages = block.usedLength / TARGET_PAGE_SIZE;
      for (let p = bmap.next(0); p >= 0 && p < pages; ) {
        let e = p + 1;
        while (e < pages && bmap.get(e)) e++;
        ranges.push(p * TARGET_PAGE_SIZE, (e - p) * TARGET_PAGE_SIZE);
        if (ranges.length >= 2 * 1000) flush();
        p = bmap.next(e);
      }
      flush();
    }
  }
}

/** Ends MIGRATION dirty logging at once, even while the guest is stopped. */
function stopLoggingNow(ms: MemorySystem): void {
  if (!(ms.globalDirtyTracking & 1)) return;
  if (ms.running) {
    ms.globalDirtyLogStop(1);
    return;
  }
  // The stop is postponed while the machine is stopped; a run-state flip settles it.
  ms.globalDirtyLogStop(1);
  ms.setRunning(true);
  ms.setRunning(false);
}

function u32(v: number): Uint8Array {
  const b = new Uint8Array(4);
  new DataView(b.buffer).setUint32(0, v);
  return b;
}

function popcount(v: number): number {
  v -= (v >>> 1) & 0x55555555;
  v = (v & 0x33333333) + ((v >>> 2) & 0x33333333);
  return (((v + (v >>> 4)) & 0x0f0f0f0f) * 0x01010101) >>> 24;
}
