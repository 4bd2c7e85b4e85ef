/**
 * @module cli/commands/qmp
 * `memtree qmp SOCKET flat|mtree|lookup|hmp ...`: the dump commands, run on the memory map of a live
 * QEMU instead of a file. The dumps are fetched over QMP and handed to the very same `flat`, `mtree`
 * and `lookup` commands under virtual file names, so a live machine and a saved dump behave alike.
 */

import { MemtreeError } from '../../core/errors.js';
import { QmpClient } from '../../qmp/client.js';
import { type CliIo, type Command, UsageError } from '../command.js';
import { commands } from '../registry.js';
import { parseTimeout } from './capture.js';
import { parseCommandArgs } from './flat.js';

/** Virtual file names the inner command can read, and the monitor command behind each. */
export const QMP_VIRTUAL_FILES: Readonly<Record<string, string>> = {
  'qmp:mtree-D': 'info mtree -D',
  'qmp:mtree': 'info mtree',
  'qmp:flat': 'info mtree -f',
  'qmp:flat-d': 'info mtree -f -d',
};

const help = `Usage: memtree qmp [--timeout MS] SOCKET COMMAND [ARGS...]

Runs a dump command on the memory map of a running QEMU. SOCKET is QEMU's
QMP server: a Unix socket path (or unix:PATH), or tcp:HOST:PORT / HOST:PORT.
Start QEMU with e.g.  -qmp unix:/tmp/qmp.sock,server=on,wait=off

Commands:
  flat [ARGS]                  = memtree flat qmp:mtree-D --flat qmp:flat-d [ARGS]
  mtree [-D] [ARGS]            = memtree mtree qmp:mtree-D [-D] [ARGS] --flat qmp:flat
  lookup ADDR [--as NAME] ...  = memtree lookup qmp:mtree-D ADDR --flat qmp:flat ...
  hmp 'COMMAND LINE'           prints QEMU's answer to a monitor command as is
                               (e.g. 'info mtree -f')

qmp:mtree-D and qmp:flat stand for QEMU's 'info mtree -D' and 'info mtree -f'
(also qmp:mtree and qmp:flat-d for 'info mtree' and 'info mtree -f -d');
each is fetched when the command first reads it.

Options (before SOCKET):
  --timeout MS   how long to wait for each answer from QEMU (default 30000)

--json after flat, mtree or lookup prints JSON as those commands do. An hmp command line
that QEMU's monitor refuses (unknown command, bad argument) is an error (exit 1).

Examples:
  memtree qmp /tmp/qmp.sock lookup 0xfee00000 --as memory
  memtree qmp tcp:127.0.0.1:4444 flat --json
  memtree qmp /tmp/qmp.sock hmp 'info ramblock'
`;

/**
 * QEMU's complaint if HMP output is the monitor refusing the command line rather than its answer.
 * `human-monitor-command` succeeds whatever the monitor says, so this reads the two texts QEMU 7.2's
 * monitor/hmp.c prints for a command line it cannot run: "unknown command: '...'"
 * (monitor_parse_command) and a final `Try "help ..." for more information` after an argument
 * error (handle_hmp_command).
 */
export function hmpRefusal(output: string): string | undefined {
  const lines = output.split('\n').filter((l) => l !== '');
  if (lines.length === 0) return undefined;
  if (/^unknown command: '/.test(lines[0]!)) return lines[0]!;
  if (/^Try "help .*" for more information$/.test(lines[lines.length - 1]!)) {
    return lines.slice(0, -1).join(' ') || lines[lines.length - 1]!;
  }
  return undefined;
}

/** Splits `qmp`'s own arguments (up to COMMAND) from the ones passed on to the inner command. */
function splitArgs(args: string[]): { own: string[]; rest: string[] } {
  let positionals = 0;
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    if (a === '--timeout') {
      i++;
      continue;
    }
    if (a.startsWith('-') && a !== '-') continue;
    positionals++;
    if (positionals === 2) return { own: args.slice(0, i + 1), rest: args.slice(i + 1) };
  }
  return { own: args, rest: [] };
}

/** Arguments for the inner command, in terms of the virtual files. */
function innerArgs(sub: string, rest: string[]): string[] {
  switch (sub) {
    case 'flat':
      // The -f -d dump also tells the target page size that -d needs.
      return ['qmp:mtree-D', '--flat', 'qmp:flat-d', ...rest];
    case 'mtree':
      return ['qmp:mtree-D', ...rest, '--flat', 'qmp:flat'];
    case 'lookup':
      return ['qmp:mtree-D', ...rest, '--flat', 'qmp:flat'];
    default:
      throw new UsageError(`unknown qmp command '${sub}' (expected flat, mtree, lookup or hmp)`);
  }
}

/** The `qmp` command. */
export const qmpCommand: Command = {
  name: 'qmp',
  summary: 'run flat, mtree or lookup on a running QEMU over QMP',
  help,
  async run(args: string[], io: CliIo): Promise<number> {
    const { own, rest } = splitArgs(args);
    const { values, positionals } = parseCommandArgs(own, {
      options: { timeout: { type: 'string' } },
      allowPositionals: true,
    });
    const [socket, sub] = positionals;
    if (socket === undefined || sub === undefined) throw new UsageError('expected SOCKET and a COMMAND');
    const timeoutMs = parseTimeout(values.timeout, 30_000);

    if (sub === 'hmp') {
      if (rest.length !== 1) throw new UsageError("hmp wants one quoted command line, e.g. 'info mtree -f'");
      const client = await QmpClient.connect(socket, { timeoutMs });
      try {
        const out = await client.hmp(rest[0]!);
        const refusal = hmpRefusal(out);
        if (refusal !== undefined) {
          throw new MemtreeError('ERR_QMP', `QEMU's monitor refused '${rest[0]}': ${refusal}`);
        }
        io.stdout.write(out);
      } finally {
        await client.close();
      }
      return 0;
    }

    const inner = innerArgs(sub, rest);
    // Looked up now, not imported: the dump commands are registered by their own modules.
    const cmd = commands.find((c) => c.name === sub);
    if (!cmd) throw new MemtreeError('ERR_INVALID_ARGUMENT', `this memtree has no '${sub}' command to run`);

    const client = await QmpClient.connect(socket, { timeoutMs });
    try {
      const fetched = new Map<string, Promise<string>>();
      const io2: CliIo = {
        stdout: io.stdout,
        stderr: io.stderr,
        entryKind: (path: string) => (path in QMP_VIRTUAL_FILES ? 'file' : (io.entryKind?.(path) ?? 'file')),
        readText(path: string): Promise<string> {
          const monitorCommand = QMP_VIRTUAL_FILES[path];
          if (monitorCommand === undefined) return io.readText(path);
          let text = fetched.get(path);
          if (!text) {
            text = client.hmp(monitorCommand);
            fetched.set(path, text);
          }
          return text;
        },
      };
      return await cmd.run(inner, io2);
    } finally {
      await client.close();
    }
  },
};
