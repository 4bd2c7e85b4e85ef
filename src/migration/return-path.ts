/**
 * @module migration/return-path
 * Messages the destination sends back to the source on the same connection (QEMU's return path,
 * migration.c `migrate_send_rp_*`): `u16 type`, `u16 length`, payload, all big-endian. memtree adds
 * one message of its own, {@link MIG_RP_MSG_MEMTREE_ERROR}, that carries the destination's error text
 * so the source can report why a migration was refused.
 */

import { type ByteReader, ByteWriter, latin1, latin1Bytes } from './bytes.js';
import { MigrationError } from './errors.js';

export const MIG_RP_MSG_SHUT = 1;
export const MIG_RP_MSG_PONG = 2;
export const MIG_RP_MSG_REQ_PAGES_ID = 3;
export const MIG_RP_MSG_REQ_PAGES = 4;
/** memtree extension: UTF-8 error text, then the failure kind after a NUL. */
export const MIG_RP_MSG_MEMTREE_ERROR = 0x4d54;
/**
 * memtree extension (with MEMTREE_CAP_CONFIRM_SWITCHOVER): the destination loaded the whole stream
 * and waits for the source's go-ahead before it starts the guest.
 */
export const MIG_RP_MSG_MEMTREE_READY = 0x4d52;
/**
 * memtree postcopy recovery (the idea of QEMU's RECV_BITMAP, in memtree's framing): counted block
 * id, `u32` index of the first word, then `u32` words of the destination's received-page bitmap
 * (bit `p % 32` of word `p / 32` for page `p`).
 */
export const MIG_RP_MSG_MEMTREE_RECV_BITMAP = 0x4d42;
/**
 * memtree postcopy recovery (QEMU's RESUME_ACK idea): every bitmap was sent; `u8` 1 when the
 * destination's guest already runs (it received RUN), 0 when it still waits for RUN, 2 when it has
 * no paused migration to resume (it never got LISTEN, so its guest cannot run).
 */
export const MIG_RP_MSG_MEMTREE_RESUME_ACK = 0x4d41;
/** Bitmap words per RECV_BITMAP message (its length field is 16 bits). */
export const RECV_BITMAP_WORDS = 16000;

/** A decoded return-path message. */
export type ReturnMessage =
  | { type: 'shut'; status: number }
  | { type: 'pong'; value: number }
  | { type: 'req-pages'; block: string | null; start: number; length: number }
  | { type: 'error'; message: string; failure: string }
  | { type: 'ready' }
  | { type: 'recv-bitmap'; block: string; firstWord: number; words: Uint32Array }
  | { type: 'resume-ack'; state: 'listening' | 'running' | 'none' };

/** Encodes return-path messages into a writer. */
export class ReturnPathWriter {
  constructor(readonly w: ByteWriter) {}

  private msg(type: number, payload: Uint8Array): void {
    this.w.u16(type);
    this.w.u16(payload.length);
    this.w.bytes(payload);
  }

  shut(status: number): void {
    const p = new Uint8Array(4);
    new DataView(p.buffer).setUint32(0, status);
    this.msg(MIG_RP_MSG_SHUT, p);
  }

  pong(value: number): void {
    const p = new Uint8Array(4);
    new DataView(p.buffer).setUint32(0, value);
    this.msg(MIG_RP_MSG_PONG, p);
  }

  /** Asks for `length` bytes at `start` of block `id` (QEMU `MIG_RP_MSG_REQ_PAGES_ID`). */
  requestPages(id: string, start: number, length: number): void {
    const idb = new TextEncoder().encode(id);
    const p = new Uint8Array(8 + 4 + 1 + idb.length);
    const dv = new DataView(p.buffer);
    dv.setUint32(0, Math.floor(start / 2 ** 32));
    dv.setUint32(4, start >>> 0);
    dv.setUint32(8, length);
    p[12] = idb.length;
    p.set(idb, 13);
    this.msg(MIG_RP_MSG_REQ_PAGES_ID, p);
  }

