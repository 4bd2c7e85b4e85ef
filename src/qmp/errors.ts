/**
 * @module qmp/errors
 * The one error type of memtree's QEMU connection. Everything that can go wrong while talking to a
 * real QEMU (no socket, refused, silence, hang-up, an error reply, QEMU dying at start-up) is a
 * {@link QmpError} with code `ERR_QMP`; `reason` tells the cases apart without parsing messages.
 */

import { MemtreeError } from '../core/errors.js';

/** Why a QMP operation failed. */
export type QmpErrorReason =
  /** The Unix socket path does not exist. */
  | 'not-found'
  /** Nothing listens on the socket or port. */
  | 'refused'
  /** QEMU did not answer (greeting or command reply) within the allowed time. */
  | 'timeout'
  /** QEMU closed the connection before answering. */
  | 'closed'
  /** QEMU answered a command with `{"error": ...}`. */
  | 'error-reply'
  /** QEMU sent something that is not QMP (bad JSON, no greeting...). */
  | 'protocol'
  /** The QEMU process that memtree started exited before its job was done. */
  | 'qemu-exited'
  /** Some other socket or process error. */
  | 'io';

/** Extra facts a {@link QmpError} can carry. */
export interface QmpErrorDetails {
  /** QEMU's error class (`GenericError`, `CommandNotFound`...), for `error-reply`. */
  readonly qmpClass?: string;
  /** QEMU's human-readable error text, for `error-reply`. */
  readonly desc?: string;
  /** The exit code of QEMU (or `null` if a signal ended it), for `qemu-exited`. */
  readonly exitCode?: number | null;
  /** The signal that ended QEMU, if any, for `qemu-exited`. */
  readonly signal?: string | null;
  /** The last lines QEMU wrote to stderr, for `qemu-exited`. */
  readonly stderrTail?: string;
}

/** Talking to QEMU over QMP failed; see {@link QmpError.reason}. */
export class QmpError extends MemtreeError {
  /** Which kind of failure this is. */
  readonly reason: QmpErrorReason;
  /** QEMU's error class, when QEMU answered with an error. */
  readonly qmpClass: string | undefined;
  /** QEMU's error description, when QEMU answered with an error. */
  readonly desc: string | undefined;
  /** QEMU's exit code, when the QEMU memtree started exited early. */
  readonly exitCode: number | null | undefined;
  /** The signal that ended QEMU, when it was killed. */
  readonly signal: string | null | undefined;
  /** The end of QEMU's stderr, when the QEMU memtree started exited early. */
  readonly stderrTail: string | undefined;

  constructor(reason: QmpErrorReason, message: string, details: QmpErrorDetails = {}) {
    super('ERR_QMP', message);
    this.reason = reason;
    this.qmpClass = details.qmpClass;
    this.desc = details.desc;
    this.exitCode = details.exitCode;
    this.signal = details.signal;
    this.stderrTail = details.stderrTail;
  }
}
