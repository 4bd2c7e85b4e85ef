/**
 * @module cli/main
 * The `memtree` command line: `memtree COMMAND [ARGS]`. User errors print one line on stderr and
 * exit 1; usage errors exit 2; only a bug in memtree itself prints a stack trace.
 */

import { readFile } from 'node:fs/promises';
import { MemtreeError } from '../core/errors.js';
import { type CliIo, type Command, UsageError } from './command.js';
import { commands } from './registry.js';

function readStdin(): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    process.stdin.on('data', (c: Buffer) => chunks.push(c));
    process.stdin.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    process.stdin.on('error', reject);
  });
}

/** The real terminal and file system. */
export const processIo: CliIo = {
  stdout: process.stdout,
  stderr: process.stderr,
  async readText(path: string): Promise<string> {
    if (path === '-') return readStdin();
    try {
      return await readFile(path, 'utf8');
    } catch (e) {
      const err = e as NodeJS.ErrnoException;
      throw new MemtreeError(
        'ERR_IO',
        `cannot read ${path}: ${err.code === 'ENOENT' ? 'no such file' : err.message}`,
      );
    }
  },
};

function usage(): string {
  const width = Math.max(...commands.map((c) => c.name.length));
  const list = commands.map((c) => `  ${c.name.padEnd(width)}  ${c.summary}`).join('\n');
  return `Usage: memtree COMMAND [ARGS...]

QEMU's memory model: read, print, search and compare memory maps.

Commands:
${list}

Run 'memtree COMMAND --help' for the options of a command.
`;
}

/** Runs `memtree` with `argv` (without the node and script paths); resolves to the exit code. */
export async function main(argv: string[], io: CliIo = processIo): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined || name === '--help' || name === '-h' || name === 'help') {
    io.stdout.write(usage());
    return name === undefined ? 2 : 0;
  }
  if (name === '--version') {
    io.stdout.write('memtree 0.1.0\n');
    return 0;
  }
  const cmd: Command | undefined = commands.find((c) => c.name === name);
  if (!cmd) {
    io.stderr.write(`memtree: unknown command '${name}' (see 'memtree --help')\n`);
    return 2;
  }
  if (rest.includes('--help') || rest.includes('-h')) {
    io.stdout.write(cmd.help.endsWith('\n') ? cmd.help : `${cmd.help}\n`);
    return 0;
  }
  try {
    return await cmd.run(rest, io);
  } catch (e) {
    if (e instanceof UsageError) {
      io.stderr.write(`memtree ${name}: ${e.message}\n`);
      return 2;
    }
    if (e instanceof MemtreeError) {
      io.stderr.write(`memtree ${name}: ${e.message}\n`);
      return 1;
    }
    throw e;
  }
}
