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
  | 'state';

/** A migration, snapshot or stream error; `code` is always `ERR_MIGRATION`. */
export class MigrationError extends MemtreeError {
  /** What went wrong. */
  readonly failure: MigrationFailure;
  /** The RAM block concerned, if any. */
  readonly block: string | undefined;
  /** Offset in the block (for page errors) or in the stream, if known. */
  readonly offset: number | undefined;

  constructor(failure: MigrationFailure, message: string, where: { block?: string; offset?: number } = {}) {
    super('ERR_MIGRATION', message);
    this.failure = failure;
    this.block = where.block;
    this.offset = where.offset;
  }
}
