/**
 * @module test/support/run-bin
 * Runs the built `memtree` executable (`node dist/cli/bin.js`) as a user's shell would: real argv,
 * real files, real exit code. The CLI tests go through it so that what is tested is what ships.
 */

import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';

/** The built executable. */
export const BIN = resolve('dist/cli/bin.js');

/** What a run printed and how it ended. */
export interface BinResult {
  readonly code: number | null;
  readonly signal: string | null;
  readonly out: string;
  readonly err: string;
}

/** Options of {@link runBin}. */
export interface RunBinOptions {
  /** Bytes for standard input; without it stdin is empty (as `</dev/null`). */
  readonly stdin?: string | Uint8Array;
  readonly cwd?: string;
  readonly env?: NodeJS.ProcessEnv;
  /** Kill the run after this long (a safety net for a hang, not an assertion); default 60 s. */
  readonly killAfterMs?: number;
}

/** Throws one clear line when the CLI has not been built. */
export function requireBuiltCli(): void {
  if (!existsSync(BIN)) {
    throw new Error(`${BIN} is missing: run 'npm run build' first (npm test does it)`);
  }
}

/** Runs `memtree ARGS`; resolves to its exit code and output. */
export function runBin(args: readonly string[], options: RunBinOptions = {}): Promise<BinResult> {
  requireBuiltCli();
  return new Promise((resolvePromise, reject) => {
    const child = spawn(process.execPath, [BIN, ...args], {
      cwd: options.cwd,
      env: options.env ?? { ...process.env, NO_COLOR: '1' },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on('data', (b: Buffer) => out.push(b));
    child.stderr.on('data', (b: Buffer) => err.push(b));
    child.stdin.on('error', () => {}); // the command may exit before reading its input
    child.stdin.end(options.stdin ?? '');
    const timer = setTimeout(() => child.kill('SIGKILL'), options.killAfterMs ?? 60_000);
    child.on('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolvePromise({
        code,
        signal,
        out: Buffer.concat(out).toString('utf8'),
        err: Buffer.concat(err).toString('utf8'),
      });
    });
  });
}

/**
 * Asserts the shape every failed run must have: exit 1 or 2 as expected, nothing on stdout, exactly
 * one line on stderr starting with `memtree`, no stack trace, nothing but printable text.
 */
export function oneLineError(r: BinResult, code: 1 | 2): string | undefined {
  if (r.code !== code)
    return `exit ${r.code} (${r.signal ?? 'no signal'}), expected ${code}; stderr: ${r.err}`;
  if (r.out !== '') return `stdout is not empty: ${JSON.stringify(r.out.slice(0, 200))}`;
  if (!/^memtree[^\n]*\n$/.test(r.err))
    return `stderr is not one memtree line: ${JSON.stringify(r.err.slice(0, 400))}`;
  if (/\n\s+at /.test(r.err) || /internal error/.test(r.err)) return `stack trace: ${r.err}`;
  // biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what is checked
  if (/[\x00-\x09\x0b-\x1f\x7f-\x9f]/.test(r.err)) return `control characters: ${JSON.stringify(r.err)}`;
  return undefined;
}
