/**
 * @module migration/bytes
 * Big-endian byte streams for the migration formats, free of Node imports: {@link ByteReader} pulls
 * chunks from any async iterable (a socket, a file stream, an array of buffers) and lets the decoder
 * read whole records synchronously once {@link ByteReader.ensure} said they are there, so the per-page
 * loop awaits only when a chunk boundary is hit. {@link ByteWriter} fills large buffers synchronously
 * and hands them to a sink that may apply back-pressure.
 */

import { StreamDigest } from './crc32.js';
import { MigrationError } from './errors.js';

const EMPTY = new Uint8Array(0);

/** Reads big-endian values from a stream of byte chunks. */
export class ByteReader {
  private cur: Uint8Array = EMPTY;
  private pos = 0;
  private readonly queue: Uint8Array[] = [];
  private queued = 0;
  private done = false;
  private closed = false;
  /** CRC of the bytes consumed since the last mark, when an integrity check runs (over `cur`). */
  private readonly digest = new StreamDigest();
  private readonly it: AsyncIterator<Uint8Array> | null;
  private readonly scratch = new Uint8Array(8);
  private readonly scratchView = new DataView(this.scratch.buffer);
  /** Bytes consumed so far (the stream offset of the next byte). */
  consumed = 0;

  /** @param source chunks to read; a plain `Uint8Array` is read as a single chunk. */
  constructor(source: AsyncIterable<Uint8Array> | Uint8Array) {
    if (source instanceof Uint8Array) {
      this.cur =
        source.constructor === Uint8Array
          ? source
          : new Uint8Array(source.buffer, source.byteOffset, source.length);
      this.done = true;
      this.it = null;
    } else {
      this.it = source[Symbol.asyncIterator]();
    }
  }

  /** Bytes that can be read without waiting. */
  get available(): number {
    return this.cur.length - this.pos + this.queued;
  }

  /** Waits until `n` bytes can be read; false if the stream ended first. */
  async ensure(n: number): Promise<boolean> {
    while (this.available < n) {
      if (this.done || !this.it) return false;
      const r = await this.it.next();
      if (r.done) {
        this.done = true;
        return false;
      }
      // Node delivers Buffers, whose slice() does not copy: keep plain Uint8Array views.
      const c =
        r.value.constructor === Uint8Array
          ? r.value
          : new Uint8Array(r.value.buffer, r.value.byteOffset, r.value.length);
      if (c.length === 0) continue;
      if (this.pos === this.cur.length && this.queued === 0) {
        this.digest.hash(this.cur, this.pos);
        this.cur = c;
        this.pos = 0;
        this.digest.from = 0;
      } else {
        this.queue.push(c);
        this.queued += c.length;
      }
    }
    return true;
  }

  /** Like {@link ensure} but throws a `truncated` error naming `what`. */
  async need(n: number, what: string): Promise<void> {
    if (!(await this.ensure(n))) {
      throw new MigrationError(
        'truncated',
        `stream truncated at offset ${this.consumed + this.available}: ${what} needs ${n} bytes, ${this.available} left`,
        { offset: this.consumed },
      );
    }
  }

  /**
   * Reads and discards whatever still arrives, until the stream ends or `ms` pass. A destination
   * that refused a migration does this after sending its reason, so the source, still writing,
   * neither blocks nor hits a broken pipe before it has read that reason.
   */
  async discardUntilEnd(ms: number): Promise<void> {
    if (!this.it || this.done) return;
    const deadline = Date.now() + ms;
    const it = this.it;
    while (Date.now() < deadline) {
      let timer: ReturnType<typeof setTimeout> | undefined;
      const timeout = new Promise<null>((r) => {
        timer = setTimeout(() => r(null), Math.max(0, deadline - Date.now()));
      });
      try {
        const r = await Promise.race([it.next(), timeout]);
        if (r === null || r.done) break;
      } catch {
        break; // the connection failed: nothing more to discard
      } finally {
        clearTimeout(timer);
      }
    }
    this.done = true;
    this.cur = EMPTY;
    this.pos = 0;
    this.queue.length = 0;
    this.queued = 0;
  }

  /**
   * Lets go of the source: an iterator that was not read to its end is told to finish
   * (`return()`), so a file stream closes its descriptor and a generator runs its `finally`. Every
   * reader of a finite source calls this when it is done, on success and on failure alike.
   */
  async close(): Promise<void> {
    const it = this.it;
    this.done = true;
    this.cur = EMPTY;
    this.pos = 0;
    this.queue.length = 0;
    this.queued = 0;
    if (!it || this.closed) return;
    this.closed = true;
    try {
      await it.return?.();
    } catch {
      // The source failed while closing: nothing is left to release.
    }
  }

  /**
   * Reads to the end of the stream and returns its last `keep` bytes (all of them when the stream
   * is shorter) and how many bytes there were in all; memory stays bounded by `keep`.
   */
  async tail(keep: number): Promise<{ bytes: Uint8Array; total: number }> {
    const parts: Uint8Array[] = [];
    let held = 0;
    let total = 0;
    while (await this.ensure(1)) {
      const n = this.available;
      const v = this.view(n).slice();
      total += n;
      parts.push(v);
      held += v.length;
      while (parts.length > 1 && held - parts[0]!.length >= keep) held -= parts.shift()!.length;
    }
    const all = new Uint8Array(held);
    let o = 0;
    for (const p of parts) {
      all.set(p, o);
      o += p.length;
    }
    return { bytes: all.length > keep ? all.subarray(all.length - keep) : all, total };
  }

