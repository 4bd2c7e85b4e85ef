/**
 * @module cli/registry
 * The list of `memtree` subcommands, in the order `--help` shows them.
 */

import type { Command } from './command.js';

export const commands: Command[] = [];
