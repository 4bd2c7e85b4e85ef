/**
 * @module cli/command
 * The shape of a `memtree` subcommand and the error that means "you called it wrong".
 */

import { MemtreeError } from '../core/errors.js';

/** Where a command reads and writes; tests pass their own. */
export interface CliIo {
  readonly stdout: { write(s: string): unknown };
  readonly stderr: { write(s: string): unknown };
  /** Reads a file, or standard input for `-`. */
  readText(path: string): Promise<string>;
  /**
   * What is at `path`: a directory (e.g. a folder written by `memtree capture`), a file, or
   * nothing. Without it every path counts as a file.
   */
  entryKind?(path: string): 'dir' | 'file' | 'none';
}

/** A subcommand of `memtree`. */
export interface Command {
  readonly name: string;
  /** One line for the command list. */
  readonly summary: string;
  /** Full `--help` text. */
  readonly help: string;
  /** Runs the command; resolves to the exit code. */
  run(args: string[], io: CliIo): Promise<number>;
}

/** Wrong arguments: exit code 2 and one line on stderr. */
export class UsageError extends MemtreeError {
  constructor(message: string) {
    super('ERR_USAGE', message);
  }
}