  /** Whether the stream has ended with nothing left to read. */
  async atEnd(): Promise<boolean> {
    return !(await this.ensure(1));
  }

  private advance(): void {
    while (this.pos === this.cur.length && this.queue.length) {
      this.digest.hash(this.cur, this.pos);
      this.cur = this.queue.shift()!;
      this.queued -= this.cur.length;
      this.pos = 0;
      this.digest.from = 0;
    }
  }

  /**
   * Starts the integrity check: from here on every consumed byte is hashed (CRC-32) until the next
   * {@link mark}. Hashing happens per chunk, not per read, so the record loop pays nothing for it.
   */
  startDigest(): void {
    this.digest.start(this.pos);
  }

  /** Whether {@link startDigest} was called. */
  get digesting(): boolean {
    return this.digest.active;
  }

  /** CRC-32 and length of the bytes consumed since the previous mark (or the start), then restarts. */
  mark(): { crc: number; length: number } {
    return this.digest.mark(this.cur, this.pos, 'ByteReader');
  }

  /** Copies `n` available bytes into `dst` at `off`. */
  readInto(dst: Uint8Array, off: number, n: number): void {
    this.consumed += n;
    while (n > 0) {
      this.advance();
      const k = Math.min(n, this.cur.length - this.pos);
      if (k <= 0) throw new RangeError('ByteReader: read past the available bytes');
      dst.set(
        k === this.cur.length && this.pos === 0 ? this.cur : this.cur.subarray(this.pos, this.pos + k),
        off,
      );
      this.pos += k;
      off += k;
      n -= k;
    }
  }

  /**
   * `n` available bytes without copying when they lie in one chunk (the view is valid until the
   * next read); copied otherwise.
   */
  view(n: number): Uint8Array {
    this.advance();
    if (this.cur.length - this.pos >= n) {
      const v = this.cur.subarray(this.pos, this.pos + n);
      this.pos += n;
      this.consumed += n;
      return v;
    }
    const out = new Uint8Array(n);
    this.readInto(out, 0, n);
    return out;
  }

  /** Skips `n` available bytes. */
  skip(n: number): void {
    this.consumed += n;
    while (n > 0) {
      this.advance();
      const k = Math.min(n, this.cur.length - this.pos);
      this.pos += k;
      n -= k;
    }
  }

  private small(n: number): DataView {
    this.readInto(this.scratch, 0, n);
    return this.scratchView;
  }

  u8(): number {
    this.advance();
    if (this.pos < this.cur.length) {
      this.consumed++;
      return this.cur[this.pos++]!;
    }
    return this.small(1).getUint8(0);
  }

  /** The next `n` bytes without consuming them (after `ensure(n)`). */
  peekBytes(n: number): Uint8Array {
    const out = new Uint8Array(n);
    let c = this.cur;
    let p = this.pos;
    let qi = 0;
    for (let k = 0; k < n; ) {
      if (p >= c.length) {
        c = this.queue[qi++]!;
        p = 0;
        continue;
      }
      out[k++] = c[p++]!;
    }
    return out;
  }

  /** The next byte without consuming it (after `ensure(1)`). */
  peekU8(): number {
    this.advance();
    return this.cur[this.pos]!;
  }

  u16(): number {
    return this.small(2).getUint16(0);
  }

  u32(): number {
    return this.small(4).getUint32(0);
  }

  /** A big-endian u64 as a bigint. */
  u64big(): bigint {
    return this.small(8).getBigUint64(0);
  }

  /** A big-endian u64 as two u32 halves `[high, low]` (no bigint on the hot path). */
  u64pair(out: Uint32Array): void {
    const v = this.small(8);
    out[0] = v.getUint32(0);
    out[1] = v.getUint32(4);
  }

  /** A length-prefixed (u8) string, as QEMU's `qemu_get_counted_string`. */
  countedString(): string {
    const n = this.u8();
    return latin1(this.view(n));
  }
}

/** Decodes bytes as Latin-1 (ids are ASCII in practice; this never throws). */
export function latin1(b: Uint8Array): string {
  let s = '';
  for (let i = 0; i < b.length; i++) s += String.fromCharCode(b[i]!);
  return s;
}

/** Encodes a string as bytes, one per character (ids are ASCII). */
export function latin1Bytes(s: string): Uint8Array {
  const b = new Uint8Array(s.length);
  for (let i = 0; i < s.length; i++) b[i] = s.charCodeAt(i) & 0xff;
  return b;
}

/**
 * Where a {@link ByteWriter} sends full buffers; a returned promise is awaited (back-pressure). A
 * sink that knows when it is done with a chunk's memory (e.g. a socket's write callback) calls
 * `release`, and the writer reuses the buffer instead of allocating fresh memory for the next one.
 */
