/**
 * @module test/support/qemu-serial
 * Runs a real QEMU with its serial port on stdout (`-serial stdio -display none -monitor none`) and
 * collects what the guest prints until a pattern appears (or a timeout), then kills QEMU. Optional
 * input is typed into the serial port when a prompt appears.
 */

import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import type { TestContext } from 'node:test';

/** True if `program` runs; otherwise skips the test, or fails it under CI. */
export function haveProgram(t: TestContext, program: string, pkg: string): boolean {
  if (spawnSync(program, ['--version'], { stdio: 'ignore' }).status === 0) return true;
  const why = `${program} is not on PATH (Debian package ${pkg})`;
  if (process.env.CI) assert.fail(`${why}; CI must run this test`);
  t.skip(why);
  return false;
}

/** Serial output of QEMU up to and including the first match of `until`. */
export function qemuSerial(
  argv: string[],
  until: RegExp,
  opts: { timeoutMs?: number; answer?: { when: RegExp; send: string } } = {},
): Promise<string> {
  const [cmd, ...args] = argv;
  const p = spawn(cmd!, [...args, '-serial', 'stdio', '-display', 'none', '-monitor', 'none'], {
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  let out = '';
  let answered = false;
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      p.kill('SIGKILL');
      reject(
        new Error(`QEMU did not print ${until} within ${opts.timeoutMs ?? 60000} ms; it printed:\n${out}`),
      );
    }, opts.timeoutMs ?? 60_000);
    p.stdout.on('data', (b: Buffer) => {
      out += b.toString('latin1');
      if (opts.answer && !answered && opts.answer.when.test(out)) {
        answered = true;
        p.stdin.write(opts.answer.send);
      }
      if (until.test(out)) {
        clearTimeout(timer);
        p.kill('SIGKILL');
        resolve(out);
      }
    });
    p.on('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
  });
}
