/**
 * @module migration/errors
 * The error every migration, snapshot and stream reader throws on purpose: it says what went wrong
 * and, where it applies, which RAM block and which offset (in the block or in the stream).
 */

import { MemtreeError } from '../core/errors.js';

/** What kind of migration failure this is. */
export type MigrationFailure =
  /** The stream ended before the record that was being read. */
  | 'truncated'
  /** Bytes that cannot be a valid record (bad flags, bad section, bad length, bad checksum...). */
  | 'corrupt'
  /** Not a QEMU/memtree stream or snapshot (magic). */
  | 'bad-magic'
  /** A format version this reader does not support. */
  | 'bad-version'
  /** The stream names a RAM block the destination does not have. */
  | 'unknown-block'
  /** The stream's length for a block differs from the destination's. */
  | 'length-mismatch'
  /** A page offset outside its block. */
  | 'bad-offset'
  /** The connection dropped or the peer reported a failure. */
  | 'connection'
  /** The peer reported an error. */
  | 'remote'
  /** The migration was cancelled (e.g. a migrated block was resized). */
  | 'cancelled'
  /** The machine is in a state that does not allow the operation. */
  | 'state'
  /** The peer made no progress within the time allowed. */
  | 'timeout'
  /**
   * The source confirmed the switch-over but the destination did not acknowledge that it started:
   * the destination may or may not run, so the source stays stopped (resume it only if the
   * destination is known not to run).
   */
  | 'unconfirmed'
  /**
   * A postcopy migration failed after LISTEN: the destination may run on pages only the source
   * has, so both sides wait (QEMU's postcopy-paused) until a reconnection recovers it.
   */
  | 'paused';

/**
 * A migration, snapshot or stream error; `code` is always `ERR_MIGRATION`. The message is one line:
 * text from outside in it is escaped (see {@link escapeText}).
 */
export class MigrationError extends MemtreeError {
  /** What went wrong. */
  readonly failure: MigrationFailure;
  /** The RAM block concerned, if any. */
  readonly block: string | undefined;
  /** Offset in the block (for page errors) or in the stream, if known. */
  readonly offset: number | undefined;

  constructor(failure: MigrationFailure, message: string, where: { block?: string; offset?: number } = {}) {
    // Messages quote block ids, file names and peers' texts: escaped here, once for every caller.
    super('ERR_MIGRATION', escapeText(message));
    this.failure = failure;
    this.block = where.block;
    this.offset = where.offset;
  }
}

/**
 * Text that came from outside (a block id read from a stream, a path, a peer's error text) made safe
 * for a one-line error message: control characters, including newlines and ESC, and the Unicode line
 * separators are shown as `\xNN` / `\uNNNN` escapes, so they can neither split the line nor reach
 * the terminal as a control sequence.
 */
export function escapeText(s: string): string {
  // biome-ignore lint/suspicious/noControlCharactersInRegex: matching control characters is the point
  return s.replace(/[\u0000-\u001f\u007f-\u009f\u2028\u2029]/g, (c) => {
    const n = c.charCodeAt(0);
    return n <= 0xff ? `\\x${n.toString(16).padStart(2, '0')}` : `\\u${n.toString(16).padStart(4, '0')}`;
  });
}
