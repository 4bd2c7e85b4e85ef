/**
 * @module cli/registry
 * The list of `memtree` subcommands, in the order `--help` shows them.
 */

import type { Command } from './command.js';
import { captureCommand } from './commands/capture.js';
import { compareCommand } from './commands/compare.js';
import { diffCommand } from './commands/diff.js';
import { flatCommand } from './commands/flat.js';
import { lookupCommand } from './commands/lookup.js';
import { migrateExtractCommand } from './commands/migrate-extract.js';
import { migrateInfoCommand } from './commands/migrate-info.js';
import { mtreeCommand } from './commands/mtree.js';
import { qmpCommand } from './commands/qmp.js';
import { runCommand } from './commands/run.js';
import { serveCommand } from './commands/serve.js';

export const commands: Command[] = [
  qmpCommand,
  captureCommand,
  flatCommand,
  mtreeCommand,
  lookupCommand,
  diffCommand,
  compareCommand,
  migrateInfoCommand,
  migrateExtractCommand,
  serveCommand,
  runCommand,
];
