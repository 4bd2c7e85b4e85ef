/**
 * @module qmp/capture
 * Runs a real QEMU with a private QMP socket and records its memory map the way the shared fixtures
 * were recorded: `info mtree -D`, `info mtree`, `info mtree -f` and `info mtree -f -d`, plus the
 * command line. The CPU never runs (`-S`), so the dumps show the machine as QEMU built it. Node only.
 */

import { type ChildProcess, spawn } from 'node:child_process';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MemtreeError } from '../core/errors.js';
import { QmpClient } from './client.js';
import { QmpError } from './errors.js';

/** Options for starting QEMU. */
export interface StartQemuOptions {
  /** Milliseconds to wait for QEMU's QMP socket and greeting. Default 30 000. */
  readonly startTimeoutMs?: number;
  /** Milliseconds to wait for each command's reply. Default 30 000. */
  readonly timeoutMs?: number;
  /** Milliseconds to wait for QEMU to exit after `quit` before killing it. Default 10 000. */
  readonly quitTimeoutMs?: number;
  /** How many of QEMU's last stderr lines an early-exit error quotes. Default 10. */
  readonly stderrLines?: number;
  /** Environment of the QEMU process; default: memtree's own. */
  readonly env?: NodeJS.ProcessEnv;
}

/** A QEMU process that memtree started, with a QMP connection to it. */
export interface RunningQemu {
  /** The machine's command line: the given argv with `-S` and `-display none` added if absent. */
  readonly machineArgv: readonly string[];
  /** What was really run: {@link machineArgv} plus the private `-qmp` option. */
  readonly argv: readonly string[];
  /** The QMP connection, already in command mode. */
  readonly client: QmpClient;
  /**
   * The private QMP socket. QEMU serves one QMP client at a time on it, so close {@link client}
   * before connecting another one (QEMU keeps running).
   */
  readonly socketPath: string;
  /** The process id of QEMU. */
  readonly pid: number | undefined;
  /**
   * Sends `quit` and waits for QEMU to exit, killing it if it does not within `quitTimeoutMs`;
   * then removes the private socket. Safe to call more than once.
   */
  quit(): Promise<void>;
  /** Kills QEMU (SIGKILL) if it still runs and removes the private socket. Safe to call more than once. */
  dispose(): Promise<void>;
  /**
   * If QEMU has exited (or exits within `graceMs`), a `qemu-exited` {@link QmpError} saying so
   * with its exit code and stderr; otherwise `undefined`.
   */
  exitError(graceMs?: number): Promise<QmpError | undefined>;
}

/** What {@link capture} wrote. */
export interface CaptureResult {
  /** The machine's command line as recorded in `cmdline.txt`. */
  readonly machineArgv: readonly string[];
  /** Full paths of the files written, in the order listed in the fixtures' README. */
  readonly files: readonly string[];
}

/** The dumps of a capture: file name and the monitor command that produces it. */
export const CAPTURE_DUMPS: readonly { readonly file: string; readonly command: string }[] = [
  { file: 'mtree-D.txt', command: 'info mtree -D' },
  { file: 'mtree.txt', command: 'info mtree' },
  { file: 'flat.txt', command: 'info mtree -f' },
  { file: 'flat-d.txt', command: 'info mtree -f -d' },
];

/** True if `argv` has QEMU option `name` (QEMU accepts `-opt` and `--opt`). */
function hasOption(argv: readonly string[], name: string): boolean {
  return argv.some((a, i) => i > 0 && (a === `-${name}` || a === `--${name}`));
}

/**
 * The command line to run for a capture: `argv` with `-S` (the CPU must not run) and `-display none`
 * inserted after the program name when absent, in the fixtures' order.
 */
export function machineArgvForCapture(argv: readonly string[]): string[] {
  const [program, ...rest] = argv;
  if (program === undefined || program === '') {
    throw new MemtreeError('ERR_INVALID_ARGUMENT', 'no QEMU command given');
  }
  const added: string[] = [];
  if (!hasOption(argv, 'S')) added.push('-S');
  if (!hasOption(argv, 'display') && !hasOption(argv, 'nographic')) added.push('-display', 'none');
  return [program, ...added, ...rest];
}