  /** Words `[first, first + n)` of the received bitmap of block `id` (postcopy recovery). */
  recvBitmap(id: string, first: number, words: Uint32Array): void {
    const idb = latin1Bytes(id);
    const p = new Uint8Array(1 + idb.length + 4 + words.length * 4);
    const dv = new DataView(p.buffer);
    p[0] = idb.length;
    p.set(idb, 1);
    let o = 1 + idb.length;
    dv.setUint32(o, first);
    o += 4;
    for (let i = 0; i < words.length; i++, o += 4) dv.setUint32(o, words[i]!);
    this.msg(MIG_RP_MSG_MEMTREE_RECV_BITMAP, p);
  }

  /** Every bitmap was sent, and where the destination stands (postcopy recovery). */
  resumeAck(state: 'listening' | 'running' | 'none'): void {
    this.msg(
      MIG_RP_MSG_MEMTREE_RESUME_ACK,
      Uint8Array.of(state === 'listening' ? 0 : state === 'running' ? 1 : 2),
    );
  }

  /** The destination has everything and waits for the switch-over (memtree extension). */
  ready(): void {
    this.msg(MIG_RP_MSG_MEMTREE_READY, new Uint8Array(0));
  }

  error(e: MigrationError | Error): void {
    const failure = e instanceof MigrationError ? e.failure : 'remote';
    const b = new TextEncoder().encode(`${e.message}\0${failure}`).subarray(0, 65000);
    this.msg(MIG_RP_MSG_MEMTREE_ERROR, b);
  }
}

/** Reads the next return-path message; null at the end of the stream. */
export async function readReturnMessage(r: ByteReader): Promise<ReturnMessage | null> {
  if (!(await r.ensure(4))) {
    if (r.available > 0) throw new MigrationError('truncated', 'return path truncated');
    return null;
  }
  const type = r.u16();
  const len = r.u16();
  await r.need(len, `return-path message ${type}`);
  const p = r.view(len).slice();
  const dv = new DataView(p.buffer);
  switch (type) {
    case MIG_RP_MSG_SHUT:
      return { type: 'shut', status: len >= 4 ? dv.getUint32(0) : 0 };
    case MIG_RP_MSG_PONG:
      return { type: 'pong', value: len >= 4 ? dv.getUint32(0) : 0 };
    case MIG_RP_MSG_REQ_PAGES_ID:
    case MIG_RP_MSG_REQ_PAGES: {
      if (len < 12) throw new MigrationError('corrupt', `return-path page request of ${len} bytes`);
      const start = dv.getUint32(0) * 2 ** 32 + dv.getUint32(4);
      const length = dv.getUint32(8);
      let block: string | null = null;
      if (type === MIG_RP_MSG_REQ_PAGES_ID) {
        const n = p[12] ?? 0;
        block = latin1(p.subarray(13, 13 + n));
      }
      return { type: 'req-pages', block, start, length };
    }
    case MIG_RP_MSG_MEMTREE_READY:
      return { type: 'ready' };
    case MIG_RP_MSG_MEMTREE_RECV_BITMAP: {
      const n = p[0] ?? 0;
      if (len < 1 + n + 4 || (len - 1 - n - 4) % 4 !== 0) {
        throw new MigrationError('corrupt', `return-path received bitmap of ${len} bytes`);
      }
      const block = latin1(p.subarray(1, 1 + n));
      const firstWord = dv.getUint32(1 + n);
      const words = new Uint32Array((len - 1 - n - 4) / 4);
      for (let i = 0; i < words.length; i++) words[i] = dv.getUint32(1 + n + 4 + i * 4);
      return { type: 'recv-bitmap', block, firstWord, words };
    }
    case MIG_RP_MSG_MEMTREE_RESUME_ACK:
      return { type: 'resume-ack', state: p[0] === 0 ? 'listening' : p[0] === 1 ? 'running' : 'none' };
    case MIG_RP_MSG_MEMTREE_ERROR: {
      const text = new TextDecoder().decode(p);
      const i = text.lastIndexOf('\0');
      return {
        type: 'error',
        message: i >= 0 ? text.slice(0, i) : text,
        failure: i >= 0 ? text.slice(i + 1) : 'remote',
      };
    }
    default:
      throw new MigrationError('corrupt', `unknown return-path message type ${type}`);
  }
}

export { ByteWriter };
