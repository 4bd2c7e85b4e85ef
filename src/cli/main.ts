/**
 * @module cli/main
 * The `memtree` command line: `memtree COMMAND [ARGS]`. User errors print one line on stderr and
 * exit 1; usage errors exit 2; only a bug in memtree itself prints a stack trace.
 */

import { statSync } from 'node:fs';
import { MemtreeError } from '../core/errors.js';
import { type CliIo, type Command, UsageError } from './command.js';
import { commands } from './registry.js';
import { describeFsError, isSystemError, oneLine, readDumpFile } from './text.js';

/** The real terminal and file system. */
export const processIo: CliIo = {
  stdout: process.stdout,
  stderr: process.stderr,
  readText: readDumpFile,
  entryKind(path: string) {
    try {
      return statSync(path).isDirectory() ? 'dir' : 'file';
    } catch {
      return 'none';
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

Run 'memtree help COMMAND' (or 'memtree COMMAND --help') for the options of a command.
Exit status: 0 on success, 1 on bad input or a failed operation (and when compare or diff
find differences), 2 on usage errors.
`;
}

/** True for the errors node:util's parseArgs throws for unknown options or missing values. */
function isParseArgsError(e: unknown): e is Error {
  const code = (e as { code?: unknown } | null)?.code;
  return e instanceof Error && typeof code === 'string' && code.startsWith('ERR_PARSE_ARGS_');
}

function helpText(cmd: Command): string {
  return cmd.help.endsWith('\n') ? cmd.help : `${cmd.help}\n`;
}

/** Runs `memtree` with `argv` (without the node and script paths); resolves to the exit code. */
export async function main(argv: string[], io: CliIo = processIo): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined) {
    io.stderr.write(usage());
    return 2;
  }
  if (name === '--help' || name === '-h' || name === 'help') {
    const topic = name === 'help' ? rest[0] : undefined;
    if (topic === undefined) {
      io.stdout.write(usage());
      return 0;
    }
    const cmd = commands.find((c) => c.name === topic);
    if (!cmd) {
      io.stderr.write(`memtree help: no command '${oneLine(topic)}' (see 'memtree --help')\n`);
      return 2;
    }
    io.stdout.write(helpText(cmd));
    return 0;
  }
  if (name === '--version') {
    io.stdout.write('memtree 0.1.0\n');
    return 0;
  }
  const cmd: Command | undefined = commands.find((c) => c.name === name);
  if (!cmd) {
    io.stderr.write(`memtree: unknown command '${oneLine(name)}' (see 'memtree --help')\n`);
    return 2;
  }
  // Options end at `--` (capture's QEMU command line may well contain -h).
  const own = rest.includes('--') ? rest.slice(0, rest.indexOf('--')) : rest;
  if (own.includes('--help') || own.includes('-h')) {
    io.stdout.write(helpText(cmd));
    return 0;
  }
  try {
    return await cmd.run(rest, io);
  } catch (e) {
    const say = (text: string) => io.stderr.write(`memtree ${name}: ${oneLine(text)}\n`);
    if (e instanceof UsageError) {
      say(e.message);
      return 2;
    }
    if (isParseArgsError(e)) {
      say(`${e.message.replace(/\s*\n\s*/g, ' ')} (see 'memtree help ${name}')`);
      return 2;
    }
    if (e instanceof MemtreeError) {
      say(e.message);
      return 1;
    }
    if (isSystemError(e)) {
      // A file or socket error that a command did not word itself (e.g. EIO from /proc/self/mem).
      say(`${e.path ? `${e.path}: ` : ''}${describeFsError(e)}`);
      return 1;
    }
    throw e;
  }
}
