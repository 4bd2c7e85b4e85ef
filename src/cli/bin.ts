#!/usr/bin/env node
/**
 * @module cli/bin
 * Entry point of the `memtree` executable.
 */

import { main } from './main.js';

// A reader that stops early (`memtree mtree BIG | head`) closes the pipe: that is the reader's
// choice, not a failure of memtree. Stop quietly with status 0 instead of an unhandled EPIPE.
for (const stream of [process.stdout, process.stderr]) {
  stream.on('error', (e: NodeJS.ErrnoException) => {
    if (e.code === 'EPIPE') process.exit(0);
    throw e;
  });
}

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
