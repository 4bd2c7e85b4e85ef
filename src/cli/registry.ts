/**
 * @module cli/registry
 * The list of `memtree` subcommands, in the order `--help` shows them.
 */

import type { Command } from './command.js';
import { captureCommand } from './commands/capture.js';
import { qmpCommand } from './commands/qmp.js';

export const commands: Command[] = [qmpCommand, captureCommand];