export type ByteSink = (chunk: Uint8Array, release?: () => void) => void | Promise<void>;

/** Writes big-endian values into large buffers and passes them on to a sink. */
export class ByteWriter {
  private buf: Uint8Array;
  private dv: DataView;
  private pos = 0;
  private readonly pending: Uint8Array[] = [];
  /** Whole-capacity buffers the sink has released, ready for reuse. */
  private readonly free: Uint8Array[] = [];
  /** Bytes written so far (including bytes not yet flushed). */
  written = 0;
  /**
   * CRC of the bytes written since the last mark, when an integrity check runs (over `buf`).
   * Hashing is lazy (when a buffer is handed on, or at a mark), so a window from {@link reserve}
   * is hashed after the caller filled it.
   */
  private readonly digest = new StreamDigest();

  constructor(
    private readonly sink: ByteSink,
    private readonly capacity = 1 << 20,
  ) {
    this.buf = new Uint8Array(capacity);
    this.dv = new DataView(this.buf.buffer);
  }

  /** Buffers waiting for {@link flush}. */
  get pendingBytes(): number {
    let n = this.pos;
    for (const p of this.pending) n += p.length;
    return n;
  }

  private room(n: number): void {
    if (this.pos + n <= this.buf.length) return;
    this.digest.hash(this.buf, this.pos);
    if (this.pos > 0) this.pending.push(this.buf.subarray(0, this.pos));
    this.fresh(Math.max(this.capacity, n));
  }

  /** A new current buffer: a released one when it fits (fresh memory costs page faults). */
  private fresh(size: number): void {
    const reused = size === this.capacity ? this.free.pop() : undefined;
    this.buf = reused ?? new Uint8Array(size);
    this.dv = new DataView(this.buf.buffer, this.buf.byteOffset, this.buf.byteLength);
    this.pos = 0;
    this.digest.from = 0;
  }

  /** Starts the integrity check: every byte written from here on is hashed until the next mark. */
  startDigest(): void {
    this.digest.start(this.pos);
  }

  /** Whether {@link startDigest} was called. */
  get digesting(): boolean {
    return this.digest.active;
  }

  /** CRC-32 and length of the bytes written since the previous mark (or the start), then restarts. */
  mark(): { crc: number; length: number } {
    return this.digest.mark(this.buf, this.pos, 'ByteWriter');
  }

  /** Hands a chunk to the sink, offering to take its buffer back when the sink is done with it. */
  private send(chunk: Uint8Array): void | Promise<void> {
    const whole = chunk.byteOffset === 0 && chunk.buffer.byteLength === this.capacity;
    if (!whole) return this.sink(chunk);
    const full = new Uint8Array(chunk.buffer, 0, this.capacity);
    return this.sink(chunk, () => {
      if (this.free.length < 8) this.free.push(full);
    });
  }

  u8(v: number): void {
    this.room(1);
    this.buf[this.pos++] = v;
    this.written++;
  }

  u16(v: number): void {
    this.room(2);
    this.dv.setUint16(this.pos, v);
    this.pos += 2;
    this.written += 2;
  }

  u32(v: number): void {
    this.room(4);
    this.dv.setUint32(this.pos, v);
    this.pos += 4;
    this.written += 4;
  }

  /** A u64 from a non-negative safe integer. */
  u64(v: number): void {
    this.room(8);
    this.dv.setUint32(this.pos, Math.floor(v / 2 ** 32));
    this.dv.setUint32(this.pos + 4, v >>> 0);
    this.pos += 8;
    this.written += 8;
  }

  u64big(v: bigint): void {
    this.room(8);
    this.dv.setBigUint64(this.pos, v);
    this.pos += 8;
    this.written += 8;
  }

  bytes(src: Uint8Array): void {
    this.room(src.length);
    this.buf.set(src, this.pos);
    this.pos += src.length;
    this.written += src.length;
  }

  /** A u8 length and the string's bytes (QEMU counted string). */
  countedString(s: string): void {
    const b = latin1Bytes(s);
    if (b.length > 255) throw new RangeError(`id "${s.slice(0, 40)}..." is longer than 255 bytes`);
    this.u8(b.length);
    this.bytes(b);
  }

  /**
   * A writable window of `n` bytes at the current position, to be filled by the caller (e.g. a page
   * copied straight from guest RAM).
   */
  reserve(n: number): Uint8Array {
    this.room(n);
    const v = this.buf.subarray(this.pos, this.pos + n);
    this.pos += n;
    this.written += n;
    return v;
  }

  /** Sends every buffered byte to the sink. */
  async flush(): Promise<void> {
    this.digest.hash(this.buf, this.pos);
    if (this.pos > 0) {
      this.pending.push(this.buf.subarray(0, this.pos));
      this.fresh(this.capacity);
    }
    while (this.pending.length) {
      const r = this.send(this.pending.shift()!);
      if (r) await r;
    }
  }

  /** Sends the full buffers (not the partly filled one) to the sink. */
  async flushFull(): Promise<void> {
    while (this.pending.length) {
      const r = this.send(this.pending.shift()!);
      if (r) await r;
    }
  }
}
