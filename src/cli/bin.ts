#!/usr/bin/env node
/**
 * @module cli/bin
 * Entry point of the `memtree` executable.
 */

import { main } from './main.js';

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (e: unknown) => {
    process.stderr.write(
      `memtree: internal error (a bug in memtree, please report it):\n${(e as Error)?.stack ?? e}\n`,
    );
    process.exitCode = 70;
  },
);
