/**
 * @module migration/crc32
 * CRC-32 (IEEE 802.3, the polynomial and bit order zlib uses), computed four bytes at a time from
 * four lookup tables ("slicing-by-4"), about three times the speed of the byte-wise loop: the
 * integrity check of live migration hashes every byte sent.
 */

const TABLES = (() => {
  const t = new Uint32Array(4 * 256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t[n] = c >>> 0;
  }
  for (let n = 0; n < 256; n++) {
    let c = t[n]!;
    for (let k = 1; k < 4; k++) {
      c = t[c & 0xff]! ^ (c >>> 8);
      t[k * 256 + n] = c >>> 0;
    }
  }
  return t;
})();

/** Running CRC-32, as zlib's `crc32()` computes it over everything passed to {@link update}. */
export class Crc32 {
  private c = 0xffffffff;
  /** Bytes hashed since construction or the last {@link reset}. */
  length = 0;

  /** Adds `b[start..end)`. */
  update(b: Uint8Array, start = 0, end = b.length): void {
    const t = TABLES;
    let c = this.c;
    let i = start;
    for (; i + 4 <= end; i += 4) {
      c ^= b[i]! | (b[i + 1]! << 8) | (b[i + 2]! << 16) | (b[i + 3]! << 24);
      c = t[768 + (c & 0xff)]! ^ t[512 + ((c >>> 8) & 0xff)]! ^ t[256 + ((c >>> 16) & 0xff)]! ^ t[c >>> 24]!;
    }
    for (; i < end; i++) c = t[(c ^ b[i]!) & 0xff]! ^ (c >>> 8);
    this.c = c;
    this.length += end - start;
  }

  /** The CRC of what was added. */
  get value(): number {
    return (this.c ^ 0xffffffff) >>> 0;
  }

  /** Starts over. */
  reset(): void {
    this.c = 0xffffffff;
    this.length = 0;
  }
}

/**
 * The integrity check a byte stream keeps over the bytes it passes: their CRC-32 from
 * {@link start} to each {@link mark}, hashed lazily, a range of the current buffer at a time
 * (when the stream moves to another buffer, or at a mark), so that the per-record code pays
 * nothing for it.
 */
export class StreamDigest {
  private crc: Crc32 | null = null;
  /** Where in the stream's current buffer the bytes not yet hashed begin. */
  from = 0;

  /** Whether {@link start} was called. */
  get active(): boolean {
    return this.crc !== null;
  }

  /** Starts hashing at `pos` of the current buffer. */
  start(pos: number): void {
    this.crc = new Crc32();
    this.from = pos;
  }

  /** Hashes `buf[from, pos)`, the bytes passed since the last hashing, if a check runs. */
  hash(buf: Uint8Array, pos: number): void {
    if (this.crc !== null && pos > this.from) this.crc.update(buf, this.from, pos);
    this.from = pos;
  }

  /**
   * Hashes up to `pos` of `buf`, then returns the CRC-32 and length of the bytes since the
   * previous mark (or the start) and restarts the count; `who` names the stream in the error.
   */
  mark(buf: Uint8Array, pos: number, who: string): { crc: number; length: number } {
    const c = this.crc;
    if (c === null) throw new RangeError(`${who}.mark: no digest was started`);
    this.hash(buf, pos);
    const r = { crc: c.value, length: c.length };
    c.reset();
    return r;
  }
}
