/**
 * @module test/support/run-cli
 * Runs the `memtree` CLI in-process, the way a terminal would, but with its output captured: tests
 * call `main()` with a CliIo whose stdout and stderr are strings and whose files come from the disk
 * or from a table.
 */

import { readFileSync } from 'node:fs';
import type { CliIo } from '../../src/cli/command.js';
import { main } from '../../src/cli/main.js';
import { MemtreeError } from '../../src/core/errors.js';

/** Where `readText` finds files: the real disk, or a name → content table. */
export type FileSource = 'disk' | Record<string, string>;

/** A CliIo that collects what a command prints. */
export function memoryIo(files: FileSource = 'disk', stdin = ''): CliIo & { out: string; err: string } {
  const io = {
    out: '',
    err: '',
    stdout: {
      write: (s: string) => {
        io.out += s;
      },
    },
    stderr: {
      write: (s: string) => {
        io.err += s;
      },
    },
    async readText(p: string): Promise<string> {
      if (p === '-') return stdin;
      if (files === 'disk') {
        try {
          return readFileSync(p, 'utf8');
        } catch {
          throw new MemtreeError('ERR_IO', `cannot read ${p}: no such file`);
        }
      }
      const t = files[p];
      if (t === undefined) throw new MemtreeError('ERR_IO', `cannot read ${p}: no such file`);
      return t;
    },
  };
  return io;
}

/** Runs `memtree ARGS`; resolves to the exit code and what went to stdout and stderr. */
export async function runCli(
  args: string[],
  files: FileSource = 'disk',
  stdin = '',
): Promise<{ code: number; out: string; err: string }> {
  const io = memoryIo(files, stdin);
  const code = await main(args, io);
  return { code, out: io.out, err: io.err };
}
