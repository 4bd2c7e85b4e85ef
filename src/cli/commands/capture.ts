/**
 * @module cli/commands/capture
 * `memtree capture OUTDIR -- QEMU_COMMAND...`: runs a real QEMU (stopped, no display) and records its
 * memory-map dumps into a directory laid out like the shared fixtures.
 */

import { capture } from '../../qmp/capture.js';
import { type CliIo, type Command, UsageError } from '../command.js';
import { parseCommandArgs } from './flat.js';

const help = `Usage: memtree capture [--timeout MS] [--json] OUTDIR -- QEMU_COMMAND...

Starts QEMU_COMMAND (adding -S and -display none when absent, and a private
QMP socket), asks it for its memory map and quits it. Writes into OUTDIR
(created if needed), in the layout of the fixtures:

  mtree-D.txt   info mtree -D
  mtree.txt     info mtree
  flat.txt      info mtree -f
  flat-d.txt    info mtree -f -d
  cmdline.txt   the QEMU command line that was run, shell-quoted
                (without the private -qmp option)

The guest CPU never runs. QEMU is killed if it does not quit, and an error
quotes its exit code and stderr if it exits early.

The folder can be given to flat, mtree, lookup, diff, compare and serve in
place of a dump file.

Options:
  --timeout MS   how long to wait for QEMU to start and for each answer
                 (default 30000)
  --json         print {"files": [paths written], "machineArgv": [QEMU's argv]}

Example:
  memtree capture out/pc -- qemu-system-x86_64 -nodefaults -M pc -m 512M
`;

/** Reads a positive whole number of milliseconds. */
export function parseTimeout(value: string | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  if (!/^\d+$/.test(value) || Number(value) <= 0) {
    throw new UsageError(`--timeout wants a positive number of milliseconds, not '${value}'`);
  }
  return Number(value);
}

/** The `capture` command. */
export const captureCommand: Command = {
  name: 'capture',
  summary: 'run QEMU and record its info mtree dumps into a directory',
  help,
  async run(args: string[], io: CliIo): Promise<number> {
    const dash = args.indexOf('--');
    if (dash < 0) throw new UsageError("missing '--' before the QEMU command (see --help)");
    const { values, positionals } = parseCommandArgs(args.slice(0, dash), {
      options: { timeout: { type: 'string' }, json: { type: 'boolean' } },
      allowPositionals: true,
    });
    const qemuArgv = args.slice(dash + 1);
    if (positionals.length !== 1) throw new UsageError('expected exactly one OUTDIR before --');
    if (qemuArgv.length === 0) throw new UsageError("no QEMU command after '--'");
    const timeoutMs = parseTimeout(values.timeout, 30_000);
    const outDir = positionals[0]!;
    const result = await capture(outDir, qemuArgv, { timeoutMs, startTimeoutMs: timeoutMs });
    if (values.json) {
      io.stdout.write(
        `${JSON.stringify({ files: result.files, machineArgv: result.machineArgv }, null, 2)}\n`,
      );
    } else io.stdout.write(`${result.files.join('\n')}\n`);
    return 0;
  },
};
