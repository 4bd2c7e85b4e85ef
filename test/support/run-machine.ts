/**
 * @module test/support/run-machine
 * A `memtree run riscv-virt` process for the migration and `--serve` tests: its output gathered
 * as it comes, killed when the test ends, and small waits on it and on QMP's `query-migrate`.
 */

import { type ChildProcess, spawn } from 'node:child_process';
import type { TestContext } from 'node:test';
import type { QmpClient } from '../../src/qmp/client.js';
import { BIN } from './run-bin.js';

/** A running `memtree run riscv-virt`. */
export interface RunningMachine {
  readonly proc: ChildProcess;
  /** Standard output and error so far. */
  out: string;
  err: string;
  /** The non-empty lines of standard output so far. */
  lines(): string[];
  readonly exited: Promise<number | null>;
}

/**
 * Starts `memtree run riscv-virt ARGS`; the process is killed when test `t` ends. With `input`,
 * its standard input is a pipe (`proc.stdin`: the guest's UART input), else it reads nothing.
 */
export function startMachine(t: TestContext, args: string[], { input = false } = {}): RunningMachine {
  const proc = spawn(process.execPath, [BIN, 'run', 'riscv-virt', ...args], {
    stdio: [input ? 'pipe' : 'ignore', 'pipe', 'pipe'],
  });
  const r: RunningMachine = {
    proc,
    out: '',
    err: '',
    lines: () => r.out.split('\n').filter((l) => l !== ''),
    exited: new Promise((res) => proc.once('close', (code) => res(code))),
  };
  proc.stdout!.setEncoding('utf8').on('data', (s: string) => {
    r.out += s;
  });
  proc.stderr!.setEncoding('utf8').on('data', (s: string) => {
    r.err += s;
  });
  t.after(() => {
    if (proc.exitCode === null) proc.kill('SIGKILL');
  });
  return r;
}

/** Waits until `cond()` holds; after `limitMs` fails naming `what` and the run's output. */
export async function until(
  what: string,
  cond: () => boolean,
  run?: RunningMachine,
  limitMs = 60_000,
): Promise<void> {
  const t0 = Date.now();
  while (!cond()) {
    if (Date.now() - t0 > limitMs) {
      throw new Error(
        `gave up waiting for ${what}${run ? `; stderr: ${run.err}\nstdout: ${run.out.slice(-2000)}` : ''}`,
      );
    }
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** Polls `query-migrate` until `done(status)`; returns that answer. */
export async function waitMigrateStatus(
  q: QmpClient,
  done: (status: string) => boolean,
): Promise<Record<string, unknown>> {
  for (;;) {
    const info = (await q.execute('query-migrate')) as Record<string, unknown>;
    if (done(String(info.status))) return info;
    await new Promise((r) => setTimeout(r, 20));
  }
}
