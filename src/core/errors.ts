/**
 * @module core/errors
 * Typed errors of the memory model. Every error has a stable `code` so that callers (and the CLI) can
 * tell them apart without parsing messages, and every message names the region and the value at fault.
 * A method that throws one of these leaves the region tree exactly as it was before the call.
 */

/** Stable error codes of memtree. */
export type MemtreeErrorCode =
  | 'ERR_INVALID_ARGUMENT'
  | 'ERR_ADDRESS_OVERFLOW'
  | 'ERR_REGION_IN_USE'
  | 'ERR_NOT_SUBREGION'
  | 'ERR_ALIAS_CYCLE'
  | 'ERR_WRONG_KIND'
  | 'ERR_FOREIGN_REGION'
  | 'ERR_TRANSACTION'
  | 'ERR_LISTENER'
  | 'ERR_RAM_BLOCK'
  | 'ERR_PARSE'
  | 'ERR_USAGE'
  | 'ERR_QMP'
  | 'ERR_MIGRATION'
  | 'ERR_IO';

/** Base class of every error memtree throws on purpose. */
export class MemtreeError extends Error {
  /** Stable machine-readable code. */
  readonly code: MemtreeErrorCode;

  constructor(code: MemtreeErrorCode, message: string) {
    super(message);
    this.code = code;
    this.name = new.target.name;
  }
}

/** A size, address, offset, priority or option is not acceptable (wrong type, negative, too large...). */
export class InvalidArgumentError extends MemtreeError {
  constructor(message: string) {
    super('ERR_INVALID_ARGUMENT', message);
  }
}

/** An address range would run past the end of the 64-bit address space (2^64 - 1). */
export class AddressOverflowError extends MemtreeError {
  constructor(message: string) {
    super('ERR_ADDRESS_OVERFLOW', message);
  }
}

/** The region is already a subregion of some container (QEMU asserts `!subregion->container`). */
export class RegionInUseError extends MemtreeError {
  constructor(message: string) {
    super('ERR_REGION_IN_USE', message);
  }
}

/** The region is not a subregion of the container it was removed from. */
export class NotSubregionError extends MemtreeError {
  constructor(message: string) {
    super('ERR_NOT_SUBREGION', message);
  }
}

/** An alias would (directly or through other aliases) end up targeting itself. */
export class AliasCycleError extends MemtreeError {
  constructor(message: string) {
    super('ERR_ALIAS_CYCLE', message);
  }
}

/** The operation does not apply to this kind of region (e.g. `setAliasOffset` on a RAM region). */
export class WrongKindError extends MemtreeError {
  constructor(message: string) {
    super('ERR_WRONG_KIND', message);
  }
}

/** Two objects from different {@link MemorySystem}s were combined. */
export class ForeignRegionError extends MemtreeError {
  constructor(message: string) {
    super('ERR_FOREIGN_REGION', message);
  }
}

/** `commit()` without a matching `begin()`. */
export class TransactionError extends MemtreeError {
  constructor(message: string) {
    super('ERR_TRANSACTION', message);
  }
}

/** A listener was registered twice, removed while not registered, or is malformed. */
export class ListenerError extends MemtreeError {
  constructor(message: string) {
    super('ERR_LISTENER', message);
  }
}

/** A RAM block operation failed (size mismatch, duplicate id, out of ram_addr space...). */
export class RamBlockError extends MemtreeError {
  constructor(message: string) {
    super('ERR_RAM_BLOCK', message);
  }
}