/**
 * Quotes `argv` for a POSIX shell on one line, leaving plain words bare as in the fixtures'
 * `cmdline.txt`.
 */
export function shellQuote(argv: readonly string[]): string {
  return argv
    .map((a) => (/^[A-Za-z0-9_@%+=:,./-]+$/.test(a) ? a : `'${a.replace(/'/g, `'\\''`)}'`))
    .join(' ');
}

interface ExitInfo {
  readonly code: number | null;
  readonly signal: string | null;
  readonly spawnError?: Error;
}

/**
 * `p`'s value, or `undefined` once `ms` have passed, whichever comes first. The timer is cleared as
 * soon as `p` settles: a pending timer would keep Node's event loop (and so a finished `memtree
 * capture`) alive until it fires.
 */
function within<T>(p: Promise<T>, ms: number): Promise<T | undefined> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<undefined>((r) => {
    timer = setTimeout(() => r(undefined), ms);
  });
  return Promise.race([p, timeout]).finally(() => clearTimeout(timer));
}

/**
 * Starts QEMU with `argv` (see {@link machineArgvForCapture}) and a QMP server on a socket in a new
 * private temporary directory, and connects to it. Throws a {@link QmpError}: `qemu-exited` (with exit
 * code and stderr) if QEMU quits during start-up, `timeout` if its socket does not answer in time,
 * `io` if the program cannot be started. On any failure QEMU is killed and the directory removed.
 */
export async function startQemu(
  argv: readonly string[],
  options: StartQemuOptions = {},
): Promise<RunningQemu> {
  const machineArgv = machineArgvForCapture(argv);
  const startTimeoutMs = options.startTimeoutMs ?? 30_000;
  const quitTimeoutMs = options.quitTimeoutMs ?? 10_000;
  const stderrLines = options.stderrLines ?? 10;
  const dir = await mkdtemp(join(tmpdir(), 'memtree-qmp-'));
  const socketPath = join(dir, 'qmp.sock');
  const fullArgv = [...machineArgv, '-qmp', `unix:${socketPath.replace(/,/g, ',,')},server=on,wait=off`];
  const program = machineArgv[0]!;

  let child: ChildProcess;
  try {
    child = spawn(program, fullArgv.slice(1), {
      stdio: ['ignore', 'ignore', 'pipe'],
      env: options.env ?? process.env,
    });
  } catch (e) {
    await rm(dir, { recursive: true, force: true });
    throw new QmpError('io', `cannot start ${program}: ${(e as Error).message}`);
  }
  let stderrTail = '';
  child.stderr?.setEncoding('utf8');
  child.stderr?.on('data', (s: string) => {
    stderrTail = (stderrTail + s).slice(-16_384);
  });
  let exitInfo: ExitInfo | undefined;
  const exited = new Promise<ExitInfo>((resolve) => {
    child.once('error', (e) => {
      exitInfo ??= { code: null, signal: null, spawnError: e };
      resolve(exitInfo);
    });
    child.once('close', (code, signal) => {
      exitInfo ??= { code, signal };
      resolve(exitInfo);
    });
  });

  const makeExitError = (info: ExitInfo): QmpError => {
    if (info.spawnError) {
      const err = info.spawnError as NodeJS.ErrnoException;
      return new QmpError(
        'io',
        `cannot start ${program}: ${err.code === 'ENOENT' ? 'program not found' : err.message}`,
      );
    }
    const lines = stderrTail
      .split('\n')
      .map((l) => l.trimEnd())
      .filter((l) => l !== '')
      .slice(-stderrLines);
    const how = info.signal ? `was killed by ${info.signal}` : `exited with code ${info.code}`;
    const said = lines.length ? `: ${lines.join(' / ')}` : ' (nothing on stderr)';
    return new QmpError('qemu-exited', `${program} ${how}${said}`, {
      exitCode: info.code,
      signal: info.signal,
      stderrTail: lines.join('\n'),
    });
  };

  let disposed = false;
  const dispose = async (): Promise<void> => {
    if (!exitInfo && child.pid !== undefined) {
      child.kill('SIGKILL');
      await within(exited, 5000);
    }
    if (!disposed) {
      disposed = true;
      await rm(dir, { recursive: true, force: true });
    }
  };

  let client: QmpClient | undefined;
  try {
    const deadline = Date.now() + startTimeoutMs;
    while (!client) {
      if (exitInfo) throw makeExitError(exitInfo);
      const left = deadline - Date.now();
      if (left <= 0) {
        throw new QmpError('timeout', `${program} opened no QMP socket within ${startTimeoutMs} ms`);
      }
      try {
        client = await QmpClient.connect(
          { path: socketPath },
          { timeoutMs: Math.min(left, options.timeoutMs ?? 30_000) },
        );
      } catch (e) {
        if (!(e instanceof QmpError)) throw e;
        // QEMU creates the socket a little after it starts; anything else may mean it died.
        if (e.reason !== 'not-found' && e.reason !== 'refused') {
          const info = await within(exited, 1000);
          throw info ? makeExitError(info) : e;
        }
        await within(exited, 25);
      }
    }
  } catch (e) {
    await dispose();
    throw e;
  }

  const connected = client;
  return {
    machineArgv,
    argv: fullArgv,
    client: connected,
    socketPath,
    pid: child.pid,
    async quit() {
      if (!exitInfo) {
        // If the caller closed our connection (to let another client in), open a new one to quit.
        let c: QmpClient | undefined = connected;
        if (c.closed) {
          c = await QmpClient.connect({ path: socketPath }, { timeoutMs: quitTimeoutMs }).catch(
            () => undefined,
          );
        }
        let asked = false;
        try {
          await c?.execute('quit', undefined, { timeoutMs: quitTimeoutMs });
          asked = c !== undefined;
        } catch (e) {
          // QEMU may hang up before its reply to quit reaches us: that is a quit too. One that does
          // not quit is killed below.
          if (!(e instanceof QmpError)) throw e;
          asked = e.reason === 'closed' || e.reason === 'io';
        }
        if (asked) await within(exited, quitTimeoutMs);
        if (c !== connected) await c?.close();
      }
      await connected.close();
      await dispose();
    },
    async dispose() {
      await connected.close();
      await dispose();
    },
    async exitError(graceMs = 0) {
      const info = exitInfo ?? (await within(exited, graceMs));
      return info ? makeExitError(info) : undefined;
    },
  };
}

/**
 * Starts QEMU with `qemuArgv` (plus `-S` and `-display none` if absent), records `info mtree -D`,
 * `info mtree`, `info mtree -f` and `info mtree -f -d` into `mtree-D.txt`, `mtree.txt`, `flat.txt`
 * and `flat-d.txt` in `outDir` (created if needed) with `\r\n` turned into `\n`, writes the command
 * line (shell-quoted, without the private `-qmp` option) to `cmdline.txt`, and quits QEMU. QEMU is
 * killed and the private socket removed whatever happens. Throws {@link QmpError} (`qemu-exited` with
 * QEMU's exit code and last stderr lines if it dies) or a MemtreeError `ERR_IO` if a file cannot be
 * written.
 */
export async function capture(
  outDir: string,
  qemuArgv: readonly string[],
  options: StartQemuOptions = {},
): Promise<CaptureResult> {
  const qemu = await startQemu(qemuArgv, options);
  const texts: string[] = [];
  try {
    try {
      for (const d of CAPTURE_DUMPS) texts.push(await qemu.client.hmp(d.command));
    } catch (e) {
      // A crash shows up as a closed connection; say that QEMU died, and why, instead.
      throw (await qemu.exitError(1000)) ?? e;
    }
    await qemu.quit();
  } finally {
    await qemu.dispose();
  }
  const files: string[] = [];
  try {
    await mkdir(outDir, { recursive: true });
    for (const [i, d] of CAPTURE_DUMPS.entries()) {
      const path = join(outDir, d.file);
      await writeFile(path, texts[i]!);
      files.push(path);
    }
    const cmdPath = join(outDir, 'cmdline.txt');
    await writeFile(cmdPath, `${shellQuote(qemu.machineArgv)}\n`);
    files.push(cmdPath);
  } catch (e) {
    throw new MemtreeError('ERR_IO', `cannot write the capture into ${outDir}: ${(e as Error).message}`);
  }
  return { machineArgv: qemu.machineArgv, files };
}
